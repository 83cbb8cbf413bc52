//! When an imported message arrived: the first plausible date of the
//! ones a source knows (see the module above for the order).

use std::time::SystemTime;

/// The latest plausible arrival: a day after `now`, for clocks a little
/// ahead and time zones.
const FUTURE_SLACK: i64 = 86_400;

/// Whether `t` (Unix seconds) can be when a message arrived: after the
/// first second of 1970 (0 is what a clock or parser that knew nothing
/// gives: mailparse's dateparse answers 0 for a Date field with no date in
/// it), and not more than a day after `now`.
pub fn plausible_date(t: i64, now: i64) -> bool {
    (1..=now.saturating_add(FUTURE_SLACK)).contains(&t)
}

/// The internal date of an imported message: the first plausible one of
/// `before` (a Maildir file name's time, a From_ line's date), the Date
/// field (`date_field`, parsed only when needed) and `after` (a file's
/// modification time); `now` when none is.
pub fn arrival_date(
    before: Option<i64>,
    date_field: impl FnOnce() -> Option<i64>,
    after: Option<i64>,
    now: i64,
) -> i64 {
    let ok = |t: &i64| plausible_date(*t, now);
    before
        .filter(ok)
        .or_else(|| date_field().filter(ok))
        .or_else(|| after.filter(ok))
        .unwrap_or(now)
}

/// A file time as Unix seconds; none for a time before 1970.
pub(super) fn seconds_since_1970(t: SystemTime) -> Option<i64> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_secs()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::date::header_date;

    const NOW: i64 = 1_795_452_559;

    fn never() -> Option<i64> {
        panic!("the Date field was parsed although an earlier date counts")
    }

    #[test]
    fn dates_are_tried_in_order() {
        // The first that counts wins; the Date field is not even parsed.
        assert_eq!(arrival_date(Some(100), never, Some(300), NOW), 100);
        assert_eq!(arrival_date(None, || Some(200), Some(300), NOW), 200);
        assert_eq!(arrival_date(None, || None, Some(300), NOW), 300);
        assert_eq!(arrival_date(None, || None, None, NOW), NOW);
    }

    #[test]
    fn absurd_dates_fall_through_to_the_next() {
        let day = 86_400;
        // Before 1970, at its first second (a zero time), or more than a
        // day after the import: skipped, each at each place.
        for bad in [-1, 0, i64::MIN, NOW + day + 1, i64::MAX] {
            assert_eq!(arrival_date(Some(bad), || Some(200), None, NOW), 200);
            assert_eq!(arrival_date(None, || Some(bad), Some(300), NOW), 300);
            assert_eq!(arrival_date(None, || None, Some(bad), NOW), NOW);
        }
        // The edges that still count.
        assert_eq!(arrival_date(Some(1), never, None, NOW), 1);
        assert_eq!(arrival_date(Some(NOW + day), never, None, NOW), NOW + day);
    }

    fn with_date(date: &str) -> Vec<u8> {
        format!("From: a@example.org\nDate: {date}\nSubject: x\n\nbody\n").into_bytes()
    }

    #[test]
    fn date_fields_good_and_malformed() {
        let good = with_date("Mon, 23 Nov 2026 16:49:19 +0000");
        assert_eq!(header_date(&good), Some(1_795_452_559));
        // Obsolete forms that RFC 5322 section 4.3 still lets one read.
        let zone = with_date("23 Nov 2026 17:49:19 +0100 (CET)");
        assert_eq!(header_date(&zone), Some(1_795_452_559));
        assert_eq!(
            header_date(b"Date: Mon, 23 Nov 2026 16:49:19 GMT\n\n"),
            Some(1_795_452_559)
        );
        assert_eq!(
            arrival_date(None, || header_date(&good), Some(300), NOW),
            1_795_452_559
        );
        // Each of these falls back to the file time.
        for bad in [
            "garbage",
            "",
            "12345",
            "Mon, 32 Foo 2024 99:99:99 +0000",
            "Mon, 23 Nov 2026 16:49:19 +9999",
            "Wed, 31 Dec 1969 23:59:59 +0000",
            "Thu, 01 Jan 1970 00:00:00 +0100",
            "Thu, 01 Jan 1970 00:00:00 +0000",
            "Fri, 1 Jan 2100 00:00:00 +0000",
            "Mon, 23 Nov 99999999999999 16:49:19 +0000",
        ] {
            let raw = with_date(bad);
            assert_eq!(
                arrival_date(None, || header_date(&raw), Some(300), NOW),
                300,
                "Date: {bad}"
            );
        }
        // No Date field at all, or no header.
        assert_eq!(header_date(b"Subject: x\n\nbody\n"), None);
        assert_eq!(header_date(b""), None);
        assert_eq!(header_date(&[0xff, 0xfe, b'\n']), None);
    }
}

//! Dates in mail, written once: the RFC 5322 section 3.3 date-time postern
//! writes (always UTC) and reads (any zone, obsolete forms of section 4.3
//! too, through mailparse), and the asctime form of an mbox From_ line
//! (RFC 4155: `Thu Nov 23 17:30:28 2026`, taken as UTC).
//!
//! Times are Unix seconds (`i64`) or a `SystemTime`; the calendar is the
//! proleptic Gregorian one, converted with H. Hinnant's era-based
//! algorithms, so no date library is needed for these two fixed forms.

use std::time::SystemTime;

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// RFC 5322 section 3.3 date-time in UTC, e.g. `Mon, 23 Nov 2026 16:31:44 +0000`.
pub fn rfc5322(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let Civil {
        weekday,
        year,
        month,
        day,
        hour,
        minute,
        second,
    } = Civil::from_unix(secs);
    format!(
        "{weekday}, {day} {month} {year} {hour:02}:{minute:02}:{second:02} +0000",
        weekday = WEEKDAYS[weekday],
        month = MONTHS[month - 1],
    )
}

/// A date-time field's value (`Date:`, `Resent-Date:`) as Unix seconds.
/// mailparse answers 0 for a value with no date in it ("garbage", empty):
/// that is no date.
pub fn parse_rfc5322(value: &str) -> Option<i64> {
    mailparse::dateparse(value.trim()).ok().filter(|&t| t != 0)
}

/// The `Date:` field of a raw message, as Unix seconds, if it parses.
pub fn header_date(raw: &[u8]) -> Option<i64> {
    use mailparse::MailHeaderMap;
    let (headers, _) = mailparse::parse_headers(raw).ok()?;
    parse_rfc5322(&headers.get_first_value("Date")?)
}

/// asctime in UTC, as an mbox From_ line carries it:
/// `Mon Nov 23 17:30:28 2026` (the day padded to two columns). Times
/// before 1970 are written as its first second.
pub fn asctime(unix_seconds: i64) -> String {
    let c = Civil::from_unix(unix_seconds.max(0));
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[c.weekday],
        MONTHS[c.month - 1],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

/// Whether `w` is a time of day as asctime writes it: `hh:mm[:ss]`, one
/// or two digits each.
pub fn is_asctime_time(w: &str) -> bool {
    let parts: Vec<&str> = w.split(':').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The date in asctime-like text (taken as UTC): a month name, the day,
/// a time `hh:mm[:ss]`, and then, somewhere after, a four-digit year — the
/// forms mbox writers put on a From_ line (`Mon Nov 23 17:30:28 2026`,
/// with or without the weekday, with a zone before the year). `None` when
/// any part is missing or out of range.
pub fn parse_asctime(text: &str) -> Option<i64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mi = words
        .iter()
        .position(|w| MONTHS.iter().any(|m| w.eq_ignore_ascii_case(m)))?;
    let month = MONTHS
        .iter()
        .position(|m| words[mi].eq_ignore_ascii_case(m))? as i64
        + 1;
    let day: i64 = words.get(mi + 1)?.parse().ok()?;
    let time = words.get(mi + 2).filter(|w| is_asctime_time(w))?;
    let hms: Vec<i64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let year: i64 = words
        .get(mi + 3..)?
        .iter()
        .find(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    if !(1..=31).contains(&day) || hms[0] > 23 || hms[1] > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms.get(2).copied().unwrap_or(0))
}

/// A Unix time broken down in UTC.
struct Civil {
    /// 0 is Thursday (1970-01-01 was one): an index into [`WEEKDAYS`].
    weekday: usize,
    year: i64,
    /// 1 to 12.
    month: usize,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Civil {
    fn from_unix(t: i64) -> Civil {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            weekday: days.rem_euclid(7) as usize,
            year,
            month: month as usize,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc5322_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_451_504);
        assert_eq!(rfc5322(t), "Mon, 23 Nov 2026 16:31:44 +0000");
        assert_eq!(
            rfc5322(SystemTime::UNIX_EPOCH),
            "Thu, 1 Jan 1970 00:00:00 +0000"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
        // What postern writes, it reads back.
        assert_eq!(parse_rfc5322(&rfc5322(t)), Some(1_795_451_504));
    }

    #[test]
    fn a_date_field_without_a_date_is_no_date() {
        for junk in ["garbage", "", "  ", "12345"] {
            assert_eq!(parse_rfc5322(junk), None, "{junk:?}");
        }
        assert_eq!(
            parse_rfc5322(" Mon, 23 Nov 2026 16:49:19 +0000 "),
            Some(1_795_452_559)
        );
        // Obsolete forms that RFC 5322 section 4.3 still lets one read.
        assert_eq!(
            parse_rfc5322("23 Nov 2026 17:49:19 +0100 (CET)"),
            Some(1_795_452_559)
        );
        assert_eq!(
            header_date(b"Date: Mon, 23 Nov 2026 16:49:19 GMT\n\n"),
            Some(1_795_452_559)
        );
        assert_eq!(header_date(b"Subject: x\n\nbody\n"), None);
        assert_eq!(header_date(b""), None);
        assert_eq!(header_date(&[0xff, 0xfe, b'\n']), None);
    }

    #[test]
    fn asctime_round_trips() {
        assert_eq!(asctime(1_795_455_028), "Mon Nov 23 17:30:28 2026");
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(-5), "Thu Jan  1 00:00:00 1970");
        for t in [0, 951_782_400, 1_795_455_028, 4_102_444_799] {
            assert_eq!(parse_asctime(&asctime(t)), Some(t), "{t}");
        }
        assert_eq!(
            parse_asctime("Sat Jan  3 01:05:34 MET 1996"),
            Some(820_631_134)
        );
        for bad in [
            "",
            "Nov",
            "Nov 32 10:00 2026",
            "Nov 3 24:00 2026",
            "Nov 3 10:00",
        ] {
            assert_eq!(parse_asctime(bad), None, "{bad:?}");
        }
        assert!(is_asctime_time("1:05") && is_asctime_time("01:05:34"));
        assert!(!is_asctime_time("10") && !is_asctime_time("1:2:3:4") && !is_asctime_time("a:b"));
    }
}

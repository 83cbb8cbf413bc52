//! Outbound retention: after a delivery, a redacted copy of the message
//! stays in the spool's `sent/` for the retention time, then the queue
//! runner purges it. The copy has the headers (so an operator can answer
//! "did my message go out?") and a body that only says it was sent; it is
//! sealed like every spool file. It is written without waiting for the
//! disk: a crash may lose a copy, never mail.
//!
//! Copies are appended to segments, one file for all the copies that go
//! at about the same time (`until-T`: purged once the clock passes T),
//! not one file each: creating a file costs the filesystem more than
//! everything else a delivery does here (measured: ext4 spent over a
//! millisecond of CPU per new file in a queue run).

use std::time::{Duration, SystemTime};

/// The body of every redacted copy.
pub const REDACTED_BODY: &str = "This message was successfully sent. It has been redacted \
and purged for your security and privacy.";

/// The segment of `sent/` for a copy kept `keep` from `now`: the copies
/// of one segment go together, at the end of its span, a 720th of the
/// keeping time (one hour for 30 days), between a second and an hour.
/// A copy may so stay up to one span longer than asked, never shorter.
pub fn segment_name(now: SystemTime, keep: Duration) -> String {
    let span = (keep.as_secs() / 720).clamp(1, 3600);
    let until = now
        .checked_add(keep)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(u64::MAX, |d| d.as_secs());
    let end = until.div_ceil(span).saturating_mul(span);
    format!("until-{end}")
}

/// `msg` with its headers kept, its body replaced by [`REDACTED_BODY`]:
/// the MIME fields of the original (`Content-Type`,
/// `Content-Transfer-Encoding`) give way to plain text, the original type
/// kept as `X-Original-Content-Type`.
pub fn redact(msg: &[u8]) -> Vec<u8> {
    #[derive(PartialEq)]
    enum Field {
        Keep,
        Type,
        Drop,
    }
    use crate::mail::header::{header_end, trim_eol};
    let end = header_end(msg);
    let mut out = Vec::with_capacity(end + 256);
    let mut original: Option<Vec<u8>> = None;
    let mut current = Field::Keep;
    for line in msg[..end].split_inclusive(|&b| b == b'\n') {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some(t) = original.as_mut().filter(|_| current == Field::Type) {
                t.extend_from_slice(trim_eol(line));
            }
        } else {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            current = if is(b"content-type") {
                let value = line.get(name.len() + 1..).unwrap_or(b"");
                original = Some(trim_eol(value).trim_ascii_start().to_vec());
                Field::Type
            } else if is(b"content-transfer-encoding") || is(b"x-original-content-type") {
                Field::Drop
            } else {
                Field::Keep
            };
        }
        if current == Field::Keep {
            out.extend_from_slice(line);
        }
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    let original = original.unwrap_or_else(|| b"text/plain".to_vec());
    let original = String::from_utf8_lossy(&original);
    out.extend_from_slice(b"X-Original-Content-Type: ");
    out.extend_from_slice(crate::mail::text::clean(&original).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    out.extend_from_slice(REDACTED_BODY.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// Days as a duration.
pub fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_end_on_span_boundaries_never_early() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_123);
        let month = Duration::from_secs(30 * 86400);
        assert_eq!(
            segment_name(t, month),
            format!("until-{}", 1_002_592_123u64.div_ceil(3600) * 3600)
        );
        assert_eq!(segment_name(t, Duration::from_secs(1)), "until-1000000124");
        // Copies of the same hour share a segment.
        assert_eq!(
            segment_name(t, month),
            segment_name(t + Duration::from_secs(60), month)
        );
    }

    #[test]
    fn headers_stay_the_body_goes() {
        let msg = b"From: a@example.org\r\nSubject: secret plans\r\nContent-Type: multipart/mixed;\r\n boundary=\"xyz\"\r\nContent-Transfer-Encoding: 7bit\r\nX-Original-Content-Type: forged\r\nTo: b@example.net\r\n\r\n--xyz\r\nthe secret body\r\n--xyz--\r\n";
        let r = redact(msg);
        let text = String::from_utf8(r).unwrap();
        assert!(
            text.starts_with(
                "From: a@example.org\r\nSubject: secret plans\r\nTo: b@example.net\r\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("X-Original-Content-Type: multipart/mixed; boundary=\"xyz\"\r\n"),
            "{text}"
        );
        assert!(text.contains(
            "Content-Type: text/plain; charset=us-ascii\r\n\r\nThis message was successfully sent."
        ));
        assert!(
            !text.contains("secret body") && !text.contains("forged") && !text.contains("7bit")
        );
        assert_eq!(text.matches("Content-Type:").count(), 2);
    }

    #[test]
    fn odd_messages_still_redact() {
        for msg in [
            &b""[..],
            b"no header at all\n",
            b"Subject: only headers",
            b"Subject: x\n\nbody",
        ] {
            let text = String::from_utf8(redact(msg)).unwrap();
            assert!(text.ends_with(&format!("{REDACTED_BODY}\r\n")), "{text:?}");
            assert!(!text.contains("body\r\n") || msg.is_empty());
        }
    }
}

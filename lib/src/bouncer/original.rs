//! The original message as a delivery status notification sees it: where
//! its header section ends (RFC 5322 section 2.2), what its headers say
//! about loops (RFC 3834 `Auto-Submitted:`, RFC 6522 `multipart/report`),
//! and what of it a notification returns (RFC 3461 section 4.3 RET, RFC
//! 6522 `text/rfc822-headers`).
//!
//! Nothing here copies a large message: the header section is a slice of
//! it, and only what is returned (at most the size limit) is copied, with
//! its line ends made CRLF as in the rest of the notification.

use std::borrow::Cow;

use mailparse::MailHeaderMap;

/// RFC 5322 section 2.1.1: a line is at most 998 octets without its CRLF.
pub const MAX_LINE: usize = 998;

pub use crate::mail::header::header_end;

/// What the headers of a message say about answering it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// It is itself a report: `multipart/report` at the top with
    /// report-type `delivery-status` or `disposition-notification` (or
    /// their RFC 6533 `global-` forms).
    pub is_report: bool,
    /// It has `Auto-Submitted:` with a value other than `no` (RFC 3834
    /// section 5): no automatic answer.
    pub auto_submitted: bool,
}

impl Facts {
    /// Reads the facts from the header section of `msg` only.
    pub fn of(msg: &[u8]) -> Facts {
        let headers = &msg[..header_end(msg)];
        let Ok((fields, _)) = mailparse::parse_headers(headers) else {
            return Facts::default();
        };
        let is_report = fields.get_first_value("Content-Type").is_some_and(|v| {
            let ct = mailparse::parse_content_type(&v);
            ct.mimetype.eq_ignore_ascii_case("multipart/report")
                && ct.params.get("report-type").is_some_and(|t| {
                    matches!(
                        t.trim().to_ascii_lowercase().as_str(),
                        "delivery-status"
                            | "disposition-notification"
                            | "global-delivery-status"
                            | "global-disposition-notification"
                    )
                })
        });
        let auto_submitted = fields
            .get_all_values("Auto-Submitted")
            .iter()
            .any(|v| auto_submitted_keyword(v).is_some_and(|k| k != "no"));
        Facts {
            is_report,
            auto_submitted,
        }
    }
}

/// The keyword of an `Auto-Submitted:` value, lower-cased, without
/// comments and parameters (`auto-generated; foo=bar (why)`); `None` when
/// there is none.
fn auto_submitted_keyword(value: &str) -> Option<String> {
    let mut depth = 0usize;
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => break,
            c if depth == 0 && !c.is_whitespace() => out.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Why a notification returns the headers and not the whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersOnly {
    /// RET=HDRS, no RET, or a notice that is not a failure.
    NotAsked,
    /// The message is larger than the size limit.
    TooLarge { limit: u64 },
    /// A line of the message is longer than 998 octets: it cannot be
    /// returned as `message/rfc822` unencoded.
    LongLines,
}

/// What of the original a notification carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned<'a> {
    /// The whole message, CRLF line ends.
    Full(Cow<'a, [u8]>),
    /// Its header section, CRLF line ends; `cut` when the header section
    /// was larger than the limit, or a line of it longer than 998 octets,
    /// and was cut to fit.
    Headers {
        bytes: Cow<'a, [u8]>,
        why: HeadersOnly,
        cut: bool,
    },
}

impl Returned<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Returned::Full(b) | Returned::Headers { bytes: b, .. } => b,
        }
    }
}

/// What to return of `msg`: the whole of it when `full` is asked for and
/// it fits in `limit` bytes with no line over 998 octets, else its header
/// section (itself cut to `limit`).
pub fn returned(msg: &[u8], full: bool, limit: u64) -> Returned<'_> {
    let why = if !full {
        HeadersOnly::NotAsked
    } else if msg.len() as u64 > limit {
        HeadersOnly::TooLarge { limit }
    } else {
        match to_crlf(msg, usize::MAX) {
            (bytes, false) => return Returned::Full(bytes),
            (_, true) => HeadersOnly::LongLines,
        }
    };
    let headers = &msg[..header_end(msg)];
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let (bytes, long) = to_crlf(headers, limit);
    let cut = long || bytes.len() < crlf_len(headers);
    Returned::Headers { bytes, why, cut }
}

/// The length of `bytes` with every line end made CRLF.
fn crlf_len(bytes: &[u8]) -> usize {
    lines(bytes)
        .map(|(line, ended)| line.len() + if ended { 2 } else { 0 })
        .sum()
}

/// `bytes` with every line end (LF, CRLF, bare CR) made CRLF, lines
/// longer than [`MAX_LINE`] cut to it, and whole lines only up to `limit`
/// bytes. Borrowed when nothing changes. The flag says a line was too
/// long.
fn to_crlf(bytes: &[u8], limit: usize) -> (Cow<'_, [u8]>, bool) {
    let mut long = false;
    let mut changed = false;
    let mut total = 0usize;
    let mut kept = 0usize;
    for (line, ended) in lines(bytes) {
        let len = line.len().min(MAX_LINE) + if ended { 2 } else { 0 };
        if total + len > limit {
            changed = true;
            break;
        }
        long |= line.len() > MAX_LINE;
        total += len;
        kept += 1;
        changed |= line.len() > MAX_LINE;
    }
    if !changed && total == bytes.len() {
        return (Cow::Borrowed(bytes), long);
    }
    let mut out = Vec::with_capacity(total);
    for (line, ended) in lines(bytes).take(kept) {
        out.extend_from_slice(&line[..line.len().min(MAX_LINE)]);
        if ended {
            out.extend_from_slice(b"\r\n");
        }
    }
    (Cow::Owned(out), long)
}

/// The lines of `bytes` without their ends, each with whether it had one.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let rest = &bytes[pos..];
        match memchr::memchr2(b'\n', b'\r', rest) {
            None => {
                pos = bytes.len();
                Some((rest, false))
            }
            Some(i) => {
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                pos += i + skip;
                Some((&rest[..i], true))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_reports_and_auto_submitted() {
        let f = |m: &str| Facts::of(m.as_bytes());
        assert_eq!(f("Subject: hi\n\nbody\n"), Facts::default());
        assert!(
            f("Content-Type: multipart/report; report-type=delivery-status;\n boundary=x\n\n")
                .is_report
        );
        assert!(
            f("content-type: Multipart/Report; REPORT-TYPE=\"Disposition-Notification\"\n\n")
                .is_report
        );
        assert!(!f("Content-Type: multipart/report; report-type=spam\n\n").is_report);
        assert!(!f("Content-Type: multipart/mixed\n\nContent-Type: multipart/report; report-type=delivery-status\n").is_report);
        assert!(f("Auto-Submitted: auto-replied\n\n").auto_submitted);
        assert!(f("Auto-Submitted: Auto-Generated (vacation); x=y\n\n").auto_submitted);
        assert!(!f("Auto-Submitted: no\n\n").auto_submitted);
        assert!(!f("Auto-Submitted: No (a person wrote this)\n\n").auto_submitted);
        assert!(!f("Auto-Submitted:\n\n").auto_submitted);
        // In the body it does not count.
        assert!(!f("Subject: x\n\nAuto-Submitted: auto-replied\n").auto_submitted);
        // Without a separator, the fields before the first body line.
        assert!(f("Auto-Submitted: auto-replied\nbody without separator\n").auto_submitted);
        // 8-bit header values do not stop the reading.
        assert!(f("Subject: caf\u{e9} \u{ff}\nAuto-Submitted: auto-generated\n\n").auto_submitted);
        let latin1 = b"Subject: caf\xe9\nAuto-Submitted: auto-generated\n\nx";
        assert!(Facts::of(latin1).auto_submitted);
    }

    #[test]
    fn full_when_asked_and_small() {
        let msg = b"Subject: x\n\nbody\n";
        assert_eq!(
            returned(msg, true, 1000),
            Returned::Full(Cow::Owned(b"Subject: x\r\n\r\nbody\r\n".to_vec()))
        );
        let crlf = b"Subject: x\r\n\r\nbody\r\n";
        assert!(matches!(
            returned(crlf, true, 1000),
            Returned::Full(Cow::Borrowed(_))
        ));
        assert_eq!(
            returned(msg, false, 1000),
            Returned::Headers {
                bytes: Cow::Owned(b"Subject: x\r\n".to_vec()),
                why: HeadersOnly::NotAsked,
                cut: false
            }
        );
    }

    #[test]
    fn too_large_or_long_lines_give_headers() {
        let msg = b"Subject: x\n\nbody\n";
        assert!(matches!(
            returned(msg, true, 10),
            Returned::Headers {
                why: HeadersOnly::TooLarge { limit: 10 },
                ..
            }
        ));
        let long = format!("Subject: x\n\n{}\n", "y".repeat(999));
        assert!(matches!(
            returned(long.as_bytes(), true, 100_000),
            Returned::Headers {
                why: HeadersOnly::LongLines,
                cut: false,
                ..
            }
        ));
    }

    #[test]
    fn headers_are_cut_to_the_limit_and_to_998() {
        let msg = format!("A: {}\nB: 2\n\nbody\n", "a".repeat(1200));
        let Returned::Headers { bytes, cut, .. } = returned(msg.as_bytes(), false, 100_000) else {
            panic!("headers")
        };
        assert!(cut);
        assert_eq!(bytes.len(), 998 + 2 + 6);
        assert!(bytes.ends_with(b"\r\nB: 2\r\n"));
        let msg = b"A: 1\nB: 2\nC: 3\n\n";
        let Returned::Headers { bytes, cut, .. } = returned(msg, false, 13) else {
            panic!("headers")
        };
        assert!(cut);
        assert_eq!(&bytes[..], b"A: 1\r\nB: 2\r\n");
    }

    /// A 50 MB message with RET=FULL: only its headers, borrowed where
    /// they need no change, never the body copied.
    #[test]
    fn a_huge_message_returns_its_headers_without_a_copy() {
        let mut msg = b"Subject: big\r\nFrom: a@b.example\r\n\r\n".to_vec();
        msg.resize(50 << 20, b'x');
        match returned(&msg, true, 50_000) {
            Returned::Headers {
                bytes: Cow::Borrowed(b),
                why: HeadersOnly::TooLarge { limit: 50_000 },
                cut: false,
            } => assert_eq!(b, b"Subject: big\r\nFrom: a@b.example\r\n"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_separator_and_bare_cr() {
        let msg = b"Subject: x\rTo: y\nbody at once\n";
        let Returned::Headers { bytes, .. } = returned(msg, false, 1000) else {
            panic!("headers")
        };
        // A bare CR is a line end here, as the deliverer sends it.
        assert_eq!(&bytes[..], b"Subject: x\r\nTo: y\r\n");
    }
}

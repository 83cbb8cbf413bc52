//! Checks on the bytes of an RFC 5322 message as it enters postern, and the
//! trace header postern adds (RFC 5321 section 4.4).
//!
//! The checks look only at the header section (RFC 5322 section 2.2) and
//! scan the body once for NUL and 8-bit bytes. Line endings may be LF (as
//! Postfix's pipe(8) delivers) or CRLF; they are kept as they are.

use std::time::SystemTime;

use crate::exit::{Failure, Sysexit, ToFailure};
/// The date format of [`received_header`], now at home in [`super::date`].
pub use crate::mail::date::rfc5322 as rfc5322_date;
use crate::mail::status;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("message is empty")]
    Empty,
    #[error("message size {size} exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("message contains a NUL byte at offset {0}")]
    Nul(usize),
    #[error("message does not start with a header field (line {0})")]
    NoHeader(usize),
    #[error("malformed header field on line {0}: no field name before the colon")]
    BadFieldName(usize),
    #[error(
        "too many hops: {hops} Received:/Delivered-To: headers (limit {limit}); mail forwarding loop"
    )]
    Loop { hops: usize, limit: usize },
}

impl ToFailure for MessageError {
    fn to_failure(&self) -> Failure {
        let text = self.to_string();
        match self {
            MessageError::TooLarge { .. } => {
                Failure::new(Sysexit::Unavailable, status::TOO_BIG, text)
            }
            MessageError::Loop { .. } => Failure::new(Sysexit::Unavailable, status::LOOP, text),
            _ => Failure::new(Sysexit::DataErr, status::BAD_MESSAGE, text),
        }
    }
}

/// What the checks learned about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Bytes over 127 somewhere: needs 8BITMIME (or SMTPUTF8 in headers).
    pub eight_bit: bool,
    /// `Received:` plus `Delivered-To:` fields.
    pub hops: usize,
    /// `\r\n` if the first line ends so, else `\n`.
    pub eol: &'static str,
    /// Bytes to skip at the start: an mbox `From ` line (procmail hands
    /// one over), which is not part of the message.
    pub skip: usize,
    /// Offset at which the header section ends without the empty line
    /// RFC 5322 requires; the caller inserts one there.
    pub missing_separator_at: Option<usize>,
}

/// Checks a whole message. `limit` is the size limit in bytes.
pub fn inspect(msg: &[u8], limit: u64, hop_limit: usize) -> Result<Inspection, MessageError> {
    if msg.len() as u64 > limit {
        return Err(MessageError::TooLarge {
            size: msg.len() as u64,
            limit,
        });
    }
    if let Some(at) = memchr::memchr(0, msg) {
        return Err(MessageError::Nul(at));
    }
    let skip = mbox_from_line_len(msg);
    if msg.len() == skip || msg[skip..].iter().all(|b| b.is_ascii_whitespace()) {
        return Err(MessageError::Empty);
    }
    let eol = if msg[skip..line_end(msg, skip)].ends_with(b"\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut hops = 0;
    let mut pos = skip;
    let mut line_no = 1;
    let mut missing_separator_at = None;
    while pos < msg.len() {
        let end = line_end(msg, pos);
        let line = trim_eol(&msg[pos..end]);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if pos == skip {
                return Err(MessageError::NoHeader(line_no));
            }
        } else {
            match field_name(line) {
                Some(name) => {
                    if name.eq_ignore_ascii_case(b"received")
                        || name.eq_ignore_ascii_case(b"delivered-to")
                    {
                        hops += 1;
                    }
                }
                None if pos == skip => return Err(MessageError::NoHeader(line_no)),
                None if looks_like_field(line) => {
                    return Err(MessageError::BadFieldName(line_no));
                }
                None => {
                    // A body line right after the header fields: the
                    // separator is missing. Postfix repairs this the same way.
                    missing_separator_at = Some(pos);
                    break;
                }
            }
        }
        pos = end;
        line_no += 1;
    }
    if hops > hop_limit {
        return Err(MessageError::Loop {
            hops,
            limit: hop_limit,
        });
    }
    Ok(Inspection {
        eight_bit: !msg.is_ascii(),
        hops,
        eol,
        skip,
        missing_separator_at,
    })
}

/// The length of the mbox `From ` line `msg` starts with, or 0: the
/// envelope line that local(8) and procmail put before a message, which is
/// not part of it.
pub fn mbox_from_line_len(msg: &[u8]) -> usize {
    if msg.starts_with(b"From ") {
        line_end(msg, 0)
    } else {
        0
    }
}

/// The field name of a header line (RFC 5322 section 2.2: printable US-ASCII
/// except colon; obsolete whitespace before the colon allowed).
fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = trim_trailing_wsp(&line[..colon]);
    let ok = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':');
    ok.then_some(name)
}

/// A colon with no space before it: meant as a field, but the name is bad.
fn looks_like_field(line: &[u8]) -> bool {
    line.iter()
        .position(|&b| b == b':')
        .is_some_and(|c| !line[..c].contains(&b' '))
}

fn trim_trailing_wsp(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    &s[..end]
}

/// Offset just past the `\n` ending the line that starts at `pos`.
fn line_end(msg: &[u8], pos: usize) -> usize {
    memchr::memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i + 1)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `Received: by HOST (postern) id QUEUEID; DATE` — no client address and no
/// recipient: Postfix's own Received: above ours already names the client,
/// and postern adds nothing that tells who wrote to whom.
pub fn received_header(
    hostname: &str,
    tool: &str,
    queue_id: &str,
    now: SystemTime,
    eol: &str,
) -> String {
    format!(
        "Received: by {hostname} ({tool}) id {queue_id};{eol}\t{}{eol}",
        rfc5322_date(now)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(msg: &[u8]) -> Result<Inspection, MessageError> {
        inspect(msg, 1000, 3)
    }

    #[test]
    fn ordinary_messages() {
        let i = check(b"From: a@b\nSubject: hi\n\nbody\n").unwrap();
        assert_eq!(
            (i.eol, i.skip, i.eight_bit, i.hops, i.missing_separator_at),
            ("\n", 0, false, 0, None)
        );
        let i = check(b"Received: x\r\nSubject : obs\r\n\tfolded\r\n\r\nb\xc3\xa4dy\r\n").unwrap();
        assert_eq!((i.eol, i.eight_bit, i.hops), ("\r\n", true, 1));
        // Only a header section, no body: legal.
        assert!(check(b"Subject: x\n").is_ok());
        // UTF-8 in a header (RFC 6532).
        assert!(check("Subject: Grüße\n\nx\n".as_bytes()).unwrap().eight_bit);
    }

    #[test]
    fn mbox_from_line_is_skipped() {
        let msg = b"From alice@example.org Mon Nov 23 16:31:44 2026\nSubject: x\n\nbody\n";
        let i = check(msg).unwrap();
        assert_eq!(&msg[i.skip..i.skip + 8], b"Subject:");
    }

    #[test]
    fn malformed_messages() {
        assert_eq!(check(b""), Err(MessageError::Empty));
        assert_eq!(check(b"\n\n"), Err(MessageError::Empty));
        assert_eq!(check(b"From x Mon\n"), Err(MessageError::Empty));
        assert_eq!(check(b"Subject: a\0b\n\n"), Err(MessageError::Nul(10)));
        assert_eq!(
            check(b"just some text\n\nbody"),
            Err(MessageError::NoHeader(1))
        );
        assert_eq!(
            check(b" folded first\n\nbody"),
            Err(MessageError::NoHeader(1))
        );
        assert_eq!(
            check(b"Subject: a\n: empty name\n\n"),
            Err(MessageError::BadFieldName(2))
        );
        assert_eq!(
            check(&[b'x'; 1001]),
            Err(MessageError::TooLarge {
                size: 1001,
                limit: 1000
            })
        );
        let hops = b"Received: 1\nReceived: 2\nDelivered-To: a\nReceived: 4\n\n";
        assert_eq!(check(hops), Err(MessageError::Loop { hops: 4, limit: 3 }));
        assert_eq!(check(hops).unwrap_err().to_failure().status, status::LOOP);
        assert_eq!(
            check(&[b'x'; 1001]).unwrap_err().to_failure().exit,
            Sysexit::Unavailable
        );
    }

    #[test]
    fn missing_separator_is_found() {
        let msg = b"Subject: a\nFrom: b\nthis is the body\nmore\n";
        assert_eq!(check(msg).unwrap().missing_separator_at, Some(19));
    }

    /// Mutated messages (fixed seed): inspection never panics, and a
    /// repaired separator always points at a line start inside the message.
    #[test]
    fn mutated_messages_never_panic() {
        let mut rng = crate::testing::XorShift::new(0x2545_F491_4F6C_DD1D);
        let mut next = move || rng.next();
        let base = b"From x\nReceived: a\r\nSubject: b\n\tc\nbody\n\nmore\n".to_vec();
        for _ in 0..20_000 {
            let mut m = base.clone();
            for _ in 0..(next() % 5 + 1) {
                let at = (next() as usize) % m.len().max(1);
                let byte = [b'\n', b'\r', b':', b' ', b'\t', 0, 0xff, b'F'][(next() % 8) as usize];
                match next() % 3 {
                    0 if !m.is_empty() => m[at] = byte,
                    1 => m.insert(at.min(m.len()), byte),
                    _ => m.truncate(at),
                }
            }
            if let Ok(i) = inspect(&m, 1 << 20, 50) {
                assert!(i.skip <= m.len());
                if let Some(at) = i.missing_separator_at {
                    assert!(at > i.skip && at < m.len() && m[at - 1] == b'\n');
                }
            }
        }
    }

    #[test]
    fn received_header_is_dated() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_451_504);
        let h = received_header("mx.example.org", "postern-receiver", "ABC", t, "\r\n");
        assert_eq!(
            h,
            "Received: by mx.example.org (postern-receiver) id ABC;\r\n\tMon, 23 Nov 2026 16:31:44 +0000\r\n"
        );
    }
}

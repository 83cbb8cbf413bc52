//! What the rewriter adds to a message: `X-Original-To:` when absent and
//! its `Received:` line, both in front of the header section (RFC 5322
//! section 3.6.7: trace fields go on top). The body and every existing
//! header stay byte for byte as they were, so the sender's DKIM signature
//! (RFC 6376) still verifies at the next hop.

use std::time::SystemTime;

use crate::mail::message;

pub use crate::mail::header::eol;

/// True when the header section has a field called `name` (compared
/// without regard to case).
pub fn has_field(msg: &[u8], name: &str) -> bool {
    let mut rest = msg;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        if line == b"\n" || line == b"\r\n" {
            return false;
        }
        if let Some(colon) = memchr::memchr(b':', line)
            && line[..colon]
                .trim_ascii_end()
                .eq_ignore_ascii_case(name.as_bytes())
        {
            return true;
        }
        rest = &rest[end..];
    }
    false
}

/// The lines to put in front: `X-Original-To:` for `original` (only when
/// the message has none), then the `Received:` line.
pub fn trace(
    msg: &[u8],
    original: Option<&str>,
    hostname: &str,
    queue_id: &str,
    now: SystemTime,
) -> String {
    let eol = eol(msg);
    let mut out = String::new();
    if let Some(o) = original
        && !has_field(msg, "X-Original-To")
    {
        out.push_str("X-Original-To: ");
        out.push_str(o);
        out.push_str(eol);
    }
    out.push_str(&message::received_header(
        hostname,
        "postern-rewriter",
        queue_id,
        now,
        eol,
    ));
    out
}

/// `lines` then `msg`, in one new buffer.
pub fn prepend(lines: &str, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() + msg.len());
    out.extend_from_slice(lines.as_bytes());
    out.extend_from_slice(msg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_in_the_header_only() {
        let m = b"Subject: x\r\nx-original-to : a@b\r\n\r\nX-Original-To: c@d\r\n";
        assert!(has_field(m, "X-Original-To"));
        assert_eq!(eol(m), "\r\n");
        let m = b"Subject: x\n\nX-Original-To: c@d\n";
        assert!(!has_field(m, "X-Original-To"));
        assert_eq!(eol(m), "\n");
        assert!(!has_field(b"", "X-Original-To"));
        assert!(!has_field(b"no colon at all", "no colon at all"));
    }

    #[test]
    fn trace_lines_use_the_message_line_ending() {
        let t = trace(
            b"Subject: x\r\n\r\nbody",
            Some("a@b.org"),
            "mx",
            "Q1",
            SystemTime::UNIX_EPOCH,
        );
        assert!(
            t.starts_with(
                "X-Original-To: a@b.org\r\nReceived: by mx (postern-rewriter) id Q1;\r\n\t"
            ),
            "{t}"
        );
        assert!(t.ends_with("\r\n"));
        let t = trace(
            b"X-Original-To: z@y\n\n",
            Some("a@b.org"),
            "mx",
            "Q1",
            SystemTime::UNIX_EPOCH,
        );
        assert!(t.starts_with("Received:"), "{t}");
        assert_eq!(prepend("A: b\n", b"C: d\n\n"), b"A: b\nC: d\n\n");
    }
}

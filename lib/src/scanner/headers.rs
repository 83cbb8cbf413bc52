//! The scanner's edits of a message's header section: the fields it adds
//! (`Authentication-Results:`, `X-Postern-*:`), the ones it drops because
//! only it may write them, and the Subject prefix of a message tagged as
//! phishing. Everything else stays byte for byte, the body included.

use crate::mail::header;

/// The prefix of the fields the scanner writes.
pub const TAG_PREFIX: &str = "X-Postern-";

/// The fields the scanner writes; the same fields arriving with a message
/// are forgeries (or an earlier pass's) and are dropped. Other
/// `X-Postern-*` fields (the bouncer's `X-Postern-Queue-ID`) are left.
pub const TAGS: &[&str] = &[
    "X-Postern-Executable",
    "X-Postern-Phishing",
    "X-Postern-Adult",
    "X-Postern-Sender",
    "X-Postern-Virus-Scan",
];

/// Longest line the scanner writes in a header field, before folding.
const FOLD_AT: usize = 78;

/// What to do to one message's header section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// Fields added at the top, in order, as `(name, value)`. Values are
    /// cleaned of control characters and folded here.
    pub add: Vec<(String, String)>,
    /// Put before the Subject (a message without one gets one).
    pub subject_prefix: Option<String>,
}

/// The message with `edit` applied. Fields dropped: the [`TAGS`] fields,
/// and every `Authentication-Results:` field whose authserv-id is
/// `authserv_id` (RFC 8601 section 5: a receiver removes the ones that
/// claim to be its own before adding its own).
pub fn apply(message: &[u8], authserv_id: &str, edit: &Edit) -> Vec<u8> {
    let eol = header::eol(message);
    let end = header::header_end(message);
    let mut out = Vec::with_capacity(message.len() + 512);
    for (name, value) in &edit.add {
        out.extend_from_slice(field(name, value, eol).as_bytes());
    }
    let mut subject_done = edit.subject_prefix.is_none();
    for f in header::fields(&message[..end]) {
        if is_ours(&f, authserv_id) {
            continue;
        }
        if let (false, Some(prefix)) = (subject_done, &edit.subject_prefix)
            && f.is("Subject")
        {
            subject_done = true;
            out.extend_from_slice(&prefixed_subject(f.raw, prefix));
            continue;
        }
        out.extend_from_slice(f.raw);
    }
    if !subject_done && let Some(prefix) = &edit.subject_prefix {
        let prefix = clean(prefix);
        out.extend_from_slice(format!("Subject: {}{eol}", prefix.trim_end()).as_bytes());
    }
    out.extend_from_slice(&message[end..]);
    out
}

/// True for a field the scanner alone writes.
fn is_ours(f: &header::Field<'_>, authserv_id: &str) -> bool {
    if TAGS.iter().any(|t| f.is(t)) {
        return true;
    }
    if !f.is("Authentication-Results") {
        return false;
    }
    // The authserv-id is the first token of the value, up to `;` (RFC
    // 8601 section 2.2), possibly followed by a version number.
    let value = f.value();
    let id = value
        .split(';')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("");
    id.eq_ignore_ascii_case(authserv_id)
}

/// `Subject: PREFIX rest`, the rest of the field (folding included) as it was.
fn prefixed_subject(raw: &[u8], prefix: &str) -> Vec<u8> {
    let colon = memchr::memchr(b':', raw).map_or(raw.len(), |c| c + 1);
    let (head, rest) = raw.split_at(colon);
    let value_start = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    let prefix = clean(prefix);
    if rest[value_start..].starts_with(prefix.as_bytes()) {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len() + prefix.len() + 1);
    out.extend_from_slice(head);
    out.push(b' ');
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(&rest[value_start..]);
    out
}

/// `name: value` folded at spaces to lines of about [`FOLD_AT`]
/// characters, each continuation line starting with a tab.
pub fn field(name: &str, value: &str, eol: &str) -> String {
    let value = clean(value);
    let mut out = String::with_capacity(name.len() + value.len() + 8);
    out.push_str(name);
    out.push(':');
    let mut line_len = out.len();
    for (i, word) in value.split(' ').filter(|w| !w.is_empty()).enumerate() {
        if i > 0 && line_len + 1 + word.len() > FOLD_AT {
            out.push_str(eol);
            out.push('\t');
            line_len = 8;
        } else {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out.push_str(eol);
    out
}

/// Text fit for a header value: printable ASCII and spaces only (folding
/// whitespace already in it becomes one space).
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' | '\n' | '\t' => out.push(' '),
            c if c == ' ' || c.is_ascii_graphic() => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from a\n\tby b\nX-Postern-Phishing: forged\nX-Postern-Queue-ID: 1234\nAuthentication-Results: mx.example.com; spf=pass\nAuthentication-Results: other.example; spf=fail\nx-postern-virus-scan: forged too\nSubject: hello\n  world\nFrom: a@example.org\n\nbody\nX-Postern-Phishing: in the body stays\n";

    #[test]
    fn our_fields_are_dropped_others_kept_byte_for_byte() {
        let out = apply(MSG, "mx.example.com", &Edit::default());
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("forged"));
        assert!(!text.contains("mx.example.com; spf=pass"));
        assert!(text.contains("Authentication-Results: other.example; spf=fail\n"));
        assert!(text.contains("Received: from a\n\tby b\n"));
        assert!(text.contains("X-Postern-Queue-ID: 1234\n"));
        assert!(text.ends_with("\nbody\nX-Postern-Phishing: in the body stays\n"));
        assert!(text.contains("Subject: hello\n  world\n"));
    }

    #[test]
    fn added_fields_come_first_folded_and_clean() {
        let long = "word ".repeat(40);
        let edit = Edit {
            add: vec![
                (
                    "Authentication-Results".into(),
                    "mx.example.com; spf=pass".into(),
                ),
                (
                    "X-Postern-Phishing".into(),
                    format!("{long}\r\nInjected: yes"),
                ),
            ],
            subject_prefix: None,
        };
        let out = String::from_utf8(apply(MSG, "mx.example.com", &edit)).unwrap();
        assert!(out.starts_with(
            "Authentication-Results: mx.example.com; spf=pass\nX-Postern-Phishing: word"
        ));
        assert!(!out.contains("\nInjected"));
        for line in out.lines() {
            assert!(line.len() <= FOLD_AT + 8, "{line:?}");
        }
    }

    #[test]
    fn subject_prefix_is_added_once_and_kept_crlf() {
        let msg = b"From: a@b\r\nSubject:  Your account\r\n\r\nbody\r\n";
        let edit = Edit {
            add: vec![],
            subject_prefix: Some("[PHISHING?] ".into()),
        };
        let once = apply(msg, "mx", &edit);
        assert_eq!(
            once,
            b"From: a@b\r\nSubject: [PHISHING?] Your account\r\n\r\nbody\r\n"
        );
        assert_eq!(apply(&once, "mx", &edit), once);
        let none = apply(b"From: a@b\n\nbody\n", "mx", &edit);
        assert_eq!(none, b"From: a@b\nSubject: [PHISHING?]\n\nbody\n");
    }

    #[test]
    fn a_message_without_a_header_section_is_not_broken() {
        let edit = Edit {
            add: vec![("X-Postern-Adult".into(), "x".into())],
            subject_prefix: None,
        };
        assert_eq!(apply(b"", "mx", &edit), b"X-Postern-Adult: x\n");
        assert_eq!(
            apply(b"no header here\n", "mx", &edit),
            b"X-Postern-Adult: x\nno header here\n"
        );
    }
}

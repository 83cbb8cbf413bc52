//! Small text helpers every module needs, each written once: control
//! characters out of a line, bounded text cut on a character boundary,
//! hex, and `%XX` escapes.
//!
//! Text from outside (an SMTP reply, a HELO name, a header) goes through
//! [`clean`] or [`bounded`] before it is written into a line of ours — a
//! job envelope field, a log line, a status line — so it can neither end
//! that line early nor forge another.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `value` with every control character (CR, LF, TAB, ESC, NUL, DEL, C1)
/// replaced by a space. Borrowed when there is nothing to replace.
pub fn clean(value: &str) -> Cow<'_, str> {
    if value.chars().any(char::is_control) {
        value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        value.into()
    }
}

/// [`clean`], then runs of spaces folded to one, then cut to at most
/// `max` bytes on a character boundary (with `...` at the end when cut).
/// For text from outside that is kept: a relay's reply, a diagnostic.
pub fn bounded(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max));
    let mut space = false;
    for c in value.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        out.push(c);
    }
    if out.len() <= max {
        return out;
    }
    const ELLIPSIS: &str = "...";
    let room = if max > ELLIPSIS.len() {
        max - ELLIPSIS.len()
    } else {
        max
    };
    let kept = cut(&out, room).len();
    out.truncate(kept);
    if room < max {
        out.push_str(ELLIPSIS);
    }
    out
}

/// The longest start of `value` of at most `max` bytes that ends on a
/// character boundary.
pub fn cut(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Upper-case hex of `bytes`.
pub fn hex_upper(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// Appends `c` as `%XX` escapes, one per UTF-8 byte, upper-case hex.
pub fn push_percent_encoded(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        let _ = write!(out, "%{b:02X}");
    }
}

/// `value` with every character for which `escape(index, char)` is true
/// written as `%XX` escapes of its UTF-8 bytes.
pub fn percent_encode(value: &str, escape: impl Fn(usize, char) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        if escape(i, c) {
            push_percent_encoded(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `%XX` escapes decoded (RFC 3986 section 2.1); `None` when a `%` is
/// not followed by two hex digits.
pub fn percent_decode(value: &str) -> Option<Vec<u8>> {
    percent_decoded(value, true)
}

/// [`percent_decode`] that keeps a broken escape as it is, as a browser
/// reads a link.
pub fn percent_decode_lenient(value: &str) -> Vec<u8> {
    percent_decoded(value, false).unwrap_or_default()
}

fn percent_decoded(value: &str, strict: bool) -> Option<Vec<u8>> {
    let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match (c, hex(b.get(i + 1)), hex(b.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b'%', _, _) if strict => return None,
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_strict_and_lenient() {
        assert_eq!(
            percent_decode("a%2bb%2F%c3%a9").unwrap(),
            "a+b/é".as_bytes()
        );
        assert_eq!(percent_decode("plain").unwrap(), b"plain");
        for broken in ["%", "%2", "%zz", "a%g1"] {
            assert_eq!(percent_decode(broken), None, "{broken:?}");
        }
        assert_eq!(percent_decode_lenient("100%25 %zz%41"), b"100% %zzA");
    }

    #[test]
    fn clean_replaces_every_control_character() {
        assert_eq!(clean("a\r\nb\tc\u{1b}[0m\u{85}d"), "a  b c [0m d");
        assert!(matches!(clean("plain text"), Cow::Borrowed(_)));
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("  450 try\r\n  later  ", 100), "450 try later");
        let long = "é".repeat(300);
        let b = bounded(&long, 101);
        assert!(b.len() <= 101 && b.ends_with("..."), "{}", b.len());
        assert!(b.starts_with("éé"));
        assert_eq!(bounded("abcdef", 2), "ab");
        assert_eq!(bounded("", 10), "");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("aé", 3), "aé");
    }

    #[test]
    fn hex_and_percent() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(hex_upper(&[0x8f, 0x3a]), "8F3A");
        assert_eq!(
            percent_encode("a/b%é", |_, c| !c.is_ascii_alphanumeric()),
            "a%2Fb%25%C3%A9"
        );
        assert_eq!(percent_encode(".x.", |i, c| i == 0 && c == '.'), "%2Ex.");
    }
}

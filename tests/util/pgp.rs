//! Reading PGP/MIME output in tests: the entity a reader gets back after
//! decrypting, as the original message gives it, and the armored part.

#![allow(dead_code)]

/// The original MIME entity of `msg`: its Content-* fields as they were,
/// the empty line, the body.
pub fn entity(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    let mut pos = 0;
    for line in msg.split_inclusive(|&b| b == b'\n') {
        pos += line.len();
        if line == b"\n" || line == b"\r\n" {
            out.extend_from_slice(line);
            break;
        }
        if line[0] != b' ' && line[0] != b'\t' {
            keep = line.len() > 8 && line[..8].eq_ignore_ascii_case(b"content-");
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&msg[pos..]);
    out
}

/// The armored OpenPGP message inside a PGP/MIME message.
pub fn armored(msg: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg);
    let start = text
        .find("-----BEGIN PGP MESSAGE-----")
        .unwrap_or_else(|| panic!("no armored part in:\n{text}"));
    let end = text.find("-----END PGP MESSAGE-----").expect("armor end") + 25;
    text[start..end].as_bytes().to_vec()
}

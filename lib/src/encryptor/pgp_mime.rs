//! PGP/MIME (RFC 3156 section 4) around a message: which of its bytes
//! are encrypted, and the `multipart/encrypted` message around them.
//!
//! The encrypted part is the original MIME entity whole: the message's
//! `Content-*` fields exactly as they were (folding included), the empty
//! line, and the body byte for byte, so a reader that decrypts it shows
//! the message as it was sent, attachments and charsets included. Every
//! other header stays outside, in its order, so routing and threading
//! still work; only `MIME-Version` and the new `Content-Type` are ours.
//!
//! With protected headers (the "v1" scheme of
//! draft-autocrypt-lamps-protected-headers, which Thunderbird, K-9 and
//! Enigmail read) the entity also carries copies of the fields that say
//! what the message is about, its `Content-Type` gets
//! `protected-headers="v1"`, and the outer `Subject:` becomes `...`.

use crate::mail::header::{self, Field};

/// Why a message is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encrypted {
    /// `multipart/encrypted` at the top (PGP/MIME, or anything else of
    /// that type).
    PgpMime,
    /// `application/pkcs7-mime` enveloped (or authenveloped) data, or with
    /// no `smime-type` (then taken as encrypted: never encrypt twice).
    SMime,
    /// An ASCII-armored OpenPGP message in the body (inline PGP).
    InlinePgp,
}

impl Encrypted {
    pub fn as_str(self) -> &'static str {
        match self {
            Encrypted::PgpMime => "PGP/MIME",
            Encrypted::SMime => "S/MIME",
            Encrypted::InlinePgp => "inline PGP",
        }
    }
}

const ARMOR_BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";

/// Whether `msg` is already encrypted, and how.
pub fn already_encrypted(msg: &[u8]) -> Option<Encrypted> {
    let end = header::header_end(msg);
    if let Some(ct) = header::fields(&msg[..end]).find(|f| f.is("Content-Type")) {
        let ct = mailparse::parse_content_type(&ct.value());
        let mime = ct.mimetype.to_ascii_lowercase();
        if mime == "multipart/encrypted" {
            return Some(Encrypted::PgpMime);
        }
        if mime == "application/pkcs7-mime" || mime == "application/x-pkcs7-mime" {
            let kind = ct.params.get("smime-type").map(|t| t.to_ascii_lowercase());
            if matches!(
                kind.as_deref(),
                None | Some("enveloped-data" | "authenveloped-data")
            ) {
                return Some(Encrypted::SMime);
            }
        }
    }
    let body = &msg[header::body_start(msg)..];
    memchr::memmem::find_iter(body, ARMOR_BEGIN)
        .any(|at| at == 0 || body[at - 1] == b'\n')
        .then_some(Encrypted::InlinePgp)
}

/// Fields copied into the encrypted entity with protected headers.
const PROTECTED: &[&str] = &[
    "Subject",
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Followup-To",
    "Date",
    "Message-ID",
    "References",
    "In-Reply-To",
];

/// A message taken apart for encryption: the entity to encrypt is
/// `entity_head` followed by `body`; the result is `outer_head`, the
/// armored encrypted entity, then `tail`.
#[derive(Debug)]
pub struct Wrapping<'a> {
    pub outer_head: Vec<u8>,
    pub entity_head: Vec<u8>,
    pub body: &'a [u8],
    pub tail: Vec<u8>,
    /// The line end of the message (its first line's), used for every
    /// line added; the armored text must be written with it too.
    pub eol: &'static str,
}

/// Takes `msg` apart. `boundary` must not occur in armored text (letters,
/// digits and `-` after a prefix no armor line has).
pub fn wrap<'a>(msg: &'a [u8], boundary: &str, protected_headers: bool) -> Wrapping<'a> {
    let eol = header::eol(msg);
    let end = header::header_end(msg);
    let mut outer = Vec::with_capacity(end + 600);
    let mut entity = Vec::with_capacity(512);
    let mut copies = Vec::new();
    let mut has_type = false;
    for f in header::fields(&msg[..end]) {
        if f.name.len() > 8 && f.name[..8].eq_ignore_ascii_case(b"content-") {
            if f.is("Content-Type") && protected_headers && !has_type {
                push_with_parameter(&mut entity, f, eol);
            } else {
                push_line(&mut entity, f.raw, eol);
            }
            has_type |= f.is("Content-Type");
        } else if f.is("MIME-Version") {
            continue;
        } else if protected_headers && PROTECTED.iter().any(|p| f.is(p)) {
            push_line(&mut copies, f.raw, eol);
            if f.is("Subject") {
                outer.extend_from_slice(format!("Subject: ...{eol}").as_bytes());
            } else {
                push_line(&mut outer, f.raw, eol);
            }
        } else {
            push_line(&mut outer, f.raw, eol);
        }
    }
    if protected_headers {
        if !has_type {
            entity.extend_from_slice(
                format!(
                    "Content-Type: text/plain; charset=us-ascii; protected-headers=\"v1\"{eol}"
                )
                .as_bytes(),
            );
        }
        copies.extend_from_slice(&entity);
        entity = copies;
    }
    entity.extend_from_slice(eol.as_bytes());
    let lines = [
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";".to_owned(),
        format!(" boundary=\"{boundary}\""),
        String::new(),
        "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)".to_owned(),
        format!("--{boundary}"),
        "Content-Type: application/pgp-encrypted".to_owned(),
        "Content-Description: PGP/MIME version identification".to_owned(),
        String::new(),
        "Version: 1".to_owned(),
        String::new(),
        format!("--{boundary}"),
        "Content-Type: application/octet-stream; name=\"encrypted.asc\"".to_owned(),
        "Content-Description: OpenPGP encrypted message".to_owned(),
        "Content-Disposition: inline; filename=\"encrypted.asc\"".to_owned(),
        String::new(),
    ];
    for line in lines {
        outer.extend_from_slice(line.as_bytes());
        outer.extend_from_slice(eol.as_bytes());
    }
    let tail = format!("{eol}--{boundary}--{eol}").into_bytes();
    Wrapping {
        outer_head: outer,
        entity_head: entity,
        body: &msg[header::body_start(msg)..],
        tail,
        eol,
    }
}

/// A field as it was; a last field without a line end gets one.
fn push_line(out: &mut Vec<u8>, raw: &[u8], eol: &str) {
    out.extend_from_slice(raw);
    if !raw.ends_with(b"\n") {
        out.extend_from_slice(eol.as_bytes());
    }
}

/// `Content-Type` with `protected-headers="v1"` added at its end.
fn push_with_parameter(out: &mut Vec<u8>, f: Field<'_>, eol: &str) {
    out.extend_from_slice(header::trim_eol(f.raw).trim_ascii_end());
    out.extend_from_slice(format!(";{eol} protected-headers=\"v1\"{eol}").as_bytes());
}

/// A fresh boundary: `postern-` and 24 hex digits. No armor line starts
/// with `--p`, and base64 has no `-`.
pub fn boundary(random: [u8; 12]) -> String {
    format!("postern-{}", crate::mail::text::hex(&random))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(w: &Wrapping) -> Vec<u8> {
        [w.entity_head.as_slice(), w.body].concat()
    }

    #[test]
    fn the_entity_is_the_content_fields_and_the_body_as_they_were() {
        let msg = b"Received: x\r\nSubject: hi\r\nContent-Type: multipart/mixed;\r\n boundary=b\r\nMIME-Version: 1.0\r\ncontent-transfer-encoding: 8bit\r\nTo: a@b\r\n\r\n--b\r\n\xe9t\xe9\r\n--b--\r\n";
        let w = wrap(msg, "postern-00", false);
        assert_eq!(
            entity(&w),
            b"Content-Type: multipart/mixed;\r\n boundary=b\r\ncontent-transfer-encoding: 8bit\r\n\r\n--b\r\n\xe9t\xe9\r\n--b--\r\n"
        );
        let outer = String::from_utf8(w.outer_head.clone()).unwrap();
        assert!(outer.starts_with("Received: x\r\nSubject: hi\r\nTo: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"postern-00\"\r\n\r\n"));
        assert!(outer.contains("\r\n--postern-00\r\nContent-Type: application/pgp-encrypted\r\n"));
        assert!(outer.ends_with("filename=\"encrypted.asc\"\r\n\r\n"));
        assert_eq!(w.tail, b"\r\n--postern-00--\r\n");
        assert_eq!(outer.matches("MIME-Version").count(), 1);
        assert!(!outer.to_ascii_lowercase().contains("transfer-encoding"));
    }

    #[test]
    fn a_message_without_mime_fields_is_an_entity_with_none() {
        let w = wrap(b"Subject: x\nFrom: a@b\n\nplain\n", "postern-1", false);
        assert_eq!(entity(&w), b"\nplain\n");
        assert_eq!(w.eol, "\n");
        let w = wrap(b"Subject: x\nContent-Type: text/plain", "postern-1", false);
        assert_eq!(entity(&w), b"Content-Type: text/plain\n\n");
    }

    #[test]
    fn protected_headers_move_the_subject_inside() {
        let msg = b"Subject: secret plans\nFrom: A <a@b>\nX-Other: 1\nContent-Type: text/plain;\n charset=utf-8\n\nbody\n";
        let w = wrap(msg, "postern-2", true);
        assert_eq!(
            String::from_utf8(entity(&w)).unwrap(),
            "Subject: secret plans\nFrom: A <a@b>\nContent-Type: text/plain;\n charset=utf-8;\n protected-headers=\"v1\"\n\nbody\n"
        );
        let outer = String::from_utf8(w.outer_head).unwrap();
        assert!(outer.starts_with("Subject: ...\nFrom: A <a@b>\nX-Other: 1\nMIME-Version: 1.0\n"));
        assert!(!outer.contains("secret"));
        let w = wrap(b"Subject: s\n\nbody\n", "postern-3", true);
        assert_eq!(
            String::from_utf8(entity(&w)).unwrap(),
            "Subject: s\nContent-Type: text/plain; charset=us-ascii; protected-headers=\"v1\"\n\nbody\n"
        );
    }

    #[test]
    fn encrypted_messages_are_recognised() {
        let e = |m: &str| already_encrypted(m.as_bytes());
        assert_eq!(
            e(
                "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x\n\n"
            ),
            Some(Encrypted::PgpMime)
        );
        assert_eq!(
            e(
                "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n\nMIAG"
            ),
            Some(Encrypted::SMime)
        );
        assert_eq!(
            e("Content-Type: application/x-pkcs7-mime; name=smime.p7m\n\nMIAG"),
            Some(Encrypted::SMime)
        );
        assert_eq!(
            e("Content-Type: application/pkcs7-mime; smime-type=signed-data\n\nMIAG"),
            None
        );
        assert_eq!(
            e(
                "Subject: x\n\nHi,\n-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n"
            ),
            Some(Encrypted::InlinePgp)
        );
        assert_eq!(
            e("Subject: x\n\n-----BEGIN PGP MESSAGE-----\n"),
            Some(Encrypted::InlinePgp)
        );
        // Named in a sentence, or a signed message: not encrypted.
        assert_eq!(
            e("Subject: x\n\nit starts with -----BEGIN PGP MESSAGE-----\n"),
            None
        );
        assert_eq!(
            e("Subject: x\n\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n"),
            None
        );
        assert_eq!(e("Content-Type: multipart/signed; protocol=x\n\n"), None);
        // The marker in a header is not a body.
        assert_eq!(e("Subject: -----BEGIN PGP MESSAGE-----\n\nhi\n"), None);
    }

    #[test]
    fn boundaries_are_fresh_and_armor_safe() {
        let b = boundary([0xab; 12]);
        assert_eq!(b, "postern-abababababababababababab");
        assert!(b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }
}

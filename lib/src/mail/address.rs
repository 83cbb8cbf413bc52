//! Envelope addresses: the `MAIL FROM` and `RCPT TO` paths of RFC 5321
//! section 4.1.2, as Postfix hands them to a pipe(8) command.
//!
//! This is a guard, not a full RFC 5321 parser: it keeps out what could
//! break a protocol line or a job stream (control characters anywhere;
//! angle brackets, spaces and the like outside a quoted local part) and
//! what no MTA would route (no domain, over-long parts). Quoted local parts
//! (RFC 5321 Quoted-string, which may hold `<`, `>` and spaces) and UTF-8
//! (RFC 6531) pass.

use std::fmt;

/// RFC 5321 section 4.5.3.1.3: a path is at most 256 octets with its angle
/// brackets, so an address at most 254. The 64-octet local-part limit of
/// section 4.5.3.1.1 is not enforced: SRS addresses (and the addresses of
/// other forwarders) are longer, Postfix accepts them, and refusing one
/// here would bounce a whole pipe(8) batch for a limit nobody else keeps.
pub const MAX_ADDRESS: usize = 254;
/// RFC 5321 section 4.5.3.1.2.
const MAX_DOMAIN: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("address contains a control character (CR, LF, NUL or similar)")]
    Control,
    #[error("address has no @domain part")]
    NoDomain,
    #[error("address local part is empty")]
    LocalEmpty,
    #[error("address is longer than {MAX_ADDRESS} octets")]
    TooLong,
    #[error("address domain is longer than 255 octets")]
    DomainLength,
    #[error("address contains a character not allowed outside quotes")]
    BadCharacter,
    #[error("address domain is not a host name or an address literal")]
    BadDomain,
}

/// A validated envelope mailbox `local@domain`, kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(String);

impl Address {
    /// Validates an address given with or without surrounding angle brackets.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let s = strip_brackets(input);
        check(s)?;
        Ok(Address(s.to_owned()))
    }

    /// Validates an address built in a `String` (no angle brackets), keeping
    /// the `String` rather than copying it: for addresses made per message,
    /// like SRS addresses.
    pub fn from_string(s: String) -> Result<Address, AddressError> {
        check(&s)?;
        Ok(Address(s))
    }

    /// An address put together from the parts of valid ones, as the SRS
    /// codec does per message: keeping it valid is the builder's job, so
    /// the checks run only in debug builds (the builder's tests check its
    /// results with [`Address::parse`]).
    pub(crate) fn from_valid_parts(s: String) -> Address {
        debug_assert_eq!(check(&s), Ok(()), "{s:?}");
        Address(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the last `@`, as given (quoted or not).
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// True when the address needs the SMTPUTF8 extension (RFC 6531).
    pub fn is_utf8(&self) -> bool {
        !self.0.is_ascii()
    }
}

/// The checks of [`Address::parse`], on an address without brackets.
fn check(s: &str) -> Result<(), AddressError> {
    if s.is_empty() {
        return Err(AddressError::Empty);
    }
    if has_control(s) {
        return Err(AddressError::Control);
    }
    if s.len() > MAX_ADDRESS {
        return Err(AddressError::TooLong);
    }
    let at = memchr::memrchr(b'@', s.as_bytes()).ok_or(AddressError::NoDomain)?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.is_empty() {
        return Err(AddressError::LocalEmpty);
    }
    if domain.is_empty() {
        return Err(AddressError::NoDomain);
    }
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::DomainLength);
    }
    check_local(local)?;
    check_domain(domain)
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The envelope sender: a mailbox, or the null reverse-path `<>` used by
/// bounces (RFC 5321 section 4.5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    Null,
    Mailbox(Address),
}

impl Sender {
    /// `""` and `"<>"` are the null sender (Postfix's pipe(8) passes the
    /// former with `null_sender=`).
    pub fn parse(input: &str) -> Result<Sender, AddressError> {
        if strip_brackets(input).is_empty() {
            return Ok(Sender::Null);
        }
        Address::parse(input).map(Sender::Mailbox)
    }

    pub fn address(&self) -> Option<&Address> {
        match self {
            Sender::Null => None,
            Sender::Mailbox(a) => Some(a),
        }
    }
}

impl fmt::Display for Sender {
    /// Always in angle brackets: `<>` or `<a@example.org>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sender::Null => f.write_str("<>"),
            Sender::Mailbox(a) => write!(f, "<{a}>"),
        }
    }
}

fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s)
}

/// `char::is_control` over the string, byte by byte when it is ASCII (the
/// usual case: addresses are checked per message and per SRS rewrite).
fn has_control(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        s.chars().any(char::is_control)
    }
}

// The checks below compare bytes with ASCII characters: in UTF-8 every
// byte of a multi-byte character is 0x80 or above, so they cannot match
// part of one.

fn check_local(local: &str) -> Result<(), AddressError> {
    if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        // A quoted string (RFC 5321 Quoted-string): anything printable.
        return Ok(());
    }
    if local
        .bytes()
        .any(|b| matches!(b, b' ' | b'<' | b'>' | b'"' | b'\\' | b','))
    {
        return Err(AddressError::BadCharacter);
    }
    Ok(())
}

/// The domain checks of [`Address::parse`] alone, for a builder of
/// addresses whose other parts are known to be valid.
pub(crate) fn check_domain(domain: &str) -> Result<(), AddressError> {
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ok = !literal.is_empty()
            && literal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-'));
        return if ok {
            Ok(())
        } else {
            Err(AddressError::BadDomain)
        };
    }
    // Letters, digits and `-` in ASCII; anything beyond ASCII (a U-label).
    let labels_ok = domain.as_bytes().split(|&b| b == b'.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with(b"-")
            && !label.ends_with(b"-")
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || !b.is_ascii())
    });
    if labels_ok {
        Ok(())
    } else {
        Err(AddressError::BadDomain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_quoted_literal_and_utf8() {
        for a in [
            "bob@example.org",
            "<bob+tag@mail.example.org>",
            "\"john doe\"@example.org",
            "postmaster@[127.0.0.1]",
            "jörg@bücher.example",
        ] {
            assert!(Address::parse(a).is_ok(), "{a}");
        }
        assert!(Address::parse("jörg@bücher.example").is_ok_and(|a| a.is_utf8()));
        assert_eq!(
            Address::parse("<b@x.org>").map(|a| a.to_string()),
            Ok("b@x.org".into())
        );
    }

    #[test]
    fn refuses_what_could_break_a_line() {
        assert_eq!(
            Address::parse("a@b.org\r\nRCPT TO:<c@d>"),
            Err(AddressError::Control)
        );
        assert_eq!(Address::parse("a\0@b.org"), Err(AddressError::Control));
        assert_eq!(Address::parse("a b@b.org"), Err(AddressError::BadCharacter));
        assert_eq!(Address::parse("a>@b.org"), Err(AddressError::BadCharacter));
        assert_eq!(Address::parse("nodomain"), Err(AddressError::NoDomain));
        assert_eq!(Address::parse("a@"), Err(AddressError::NoDomain));
        assert_eq!(Address::parse("@b.org"), Err(AddressError::LocalEmpty));
        assert_eq!(Address::parse(""), Err(AddressError::Empty));
        assert_eq!(Address::parse("a@-b.org"), Err(AddressError::BadDomain));
        assert_eq!(Address::parse("a@b..org"), Err(AddressError::BadDomain));
        let long = format!("{}@b.org", "x".repeat(MAX_ADDRESS - 5));
        assert_eq!(Address::parse(&long), Err(AddressError::TooLong));
    }

    #[test]
    fn srs_addresses_longer_than_64_octets_pass() {
        // An SRS1 address as postsrsd writes it: a 90-octet local part.
        let srs = "SRS1=HHH=forwarder.example=SRS0=6q0I=AB=sender.example.org=\
                   a.very.long.local.part@srs.example.net";
        let a = Address::parse(srs).expect("SRS address");
        assert!(a.as_str().split('@').next().unwrap().len() > 64);
        let longest = format!("{}@b.org", "x".repeat(MAX_ADDRESS - 6));
        assert_eq!(
            Address::parse(&longest).map(|a| a.as_str().len()),
            Ok(MAX_ADDRESS)
        );
    }

    #[test]
    fn null_sender_forms() {
        assert_eq!(Sender::parse(""), Ok(Sender::Null));
        assert_eq!(Sender::parse("<>"), Ok(Sender::Null));
        assert_eq!(
            Sender::parse("a@b.org").map(|s| s.to_string()),
            Ok("<a@b.org>".into())
        );
        assert!(Sender::parse("a@b.org\n").is_err());
    }
}

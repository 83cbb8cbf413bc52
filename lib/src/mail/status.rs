//! Enhanced mail system status codes (RFC 3463): `class.subject.detail`,
//! as they appear at the start of a tool's status line (which pipe(8)
//! copies into the delivery status), in a recipient's status in a job, and
//! in a DSN.
//!
//! The codes postern itself decides on are the constants below, named
//! after their meaning in RFC 3463; a code from a remote server is parsed
//! and kept as given.

use std::fmt;

/// One enhanced status code. Class 2 (success), 4 (persistent transient
/// failure) or 5 (permanent failure); subject and detail up to three digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status {
    class: u8,
    subject: u16,
    detail: u16,
}

impl Status {
    const fn new(class: u8, subject: u16, detail: u16) -> Status {
        Status {
            class,
            subject,
            detail,
        }
    }

    /// Parses `class.subject.detail` (RFC 3463 section 2): class 2, 4 or
    /// 5, subject and detail of one to three digits.
    pub fn parse(s: &str) -> Option<Status> {
        let mut parts = s.split('.');
        let mut number = |max_len: usize| {
            let p = parts.next()?;
            let ok = (1..=max_len).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| p.parse::<u16>().ok()).flatten()
        };
        let class = number(1)?;
        let subject = number(3)?;
        let detail = number(3)?;
        if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(Status::new(class as u8, subject, detail))
    }

    /// Parses a code of the given class only (`4.x.x` or `5.x.x`).
    pub fn parse_class(s: &str, class: u8) -> Option<Status> {
        Status::parse(s).filter(|st| st.class == class)
    }

    pub fn class(self) -> u8 {
        self.class
    }

    /// Class 5: the recipient fails for good.
    pub fn is_permanent(self) -> bool {
        self.class == 5
    }

    /// Class 4: try again later.
    pub fn is_transient(self) -> bool {
        self.class == 4
    }

    /// The same subject and detail under another class: a local problem
    /// that must not bounce mail becomes 4.x.x.
    pub fn with_class(self, class: u8) -> Status {
        Status::new(class, self.subject, self.detail)
    }

    /// `X.0.0` of a reply class: what a reply without an enhanced code
    /// means (RFC 3463 section 3.1).
    pub fn undefined(class: u8) -> Status {
        Status::new(class, 0, 0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// 2.0.0 Delivered.
pub const SUCCESS: Status = Status::new(2, 0, 0);
/// 4.0.0 Other or undefined status, transient.
pub const TRANSIENT: Status = Status::new(4, 0, 0);
/// 5.0.0 Other or undefined status, permanent.
pub const PERMANENT: Status = Status::new(5, 0, 0);
/// 5.0.0 as well, for recipients of a message the operator deleted from
/// the queue with `postern-queue delete --bounce`: RFC 3463 has no more
/// precise code for it, and the diagnostic says what happened.
pub const DELETED_BY_OPERATOR: Status = PERMANENT;
/// 5.1.1 Bad destination mailbox address (no such mailbox).
pub const NO_SUCH_MAILBOX: Status = Status::new(5, 1, 1);
/// 5.1.3 Bad destination mailbox address syntax.
pub const BAD_RECIPIENT_SYNTAX: Status = Status::new(5, 1, 3);
/// 5.1.7 Bad sender's mailbox address syntax.
pub const BAD_SENDER_SYNTAX: Status = Status::new(5, 1, 7);
/// 4.2.0 Other or undefined mailbox status (a locked mailbox).
pub const MAILBOX_BUSY: Status = Status::new(4, 2, 0);
/// 5.2.0 Other or undefined mailbox status, permanent.
pub const MAILBOX_REFUSED: Status = Status::new(5, 2, 0);
/// 4.2.1 / 5.2.1 Mailbox disabled, not accepting messages (an alias
/// switched off: `!!name` for now, `!!!name` or disabled for good).
pub const MAILBOX_DISABLED: Status = Status::new(5, 2, 1);
/// 5.2.2 Mailbox full.
pub const MAILBOX_FULL: Status = Status::new(5, 2, 2);
/// 4.3.0 Other or undefined mail system status: a local problem.
pub const SYSTEM: Status = Status::new(4, 3, 0);
/// 4.3.1 Mail system full (the disk).
pub const SYSTEM_FULL: Status = Status::new(4, 3, 1);
/// 5.3.4 Message too big for system.
pub const TOO_BIG: Status = Status::new(5, 3, 4);
/// 5.3.3 System not capable of selected features (webhook targets).
pub const NOT_CAPABLE: Status = Status::new(5, 3, 3);
/// 4.3.5 System incorrectly configured.
pub const MISCONFIGURED: Status = Status::new(4, 3, 5);
/// 4.5.0 Other or undefined protocol status: a reply that makes no
/// sense for the command it answers.
pub const PROTOCOL: Status = Status::new(4, 5, 0);
/// 4.4.2 Bad connection: no usable reply from the next hop.
pub const BAD_CONNECTION: Status = Status::new(4, 4, 2);
/// 4.7.5 Cryptographic failure: TLS required and not had.
pub const TLS_FAILURE: Status = Status::new(4, 7, 5);
/// 5.1.10 Recipient address has null MX (RFC 7505).
pub const NULL_MX: Status = Status::new(5, 1, 10);
/// 5.4.4 Unable to route: the domain has no mail host.
pub const NO_ROUTE: Status = Status::new(5, 4, 4);
/// 4.4.3 Directory server failure: a DNS lookup failed (SERVFAIL, no
/// answer in time, an answer that makes no sense). Never a bounce.
pub const DNS_FAILURE: Status = Status::new(4, 4, 3);
/// 5.4.6 Routing loop detected.
pub const LOOP: Status = Status::new(5, 4, 6);
/// 4.4.7 / 5.4.7 Delivery time expired.
pub const EXPIRED: Status = Status::new(5, 4, 7);
/// 5.5.3 Too many recipients.
pub const TOO_MANY_RECIPIENTS: Status = Status::new(5, 5, 3);
/// 5.5.4 Invalid command arguments (a bad search, say).
pub const BAD_ARGUMENTS: Status = Status::new(5, 5, 4);
/// 5.6.0 Other or undefined media error: a malformed message.
pub const BAD_MESSAGE: Status = Status::new(5, 6, 0);
/// 5.7.0 Other or undefined security status: refused by policy.
pub const POLICY: Status = Status::new(5, 7, 0);
/// 4.7.0 Over a rate limit: try again later.
pub const RATE_LIMITED: Status = Status::new(4, 7, 0);
/// 4.7.1 Delivery not authorized (yet): a domain not verified.
pub const NOT_AUTHORIZED: Status = Status::new(4, 7, 1);
/// 5.7.1 Delivery not authorized: the recipient requires encryption and
/// has no key.
pub const ENCRYPTION_NEEDED: Status = Status::new(5, 7, 1);
/// 5.7.1 Delivery not authorized, message refused: the scanner found a
/// virus, an executable attachment, phishing or adult content, or the
/// client or sender is listed.
pub const REFUSED: Status = Status::new(5, 7, 1);
/// 5.7.23 SPF validation failed (RFC 7372).
pub const SPF_FAILED: Status = Status::new(5, 7, 23);
/// 5.7.26 Multiple authentication checks failed: DMARC (RFC 7372).
pub const DMARC_FAILED: Status = Status::new(5, 7, 26);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(Status::parse("5.1.1"), Some(NO_SUCH_MAILBOX));
        assert_eq!(
            Status::parse("4.4.100").map(|s| s.to_string()).as_deref(),
            Some("4.4.100")
        );
        assert_eq!(Status::parse("2.0.0"), Some(SUCCESS));
        for bad in [
            "5.1", "5.1.1.1", "3.1.1", "5.x.1", "5.1.1000", "", "5..1", "05.1.1", "5.1.1 ",
        ] {
            assert_eq!(Status::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Status::parse_class("4.1.1", 5), None);
        assert_eq!(NO_SUCH_MAILBOX.with_class(4).to_string(), "4.1.1");
        assert!(EXPIRED.is_permanent() && !SYSTEM.is_permanent() && SYSTEM.is_transient());
        assert_eq!(Status::undefined(4), TRANSIENT);
    }
}

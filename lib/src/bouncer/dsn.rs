//! A delivery status notification (RFC 3464) as a message: a
//! `multipart/report; report-type=delivery-status` (RFC 6522) with three
//! parts — a plain-language `text/plain` explanation, the
//! `message/delivery-status` fields, and the original, as
//! `text/rfc822-headers` or (RET=FULL, RFC 3461 section 4.3) whole as
//! `message/rfc822`.
//!
//! The message is put together with `mail-builder`: the report and the
//! original are raw parts (7bit or 8bit, never re-encoded), the text
//! part is encoded as mail-builder sees fit. Every line ends in CRLF, as
//! the deliverer sends mail anyway, and none is longer than 998 octets
//! (RFC 5322 section 2.1.1): the original is returned only when its lines
//! fit, and every field of the report is cut to fit. The
//! `message/delivery-status` part is 7-bit: a non-ASCII recipient is
//! written as a `utf-8` address in its xtext form (RFC 6533 section 3),
//! and a non-ASCII character in any other value as `?`.
//!
//! Time and ids are passed in: the same [`Notice`] gives the same bytes.

use std::fmt::Write as _;
use std::time::SystemTime;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use super::original::{HeadersOnly, MAX_LINE, Returned};
use super::policy::Action;
use crate::mail::address::Address;
use crate::mail::date;
use crate::mail::job::{QueueId, RcptStatus, Recipient};
use crate::mail::status;

/// Everything a notification says, with its time and ids fixed.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// Our host name: `MAILER-DAEMON@` it in `From:`, and the domain of
    /// the `Message-ID:`.
    pub hostname: &'a str,
    /// The name in `Reporting-MTA: dns; NAME` (the HELO name).
    pub reporting_mta: &'a str,
    /// Whom the notice is for (the original sender, SRS reversed).
    pub to: &'a Address,
    /// The original message's queue id.
    pub queue_id: &'a QueueId,
    /// The notice's own queue id: its `Message-ID:` and MIME boundary.
    pub notice_id: &'a QueueId,
    /// The ENVID the client gave (RFC 3461 section 4.4).
    pub envid: Option<&'a str>,
    /// When the original arrived.
    pub arrival: SystemTime,
    /// When this notice is written: its `Date:`.
    pub date: SystemTime,
    /// Until when delayed recipients are tried (arrival plus
    /// `maximal_queue_lifetime`).
    pub retry_until: SystemTime,
    /// The recipients reported, each with its action.
    pub recipients: Vec<(&'a Recipient, Action)>,
    /// What of the original goes with it.
    pub original: Returned<'a>,
}

impl Notice<'_> {
    /// The gravest action of the notice, which names it: a failure over
    /// a delay over a relay.
    pub fn action(&self) -> Action {
        self.recipients
            .iter()
            .map(|(_, a)| *a)
            .min()
            .unwrap_or(Action::Relayed)
    }

    pub fn subject(&self) -> &'static str {
        match self.action() {
            Action::Failed => "Undelivered Mail Returned to Sender",
            Action::Delayed => "Delayed Mail (still being retried)",
            Action::Relayed => "Successful Mail Delivery Report",
        }
    }
}

/// The notification as message bytes (CRLF line ends).
pub fn compose(n: &Notice<'_>) -> Vec<u8> {
    let boundary = format!("{}.{}/{}", n.notice_id, unix(n.date), ascii(n.hostname));
    let text = MimePart::new("text/plain", explanation(n))
        .header("Content-Description", Raw::new("Notification"));
    let status = MimePart::new(
        ContentType::new("message/delivery-status"),
        delivery_status(n).into_bytes(),
    )
    .header("Content-Description", Raw::new("Delivery report"))
    .transfer_encoding("7bit");
    let bytes = n.original.bytes();
    let cte = if bytes.is_ascii() { "7bit" } else { "8bit" };
    let (kind, description) = match (&n.original, n.action()) {
        (Returned::Full(_), Action::Failed) => ("message/rfc822", "Undelivered Message"),
        (Returned::Full(_), _) => ("message/rfc822", "Message"),
        (Returned::Headers { .. }, Action::Failed) => {
            ("text/rfc822-headers", "Undelivered Message Headers")
        }
        (Returned::Headers { .. }, _) => ("text/rfc822-headers", "Message Headers"),
    };
    let original = MimePart::new(ContentType::new(kind), bytes)
        .header("Content-Description", Raw::new(description))
        .transfer_encoding(cte);
    let report = MimePart::new(
        ContentType::new("multipart/report")
            .attribute("report-type", "delivery-status")
            .attribute("boundary", boundary),
        vec![text, status, original],
    );
    let message_id = format!("{}@{}", n.notice_id, ascii(n.hostname));
    let from = format!("MAILER-DAEMON@{}", n.hostname);
    MessageBuilder::new()
        .from(("Mail Delivery System", from.as_str()))
        .to(n.to.as_str())
        .subject(n.subject())
        .header("Date", Raw::new(date::rfc5322(n.date)))
        .message_id(message_id)
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .header("MIME-Version", Raw::new("1.0"))
        .body(report)
        .write_to_vec()
        // Writing into a Vec cannot fail.
        .unwrap_or_default()
}

/// The text/plain part: what happened, in plain words, and what the
/// sender can do.
fn explanation(n: &Notice<'_>) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "This is the mail system at host {}.", n.hostname);
    for action in [Action::Failed, Action::Delayed, Action::Relayed] {
        let those: Vec<&Recipient> = n
            .recipients
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(r, _)| *r)
            .collect();
        if those.is_empty() {
            continue;
        }
        t.push('\n');
        match action {
            Action::Failed => t.push_str(
                "Your message could not be delivered to the recipients below.\n\
                 This is permanent: the mail system will not try again.\n\
                 Check each address for a typing mistake. If it is right, the\n\
                 receiving system refused the message for the reason given,\n\
                 and you may have to reach the recipient some other way.\n",
            ),
            Action::Delayed => {
                let _ = write!(
                    t,
                    "Your message has not yet been delivered to the recipients\n\
                     below. The mail system keeps trying until\n\
                     {}, and tells you if it gives up.\n\
                     You do not need to send the message again.\n",
                    date::rfc5322(n.retry_until)
                );
            }
            Action::Relayed => t.push_str(
                "Your message was handed on to the next mail system for the\n\
                 recipients below, as you asked. That system does not report\n\
                 delivery, so this is the last you will hear about them.\n",
            ),
        }
        t.push('\n');
        for r in those {
            let _ = writeln!(t, "<{}>: {}", r.address, code(r));
            if let Some(d) = &r.diagnostic {
                let _ = writeln!(t, "    {d}");
            }
        }
    }
    t.push('\n');
    let limit = |l: &u64| format!("{l} bytes");
    match &n.original {
        Returned::Full(_) => t.push_str("Your message is attached.\n"),
        Returned::Headers { why, cut, .. } => {
            t.push_str(match why {
                HeadersOnly::NotAsked => "The headers of your message are attached",
                HeadersOnly::TooLarge { .. } => {
                    "Your message is too large to be returned whole, so only its\nheaders are attached"
                }
                HeadersOnly::LongLines => {
                    "Your message has lines too long to be returned whole, so only\nits headers are attached"
                }
            });
            if let HeadersOnly::TooLarge { limit: l } = why {
                let _ = write!(t, " (the limit is {})", limit(l));
            }
            if *cut {
                t.push_str(",\ncut short where they were too long");
            }
            t.push_str(".\n");
        }
    }
    t
}

/// The enhanced status code of a reported recipient.
fn code(r: &Recipient) -> status::Status {
    match r.status {
        RcptStatus::Failed { code } | RcptStatus::Deferred { code } => code,
        RcptStatus::Delivered | RcptStatus::Pending => status::SUCCESS,
    }
}

/// The `message/delivery-status` body (RFC 3464 section 2): the
/// per-message fields, then one group per recipient, in the order the
/// RFC lists them.
fn delivery_status(n: &Notice<'_>) -> String {
    let mut s = String::new();
    field(
        &mut s,
        "Reporting-MTA",
        &format!("dns; {}", n.reporting_mta),
    );
    field(&mut s, "X-Postern-Queue-ID", n.queue_id.as_str());
    if let Some(e) = n.envid {
        field(&mut s, "Original-Envelope-Id", e);
    }
    field(&mut s, "Arrival-Date", &date::rfc5322(n.arrival));
    for (r, action) in &n.recipients {
        s.push_str("\r\n");
        if let Some(o) = &r.orcpt {
            field(&mut s, "Original-Recipient", o);
        }
        field(&mut s, "Final-Recipient", &final_recipient(&r.address));
        field(&mut s, "Action", action.as_str());
        field(&mut s, "Status", &code(r).to_string());
        if let Some(m) = &r.remote_mta {
            field(&mut s, "Remote-MTA", m);
        }
        if let Some(d) = &r.diagnostic {
            field(&mut s, "Diagnostic-Code", &diagnostic(d));
        }
        if let Some(t) = r.last_attempt {
            field(&mut s, "Last-Attempt-Date", &date::rfc5322(t));
        }
        if *action == Action::Delayed {
            field(&mut s, "Will-Retry-Until", &date::rfc5322(n.retry_until));
        }
    }
    s
}

/// `Name: value` and CRLF, the value made 7-bit and cut so the line
/// stays within 998 octets.
fn field(out: &mut String, name: &str, value: &str) {
    let value = ascii(value);
    let room = MAX_LINE - name.len() - 2;
    let value = &value[..value.len().min(room)];
    let _ = write!(out, "{name}: {value}\r\n");
}

/// A diagnostic as recorded (`smtp; 550 ...`, `x-postern; ...`); one
/// without a type is postern's own.
fn diagnostic(d: &str) -> String {
    let typed = d.split_once(';').is_some_and(|(t, _)| {
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if typed {
        d.to_owned()
    } else {
        format!("x-postern; {d}")
    }
}

/// `rfc822; ADDRESS`, or for an address that is not ASCII `utf-8;` and
/// its utf-8-addr-xtext form (RFC 6533 section 3): every character
/// outside printable ASCII, and `\`, `+` and `=`, as `\x{HEX}`.
pub fn final_recipient(a: &Address) -> String {
    if a.as_str().is_ascii() {
        return format!("rfc822; {a}");
    }
    let mut out = String::from("utf-8; ");
    for c in a.as_str().chars() {
        if c.is_ascii_graphic() && !matches!(c, '\\' | '+' | '=') {
            out.push(c);
        } else {
            let _ = write!(out, "\\x{{{:02X}}}", c as u32);
        }
    }
    out
}

/// Control and non-ASCII characters made `?` (a DSN field is 7-bit).
fn ascii(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_recipients_in_xtext() {
        let a = Address::parse("b\u{fc}cher+x@b\u{fc}cher.example").unwrap();
        assert_eq!(
            final_recipient(&a),
            "utf-8; b\\x{FC}cher\\x{2B}x@b\\x{FC}cher.example"
        );
        let a = Address::parse("bob@example.net").unwrap();
        assert_eq!(final_recipient(&a), "rfc822; bob@example.net");
    }

    #[test]
    fn diagnostics_keep_their_type() {
        assert_eq!(diagnostic("smtp; 550 5.1.1 no"), "smtp; 550 5.1.1 no");
        assert_eq!(diagnostic("x-postern; expired"), "x-postern; expired");
        assert_eq!(diagnostic("no such user"), "x-postern; no such user");
        assert_eq!(diagnostic("a b; c"), "x-postern; a b; c");
    }

    #[test]
    fn fields_are_7bit_and_fit_a_line() {
        let mut s = String::new();
        field(
            &mut s,
            "Diagnostic-Code",
            &format!("smtp; {}", "\u{e9}".repeat(2000)),
        );
        assert!(s.is_ascii());
        assert_eq!(s.len(), 998 + 2);
    }
}

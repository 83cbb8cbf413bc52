//! What a delivery failure means: try again later (defer) or give up and
//! bounce (reject), why, in one word for the log and `postern-queue list`,
//! and the enhanced status code (RFC 3463) to record for the recipient.
//!
//! The reply class decides first (RFC 5321 section 4.2.1: 4xx transient,
//! 5xx permanent), but receivers often say 5xx where a later attempt
//! would succeed, so the reply's words can turn a 5xx into a deferral:
//! a full mailbox, a greylist, a rate limit, our sending IP on a block
//! list, a TLS problem, or a text that says "try again later". Nothing
//! turns a 4xx into a bounce: the queue lifetime ends a hopeless 4xx.
//!
//! The category comes from the reply's words first (the keyword lists
//! below, in order: the first list that matches wins), then from the
//! enhanced code's subject and detail, then from the basic code. Matching
//! is plain substring search on the lower-cased start of the text, each
//! keyword starting a word, so it is cheap enough to run per failure.
//!
//! The recorded status takes the class of the action (a 5xx that defers
//! is recorded as 4.x.x, RFC 3463 section 3.1) and the server's subject
//! and detail when it gave an enhanced code other than x.0.0; otherwise
//! the code that fits the category.
//!
//! This module only decides; the SMTP client (`smtp`) does the I/O.

use std::fmt;

use crate::mail::status::{self, Status};
use crate::mail::text;

/// Only the start of a reply is searched: the reason comes first, and a
/// 100-line reply must cost no more than a short one.
const SCAN_LIMIT: usize = 2048;

/// Greylisting (Postfix postgrey, Exim, rspamd): the next attempt after a
/// few minutes is let through. Checked first, since the text often also
/// says "recipient address rejected".
const GREYLIST: &[&str] = &[
    "greylist",
    "graylist",
    "grey-list",
    "gray-list",
    "grey list",
    "gray list",
];

/// The recipient's mailbox is out of space: it may be emptied, so this
/// defers even after a 5xx. Before every list that says "limit" or
/// "size", which a full mailbox's text often does.
const FULL: &[&str] = &[
    "mailbox full",
    "mailbox is full",
    "mailbox has exceeded",
    "mailbox size limit",
    "mailbox size exceeded",
    "full mailbox",
    "inbox is full",
    "out of storage",
    "account is full",
    "storage full",
    "over quota",
    "overquota",
    "over its quota",
    "quota exceeded",
    "quota limit exceeded",
    "exceeds quota",
    "exceeded its quota",
    "user is over",
    "insufficient storage",
];

/// Sender authentication (SPF, DKIM, DMARC, Sender ID): the message as
/// sent fails it. Before the rate and block-list lists, because Gmail's
/// texts for these also say "rate limited" and "your IP address".
const DMARC: &[&str] = &[
    "dmarc",
    "spf",
    "dkim",
    "sender id",
    "authentication checks",
    "authentication results",
    "authentication level",
];

/// TLS is missing or failed: a fault of the connection, not of the
/// message, so it defers. Before the rate list (Gmail's 4.7.29).
const TLS: &[&str] = &["starttls", "tls", "ssl", "encryption", "certificate"];

/// The message or the dialogue breaks RFC 5321 or RFC 5322. Before the
/// spam list, since Gmail adds "to reduce the amount of spam" to these.
const PROTOCOL: &[&str] = &[
    "rfc 5322",
    "rfc5322",
    "malformed",
    "syntax error",
    "protocol violation",
];

/// Policy about our host or our sender address, not the message: missing
/// reverse DNS, a refused sender, relaying. Before the block-list and
/// recipient lists, whose words ("your IP address", "does not exist")
/// these texts share.
const POLICY_SENDER: &[&str] = &[
    "ptr record",
    "reverse dns",
    "reverse hostname",
    "cannot find your hostname",
    "sender address",
    "sender verify",
    "sender rejected",
    "relay access denied",
    "relaying denied",
    "relay denied",
    "unable to relay",
    "relay not permitted",
];

/// Lists of domains found in the message (Spamhaus DBL, SURBL, URIBL):
/// a verdict on the content, unlike the IP lists below. Before them.
const SPAM_CONTENT_LIST: &[&str] = &["spamhaus dbl", "surbl", "uribl"];

/// Our sending IP or its reputation is refused (DNSBLs, provider block
/// lists, reputation): about the host, not the message, and lists are
/// cleared, so this defers even after a 5xx.
const BLOCKLIST: &[&str] = &[
    "blocked using",
    "blocklist",
    "block list",
    "blacklist",
    "black list",
    "listed on",
    "listed by",
    "dnsbl",
    "rbl",
    "spamhaus",
    "spamcop",
    "sorbs",
    "barracuda",
    "uceprotect",
    "cloudmark",
    "banned sending ip",
    "your ip address",
    "the ip you're using",
    "from your mail server",
    "infected server",
    "reputation",
];

/// Malware in the message. After the block list: Outlook.com says "virus
/// infected server" about the sending host.
const VIRUS: &[&str] = &[
    "virus",
    "malware",
    "infected",
    "trojan",
    "eicar",
    "malicious",
    "security issue",
];

/// The message is larger than the receiver takes: the same message will
/// not fit later, so this follows the reply code.
const SIZE: &[&str] = &[
    "too big",
    "too large",
    "message size",
    "size limit",
    "size exceeds",
    "exceeds the size",
    "exceeds size",
    "maximum message size",
];

/// The receiver is busy or limits how fast we send: nothing is wrong with
/// the message, so this defers even after a 5xx.
const CAPACITY: &[&str] = &[
    "rate limit",
    "ratelimit",
    "rate-limit",
    "unusual rate",
    "at a rate",
    "too quickly",
    "too fast",
    "too many connections",
    "too many concurrent",
    "too many sessions",
    "too many messages",
    "too many recipients",
    "per connection",
    "connection limit",
    "limit exceeded",
    "sending limit",
    "quota for sending",
    "unexpected volume",
    "excessive volume",
    "server busy",
    "server is busy",
    "system busy",
    "resources temporarily unavailable",
    "overload",
    "congestion",
    "throttl",
];

/// The message was judged to be spam.
const SPAM: &[&str] = &["spam", "unsolicited", "bulk mail", "junk"];

/// The receiver's name lookups failed or found nothing.
const DNS: &[&str] = &[
    "dns",
    "domain not found",
    "host not found",
    "host unknown",
    "name server",
    "nxdomain",
    "no such domain",
    "unresolvable",
];

/// The recipient's address is wrong, gone or disabled.
const RECIPIENT: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "no mailbox",
    "does not exist",
    "doesn't exist",
    "recipient not found",
    "recipientnotfound",
    "user not found",
    "mailbox not found",
    "mailbox unavailable",
    "mailbox disabled",
    "account disabled",
    "account has been disabled",
    "inactive",
    "deactivated",
    "invalid recipient",
    "invalid mailbox",
    "unknown recipient",
    "recipient unknown",
    "addressee unknown",
    "unrouteable address",
    "recipient address rejected",
    "user doesn't have",
    "user does not have",
    "not a valid",
    // Yandex: the recipient's account is blocked.
    "target address",
];

/// Any other refusal by policy. Last: these words appear in most texts.
const POLICY: &[&str] = &[
    "policy",
    "not allowed",
    "not permitted",
    "not accepted",
    "prohibit",
    "denied",
    "refused",
    "not authorized",
    "administrative",
];

/// The keyword lists in the order they are tried.
const BY_TEXT: &[(&[&str], Category)] = &[
    (GREYLIST, Category::Greylist),
    (FULL, Category::Full),
    (DMARC, Category::Dmarc),
    (TLS, Category::Tls),
    (PROTOCOL, Category::Protocol),
    (POLICY_SENDER, Category::Policy),
    (SPAM_CONTENT_LIST, Category::Spam),
    (BLOCKLIST, Category::Blocklist),
    (VIRUS, Category::Virus),
    (SIZE, Category::Size),
    (CAPACITY, Category::Capacity),
    (SPAM, Category::Spam),
    (DNS, Category::Dns),
    (RECIPIENT, Category::Recipient),
    (POLICY, Category::Policy),
];

/// Words with which a 5xx asks to be tried again: it defers.
const DEFER_HINTS: &[&str] = &[
    "try again later",
    "try later",
    "retry later",
    "try again in",
    "please retry",
    "come back later",
    "temporar",
];

/// Try again later, or give up and bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Defer,
    Reject,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Defer => "defer",
            Action::Reject => "reject",
        })
    }
}

/// Why a delivery failed, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// No usable connection: refused, timed out, dropped. Defers.
    Network,
    /// A name lookup failed (ours, or the receiver's about a domain).
    Dns,
    /// TLS missing, refused or failed. Defers.
    Tls,
    /// The recipient's address is wrong, gone or disabled.
    Recipient,
    /// The recipient's mailbox is full. Defers.
    Full,
    /// Our sending IP is on a block list or has a poor reputation. Defers.
    Blocklist,
    /// Greylisted: the next attempt passes. Defers.
    Greylist,
    /// The message was judged to be spam (by content or by the domains
    /// it names).
    Spam,
    /// The message carries malware.
    Virus,
    /// Sender authentication failed: SPF, DKIM or DMARC.
    Dmarc,
    /// Refused by a policy of the receiver (or about our host or sender).
    Policy,
    /// The receiver is busy or limits our rate. Defers.
    Capacity,
    /// The message is larger than the receiver takes.
    Size,
    /// A broken SMTP dialogue or a malformed message (RFC 5321, 5322).
    Protocol,
    /// Nothing more specific is known.
    Other,
}

impl Category {
    /// The word used in logs and in `postern-queue list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Network => "network",
            Category::Dns => "dns",
            Category::Tls => "tls",
            Category::Recipient => "recipient",
            Category::Full => "full",
            Category::Blocklist => "blocklist",
            Category::Greylist => "greylist",
            Category::Spam => "spam",
            Category::Virus => "virus",
            Category::Dmarc => "dmarc",
            Category::Policy => "policy",
            Category::Capacity => "capacity",
            Category::Size => "size",
            Category::Protocol => "protocol",
            Category::Other => "other",
        }
    }

    /// Categories that defer whatever the reply code: the cause is
    /// outside the message and may pass.
    fn always_defers(self) -> bool {
        matches!(
            self,
            Category::Network
                | Category::Tls
                | Category::Full
                | Category::Blocklist
                | Category::Greylist
                | Category::Capacity
        )
    }

    /// The code recorded when the server gave none (its class is then
    /// set to the action's).
    fn status(self) -> Status {
        match self {
            Category::Network => status::BAD_CONNECTION,
            Category::Dns => status::DNS_FAILURE,
            Category::Recipient => status::NO_SUCH_MAILBOX,
            Category::Full => status::MAILBOX_FULL,
            Category::Blocklist | Category::Greylist | Category::Spam => status::NOT_AUTHORIZED,
            Category::Tls | Category::Virus | Category::Dmarc | Category::Policy => status::POLICY,
            Category::Capacity => status::RATE_LIMITED,
            Category::Size => status::TOO_BIG,
            Category::Protocol => status::PROTOCOL,
            Category::Other => status::TRANSIENT,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure without a usable reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// The connection was refused.
    Refused,
    /// No connection, greeting or reply in time (or the attempt's
    /// deadline passed).
    Timeout,
    /// The connection was reset or closed before a complete reply.
    Closed,
    /// No route to the host or network.
    Unreachable,
    /// A name lookup failed or found no address. Always temporary here:
    /// the name looked up is the relay's, which the configuration names,
    /// and a mistyped relay must not bounce mail.
    Dns,
    /// The TLS handshake or the certificate check failed.
    Tls,
    /// A reply that is malformed, or of the wrong kind for its command
    /// (354 after the final dot).
    Protocol,
}

/// A failed SMTP step, or a failure with no reply to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// A 4xx or 5xx reply.
    Reply {
        /// The basic reply code.
        code: u16,
        /// The enhanced code the text starts with, of any class (the
        /// class is never believed, only subject and detail).
        enhanced: Option<Status>,
        /// The reply's text, its lines joined with a space.
        text: &'a str,
    },
    /// No usable reply.
    Network(NetworkKind),
}

impl<'a> Failure<'a> {
    /// A reply as `smtp::read_reply` splits it: the code, and the text
    /// of its lines joined with a space; the enhanced code is read from
    /// the text's first word, as `smtp` does.
    pub fn from_reply(code: u16, text: &'a str) -> Failure<'a> {
        let enhanced = text.split_whitespace().next().and_then(Status::parse);
        Failure::Reply {
            code,
            enhanced,
            text,
        }
    }
}

/// What to do about a failure, why, and the code to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub category: Category,
    /// Class 4 when the action is `Defer`, 5 when it is `Reject`.
    pub status: Status,
}

/// Decides what a failure means. Pure and cheap: no I/O; it allocates a
/// lower-cased copy of the start of the text and the enhanced code's
/// printed form, nothing else.
pub fn classify(failure: &Failure) -> Verdict {
    match *failure {
        Failure::Network(kind) => network(kind),
        Failure::Reply {
            code,
            enhanced,
            text,
        } => reply(code, enhanced, text),
    }
}

fn network(kind: NetworkKind) -> Verdict {
    let (category, status) = match kind {
        NetworkKind::Refused
        | NetworkKind::Timeout
        | NetworkKind::Closed
        | NetworkKind::Unreachable => (Category::Network, status::BAD_CONNECTION),
        NetworkKind::Dns => (Category::Dns, status::DNS_FAILURE),
        // RFC 3207 section 4: 454 4.7.0 for TLS that cannot be had now.
        NetworkKind::Tls => (Category::Tls, status::POLICY.with_class(4)),
        NetworkKind::Protocol => (Category::Protocol, status::PROTOCOL),
    };
    Verdict {
        action: Action::Defer,
        category,
        status,
    }
}

fn reply(code: u16, enhanced: Option<Status>, text: &str) -> Verdict {
    if !(400..600).contains(&code) {
        // Not a failure reply at all: the server is confused, and a later
        // attempt may find it sane (as `smtp` treats a wrong reply class).
        return network(NetworkKind::Protocol);
    }
    // A success code inside a failure says nothing.
    let enhanced = enhanced.filter(|s| s.class() != 2);
    let words = text::cut(text, SCAN_LIMIT).to_ascii_lowercase();
    let category = by_text(&words)
        .or_else(|| enhanced.and_then(|s| by_enhanced(subject_detail(s))))
        .unwrap_or_else(|| by_code(code));
    let defer = code < 500 || category.always_defers() || mentions_any(&words, DEFER_HINTS);
    let (action, class) = if defer {
        (Action::Defer, 4)
    } else {
        (Action::Reject, 5)
    };
    let status = match enhanced {
        Some(s) if subject_detail(s) != (0, 0) => s,
        _ => category.status(),
    };
    Verdict {
        action,
        category,
        status: status.with_class(class),
    }
}

fn by_text(words: &str) -> Option<Category> {
    BY_TEXT
        .iter()
        .find(|(keywords, _)| mentions_any(words, keywords))
        .map(|&(_, category)| category)
}

/// The category an enhanced code's subject and detail name (RFC 3463
/// section 3, RFC 7372, and Gmail's use of the x.7.2x codes).
fn by_enhanced(subject_detail: (u16, u16)) -> Option<Category> {
    let category = match subject_detail {
        // Bad sender address or sender's domain.
        (1, 7) | (1, 8) => Category::Policy,
        (1, _) => Category::Recipient,
        (2, 2) => Category::Full,
        // Message length exceeds administrative limit.
        (2, 3) => Category::Size,
        (2, _) => Category::Recipient,
        (3, 4) => Category::Size,
        // Mail system full; not accepting network messages.
        (3, 1) | (3, 2) => Category::Capacity,
        (4, 1) | (4, 2) => Category::Network,
        // Routing server failure; unable to route.
        (4, 3) | (4, 4) => Category::Dns,
        // Mail system congestion.
        (4, 5) => Category::Capacity,
        // Too many recipients (RFC 5321 section 4.5.3.1.10: try the rest
        // later).
        (5, 3) => Category::Capacity,
        (5, _) | (6, _) => Category::Protocol,
        // Security features, cryptographic failure, encryption needed.
        (7, 4) | (7, 5) | (7, 10) | (7, 11) => Category::Tls,
        // RFC 7372: reverse DNS validation failed.
        (7, 25) => Category::Policy,
        // RFC 7372 x.7.20-24 and 26; Gmail also uses 27 for SPF (RFC 7505
        // gives it to a sender's null MX), 30 for DKIM, 32 for alignment
        // and 40 for a missing DMARC record.
        (7, 20..=24) | (7, 26) | (7, 27) | (7, 30) | (7, 32) | (7, 40) => Category::Dmarc,
        // Gmail: an unusual rate of unsolicited mail from our IP.
        (7, 28) => Category::Blocklist,
        (7, _) => Category::Policy,
        _ => return None,
    };
    Some(category)
}

/// The category a bare reply code names (RFC 5321 section 4.2.3, RFC
/// 7504 for 521 and 556).
fn by_code(code: u16) -> Category {
    match code {
        // Service not available, closing the channel; insufficient system
        // storage.
        421 | 452 => Category::Capacity,
        500..=504 | 555 => Category::Protocol,
        521 | 551 | 553 | 556 => Category::Recipient,
        // Authentication required or failed.
        530 | 534 | 535 | 538 => Category::Policy,
        // "Exceeded storage allocation".
        552 => Category::Full,
        _ => Category::Other,
    }
}

/// The subject and detail of an enhanced code. `Status` keeps its fields
/// private; its `Display`, `class.subject.detail`, is read back.
fn subject_detail(status: Status) -> (u16, u16) {
    let shown = status.to_string();
    let mut numbers = shown.split('.').skip(1).map(|n| n.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

fn mentions_any(words: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| mentions(words, k))
}

/// Whether `keyword` occurs in `words` at the start of a word, so that
/// "rbl" is found in "spam-rbl" but not in "garbled" (a keyword may end
/// inside a word: "greylist" finds "greylisted").
fn mentions(words: &str, keyword: &str) -> bool {
    let bytes = words.as_bytes();
    words
        .match_indices(keyword)
        .any(|(at, _)| at == 0 || !bytes[at - 1].is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests;

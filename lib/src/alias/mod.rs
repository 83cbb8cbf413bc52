//! Aliases: where mail for `name@our-domain` goes (postern-rewriter(1),
//! postern-alias(8)).
//!
//! Rules come from three sources, merged per domain in one documented
//! order: the alias store (`store`, SQLite; virtual(5) files are compiled
//! into it by `virtual_file`), then the domain's DNS TXT records (`txt`,
//! the format Forward Email documents, parsed; `records`, looked up and
//! cached). `resolve` picks the rule for a
//! local part (exact before regex before catch-all, the store before TXT
//! at each level) and expands its targets; it does no I/O.

pub mod admin;
pub mod crypto;
pub mod lookup;
pub mod records;
pub mod resolve;
pub mod store;
pub mod sync;
pub mod txt;
pub mod virtual_file;

use std::fmt;
use std::sync::Arc;

use crate::mail::address::Address;

/// What a rule matches in the local part (lower-cased, without `+tag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// One local part, lower-cased.
    Exact(String),
    /// A regular expression over the whole local part, matched without
    /// regard to case (the source as written, without slashes or flags).
    Regex(String),
    /// Every local part of the domain.
    CatchAll,
}

/// What a matching rule does with the mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// To the rule's targets.
    Forward,
    /// `!name`: accepted and dropped quietly (the sender is not told).
    Drop,
    /// `!!name`: refused for now, 4.2.1 "mailbox disabled".
    Defer,
    /// `!!!name`: refused for good, 5.2.1.
    Refuse,
}

/// Where a forwarded copy goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An address somewhere else (or ours again: one more level).
    Address(Address),
    /// A local mailbox of postern-maildb(8), named by its address (in a
    /// domain Postfix routes to the maildb transport); written
    /// `maildb:ADDRESS`. Not resolved again and its sender not rewritten:
    /// the mail stays here.
    Mailbox(Address),
    /// A webhook (`http://` or `https://`): stored, not yet delivered.
    Url(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(a) => write!(f, "{a}"),
            Target::Mailbox(m) => write!(f, "maildb:{m}"),
            Target::Url(u) => f.write_str(u),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target is not an address, maildb:NAME or an http(s) URL: {0}")]
    Address(#[from] crate::mail::address::AddressError),
    #[error("target maildb:ADDRESS does not name a mailbox address")]
    Mailbox,
    #[error("target URL is longer than {MAX_URL} octets or holds a space or control character")]
    Url,
}

/// Longest webhook URL kept.
pub const MAX_URL: usize = 2048;

impl Target {
    /// `https://...`/`http://...` is a webhook, `maildb:ADDRESS` a local
    /// mailbox, anything else must be an address.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            if text.len() > MAX_URL || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(TargetError::Url);
            }
            return Ok(Target::Url(text.to_owned()));
        }
        if let Some(name) = text.strip_prefix("maildb:") {
            let address = Address::parse(name).map_err(|_| TargetError::Mailbox)?;
            crate::mailbox::name::file_name(name).map_err(|_| TargetError::Mailbox)?;
            return Ok(Target::Mailbox(address));
        }
        Ok(Target::Address(Address::parse(text)?))
    }
}

/// Where a rule was found, for `explain` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A row of the alias store (its id).
    Store { id: i64 },
    /// An entry of the domain's TXT records (the entry as published).
    Txt { entry: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Store { id } => write!(f, "alias store row {id}"),
            Origin::Txt { entry } => write!(f, "TXT entry {entry:?}"),
        }
    }
}

/// One alias: what it matches, what it does, where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub pattern: Pattern,
    pub action: Action,
    /// For `Forward`: at least one. A regex rule's targets may hold `$1`..
    /// (kept as text in `Target::Address` only after substitution, so
    /// `targets` of a regex rule are templates: see `resolve`).
    pub targets: Vec<String>,
    pub origin: Origin,
}

/// Lower-cases a domain and puts an IDN into one form (its A-labels, as
/// DNS and the store keep it); a trailing dot is dropped. `None` when it is
/// not a domain name.
pub fn domain_key(domain: &str) -> Option<String> {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.is_empty() || d.starts_with('[') {
        return None;
    }
    idna::domain_to_ascii(d)
        .ok()
        .filter(|a| !a.is_empty() && !a.contains(".."))
}

/// A domain's published TXT rules: one DNS answer, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// In the order published.
    pub rules: Vec<Rule>,
    /// `forward-email-port=`: the SMTP port the domain's owner asked for
    /// (read and shown by `explain`; delivery does not use it yet).
    pub port: Option<u16>,
    /// Entries that could not be used, each with the reason (a bad regex,
    /// an encrypted value without a key...). A recipient that no usable
    /// rule matches is deferred, not refused, while any are listed: the
    /// broken entry may have been meant for it.
    pub problems: Vec<String>,
}

/// Why a domain's TXT records could not be read: a temporary failure
/// (4.4.3), never a reason to bounce.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("DNS lookup for {domain} failed: {reason}")]
pub struct LookupError {
    pub domain: String,
    pub reason: String,
}

/// The DNS side of alias resolution, behind a trait so the rewriter's
/// decisions are tested without a DNS server.
pub trait TxtSource {
    /// The rules `domain` publishes (`None`: no records with our prefix,
    /// or no MX, so TXT records do not count).
    fn published(&mut self, domain: &str) -> Result<Option<Arc<Published>>, LookupError>;
}

/// Largest compiled form of a regex alias (the regex crate's size limit):
/// matching is linear in the input whatever the pattern, and this bounds
/// the memory a published pattern can make us spend.
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;
/// Longest regex source accepted.
pub const MAX_REGEX: usize = 1024;

/// Compiles a regex alias: always without regard to case, linear-time,
/// size-limited. The error is one line naming what is wrong.
pub fn compile_pattern(source: &str) -> Result<regex::Regex, String> {
    if source.len() > MAX_REGEX {
        return Err(format!("regex is longer than {MAX_REGEX} octets"));
    }
    regex::RegexBuilder::new(source)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "regex is too large once compiled".to_owned(),
            other => format!(
                "bad regex: {}",
                other.to_string().lines().last().unwrap_or("")
            ),
        })
}

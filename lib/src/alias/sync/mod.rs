//! `postern-alias sync` (postern-alias(8)): team addresses kept in step
//! with a directory. Each domain of `[sync] teams` gets an alias
//! `username@domain` for every member of its team, forwarding to the
//! member's address; a member who left, became invalid or was banned
//! has the alias disabled (5.2.1), never deleted, and enabled again on
//! return.
//!
//! The directory is behind [`Directory`]: the Launchpad web service
//! (`launchpad`) or a members file (`members_file`). `plan` decides what
//! changes (pure); `apply` writes a domain's plan in one transaction;
//! `notify` tells the domain's admins.

pub mod launchpad;
pub mod members_file;
pub mod notify;
pub mod plan;
pub mod run;
pub mod state;

use std::fmt;

use crate::mail::address::Address;

/// Which directory a domain's team is in, as `[sync] teams` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TeamRef {
    /// `~NAME`: a Launchpad team.
    Launchpad(String),
    /// `file:NAME`: a team of the members file.
    File(String),
}

impl TeamRef {
    /// `~NAME` or `file:NAME`; the name is a directory name (see
    /// [`is_username`]).
    pub fn parse(text: &str) -> Result<TeamRef, String> {
        let (make, name): (fn(String) -> TeamRef, &str) = if let Some(n) = text.strip_prefix('~') {
            (TeamRef::Launchpad, n)
        } else if let Some(n) = text.strip_prefix("file:") {
            (TeamRef::File, n)
        } else {
            return Err(format!(
                "team {:?} is neither ~NAME (Launchpad) nor file:NAME (the members file)",
                crate::mail::text::bounded(text, 100)
            ));
        };
        if !is_username(name) {
            return Err(format!(
                "team {:?}: a name is lower-case letters, digits, '+', '-' and '.', starting with a letter or digit",
                crate::mail::text::bounded(text, 100)
            ));
        }
        Ok(make(name.to_owned()))
    }

    pub fn name(&self) -> &str {
        match self {
            TeamRef::Launchpad(n) | TeamRef::File(n) => n,
        }
    }
}

impl fmt::Display for TeamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TeamRef::Launchpad(n) => write!(f, "~{n}"),
            TeamRef::File(n) => write!(f, "file:{n}"),
        }
    }
}

/// Launchpad's rule for person and team names (lower case, at most 64
/// octets): safe in a URL path and as a local part.
pub fn is_username(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        })
}

/// Where a member stands in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A valid account that may have a team address.
    Active,
    /// The directory says the account is not valid (Launchpad's
    /// `is_valid` false: deactivated, merged, suspended, no address).
    Invalid,
    /// Has not signed the Ubuntu Code of Conduct (with `require_coc`).
    NoCodeOfConduct,
    /// The member's record could not be read (after the retries); the
    /// reason, in one line. Their alias is left as it is.
    Unknown(String),
}

/// One member of a team, as the directory describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The directory's name for them, checked with [`is_username`].
    pub username: String,
    pub standing: Standing,
    /// The address the directory shows for them (Launchpad's preferred
    /// address, when it is not hidden); the member registry wins over it.
    pub address: Option<Address>,
}

/// A team, read whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Team {
    /// In the directory's order, each username once.
    pub members: Vec<Member>,
    /// Entries left out, each with why in one line (a sub-team, a name
    /// that is not a valid username): reported, not fatal.
    pub skipped: Vec<String>,
    /// Requests made (for the report and the benchmark).
    pub requests: u64,
}

/// Why a team could not be read whole: the domain's run changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("{what}: no answer within {}", humantime::format_duration(*.timeout))]
    Timeout {
        what: String,
        timeout: std::time::Duration,
    },
    /// An HTTP status that is not 200 (after the retries, for 5xx).
    #[error("{what}: the server answered HTTP {status}")]
    Status { what: String, status: u16 },
    /// A body that is not what the directory sends (bad JSON, a missing
    /// or mistyped field, too large, a link leading elsewhere).
    #[error("{what}: {reason}")]
    Malformed { what: String, reason: String },
    /// Connection, TLS, or file trouble.
    #[error("{what}: {reason}")]
    Transport { what: String, reason: String },
    /// The pages did not add up (a member twice, a total that is not
    /// the count): the team changed while it was read. The next run will
    /// most likely read it whole.
    #[error("{what}: {reason} (did the team change while it was read?)")]
    Changed { what: String, reason: String },
    /// The team has more members than `sync.max_members`.
    #[error("{what}: more than {limit} members")]
    TooLarge { what: String, limit: usize },
}

impl SourceError {
    /// The kind of failure, without its details: what a problem record
    /// keeps, so that the same failure is told once while it lasts.
    pub fn kind(&self) -> String {
        match self {
            SourceError::Timeout { .. } => "no answer in time".into(),
            SourceError::Status { status, .. } => format!("HTTP {status}"),
            SourceError::Malformed { .. } => {
                "an answer that is not what the directory sends".into()
            }
            SourceError::Transport { .. } => "no connection, or the file cannot be read".into(),
            SourceError::Changed { .. } => "the team changed while it was read".into(),
            SourceError::TooLarge { .. } => "more members than sync.max_members".into(),
        }
    }

    /// Worth trying again later (the exit status: 75 rather than 69/76).
    pub fn is_temporary(&self) -> bool {
        match self {
            SourceError::Timeout { .. }
            | SourceError::Transport { .. }
            | SourceError::Changed { .. } => true,
            SourceError::Status { status, .. } => *status >= 500,
            SourceError::Malformed { .. } | SourceError::TooLarge { .. } => false,
        }
    }
}

/// A directory of teams.
pub trait Directory {
    /// Every member of `team` with their standing. `Err` when the team's
    /// member list could not be read whole: nothing may be concluded
    /// about who left. A member whose own record failed is in the list
    /// with [`Standing::Unknown`].
    fn team(&self, team: &str) -> Result<Team, SourceError>;
}

//! Exit statuses and the one-line failure report a tool prints on stderr.
//!
//! Exit codes follow sysexits.h as Postfix's pipe(8) reads them; the text
//! starts with an RFC 3463 enhanced status code, which pipe(8) copies into
//! the delivery status of the message (and so into a bounce).

use std::fmt;

use crate::mail::status::{self, Status};
use crate::mail::text;

/// A sysexits.h exit code that a postern tool can end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sysexit {
    /// 0: done — delivered, safely spooled, or handed to the bounce queue.
    Ok = 0,
    /// 64 EX_USAGE: the command line is wrong.
    Usage = 64,
    /// 65 EX_DATAERR: the message or job is malformed.
    DataErr = 65,
    /// 66 EX_NOINPUT: an input file cannot be read.
    NoInput = 66,
    /// 67 EX_NOUSER: a recipient address is unusable.
    NoUser = 67,
    /// 69 EX_UNAVAILABLE: permanent failure; Postfix bounces the message.
    Unavailable = 69,
    /// 70 EX_SOFTWARE: an internal error.
    Software = 70,
    /// 73 EX_CANTCREAT: an output file cannot be created (or already exists).
    CantCreat = 73,
    /// 75 EX_TEMPFAIL: try again later; Postfix keeps the message.
    TempFail = 75,
    /// 77 EX_NOPERM: refused by policy.
    NoPerm = 77,
    /// 78 EX_CONFIG: the configuration is wrong.
    Config = 78,
}

impl Sysexit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// What a tool reports when it cannot finish: the exit code, an enhanced
/// status code (RFC 3463) and one line of text for the operator and, through
/// Postfix, for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: Sysexit,
    /// Enhanced status code such as `5.3.4` or `4.3.0`.
    pub status: Status,
    pub text: String,
}

impl Failure {
    pub fn new(exit: Sysexit, status: Status, text: impl Into<String>) -> Self {
        Failure {
            exit,
            status,
            text: text.into(),
        }
    }

    /// A temporary local problem: Postfix keeps the message and retries.
    pub fn tempfail(text: impl Into<String>) -> Self {
        Failure::new(Sysexit::TempFail, status::SYSTEM, text)
    }

    /// A configuration problem; the message stays queued (4.3.5).
    pub fn config(text: impl Into<String>) -> Self {
        Failure::new(Sysexit::Config, status::MISCONFIGURED, text)
    }
}

impl fmt::Display for Failure {
    /// The single stderr line: `5.3.4 message size 60000000 exceeds limit 52428800`.
    /// Control characters never reach the line, so it cannot be split.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, text::clean(&self.text))
    }
}

/// Implemented by every module error: how it ends a tool.
pub trait ToFailure {
    fn to_failure(&self) -> Failure;
}

/// So that `?` turns any module error into the failure that ends a tool.
impl<E: ToFailure> From<E> for Failure {
    fn from(e: E) -> Failure {
        e.to_failure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_starts_with_status_and_has_no_newline() {
        let f = Failure::new(
            Sysexit::Unavailable,
            status::TOO_BIG,
            "too big\r\nInjected: yes",
        );
        let line = f.to_string();
        assert!(line.starts_with("5.3.4 too big"));
        assert!(!line.contains('\n') && !line.contains('\r'));
        assert_eq!(f.exit.code(), 69);
    }
}

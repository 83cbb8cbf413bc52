//! Errors of the commands that move mail in and out of a mailbox: export,
//! import, backup and restore. They wrap [`MailboxError`] for everything
//! that concerns the mailbox itself and add what can be wrong with the
//! other side (a source that is not mail, a destination that exists).

use std::path::PathBuf;

use super::MailboxError;
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::status;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{0}")]
    Mailbox(#[from] MailboxError),
    #[error("{path} already exists; choose another destination")]
    Exists { path: PathBuf },
    #[error("{path}: {detail}")]
    BadSource { path: PathBuf, detail: String },
    #[error(
        "{path} is an unencrypted SQLite database; give --allow-plaintext-import to copy its \
         messages into this mailbox"
    )]
    PlaintextRefused { path: PathBuf },
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path} is in use by another process; try again later")]
    Busy { path: PathBuf },
    #[error("a new passphrase is for --format sqlite only; mbox and eml are not encrypted")]
    NewPassphraseNotSqlite,
}

impl ExchangeError {
    pub(crate) fn io(path: &std::path::Path, op: &'static str, source: std::io::Error) -> Self {
        ExchangeError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    }

    /// A write to a reader that went away (`| head`): not an error for
    /// a command writing to standard output.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ExchangeError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn bad(path: &std::path::Path, detail: impl Into<String>) -> Self {
        ExchangeError::BadSource {
            path: path.to_owned(),
            detail: detail.into(),
        }
    }
}

impl ToFailure for ExchangeError {
    fn to_failure(&self) -> Failure {
        let text = self.to_string();
        match self {
            ExchangeError::Mailbox(e) => e.to_failure(),
            ExchangeError::Exists { .. } => {
                Failure::new(Sysexit::CantCreat, status::MAILBOX_REFUSED, text)
            }
            ExchangeError::BadSource { .. } => {
                Failure::new(Sysexit::DataErr, status::BAD_MESSAGE, text)
            }
            ExchangeError::PlaintextRefused { .. } => {
                Failure::new(Sysexit::NoPerm, status::POLICY, text)
            }
            ExchangeError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                Failure::new(Sysexit::TempFail, status::SYSTEM_FULL, text)
            }
            ExchangeError::Busy { .. } => {
                Failure::new(Sysexit::TempFail, status::MAILBOX_BUSY, text)
            }
            ExchangeError::Io { .. } | ExchangeError::Sqlite { .. } => Failure::tempfail(text),
            ExchangeError::NewPassphraseNotSqlite => Failure::config(text),
        }
    }
}

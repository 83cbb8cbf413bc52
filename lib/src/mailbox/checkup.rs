//! `postern-maildb check`: the whole finding on a mailbox file — what
//! [`check`](super::check) reports of an open mailbox, the drop area's
//! waiting messages, or damage that stops even the opening — as the lines
//! the command prints and the failure it ends with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CIPHER, CheckReport, Mailbox, MailboxError, check, drop_area, library_version};
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::status;
use crate::mail::text::clean;

/// What checking a mailbox file found.
#[derive(Debug)]
pub struct Checkup {
    pub path: PathBuf,
    pub finding: Finding,
}

#[derive(Debug)]
pub enum Finding {
    /// The mailbox opened and was checked.
    Checked {
        report: CheckReport,
        /// Sealed messages waiting in the drop area.
        waiting: usize,
    },
    /// Damage stopped the opening: a finding too. `error` is
    /// [`MailboxError::Damaged`], and `detail` its description.
    Unopenable { detail: String, error: MailboxError },
}

/// Opens the mailbox at `path` without migrating it and checks it. Damage
/// is a finding; a wrong passphrase, a lock or a missing file is an error.
pub fn checkup(path: &Path, passphrase: &str, timeout: Duration) -> Result<Checkup, Failure> {
    let finding = match Mailbox::open_for_check(path, passphrase, timeout) {
        Ok(mb) => Finding::Checked {
            report: check(&mb)?,
            waiting: drop_area::waiting(path).map_err(|e| {
                Failure::tempfail(format!(
                    "cannot read the drop area of {}: {e}",
                    path.display()
                ))
            })?,
        },
        Err(MailboxError::Damaged { path, detail }) => Finding::Unopenable {
            error: MailboxError::Damaged {
                path,
                detail: detail.clone(),
            },
            detail,
        },
        Err(e) => return Err(e.into()),
    };
    Ok(Checkup {
        path: path.to_owned(),
        finding,
    })
}

impl Checkup {
    /// What `check` prints, one line each, with no control characters.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("mailbox: {}", self.path.display())];
        match &self.finding {
            Finding::Unopenable { detail, .. } => {
                lines.push(format!("problem: cannot open: {}", clean(detail)));
            }
            Finding::Checked { report, waiting } => {
                lines.extend([
                    format!("library: {}", library_version()),
                    format!("cipher: {CIPHER}"),
                    format!("schema version: {}", report.schema_version),
                    format!("messages: {}", report.messages),
                    format!("sealed messages waiting: {waiting}"),
                ]);
                lines.extend(
                    report
                        .problems
                        .iter()
                        .map(|p| format!("problem: {}", clean(p))),
                );
            }
        }
        lines
    }

    /// Ok only for a sound mailbox; damage is EX_DATAERR.
    pub fn verdict(&self) -> Result<(), Failure> {
        match &self.finding {
            Finding::Unopenable { error, .. } => Err(error.to_failure()),
            Finding::Checked { report, .. } if report.problems.is_empty() => Ok(()),
            Finding::Checked { report, .. } => Err(Failure::new(
                Sysexit::DataErr,
                status::SYSTEM,
                format!(
                    "mailbox {} is damaged: {} problem(s)",
                    self.path.display(),
                    report.problems.len()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const PW: &str = "pw";
    const LOCK: Duration = Duration::from_secs(5);

    #[test]
    fn a_sound_mailbox_passes_with_its_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob.sqlite");
        drop(Mailbox::create(&path, PW, LOCK, SystemTime::UNIX_EPOCH).unwrap());
        let c = checkup(&path, PW, LOCK).unwrap();
        assert!(c.verdict().is_ok());
        let lines = c.lines();
        assert_eq!(lines[0], format!("mailbox: {}", path.display()));
        assert!(lines.contains(&"cipher: chacha20".to_owned()), "{lines:?}");
        assert!(lines.contains(&"messages: 0".to_owned()), "{lines:?}");
        assert_eq!(lines.last().unwrap(), "sealed messages waiting: 0");
        // A wrong passphrase is not a finding.
        let wrong = checkup(&path, "other", LOCK).unwrap_err();
        assert_eq!(wrong.exit, Sysexit::NoPerm);
    }

    #[test]
    fn problems_are_lines_and_fail_the_check() {
        let c = Checkup {
            path: PathBuf::from("/m/bob.sqlite"),
            finding: Finding::Checked {
                report: CheckReport {
                    schema_version: 3,
                    messages: 2,
                    problems: vec!["integrity: bad\npage".into(), "other".into()],
                },
                waiting: 1,
            },
        };
        let lines = c.lines();
        assert_eq!(
            &lines[lines.len() - 2..],
            ["problem: integrity: bad page", "problem: other"]
        );
        let f = c.verdict().unwrap_err();
        assert_eq!(f.exit, Sysexit::DataErr);
        assert_eq!(f.text, "mailbox /m/bob.sqlite is damaged: 2 problem(s)");
    }

    #[test]
    fn damage_that_stops_the_opening_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob.sqlite");
        std::fs::write(&path, b"").unwrap();
        let c = checkup(&path, PW, LOCK).unwrap();
        assert_eq!(
            c.lines(),
            [
                format!("mailbox: {}", path.display()),
                "problem: cannot open: the file is empty".to_owned()
            ]
        );
        assert_eq!(c.verdict().unwrap_err().exit, Sysexit::DataErr);
    }
}

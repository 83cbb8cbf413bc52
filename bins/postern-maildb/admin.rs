//! postern-maildb's commands that look after a mailbox as a whole:
//! `passwd` (its new passphrase), `destroy` and `quota`.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use postern::exit::{Failure, ToFailure};
use postern::mailbox::passphrase::{self, Prompt, Source};
use postern::mailbox::{self, Mailbox, destroy as destroy_op, quota as quota_op};

use super::{Cli, ignore_broken_pipe};

/// A new passphrase (`init`, `passwd`): from a descriptor or a private
/// file, else asked twice on the terminal.
pub fn read_new_passphrase(
    source: Option<Source>,
    path: &Path,
) -> Result<passphrase::Passphrase, Failure> {
    let what = path.display().to_string();
    passphrase::obtain(source.as_ref(), Prompt::New(&what))?.ok_or_else(|| {
        Failure::config(
            "no new passphrase given: use --new-passphrase-fd N or --new-passphrase-file \
             FILE (or run on a terminal)",
        )
    })
}

/// `destroy`: only with --yes. A passphrase, when given, must open the
/// mailbox first; without one the file system's permissions decide, as
/// for rm(1).
pub fn destroy(cli: &Cli, path: &Path, yes: bool, timeout: Duration) -> Result<(), Failure> {
    if !yes {
        return Err(Failure::config(format!(
            "destroy removes {} and all its mail for good; add --yes to do it",
            path.display()
        )));
    }
    let given = cli.passphrase.source().is_some();
    let removed = if given {
        let pw = super::read_passphrase(&cli.passphrase, path)?;
        let mb = Mailbox::open_for_check(path, &pw, timeout).map_err(|e| e.to_failure())?;
        drop(pw);
        destroy_op::destroy_open(mb, timeout)
    } else {
        destroy_op::destroy(path, timeout)
    }
    .map_err(|e| e.to_failure())?;
    let mut out = io::stdout().lock();
    removed
        .iter()
        .try_for_each(|p| writeln!(out, "removed {}", p.display()))
        .or_else(ignore_broken_pipe)
}

/// `quota`: measured from outside, so it needs no passphrase.
pub fn quota(path: &Path, limit: u64, json: bool) -> Result<(), Failure> {
    let usage = quota_op::usage(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            mailbox::MailboxError::NotFound {
                path: path.to_owned(),
            }
            .to_failure()
        } else {
            Failure::tempfail(format!("cannot measure {}: {e}", path.display()))
        }
    })?;
    let used = usage.total();
    let mut out = io::stdout().lock();
    let written = if json {
        let value = serde_json::json!({
            "mailbox": path.display().to_string(),
            "database": usage.database,
            "drop_area": usage.drop_area,
            "waiting": usage.waiting,
            "used": used,
            "limit": limit,
        });
        serde_json::to_writer_pretty(&mut out, &value)
            .map_err(io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        let percent = if limit == 0 {
            "no limit".to_owned()
        } else {
            format!("{:.1}%", used as f64 * 100.0 / limit as f64)
        };
        let lines = [
            format!("mailbox: {}", path.display()),
            format!("database: {} bytes", usage.database),
            format!(
                "drop area: {} bytes, {} sealed messages waiting",
                usage.drop_area, usage.waiting
            ),
            format!("used: {used} bytes ({percent})"),
            format!("limit: {limit} bytes"),
        ];
        lines.iter().try_for_each(|l| writeln!(out, "{l}"))
    };
    written.or_else(ignore_broken_pipe)
}

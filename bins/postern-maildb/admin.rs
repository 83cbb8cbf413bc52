//! postern-maildb's commands that look after a mailbox as a whole:
//! `passwd` (its new passphrase), `destroy` and `quota`.

use std::io::{self, Write};
use std::path::Path;

use postern::exit::Failure;
use postern::mailbox::passphrase::{self, Passphrase, Prompt, Source};
use postern::mailbox::{Mailbox, destroy as destroy_op, quota as quota_op, rekey};

use super::{Run, print, print_lines};

/// A new passphrase (`init`, `passwd`): from a descriptor or a private
/// file, else asked twice on the terminal.
pub fn new_passphrase(source: Option<Source>, path: &Path) -> Result<Passphrase, Failure> {
    let what = path.display().to_string();
    passphrase::obtain(source.as_ref(), Prompt::New(&what))?.ok_or_else(|| {
        Failure::config(
            "no new passphrase given: use --new-passphrase-fd N or --new-passphrase-file \
             FILE (or run on a terminal)",
        )
    })
}

/// `passwd`: the mailbox re-encrypted under a new passphrase.
pub fn passwd(run: &Run, new_fd: Option<u32>, new_file: Option<&Path>) -> Result<(), Failure> {
    let (mb, pw) = run.unlock()?;
    let new = new_passphrase(Source::from_options(new_fd, new_file), mb.path())?;
    Ok(rekey::passwd(mb, &pw, &new, run.timeout())?)
}

/// `destroy`: only with --yes. A passphrase, when given, must open the
/// mailbox first; without one the file system's permissions decide, as
/// for rm(1).
pub fn destroy(run: &Run, yes: bool) -> Result<(), Failure> {
    let path = run.path()?;
    if !yes {
        return Err(Failure::config(format!(
            "destroy removes {} and all its mail for good; add --yes to do it",
            path.display()
        )));
    }
    let removed = if run.passphrase.source().is_some() {
        let pw = run.passphrase(&path)?;
        let mb = Mailbox::open_for_check(&path, &pw, run.timeout())?;
        drop(pw);
        destroy_op::destroy_open(mb, run.timeout())
    } else {
        destroy_op::destroy(&path, run.timeout())
    }?;
    print_lines(removed.iter().map(|p| format!("removed {}", p.display())))
}

/// `quota`: measured from outside, so it needs no passphrase.
pub fn quota(run: &Run, json: bool) -> Result<(), Failure> {
    let report = quota_op::report(&run.path()?, run.config.maildb.quota)?;
    if json {
        return print(|out| {
            serde_json::to_writer_pretty(&mut *out, &report).map_err(io::Error::other)?;
            writeln!(out)
        });
    }
    print_lines(report.lines())
}

//! postern-maildb(8): per-user mailboxes in encrypted SQLite files —
//! deliver a message from stdin (sealed to the mailbox's public key, no
//! passphrase), and with the passphrase: init, list, show, search, flag,
//! move, delete, folders, check. Each command parses, calls
//! `postern::mailbox` and prints.

use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use postern::config::Config;
use postern::exit::Failure;
use postern::log::Log;
// Text from a message for a terminal: no control characters (no escape
// sequences, no tabs that would shift the columns).
use postern::mail::text::clean;
use postern::mailbox::passphrase::{self, Passphrase, PassphraseError, Prompt};
use postern::mailbox::{self, Flags, Mailbox, MailboxError, Summary, checkup, delivery};
use postern_cli as common;

#[path = "postern-maildb/admin.rs"]
mod admin;
#[path = "postern-maildb/args.rs"]
mod args;
#[path = "postern-maildb/exchange.rs"]
mod exchange;

use args::{Cli, Command, MailboxArgs, PassphraseArgs};

const TOOL: &str = "postern-maildb";

fn main() -> ExitCode {
    common::main(TOOL, |cli: &Cli| cli.config.clone(), run)
}

fn run(cli: Cli, config: &Config, log: &Log) -> Result<(), Failure> {
    let run = &Run {
        mailbox: &cli.mailbox,
        passphrase: &cli.passphrase,
        config,
        log,
        now: SystemTime::now(),
    };
    match &cli.command {
        Command::Init => init(run),
        Command::Deliver { user, folder } => deliver(run, user, folder),
        Command::List { folder, json } => list(run, folder, *json),
        Command::Show { uid, folder } => show(run, folder, *uid),
        Command::Search {
            query,
            folder,
            limit,
            json,
        } => search(run, &query.join(" "), folder.as_deref(), *limit, *json),
        Command::Flag {
            uid,
            folder,
            set,
            clear,
        } => flag(run, folder, *uid, set, clear),
        Command::Move { uid, dest, folder } => move_message(run, folder, *uid, dest),
        Command::Delete { uid, folder } => delete(run, folder, *uid),
        Command::Folders { create, json } => folders(run, create.as_deref(), *json),
        Command::Check => check(run),
        Command::Passwd {
            new_passphrase_fd,
            new_passphrase_file,
        } => admin::passwd(run, *new_passphrase_fd, new_passphrase_file.as_deref()),
        Command::Destroy { yes } => admin::destroy(run, *yes),
        Command::Quota { json } => admin::quota(run, *json),
        Command::Exchange(cmd) => exchange::run(run, cmd),
    }
}

/// What every command is given: the options naming the mailbox and its
/// passphrase, the configuration, the log, and the time of the run.
struct Run<'a> {
    mailbox: &'a MailboxArgs,
    passphrase: &'a PassphraseArgs,
    config: &'a Config,
    log: &'a Log,
    now: SystemTime,
}

impl Run<'_> {
    fn timeout(&self) -> Duration {
        self.config.maildb.lock_timeout
    }

    /// The mailbox file: `-m FILE`, or USER's in the mailbox directory.
    fn path(&self) -> Result<PathBuf, Failure> {
        match (&self.mailbox.user, &self.mailbox.file) {
            (_, Some(file)) => Ok(file.clone()),
            (Some(user), None) => Ok(mailbox::name::path(&self.config.maildb.directory, user)
                .map_err(MailboxError::from)?),
            (None, None) => Err(Failure::config("no mailbox given: use -u USER or -m FILE")),
        }
    }

    /// The passphrase from --passphrase-fd or --passphrase-file, else from
    /// the terminal if standard input is one.
    fn passphrase(&self, path: &Path) -> Result<Passphrase, Failure> {
        let what = path.display().to_string();
        passphrase::obtain(self.passphrase.source().as_ref(), Prompt::Existing(&what))?
            .ok_or_else(|| PassphraseError::Missing.into())
    }

    /// Opens the mailbox, reports what it merged, and keeps the passphrase.
    fn unlock(&self) -> Result<(Mailbox, Passphrase), Failure> {
        let path = self.path()?;
        let pw = self.passphrase(&path)?;
        let mb = Mailbox::open(&path, &pw, self.timeout(), self.now)?;
        report_merge(&mb, self.log);
        Ok((mb, pw))
    }

    /// Opens the mailbox and reports what it merged.
    fn open(&self) -> Result<Mailbox, Failure> {
        self.unlock().map(|(mb, _)| mb)
    }
}

/// `init`: a new mailbox under a new passphrase.
fn init(run: &Run) -> Result<(), Failure> {
    let path = run.path()?;
    let pw = admin::new_passphrase(run.passphrase.source(), &path)?;
    Mailbox::create(&path, &pw, run.timeout(), run.now)?;
    Ok(())
}

/// `deliver USER`: the message on stdin into USER's drop area, for Postfix
/// (see `postern::mailbox::delivery`).
fn deliver(run: &Run, user: &str, folder: &str) -> Result<(), Failure> {
    if run.passphrase.source().is_some() {
        return Err(Failure::config(
            "deliver takes no passphrase: it seals the message to the mailbox's public key",
        ));
    }
    let maildb = &run.config.maildb;
    let path = delivery::mailbox_path(maildb, user)?;
    let msg = common::read_message(run.config.message_size_limit)?;
    delivery::deliver(maildb, &path, user, &msg, folder, run.now, run.log)?;
    Ok(())
}

fn list(run: &Run, folder: &str, json: bool) -> Result<(), Failure> {
    let items = mailbox::list(&run.open()?, folder)?;
    print(|out| print_summaries(out, &items, json, false))
}

fn show(run: &Run, folder: &str, uid: u32) -> Result<(), Failure> {
    let raw = mailbox::show(&run.open()?, folder, uid)?;
    print(|out| out.write_all(&raw))
}

fn search(
    run: &Run,
    query: &str,
    folder: Option<&str>,
    limit: Option<usize>,
    json: bool,
) -> Result<(), Failure> {
    let items = mailbox::search(&run.open()?, query, folder, limit)?;
    print(|out| print_summaries(out, &items, json, true))
}

fn flag(run: &Run, folder: &str, uid: u32, set: &[Flags], clear: &[Flags]) -> Result<(), Failure> {
    let all = |v: &[Flags]| v.iter().copied().fold(Flags::default(), Flags::union);
    let flags = mailbox::flag(&mut run.open()?, folder, uid, all(set), all(clear))?;
    print(|out| writeln!(out, "{}", flags.names().join(" ")))
}

fn move_message(run: &Run, folder: &str, uid: u32, dest: &str) -> Result<(), Failure> {
    let moved = mailbox::move_message(&mut run.open()?, folder, uid, dest)?;
    print(|out| writeln!(out, "{}\t{}", clean(&moved.folder), moved.uid))
}

fn delete(run: &Run, folder: &str, uid: u32) -> Result<(), Failure> {
    Ok(mailbox::delete(&mut run.open()?, folder, uid)?)
}

/// `folders`: creates one if asked, then lists them all.
fn folders(run: &Run, create: Option<&str>, json: bool) -> Result<(), Failure> {
    let mut mb = run.open()?;
    if let Some(name) = create {
        mailbox::create_folder(&mut mb, name, run.now)?;
    }
    let list = mailbox::folders(&mb)?;
    if json {
        return print(|out| {
            serde_json::to_writer_pretty(&mut *out, &list).map_err(io::Error::other)?;
            writeln!(out)
        });
    }
    print(|out| {
        list.iter().try_for_each(|f| {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                clean(&f.name),
                f.messages,
                f.unseen,
                f.uidvalidity,
                f.uidnext,
                f.special_use.as_deref().unwrap_or("-")
            )
        })
    })
}

/// `check`: prints what it finds; exit 0 only for a sound mailbox.
fn check(run: &Run) -> Result<(), Failure> {
    let path = run.path()?;
    let pw = run.passphrase(&path)?;
    let found = checkup::checkup(&path, &pw, run.timeout())?;
    print_lines(found.lines())?;
    found.verdict()
}

/// Says what opening the mailbox merged from the drop area, and warns
/// about sealed files that could not be opened.
fn report_merge(mb: &Mailbox, log: &Log) {
    if mb.merged.merged > 0 {
        log.info(format_args!("merged: sealed={}", mb.merged.merged));
    }
    if let Some(text) = mb.merged.corrupt_warning(mb.path(), log.shows_addresses()) {
        log.warning(format_args!("{text}"));
        let _ = writeln!(io::stderr(), "{TOOL}: warning: {text}");
    }
}

/// Writes to standard output through a buffer; a reader that went away
/// (`| head`) is not an error.
fn print(
    write: impl FnOnce(&mut BufWriter<StdoutLock<'static>>) -> io::Result<()>,
) -> Result<(), Failure> {
    let mut out = BufWriter::new(io::stdout().lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .or_else(ignore_broken_pipe)
}

fn print_lines(lines: impl IntoIterator<Item = impl std::fmt::Display>) -> Result<(), Failure> {
    print(|out| lines.into_iter().try_for_each(|l| writeln!(out, "{l}")))
}

fn print_summaries(
    out: &mut impl Write,
    items: &[Summary],
    json: bool,
    with_folder: bool,
) -> io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, items).map_err(io::Error::other)?;
        return writeln!(out);
    }
    for s in items {
        if with_folder {
            write!(out, "{}\t", clean(&s.folder))?;
        }
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            s.uid,
            s.flags.letters(),
            humantime::format_rfc3339_seconds(
                SystemTime::UNIX_EPOCH + Duration::from_secs(s.internal_date.max(0) as u64)
            ),
            s.size,
            clean(&s.from),
            clean(&s.subject)
        )?;
    }
    Ok(())
}

/// A reader that went away (`| head`) is not an error.
fn ignore_broken_pipe(e: io::Error) -> Result<(), Failure> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Failure::tempfail(format!(
            "cannot write to standard output: {e}"
        )))
    }
}

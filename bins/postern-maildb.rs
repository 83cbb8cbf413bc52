//! postern-maildb(8): per-user mailboxes in encrypted SQLite files —
//! deliver a message from stdin (sealed to the mailbox's public key, no
//! passphrase), and with the passphrase: init, list, show, search, flag,
//! move, delete, folders, check.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use postern::config::Config;
use postern::exit::{Failure, Sysexit, ToFailure};
use postern::log::Log;
use postern::mail::status;
// Text from a message for a terminal: no control characters (no escape
// sequences, no tabs that would shift the columns).
use postern::mail::text::clean;
use postern::mailbox::passphrase::{self, PassphraseError, Prompt, Source};
use postern::mailbox::{self, Flags, INBOX, Mailbox, MailboxError, Summary, drop_area};

#[path = "postern-maildb/admin.rs"]
mod admin;
use postern_cli as common;

#[path = "postern-maildb/exchange.rs"]
mod exchange;

const TOOL: &str = "postern-maildb";

/// Per-user mailboxes in SQLite files encrypted with ChaCha20-Poly1305.
#[derive(Parser)]
#[command(name = TOOL, version)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    #[command(flatten)]
    mailbox: MailboxArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct PassphraseArgs {
    /// Read the passphrase from file descriptor N (to its end)
    #[arg(
        long,
        value_name = "N",
        global = true,
        conflicts_with = "passphrase_file"
    )]
    passphrase_fd: Option<u32>,
    /// Read the passphrase from FILE, which must have mode 0600 or stricter
    #[arg(long, value_name = "FILE", global = true)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Args)]
struct MailboxArgs {
    /// The mailbox of USER in the mailbox directory ([maildb] directory)
    #[arg(short = 'u', long, value_name = "USER", global = true)]
    user: Option<String>,
    /// The mailbox file FILE itself
    #[arg(
        short = 'm',
        long = "mailbox",
        value_name = "FILE",
        global = true,
        conflicts_with = "user"
    )]
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Create the mailbox with the standard folders
    Init,
    /// Seal the message on standard input into USER's drop area (no passphrase)
    Deliver {
        /// The user whose mailbox receives the message
        #[arg(value_name = "USER")]
        user: String,
        /// Folder to deliver into (INBOX if it does not exist)
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// List the messages of a folder
    List {
        /// The folder to list
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
        /// One JSON array instead of lines of tab-separated fields
        #[arg(long)]
        json: bool,
    },
    /// Write a message, exactly as delivered, to standard output
    Show {
        /// The message's UID in its folder
        uid: u32,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// Find messages containing every word of QUERY
    Search {
        /// Words to look for; from:, to:, subject:, body: limit a word to a field
        #[arg(value_name = "QUERY", required = true, num_args = 1..)]
        query: Vec<String>,
        /// Only in this folder (default: all)
        #[arg(long, value_name = "FOLDER")]
        folder: Option<String>,
        /// Only the N best matches (default: all)
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// One JSON array instead of lines of tab-separated fields
        #[arg(long)]
        json: bool,
    },
    /// Set or clear flags of a message (seen, answered, flagged, deleted, draft)
    Flag {
        /// The message's UID in its folder
        uid: u32,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
        /// Flag to set (repeatable)
        #[arg(long = "set", value_name = "FLAG", value_parser = parse_flag)]
        set: Vec<Flags>,
        /// Flag to clear (repeatable)
        #[arg(long = "clear", value_name = "FLAG", value_parser = parse_flag)]
        clear: Vec<Flags>,
    },
    /// Move a message to another folder (it gets a new UID there)
    Move {
        /// The message's UID in its folder
        uid: u32,
        /// Destination folder
        #[arg(value_name = "DEST")]
        dest: String,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// Delete a message for good
    Delete {
        /// The message's UID in its folder
        uid: u32,
        /// The folder the message is in
        #[arg(long, value_name = "FOLDER", default_value = INBOX)]
        folder: String,
    },
    /// List the folders with their counts, or create one
    Folders {
        /// Create the folder NAME
        #[arg(long, value_name = "NAME")]
        create: Option<String>,
        /// One JSON array instead of lines of tab-separated fields
        #[arg(long)]
        json: bool,
    },
    /// Check the encryption, the schema and the integrity of every page
    Check,
    /// Change the passphrase: re-encrypt a copy, then put it in place
    Passwd {
        /// Read the new passphrase from file descriptor N (to its end)
        #[arg(long, value_name = "N", conflicts_with = "new_passphrase_file")]
        new_passphrase_fd: Option<u32>,
        /// Read the new passphrase from FILE (mode 0600 or stricter)
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Remove the mailbox, its side files and its drop area for good
    Destroy {
        /// Really destroy it (without this, nothing is removed)
        #[arg(long)]
        yes: bool,
    },
    /// Show how much room the mailbox takes and its limit (no passphrase)
    Quota {
        /// One JSON object instead of lines
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Exchange(exchange::ExchangeCommand),
}

fn parse_flag(s: &str) -> Result<Flags, String> {
    Flags::parse(s).ok_or_else(|| {
        format!("unknown flag {s:?} (one of seen, answered, flagged, deleted, draft)")
    })
}

fn main() -> ExitCode {
    let cli = match common::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let config = match common::config(&cli.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let log = Log::open(TOOL, &config);
    common::finish(run(cli, &config, &log))
}

fn run(cli: Cli, config: &Config, log: &Log) -> Result<(), Failure> {
    let timeout = config.maildb.lock_timeout;
    let now = SystemTime::now();
    if let Command::Deliver { user, folder } = &cli.command {
        return deliver(&cli, config, log, user, folder, now);
    }
    if let Command::Exchange(cmd) = &cli.command {
        return exchange::run(cmd, &cli, config, log, now);
    }
    let path = mailbox_path(&cli.mailbox, config)?;
    match &cli.command {
        Command::Destroy { yes } => return admin::destroy(&cli, &path, *yes, timeout),
        Command::Quota { json } => return admin::quota(&path, config.maildb.quota, *json),
        _ => {}
    }
    if let Command::Init = cli.command {
        let pw = admin::read_new_passphrase(cli.passphrase.source(), &path)?;
        Mailbox::create(&path, &pw, timeout, now).map_err(|e| e.to_failure())?;
        return Ok(());
    }
    let pw = read_passphrase(&cli.passphrase, &path)?;
    if let Command::Passwd {
        new_passphrase_fd,
        new_passphrase_file,
    } = &cli.command
    {
        let mb = Mailbox::open(&path, &pw, timeout, now).map_err(|e| e.to_failure())?;
        report_merge(&mb, log);
        let source = Source::from_options(*new_passphrase_fd, new_passphrase_file.as_deref());
        let new = admin::read_new_passphrase(source, &path)?;
        return mailbox::rekey::passwd(mb, &pw, &new, timeout).map_err(|e| e.to_failure());
    }
    if let Command::Check = cli.command {
        return check(&path, &pw, timeout);
    }
    let mut mb = Mailbox::open(&path, &pw, timeout, now).map_err(|e| e.to_failure())?;
    drop(pw);
    report_merge(&mb, log);
    let fail = |e: MailboxError| e.to_failure();
    let mut out = BufWriter::new(io::stdout().lock());
    match cli.command {
        Command::List { folder, json } => {
            let items = mailbox::list(&mb, &folder).map_err(fail)?;
            print_summaries(&mut out, &items, json, false)
        }
        Command::Show { uid, folder } => {
            let raw = mailbox::show(&mb, &folder, uid).map_err(fail)?;
            out.write_all(&raw)
        }
        Command::Search {
            query,
            folder,
            limit,
            json,
        } => {
            let items =
                mailbox::search(&mb, &query.join(" "), folder.as_deref(), limit).map_err(fail)?;
            print_summaries(&mut out, &items, json, true)
        }
        Command::Flag {
            uid,
            folder,
            set,
            clear,
        } => {
            let all = |v: Vec<Flags>| v.into_iter().fold(Flags::default(), Flags::union);
            let flags = mailbox::flag(&mut mb, &folder, uid, all(set), all(clear)).map_err(fail)?;
            writeln!(out, "{}", flags.names().join(" "))
        }
        Command::Move { uid, dest, folder } => {
            let moved = mailbox::move_message(&mut mb, &folder, uid, &dest).map_err(fail)?;
            writeln!(out, "{}\t{}", clean(&moved.folder), moved.uid)
        }
        Command::Delete { uid, folder } => {
            mailbox::delete(&mut mb, &folder, uid).map_err(fail)?;
            Ok(())
        }
        Command::Folders { create, json } => {
            if let Some(name) = create {
                mailbox::create_folder(&mut mb, &name, now).map_err(fail)?;
            }
            let list = mailbox::folders(&mb).map_err(fail)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &list)
                    .map_err(io::Error::other)
                    .and_then(|()| writeln!(out))
            } else {
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
            }
        }
        Command::Init
        | Command::Check
        | Command::Deliver { .. }
        | Command::Passwd { .. }
        | Command::Destroy { .. }
        | Command::Quota { .. } => Ok(()),
        Command::Exchange(_) => Ok(()),
    }
    .and_then(|()| out.flush())
    .or_else(ignore_broken_pipe)
}

/// `deliver USER`: the message on stdin into USER's mailbox. Exit codes are
/// for Postfix: a missing mailbox bounces (5.1.1), a locked or broken one
/// defers (4.x), so mail is never lost to a problem on our side.
fn deliver(
    cli: &Cli,
    config: &Config,
    log: &Log,
    user: &str,
    folder: &str,
    now: SystemTime,
) -> Result<(), Failure> {
    if cli.passphrase.source().is_some() {
        return Err(Failure::config(
            "deliver takes no passphrase: it seals the message to the mailbox's public key",
        ));
    }
    let path = mailbox::name::path(&config.maildb.directory, user)
        .map_err(|e| MailboxError::from(e).to_delivery_failure())?;
    let msg = read_message(config.message_size_limit)?;
    // The figures go to postern's log, not to the sender.
    mailbox::quota::check_delivery(&path, msg.len() as u64, config.maildb.quota).map_err(|e| {
        log.warning(format_args!("deliver refused: 5.2.2 {e}"));
        e.to_failure()
    })?;
    let started = std::time::Instant::now();
    let receipt =
        drop_area::deliver_sealed(&path, &msg, folder, now, config.maildb.directory_fsync)
            .map_err(|e| {
                let f = e.to_delivery_failure();
                // The whole error names the mailbox file, so the address.
                if log.shows_addresses() {
                    log.warning(format_args!("deliver failed: {} {e}", f.status));
                } else {
                    log.warning(format_args!("deliver failed: {} {}", f.status, f.text));
                }
                f
            })?;
    let who = if log.shows_addresses() {
        format!(" user={user}")
    } else {
        String::new()
    };
    log.info(format_args!(
        "sealed: size={} sealed_size={}{who} delay={:.3}s",
        msg.len(),
        receipt.size,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Says what opening the mailbox merged from the drop area, and warns
/// about sealed files that could not be opened.
fn report_merge(mb: &Mailbox, log: &Log) {
    let m = &mb.merged;
    if m.merged > 0 {
        log.info(format_args!("merged: sealed={}", m.merged));
    }
    if m.corrupt > 0 {
        // The drop area's path holds the mailbox's name, so the address.
        let place = if log.shows_addresses() {
            drop_area::drop_dir(mb.path())
                .join("corrupt")
                .display()
                .to_string()
        } else {
            "corrupt/ in the mailbox's drop area".to_owned()
        };
        let text = format!(
            "{} sealed messages could not be opened and were moved to {place}",
            m.corrupt
        );
        log.warning(format_args!("{text}"));
        let _ = writeln!(io::stderr(), "{TOOL}: warning: {text}");
    }
}

/// `check`: prints what it finds; exit 0 only for a sound mailbox.
fn check(path: &std::path::Path, pw: &str, timeout: Duration) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let mb = match Mailbox::open_for_check(path, pw, timeout) {
        Ok(mb) => mb,
        // Damage that stops even the opening is a finding, reported as such.
        Err(e @ MailboxError::Damaged { .. }) => {
            let detail = match &e {
                MailboxError::Damaged { detail, .. } => detail.clone(),
                _ => String::new(),
            };
            writeln!(out, "mailbox: {}", path.display())
                .and_then(|()| writeln!(out, "problem: cannot open: {}", clean(&detail)))
                .or_else(ignore_broken_pipe)?;
            return Err(e.to_failure());
        }
        Err(e) => return Err(e.to_failure()),
    };
    let report = mailbox::check(&mb).map_err(|e| e.to_failure())?;
    let lines = [
        format!("mailbox: {}", path.display()),
        format!("library: {}", mailbox::library_version()),
        format!("cipher: {}", mailbox::CIPHER),
        format!("schema version: {}", report.schema_version),
        format!("messages: {}", report.messages),
        format!(
            "sealed messages waiting: {}",
            drop_area::waiting(path).map_err(|e| Failure::tempfail(format!(
                "cannot read the drop area of {}: {e}",
                path.display()
            )))?
        ),
    ];
    let problems = report
        .problems
        .iter()
        .map(|p| format!("problem: {}", clean(p)));
    lines
        .into_iter()
        .chain(problems)
        .try_for_each(|l| writeln!(out, "{l}"))
        .or_else(ignore_broken_pipe)?;
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            Sysexit::DataErr,
            status::SYSTEM,
            format!(
                "mailbox {} is damaged: {} problem(s)",
                path.display(),
                report.problems.len()
            ),
        ))
    }
}

fn mailbox_path(args: &MailboxArgs, config: &Config) -> Result<PathBuf, Failure> {
    match (&args.user, &args.file) {
        (_, Some(file)) => Ok(file.clone()),
        (Some(user), None) => mailbox::name::path(&config.maildb.directory, user)
            .map_err(|e| MailboxError::from(e).to_failure()),
        (None, None) => Err(Failure::config(
            "no mailbox given: use -u USER or -m FILE".to_string(),
        )),
    }
}

impl PassphraseArgs {
    fn source(&self) -> Option<Source> {
        Source::from_options(self.passphrase_fd, self.passphrase_file.as_deref())
    }
}

/// The passphrase from --passphrase-fd or --passphrase-file, else from the
/// terminal if standard input is one.
fn read_passphrase(
    args: &PassphraseArgs,
    path: &std::path::Path,
) -> Result<passphrase::Passphrase, Failure> {
    let what = path.display().to_string();
    passphrase::obtain(args.source().as_ref(), Prompt::Existing(&what))?
        .ok_or_else(|| PassphraseError::Missing.to_failure())
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

/// Reads the message (see `common::read_message`); an empty one is refused.
fn read_message(limit: u64) -> Result<Vec<u8>, Failure> {
    let msg = common::read_message(limit)?;
    if msg.is_empty() {
        return Err(MailboxError::EmptyMessage.to_failure());
    }
    Ok(msg)
}

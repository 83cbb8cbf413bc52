//! postern-maildb's commands that move mail in and out of a mailbox:
//! export, import, purge, backup, restore. Parsing and printing only; the
//! work is in `postern::mailbox::{export, import, purge, backup}`.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Subcommand, ValueEnum};
use postern::config::Config;
use postern::exit::{Failure, ToFailure};
use postern::log::Log;
use postern::mailbox::exchange::ExchangeError;
use postern::mailbox::passphrase::{self, Prompt, Source};
use postern::mailbox::{Mailbox, backup, export, import, purge};

#[derive(Subcommand)]
pub enum ExchangeCommand {
    /// Write the messages to DEST as mbox (mboxrd), .eml files, or an encrypted SQLite copy
    Export {
        /// The file or directory to create (for mbox, - is standard output)
        #[arg(value_name = "DEST")]
        dest: PathBuf,
        /// mbox, eml or sqlite
        #[arg(long, value_name = "FORMAT")]
        format: Format,
        /// Only this folder (default: all)
        #[arg(long, value_name = "FOLDER")]
        folder: Option<String>,
        /// For sqlite: encrypt the copy with the passphrase read from file descriptor N
        #[arg(long, value_name = "N", conflicts_with = "new_passphrase_file")]
        new_passphrase_fd: Option<u32>,
        /// For sqlite: encrypt the copy with the passphrase in FILE (mode 0600)
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Add the messages of an mbox, a Maildir, .eml files or a plaintext mailbox
    Import {
        /// The mbox file, Maildir, directory of .eml files or .eml file
        #[arg(value_name = "SRC")]
        src: PathBuf,
        /// Into this folder (default INBOX; a mailbox's own folders for a mailbox)
        #[arg(long, value_name = "FOLDER")]
        folder: Option<String>,
        /// Accept an unencrypted SQLite mailbox as SRC and copy its messages
        #[arg(long)]
        allow_plaintext_import: bool,
    },
    /// Delete the messages that arrived more than DAYS days ago
    Purge {
        /// Age in days, by the time each message arrived
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
        /// Only in this folder (default: all)
        #[arg(long, value_name = "FOLDER")]
        folder: Option<String>,
    },
    /// Copy the encrypted mailbox files into the directory DIR (no passphrase)
    Backup {
        /// The directory to write the backup into (created if needed)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Every mailbox of the mailbox directory, not one
        #[arg(long)]
        all: bool,
    },
    /// Put a backup in place as the mailbox, after checking it with the passphrase
    Restore {
        /// The backed-up mailbox file (DIR/NAME.sqlite)
        #[arg(value_name = "SRC")]
        src: PathBuf,
        /// Replace an existing mailbox (which no process may have open)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Mbox,
    Eml,
    Sqlite,
}

pub fn run(
    cmd: &ExchangeCommand,
    cli: &super::Cli,
    config: &Config,
    log: &Log,
    now: SystemTime,
) -> Result<(), Failure> {
    let timeout = config.maildb.lock_timeout;
    let fail = |e: ExchangeError| e.to_failure();
    let mut out = BufWriter::new(io::stdout().lock());
    match cmd {
        ExchangeCommand::Backup { dir, all: true } => {
            let results =
                backup::backup_all(&config.maildb.directory, dir, timeout).map_err(fail)?;
            let total = results.len();
            let mut failed = 0;
            let mut first_failure = None;
            for (i, (mailbox, result)) in results.into_iter().enumerate() {
                let name = file_name(&mailbox);
                match result {
                    Ok(r) => writeln!(out, "{name}\tok\t{}\t{}", r.files, r.bytes),
                    Err(e) => {
                        let f = e.to_failure();
                        // A mailbox's file name is its user's address: the
                        // log names it by its place in the run instead.
                        if log.shows_addresses() {
                            log.warning(format_args!("backup failed: {name}: {}", f.status));
                        } else {
                            log.warning(format_args!(
                                "backup failed: mailbox {} of {total}: {}",
                                i + 1,
                                f.status
                            ));
                        }
                        let line = writeln!(out, "{name}\tfailed\t{}", super::clean(&f.text));
                        failed += 1;
                        first_failure.get_or_insert(f);
                        line
                    }
                }
                .or_else(super::ignore_broken_pipe)?;
            }
            out.flush().or_else(super::ignore_broken_pipe)?;
            // stdout names each mailbox; the status line (for cron's mail
            // or log) says how many, with the first failure's exit status.
            return first_failure.map_or(Ok(()), |f| {
                Err(Failure {
                    text: format!(
                        "{failed} of {total} mailboxes were not backed up (see standard output)"
                    ),
                    ..f
                })
            });
        }
        ExchangeCommand::Backup { dir, all: false } => {
            let path = super::mailbox_path(&cli.mailbox, config)?;
            let r = backup::backup(&path, dir, timeout).map_err(fail)?;
            writeln!(out, "{}\tok\t{}\t{}", file_name(&path), r.files, r.bytes)
                .and_then(|()| out.flush())
                .or_else(super::ignore_broken_pipe)?;
            return Ok(());
        }
        _ => {}
    }
    let path = super::mailbox_path(&cli.mailbox, config)?;
    let pw = super::read_passphrase(&cli.passphrase, &path)?;
    if let ExchangeCommand::Restore { src, force } = cmd {
        let mb = backup::restore(src, &path, &pw, *force, timeout, now).map_err(fail)?;
        drop(pw);
        super::report_merge(&mb, log);
        let messages: u64 = postern::mailbox::folders(&mb)
            .map_err(|e| e.to_failure())?
            .iter()
            .map(|f| f.messages)
            .sum();
        return writeln!(out, "restored\t{}\t{messages}", path.display())
            .and_then(|()| out.flush())
            .or_else(super::ignore_broken_pipe);
    }
    let mut mb = Mailbox::open(&path, &pw, timeout, now).map_err(|e| e.to_failure())?;
    super::report_merge(&mb, log);
    match cmd {
        ExchangeCommand::Export {
            dest,
            format,
            folder,
            new_passphrase_fd,
            new_passphrase_file,
        } => {
            let source = Source::from_options(*new_passphrase_fd, new_passphrase_file.as_deref());
            let new_pw = passphrase::obtain(source.as_ref(), Prompt::Never)?;
            if new_pw.is_some() && !matches!(format, Format::Sqlite) {
                return Err(Failure::config(
                    "a new passphrase is for --format sqlite only; mbox and eml are not encrypted",
                ));
            }
            let folder = folder.as_deref();
            let report = match format {
                Format::Mbox if dest.as_os_str() == "-" => {
                    drop(out);
                    let mut stdout = BufWriter::with_capacity(256 * 1024, io::stdout().lock());
                    let r = export::export_mbox(&mb, &mut stdout, folder);
                    return match r {
                        Ok(_) => stdout.flush().or_else(super::ignore_broken_pipe),
                        Err(ExchangeError::Io { source, .. })
                            if source.kind() == io::ErrorKind::BrokenPipe =>
                        {
                            Ok(())
                        }
                        Err(e) => Err(fail(e)),
                    };
                }
                Format::Mbox => export::export_mbox_file(&mb, dest, folder),
                Format::Eml => export::export_eml(&mb, dest, folder),
                Format::Sqlite => {
                    let key: &str = new_pw.as_deref().map_or(pw.as_str(), |s| s.as_str());
                    export::export_sqlite(&mb, dest, key, folder, timeout)
                }
            }
            .map_err(fail)?;
            writeln!(
                out,
                "exported\t{}\t{}\t{}",
                report.messages,
                report.bytes,
                dest.display()
            )
        }
        ExchangeCommand::Import {
            src,
            folder,
            allow_plaintext_import,
        } => {
            drop(pw);
            let opts = import::ImportOptions {
                folder: folder.clone(),
                allow_plaintext: *allow_plaintext_import,
                size_limit: config.message_size_limit,
            };
            let r = import::import(&mut mb, src, &opts, now).map_err(fail)?;
            log.info(format_args!(
                "imported: {} duplicates={} skipped={} too_large={} truncated={}",
                r.imported, r.duplicates, r.skipped, r.too_large, r.truncated
            ));
            if r.truncated > 0 {
                let _ = writeln!(
                    io::stderr(),
                    "{}: warning: {} message(s) cut short at the end of {} were imported as they are",
                    super::TOOL,
                    r.truncated,
                    src.display()
                );
            }
            writeln!(
                out,
                "imported\t{}\tduplicates\t{}\tskipped\t{}\ttoo_large\t{}\ttruncated\t{}",
                r.imported, r.duplicates, r.skipped, r.too_large, r.truncated
            )
        }
        ExchangeCommand::Purge { older_than, folder } => {
            drop(pw);
            let n = purge::purge(&mut mb, *older_than, folder.as_deref(), now)
                .map_err(|e| e.to_failure())?;
            writeln!(out, "purged\t{n}")
        }
        ExchangeCommand::Backup { .. } | ExchangeCommand::Restore { .. } => Ok(()),
    }
    .and_then(|()| out.flush())
    .or_else(super::ignore_broken_pipe)
}

fn file_name(p: &Path) -> String {
    super::clean(
        &p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
    .into_owned()
}

//! postern-maildb's commands that move mail in and out of a mailbox:
//! export, import, purge, backup, restore. Parsing and printing only; the
//! work is in `postern::mailbox::{export, import, purge, backup}`.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use postern::exit::{Failure, ToFailure};
use postern::mailbox::passphrase::{self, Prompt, Source};
use postern::mailbox::{backup, export, import, message_count, purge};

use super::{Run, clean, ignore_broken_pipe, print};

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

pub fn run(run: &Run, cmd: &ExchangeCommand) -> Result<(), Failure> {
    match cmd {
        ExchangeCommand::Export {
            dest,
            format,
            folder,
            new_passphrase_fd,
            new_passphrase_file,
        } => {
            let new = Source::from_options(*new_passphrase_fd, new_passphrase_file.as_deref());
            export(run, dest, (*format).into(), folder.as_deref(), new)
        }
        ExchangeCommand::Import {
            src,
            folder,
            allow_plaintext_import,
        } => import(run, src, folder, *allow_plaintext_import),
        ExchangeCommand::Purge { older_than, folder } => {
            let n = purge::purge(&mut run.open()?, *older_than, folder.as_deref(), run.now)?;
            print(|out| writeln!(out, "purged\t{n}"))
        }
        ExchangeCommand::Backup { dir, all: true } => backup_all(run, dir),
        ExchangeCommand::Backup { dir, all: false } => {
            let path = run.path()?;
            let r = backup::backup(&path, dir, run.timeout())?;
            let name = backup::mailbox_name(&path);
            print(|out| writeln!(out, "{name}\tok\t{}\t{}", r.files, r.bytes))
        }
        ExchangeCommand::Restore { src, force } => {
            let path = run.path()?;
            let pw = run.passphrase(&path)?;
            let mb = backup::restore(src, &path, &pw, *force, run.timeout(), run.now)?;
            drop(pw);
            super::report_merge(&mb, run.log);
            let messages = message_count(&mb)?;
            print(|out| writeln!(out, "restored\t{}\t{messages}", path.display()))
        }
    }
}

impl From<Format> for export::Format {
    fn from(f: Format) -> export::Format {
        match f {
            Format::Mbox => export::Format::Mbox,
            Format::Eml => export::Format::Eml,
            Format::Sqlite => export::Format::Sqlite,
        }
    }
}

/// `export`: to DEST, or as mbox to standard output for `-`.
fn export(
    run: &Run,
    dest: &Path,
    format: export::Format,
    folder: Option<&str>,
    new: Option<Source>,
) -> Result<(), Failure> {
    let (mb, pw) = run.unlock()?;
    let new_pw = passphrase::obtain(new.as_ref(), Prompt::Never)?;
    export::check_new_passphrase(format, new_pw.is_some())?;
    if format == export::Format::Mbox && dest.as_os_str() == "-" {
        let mut stdout = BufWriter::with_capacity(256 * 1024, io::stdout().lock());
        return match export::export_mbox(&mb, &mut stdout, folder) {
            Ok(_) => stdout.flush().or_else(ignore_broken_pipe),
            Err(e) if e.is_broken_pipe() => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let new_pw = new_pw.as_ref().map(|p| p.as_str());
    let r = export::export(&mb, format, dest, folder, &pw, new_pw, run.timeout())?;
    let dest = dest.display();
    print(|out| writeln!(out, "exported\t{}\t{}\t{dest}", r.messages, r.bytes))
}

/// `import`: the messages of SRC added, duplicates left out.
fn import(run: &Run, src: &Path, folder: &Option<String>, plaintext: bool) -> Result<(), Failure> {
    let mut mb = run.open()?;
    let opts = import::ImportOptions {
        folder: folder.clone(),
        allow_plaintext: plaintext,
        size_limit: run.config.message_size_limit,
    };
    let r = import::import(&mut mb, src, &opts, run.now)?;
    let counts = format!(
        "{} duplicates={} skipped={} too_large={} truncated={}",
        r.imported, r.duplicates, r.skipped, r.too_large, r.truncated
    );
    run.log.info(format_args!("imported: {counts}"));
    if r.truncated > 0 {
        let _ = writeln!(
            io::stderr(),
            "{}: warning: {} message(s) cut short at the end of {} were imported as they are",
            super::TOOL,
            r.truncated,
            src.display()
        );
    }
    print(|out| {
        writeln!(
            out,
            "imported\t{}\tduplicates\t{}\tskipped\t{}\ttoo_large\t{}\ttruncated\t{}",
            r.imported, r.duplicates, r.skipped, r.too_large, r.truncated
        )
    })
}

/// `backup --all`: every mailbox on its own; standard output names each,
/// the status line (for cron's mail or log) says how many failed.
fn backup_all(run: &Run, dir: &Path) -> Result<(), Failure> {
    let results = backup::backup_all(&run.config.maildb.directory, dir, run.timeout())?;
    backup::log_failures(&results, run.log);
    print(|out| {
        results.iter().try_for_each(|(mailbox, result)| {
            let name = backup::mailbox_name(mailbox);
            match result {
                Ok(r) => writeln!(out, "{name}\tok\t{}\t{}", r.files, r.bytes),
                Err(e) => writeln!(out, "{name}\tfailed\t{}", clean(&e.to_failure().text)),
            }
        })
    })?;
    backup::verdict(&results)
}

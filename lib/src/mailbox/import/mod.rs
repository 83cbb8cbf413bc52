//! `import`: messages from an mbox (any of the variants [`super::mbox`]
//! reads), a Maildir (`cur/` and `new/`, flags from the `:2,` info suffix),
//! a directory of `.eml` files, a single `.eml` file, or — only when asked
//! with `allow_plaintext` — an unencrypted postern mailbox, whose messages
//! are copied into this encrypted one.
//!
//! The internal date (when the message arrived) is the first plausible one
//! of: for a Maildir file, the Unix time its name starts with (the standard
//! `time.unique.host` naming); for an mbox message, the date of its From_
//! line; then the message's `Date:` field (RFC 5322 section 3.6.1); then,
//! for a file, its modification time; else the time of the import. A date
//! counts when it is after the first second of 1970 and at most a day after
//! the import ([`plausible_date`]), so a malformed or absurd one falls
//! through to the next. A postern mailbox's messages keep their internal
//! dates.
//!
//! Streaming: one message is in memory at a time, and a message larger
//! than the size limit is counted and skipped without being held.
//!
//! Atomic and repeatable: messages are stored in batches, each one write
//! transaction (at most [`BATCH_MESSAGES`] messages or [`BATCH_BYTES`]
//! bytes), so a crash or kill leaves whole batches and never half a
//! message. The SHA-256 of each imported message (as stored) is kept in
//! the table `imported`, and a message whose hash is there is skipped as
//! a duplicate: running the same import again after a crash, or twice,
//! stores each message once. The row goes with its message (ON DELETE
//! CASCADE), so a message deleted later can be imported again.

//!
//! One module per kind of source ([`files`]: Maildir and `.eml`;
//! [`mbox_source`]; [`sqlite_source`]), behind the [`Source`] trait; the
//! rules for the internal date in [`dating`], the duplicate check in
//! [`dedup`].

mod dating;
mod dedup;
mod files;
mod mbox_source;
mod sqlite_source;

pub use dating::{arrival_date, plausible_date};
pub use files::{maildir_flags, maildir_name_time};

use files::{FileSource, has_eml_extension};
use mbox_source::MboxSource;
use sqlite_source::SqliteSource;

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::SystemTime;

use rusqlite::params;

use super::exchange::ExchangeError;
use super::export::resolve_folder;
use super::ops::{Flags, INBOX, insert_message};
use super::schema::unix_seconds;
use super::{Mailbox, MailboxError, starts_plaintext};
use crate::mail::date::header_date;

/// Most messages in one transaction.
pub const BATCH_MESSAGES: usize = 1000;
/// Most message bytes in one transaction.
pub const BATCH_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Where the messages go; default INBOX (for a mailbox: their own folders).
    pub folder: Option<String>,
    /// Accept an unencrypted SQLite mailbox as the source.
    pub allow_plaintext: bool,
    /// Larger messages are skipped (counted in `too_large`).
    pub size_limit: u64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    /// Already imported before (same SHA-256): not stored again.
    pub duplicates: u64,
    /// Files that are not messages (wrong name, empty, not a file).
    pub skipped: u64,
    pub too_large: u64,
    /// Messages stored although the source ended in the middle of them.
    pub truncated: u64,
}

/// The kind of source, as detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Mbox,
    Maildir,
    EmlDirectory,
    EmlFile,
    PlaintextSqlite,
}

struct Incoming {
    raw: Vec<u8>,
    flags: Flags,
    arrival: Arrival,
    folder: Option<String>,
    truncated: bool,
}

/// What a source knows of when a message arrived.
enum Arrival {
    /// The internal date a postern mailbox holds: kept as it is.
    Recorded(i64),
    /// What to try around the message's Date field (see [`arrival_date`]):
    /// `before` it, a Maildir file name's time or a From_ line's date;
    /// `after` it, a file's modification time.
    Hints {
        before: Option<i64>,
        after: Option<i64>,
    },
}

enum Item {
    Message(Incoming),
    Skipped,
    TooLarge,
}

trait Source {
    fn next_item(&mut self) -> Result<Option<Item>, ExchangeError>;
    /// The folders the source's messages name (a mailbox's own folders).
    fn folders(&mut self) -> Result<Vec<String>, ExchangeError> {
        Ok(Vec::new())
    }
}

/// Decides what `src` is: a directory with `cur/` or `new/` is a Maildir,
/// another directory holds `.eml` files; a file that starts with the
/// SQLite header is a plaintext mailbox, one named `*.eml` a message, any
/// other file an mbox (an empty file is an mbox with no messages).
pub fn detect(src: &Path) -> Result<SourceKind, ExchangeError> {
    let meta = fs::metadata(src).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ExchangeError::bad(src, "no such file or directory"),
        _ => ExchangeError::io(src, "open", e),
    })?;
    if meta.is_dir() {
        let maildir = ["cur", "new"].iter().any(|d| src.join(d).is_dir());
        return Ok(if maildir {
            SourceKind::Maildir
        } else {
            SourceKind::EmlDirectory
        });
    }
    if !meta.is_file() {
        return Err(ExchangeError::bad(src, "not a file or a directory"));
    }
    if starts_plaintext(src).map_err(|e| ExchangeError::io(src, "read", e))? {
        return Ok(SourceKind::PlaintextSqlite);
    }
    if has_eml_extension(src) {
        return Ok(SourceKind::EmlFile);
    }
    Ok(SourceKind::Mbox)
}

/// Imports everything in `src` into the mailbox.
pub fn import(
    mb: &mut Mailbox,
    src: &Path,
    opts: &ImportOptions,
    now: SystemTime,
) -> Result<ImportReport, ExchangeError> {
    let folder = opts
        .folder
        .as_deref()
        .map(|f| resolve_folder(mb, f))
        .transpose()?;
    let limit = usize::try_from(opts.size_limit).unwrap_or(usize::MAX);
    let mut source: Box<dyn Source> = match detect(src)? {
        SourceKind::Mbox => {
            let file = File::open(src).map_err(|e| ExchangeError::io(src, "open", e))?;
            Box::new(MboxSource::new(src, file, limit))
        }
        SourceKind::EmlFile => Box::new(FileSource::eml_file(src, opts.size_limit)),
        SourceKind::EmlDirectory => Box::new(FileSource::eml_directory(src, opts.size_limit)?),
        SourceKind::Maildir => Box::new(FileSource::maildir(src, opts.size_limit)?),
        SourceKind::PlaintextSqlite => {
            if !opts.allow_plaintext {
                return Err(ExchangeError::PlaintextRefused {
                    path: src.to_owned(),
                });
            }
            Box::new(SqliteSource::open(src, opts.size_limit)?)
        }
    };
    if folder.is_none() {
        let existing: Vec<String> = super::folders(mb)?.into_iter().map(|f| f.name).collect();
        for name in source.folders()? {
            if !existing.contains(&name) && !name.eq_ignore_ascii_case(INBOX) {
                super::create_folder(mb, &name, now)?;
            }
        }
    }
    dedup::prepare(mb.conn()).map_err(|e| mb.sql(e))?;
    let mut report = ImportReport::default();
    let default_date = unix_seconds(now);
    loop {
        let batch = mb.write(|tx| {
            super::schema::tune_fts(tx)?;
            store_batch(
                tx,
                source.as_mut(),
                folder.as_deref(),
                default_date,
                &mut report,
            )
        });
        match batch {
            Ok(true) => return Ok(report),
            Ok(false) => {}
            Err(BatchError::Sql(e)) => return Err(mb.sql(e).into()),
            Err(BatchError::Other(e)) => return Err(e),
        }
    }
}

enum BatchError {
    Sql(rusqlite::Error),
    Other(ExchangeError),
}

impl From<rusqlite::Error> for BatchError {
    fn from(e: rusqlite::Error) -> Self {
        BatchError::Sql(e)
    }
}

impl From<ExchangeError> for BatchError {
    fn from(e: ExchangeError) -> Self {
        BatchError::Other(e)
    }
}

/// Stores messages until the batch is full (`false`) or the source is
/// done (`true`).
fn store_batch(
    tx: &rusqlite::Transaction<'_>,
    source: &mut dyn Source,
    folder: Option<&str>,
    default_date: i64,
    report: &mut ImportReport,
) -> Result<bool, BatchError> {
    let (mut n, mut bytes) = (0usize, 0usize);
    while n < BATCH_MESSAGES && bytes < BATCH_BYTES {
        let m = match source.next_item()? {
            None => return Ok(true),
            Some(Item::Skipped) => {
                report.skipped += 1;
                continue;
            }
            Some(Item::TooLarge) => {
                report.too_large += 1;
                continue;
            }
            Some(Item::Message(m)) if m.raw.is_empty() => {
                report.skipped += 1;
                continue;
            }
            Some(Item::Message(m)) => m,
        };
        let hash = dedup::digest(&m.raw);
        if dedup::seen(tx, &hash)? {
            report.duplicates += 1;
            continue;
        }
        let target = folder.or(m.folder.as_deref()).unwrap_or(INBOX);
        let date = match m.arrival {
            Arrival::Recorded(date) => date,
            Arrival::Hints { before, after } => {
                arrival_date(before, || header_date(&m.raw), after, default_date)
            }
        };
        let Some(stored) = insert_message(tx, &m.raw, target, date)? else {
            return Err(BatchError::Other(
                MailboxError::UidsExhausted {
                    folder: target.to_owned(),
                }
                .into(),
            ));
        };
        let id: i64 = tx.query_row(
            "SELECT m.id FROM messages m JOIN folders f ON f.id = m.folder_id
             WHERE f.name = ?1 AND m.uid = ?2",
            params![stored.folder, stored.uid],
            |r| r.get(0),
        )?;
        if m.flags != Flags::default() {
            tx.execute(
                "UPDATE messages SET flags = ?2 WHERE id = ?1",
                params![id, m.flags.0],
            )?;
        }
        dedup::record(tx, &hash, id)?;
        report.imported += 1;
        report.truncated += u64::from(m.truncated);
        n += 1;
        bytes += m.raw.len();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_452_559;

    fn internal_dates(mb: &Mailbox) -> Vec<(String, i64)> {
        let mut stmt = mb
            .conn()
            .prepare("SELECT m.raw, m.internal_date FROM messages m ORDER BY m.internal_date, m.id")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                let raw: Vec<u8> = r.get(0)?;
                Ok((raw, r.get(1)?))
            })
            .unwrap();
        rows.map(|r| {
            let (raw, date) = r.unwrap();
            let text = String::from_utf8_lossy(&raw).into_owned();
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_owned();
            (subject, date)
        })
        .collect()
    }

    fn new_mailbox(dir: &Path) -> Mailbox {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(NOW as u64);
        Mailbox::create(
            &dir.join("bob.sqlite"),
            "pw",
            std::time::Duration::from_secs(5),
            now,
        )
        .unwrap()
    }

    fn set_mtime(path: &Path, t: i64) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t as u64))
            .unwrap();
    }

    #[test]
    fn maildir_and_eml_dates_come_from_the_name_the_date_field_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(NOW as u64);
        let mut mb = new_mailbox(dir.path());
        let md = dir.path().join("md");
        fs::create_dir_all(md.join("new")).unwrap();
        fs::create_dir_all(md.join("cur")).unwrap();
        let d2021 = "Sun, 14 Feb 2021 10:00:00 +0000"; // 1613296800
        let files = [
            // The name's time first, whatever the Date field says.
            ("new/1600000000.M1P2.host", "by-name", d2021),
            // A name without a time, or an absurd one: the Date field.
            ("cur/other-name:2,S", "by-date", d2021),
            ("cur/99999999999.M1.host:2,", "absurd-name", d2021),
            // A malformed Date field: the file's time.
            (
                "cur/mua-name:2,",
                "by-mtime",
                "Mon, 32 Foo 2024 99:99:99 +0000",
            ),
        ];
        for (name, subject, date) in files {
            let p = md.join(name);
            fs::write(&p, format!("Subject: {subject}\nDate: {date}\n\nx\n")).unwrap();
            set_mtime(&p, 1_500_000_000);
        }
        let opts = ImportOptions {
            size_limit: 1 << 20,
            ..ImportOptions::default()
        };
        let report = import(&mut mb, &md, &opts, now).unwrap();
        assert_eq!(report.imported, 4);
        assert_eq!(
            internal_dates(&mb),
            [
                ("by-mtime".to_owned(), 1_500_000_000),
                ("by-name".to_owned(), 1_600_000_000),
                ("by-date".to_owned(), 1_613_296_800),
                ("absurd-name".to_owned(), 1_613_296_800),
            ]
        );

        // .eml files: a leading number in the name is not a time.
        let dir = tempfile::tempdir().unwrap();
        let mut mb = new_mailbox(dir.path());
        let emls = dir.path().join("emls");
        fs::create_dir(&emls).unwrap();
        for (name, subject, date) in [
            ("1600000000.x.eml", "eml-date", d2021),
            ("2.eml", "eml-mtime", "yesterday"),
        ] {
            let p = emls.join(name);
            fs::write(&p, format!("Subject: {subject}\nDate: {date}\n\nx\n")).unwrap();
            set_mtime(&p, 1_500_000_000);
        }
        let no_date = emls.join("3.eml");
        fs::write(&no_date, "Subject: eml-future-mtime\n\nx\n").unwrap();
        set_mtime(&no_date, NOW + 10 * 86_400);
        import(&mut mb, &emls, &opts, now).unwrap();
        assert_eq!(
            internal_dates(&mb),
            [
                ("eml-mtime".to_owned(), 1_500_000_000),
                ("eml-date".to_owned(), 1_613_296_800),
                ("eml-future-mtime".to_owned(), NOW),
            ]
        );
    }

    #[test]
    fn mbox_dates_come_from_the_from_line_else_the_date_field() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(NOW as u64);
        let mut mb = new_mailbox(dir.path());
        let src = dir.path().join("in.mbox");
        fs::write(
            &src,
            concat!(
                "From a@b Mon Nov 14 22:13:20 2023\nSubject: from-line\n",
                "Date: Sun, 14 Feb 2021 10:00:00 +0000\n\nx\n\n",
                "From a@b 22:13:20 2023\nSubject: no-month\n",
                "Date: Sun, 14 Feb 2021 10:00:00 +0000\n\nx\n\n",
                "From a@b Mon Jan  1 00:00:00 1900\nSubject: from-1900\n",
                "Date: Sun, 14 Feb 2021 10:00:01 +0000\n\nx\n\n",
                "From a@b Mon Jan  1 00:00:00 2999\nSubject: nothing\n",
                "Date: not a date\n\nx\n",
            ),
        )
        .unwrap();
        let opts = ImportOptions {
            size_limit: 1 << 20,
            ..ImportOptions::default()
        };
        assert_eq!(import(&mut mb, &src, &opts, now).unwrap().imported, 4);
        assert_eq!(
            internal_dates(&mb),
            [
                ("no-month".to_owned(), 1_613_296_800),
                ("from-1900".to_owned(), 1_613_296_801),
                ("from-line".to_owned(), 1_700_000_000),
                ("nothing".to_owned(), NOW),
            ]
        );
    }

    #[test]
    fn sources_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::create_dir_all(p("md/cur")).unwrap();
        std::fs::create_dir(p("emls")).unwrap();
        std::fs::write(p("a.EML"), b"Subject: x\n\n").unwrap();
        std::fs::write(p("mbox"), b"").unwrap();
        let mut plain = b"SQLite format 3\0".to_vec();
        plain.resize(100, 0);
        std::fs::write(p("plain.db"), plain).unwrap();
        assert_eq!(detect(&p("md")).unwrap(), SourceKind::Maildir);
        assert_eq!(detect(&p("emls")).unwrap(), SourceKind::EmlDirectory);
        assert_eq!(detect(&p("a.EML")).unwrap(), SourceKind::EmlFile);
        assert_eq!(detect(&p("mbox")).unwrap(), SourceKind::Mbox);
        assert_eq!(detect(&p("plain.db")).unwrap(), SourceKind::PlaintextSqlite);
        assert!(matches!(
            detect(&p("missing")),
            Err(ExchangeError::BadSource { .. })
        ));
    }

    #[test]
    fn a_second_import_finds_every_message_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_452_559);
        let lock = std::time::Duration::from_secs(5);
        let mut mb = Mailbox::create(&dir.path().join("bob.sqlite"), "pw", lock, now).unwrap();
        let src = dir.path().join("in.mbox");
        let mut text = String::new();
        for i in 0..(BATCH_MESSAGES + 5) {
            text.push_str(&format!(
                "From x Mon Jan  1 00:00:00 2024\nSubject: {i}\n\nbody {i}\n\n"
            ));
        }
        std::fs::write(&src, text).unwrap();
        let opts = ImportOptions {
            size_limit: 1 << 20,
            ..ImportOptions::default()
        };
        let first = import(&mut mb, &src, &opts, now).unwrap();
        assert_eq!(first.imported, BATCH_MESSAGES as u64 + 5);
        let again = import(&mut mb, &src, &opts, now).unwrap();
        assert_eq!((again.imported, again.duplicates), (0, first.imported));
        let hashes: i64 = mb
            .conn()
            .query_row("SELECT count(*) FROM imported", [], |r| r.get(0))
            .unwrap();
        assert_eq!(hashes as u64, first.imported);
        super::super::delete(&mut mb, INBOX, 1).unwrap();
        let hashes: i64 = mb
            .conn()
            .query_row("SELECT count(*) FROM imported", [], |r| r.get(0))
            .unwrap();
        assert_eq!(hashes as u64, first.imported - 1);
    }
}

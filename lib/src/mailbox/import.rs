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

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::exchange::ExchangeError;
use super::export::resolve_folder;
use super::mbox::{MboxError, MboxReader};
use super::ops::{Flags, INBOX, insert_message};
use super::schema::unix_seconds;
use super::{Mailbox, MailboxError, starts_plaintext};
use crate::mail::date::header_date;

/// Most messages in one transaction.
pub const BATCH_MESSAGES: usize = 1000;
/// Most message bytes in one transaction.
pub const BATCH_BYTES: usize = 64 << 20;

const HASH_TABLE: &str = "
CREATE TABLE IF NOT EXISTS imported (
    sha256  BLOB    PRIMARY KEY,
    message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS imported_by_message ON imported (message);
";

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

fn has_eml_extension(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml"))
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
            Box::new(MboxSource {
                path: src.to_owned(),
                reader: MboxReader::new(BufReader::with_capacity(256 * 1024, file), limit),
            })
        }
        SourceKind::EmlFile => Box::new(FileSource {
            files: VecDeque::from([QueuedFile::message(src.to_owned(), Flags::default(), None)]),
            limit: opts.size_limit,
        }),
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
    mb.conn().execute_batch(HASH_TABLE).map_err(|e| mb.sql(e))?;
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
        let hash = Sha256::digest(&m.raw);
        let seen: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM imported WHERE sha256 = ?1",
                [&hash[..]],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_some() {
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
        tx.execute(
            "INSERT INTO imported (sha256, message) VALUES (?1, ?2)",
            params![&hash[..], id],
        )?;
        report.imported += 1;
        report.truncated += u64::from(m.truncated);
        n += 1;
        bytes += m.raw.len();
    }
    Ok(false)
}

/// The latest plausible arrival: a day after `now`, for clocks a little
/// ahead and time zones.
const FUTURE_SLACK: i64 = 86_400;

/// Whether `t` (Unix seconds) can be when a message arrived: after the
/// first second of 1970 (0 is what a clock or parser that knew nothing
/// gives: mailparse's dateparse answers 0 for a Date field with no date in
/// it), and not more than a day after `now`.
pub fn plausible_date(t: i64, now: i64) -> bool {
    (1..=now.saturating_add(FUTURE_SLACK)).contains(&t)
}

/// The internal date of an imported message: the first plausible one of
/// `before` (a Maildir file name's time, a From_ line's date), the Date
/// field (`date_field`, parsed only when needed) and `after` (a file's
/// modification time); `now` when none is.
pub fn arrival_date(
    before: Option<i64>,
    date_field: impl FnOnce() -> Option<i64>,
    after: Option<i64>,
    now: i64,
) -> i64 {
    let ok = |t: &i64| plausible_date(*t, now);
    before
        .filter(ok)
        .or_else(|| date_field().filter(ok))
        .or_else(|| after.filter(ok))
        .unwrap_or(now)
}

/// A file time as Unix seconds; none for a time before 1970.
fn seconds_since_1970(t: SystemTime) -> Option<i64> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_secs()).ok()
}

/// The Unix time a Maildir file name `time.unique.host[:2,flags]` starts
/// with: the digits before the first dot.
pub fn maildir_name_time(name: &str) -> Option<i64> {
    let (time, rest) = name.split_once('.')?;
    if time.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    time.parse().ok()
}

struct MboxSource {
    path: PathBuf,
    reader: MboxReader<BufReader<File>>,
}

impl Source for MboxSource {
    fn next_item(&mut self) -> Result<Option<Item>, ExchangeError> {
        match self.reader.next_message() {
            Ok(None) => Ok(None),
            Ok(Some(m)) if m.oversized => Ok(Some(Item::TooLarge)),
            Ok(Some(m)) => Ok(Some(Item::Message(Incoming {
                raw: m.raw,
                flags: m.flags,
                arrival: Arrival::Hints {
                    before: m.date,
                    after: None,
                },
                folder: None,
                truncated: m.truncated,
            }))),
            Err(MboxError::NotMbox) => Err(ExchangeError::bad(
                &self.path,
                "not an mbox, Maildir, directory of .eml files or SQLite mailbox (the first \
                 line does not start with \"From \")",
            )),
            Err(MboxError::Io(e)) => Err(ExchangeError::io(&self.path, "read", e)),
        }
    }
}

/// Files that are each one message: a Maildir, a directory of `.eml`
/// files, or one `.eml` file.
struct FileSource {
    files: VecDeque<QueuedFile>,
    limit: u64,
}

/// A file of a [`FileSource`]; an empty path stands for a skipped entry.
struct QueuedFile {
    path: PathBuf,
    flags: Flags,
    /// The time a Maildir file's name starts with.
    name_time: Option<i64>,
}

impl QueuedFile {
    fn message(path: PathBuf, flags: Flags, name_time: Option<i64>) -> QueuedFile {
        QueuedFile {
            path,
            flags,
            name_time,
        }
    }

    fn skipped() -> QueuedFile {
        QueuedFile::message(PathBuf::new(), Flags::default(), None)
    }
}

impl FileSource {
    fn eml_directory(dir: &Path, limit: u64) -> Result<FileSource, ExchangeError> {
        let mut files = VecDeque::new();
        for (path, is_file) in sorted_entries(dir)? {
            if is_file && has_eml_extension(&path) {
                files.push_back(QueuedFile::message(path, Flags::default(), None));
            } else {
                files.push_back(QueuedFile::skipped());
            }
        }
        Ok(FileSource { files, limit })
    }

    /// `new/` (not yet seen) then `cur/`; `tmp/` is never read.
    fn maildir(dir: &Path, limit: u64) -> Result<FileSource, ExchangeError> {
        let mut files = VecDeque::new();
        for sub in ["new", "cur"] {
            let d = dir.join(sub);
            if !d.is_dir() {
                continue;
            }
            for (path, is_file) in sorted_entries(&d)? {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !is_file || name.starts_with('.') {
                    files.push_back(QueuedFile::skipped());
                    continue;
                }
                let flags = if sub == "cur" {
                    maildir_flags(&name)
                } else {
                    Flags::default()
                };
                files.push_back(QueuedFile::message(path, flags, maildir_name_time(&name)));
            }
        }
        Ok(FileSource { files, limit })
    }
}

/// The flags of a Maildir file name `unique:2,FLAGS` (D draft, F flagged,
/// R replied, S seen, T trashed; P and anything unknown are ignored). A
/// name without a `:2,` suffix has no flags.
pub fn maildir_flags(name: &str) -> Flags {
    let Some((_, info)) = name.rsplit_once(":2,") else {
        return Flags::default();
    };
    info.chars()
        .filter_map(|c| match c {
            'D' => Some(Flags::DRAFT),
            'F' => Some(Flags::FLAGGED),
            'R' => Some(Flags::ANSWERED),
            'S' => Some(Flags::SEEN),
            'T' => Some(Flags::DELETED),
            _ => None,
        })
        .fold(Flags::default(), Flags::union)
}

/// The entries of a directory, numbers in names sorted as numbers (so
/// `2.eml` comes before `10.eml`), with whether each is a regular file.
fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>, ExchangeError> {
    let rd = fs::read_dir(dir).map_err(|e| ExchangeError::io(dir, "read", e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| ExchangeError::io(dir, "read", e))?;
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        out.push((e.path(), is_file));
    }
    out.sort_by_cached_key(|(p, _)| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        (
            digits.len(),
            digits.parse::<u128>().unwrap_or(u128::MAX),
            name,
        )
    });
    Ok(out)
}

impl Source for FileSource {
    fn next_item(&mut self) -> Result<Option<Item>, ExchangeError> {
        let Some(QueuedFile {
            path,
            flags,
            name_time,
        }) = self.files.pop_front()
        else {
            return Ok(None);
        };
        if path.as_os_str().is_empty() {
            return Ok(Some(Item::Skipped));
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            // Gone meanwhile (a Maildir in use): not a message any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Item::Skipped)),
            Err(e) => return Err(ExchangeError::io(&path, "open", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| ExchangeError::io(&path, "stat", e))?;
        if meta.len() > self.limit {
            return Ok(Some(Item::TooLarge));
        }
        let mut raw = Vec::with_capacity(meta.len() as usize);
        file.take(self.limit + 1)
            .read_to_end(&mut raw)
            .map_err(|e| ExchangeError::io(&path, "read", e))?;
        if raw.len() as u64 > self.limit {
            return Ok(Some(Item::TooLarge));
        }
        Ok(Some(Item::Message(Incoming {
            raw,
            flags,
            arrival: Arrival::Hints {
                before: name_time,
                after: meta.modified().ok().and_then(seconds_since_1970),
            },
            folder: None,
            truncated: false,
        })))
    }
}

/// An unencrypted postern mailbox, read one message at a time.
struct SqliteSource {
    path: PathBuf,
    conn: Connection,
    ids: VecDeque<(i64, i64)>,
    limit: u64,
}

impl SqliteSource {
    fn open(path: &Path, limit: u64) -> Result<SqliteSource, ExchangeError> {
        let sql = |e| ExchangeError::Sqlite {
            path: path.to_owned(),
            source: e,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        let ids = super::all_rows(
            &conn,
            "SELECT m.id, length(m.raw) FROM messages m ORDER BY m.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(VecDeque::from)
        .map_err(|e| {
            ExchangeError::bad(
                path,
                format!("not a postern mailbox (no readable messages table: {e})"),
            )
        })?;
        Ok(SqliteSource {
            path: path.to_owned(),
            conn,
            ids,
            limit,
        })
    }
}

impl Source for SqliteSource {
    fn folders(&mut self) -> Result<Vec<String>, ExchangeError> {
        super::all_rows(
            &self.conn,
            "SELECT DISTINCT f.name FROM folders f JOIN messages m ON m.folder_id = f.id",
            [],
            |r| r.get(0),
        )
        .map_err(|e| ExchangeError::bad(&self.path, format!("not a postern mailbox: {e}")))
    }

    fn next_item(&mut self) -> Result<Option<Item>, ExchangeError> {
        let Some((id, len)) = self.ids.pop_front() else {
            return Ok(None);
        };
        if len < 0 || len as u64 > self.limit {
            return Ok(Some(Item::TooLarge));
        }
        let row = self
            .conn
            .query_row(
                "SELECT f.name, m.flags, m.internal_date, m.raw
                 FROM messages m JOIN folders f ON f.id = m.folder_id WHERE m.id = ?1",
                [id],
                |r| {
                    Ok(Incoming {
                        folder: Some(r.get(0)?),
                        flags: Flags(r.get::<_, i64>(1)?.clamp(0, 31) as u8),
                        arrival: Arrival::Recorded(r.get(2)?),
                        raw: r.get(3)?,
                        truncated: false,
                    })
                },
            )
            .optional()
            .map_err(|e| ExchangeError::bad(&self.path, format!("not a postern mailbox: {e}")))?;
        Ok(Some(row.map_or(Item::Skipped, Item::Message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_names() {
        assert_eq!(
            maildir_flags("1700000000.M1P2.host:2,FRS"),
            Flags::FLAGGED.union(Flags::ANSWERED).union(Flags::SEEN)
        );
        assert_eq!(maildir_flags("1700000000.M1P2.host:2,DT"), Flags(8 | 16));
        assert_eq!(maildir_flags("no-info-suffix"), Flags::default());
        assert_eq!(maildir_flags("bad:1,S"), Flags::default());
        assert_eq!(maildir_flags("odd:2,xyzP"), Flags::default());
    }

    #[test]
    fn maildir_name_times() {
        assert_eq!(
            maildir_name_time("1700000000.M1P2.host:2,S"),
            Some(1_700_000_000)
        );
        assert_eq!(
            maildir_name_time("1700000000.M1P2.host"),
            Some(1_700_000_000)
        );
        assert_eq!(maildir_name_time("12.x"), Some(12));
        for name in [
            "abc.host",
            "1700000000",
            "1700000000.",
            "17a0.host",
            ".1700000000.host",
            "-5.host",
            "99999999999999999999.host",
        ] {
            assert_eq!(maildir_name_time(name), None, "{name}");
        }
    }

    const NOW: i64 = 1_795_452_559;

    fn never() -> Option<i64> {
        panic!("the Date field was parsed although an earlier date counts")
    }

    #[test]
    fn dates_are_tried_in_order() {
        // The first that counts wins; the Date field is not even parsed.
        assert_eq!(arrival_date(Some(100), never, Some(300), NOW), 100);
        assert_eq!(arrival_date(None, || Some(200), Some(300), NOW), 200);
        assert_eq!(arrival_date(None, || None, Some(300), NOW), 300);
        assert_eq!(arrival_date(None, || None, None, NOW), NOW);
    }

    #[test]
    fn absurd_dates_fall_through_to_the_next() {
        let day = 86_400;
        // Before 1970, at its first second (a zero time), or more than a
        // day after the import: skipped, each at each place.
        for bad in [-1, 0, i64::MIN, NOW + day + 1, i64::MAX] {
            assert_eq!(arrival_date(Some(bad), || Some(200), None, NOW), 200);
            assert_eq!(arrival_date(None, || Some(bad), Some(300), NOW), 300);
            assert_eq!(arrival_date(None, || None, Some(bad), NOW), NOW);
        }
        // The edges that still count.
        assert_eq!(arrival_date(Some(1), never, None, NOW), 1);
        assert_eq!(arrival_date(Some(NOW + day), never, None, NOW), NOW + day);
    }

    fn with_date(date: &str) -> Vec<u8> {
        format!("From: a@example.org\nDate: {date}\nSubject: x\n\nbody\n").into_bytes()
    }

    #[test]
    fn date_fields_good_and_malformed() {
        let good = with_date("Mon, 23 Nov 2026 16:49:19 +0000");
        assert_eq!(header_date(&good), Some(1_795_452_559));
        // Obsolete forms that RFC 5322 section 4.3 still lets one read.
        let zone = with_date("23 Nov 2026 17:49:19 +0100 (CET)");
        assert_eq!(header_date(&zone), Some(1_795_452_559));
        assert_eq!(
            header_date(b"Date: Mon, 23 Nov 2026 16:49:19 GMT\n\n"),
            Some(1_795_452_559)
        );
        assert_eq!(
            arrival_date(None, || header_date(&good), Some(300), NOW),
            1_795_452_559
        );
        // Each of these falls back to the file time.
        for bad in [
            "garbage",
            "",
            "12345",
            "Mon, 32 Foo 2024 99:99:99 +0000",
            "Mon, 23 Nov 2026 16:49:19 +9999",
            "Wed, 31 Dec 1969 23:59:59 +0000",
            "Thu, 01 Jan 1970 00:00:00 +0100",
            "Thu, 01 Jan 1970 00:00:00 +0000",
            "Fri, 1 Jan 2100 00:00:00 +0000",
            "Mon, 23 Nov 99999999999999 16:49:19 +0000",
        ] {
            let raw = with_date(bad);
            assert_eq!(
                arrival_date(None, || header_date(&raw), Some(300), NOW),
                300,
                "Date: {bad}"
            );
        }
        // No Date field at all, or no header.
        assert_eq!(header_date(b"Subject: x\n\nbody\n"), None);
        assert_eq!(header_date(b""), None);
        assert_eq!(header_date(&[0xff, 0xfe, b'\n']), None);
    }

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

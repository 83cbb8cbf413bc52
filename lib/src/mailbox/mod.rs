//! Encrypted mailboxes: one SQLite file per user, every page encrypted and
//! authenticated with ChaCha20-Poly1305 by SQLite3 Multiple Ciphers (its
//! `chacha20` scheme, the sqleet format, key derived from the passphrase
//! with PBKDF2-HMAC-SHA256), so that a mailbox opens in any SQLite3MC build
//! — `better-sqlite3-multiple-ciphers` included — given `PRAGMA
//! cipher='chacha20'` and the same passphrase.
//!
//! Every open is guarded, because plain SQLite silently ignores `PRAGMA
//! cipher` and `PRAGMA key` and would write plaintext: the file must not
//! start with `SQLite format 3`; `PRAGMA cipher='chacha20'` must answer
//! `chacha20`; the key is set; and a read of `sqlite_master` must succeed
//! (with a wrong passphrase it fails with SQLITE_NOTADB). Only then are the
//! connection pragmas set and the schema migrated ([`schema`]).
//!
//! The operations ([`ops`]) are plain functions over an open [`Mailbox`],
//! which can only be had through that guard.

pub mod backup;
#[cfg(feature = "bench")]
pub mod bench;
pub mod checkup;
pub mod delivery;
pub mod destroy;
pub mod drop_area;
pub mod envelope;
pub mod exchange;
pub mod export;
pub mod import;
pub mod lock;
pub mod mbox;
pub mod name;
pub mod ops;
pub mod passphrase;
pub mod purge;
pub mod quota;
pub mod rekey;
pub mod schema;

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::status;

pub use ops::*;

// Keeps SQLite3MC's static library in the link (see the sqlite3mc crate):
// without a reference the linker may take the system's plain libsqlite3.
use postern_sqlite3mc as _;

/// The page cipher: ChaCha20-Poly1305 (SQLite3MC's `chacha20`).
pub const CIPHER: &str = "chacha20";
/// What every plaintext SQLite database file starts with.
pub const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("no mailbox {path}; create it with postern-maildb init")]
    NotFound { path: PathBuf },
    #[error("mailbox {path} already exists")]
    Exists { path: PathBuf },
    #[error("{0}")]
    BadUser(#[from] name::BadUser),
    #[error("wrong passphrase for mailbox {path} (or its first page is damaged)")]
    WrongPassphrase { path: PathBuf },
    #[error(
        "{path} is an unencrypted SQLite database; postern-maildb opens only \
         encrypted mailboxes"
    )]
    Plaintext { path: PathBuf },
    #[error(
        "the SQLite library in this program does not encrypt (PRAGMA cipher answered \
         {answer:?}, not \"chacha20\"); refusing to open {path} (rebuild with SQLite3MC)"
    )]
    NotEncrypting { path: PathBuf, answer: String },
    #[error(
        "mailbox {path} has schema version {found}; this postern-maildb knows versions up \
         to {known} (upgrade postern)"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("mailbox {path} is locked by another process; try again later")]
    Locked { path: PathBuf },
    #[error("mailbox {path} is damaged: {detail} (see postern-maildb check)")]
    Damaged { path: PathBuf, detail: String },
    #[error("mailbox {path}: no space left on the device")]
    Full { path: PathBuf },
    #[error("no folder {name:?}")]
    NoFolder { name: String },
    #[error("folder {name:?} already exists")]
    FolderExists { name: String },
    #[error("folder name {name:?} is not allowed: {why}")]
    BadFolderName { name: String, why: &'static str },
    #[error("no message with UID {uid} in folder {folder:?}")]
    NoMessage { folder: String, uid: u32 },
    #[error("folder {folder:?} has used up its UIDs")]
    UidsExhausted { folder: String },
    #[error("the message is empty")]
    EmptyMessage,
    #[error("search query {query:?} has no words to look for")]
    EmptyQuery { query: String },
    #[error("mailbox {path}: delivery key: {detail}")]
    DeliveryKey { path: PathBuf, detail: String },
    #[error("mailbox {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("mailbox {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

impl ToFailure for MailboxError {
    fn to_failure(&self) -> Failure {
        use MailboxError::*;
        let text = self.to_string();
        match self {
            NotFound { .. } => Failure::new(Sysexit::NoUser, status::NO_SUCH_MAILBOX, text),
            BadUser(_) => Failure::new(Sysexit::NoUser, status::BAD_RECIPIENT_SYNTAX, text),
            Exists { .. } => Failure::new(Sysexit::CantCreat, status::MAILBOX_REFUSED, text),
            WrongPassphrase { .. } | Plaintext { .. } => {
                Failure::new(Sysexit::NoPerm, status::POLICY, text)
            }
            Locked { .. } => Failure::new(Sysexit::TempFail, status::MAILBOX_BUSY, text),
            Full { .. } => Failure::new(Sysexit::TempFail, status::SYSTEM_FULL, text),
            Damaged { .. } => Failure::new(Sysexit::DataErr, status::SYSTEM, text),
            NoFolder { .. }
            | FolderExists { .. }
            | BadFolderName { .. }
            | NoMessage { .. }
            | EmptyQuery { .. } => Failure::new(Sysexit::DataErr, status::BAD_ARGUMENTS, text),
            EmptyMessage => Failure::new(Sysexit::DataErr, status::BAD_MESSAGE, text),
            UidsExhausted { .. } => {
                Failure::new(Sysexit::Unavailable, status::MAILBOX_REFUSED, text)
            }
            NotEncrypting { .. }
            | SchemaTooNew { .. }
            | DeliveryKey { .. }
            | Io { .. }
            | Sqlite { .. } => Failure::tempfail(text),
        }
    }
}

impl MailboxError {
    /// The failure for `deliver`, which Postfix reads: only a missing
    /// mailbox (5.1.1) or a refused message bounces; a problem with the
    /// mailbox itself keeps the mail queued (4.x) until someone fixes it.
    ///
    /// Its text is what Postfix logs and puts in a bounce or a delay
    /// warning, for a stranger to read: the cause without file names
    /// (which hold the recipient's address and the server's layout). The
    /// whole error is for postern's own log.
    pub fn to_delivery_failure(&self) -> Failure {
        let f = self.to_failure();
        let text = self.public_text();
        match f.exit {
            Sysexit::NoUser | Sysexit::Unavailable | Sysexit::TempFail => Failure { text, ..f },
            Sysexit::DataErr if matches!(self, MailboxError::EmptyMessage) => Failure { text, ..f },
            _ => Failure::tempfail(text),
        }
    }

    /// The cause, without paths: see [`Self::to_delivery_failure`].
    fn public_text(&self) -> String {
        use MailboxError::*;
        match self {
            NotFound { .. } => "no such mailbox".into(),
            BadUser(e) => format!("this address cannot name a mailbox: {}", e.why),
            Locked { .. } => "the mailbox is locked; try again later".into(),
            Full { .. } => "no room for the mailbox on its disk; try again later".into(),
            DeliveryKey { .. } => {
                "the mailbox's delivery key cannot be read; try again later".into()
            }
            Io { op, source, .. } => {
                format!(
                    "mailbox unavailable: cannot {op}: {}; try again later",
                    source.kind()
                )
            }
            EmptyMessage | UidsExhausted { .. } => self.to_string(),
            _ => "mailbox unavailable; try again later".into(),
        }
    }
}

/// When a commit is on disk (SQLite's `PRAGMA synchronous`, WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Synchronous {
    /// The default: the WAL is fsync'ed at checkpoints only, so the last
    /// commits may be lost to a power cut (never half of one).
    Normal,
    /// The WAL is fsync'ed at every commit: a commit that returned stays.
    Full,
}

/// An open, keyed, checked mailbox.
pub struct Mailbox {
    conn: Connection,
    path: PathBuf,
    /// Shared while open; see [`lock`]. Declared after `conn`, so it is
    /// released only once the connection is closed.
    lock: lock::MailboxLock,
    /// What [`Mailbox::open`] merged from the drop area.
    pub merged: drop_area::MergeReport,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").field("path", &self.path).finish()
    }
}

/// Chooses the mailbox cipher on `conn` (the file at `path`), confirms
/// that this SQLite has it, and sets the key — through the C interface, so
/// the passphrase never becomes SQL text. Nothing is read: the first read
/// proves the key.
pub(crate) fn set_key(
    conn: &Connection,
    path: &Path,
    passphrase: &str,
) -> Result<(), MailboxError> {
    let sql = |source| MailboxError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let answer: Option<String> = conn
        .query_row("PRAGMA cipher = 'chacha20'", [], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(sql)?;
    if !answer
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case(CIPHER))
    {
        return Err(MailboxError::NotEncrypting {
            path: path.to_owned(),
            answer: answer.unwrap_or_default(),
        });
    }
    // SAFETY: the handle belongs to this open connection, used by this
    // thread only; the passphrase slice outlives the call.
    let rc = unsafe { postern_sqlite3mc::key(conn.handle().cast(), passphrase.as_bytes()) };
    if rc != 0 {
        return Err(sql(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            Some("setting the key failed".into()),
        )));
    }
    Ok(())
}

impl Mailbox {
    /// Creates a new mailbox file (mode 0600) under `passphrase`, with the
    /// standard folders. Refuses to touch an existing file.
    pub fn create(
        path: &Path,
        passphrase: &str,
        lock_timeout: Duration,
        now: SystemTime,
    ) -> Result<Mailbox, MailboxError> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => MailboxError::Exists {
                    path: path.to_owned(),
                },
                _ => MailboxError::Io {
                    path: path.to_owned(),
                    op: "create",
                    source: e,
                },
            })?;
        let created = Mailbox::connect(path, passphrase, lock_timeout, true).and_then(|mut mb| {
            schema::migrate(&mut mb, now)?;
            mb.publish_delivery_key()?;
            mb.checkpoint()?;
            // The last guard: what reached the disk is not plaintext.
            if starts_plaintext(path).map_err(|e| mb.io("read", e))? {
                return Err(MailboxError::NotEncrypting {
                    path: path.to_owned(),
                    answer: "a plaintext file was written".into(),
                });
            }
            Ok(mb)
        });
        if created.is_err() {
            // Nothing half-made is left behind.
            for suffix in ["", "-wal", "-shm", "-pub"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            let _ = std::fs::remove_dir_all(drop_area::drop_dir(path));
        }
        created
    }

    /// Opens an existing mailbox, checks the passphrase, brings the schema
    /// up to date and merges the sealed messages of the drop area (see
    /// [`drop_area`]; what it did is in [`Mailbox::merged`]).
    pub fn open(
        path: &Path,
        passphrase: &str,
        lock_timeout: Duration,
        now: SystemTime,
    ) -> Result<Mailbox, MailboxError> {
        let mut mb = Mailbox::connect(path, passphrase, lock_timeout, false)?;
        schema::migrate(&mut mb, now)?;
        mb.publish_delivery_key()?;
        mb.merged = drop_area::merge(&mut mb)?;
        Ok(mb)
    }

    /// Writes `<mailbox>-pub` (again) and the drop area, so `deliver` works.
    fn publish_delivery_key(&self) -> Result<(), MailboxError> {
        let public = drop_area::stored_public_key(self)?;
        drop_area::write_public_key(&self.path, &public)
            .map_err(|e| self.io("write the delivery key", e))
    }

    /// Opens without migrating, for `check`: reports what is there.
    pub fn open_for_check(
        path: &Path,
        passphrase: &str,
        lock_timeout: Duration,
    ) -> Result<Mailbox, MailboxError> {
        Mailbox::connect(path, passphrase, lock_timeout, false)
    }

    fn connect(
        path: &Path,
        passphrase: &str,
        lock_timeout: Duration,
        new: bool,
    ) -> Result<Mailbox, MailboxError> {
        let not_found = || MailboxError::NotFound {
            path: path.to_owned(),
        };
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(),
            _ => MailboxError::Io {
                path: path.to_owned(),
                op: "stat",
                source: e,
            },
        })?;
        if !meta.is_file() {
            return Err(not_found());
        }
        if !new && meta.len() == 0 {
            // An empty file would accept any passphrase and become a new
            // database under it.
            return Err(MailboxError::Damaged {
                path: path.to_owned(),
                detail: "the file is empty".into(),
            });
        }
        if starts_plaintext(path).map_err(|source| MailboxError::Io {
            path: path.to_owned(),
            op: "read",
            source,
        })? {
            return Err(MailboxError::Plaintext {
                path: path.to_owned(),
            });
        }
        let mb = Mailbox::attach(path, lock_timeout)?;
        mb.key(passphrase)?;
        mb.configure(lock_timeout, new)?;
        Ok(mb)
    }

    /// The shared lock, then a connection to the existing file at `path`:
    /// no key yet, nothing read. No SQLITE_OPEN_CREATE (the file exists)
    /// and no URI names.
    pub(crate) fn attach(path: &Path, lock_timeout: Duration) -> Result<Mailbox, MailboxError> {
        let lock = lock::MailboxLock::shared(path, lock_timeout)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| MailboxError::Sqlite {
                path: path.to_owned(),
                source,
            })?;
        Ok(Mailbox {
            conn,
            path: path.to_owned(),
            lock,
            merged: drop_area::MergeReport::default(),
        })
    }

    /// The guard: cipher chosen and confirmed, key set, key proven.
    fn key(&self, passphrase: &str) -> Result<(), MailboxError> {
        set_key(&self.conn, &self.path, passphrase)?;
        self.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => MailboxError::WrongPassphrase {
                    path: self.path.clone(),
                },
                _ => self.sql(e),
            })?;
        Ok(())
    }

    fn configure(&self, lock_timeout: Duration, new: bool) -> Result<(), MailboxError> {
        let c = &self.conn;
        c.busy_timeout(lock_timeout).map_err(|e| self.sql(e))?;
        if new {
            // Only takes effect before the first table is created.
            c.execute_batch("PRAGMA auto_vacuum = FULL; PRAGMA encoding = 'UTF-8';")
                .map_err(|e| self.sql(e))?;
        }
        let mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(self.io(
                "switch to WAL mode",
                std::io::Error::other(format!("journal_mode is {mode}, not wal")),
            ));
        }
        // temp_store: SQLite3MC builds default to memory, because temporary
        // files are not encrypted; say so explicitly all the same.
        c.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA secure_delete = ON;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(|e| self.sql(e))
    }

    /// Runs `f` in one write transaction and commits what it did when it
    /// returns `Ok`; an `Err` rolls everything back. BEGIN IMMEDIATE takes
    /// the write lock at the start (waiting up to the busy timeout), so two
    /// writers never find out at COMMIT that one must start over.
    pub(crate) fn write<T, E>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Sets when a commit reaches the disk. Outside a transaction only
    /// (SQLite refuses to change it inside one).
    pub(crate) fn set_synchronous(&self, level: Synchronous) -> Result<(), MailboxError> {
        let sql = match level {
            Synchronous::Normal => "PRAGMA synchronous = NORMAL",
            Synchronous::Full => "PRAGMA synchronous = FULL",
        };
        self.conn.execute_batch(sql).map_err(|e| self.sql(e))
    }

    /// Moves everything from the WAL into the database file.
    pub fn checkpoint(&self) -> Result<(), MailboxError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.sql(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    #[cfg(test)]
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Classifies an SQLite error: locks, damage and a full disk get their
    /// own errors, so each gets the right exit status.
    pub(crate) fn sql(&self, e: rusqlite::Error) -> MailboxError {
        let path = self.path.clone();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                MailboxError::Locked { path }
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => MailboxError::Damaged {
                path,
                detail: e.to_string(),
            },
            Some(ErrorCode::DiskFull) => MailboxError::Full { path },
            _ => MailboxError::Sqlite { path, source: e },
        }
    }

    pub(crate) fn io(&self, op: &'static str, source: std::io::Error) -> MailboxError {
        MailboxError::Io {
            path: self.path.clone(),
            op,
            source,
        }
    }
}

/// Every row `sql` gives for `params`, each made into a `T` by `row`.
pub(crate) fn all_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, row)?;
    rows.collect()
}

/// Whether a file begins like a plaintext SQLite database.
pub fn starts_plaintext(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 16];
    let mut file = File::open(path)?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got == head.len() && &head == PLAINTEXT_HEADER)
}

/// The version of the linked SQLite3MC, e.g. `SQLite3 Multiple Ciphers 2.6.1`.
pub fn library_version() -> String {
    postern_sqlite3mc::linked_version()
}

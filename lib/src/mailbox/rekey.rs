//! `passwd`: a new passphrase for a mailbox, atomically.
//!
//! The old file stays valid until the new one is complete, the qmail way:
//! under an exclusive lock ([`super::lock`]), the write-ahead log is
//! checkpointed into the file, the file is copied to `<mailbox>-passwd`,
//! the copy is re-encrypted under the new passphrase (SQLite3MC's
//! `sqlite3_rekey_v2`, which rewrites every page), opened again with the
//! new passphrase and compared, fsynced, and renamed over the mailbox; then
//! the directory is fsynced. The rename is the commit point: a crash before
//! it leaves the old file and a stray copy (removed by the next `passwd` or
//! `destroy`), a crash after it the new file. Either opens with exactly one
//! of the two passphrases, and holds every message.
//!
//! The old connection is closed before the rename, so SQLite removes the
//! old write-ahead log and shared-memory index rather than leave them
//! beside a file they do not belong to. The drop area and the delivery key
//! pair are kept: mail sealed meanwhile is merged as before.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Mailbox, MailboxError};

/// Where the re-encrypted copy is written: `<mailbox>-passwd`.
pub fn staging_path(mailbox: &Path) -> PathBuf {
    side_path(mailbox, "-passwd")
}

/// SQLite's side files of a database file.
pub(crate) const SQLITE_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Re-encrypts the open mailbox (opened with `old`) under `new` and puts
/// it in place of the old file. Consumes the mailbox: the old connection
/// must be closed before the rename.
pub fn passwd(
    mb: Mailbox,
    old: &str,
    new: &str,
    lock_timeout: Duration,
) -> Result<(), MailboxError> {
    mb.lock.upgrade(lock_timeout)?;
    let path = mb.path.clone();
    let staging = staging_path(&path);
    remove_staging(&staging).map_err(|e| mb.io("remove an old -passwd copy", e))?;
    let messages = message_count(&mb)?;
    // Everything into the file itself, so that a copy of the file is the
    // whole mailbox. Nobody else has it open (the exclusive lock).
    let (busy, _, _): (i64, i64, i64) = mb
        .conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| mb.sql(e))?;
    if busy != 0 {
        return Err(MailboxError::Locked { path });
    }
    let made = make_copy(&mb, &staging, old, new, messages, lock_timeout);
    if let Err(e) = made {
        let _ = remove_staging(&staging);
        return Err(e);
    }
    // Close the old connection (SQLite then removes its -wal and -shm),
    // keeping the lock until the new file is in place.
    let Mailbox { conn, lock, .. } = mb;
    let closed = conn
        .close()
        .map_err(|(_, e)| MailboxError::Sqlite {
            path: path.clone(),
            source: e,
        })
        .and_then(|()| clear_side_files(&path));
    let committed = closed.and_then(|()| {
        fs::rename(&staging, &path)
            .and_then(|()| crate::store::durable::sync_parent(&path))
            .map_err(|e| io_error(&path, "put the re-encrypted copy in place", e))
    });
    if committed.is_err() {
        let _ = remove_staging(&staging);
    }
    drop(lock);
    committed
}

/// Copies the checkpointed file, re-encrypts the copy under `new`, and
/// proves it: opened with `new`, the same number of messages. Fsynced.
fn make_copy(
    mb: &Mailbox,
    staging: &Path,
    old: &str,
    new: &str,
    messages: i64,
    lock_timeout: Duration,
) -> Result<(), MailboxError> {
    let err = |op, e| io_error(staging, op, e);
    {
        let mut from = File::open(&mb.path).map_err(|e| mb.io("read", e))?;
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(staging)
            .map_err(|e| err("create", e))?;
        io::copy(&mut from, &mut to).map_err(|e| err("copy the mailbox", e))?;
        to.sync_all().map_err(|e| err("fsync", e))?;
    }
    let copy = Mailbox::connect(staging, old, lock_timeout, false)?;
    // SQLite3MC re-encrypts only outside WAL mode; the copy is private,
    // so a rollback journal is fine while it is rewritten.
    copy.conn
        .query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .map_err(|e| copy.sql(e))?;
    // SAFETY: the handle belongs to this open connection, used by this
    // thread only; the passphrase slice outlives the call.
    let rc = unsafe { postern_sqlite3mc::rekey(copy.conn.handle().cast(), new.as_bytes()) };
    if rc != 0 {
        return Err(copy.sql(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            Some("re-encrypting the copy failed".into()),
        )));
    }
    copy.conn
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(|e| copy.sql(e))?;
    drop(copy);
    // Proof: the new passphrase opens it (through the full guard), and
    // nothing is missing.
    let copy = Mailbox::connect(staging, new, lock_timeout, false)?;
    let copied = message_count(&copy)?;
    if copied != messages {
        return Err(MailboxError::Damaged {
            path: staging.to_owned(),
            detail: format!("the re-encrypted copy holds {copied} messages, not {messages}"),
        });
    }
    copy.checkpoint()?;
    drop(copy);
    clear_side_files(staging)?;
    File::open(staging)
        .and_then(|f| f.sync_all())
        .map_err(|e| err("fsync", e))
}

fn message_count(mb: &Mailbox) -> Result<i64, MailboxError> {
    mb.conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .map_err(|e| mb.sql(e))
}

/// Removes SQLite's side files of a closed database; a write-ahead log
/// that still holds frames is left alone and reported, never dropped.
fn clear_side_files(db: &Path) -> Result<(), MailboxError> {
    let wal = side_path(db, "-wal");
    match fs::metadata(&wal) {
        Ok(m) if m.len() > 0 => {
            return Err(io_error(
                db,
                "close",
                io::Error::other(format!(
                    "{} still holds data after the last connection closed",
                    wal.display()
                )),
            ));
        }
        _ => {}
    }
    for suffix in SQLITE_SIDE_FILES {
        remove_if_there(&side_path(db, suffix)).map_err(|e| io_error(db, "remove", e))?;
    }
    Ok(())
}

fn remove_staging(staging: &Path) -> io::Result<()> {
    remove_if_there(staging)?;
    for suffix in SQLITE_SIDE_FILES {
        remove_if_there(&side_path(staging, suffix))?;
    }
    Ok(())
}

pub(crate) fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

pub(crate) fn side_path(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn io_error(path: &Path, op: &'static str, source: io::Error) -> MailboxError {
    MailboxError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

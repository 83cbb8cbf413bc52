//! `destroy`: a mailbox and everything that belongs to it, gone.
//!
//! Under an exclusive lock (nobody has the mailbox open), the files are
//! removed in an order that keeps each step safe after a crash: the
//! database first, so that `deliver` stops at once with 5.1.1 (no mailbox)
//! instead of sealing mail nobody will read; then SQLite's side files, the
//! public key, a stray `passwd` copy, and the drop area with every sealed
//! message in it; then the directory is fsynced. Run again after a crash,
//! `destroy` removes whatever is left.
//!
//! Files are unlinked, not overwritten: what was in them stays encrypted
//! (see the SECURITY CONSIDERATIONS of postern-maildb(8)).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::drop_area::{drop_dir, public_key_path};
use super::lock::MailboxLock;
use super::rekey::{SQLITE_SIDE_FILES, remove_if_there, side_path, staging_path};
use super::{Mailbox, MailboxError};
use crate::store::durable::sync_parent;

/// Every file and directory that belongs to the mailbox at `mailbox` and
/// exists now, the database first.
pub fn belongings(mailbox: &Path) -> io::Result<Vec<PathBuf>> {
    let staging = staging_path(mailbox);
    let mut candidates = vec![mailbox.to_owned()];
    candidates.extend(SQLITE_SIDE_FILES.iter().map(|s| side_path(mailbox, s)));
    candidates.push(public_key_path(mailbox));
    candidates.push(staging.clone());
    candidates.extend(SQLITE_SIDE_FILES.iter().map(|s| side_path(&staging, s)));
    candidates.extend(public_key_temporaries(mailbox)?);
    candidates.push(drop_dir(mailbox));
    Ok(candidates
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .collect())
}

/// `<mailbox>-pub.<32 hex digits>`: a public key file being written when
/// the writer died. Exactly that shape, so that no other user's mailbox
/// (whose name could start with this one's) is ever matched.
fn public_key_temporaries(mailbox: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (mailbox.parent(), mailbox.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Some(name) = name.to_str() else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}-pub.");
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(rest) = file_name.strip_prefix(&prefix)
            && rest.len() == 32
            && rest.bytes().all(|b| b.is_ascii_hexdigit())
        {
            out.push(dir.join(file_name));
        }
    }
    Ok(out)
}

/// Destroys the mailbox at `path` without opening it (no passphrase):
/// waits up to `lock_timeout` for every other user to close it. What was
/// removed is returned. With no database file but leftovers of an earlier,
/// interrupted `destroy`, removes those.
pub fn destroy(path: &Path, lock_timeout: Duration) -> Result<Vec<PathBuf>, MailboxError> {
    match MailboxLock::exclusive(path, lock_timeout) {
        Ok(lock) => remove_all(path, Some(lock)),
        Err(MailboxError::NotFound { .. }) => {
            let left = belongings(path).map_err(|e| io_error(path, "read the directory", e))?;
            if left.is_empty() {
                return Err(MailboxError::NotFound {
                    path: path.to_owned(),
                });
            }
            remove_all(path, None)
        }
        Err(e) => Err(e),
    }
}

/// Destroys a mailbox opened (and so proven) with its passphrase.
pub fn destroy_open(mb: Mailbox, lock_timeout: Duration) -> Result<Vec<PathBuf>, MailboxError> {
    mb.lock.upgrade(lock_timeout)?;
    let Mailbox {
        conn, lock, path, ..
    } = mb;
    // Closed first: SQLite then removes its own -wal and -shm.
    let _ = conn.close();
    remove_all(&path, Some(lock))
}

fn remove_all(path: &Path, lock: Option<MailboxLock>) -> Result<Vec<PathBuf>, MailboxError> {
    let found = belongings(path).map_err(|e| io_error(path, "read the directory", e))?;
    let mut removed = Vec::new();
    for p in found {
        let result = match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&p),
            Ok(_) => remove_if_there(&p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => Err(e),
        };
        result.map_err(|e| io_error(&p, "remove", e))?;
        removed.push(p);
    }
    sync_parent(path).map_err(|e| io_error(path, "fsync the mailbox directory", e))?;
    drop(lock);
    Ok(removed)
}

fn io_error(path: &Path, op: &'static str, source: io::Error) -> MailboxError {
    MailboxError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

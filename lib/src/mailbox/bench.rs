//! Helpers for `bench/maildb.sh` (through `examples/maildb-bench.rs`), not
//! an interface, and only built with the `bench` feature: they reach past the guard of [`Mailbox::connect`] to make
//! the unencrypted twin of a mailbox that the benchmark compares with —
//! the same schema, pragmas and merge code, no page cipher.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::drop_area::{self, drop_dir};
use super::schema::{self, unix_seconds};
use super::{Mailbox, MailboxError};

/// A new mailbox exactly like [`Mailbox::create`] makes, but with no key:
/// plain SQLite pages. Only for measuring what the cipher costs.
pub fn create_unencrypted(
    path: &Path,
    lock_timeout: Duration,
    now: SystemTime,
) -> Result<Mailbox, MailboxError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| MailboxError::Io {
            path: path.to_owned(),
            op: "create",
            source: e,
        })?;
    let mut mb = Mailbox::attach(path, lock_timeout)?;
    mb.configure(lock_timeout, true)?;
    schema::migrate(&mut mb, now)?;
    mb.checkpoint()?;
    Ok(mb)
}

/// Opens the unencrypted twin made by [`create_unencrypted`] again,
/// without merging its drop area.
pub fn open_unencrypted(path: &Path, lock_timeout: Duration) -> Result<Mailbox, MailboxError> {
    let mb = Mailbox::attach(path, lock_timeout)?;
    mb.configure(lock_timeout, false)?;
    Ok(mb)
}

/// Seals `messages` into the drop area as `deliver` would, but without an
/// fsync per file (this is the preparation, not what is measured); one
/// fsync of the directory at the end. Returns how many.
pub fn drop_sealed(
    mb: &Mailbox,
    messages: impl Iterator<Item = Vec<u8>>,
    now: SystemTime,
) -> io::Result<usize> {
    let public = drop_area::stored_public_key(mb).map_err(io::Error::other)?;
    let new = drop_dir(&mb.path).join("new");
    fs::create_dir_all(&new)?;
    let mut n = 0;
    for raw in messages {
        let sealed = drop_area::seal(&public, &raw, super::INBOX, now).map_err(io::Error::other)?;
        File::create(new.join(format!("{n:032x}")))?.write_all(&sealed)?;
        n += 1;
    }
    File::open(&new)?.sync_all()?;
    Ok(n)
}

/// Stores `messages` in INBOX in one transaction (the way a merge does,
/// without the sealing), to fill a mailbox quickly.
pub fn insert_all(
    mb: &mut Mailbox,
    messages: impl Iterator<Item = Vec<u8>>,
    now: SystemTime,
) -> Result<usize, MailboxError> {
    let date = unix_seconds(now);
    let result = mb.write(|tx| {
        let mut n = 0;
        for raw in messages {
            super::ops::insert_message(tx, &raw, super::INBOX, date)?;
            n += 1;
        }
        Ok(n)
    });
    result.map_err(|e| mb.sql(e))
}

/// Runs `sql` on the mailbox's connection (benchmark experiments only).
pub fn execute_batch(mb: &Mailbox, sql: &str) -> Result<(), MailboxError> {
    mb.conn.execute_batch(sql).map_err(|e| mb.sql(e))
}

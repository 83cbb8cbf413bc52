//! Who may have a mailbox open: every open [`Mailbox`](super::Mailbox)
//! holds a shared `flock(2)` on the mailbox file; `passwd` and `destroy`,
//! which replace or remove the file, hold an exclusive one; so do `backup`
//! (shared, while it copies the file) and `restore` (exclusive, while it
//! puts a backup in place of a mailbox).
//!
//! SQLite's own locks (POSIX record locks, which are independent of
//! `flock` on Linux) only cover a transaction, and only the file a
//! connection has open. `passwd` renames a new file over the old one, so a
//! process that had opened the old file would go on writing to it, unseen.
//! The shared lock closes that gap: a process that gets its lock checks
//! that the path still names the file it locked, and opens the path again
//! if it does not.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::MailboxError;

/// A held `flock` on a mailbox file; released when dropped.
pub struct MailboxLock {
    file: Flock<File>,
    path: PathBuf,
}

impl std::fmt::Debug for MailboxLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxLock")
            .field("path", &self.path)
            .finish()
    }
}

/// How long to sleep between two tries for a lock.
const POLL: Duration = Duration::from_millis(10);

impl MailboxLock {
    /// A shared lock: any number of readers and writers through SQLite.
    pub fn shared(path: &Path, timeout: Duration) -> Result<MailboxLock, MailboxError> {
        MailboxLock::acquire(path, FlockArg::LockSharedNonblock, timeout)
    }

    /// An exclusive lock: nobody else has the mailbox open.
    pub fn exclusive(path: &Path, timeout: Duration) -> Result<MailboxLock, MailboxError> {
        MailboxLock::acquire(path, FlockArg::LockExclusiveNonblock, timeout)
    }

    fn acquire(path: &Path, arg: FlockArg, timeout: Duration) -> Result<MailboxLock, MailboxError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut file = File::open(path).map_err(|e| not_found_or(path, "open", e))?;
            let locked = loop {
                match Flock::lock(file, arg) {
                    Ok(locked) => break locked,
                    Err((f, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                        file = f;
                        std::thread::sleep(POLL);
                    }
                    Err((_, Errno::EWOULDBLOCK)) => {
                        return Err(MailboxError::Locked {
                            path: path.to_owned(),
                        });
                    }
                    Err((_, e)) => return Err(io_error(path, "lock", e.into())),
                }
            };
            let lock = MailboxLock {
                file: locked,
                path: path.to_owned(),
            };
            if lock.still_current()? {
                return Ok(lock);
            }
            // Replaced (passwd) while we waited: lock the new file instead.
        }
    }

    /// Whether the path still names the file this lock is on.
    pub fn still_current(&self) -> Result<bool, MailboxError> {
        let held = self
            .file
            .metadata()
            .map_err(|e| io_error(&self.path, "stat", e))?;
        match std::fs::metadata(&self.path) {
            Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
            Err(e) => Err(not_found_or(&self.path, "stat", e)),
        }
    }

    /// Whether `file`, opened separately, is the file this lock is on.
    pub fn is_on(&self, file: &File) -> Result<bool, MailboxError> {
        let held = self
            .file
            .metadata()
            .map_err(|e| io_error(&self.path, "stat", e))?;
        let other = file
            .metadata()
            .map_err(|e| io_error(&self.path, "stat", e))?;
        Ok(other.dev() == held.dev() && other.ino() == held.ino())
    }

    /// Turns a shared lock into an exclusive one, waiting up to `timeout`
    /// for the other holders to finish. `flock` may drop the shared lock on
    /// the way, so the file is checked again: if it was replaced or removed
    /// meanwhile, the caller must start over (4.2.0).
    pub fn upgrade(&self, timeout: Duration) -> Result<(), MailboxError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.file.relock(FlockArg::LockExclusiveNonblock) {
                Ok(()) => break,
                Err(Errno::EWOULDBLOCK) if Instant::now() < deadline => std::thread::sleep(POLL),
                Err(Errno::EWOULDBLOCK) => {
                    return Err(MailboxError::Locked {
                        path: self.path.clone(),
                    });
                }
                Err(e) => return Err(io_error(&self.path, "lock", e.into())),
            }
        }
        if self.still_current()? {
            Ok(())
        } else {
            Err(MailboxError::Locked {
                path: self.path.clone(),
            })
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io_error(path: &Path, op: &'static str, source: io::Error) -> MailboxError {
    MailboxError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

fn not_found_or(path: &Path, op: &'static str, e: io::Error) -> MailboxError {
    if e.kind() == io::ErrorKind::NotFound {
        MailboxError::NotFound {
            path: path.to_owned(),
        }
    } else {
        io_error(path, op, e)
    }
}

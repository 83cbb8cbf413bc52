//! The spool: jobs that must wait, sealed at rest, in the Maildir/qmail
//! tradition.
//!
//! A job is written to `tmp/`, fsync'ed, renamed into its queue and the
//! queue directory fsync'ed: the rename is the commit point. Queues:
//! `deferred/` (waiting; a file's mtime is its next attempt, as in Postfix's
//! deferred queue), `active/` (claimed by the runner), `bounce/` (failed
//! recipients, for the bouncer), `corrupt/` (files that did not open).
//! Every file is sealed (see `seal`), and file names are
//! `QUEUEID-RANDOM`: random, so they reveal nothing either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::exit::{Failure, ToFailure};
use crate::mail::job::{Job, JobError, JobReader};
use crate::store::durable;
use crate::store::seal::{self, SealError, SealKey};

/// Room for the envelope beside the message in a sealed file.
const ENVELOPE_SLACK: u64 = 4 * 1024 * 1024 + 64 * 1024;
/// `tmp/` files older than this were left by a crash.
const STALE_TMP_SECS: u64 = 36 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Deferred,
    Active,
    Bounce,
    Corrupt,
}

impl Queue {
    pub const ALL: [Queue; 4] = [
        Queue::Deferred,
        Queue::Active,
        Queue::Bounce,
        Queue::Corrupt,
    ];

    pub fn dir_name(self) -> &'static str {
        match self {
            Queue::Deferred => "deferred",
            Queue::Active => "active",
            Queue::Bounce => "bounce",
            Queue::Corrupt => "corrupt",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: cannot {op}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("spool file {name}: {source}")]
    Job { name: String, source: JobError },
    #[error("spool file {name}: holds no job")]
    Empty { name: String },
}

impl ToFailure for SpoolError {
    fn to_failure(&self) -> Failure {
        match self {
            SpoolError::Seal(e) => e.to_failure(),
            // The message stays with the caller: try again later.
            _ => Failure::tempfail(self.to_string()),
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// A spool directory and the key its files are sealed under.
pub struct Spool {
    dir: PathBuf,
    key: SealKey,
    max_file: u64,
}

/// A spool file by queue and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub queue: Queue,
    pub name: String,
}

/// Held while a queue runner works; released on drop.
pub struct RunnerLock {
    _file: File,
}

impl Spool {
    /// Opens the spool, creating its directories (mode 0700) if needed.
    /// `max_message` bounds what a spool file may hold.
    pub fn open(dir: &Path, key: SealKey, max_message: u64) -> Result<Spool, SpoolError> {
        let mut builder = fs::DirBuilder::new();
        builder.mode(0o700).recursive(true);
        for sub in ["tmp"]
            .into_iter()
            .chain(Queue::ALL.iter().map(|q| q.dir_name()))
        {
            let path = dir.join(sub);
            builder
                .create(&path)
                .map_err(io_err("create directory", &path))?;
        }
        let max_file = seal::padded_len(max_message + ENVELOPE_SLACK) + 64;
        Ok(Spool {
            dir: dir.to_owned(),
            key,
            max_file,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, queue: Queue, name: &str) -> PathBuf {
        self.dir.join(queue.dir_name()).join(name)
    }

    /// Seals `job` into `queue` durably; its mtime is set to `mtime` (for
    /// `deferred/`, the time of the next attempt). Returns only after the
    /// file and the queue directory are fsync'ed.
    pub fn enqueue(&self, queue: Queue, job: &Job, mtime: SystemTime) -> Result<Entry, SpoolError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce)
            .map_err(|e| io::Error::other(e.to_string()))
            .map_err(io_err("get random bytes", &self.dir))?;
        let suffix = durable::random_hex(4).map_err(io_err("get random bytes", &self.dir))?;
        let name = format!("{}-{}", job.envelope.queue_id, suffix);
        let sealed = seal::seal(&self.key, nonce, &job.to_bytes())?;
        let tmp = self.dir.join("tmp").join(&name);
        let result = write_durably(&tmp, &sealed, mtime);
        drop(sealed);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let dest = self.path(queue, &name);
        if let Err(e) = fs::rename(&tmp, &dest).map_err(io_err("rename into queue", &dest)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.dir.join(queue.dir_name()))?;
        Ok(Entry { queue, name })
    }

    /// Names in `deferred/` whose next attempt is at or before `now` (all of
    /// them with `flush`), oldest first.
    pub fn due(&self, now: SystemTime, flush: bool) -> Result<Vec<Entry>, SpoolError> {
        let mut due: Vec<(SystemTime, String)> = self
            .list(Queue::Deferred)?
            .into_iter()
            .filter_map(|(name, mtime)| (flush || mtime <= now).then_some((mtime, name)))
            .collect();
        due.sort();
        Ok(due
            .into_iter()
            .map(|(_, name)| Entry {
                queue: Queue::Deferred,
                name,
            })
            .collect())
    }

    /// File names and mtimes in a queue (entries that vanish are skipped).
    pub fn list(&self, queue: Queue) -> Result<Vec<(String, SystemTime)>, SpoolError> {
        let dir = self.dir.join(queue.dir_name());
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Ok(mtime) = entry.metadata().and_then(|m| m.modified()) {
                out.push((name, mtime));
            }
        }
        Ok(out)
    }

    /// Moves an entry to another queue. `Ok(None)` if it is gone (another
    /// runner or the operator took it).
    pub fn move_to(&self, entry: &Entry, queue: Queue) -> Result<Option<Entry>, SpoolError> {
        let from = self.path(entry.queue, &entry.name);
        let to = self.path(queue, &entry.name);
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("move spool file", &from)(e)),
        }
        sync_dir(&self.dir.join(queue.dir_name()))?;
        Ok(Some(Entry {
            queue,
            name: entry.name.clone(),
        }))
    }

    /// Reads and opens a spool file. Any failure here means the file is
    /// unusable as it stands: the caller moves it to `corrupt/`.
    pub fn load(&self, entry: &Entry) -> Result<Job, SpoolError> {
        let path = self.path(entry.queue, &entry.name);
        let file = File::open(&path).map_err(io_err("open spool file", &path))?;
        let mut sealed = Vec::new();
        file.take(self.max_file)
            .read_to_end(&mut sealed)
            .map_err(io_err("read spool file", &path))?;
        let plain = seal::open(&self.key, sealed)?;
        let mut reader = JobReader::new(plain.as_slice(), u64::MAX);
        let job_err = |source| SpoolError::Job {
            name: entry.name.clone(),
            source,
        };
        let job = reader
            .next_job()
            .map_err(job_err)?
            .ok_or_else(|| SpoolError::Empty {
                name: entry.name.clone(),
            })?;
        Ok(job)
    }

    /// Removes a finished entry; the unlink is made durable.
    pub fn remove(&self, entry: &Entry) -> Result<(), SpoolError> {
        let path = self.path(entry.queue, &entry.name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir.join(entry.queue.dir_name())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove spool file", &path)(e)),
        }
    }

    /// Takes the runner lock without waiting; `Ok(None)` if another runner
    /// holds it.
    pub fn lock_runner(&self) -> Result<Option<RunnerLock>, SpoolError> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunnerLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_err("lock", &path)(e)),
        }
    }

    /// After a crash: what a dead runner left in `active/` goes back to
    /// `deferred/`, and stale `tmp/` files (never committed) are removed.
    /// Call with the runner lock held.
    pub fn recover(&self, _lock: &RunnerLock, now: SystemTime) -> Result<usize, SpoolError> {
        let mut moved = 0;
        for (name, _) in self.list(Queue::Active)? {
            let entry = Entry {
                queue: Queue::Active,
                name,
            };
            if self.move_to(&entry, Queue::Deferred)?.is_some() {
                moved += 1;
            }
        }
        let tmp = self.dir.join("tmp");
        durable::remove_stale(&tmp, now, Duration::from_secs(STALE_TMP_SECS))
            .map_err(io_err("clean up", &tmp))?;
        Ok(moved)
    }
}

fn write_durably(path: &Path, bytes: &[u8], mtime: SystemTime) -> Result<(), SpoolError> {
    durable::write_new(path, bytes, Some(mtime)).map_err(io_err("write spool file", path))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    durable::sync_dir(dir).map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::address::{Address, Sender};
    use crate::mail::job::{Envelope, QueueId, Recipient};
    use std::time::Duration;

    fn job() -> Job {
        let mut env = Envelope::new(
            QueueId::parse("ABCDEF0123456789").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            Sender::parse("alice@example.org").unwrap(),
        );
        env.recipients
            .push(Recipient::new(Address::parse("bob@example.net").unwrap()));
        Job {
            envelope: env,
            message: b"Subject: secret plans\n\nbody\n".to_vec(),
        }
    }

    fn spool(dir: &Path) -> Spool {
        Spool::open(dir, SealKey::from_bytes([5; 32]), 1 << 20).unwrap()
    }

    #[test]
    fn enqueue_claim_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let now = SystemTime::now();
        let later = now + Duration::from_secs(600);
        let e = s.enqueue(Queue::Deferred, &job(), later).unwrap();
        assert!(e.name.starts_with("ABCDEF0123456789-"));
        assert!(s.due(now, false).unwrap().is_empty());
        assert_eq!(s.due(now, true).unwrap(), vec![e.clone()]);
        assert_eq!(s.due(later, false).unwrap().len(), 1);
        let active = s.move_to(&e, Queue::Active).unwrap().unwrap();
        assert!(
            s.move_to(&e, Queue::Active).unwrap().is_none(),
            "a claimed file cannot be claimed twice"
        );
        assert_eq!(s.load(&active).unwrap(), job());
        s.remove(&active).unwrap();
        for q in Queue::ALL {
            assert!(s.list(q).unwrap().is_empty());
        }
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn files_reveal_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let e = s.enqueue(Queue::Bounce, &job(), SystemTime::now()).unwrap();
        let bytes = fs::read(dir.path().join("bounce").join(&e.name)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["alice", "bob", "example", "secret", "Subject"] {
            assert!(!text.contains(secret), "{secret} visible in spool file");
        }
        assert_eq!(bytes.len() as u64, 5 + 24 + seal::MIN_PADDED + 16);
    }

    #[test]
    fn a_flipped_bit_is_an_error_for_that_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let bad = s
            .enqueue(Queue::Deferred, &job(), SystemTime::now())
            .unwrap();
        let good = s
            .enqueue(Queue::Deferred, &job(), SystemTime::now())
            .unwrap();
        let path = dir.path().join("deferred").join(&bad.name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[100] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            s.load(&bad),
            Err(SpoolError::Seal(SealError::Authentication))
        ));
        assert_eq!(s.load(&good).unwrap(), job());
    }

    #[test]
    fn one_runner_at_a_time_and_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let e = s
            .enqueue(Queue::Deferred, &job(), SystemTime::now())
            .unwrap();
        s.move_to(&e, Queue::Active).unwrap();
        let lock = s.lock_runner().unwrap().expect("first lock");
        assert!(
            spool(dir.path()).lock_runner().unwrap().is_none(),
            "second runner must not lock"
        );
        assert_eq!(s.recover(&lock, SystemTime::now()).unwrap(), 1);
        assert_eq!(s.list(Queue::Deferred).unwrap().len(), 1);
        drop(lock);
        assert!(s.lock_runner().unwrap().is_some());
    }

    #[test]
    fn unwritable_spool_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        fs::remove_dir(dir.path().join("tmp")).unwrap();
        let err = s
            .enqueue(Queue::Deferred, &job(), SystemTime::now())
            .unwrap_err();
        assert_eq!(err.to_failure().exit, crate::exit::Sysexit::TempFail);
        assert!(s.list(Queue::Deferred).unwrap().is_empty());
    }
}

//! The spool: jobs that must wait, sealed at rest, in the Maildir/qmail
//! tradition.
//!
//! A job is written to `tmp/`, fsync'ed, renamed into its queue and the
//! queue directory fsync'ed: the rename is the commit point. Queues:
//! `deferred/` (waiting; a file's mtime is its next attempt, as in Postfix's
//! deferred queue), `active/` (claimed by the runner), `bounce/` (failed
//! recipients, for the bouncer), `corrupt/` (files that failed
//! authentication or do not hold a job: never files that could not be
//! read, which stay where they are). Every file is sealed (see `seal`),
//! and file names are `QUEUEID-RANDOM`: random, so they reveal nothing
//! either.
//!
//! The file `key-check`, sealed under the spool key when the spool is
//! first opened, tells a wrong key from corrupt files: with the wrong key
//! nothing is tried and nothing is moved.
//!
//! A queue runner settles an attempted job in steps that can each be
//! repeated after a crash without a duplicate (see `deliverer::queue`):
//! the job's new state replaces its `active/` file, then the bounce part
//! goes to `bounce/NAME-bN` (N: the attempt), the rest to `deferred/NAME`,
//! and the `active/` file is removed. A name that is written again
//! replaces what an interrupted run left.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::exit::{Failure, ToFailure};
use crate::mail::job::{Job, JobError, JobReader};
use crate::store::durable;
use crate::store::seal::{self, SealError, SealKey};

/// `tmp/` files older than this were left by a crash.
const STALE_TMP_SECS: u64 = 36 * 3600;
/// Sealed under the spool key when the spool is made; see the module doc.
const KEY_CHECK: &str = "key-check";
const KEY_CHECK_PAYLOAD: &[u8] = b"postern spool key check 1\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Waiting for the next attempt (the file's mtime is its due time).
    Deferred,
    /// Claimed by a queue runner.
    Active,
    /// Recipients the bouncer must report.
    Bounce,
    /// Files that failed authentication or hold no job.
    Corrupt,
    /// Held by the operator (`postern-queue hold`): never tried.
    Hold,
    /// Redacted copies of delivered messages, kept for the retention
    /// time: segments of many copies, each named after when it goes.
    Sent,
}

impl Queue {
    pub const ALL: [Queue; 6] = [
        Queue::Deferred,
        Queue::Active,
        Queue::Bounce,
        Queue::Corrupt,
        Queue::Hold,
        Queue::Sent,
    ];

    pub fn dir_name(self) -> &'static str {
        match self {
            Queue::Deferred => "deferred",
            Queue::Active => "active",
            Queue::Bounce => "bounce",
            Queue::Corrupt => "corrupt",
            Queue::Hold => "hold",
            Queue::Sent => "sent",
        }
    }

    /// The queue named `name` (as `dir_name` writes it).
    pub fn named(name: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.dir_name() == name)
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
    #[error("spool file {name}: {source}")]
    Sealed { name: String, source: SealError },
    #[error(
        "spool key does not open {}: it is not the key this spool was sealed \
         with; restore that key (nothing in the spool was touched)",
        path.display()
    )]
    WrongKey { path: PathBuf },
    #[error("a job written to the spool does not read back ({0}); not spooled")]
    Unreadable(JobError),
}

impl SpoolError {
    /// True when the file itself is bad — it fails authentication, or
    /// holds no job — so that it belongs in `corrupt/`. A file that could
    /// not be read (EMFILE, EIO, EACCES) is not: it stays for another run.
    pub fn is_corrupt_file(&self) -> bool {
        matches!(
            self,
            SpoolError::Sealed { .. } | SpoolError::Job { .. } | SpoolError::Empty { .. }
        )
    }
}

impl ToFailure for SpoolError {
    fn to_failure(&self) -> Failure {
        match self {
            SpoolError::Seal(e) => e.to_failure(),
            SpoolError::WrongKey { .. } => Failure::config(self.to_string()),
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
    /// Opens the spool, creating its directories (mode 0700) durably if
    /// needed, and checks that `key` is the spool's key (see
    /// [`check_key`]).
    pub fn open(dir: &Path, key: SealKey) -> Result<Spool, SpoolError> {
        create_dir_durably(dir)?;
        for sub in ["tmp"]
            .into_iter()
            .chain(Queue::ALL.iter().map(|q| q.dir_name()))
        {
            create_dir_durably(&dir.join(sub))?;
        }
        let spool = Spool {
            dir: dir.to_owned(),
            key,
        };
        if !check_key(dir, &spool.key)? {
            let sealed = seal::seal(&spool.key, nonce(dir)?, KEY_CHECK_PAYLOAD)?;
            spool.commit(dir, KEY_CHECK, &sealed, SystemTime::now())?;
        }
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key the spool is sealed with (checked against it on open), for
    /// other files kept sealed beside the queues.
    pub fn key(&self) -> &SealKey {
        &self.key
    }

    fn path(&self, queue: Queue, name: &str) -> PathBuf {
        self.dir.join(queue.dir_name()).join(name)
    }

    /// Seals `job` into `queue` durably; its mtime is set to `mtime` (for
    /// `deferred/`, the time of the next attempt). Returns only after the
    /// file and the queue directory are fsync'ed.
    pub fn enqueue(&self, queue: Queue, job: &Job, mtime: SystemTime) -> Result<Entry, SpoolError> {
        let suffix = durable::random_hex(4).map_err(io_err("get random bytes", &self.dir))?;
        let name = format!("{}-{}", job.envelope.queue_id, suffix);
        self.put(queue, &name, job, mtime)
    }

    /// Seals `job` durably as `queue/name`, replacing a file of that name
    /// (what an interrupted run left). Before anything is written, the job
    /// is read back from the bytes to be sealed: the spool never takes a
    /// job that a later run could not read.
    pub fn put(
        &self,
        queue: Queue,
        name: &str,
        job: &Job,
        mtime: SystemTime,
    ) -> Result<Entry, SpoolError> {
        let plain = job.to_bytes();
        readable(&plain)?;
        let sealed = seal::seal(&self.key, nonce(&self.dir)?, &plain)?;
        drop(plain);
        self.commit(&self.dir.join(queue.dir_name()), name, &sealed, mtime)?;
        Ok(Entry {
            queue,
            name: name.to_owned(),
        })
    }

    /// Seals `job` as `queue/name` without waiting for the disk (set-up
    /// of benchmarks and tests): written to `tmp/` and renamed, so a
    /// reader never sees a partial file.
    pub fn keep(
        &self,
        queue: Queue,
        name: &str,
        job: &Job,
        mtime: SystemTime,
    ) -> Result<(), SpoolError> {
        let sealed = seal::seal(&self.key, nonce(&self.dir)?, &job.to_bytes())?;
        let tmp = self.dir.join("tmp").join(name);
        let dest = self.path(queue, name);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            io::Write::write_all(&mut f, &sealed)?;
            f.set_modified(mtime)?;
            fs::rename(&tmp, &dest)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("write spool file", &dest)(e)
        })
    }

    /// Appends `job`, sealed on its own, to the segment `sent/name`,
    /// without waiting for the disk: for copies whose loss in a crash
    /// loses no mail (see `deliverer::retention`). A segment holds
    /// records of an 8-byte big-endian length and the sealed job, each
    /// written with one `write` to a file opened for appending, so that
    /// deliverers appending at once never mix their records; a reader
    /// stops at a record cut short by a crash.
    pub fn append_sent(&self, name: &str, job: &Job) -> Result<(), SpoolError> {
        let sealed = seal::seal(&self.key, nonce(&self.dir)?, &job.to_bytes())?;
        let mut record = Vec::with_capacity(sealed.len() + 8);
        record.extend_from_slice(&(sealed.len() as u64).to_be_bytes());
        record.extend_from_slice(&sealed);
        let path = self.path(Queue::Sent, name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| io::Write::write_all(&mut f, &record))
            .map_err(io_err("append to spool file", &path))
    }

    /// The jobs of segment `sent/name`, in the order they were appended;
    /// a record that does not open ends the reading with its error.
    pub fn read_sent(&self, name: &str) -> Result<Vec<Job>, SpoolError> {
        let path = self.path(Queue::Sent, name);
        let bytes = fs::read(&path).map_err(io_err("read spool file", &path))?;
        let mut jobs = Vec::new();
        let mut rest = bytes.as_slice();
        while rest.len() >= 8 {
            let (len, tail) = rest.split_at(8);
            let len = u64::from_be_bytes(len.try_into().unwrap_or_default());
            let Some(sealed) = usize::try_from(len).ok().and_then(|n| tail.get(..n)) else {
                break; // cut short by a crash
            };
            let plain =
                seal::open(&self.key, sealed.to_vec()).map_err(|source| SpoolError::Sealed {
                    name: name.to_owned(),
                    source,
                })?;
            let job = JobReader::new(plain.as_slice(), u64::MAX)
                .next_job()
                .map_err(|source| SpoolError::Job {
                    name: name.to_owned(),
                    source,
                })?
                .ok_or_else(|| SpoolError::Empty {
                    name: name.to_owned(),
                })?;
            jobs.push(job);
            rest = &tail[sealed.len()..];
        }
        Ok(jobs)
    }

    /// Removes the segments of `sent/` whose time is up: a segment named
    /// `until-T` goes once the clock passes T (Unix seconds). Returns how
    /// many went.
    pub fn purge_sent(&self, now: SystemTime) -> Result<usize, SpoolError> {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut gone = 0;
        for (name, _) in self.list(Queue::Sent)? {
            let until = name
                .strip_prefix("until-")
                .and_then(|t| t.parse::<u64>().ok());
            if until.is_some_and(|t| t <= now) {
                let path = self.path(Queue::Sent, &name);
                match fs::remove_file(&path) {
                    Ok(()) => gone += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove spool file", &path)(e)),
                }
            }
        }
        Ok(gone)
    }

    /// The commit discipline: `tmp/name` written and fsync'ed, renamed to
    /// `dir/name` (replacing a file of that name), `dir` fsync'ed. On
    /// failure nothing is left in `tmp/`.
    fn commit(
        &self,
        dir: &Path,
        name: &str,
        sealed: &[u8],
        mtime: SystemTime,
    ) -> Result<(), SpoolError> {
        let tmp = self.dir.join("tmp").join(name);
        let _ = fs::remove_file(&tmp);
        let dest = dir.join(name);
        let result = write_durably(&tmp, sealed, mtime)
            .and_then(|()| fs::rename(&tmp, &dest).map_err(io_err("rename into place", &dest)));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(dir)
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

    /// Claims a `deferred/` entry for a runner: moved to `active/` without
    /// waiting for the disk. A claim lost in a crash leaves the job in
    /// `deferred/`, where the next run finds it; what must survive is the
    /// state after the attempt, which the runner commits durably.
    /// `Ok(None)` if the entry is gone.
    pub fn claim(&self, entry: &Entry) -> Result<Option<Entry>, SpoolError> {
        let from = self.path(entry.queue, &entry.name);
        let to = self.path(Queue::Active, &entry.name);
        match fs::rename(&from, &to) {
            Ok(()) => Ok(Some(Entry {
                queue: Queue::Active,
                name: entry.name.clone(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("move spool file", &from)(e)),
        }
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

    /// Reads and opens a spool file, whole: the file was written by
    /// postern, so no limit of the current configuration cuts it short.
    /// See [`SpoolError::is_corrupt_file`] for what the caller does with
    /// an error.
    pub fn load(&self, entry: &Entry) -> Result<Job, SpoolError> {
        let path = self.path(entry.queue, &entry.name);
        let mut file = File::open(&path).map_err(io_err("open spool file", &path))?;
        let mut sealed = Vec::new();
        file.read_to_end(&mut sealed)
            .map_err(io_err("read spool file", &path))?;
        let plain = seal::open(&self.key, sealed).map_err(|source| SpoolError::Sealed {
            name: entry.name.clone(),
            source,
        })?;
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
        Ok(durable::try_lock(&path)
            .map_err(io_err("lock", &path))?
            .map(|file| RunnerLock { _file: file }))
    }

    /// Removes `tmp/` files a crash left before their commit (stale ones
    /// only: a pipe-mode deliverer may be writing the others).
    pub fn remove_stale_tmp(&self, now: SystemTime) -> Result<usize, SpoolError> {
        let tmp = self.dir.join("tmp");
        durable::remove_stale(&tmp, now, Duration::from_secs(STALE_TMP_SECS))
            .map_err(io_err("clean up", &tmp))
    }
}

/// Checks `key` against the spool's `key-check` file without creating
/// anything: `Ok(true)` if it opens, `Ok(false)` if there is no such file
/// yet (a new spool), `Err(WrongKey)` if it does not open. A deliverer
/// calls this before its first delivery attempt, so that a wrong key
/// defers mail before anything is sent.
pub fn check_key(dir: &Path, key: &SealKey) -> Result<bool, SpoolError> {
    let path = dir.join(KEY_CHECK);
    let sealed = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    match seal::open(key, sealed) {
        Ok(plain) if plain == KEY_CHECK_PAYLOAD => Ok(true),
        _ => Err(SpoolError::WrongKey { path }),
    }
}

/// The job written into a spool file must read back (whatever it is, it
/// came through postern's own writer; this is the last guard).
fn readable(plain: &[u8]) -> Result<(), SpoolError> {
    match JobReader::new(plain, u64::MAX).next_job() {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(SpoolError::Unreadable(JobError::Truncated("empty"))),
        Err(e) => Err(SpoolError::Unreadable(e)),
    }
}

fn nonce(dir: &Path) -> Result<[u8; 24], SpoolError> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce)
        .map_err(|e| io::Error::other(e.to_string()))
        .map_err(io_err("get random bytes", dir))?;
    Ok(nonce)
}

/// Creates `dir` (mode 0700) if missing, and fsyncs its parent so the new
/// name lasts.
fn create_dir_durably(dir: &Path) -> Result<(), SpoolError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => durable::sync_parent(dir).map_err(io_err("fsync parent of", dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A missing parent: make it the same way, then this one.
            match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() && parent != dir => {
                    create_dir_durably(parent)?;
                    create_dir_durably(dir)
                }
                _ => Err(io_err("create directory", dir)(e)),
            }
        }
        Err(e) => Err(io_err("create directory", dir)(e)),
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
        Spool::open(dir, SealKey::from_bytes([5; 32])).unwrap()
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
            Err(SpoolError::Sealed {
                source: SealError::Authentication,
                ..
            })
        ));
        assert_eq!(s.load(&good).unwrap(), job());
    }

    #[test]
    fn one_runner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let lock = s.lock_runner().unwrap().expect("first lock");
        assert!(
            spool(dir.path()).lock_runner().unwrap().is_none(),
            "second runner must not lock"
        );
        drop(lock);
        assert!(s.lock_runner().unwrap().is_some());
    }

    #[test]
    fn a_wrong_key_is_refused_before_anything_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let e = s
            .enqueue(Queue::Deferred, &job(), SystemTime::now())
            .unwrap();
        assert!(check_key(dir.path(), &SealKey::from_bytes([5; 32])).unwrap());
        let wrong = SealKey::from_bytes([6; 32]);
        assert!(matches!(
            check_key(dir.path(), &wrong),
            Err(SpoolError::WrongKey { .. })
        ));
        let err = Spool::open(dir.path(), wrong).err().expect("wrong key");
        assert_eq!(err.to_failure().exit, crate::exit::Sysexit::Config);
        assert_eq!(s.list(Queue::Deferred).unwrap().len(), 1);
        assert_eq!(s.load(&e).unwrap(), job());
        // A new spool has no key-check yet, and checking creates nothing.
        let fresh = dir.path().join("fresh");
        assert!(!check_key(&fresh, &SealKey::from_bytes([1; 32])).unwrap());
        assert!(!fresh.exists());
    }

    #[test]
    fn only_bad_files_count_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let e = s
            .enqueue(Queue::Deferred, &job(), SystemTime::now())
            .unwrap();
        let path = dir.path().join("deferred").join(&e.name);
        // Cannot be read (EISDIR here; EACCES, EIO, EMFILE alike): not
        // the file's fault.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let err = s.load(&e).unwrap_err();
        assert!(!err.is_corrupt_file(), "{err}");
        fs::remove_dir(&path).unwrap();
        let missing = s.load(&e).unwrap_err();
        assert!(!missing.is_corrupt_file(), "{missing}");
        fs::write(&path, b"PSPL\x01 not really").unwrap();
        assert!(s.load(&e).unwrap_err().is_corrupt_file());
        let sealed = seal::seal(&SealKey::from_bytes([5; 32]), [0; 24], b"not a job").unwrap();
        fs::write(&path, sealed).unwrap();
        assert!(s.load(&e).unwrap_err().is_corrupt_file());
    }

    #[test]
    fn a_large_job_loads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let mut big = job();
        big.message = vec![b'x'; 3 << 20];
        let e = s.enqueue(Queue::Deferred, &big, SystemTime::now()).unwrap();
        assert_eq!(s.load(&e).unwrap(), big);
    }

    #[test]
    fn put_replaces_a_file_of_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let mut j = job();
        s.put(Queue::Active, "Q-1", &j, SystemTime::now()).unwrap();
        j.envelope.attempts = 7;
        let e = s.put(Queue::Active, "Q-1", &j, SystemTime::now()).unwrap();
        assert_eq!(s.list(Queue::Active).unwrap().len(), 1);
        assert_eq!(s.load(&e).unwrap().envelope.attempts, 7);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
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

//! `backup` and `restore`.
//!
//! A backup needs no passphrase: it copies the encrypted files as they are
//! on disk — the database, its write-ahead log, the public key file and the
//! sealed messages of the drop area — so cron can back up every mailbox
//! without holding anyone's passphrase, and the copy is exactly as
//! encrypted as the original.
//!
//! SQLite's online backup API cannot do this: it reads pages through the
//! pager, which needs the key, and writes them re-encrypted. Nor can the
//! log be folded into the copy without the key (SQLite3MC encrypts each
//! frame, and the frame checksums cover the plaintext). So the copy is made
//! under SQLite's own locks, the POSIX advisory locks of its unix VFS
//! (sqlite3.c, `unixLock` and `unixShmLock`), which every process that
//! opens the mailbox honours:
//! - a SHARED lock on the database file, so no connection can take the
//!   EXCLUSIVE lock that the last one to close needs to checkpoint and
//!   delete the log;
//! - on the `-shm` file, a read lock on the DMS byte (as every user of the
//!   shared memory holds; it keeps a newcomer from resetting it) and write
//!   locks on the WRITE and CHECKPOINT bytes, so no transaction can append
//!   to the log and no checkpoint can write to the database.
//!
//! Readers go on meanwhile; writers wait (their busy timeout) for the few
//! milliseconds per megabyte the copy takes. The database file and the log
//! copied together are then one consistent state, which SQLite recovers
//! from the log the first time the copy is opened.
//!
//! SQLite's locks cover only the file a connection has open, and `passwd`
//! renames a new file over the mailbox. So the copy is also made under the
//! shared `flock` every open mailbox holds ([`super::lock`]): `passwd`,
//! `destroy` and `restore`, which take the exclusive one, wait for the copy
//! to finish, and a backup that waited for them copies the file the path
//! names afterwards (or finds none), never one being replaced. The database
//! is read through a descriptor checked to be the locked file.
//!
//! A backup of `bob.sqlite` into DIR is `DIR/bob.sqlite`, and beside it
//! `bob.sqlite-wal` (when the log holds frames), `bob.sqlite-pub` and
//! `bob.sqlite-drop/new/`. Every file is written under a temporary name and
//! fsync'ed; the database file is put in place last, so a backup whose
//! database file is there is complete. An existing backup is never
//! overwritten: use a new directory for each run (e.g. dated).
//!
//! `restore` copies a backup into a staging file beside the mailbox,
//! opens it with the passphrase through the usual guard (which also
//! recovers its log), runs `check` on it and folds the log into it, and
//! only then renames it into place — over an existing mailbox only when
//! forced, and only when no process has that mailbox open: under the
//! exclusive `flock` (as `passwd` and `destroy` replace or remove a
//! mailbox) and SQLite's EXCLUSIVE lock (for a program that opens the file
//! without knowing of the `flock`). Both are waited for up to the lock
//! timeout.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

use super::drop_area::{drop_dir, public_key_path};
use super::exchange::ExchangeError;
use super::export::{create_private, make_dir, sync_parent, temp_beside};
use super::lock::MailboxLock;
use super::{Mailbox, MailboxError, starts_plaintext};
use crate::exit::{Failure, ToFailure};
use crate::log::Log;
use crate::mail::text;

// SQLite's lock bytes (sqlite3.c: PENDING_BYTE, SHARED_FIRST, SHARED_SIZE,
// UNIX_SHM_BASE with WAL_WRITE_LOCK, WAL_CKPT_LOCK, UNIX_SHM_DMS).
const PENDING_BYTE: i64 = 0x4000_0000;
const SHARED_FIRST: i64 = PENDING_BYTE + 2;
const SHARED_SIZE: i64 = 510;
const SHM_WRITE: i64 = 120;
const SHM_CKPT: i64 = 121;
const SHM_DMS: i64 = 128;

/// What a backup copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupReport {
    pub files: u64,
    pub bytes: u64,
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Takes a POSIX record lock, retrying until `deadline`.
fn lock(
    file: &File,
    path: &Path,
    kind: libc::c_int,
    start: i64,
    len: i64,
    deadline: Instant,
) -> Result<(), ExchangeError> {
    // SAFETY: flock is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    loop {
        match fcntl(file, FcntlArg::F_SETLK(&fl)) {
            Ok(_) => return Ok(()),
            Err(Errno::EAGAIN | Errno::EACCES) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(Errno::EAGAIN | Errno::EACCES) => {
                return Err(ExchangeError::Busy {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(ExchangeError::io(path, "lock", e.into())),
        }
    }
}

/// Holds the locks that keep a mailbox's files still while they are
/// copied. Dropping it releases them. (POSIX locks belong to the process
/// and go when any descriptor of the file is closed: nothing else in this
/// process may open the database or `-shm` file meanwhile.)
struct Frozen {
    db: File,
    _shm: File,
}

fn freeze(mailbox: &Path, deadline: Instant) -> Result<Frozen, ExchangeError> {
    let db = File::open(mailbox).map_err(|e| not_found_or(mailbox, e))?;
    let meta = db
        .metadata()
        .map_err(|e| ExchangeError::io(mailbox, "stat", e))?;
    lock(
        &db,
        mailbox,
        libc::F_RDLCK,
        SHARED_FIRST,
        SHARED_SIZE,
        deadline,
    )?;
    let shm_path = side(mailbox, "-shm");
    let shm = match OpenOptions::new().read(true).write(true).open(&shm_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(meta.mode() & 0o666)
                .open(&shm_path)
                .map_err(|e| ExchangeError::io(&shm_path, "create", e))?;
            // As SQLite does when root opens a database: the file belongs
            // to the owner of the database, or its owner could not open it.
            if nix::unistd::geteuid().is_root() {
                let _ = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()));
            }
            f
        }
        Err(e) => return Err(ExchangeError::io(&shm_path, "open", e)),
    };
    lock(&shm, &shm_path, libc::F_RDLCK, SHM_DMS, 1, deadline)?;
    lock(&shm, &shm_path, libc::F_WRLCK, SHM_WRITE, 1, deadline)?;
    lock(&shm, &shm_path, libc::F_WRLCK, SHM_CKPT, 1, deadline)?;
    Ok(Frozen { db, _shm: shm })
}

fn not_found_or(path: &Path, e: io::Error) -> ExchangeError {
    if e.kind() == io::ErrorKind::NotFound {
        MailboxError::NotFound {
            path: path.to_owned(),
        }
        .into()
    } else {
        ExchangeError::io(path, "open", e)
    }
}

/// Copies `from` into the new file `to` and fsyncs it; returns the bytes.
fn copy_into(from: &mut impl io::Read, to: &Path) -> Result<u64, ExchangeError> {
    let mut out = create_private(to)?;
    let n = io::copy(from, &mut out).map_err(|e| ExchangeError::io(to, "write", e))?;
    out.sync_all()
        .map_err(|e| ExchangeError::io(to, "fsync", e))?;
    Ok(n)
}

/// Backs up one mailbox into the directory `dest_dir` (created if needed).
pub fn backup(
    mailbox: &Path,
    dest_dir: &Path,
    timeout: Duration,
) -> Result<BackupReport, ExchangeError> {
    let name = mailbox
        .file_name()
        .ok_or_else(|| ExchangeError::bad(mailbox, "not a file name"))?;
    let target = dest_dir.join(name);
    if target.symlink_metadata().is_ok() {
        return Err(ExchangeError::Exists { path: target });
    }
    match fs::metadata(mailbox) {
        Ok(m) if m.is_file() && m.len() > 0 => {}
        Ok(_) => return Err(ExchangeError::bad(mailbox, "not a mailbox file")),
        Err(e) => return Err(not_found_or(mailbox, e)),
    }
    if starts_plaintext(mailbox).map_err(|e| ExchangeError::io(mailbox, "read", e))? {
        return Err(MailboxError::Plaintext {
            path: mailbox.to_owned(),
        }
        .into());
    }
    make_dir(dest_dir)?;
    let tmp = temp_beside(&target);
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        let mut report = BackupReport::default();
        let deadline = Instant::now() + timeout;
        // The shared flock first: no passwd, destroy or restore replaces
        // or removes the file while it is copied. Declared before `frozen`,
        // so it is released after it, on every path (closing its
        // descriptor would also drop this process's POSIX locks).
        let held = MailboxLock::shared(mailbox, timeout)?;
        let mut frozen = freeze(mailbox, deadline)?;
        if !held.is_on(&frozen.db)? {
            // Only a program that ignores the flock can get here.
            return Err(MailboxError::Locked {
                path: mailbox.to_owned(),
            }
            .into());
        }
        frozen
            .db
            .rewind()
            .map_err(|e| ExchangeError::io(mailbox, "read", e))?;
        report.bytes += copy_into(&mut frozen.db, &tmp)?;
        report.files += 1;
        let wal = side(mailbox, "-wal");
        match File::open(&wal) {
            Ok(mut f) if f.metadata().is_ok_and(|m| m.len() > 0) => {
                let t = side(&tmp, "-wal");
                report.bytes += copy_into(&mut f, &t)?;
                report.files += 1;
                staged.push((t, side(&target, "-wal")));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExchangeError::io(&wal, "open", e)),
        }
        match File::open(public_key_path(mailbox)) {
            Ok(mut f) => {
                let t = side(&tmp, "-pub");
                report.bytes += copy_into(&mut f, &t)?;
                report.files += 1;
                staged.push((t, public_key_path(&target)));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExchangeError::io(mailbox, "open the public key", e)),
        }
        let new = drop_dir(mailbox).join("new");
        if new.is_dir() {
            let t = side(&tmp, "-drop");
            make_dir(&t)?;
            staged.push((t.clone(), drop_dir(&target)));
            let tn = t.join("new");
            make_dir(&tn)?;
            make_dir(&t.join("tmp"))?;
            for e in fs::read_dir(&new).map_err(|e| ExchangeError::io(&new, "read", e))? {
                let e = e.map_err(|e| ExchangeError::io(&new, "read", e))?;
                if !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let mut f = match File::open(e.path()) {
                    Ok(f) => f,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(ExchangeError::io(&e.path(), "open", err)),
                };
                report.bytes += copy_into(&mut f, &tn.join(e.file_name()))?;
                report.files += 1;
            }
            File::open(&tn)
                .and_then(|d| d.sync_all())
                .map_err(|e| ExchangeError::io(&tn, "fsync", e))?;
        }
        drop(frozen);
        drop(held);
        // Everything beside the database first; the database last.
        for (from, to) in &staged {
            fs::rename(from, to).map_err(|e| ExchangeError::io(to, "rename", e))?;
        }
        fs::hard_link(&tmp, &target).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => ExchangeError::Exists {
                path: target.clone(),
            },
            _ => ExchangeError::io(&target, "create", e),
        })?;
        let _ = fs::remove_file(&tmp);
        sync_parent(&target)?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        for (from, _) in &staged {
            let _ = fs::remove_file(from);
            let _ = fs::remove_dir_all(from);
        }
    }
    result
}

/// One mailbox of [`backup_all`] and what became of it.
pub type EachBackup = (PathBuf, Result<BackupReport, ExchangeError>);

/// Backs up every mailbox (`*.sqlite`) of `dir` into `dest_dir`, each on
/// its own: one failing does not stop the others.
pub fn backup_all(
    dir: &Path,
    dest_dir: &Path,
    timeout: Duration,
) -> Result<Vec<EachBackup>, ExchangeError> {
    let mut mailboxes: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| ExchangeError::io(dir, "read", e))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .collect();
    mailboxes.sort();
    make_dir(dest_dir)?;
    Ok(mailboxes
        .into_iter()
        .map(|m| {
            let r = backup(&m, dest_dir, timeout);
            (m, r)
        })
        .collect())
}

/// A mailbox's file name, fit for a line of output (no control characters).
pub fn mailbox_name(mailbox: &Path) -> String {
    let name = mailbox
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    text::clean(&name).into_owned()
}

/// Logs each mailbox that [`backup_all`] could not back up. A mailbox's
/// file name is its user's address: unless the log may show addresses,
/// it names the mailbox by its place in the run instead.
pub fn log_failures(results: &[EachBackup], log: &Log) {
    let total = results.len();
    for (i, (mailbox, result)) in results.iter().enumerate() {
        let Err(e) = result else { continue };
        let status = e.to_failure().status;
        if log.shows_addresses() {
            log.warning(format_args!(
                "backup failed: {}: {status}",
                mailbox_name(mailbox)
            ));
        } else {
            log.warning(format_args!(
                "backup failed: mailbox {} of {total}: {status}",
                i + 1
            ));
        }
    }
}

/// How a run of [`backup_all`] ends: Ok when every mailbox was backed up;
/// else how many were not, with the first failure's exit status (each
/// mailbox's own outcome is for standard output).
pub fn verdict(results: &[EachBackup]) -> Result<(), Failure> {
    let mut failures = results.iter().filter_map(|(_, r)| r.as_ref().err());
    let Some(first) = failures.next() else {
        return Ok(());
    };
    let failed = 1 + failures.count();
    Err(Failure {
        text: format!(
            "{failed} of {} mailboxes were not backed up (see standard output)",
            results.len()
        ),
        ..first.to_failure()
    })
}

/// Restores the backup `src` (with its `-wal`, and the sealed messages of
/// its `-drop/new/`) as the mailbox `mailbox`, checked with `passphrase`;
/// returns the restored mailbox, opened.
pub fn restore(
    src: &Path,
    mailbox: &Path,
    passphrase: &str,
    force: bool,
    timeout: Duration,
    now: SystemTime,
) -> Result<Mailbox, ExchangeError> {
    match fs::metadata(src) {
        Ok(m) if m.is_file() && m.len() > 0 => {}
        Ok(_) => return Err(ExchangeError::bad(src, "not a mailbox backup")),
        Err(e) => return Err(ExchangeError::io(src, "open", e)),
    }
    if starts_plaintext(src).map_err(|e| ExchangeError::io(src, "read", e))? {
        return Err(MailboxError::Plaintext {
            path: src.to_owned(),
        }
        .into());
    }
    let exists = mailbox.symlink_metadata().is_ok();
    if exists && !force {
        return Err(ExchangeError::Exists {
            path: mailbox.to_owned(),
        });
    }
    let stage = temp_beside(mailbox);
    let cleanup = |stage: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(side(stage, suffix));
        }
    };
    let staged = (|| {
        copy_into(
            &mut File::open(src).map_err(|e| ExchangeError::io(src, "open", e))?,
            &stage,
        )?;
        let wal = side(src, "-wal");
        if wal.is_file() {
            copy_into(
                &mut File::open(&wal).map_err(|e| ExchangeError::io(&wal, "open", e))?,
                &side(&stage, "-wal"),
            )?;
        }
        // The guard, the log recovered, every page read and authenticated.
        let mb = Mailbox::open_for_check(&stage, passphrase, timeout).map_err(|e| match e {
            MailboxError::WrongPassphrase { .. } => MailboxError::WrongPassphrase {
                path: src.to_owned(),
            },
            e => e,
        })?;
        let report = super::check(&mb)?;
        if !report.problems.is_empty() {
            return Err(MailboxError::Damaged {
                path: src.to_owned(),
                detail: report.problems.join("; "),
            }
            .into());
        }
        mb.checkpoint()?;
        drop(mb);
        File::open(&stage)
            .and_then(|f| f.sync_all())
            .map_err(|e| ExchangeError::io(&stage, "fsync", e))
    })();
    if let Err(e) = staged {
        cleanup(&stage);
        return Err(e);
    }
    let placed = (|| {
        let deadline = Instant::now() + timeout;
        // Only when no process has the old mailbox open: the exclusive
        // flock (every open mailbox holds a shared one; a process that
        // waited for it finds the restored file when it gets it) ...
        let held = if exists {
            match MailboxLock::exclusive(mailbox, timeout) {
                Ok(held) => Some(held),
                // Destroyed meanwhile: put the backup in place as new.
                Err(MailboxError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        if let Some(held) = held {
            // ... and the lock SQLite calls EXCLUSIVE, for a program that
            // opens the file without taking the flock.
            let old = OpenOptions::new()
                .read(true)
                .write(true)
                .open(mailbox)
                .map_err(|e| ExchangeError::io(mailbox, "open", e))?;
            if !held.is_on(&old)? {
                return Err(MailboxError::Locked {
                    path: mailbox.to_owned(),
                }
                .into());
            }
            lock(
                &old,
                mailbox,
                libc::F_WRLCK,
                SHARED_FIRST,
                SHARED_SIZE,
                deadline,
            )?;
            for suffix in ["-wal", "-shm"] {
                match fs::remove_file(side(mailbox, suffix)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(ExchangeError::io(mailbox, "remove the old log", e));
                    }
                    _ => {}
                }
            }
            fs::rename(&stage, mailbox).map_err(|e| ExchangeError::io(mailbox, "rename", e))?;
            sync_parent(mailbox)?;
            drop(old);
            drop(held);
            Ok(())
        } else {
            // A log or shared memory left from an earlier mailbox of that
            // name would be read as this one's.
            for suffix in ["-wal", "-shm"] {
                match fs::remove_file(side(mailbox, suffix)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(ExchangeError::io(mailbox, "remove a stale log", e));
                    }
                    _ => {}
                }
            }
            fs::hard_link(&stage, mailbox).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => ExchangeError::Exists {
                    path: mailbox.to_owned(),
                },
                _ => ExchangeError::io(mailbox, "create", e),
            })?;
            sync_parent(mailbox)
        }
    })();
    cleanup(&stage);
    placed?;
    // Sealed messages that waited in the backup's drop area.
    let from = drop_dir(src).join("new");
    if from.is_dir() {
        let dir = drop_dir(mailbox);
        make_dir(&dir)?;
        make_dir(&dir.join("tmp"))?;
        make_dir(&dir.join("new"))?;
        for e in fs::read_dir(&from).map_err(|e| ExchangeError::io(&from, "read", e))? {
            let e = e.map_err(|e| ExchangeError::io(&from, "read", e))?;
            let to = dir.join("new").join(e.file_name());
            if e.file_type().is_ok_and(|t| t.is_file()) && !to.exists() {
                // Through tmp/, as a delivery: new/ only ever holds whole files.
                let mut f = File::open(e.path())
                    .map_err(|err| ExchangeError::io(&e.path(), "open", err))?;
                let t = dir.join("tmp").join(e.file_name());
                copy_into(&mut f, &t)?;
                fs::rename(&t, &to).map_err(|err| ExchangeError::io(&to, "rename", err))?;
            }
        }
    }
    // In place: the guard again, the public key written, the drop merged.
    Ok(Mailbox::open(mailbox, passphrase, timeout, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Sysexit;
    use crate::mailbox::{INBOX, check, deliver};

    const SHORT: Duration = Duration::from_millis(150);
    const LONG: Duration = Duration::from_secs(10);

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_452_559)
    }

    /// A closed mailbox at `path` under `passphrase` holding `n` messages.
    fn mailbox_with(path: &Path, passphrase: &str, n: usize) {
        let mut mb = Mailbox::create(path, passphrase, LONG, now()).unwrap();
        for i in 0..n {
            let raw = format!("Subject: {passphrase} {i}\n\nbody {i}\n");
            deliver(&mut mb, raw.as_bytes(), INBOX, now()).unwrap();
        }
    }

    fn messages(path: &Path, passphrase: &str) -> Result<u64, MailboxError> {
        let mb = Mailbox::open_for_check(path, passphrase, LONG)?;
        let report = check(&mb)?;
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        Ok(report.messages)
    }

    fn is_locked(e: &ExchangeError) -> bool {
        matches!(e, ExchangeError::Mailbox(MailboxError::Locked { .. }))
            && e.to_failure().exit == Sysexit::TempFail
    }

    /// What `passwd` does while it holds its exclusive lock: a backup
    /// waits, and then copies the file that the path names afterwards.
    #[test]
    fn a_backup_waits_for_a_replacement_and_copies_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob.sqlite");
        mailbox_with(&path, "old", 3);
        let replacement = dir.path().join("new.sqlite");
        mailbox_with(&replacement, "new", 5);

        let held = MailboxLock::exclusive(&path, LONG).unwrap();
        let err = backup(&path, &dir.path().join("b0"), SHORT).unwrap_err();
        assert!(is_locked(&err), "{err}");
        assert!(!dir.path().join("b0/bob.sqlite").exists());

        let dest = dir.path().join("b1");
        let waiting = {
            let (path, dest) = (path.clone(), dest.clone());
            std::thread::spawn(move || backup(&path, &dest, LONG))
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiting.is_finished(), "the backup did not wait");
        fs::rename(&replacement, &path).unwrap();
        drop(held);
        let report = waiting.join().unwrap().unwrap();
        assert!(report.files >= 1);
        let copy = dest.join("bob.sqlite");
        assert_eq!(messages(&copy, "new").unwrap(), 5);
        assert!(matches!(
            messages(&copy, "old"),
            Err(MailboxError::WrongPassphrase { .. })
        ));
    }

    /// A restore over a mailbox that someone holds open waits for it, up
    /// to the timeout, and leaves it as it is when the time is up.
    #[test]
    fn a_restore_waits_for_an_open_mailbox_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("carol.sqlite");
        mailbox_with(&source, "pw", 2);
        let bk = dir.path().join("backup");
        backup(&source, &bk, LONG).unwrap();
        let from = bk.join("carol.sqlite");
        let path = dir.path().join("bob.sqlite");
        mailbox_with(&path, "pw", 4);
        let before = fs::read(&path).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();

        let open = MailboxLock::shared(&path, LONG).unwrap();
        let started = Instant::now();
        let err = restore(&from, &path, "pw", true, SHORT, now()).unwrap_err();
        assert!(started.elapsed() >= SHORT);
        assert!(is_locked(&err), "{err}");
        assert!(err.to_string().contains("bob.sqlite"), "{err}");
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(fs::read(&path).unwrap(), before);
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
        assert_eq!(messages(&path, "pw").unwrap(), 4);

        // Closed while the restore waits: it goes ahead.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(open);
        });
        let mb = restore(&from, &path, "pw", true, LONG, now()).unwrap();
        closer.join().unwrap();
        assert_eq!(check(&mb).unwrap().messages, 2);
        assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
    }

    #[test]
    fn a_run_over_all_mailboxes_fails_with_its_first_failure_counted() {
        let ok = |name: &str| (PathBuf::from(name), Ok(BackupReport::default()));
        let busy = |name: &str| {
            let path = PathBuf::from(name);
            (path.clone(), Err(ExchangeError::Busy { path }))
        };
        let refused = |name: &str| {
            let path = PathBuf::from(name);
            (path.clone(), Err(ExchangeError::Exists { path }))
        };
        assert!(verdict(&[]).is_ok());
        assert!(verdict(&[ok("/m/a.sqlite"), ok("/m/b.sqlite")]).is_ok());
        let results = [
            ok("/m/a.sqlite"),
            busy("/m/b.sqlite"),
            refused("/m/c.sqlite"),
        ];
        let f = verdict(&results).unwrap_err();
        assert_eq!(f.exit, Sysexit::TempFail);
        assert_eq!(
            f.text,
            "2 of 3 mailboxes were not backed up (see standard output)"
        );
        log_failures(&results, &Log::discard("test"));
        assert_eq!(mailbox_name(Path::new("/m/a\tb.sqlite")), "a b.sqlite");
    }
}

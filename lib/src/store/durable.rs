//! Durable file operations shared by everything postern keeps on disk (the
//! spool, mailbox drop areas, rekeyed and exported mailboxes): the
//! Maildir/qmail commit discipline of write, fsync, rename, fsync the
//! directory — and the clean-up of what a crash left before its commit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag};
use nix::sys::statfs::{self, FsType};
use nix::unistd::linkat;
use serde::Deserialize;

/// When [`commit_new`] fsyncs the directory after the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryFsync {
    /// Not where fsync of the linked file also commits its name: on ext4,
    /// XFS and btrfs, whose journal or log commits the new directory
    /// entry with the file (ext2 and ext4 without a journal look like
    /// ext4 here: use `always` on those).
    #[default]
    Auto,
    /// Always, as POSIX alone promises nothing less.
    Always,
}

/// File systems whose fsync of a file commits the directory entries made
/// for it before the fsync: the journal (ext4) or log (XFS, btrfs) holds
/// both in the same or an earlier transaction.
fn fsync_commits_names(file: &File) -> bool {
    const KNOWN: [FsType; 3] = [
        statfs::EXT4_SUPER_MAGIC,
        statfs::XFS_SUPER_MAGIC,
        statfs::BTRFS_SUPER_MAGIC,
    ];
    statfs::fstatfs(file).is_ok_and(|s| KNOWN.contains(&s.filesystem_type()))
}

/// Creates `dir/name` (mode 0600) holding `bytes`, such that the name
/// never shows a partial file, and returns once file and name are on disk.
///
/// On Linux the file is written unnamed (`O_TMPFILE`), then linked under
/// its name, then fsynced: on ext4, XFS and btrfs that one fsync commits
/// the name too, and the directory is fsynced only under
/// [`DirectoryFsync::Always`]. Elsewhere (no `O_TMPFILE`, no `/proc`) it
/// is written into `tmp_dir`, fsynced, linked into `dir`, and `dir` is
/// fsynced. Either way a crash before the return leaves no partial file
/// under `name` (at worst a leftover in `tmp_dir`, see [`remove_stale`]).
///
/// On the `O_TMPFILE` path the name is linked *before* the fsync, and
/// that is deliberate: an fsync before the link and another after it (to
/// commit the name) would cost two device cache flushes per message. It
/// is safe because (1) every byte is written before the name exists, so a
/// reader in the same system never sees a partial file; (2) the journal
/// or log of ext4 (data=ordered), XFS and btrfs commits the data of a
/// file before the directory entry that names it, so after a power loss
/// the name is either gone or names the whole file; and (3) the caller
/// has not acknowledged anything until this returns: a name that a crash
/// left behind with unusable content fails authentication when opened and
/// is set aside, while the MTA, never told "delivered", tries again.
pub fn commit_new(
    dir: &Path,
    tmp_dir: &Path,
    name: &str,
    bytes: &[u8],
    dir_fsync: DirectoryFsync,
) -> io::Result<()> {
    let target = dir.join(name);
    let unnamed = OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(OFlag::O_TMPFILE.bits())
        .open(dir);
    let mut file = match unnamed {
        Ok(f) => f,
        // No O_TMPFILE in this kernel (EISDIR) or file system (EOPNOTSUPP).
        Err(e) if unsupported(&e) => return commit_by_link(dir, tmp_dir, name, bytes),
        Err(e) => return Err(e),
    };
    file.write_all(bytes)?;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match linkat(
        AT_FDCWD,
        proc_path.as_str(),
        AT_FDCWD,
        &target,
        AtFlags::AT_SYMLINK_FOLLOW,
    ) {
        Ok(()) => {}
        // No /proc: the unnamed file cannot be named.
        Err(Errno::ENOENT) if !Path::new("/proc/self/fd").is_dir() => {
            return commit_by_link(dir, tmp_dir, name, bytes);
        }
        Err(e) => return Err(e.into()),
    }
    let synced = file.sync_all().and_then(|()| {
        if dir_fsync == DirectoryFsync::Always || !fsync_commits_names(&file) {
            sync_dir(dir)
        } else {
            Ok(())
        }
    });
    if let Err(e) = synced {
        // Not on disk: take the name back, so that nothing the caller
        // reports as failed is found later.
        let _ = fs::remove_file(&target);
        return Err(e);
    }
    Ok(())
}

fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EISDIR | Errno::EOPNOTSUPP | Errno::EINVAL)
    )
}

/// The Maildir way: `tmp_dir/name`, fsync, link as `dir/name` (which, unlike
/// a rename, never replaces a file), unlink the first name, fsync `dir`.
fn commit_by_link(dir: &Path, tmp_dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_dir.join(name);
    let result = write_new(&tmp, bytes, None)
        .and_then(|()| fs::hard_link(&tmp, dir.join(name)))
        .and_then(|()| sync_dir(dir));
    let _ = fs::remove_file(&tmp);
    result
}

/// Creates `path` (which must not exist) with mode 0600, writes `bytes`,
/// sets the mtime if asked, and fsyncs it.
pub fn write_new(path: &Path, bytes: &[u8], mtime: Option<SystemTime>) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    if let Some(t) = mtime {
        file.set_modified(t)?;
    }
    file.sync_all()
}

/// Fsyncs a directory, so that a rename or unlink in it lasts.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsyncs the directory `path` is in (`.` for a bare file name).
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Removes the files in `dir` last modified more than `max_age` before
/// `now`: a `tmp/` directory's leftovers from a crash before the rename.
/// Files that vanish meanwhile are skipped; returns how many went.
pub fn remove_stale(dir: &Path, now: SystemTime, max_age: Duration) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > max_age);
        if stale && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Takes an exclusive `flock(2)` on `path` (made 0600 if missing) without
/// waiting: the open file, held until dropped, or `None` when another
/// process holds it.
pub fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// `bytes` random bytes as lower-case hex, for file names that reveal nothing.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(crate::mail::text::hex(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_refuses_to_overwrite_and_sets_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        write_new(&p, b"x", Some(t)).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), t);
        assert!(write_new(&p, b"y", None).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"x");
        sync_parent(&p).unwrap();
        sync_parent(Path::new("relative-name")).unwrap();
    }

    #[test]
    fn commit_new_names_a_whole_file_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (new, tmp) = (dir.path().join("new"), dir.path().join("tmp"));
        fs::create_dir(&new).unwrap();
        fs::create_dir(&tmp).unwrap();
        for mode in [DirectoryFsync::Auto, DirectoryFsync::Always] {
            let name = format!("{mode:?}");
            commit_new(&new, &tmp, &name, b"whole", mode).unwrap();
            assert_eq!(fs::read(new.join(&name)).unwrap(), b"whole");
            let meta = fs::metadata(new.join(&name)).unwrap();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
                0o600
            );
            let again = commit_new(&new, &tmp, &name, b"other", mode).unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(fs::read(new.join(&name)).unwrap(), b"whole");
        }
        // Nothing left behind, whichever way it went.
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&new).unwrap().count(), 2);
        commit_by_link(&new, &tmp, "linked", b"l").unwrap();
        assert_eq!(fs::read(new.join("linked")).unwrap(), b"l");
        assert!(commit_by_link(&new, &tmp, "linked", b"m").is_err());
        assert_eq!(fs::read(new.join("linked")).unwrap(), b"l");
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
        assert!(
            commit_new(
                &dir.path().join("missing"),
                &tmp,
                "x",
                b"",
                DirectoryFsync::Auto
            )
            .is_err()
        );
    }

    #[test]
    fn only_stale_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        write_new(
            &dir.path().join("old"),
            b"",
            Some(now - Duration::from_secs(7200)),
        )
        .unwrap();
        write_new(&dir.path().join("new"), b"", Some(now)).unwrap();
        assert_eq!(
            remove_stale(dir.path(), now, Duration::from_secs(3600)).unwrap(),
            1
        );
        assert!(dir.path().join("new").exists() && !dir.path().join("old").exists());
        assert_eq!(
            remove_stale(&dir.path().join("missing"), now, Duration::ZERO).unwrap(),
            0
        );
        assert_eq!(random_hex(4).unwrap().len(), 8);
    }
}

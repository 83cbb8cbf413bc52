//! Durable file operations shared by everything postern keeps on disk (the
//! spool, mailbox drop areas, rekeyed and exported mailboxes): the
//! Maildir/qmail commit discipline of write, fsync, rename, fsync the
//! directory — and the clean-up of what a crash left before its commit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

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

/// `bytes` random bytes as lower-case hex, for file names that reveal nothing.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
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

//! Files that hold secrets — the spool key, a mailbox passphrase file, the
//! SRS secrets — opened only when nobody but their owner can read them
//! (the check sshd makes of a private key): a regular file, no group or
//! other permission bits — and, for a caller that asks, owned by the user
//! postern runs as or by root.
//!
//! One helper for every such file, so the rule cannot drift between them;
//! each caller turns a [`PrivateFileError`] into its own error, which names
//! the file and what to do.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// Why a private file was refused. Carries no path: the caller's error
/// names the file in its own words.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error("{0}")]
    Open(io::Error),
    #[error("not a regular file")]
    NotFile,
    /// The permission bits (`0o7777` part of the mode).
    #[error("mode {0:04o}; it must be 0600 or stricter")]
    Mode(u32),
}

/// A private file owned by someone other than root or the process's
/// effective user: that user could have written it (a secret chosen by
/// someone else).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("owned by uid {owner}; it must be owned by root or uid {process}")]
pub struct WrongOwner {
    pub owner: u32,
    pub process: u32,
}

/// Opens `path` for reading after checking that only its owner can read
/// it; returns the file and its metadata (taken from the open file, so the
/// checks and the read see the same file even if the name is replaced).
///
/// Opened with `O_NONBLOCK` so that a FIFO or device put in the file's
/// place cannot hang the caller before the regular-file check refuses it
/// (on a regular file the flag changes nothing).
pub fn open(path: &Path) -> Result<(File, Metadata), PrivateFileError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(PrivateFileError::Open)?;
    let meta = file.metadata().map_err(PrivateFileError::Open)?;
    if !meta.is_file() {
        return Err(PrivateFileError::NotFile);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError::Mode(mode));
    }
    Ok((file, meta))
}

/// Checks the owner of a file [`open`] returned: root or the process's
/// effective user.
pub fn check_owner(meta: &Metadata) -> Result<(), WrongOwner> {
    let process = nix::unistd::geteuid().as_raw();
    if meta.uid() == 0 || meta.uid() == process {
        Ok(())
    } else {
        Err(WrongOwner {
            owner: meta.uid(),
            process,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn mode_kind_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"s3cret")
            .unwrap();
        for (mode, ok) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let got = open(&path);
            assert_eq!(got.is_ok(), ok, "{mode:o}");
            if !ok {
                assert!(matches!(got, Err(PrivateFileError::Mode(m)) if m == mode));
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (mut file, meta) = open(&path).unwrap();
        assert_eq!(check_owner(&meta), Ok(()));
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!((text.as_str(), meta.len()), ("s3cret", 6));
        assert!(matches!(
            open(dir.path()),
            Err(PrivateFileError::NotFile | PrivateFileError::Mode(_))
        ));
        assert!(matches!(
            open(&dir.path().join("missing")),
            Err(PrivateFileError::Open(_))
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(open(&path), Err(PrivateFileError::NotFile)));
    }

    #[test]
    fn another_users_file_fails_the_owner_check() {
        // Only root can give a file away (the tests run as root here and in CI).
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root: it gives a file to another user"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::File::create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let (_, meta) = open(&path).unwrap();
        assert_eq!(
            check_owner(&meta),
            Err(WrongOwner {
                owner: 65534,
                process: 0
            })
        );
    }
}

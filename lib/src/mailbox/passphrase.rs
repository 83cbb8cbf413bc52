//! Passphrases of encrypted mailboxes: read from an inherited file
//! descriptor or from a file only its owner can read, never from the
//! command line (where `ps` shows it), and wiped from memory when dropped.

pub mod prompt;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::exit::{Failure, ToFailure};
use crate::store::private::{self, PrivateFileError};

/// Longest passphrase accepted, in bytes.
pub const MAX_LEN: usize = 1024;

/// A passphrase; its memory is zeroed when it is dropped.
pub type Passphrase = Zeroizing<String>;

/// Where a passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An open file descriptor (`--passphrase-fd N`), read to its end.
    Fd(u32),
    /// A file of mode 0600 or stricter (`--passphrase-file F`).
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    #[error("passphrase {source_name}: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error(
        "passphrase file {path} has mode {mode:04o}; it must be readable by its owner only \
         (chmod 600 {path})"
    )]
    Mode { path: PathBuf, mode: u32 },
    #[error("passphrase file {path} is not a regular file")]
    NotFile { path: PathBuf },
    #[error("passphrase from {source_name} is empty")]
    Empty { source_name: String },
    #[error("passphrase from {source_name} is longer than {MAX_LEN} bytes")]
    TooLong { source_name: String },
    #[error("passphrase from {source_name} is not UTF-8 text or contains a NUL byte")]
    NotText { source_name: String },
    #[error("no passphrase given: use --passphrase-fd N or --passphrase-file FILE")]
    Missing,
}

impl ToFailure for PassphraseError {
    fn to_failure(&self) -> Failure {
        // Like any usage or configuration mistake (see bins/common.rs):
        // 78, so that Postfix defers rather than bounces.
        match self {
            PassphraseError::Read { .. } => Failure::tempfail(self.to_string()),
            _ => Failure::config(self.to_string()),
        }
    }
}

impl Source {
    /// The source a pair of options names (`--…-fd N`, `--…-file F`;
    /// the command line lets only one be given), if any.
    pub fn from_options(fd: Option<u32>, file: Option<&Path>) -> Option<Source> {
        match (fd, file) {
            (Some(fd), _) => Some(Source::Fd(fd)),
            (None, Some(file)) => Some(Source::File(file.to_owned())),
            (None, None) => None,
        }
    }

    fn name(&self) -> String {
        match self {
            Source::Fd(n) => format!("file descriptor {n}"),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// What to do when no source is named.
#[derive(Debug, Clone, Copy)]
pub enum Prompt<'a> {
    /// Ask once on the terminal for the passphrase of the mailbox `what`.
    Existing(&'a str),
    /// Ask twice on the terminal for a new passphrase of `what`.
    New(&'a str),
    /// Nothing: the passphrase is optional.
    Never,
}

/// The one way a command gets a passphrase: from `source` when one is
/// named, else from the terminal as `prompt` says when standard input is
/// one; `None` when there is neither.
pub fn obtain(source: Option<&Source>, prompt: Prompt<'_>) -> Result<Option<Passphrase>, Failure> {
    if let Some(source) = source {
        return read(source).map(Some).map_err(|e| e.to_failure());
    }
    let asked = match prompt {
        Prompt::Never => return Ok(None),
        _ if !prompt::available() => return Ok(None),
        Prompt::Existing(what) => prompt::ask(&format!("Passphrase for {what}: ")),
        Prompt::New(what) => prompt::ask_new(what),
    };
    asked.map(Some).map_err(|e| e.to_failure())
}

/// Reads a passphrase. One trailing newline (LF or CRLF) is not part of it.
pub fn read(source: &Source) -> Result<Passphrase, PassphraseError> {
    let source_name = source.name();
    let read_err = |error| PassphraseError::Read {
        source_name: source.name(),
        error,
    };
    let file = match source {
        // /dev/fd/N opens what descriptor N refers to, without taking over
        // a raw descriptor number in unsafe code.
        Source::Fd(n) => File::open(format!("/dev/fd/{n}")).map_err(read_err)?,
        Source::File(path) => open_private(path)?,
    };
    // Room for the limit and one more byte, so the buffer never grows (a
    // reallocation would leave an unwiped copy behind).
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_LEN + 64));
    file.take(MAX_LEN as u64 + 3)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    from_bytes(bytes, &source_name)
}

/// Opens a passphrase file after checking that only its owner can read it.
fn open_private(path: &Path) -> Result<File, PassphraseError> {
    let (file, _) = private::open(path).map_err(|e| match e {
        PrivateFileError::Open(error) => PassphraseError::Read {
            source_name: path.display().to_string(),
            error,
        },
        PrivateFileError::NotFile => PassphraseError::NotFile {
            path: path.to_owned(),
        },
        PrivateFileError::Mode(mode) => PassphraseError::Mode {
            path: path.to_owned(),
            mode,
        },
    })?;
    Ok(file)
}

/// Checks and trims the bytes read; decides nothing about where they came from.
pub fn from_bytes(
    mut bytes: Zeroizing<Vec<u8>>,
    source_name: &str,
) -> Result<Passphrase, PassphraseError> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let source_name = source_name.to_owned();
    if bytes.is_empty() {
        return Err(PassphraseError::Empty { source_name });
    }
    if bytes.len() > MAX_LEN {
        return Err(PassphraseError::TooLong { source_name });
    }
    if bytes.contains(&0) || std::str::from_utf8(&bytes).is_err() {
        return Err(PassphraseError::NotText { source_name });
    }
    // Moves the buffer into the String without copying it.
    let vec = std::mem::take(&mut *bytes);
    match String::from_utf8(vec) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            // Checked above; wipe it all the same.
            drop(Zeroizing::new(e.into_bytes()));
            Err(PassphraseError::NotText { source_name })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn z(b: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(b.to_vec())
    }

    #[test]
    fn trailing_newline_is_trimmed_once() {
        assert_eq!(
            from_bytes(z(b"correct horse\n"), "t").unwrap().as_str(),
            "correct horse"
        );
        assert_eq!(from_bytes(z(b"pw\r\n"), "t").unwrap().as_str(), "pw");
        assert_eq!(from_bytes(z(b" pw \n\n"), "t").unwrap().as_str(), " pw \n");
    }

    #[test]
    fn bad_passphrases() {
        assert!(matches!(
            from_bytes(z(b"\n"), "t"),
            Err(PassphraseError::Empty { .. })
        ));
        assert!(matches!(
            from_bytes(z(b"a\0b"), "t"),
            Err(PassphraseError::NotText { .. })
        ));
        assert!(matches!(
            from_bytes(z(b"\xff\xfe"), "t"),
            Err(PassphraseError::NotText { .. })
        ));
        assert!(matches!(
            from_bytes(z(&[b'a'; MAX_LEN + 1]), "t"),
            Err(PassphraseError::TooLong { .. })
        ));
    }

    #[test]
    fn file_mode_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"secret\n")
            .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&Source::File(path.clone())).unwrap_err();
        assert!(err.to_string().contains("mode 0644"), "{err}");
        assert_eq!(err.to_failure().exit, crate::exit::Sysexit::Config);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&Source::File(path)).unwrap().as_str(), "secret");
        assert!(read(&Source::File(dir.path().to_owned())).is_err());
        assert!(matches!(
            read(&Source::Fd(987_654)),
            Err(PassphraseError::Read { .. })
        ));
    }
}

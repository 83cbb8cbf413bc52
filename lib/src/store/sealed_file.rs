//! A small file kept sealed under the spool key and replaced whole: the
//! caches that outlive one run (MTA-STS policies, the encryptor's key
//! lookups). Nothing in them is readable at rest, a torn write leaves
//! the old file, and a file that does not open is reported, not trusted.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::durable;
use super::seal::{self, SealError, SealKey};

/// Where a sealed file lives and the key it is sealed with.
#[derive(Clone)]
pub struct SealedFile {
    pub path: PathBuf,
    pub key: SealKey,
}

#[derive(Debug, thiserror::Error)]
pub enum SealedFileError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Seal(#[from] SealError),
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
}

impl SealedFile {
    /// The plaintext, or `None` when the file does not exist. A file over
    /// `max` bytes is refused before it is read whole.
    pub fn read(&self, max: u64) -> Result<Option<Zeroizing<Vec<u8>>>, SealedFileError> {
        let mut sealed = Vec::new();
        match fs::File::open(&self.path) {
            Ok(f) => f.take(max + 1).read_to_end(&mut sealed)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if sealed.len() as u64 > max {
            return Err(SealedFileError::TooLarge(max));
        }
        Ok(Some(Zeroizing::new(seal::open(&self.key, sealed)?)))
    }

    /// Replaces the file with `plain` sealed: a new file beside it (mode
    /// 0600, fsynced) renamed over it, then the directory fsynced.
    pub fn write(&self, plain: &[u8]) -> Result<(), SealedFileError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let sealed = seal::seal(&self.key, nonce, plain)?;
        replace_file(&self.path, &sealed)?;
        Ok(())
    }
}

fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path names no file"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        name.to_string_lossy(),
        durable::random_hex(8)?
    ));
    let result = durable::write_new(&tmp, bytes, None).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    durable::sync_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_file_reads_back_and_refuses_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = SealedFile {
            path: dir.path().join("c.cache"),
            key: SealKey::from_bytes([7; 32]),
        };
        assert!(file.read(1 << 20).unwrap().is_none());
        file.write(b"hello").unwrap();
        assert_eq!(file.read(1 << 20).unwrap().unwrap().as_slice(), b"hello");
        assert!(
            !fs::read(&file.path)
                .unwrap()
                .windows(5)
                .any(|w| w == b"hello")
        );
        assert!(matches!(file.read(10), Err(SealedFileError::TooLarge(10))));
        let other = SealedFile {
            key: SealKey::from_bytes([8; 32]),
            ..file.clone()
        };
        assert!(matches!(other.read(1 << 20), Err(SealedFileError::Seal(_))));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

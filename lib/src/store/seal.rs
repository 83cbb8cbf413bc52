//! Sealing of everything postern writes at rest: XChaCha20-Poly1305
//! (draft-irtf-cfrg-xchacha, built on RFC 8439) under a 32-byte key file.
//!
//! A sealed file is `PSPL` 0x01, a random 24-byte nonce, then the padded
//! plaintext encrypted and authenticated (16-byte tag), with the five
//! header bytes as associated data. The plaintext is the payload length
//! (8 bytes, big-endian), the payload, and zero bytes up to a padded size,
//! so a file's size tells little about the message: sizes are rounded up
//! with the Padmé scheme (Nikitin et al., "Reducing Metadata Leakage from
//! Encrypted Files and Communication with PURBs", PETS 2019), which leaks
//! O(log log n) bits of the length at most 12% overhead, and never below
//! 4096 bytes.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use zeroize::Zeroizing;

use crate::exit::{Failure, ToFailure};
use crate::store::private::{self, PrivateFileError};

const MAGIC: &[u8; 5] = b"PSPL\x01";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const LEN_PREFIX: usize = 8;
/// The smallest padded plaintext: every small message looks the same.
pub const MIN_PADDED: u64 = 4096;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("spool key {path}: {source}")]
    KeyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool key {path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})")]
    KeyMode { path: PathBuf, mode: u32 },
    #[error(
        "spool key {path} is {len} bytes; it must be exactly 32 random bytes \
             (make one with: umask 077; head -c 32 /dev/urandom > {path})"
    )]
    KeyLength { path: PathBuf, len: u64 },
    #[error("spool key {path} is not a regular file")]
    KeyNotFile { path: PathBuf },
    #[error("sealed data is not a postern sealed file (bad magic)")]
    BadMagic,
    #[error("sealed data is too short")]
    TooShort,
    #[error("sealed data failed authentication (corrupt, or sealed under another key)")]
    Authentication,
    #[error("sealed data has an inconsistent length field")]
    BadLength,
    #[error("payload too large to seal")]
    TooLarge,
}

impl ToFailure for SealError {
    fn to_failure(&self) -> Failure {
        match self {
            SealError::KeyRead { .. } => Failure::tempfail(self.to_string()),
            SealError::KeyMode { .. }
            | SealError::KeyLength { .. }
            | SealError::KeyNotFile { .. } => Failure::config(self.to_string()),
            _ => Failure::tempfail(self.to_string()),
        }
    }
}

/// The spool key, wiped from memory when dropped (every copy).
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; KEY_LEN]>);

impl SealKey {
    /// Reads a key file, refusing one that others could read or of the
    /// wrong length.
    pub fn load(path: &Path) -> Result<SealKey, SealError> {
        let read_err = |source| SealError::KeyRead {
            path: path.to_owned(),
            source,
        };
        let (mut file, meta) = private::open(path).map_err(|e| match e {
            PrivateFileError::Open(source) => read_err(source),
            PrivateFileError::NotFile => SealError::KeyNotFile {
                path: path.to_owned(),
            },
            PrivateFileError::Mode(mode) => SealError::KeyMode {
                path: path.to_owned(),
                mode,
            },
        })?;
        if meta.size() != KEY_LEN as u64 {
            return Err(SealError::KeyLength {
                path: path.to_owned(),
                len: meta.size(),
            });
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(key.as_mut()).map_err(read_err)?;
        Ok(SealKey(key))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SealKey {
        SealKey(Zeroizing::new(bytes))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0).into())
    }
}

/// The padded plaintext size for a payload of `len` bytes (Padmé, with
/// the 8-byte length prefix counted and a floor of [`MIN_PADDED`]).
pub fn padded_len(len: u64) -> u64 {
    let l = (len + LEN_PREFIX as u64).max(MIN_PADDED);
    let e = 63 - u64::from(l.leading_zeros()); // floor(log2 l)
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let mask = (1u64 << (e - s)) - 1;
    (l + mask) & !mask
}

/// Seals `payload` under `key` with a fresh `nonce`.
pub fn seal(key: &SealKey, nonce: [u8; NONCE_LEN], payload: &[u8]) -> Result<Vec<u8>, SealError> {
    let padded = padded_len(payload.len() as u64) as usize;
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + padded + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(start + padded, 0);
    let tag = key
        .cipher()
        .encrypt_inout_detached(&nonce.into(), MAGIC, (&mut out[start..]).into())
        .map_err(|_| SealError::TooLarge)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens sealed data in place and returns the payload.
pub fn open(key: &SealKey, mut sealed: Vec<u8>) -> Result<Vec<u8>, SealError> {
    let header = MAGIC.len() + NONCE_LEN;
    if sealed.len() < MAGIC.len() || &sealed[..MAGIC.len()] != MAGIC {
        return Err(SealError::BadMagic);
    }
    if sealed.len() < header + LEN_PREFIX + TAG_LEN {
        return Err(SealError::TooShort);
    }
    let nonce: [u8; NONCE_LEN] = sealed[MAGIC.len()..header]
        .try_into()
        .map_err(|_| SealError::TooShort)?;
    let tag_at = sealed.len() - TAG_LEN;
    let tag: [u8; TAG_LEN] = sealed[tag_at..]
        .try_into()
        .map_err(|_| SealError::TooShort)?;
    key.cipher()
        .decrypt_inout_detached(
            &nonce.into(),
            MAGIC,
            (&mut sealed[header..tag_at]).into(),
            &tag.into(),
        )
        .map_err(|_| SealError::Authentication)?;
    let len_bytes: [u8; LEN_PREFIX] = sealed[header..header + LEN_PREFIX]
        .try_into()
        .map_err(|_| SealError::TooShort)?;
    let len = u64::from_be_bytes(len_bytes);
    let body = header + LEN_PREFIX;
    if len > (tag_at - body) as u64 {
        return Err(SealError::BadLength);
    }
    sealed.truncate(body + len as usize);
    sealed.drain(..body);
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn key() -> SealKey {
        SealKey::from_bytes([7; 32])
    }

    #[test]
    fn round_trip_and_padding() {
        for len in [0usize, 1, 100, 4088, 4089, 70_000, 1_000_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&key(), [1; 24], &payload).unwrap();
            assert_eq!(sealed.len() as u64, 5 + 24 + padded_len(len as u64) + 16);
            assert_eq!(open(&key(), sealed).unwrap(), payload);
        }
        // Small messages are indistinguishable by size.
        assert_eq!(padded_len(0), 4096);
        assert_eq!(padded_len(3000), 4096);
        // Padmé overhead stays within 12%.
        for len in [5000u64, 10_240, 1 << 20, 50 << 20, 123_456_789] {
            let p = padded_len(len);
            assert!(
                p >= len + 8 && (p as f64) <= (len + 8) as f64 * 1.12,
                "{len} -> {p}"
            );
        }
    }

    #[test]
    fn reveals_no_plaintext() {
        let payload = b"sender: <alice@example.org>\nSubject: secret plans\n";
        let sealed = seal(&key(), [2; 24], payload).unwrap();
        let hay = String::from_utf8_lossy(&sealed);
        assert!(!hay.contains("alice") && !hay.contains("secret"));
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let sealed = seal(&key(), [3; 24], b"hello").unwrap();
        for byte in [0, 5, 10, 29, 40, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[byte] ^= 0x10;
            assert!(open(&key(), bad).is_err(), "flip in byte {byte}");
        }
        assert!(matches!(
            open(&SealKey::from_bytes([8; 32]), sealed.clone()),
            Err(SealError::Authentication)
        ));
        assert!(matches!(
            open(&key(), sealed[..20].to_vec()),
            Err(SealError::TooShort)
        ));
        assert!(matches!(
            open(&key(), b"garbage".to_vec()),
            Err(SealError::BadMagic)
        ));
        assert!(matches!(open(&key(), Vec::new()), Err(SealError::BadMagic)));
    }

    #[test]
    fn key_file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.key");
        let write = |bytes: &[u8], mode: u32| {
            let mut f = fs::File::create(&path).unwrap();
            f.write_all(bytes).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        };
        write(&[9; 32], 0o600);
        assert!(SealKey::load(&path).is_ok());
        write(&[9; 32], 0o644);
        let err = SealKey::load(&path).err().unwrap();
        assert!(matches!(err, SealError::KeyMode { mode: 0o644, .. }));
        assert!(err.to_string().contains("0644") && err.to_string().contains("0600"));
        write(&[9; 31], 0o600);
        assert!(matches!(
            SealKey::load(&path),
            Err(SealError::KeyLength { len: 31, .. })
        ));
        write(&[9; 33], 0o400);
        assert!(matches!(
            SealKey::load(&path),
            Err(SealError::KeyLength { len: 33, .. })
        ));
        assert!(matches!(
            SealKey::load(&dir.path().join("missing")),
            Err(SealError::KeyRead { .. })
        ));
        assert!(matches!(
            SealKey::load(dir.path()),
            Err(SealError::KeyNotFile { .. } | SealError::KeyMode { .. })
        ));
    }
}

//! Delivery without the passphrase: the drop area of a mailbox.
//!
//! Each mailbox has an X25519 key pair. The private key lives only inside
//! the encrypted database; the public key is in `<mailbox>-pub`. `deliver`
//! seals each message to the public key with HPKE (RFC 9180, base mode,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) and writes it
//! into `<mailbox>-drop/new/` such that a name never shows a partial file
//! ([`durable::commit_new`]: an unnamed file linked once written, or the
//! Maildir way through `tmp/`) — the name is the commit point. File names
//! are the arrival time, random digits and the size; nothing in a name or
//! in a file tells who wrote to whom.
//!
//! The next time the owner opens the mailbox (any command with the
//! passphrase), the sealed messages are opened and stored in the database
//! in one transaction, which also records their names; then the files are
//! removed. A crash between the commit and the removal leaves files whose
//! names are recorded, and they are removed, not stored again, next time.
//! A file that cannot be opened (damaged, or sealed to another key) is
//! moved to `corrupt/` and reported, never lost silently.
//!
//! A sealed file is `PMDR` 0x01, the 32-byte HPKE encapsulated key, then
//! the ciphertext (with its 16-byte tag) of: payload length (8 bytes,
//! big-endian), payload, zero padding to the Padmé size of [`crate::store::seal`].
//! The payload is the internal date (8 bytes, big-endian Unix seconds), the
//! folder name's length (2 bytes) and name, and the message.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::SystemTime;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rusqlite::params;
use zeroize::Zeroizing;

use super::schema::unix_seconds;
use super::{Mailbox, MailboxError, Synchronous};
use crate::mail::message::mbox_from_line_len;
use crate::store::durable::{self, DirectoryFsync};
use crate::store::seal::padded_len;

const MAGIC: &[u8; 5] = b"PMDR\x01";
const KEY_MAGIC: &[u8; 5] = b"PMDK\x01";
const ENC_LEN: usize = 32;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// HPKE `info`: binds every sealed message to this use.
const INFO: &[u8] = b"postern-maildb drop v1";

type PublicKey = <X25519HkdfSha256 as Kem>::PublicKey;
type PrivateKey = <X25519HkdfSha256 as Kem>::PrivateKey;
type EncappedKey = <X25519HkdfSha256 as Kem>::EncappedKey;

/// The public key file of a mailbox: `<mailbox>-pub`.
pub fn public_key_path(mailbox: &Path) -> PathBuf {
    side_path(mailbox, "-pub")
}

/// The drop area of a mailbox: `<mailbox>-drop/`.
pub fn drop_dir(mailbox: &Path) -> PathBuf {
    side_path(mailbox, "-drop")
}

fn side_path(mailbox: &Path, suffix: &str) -> PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A fresh key pair: (private, public) as 32 bytes each.
pub fn new_key_pair() -> io::Result<(Zeroizing<[u8; KEY_LEN]>, [u8; KEY_LEN])> {
    let mut ikm = Zeroizing::new([0u8; 32]);
    getrandom::fill(ikm.as_mut()).map_err(|e| io::Error::other(e.to_string()))?;
    let (sk, pk) = X25519HkdfSha256::derive_keypair(ikm.as_ref());
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    sk.write_exact(secret.as_mut());
    let mut public = [0u8; KEY_LEN];
    pk.write_exact(&mut public);
    Ok((secret, public))
}

/// What a sealed file holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Dropped {
    pub internal_date: i64,
    pub folder: String,
    pub raw: Zeroizing<Vec<u8>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnsealError {
    #[error("not a sealed postern-maildb message")]
    BadMagic,
    #[error("sealed message failed authentication (damaged, or sealed to another key)")]
    Authentication,
    #[error("sealed message has inconsistent lengths")]
    BadLength,
    #[error("the public key is not an X25519 key")]
    BadKey,
}

/// Seals a message for the holder of `public` (32 bytes).
pub fn seal(
    public: &[u8; KEY_LEN],
    raw: &[u8],
    folder: &str,
    internal_date: SystemTime,
) -> Result<Vec<u8>, UnsealError> {
    let pk = PublicKey::from_bytes(public).map_err(|_| UnsealError::BadKey)?;
    let folder = folder.as_bytes();
    let folder = &folder[..folder.len().min(u16::MAX as usize)];
    let payload_len = 8 + 2 + folder.len() + raw.len();
    let padded = padded_len(payload_len as u64) as usize;
    let header = MAGIC.len() + ENC_LEN;
    // One buffer, encrypted in place: the plaintext is never copied, and
    // is overwritten by its ciphertext.
    let mut out = Vec::with_capacity(header + padded + TAG_LEN);
    out.resize(header, 0);
    out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    out.extend_from_slice(&unix_seconds(internal_date).to_be_bytes());
    out.extend_from_slice(&(folder.len() as u16).to_be_bytes());
    out.extend_from_slice(folder);
    out.extend_from_slice(raw);
    out.resize(header + padded, 0);
    let sealed =
        hpke::single_shot_seal_inout_detached::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeS::Base,
            &pk,
            INFO,
            (&mut out[header..]).into(),
            MAGIC,
        );
    let (enc, tag) = match sealed {
        Ok(sealed) => sealed,
        Err(_) => {
            drop(Zeroizing::new(out));
            return Err(UnsealError::BadKey);
        }
    };
    out[..MAGIC.len()].copy_from_slice(MAGIC);
    out[MAGIC.len()..header].copy_from_slice(&enc.to_bytes());
    out.extend_from_slice(&tag.to_bytes());
    Ok(out)
}

/// Opens a sealed message with the mailbox's private key (32 bytes).
pub fn unseal(secret: &[u8; KEY_LEN], sealed: &[u8]) -> Result<Dropped, UnsealError> {
    if sealed.len() < MAGIC.len() + ENC_LEN + TAG_LEN || &sealed[..MAGIC.len()] != MAGIC {
        return Err(UnsealError::BadMagic);
    }
    let sk = PrivateKey::from_bytes(secret).map_err(|_| UnsealError::Authentication)?;
    let enc = EncappedKey::from_bytes(&sealed[MAGIC.len()..MAGIC.len() + ENC_LEN])
        .map_err(|_| UnsealError::Authentication)?;
    let plain = Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk,
            &enc,
            INFO,
            &sealed[MAGIC.len() + ENC_LEN..],
            MAGIC,
        )
        .map_err(|_| UnsealError::Authentication)?,
    );
    let be64 = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        a
    };
    if plain.len() < 8 + 8 + 2 {
        return Err(UnsealError::BadLength);
    }
    let payload_len = u64::from_be_bytes(be64(&plain[..8]));
    let payload = usize::try_from(payload_len)
        .ok()
        .and_then(|n| plain.get(8..8usize.checked_add(n)?))
        .ok_or(UnsealError::BadLength)?;
    if payload.len() < 10 {
        return Err(UnsealError::BadLength);
    }
    let internal_date = i64::from_be_bytes(be64(&payload[..8]));
    let folder_len = usize::from(u16::from_be_bytes([payload[8], payload[9]]));
    let folder = payload
        .get(10..10 + folder_len)
        .ok_or(UnsealError::BadLength)?;
    let folder = String::from_utf8_lossy(folder).into_owned();
    let raw = Zeroizing::new(payload[10 + folder_len..].to_vec());
    Ok(Dropped {
        internal_date,
        folder,
        raw,
    })
}

/// Where `deliver` put a message.
#[derive(Debug, Clone)]
pub struct DropReceipt {
    pub name: String,
    /// Size of the sealed file.
    pub size: u64,
}

/// `deliver` without the passphrase: seals `raw` to the mailbox's public
/// key and commits it into the drop area (see [`durable::commit_new`]).
/// Returns once the file and its name are on disk. A leading mbox `From `
/// line (local(8) and procmail write one) is not part of the message and
/// is not stored, as the receiver skips it.
pub fn deliver_sealed(
    mailbox: &Path,
    raw: &[u8],
    folder: &str,
    now: SystemTime,
    dir_fsync: DirectoryFsync,
) -> Result<DropReceipt, MailboxError> {
    let raw = &raw[mbox_from_line_len(raw)..];
    if raw.is_empty() {
        return Err(MailboxError::EmptyMessage);
    }
    let io_err = |op, source| MailboxError::Io {
        path: mailbox.to_owned(),
        op,
        source,
    };
    let missing = || MailboxError::NotFound {
        path: mailbox.to_owned(),
    };
    if !mailbox.is_file() {
        return Err(missing());
    }
    let public = read_public_key(mailbox)?;
    let sealed = seal(&public, raw, folder, now).map_err(|e| MailboxError::DeliveryKey {
        path: mailbox.to_owned(),
        detail: e.to_string(),
    })?;
    let dir = drop_dir(mailbox);
    let mut created = false;
    for sub in ["", "tmp", "new"] {
        created |= make_dir(&dir.join(sub)).map_err(|e| io_err("create the drop area", e))?;
    }
    if created {
        // The first delivery: the directories' own names must last too.
        durable::sync_parent(&dir)
            .and_then(|()| durable::sync_dir(&dir))
            .map_err(|e| io_err("create the drop area", e))?;
    }
    // The name is the arrival time in nanoseconds and random digits (32
    // hex digits in all), then the size: the merge keeps arrival order even
    // where the file system's mtimes are too coarse to tell two files
    // apart, and a quota check adds up the drop area without a stat of
    // every file. Time and size are what the file system shows anyway.
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let random = durable::random_hex(8).map_err(|e| io_err("random file name", e))?;
    let name = format!("{nanos:016x}{random}.{}", sealed.len());
    let new = dir.join("new");
    durable::commit_new(&new, &dir.join("tmp"), &name, &sealed, dir_fsync).map_err(|e| match e
        .kind()
    {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => MailboxError::Full {
            path: mailbox.to_owned(),
        },
        _ => io_err("write a sealed message", e),
    })?;
    if !mailbox.is_file() {
        // `destroy` ran meanwhile (it removes the database first): take the
        // message back, and the directories if they are now empty, so that
        // nothing outlives the mailbox.
        let _ = fs::remove_file(new.join(&name));
        for sub in ["new", "tmp", ""] {
            let _ = fs::remove_dir(dir.join(sub));
        }
        return Err(missing());
    }
    super::quota::record_delivery(mailbox, sealed.len() as u64);
    Ok(DropReceipt {
        name,
        size: sealed.len() as u64,
    })
}

/// Reads `<mailbox>-pub`.
pub fn read_public_key(mailbox: &Path) -> Result<[u8; KEY_LEN], MailboxError> {
    let path = public_key_path(mailbox);
    let bytes = fs::read(&path).map_err(|e| MailboxError::DeliveryKey {
        path: mailbox.to_owned(),
        detail: format!(
            "{}: {e} (opening the mailbox with its passphrase writes it again)",
            path.display()
        ),
    })?;
    match bytes.strip_prefix(KEY_MAGIC) {
        Some(key) if key.len() == KEY_LEN => {
            let mut out = [0u8; KEY_LEN];
            out.copy_from_slice(key);
            Ok(out)
        }
        _ => Err(MailboxError::DeliveryKey {
            path: mailbox.to_owned(),
            detail: format!("{} is not a delivery key file", path.display()),
        }),
    }
}

/// Writes `<mailbox>-pub` if it is missing or differs from `public`.
pub fn write_public_key(mailbox: &Path, public: &[u8; KEY_LEN]) -> io::Result<()> {
    let path = public_key_path(mailbox);
    let mut want = KEY_MAGIC.to_vec();
    want.extend_from_slice(public);
    if fs::read(&path).ok().as_deref() == Some(&want[..]) {
        return Ok(());
    }
    let tmp = side_path(mailbox, &format!("-pub.{}", durable::random_hex(16)?));
    let result = durable::write_new(&tmp, &want, None).and_then(|()| fs::rename(&tmp, &path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    durable::sync_parent(&path)
}

/// What a merge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MergeReport {
    pub merged: usize,
    /// Files that could not be opened, now in `corrupt/`.
    pub corrupt: usize,
}

impl MergeReport {
    /// The warning for sealed files that could not be opened, if any. The
    /// drop area's path holds the mailbox's name, so the address: it is
    /// named only when `show_path`.
    pub fn corrupt_warning(&self, mailbox: &Path, show_path: bool) -> Option<String> {
        if self.corrupt == 0 {
            return None;
        }
        let place = if show_path {
            drop_dir(mailbox).join("corrupt").display().to_string()
        } else {
            "corrupt/ in the mailbox's drop area".to_owned()
        };
        Some(format!(
            "{} sealed messages could not be opened and were moved to {place}",
            self.corrupt
        ))
    }
}

/// Sealed messages waiting in the drop area.
pub fn waiting(mailbox: &Path) -> io::Result<usize> {
    match fs::read_dir(drop_dir(mailbox).join("new")) {
        Ok(rd) => Ok(rd.filter(|e| e.is_ok()).count()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// A `tmp/` file this old was left by a `deliver` killed before its
/// rename (qmail's rule for Maildir tmp/).
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(36 * 3600);

/// Stores every sealed message of the drop area in the mailbox (one
/// transaction), then removes the files, and what killed deliveries left
/// in `tmp/`.
pub fn merge(mb: &mut Mailbox) -> Result<MergeReport, MailboxError> {
    let tmp = drop_dir(mb.path()).join("tmp");
    durable::remove_stale(&tmp, SystemTime::now(), STALE_TMP)
        .map_err(|e| mb.io("clean up the drop area's tmp/", e))?;
    let new = drop_dir(mb.path()).join("new");
    let mut files: Vec<String> = match fs::read_dir(&new) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(MergeReport::default()),
        Err(e) => return Err(mb.io("read the drop area", e)),
    };
    // Names start with the arrival time: arrival order, so UIDs follow it.
    files.sort();
    let mut report = MergeReport::default();
    let mut done: Vec<String> = Vec::new();
    let mut corrupt: Vec<String> = Vec::new();
    if !files.is_empty() {
        let secret = secret_key(mb)?;
        let path = mb.path().to_owned();
        // The files go once this commit returns. Under WAL with
        // synchronous = NORMAL a commit is not yet on disk then, and a
        // power loss could undo it after the files are gone: this one
        // waits for the WAL's fsync.
        mb.set_synchronous(Synchronous::Full)?;
        let result = mb.write(|tx| {
            super::schema::tune_fts(tx)?;
            // Names recorded by a merge that committed but was stopped
            // before it removed its files.
            let recorded: HashSet<String> = tx
                .prepare("SELECT name FROM drop_merged")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let (old, todo): (Vec<&String>, Vec<&String>) =
                files.iter().partition(|n| recorded.contains(*n));
            done.extend(old.into_iter().cloned());
            // Reading, unsealing and parsing (a third of the work) on a
            // second thread while this one stores; a few messages ahead,
            // in order. The files are read under the write lock: another
            // process may have merged and removed one meanwhile.
            std::thread::scope(|scope| {
                let (send, receive) = mpsc::sync_channel(16);
                let secret = &secret;
                let new = &new;
                scope.spawn(move || {
                    for name in todo {
                        let opened = match fs::read(new.join(name)) {
                            Ok(sealed) => Ok(Some(unseal(secret, &sealed).map(|d| {
                                let env = super::envelope::parse(&d.raw);
                                (d, env)
                            }))),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                            Err(e) => Err(e),
                        };
                        let stop = opened.is_err();
                        if send.send((name, opened)).is_err() || stop {
                            break;
                        }
                    }
                });
                for (name, opened) in receive {
                    match opened {
                        // Rolls back: the files stay for the next merge.
                        Err(e) => return Err(MergeError::Read(e)),
                        Ok(None) => {}
                        Ok(Some(Ok((d, env)))) => {
                            // Only a folder out of UIDs refuses; the file
                            // then stays for a later merge.
                            if super::ops::insert_parsed(
                                tx,
                                &d.raw,
                                &env,
                                &d.folder,
                                d.internal_date,
                            )?
                            .is_some()
                            {
                                tx.prepare_cached("INSERT INTO drop_merged (name) VALUES (?1)")?
                                    .execute([name])?;
                                done.push(name.clone());
                                report.merged += 1;
                            }
                        }
                        Ok(Some(Err(_))) => corrupt.push(name.clone()),
                    }
                }
                Ok(())
            })
        });
        mb.set_synchronous(Synchronous::Normal)?;
        match result {
            Ok(()) => {}
            Err(MergeError::Read(e)) => {
                return Err(MailboxError::Io {
                    path,
                    op: "read a sealed message",
                    source: e,
                });
            }
            Err(MergeError::Sql(e)) => return Err(mb.sql(e)),
        }
    }
    // Committed: now the files can go, then their names.
    let dir = drop_dir(mb.path());
    for name in &done {
        match fs::remove_file(new.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(mb.io("remove a merged sealed message", e)),
        }
    }
    if !corrupt.is_empty() {
        if make_dir(&dir.join("corrupt")).map_err(|e| mb.io("create corrupt/", e))? {
            durable::sync_dir(&dir).map_err(|e| mb.io("create corrupt/", e))?;
        }
        for name in &corrupt {
            fs::rename(new.join(name), dir.join("corrupt").join(name))
                .map_err(|e| mb.io("move a damaged sealed message to corrupt/", e))?;
        }
        report.corrupt = corrupt.len();
    }
    if !done.is_empty() {
        // The running total counted these files; the next check recounts.
        match fs::remove_file(super::quota::size_file(mb.path())) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(mb.io("remove the drop area's size file", e)),
        }
    }
    if !done.is_empty() || !corrupt.is_empty() {
        File::open(&new)
            .and_then(|d| d.sync_all())
            .map_err(|e| mb.io("fsync the drop area", e))?;
    }
    if !done.is_empty() {
        // One transaction, not one per name.
        let result = mb.write(|tx| {
            let mut stmt = tx.prepare("DELETE FROM drop_merged WHERE name = ?1")?;
            done.iter()
                .try_for_each(|name| stmt.execute([name]).map(drop))
        });
        result.map_err(|e| mb.sql(e))?;
    }
    Ok(report)
}

/// What stops a merge's transaction: SQLite, or a sealed file that cannot
/// be read (not one that cannot be opened: that one goes to `corrupt/`).
enum MergeError {
    Sql(rusqlite::Error),
    Read(io::Error),
}

impl From<rusqlite::Error> for MergeError {
    fn from(e: rusqlite::Error) -> Self {
        MergeError::Sql(e)
    }
}

/// The mailbox's private key, from inside the encrypted database.
fn secret_key(mb: &Mailbox) -> Result<Zeroizing<[u8; KEY_LEN]>, MailboxError> {
    let blob: Zeroizing<Vec<u8>> = Zeroizing::new(
        mb.conn()
            .query_row("SELECT secret FROM delivery_key WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(|e| mb.sql(e))?,
    );
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if blob.len() != KEY_LEN {
        return Err(MailboxError::Damaged {
            path: mb.path().to_owned(),
            detail: "the delivery key has the wrong length".into(),
        });
    }
    out.copy_from_slice(&blob);
    Ok(out)
}

/// The mailbox's public key, from the database.
pub fn stored_public_key(mb: &Mailbox) -> Result<[u8; KEY_LEN], MailboxError> {
    let blob: Vec<u8> = mb
        .conn()
        .query_row("SELECT public FROM delivery_key WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(|e| mb.sql(e))?;
    <[u8; KEY_LEN]>::try_from(blob.as_slice()).map_err(|_| MailboxError::Damaged {
        path: mb.path().to_owned(),
        detail: "the delivery key has the wrong length".into(),
    })
}

/// Stores a new key pair in the database (inside the caller's transaction).
pub(crate) fn store_new_key_pair(
    tx: &rusqlite::Transaction<'_>,
    created: i64,
) -> rusqlite::Result<()> {
    let (secret, public) =
        new_key_pair().map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.execute(
        "INSERT INTO delivery_key (id, secret, public, created) VALUES (1, ?1, ?2, ?3)",
        params![&secret[..], &public[..], created],
    )?;
    Ok(())
}

/// Creates `dir` (mode 0700) unless it exists; whether it did.
fn make_dir(dir: &Path) -> io::Result<bool> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// One key pair for every case: deriving one is the slow part.
    fn keys() -> &'static (Zeroizing<[u8; KEY_LEN]>, [u8; KEY_LEN]) {
        static KEYS: std::sync::OnceLock<(Zeroizing<[u8; KEY_LEN]>, [u8; KEY_LEN])> =
            std::sync::OnceLock::new();
        KEYS.get_or_init(|| new_key_pair().unwrap())
    }

    proptest! {
        /// A file in the drop area can hold anything (a damaged disk,
        /// another program): opening it fails cleanly, never panics.
        #[test]
        fn any_bytes_unseal_without_panic(
            data in proptest::collection::vec(any::<u8>(), 0..512),
            with_magic in any::<bool>(),
        ) {
            let (secret, _) = keys();
            let mut sealed = if with_magic { MAGIC.to_vec() } else { Vec::new() };
            sealed.extend_from_slice(&data);
            prop_assert!(unseal(secret, &sealed).is_err());
        }

        /// Every message, folder name and date comes back as it was
        /// sealed; one changed byte anywhere is refused.
        #[test]
        fn a_sealed_message_round_trips(
            raw in proptest::collection::vec(any::<u8>(), 1..2048),
            folder in "\\PC{0,40}",
            seconds in 0u64..8_000_000_000,
            flip in any::<prop::sample::Index>(),
        ) {
            let (secret, public) = keys();
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
            let sealed = seal(public, &raw, &folder, when).unwrap();
            let d = unseal(secret, &sealed).unwrap();
            prop_assert_eq!(&d.raw[..], &raw[..]);
            prop_assert_eq!(d.folder, folder);
            prop_assert_eq!(d.internal_date, seconds as i64);
            let mut damaged = sealed.clone();
            damaged[flip.index(sealed.len())] ^= 0x40;
            prop_assert!(unseal(secret, &damaged).is_err());
        }
    }

    #[test]
    fn corrupt_files_are_warned_of_without_the_address_unless_asked() {
        let mb = Path::new("/m/bob@example.org.sqlite");
        let none = MergeReport {
            merged: 3,
            corrupt: 0,
        };
        assert_eq!(none.corrupt_warning(mb, true), None);
        let two = MergeReport {
            merged: 0,
            corrupt: 2,
        };
        assert_eq!(
            two.corrupt_warning(mb, false).unwrap(),
            "2 sealed messages could not be opened and were moved to corrupt/ in the \
             mailbox's drop area"
        );
        assert!(
            two.corrupt_warning(mb, true)
                .unwrap()
                .ends_with("moved to /m/bob@example.org.sqlite-drop/corrupt")
        );
    }
}

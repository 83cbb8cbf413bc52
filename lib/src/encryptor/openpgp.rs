//! OpenPGP keys and encryption in process (rPGP).
//!
//! Keys are transferable public keys (RFC 4880 section 11.1, RFC 9580
//! section 10.1), binary or ASCII-armored (RFC 4880 section 6), one or
//! several in a row, as an alias store, `gpg --export` and a Web Key
//! Directory give them. Their self-signatures are verified once, when the
//! key is parsed; what is left to decide at a given time (revoked, expired,
//! which key to encrypt to) is [`Cert::check`], which costs no signature
//! verification, so a stage can check every recipient of every message.
//!
//! Messages are what gpg 2.2 reads: one PKESK v3 per recipient key, then a
//! SEIPD v1 packet with its MDC (RFC 4880 sections 5.1 and 5.13; not the
//! AEAD SEIPD v2 of RFC 9580, which gpg 2.2 cannot read), AES-256, no
//! compression, a binary literal data packet, ASCII-armored with LF line
//! ends: the second body part of PGP/MIME (RFC 3156 section 4).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgp::composed::{ArmorOptions, MessageBuilder, PublicOrSecret, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{PublicKey, PublicSubkey, Signature, SignatureType, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{EcdhKdfType, EcdhPublicParams, KeyDetails, KeyVersion, PublicParams, Tag};

use crate::mail::text::hex_upper;

/// The size of the partial body chunks of a message (RFC 4880 section
/// 4.2.2.4): what rPGP buffers at each packet level while it streams.
const CHUNK_SIZE: u32 = 64 * 1024;

/// An rPGP error message is cut to this many characters in ours.
const DETAIL_MAX: usize = 160;

/// One transferable public key (primary + subkeys + user IDs), checked by
/// rPGP's parser, with its self-signatures verified. Its `Debug` shows the
/// fingerprint only: user IDs stay out of logs.
#[derive(Clone)]
pub struct Cert {
    key: SignedPublicKey,
    /// The key as parsed, serialized once (so storing it cannot fail).
    bytes: Vec<u8>,
    fingerprint: String,
    primary: Component,
    /// One per `key.public_subkeys`, in the same order.
    subkeys: Vec<Component>,
    emails: Vec<String>,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cert")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// What a key's verified self-signatures say about one of its keys,
/// primary or subkey: decided once, read at any time.
#[derive(Debug, Clone)]
struct Component {
    /// Key creation time, Unix seconds.
    created: u64,
    version: KeyVersion,
    /// The algorithm rPGP can encrypt to, or its name for a message.
    algorithm: Result<(), String>,
    /// Whether the algorithm can encrypt at all (for keys without flags).
    algorithm_encrypts: bool,
    /// Valid self-signatures (primary) or binding signatures (subkey).
    bindings: Vec<Binding>,
    /// Creation times of the valid revocation signatures.
    revocations: Vec<u64>,
}

/// One verified self-signature or subkey binding signature.
#[derive(Debug, Clone, Copy)]
struct Binding {
    created: u64,
    /// The signature's own end of validity.
    expires: Option<u64>,
    /// The key's end of validity this signature sets.
    key_expires: Option<u64>,
    /// The key flags "encrypt communications" or "encrypt storage"; `None`
    /// when the signature has no key flags subpacket.
    encrypt: Option<bool>,
}

/// Why a key cannot be used at a given time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("the key {fingerprint} is revoked")]
    Revoked { fingerprint: String },
    #[error("the key {fingerprint} expired on {}", day(.on))]
    Expired { fingerprint: String, on: SystemTime },
    #[error("the key {fingerprint} has no subkey usable for encryption: {why}")]
    NoEncryptionKey {
        fingerprint: String,
        why: NoEncryptionKey,
    },
    #[error("the key {fingerprint} has no valid self-signature; ask its owner for a complete copy")]
    NoSelfSignature { fingerprint: String },
    #[error("the key {fingerprint} was created on {}, after the current time; check the clock", day(.created))]
    CreatedLater {
        fingerprint: String,
        created: SystemTime,
    },
    #[error("the key {fingerprint} is an OpenPGP v{version} key; postern encrypts to v4 keys only")]
    UnsupportedVersion { fingerprint: String, version: u8 },
}

/// Why none of a key's keys can encrypt, told by the most recently
/// created key flagged for encryption (or that none is flagged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoEncryptionKey {
    #[error("none is flagged for encryption with a valid binding signature")]
    NoneFlagged,
    #[error("its encryption subkey is revoked")]
    Revoked,
    #[error("its encryption subkey expired on {}", day(.on))]
    Expired { on: SystemTime },
    #[error("its encryption subkey was created after the current time; check the clock")]
    CreatedLater,
    #[error("its encryption subkey uses {algorithm}, which postern cannot encrypt to")]
    Unsupported { algorithm: String },
}

/// Why bytes gave no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an OpenPGP public key: the data is empty")]
    Empty,
    #[error("not an OpenPGP public key: {0}")]
    Malformed(String),
    #[error("not an OpenPGP public key: the data holds no key")]
    NoKey,
    #[error(
        "the data holds the secret key {fingerprint}; give its public key instead (gpg --export)"
    )]
    SecretKey { fingerprint: String },
}

/// Why a message could not be encrypted.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error("no recipient key to encrypt to")]
    NoRecipients,
    #[error(transparent)]
    Key(#[from] KeyProblem),
    #[error("cannot write the encrypted message: {0}")]
    Write(std::io::Error),
    #[error("OpenPGP encryption failed: {0}")]
    Pgp(String),
}

/// The key a message is encrypted to: the primary key or a subkey.
#[derive(Debug, Clone, Copy)]
enum EncryptionKey<'a> {
    Primary(&'a PublicKey),
    Subkey(&'a PublicSubkey),
}

impl Cert {
    fn new(key: SignedPublicKey) -> Result<Cert, KeyError> {
        let bytes = key.to_bytes().map_err(|e| malformed(&e))?;
        let fingerprint = hex_upper(key.fingerprint().as_bytes());
        let (primary, emails) = verify_primary(&key);
        let subkeys = key
            .public_subkeys
            .iter()
            .map(|sub| verify_subkey(&key.primary_key, &sub.key, &sub.signatures))
            .collect();
        Ok(Cert {
            key,
            bytes,
            fingerprint,
            primary,
            subkeys,
            emails,
        })
    }

    /// The primary key's fingerprint, upper-case hex (40 characters for v4).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The addr-specs of the user IDs whose newest self-signature verifies
    /// and is not a revocation, lower-cased, each once, in key order.
    pub fn emails(&self) -> Vec<String> {
        self.emails.clone()
    }

    /// Whether the key can be encrypted to at `now`.
    pub fn check(&self, now: SystemTime) -> Result<(), KeyProblem> {
        self.encryption_key(now).map(|_| ())
    }

    /// The fingerprint of the key (primary or subkey) a message at `now`
    /// is encrypted to, upper-case hex.
    pub fn encryption_key_fingerprint(&self, now: SystemTime) -> Result<String, KeyProblem> {
        let fingerprint = match self.encryption_key(now)? {
            EncryptionKey::Primary(key) => key.fingerprint(),
            EncryptionKey::Subkey(key) => key.fingerprint(),
        };
        Ok(hex_upper(fingerprint.as_bytes()))
    }

    /// The binary transferable key, for storing.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The ASCII-armored transferable key (RFC 4880 section 6.2), LF line
    /// ends, with its CRC-24 as gpg writes it.
    pub fn to_armored(&self) -> String {
        armor("PGP PUBLIC KEY BLOCK", &self.bytes)
    }

    /// The primary key's state at `now`, then the newest usable key flagged
    /// for encryption (the primary key too, as old RSA keys have it).
    fn encryption_key(&self, now: SystemTime) -> Result<EncryptionKey<'_>, KeyProblem> {
        let now = unix(now);
        let fingerprint = || self.fingerprint.clone();
        let primary = &self.primary;
        if primary.version != KeyVersion::V4 {
            return Err(KeyProblem::UnsupportedVersion {
                fingerprint: fingerprint(),
                version: u8::from(primary.version),
            });
        }
        if primary.revoked(now) {
            return Err(KeyProblem::Revoked {
                fingerprint: fingerprint(),
            });
        }
        if primary.created > now {
            return Err(KeyProblem::CreatedLater {
                fingerprint: fingerprint(),
                created: time(primary.created),
            });
        }
        let Some(binding) = primary.binding(now) else {
            return Err(KeyProblem::NoSelfSignature {
                fingerprint: fingerprint(),
            });
        };
        if let Some(end) = binding.key_expires.filter(|&end| end <= now) {
            return Err(KeyProblem::Expired {
                fingerprint: fingerprint(),
                on: time(end),
            });
        }

        let candidates = std::iter::once((EncryptionKey::Primary(&self.key.primary_key), primary))
            .chain(
                self.key
                    .public_subkeys
                    .iter()
                    .zip(&self.subkeys)
                    .map(|(sub, c)| (EncryptionKey::Subkey(&sub.key), c)),
            );
        // The newest usable key wins, as in gpg; if there is none, the
        // newest key flagged for encryption says why.
        let mut usable: Option<(u64, EncryptionKey<'_>)> = None;
        let mut newest_refusal: Option<(u64, NoEncryptionKey)> = None;
        for (key, component) in candidates {
            let Some(flagged) = component.flagged_for_encryption(now) else {
                continue;
            };
            if !flagged {
                continue;
            }
            match component.unusable(now) {
                None => {
                    if usable.is_none_or(|(created, _)| component.created >= created) {
                        usable = Some((component.created, key));
                    }
                }
                Some(why) => {
                    if newest_refusal
                        .as_ref()
                        .is_none_or(|(created, _)| component.created >= *created)
                    {
                        newest_refusal = Some((component.created, why));
                    }
                }
            }
        }
        match (usable, newest_refusal) {
            (Some((_, key)), _) => Ok(key),
            (None, refusal) => Err(KeyProblem::NoEncryptionKey {
                fingerprint: fingerprint(),
                why: refusal.map_or(NoEncryptionKey::NoneFlagged, |(_, why)| why),
            }),
        }
    }
}

impl Component {
    fn revoked(&self, now: u64) -> bool {
        self.revocations.iter().any(|&t| t <= now)
    }

    /// The newest binding signature in force at `now`.
    fn binding(&self, now: u64) -> Option<&Binding> {
        self.bindings
            .iter()
            .filter(|b| b.created <= now && b.expires.is_none_or(|end| now < end))
            .max_by_key(|b| b.created)
    }

    /// Whether the newest binding flags the key for encryption (by its
    /// algorithm when it has no key flags, RFC 4880 section 5.2.3.21);
    /// `None` when no binding is in force.
    fn flagged_for_encryption(&self, now: u64) -> Option<bool> {
        let binding = self.binding(now)?;
        Some(binding.encrypt.unwrap_or(self.algorithm_encrypts))
    }

    /// Why this key, flagged for encryption, cannot be used at `now`.
    fn unusable(&self, now: u64) -> Option<NoEncryptionKey> {
        if self.revoked(now) {
            return Some(NoEncryptionKey::Revoked);
        }
        if self.created > now {
            return Some(NoEncryptionKey::CreatedLater);
        }
        let end = self.binding(now).and_then(|b| b.key_expires);
        if let Some(end) = end.filter(|&end| end <= now) {
            return Some(NoEncryptionKey::Expired { on: time(end) });
        }
        if self.version != KeyVersion::V4 {
            return Some(NoEncryptionKey::Unsupported {
                algorithm: format!("a v{} key", u8::from(self.version)),
            });
        }
        match &self.algorithm {
            Ok(()) => None,
            Err(algorithm) => Some(NoEncryptionKey::Unsupported {
                algorithm: algorithm.clone(),
            }),
        }
    }
}

/// The primary key's verified self-signatures (direct key signatures and
/// the certifications of user IDs that are not revoked) and revocations,
/// and the addresses of those user IDs. Third-party signatures are
/// skipped before any cryptography, by their issuer.
fn verify_primary(key: &SignedPublicKey) -> (Component, Vec<String>) {
    let primary = &key.primary_key;
    let mut component = component(primary);
    let details = &key.details;
    for sig in details
        .revocation_signatures
        .iter()
        .chain(&details.direct_signatures)
    {
        if sig.verify_key(primary).is_err() {
            continue;
        }
        match sig.typ() {
            Some(SignatureType::KeyRevocation) => component.revocations.extend(created(sig)),
            Some(SignatureType::Key) => component.bindings.extend(binding(sig, component.created)),
            _ => {}
        }
    }

    let mut emails: Vec<String> = Vec::new();
    for user in &details.users {
        let valid: Vec<&Signature> = user
            .signatures
            .iter()
            .filter(|sig| created(sig).is_some())
            .filter(|sig| {
                sig.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            })
            .collect();
        // The newest self-signature decides (a revocation wins a tie).
        let newest = valid.iter().max_by_key(|sig| {
            let revocation = sig.typ() == Some(SignatureType::CertRevocation);
            (created(sig), revocation)
        });
        match newest {
            Some(sig) if sig.typ() != Some(SignatureType::CertRevocation) => {}
            _ => continue,
        }
        for sig in &valid {
            if sig.typ() != Some(SignatureType::CertRevocation) {
                component.bindings.extend(binding(sig, component.created));
            }
        }
        if let Some(email) = addr_spec(&String::from_utf8_lossy(user.id.id()))
            && !emails.contains(&email)
        {
            emails.push(email);
        }
    }
    (component, emails)
}

/// A subkey's verified binding signatures and revocations.
fn verify_subkey(primary: &PublicKey, subkey: &PublicSubkey, sigs: &[Signature]) -> Component {
    let mut component = component(subkey);
    for sig in sigs {
        if sig.verify_subkey_binding(primary, subkey).is_err() {
            continue;
        }
        match sig.typ() {
            Some(SignatureType::SubkeyRevocation) => component.revocations.extend(created(sig)),
            Some(SignatureType::SubkeyBinding) => {
                component.bindings.extend(binding(sig, component.created));
            }
            _ => {}
        }
    }
    component
}

fn component(key: &impl KeyDetails) -> Component {
    Component {
        created: u64::from(key.created_at().as_secs()),
        version: key.version(),
        algorithm: if encryptable(key.public_params()) {
            Ok(())
        } else {
            Err(format!("{:?}", key.algorithm()))
        },
        algorithm_encrypts: key.algorithm().can_encrypt(),
        bindings: Vec::new(),
        revocations: Vec::new(),
    }
}

fn binding(sig: &Signature, key_created: u64) -> Option<Binding> {
    let created = created(sig)?;
    let seconds = |d: pgp::types::Duration| Duration::from(d).as_secs();
    let key_expires = sig
        .key_expiration_time()
        .map(seconds)
        .filter(|&d| d != 0)
        .map(|d| key_created.saturating_add(d));
    let expires = sig
        .signature_expiration_time()
        .map(seconds)
        .filter(|&d| d != 0)
        .map(|d| created.saturating_add(d));
    let has_flags = sig.config().is_some_and(|config| {
        config
            .hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    });
    let flags = sig.key_flags();
    Some(Binding {
        created,
        expires,
        key_expires,
        encrypt: has_flags.then(|| flags.encrypt_comms() || flags.encrypt_storage()),
    })
}

fn created(sig: &Signature) -> Option<u64> {
    sig.created().map(|t| u64::from(t.as_secs()))
}

/// Whether rPGP can encrypt a session key to these public parameters:
/// RSA, ECDH over Curve25519 (gpg's cv25519) or a NIST curve with a KDF it
/// allows, X25519, X448.
fn encryptable(params: &PublicParams) -> bool {
    let kdf = |hash: &HashAlgorithm, sym: &SymmetricKeyAlgorithm| {
        !matches!(
            hash,
            HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160
        ) && matches!(
            sym,
            SymmetricKeyAlgorithm::AES128
                | SymmetricKeyAlgorithm::AES192
                | SymmetricKeyAlgorithm::AES256
        )
    };
    match params {
        PublicParams::RSA(_) | PublicParams::X25519(_) | PublicParams::X448(_) => true,
        PublicParams::ECDH(EcdhPublicParams::Curve25519Legacy {
            hash,
            alg_sym,
            ecdh_kdf_type,
            ..
        }) => matches!(ecdh_kdf_type, EcdhKdfType::Native) && kdf(hash, alg_sym),
        PublicParams::ECDH(
            EcdhPublicParams::P256 { hash, alg_sym, .. }
            | EcdhPublicParams::P384 { hash, alg_sym, .. }
            | EcdhPublicParams::P521 { hash, alg_sym, .. },
        ) => kdf(hash, alg_sym),
        _ => false,
    }
}

/// The addr-spec of a user ID: the part in `<...>`, or the whole user ID
/// if it is a bare address; lower-cased.
fn addr_spec(uid: &str) -> Option<String> {
    let candidate = match uid.rfind('<') {
        Some(open) => {
            let rest = &uid[open + 1..];
            &rest[..rest.find('>')?]
        }
        None => uid.trim(),
    };
    let plausible = candidate.contains('@')
        && !candidate.starts_with('@')
        && !candidate.ends_with('@')
        && !candidate
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    plausible.then(|| candidate.to_lowercase())
}

/// Every key found in `bytes` (ASCII-armored or binary; one or several
/// keys concatenated, as WKD and `gpg --export` give). Any malformed key
/// or a secret key refuses the whole input.
pub fn parse_keys(bytes: &[u8]) -> Result<Vec<Cert>, KeyError> {
    let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(KeyError::Empty);
    };
    let mut certs = Vec::new();
    // A packet's first octet has its high bit set (RFC 4880 section 4.2);
    // armor is text.
    if first & 0x80 != 0 {
        let packets = PublicOrSecret::from_bytes_many(bytes).map_err(|e| malformed(&e))?;
        collect(packets, &mut certs)?;
    } else {
        let blocks = armor_blocks(bytes);
        if blocks.is_empty() {
            return Err(KeyError::Malformed(
                "neither binary OpenPGP data nor an ASCII-armored block".into(),
            ));
        }
        for block in blocks {
            let (keys, _headers) =
                PublicOrSecret::from_armor_many(block).map_err(|e| malformed(&e))?;
            collect(keys, &mut certs)?;
        }
    }
    if certs.is_empty() {
        return Err(KeyError::NoKey);
    }
    Ok(certs)
}

fn collect(
    keys: impl Iterator<Item = pgp::errors::Result<PublicOrSecret>>,
    certs: &mut Vec<Cert>,
) -> Result<(), KeyError> {
    for key in keys {
        match key.map_err(|e| malformed(&e))? {
            PublicOrSecret::Public(key) => certs.push(Cert::new(key)?),
            PublicOrSecret::Secret(key) => {
                return Err(KeyError::SecretKey {
                    fingerprint: hex_upper(key.fingerprint().as_bytes()),
                });
            }
        }
    }
    Ok(())
}

/// Each armored block of `text`, from its `-----BEGIN PGP` line on (the
/// dearmorer stops at the block's end line).
fn armor_blocks(text: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    memchr::memmem::find_iter(text, BEGIN)
        .filter(|&at| at == 0 || text[at - 1] == b'\n')
        .map(|at| &text[at..])
        .collect()
}

/// An rPGP error as one line of bounded length.
fn malformed(e: &pgp::errors::Error) -> KeyError {
    KeyError::Malformed(one_line(&e.to_string()))
}

fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(DETAIL_MAX)
        .collect();
    if text.chars().count() > DETAIL_MAX {
        line.push_str("...");
    }
    line
}

/// Encrypts `plaintext` to every cert in `to` (each one's chosen encryption
/// key), writing an ASCII-armored OpenPGP message (`-----BEGIN PGP
/// MESSAGE-----` ... END, LF line endings) to `out`. The plaintext is
/// streamed: rPGP holds one chunk of it at a time, not a copy.
pub fn encrypt(
    plaintext: &[u8],
    to: &[&Cert],
    now: SystemTime,
    out: &mut impl Write,
) -> Result<(), EncryptError> {
    encrypt_from(plaintext, to, now, out)
}

/// [`encrypt`] with the plaintext read from `plaintext` as it is
/// encrypted (pieces of a message chained, say: no copy of them whole).
pub fn encrypt_from(
    plaintext: impl std::io::Read,
    to: &[&Cert],
    now: SystemTime,
    out: &mut impl Write,
) -> Result<(), EncryptError> {
    if to.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    let mut keys: Vec<EncryptionKey<'_>> = Vec::with_capacity(to.len());
    for cert in to {
        let key = cert.encryption_key(now)?;
        // The same key twice (one person under two addresses) gets one PKESK.
        if !keys.iter().any(|k| same_key(k, &key)) {
            keys.push(key);
        }
    }

    let mut rng = rand::thread_rng();
    let mut builder = MessageBuilder::from_reader("", plaintext)
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    builder.partial_chunk_size(CHUNK_SIZE).map_err(pgp_error)?;
    for key in &keys {
        match key {
            EncryptionKey::Primary(key) => builder.encrypt_to_key(&mut rng, *key),
            EncryptionKey::Subkey(key) => builder.encrypt_to_key(&mut rng, *key),
        }
        .map_err(pgp_error)?;
    }
    builder
        .to_armored_writer(&mut rng, ArmorOptions::default(), out)
        .map_err(pgp_error)
}

fn same_key(a: &EncryptionKey<'_>, b: &EncryptionKey<'_>) -> bool {
    let fingerprint = |k: &EncryptionKey<'_>| match k {
        EncryptionKey::Primary(key) => key.fingerprint(),
        EncryptionKey::Subkey(key) => key.fingerprint(),
    };
    fingerprint(a) == fingerprint(b)
}

fn pgp_error(e: pgp::errors::Error) -> EncryptError {
    match e {
        pgp::errors::Error::IO { source, .. } => EncryptError::Write(source),
        other => EncryptError::Pgp(one_line(&other.to_string())),
    }
}

/// RFC 4880 section 6.2: header line, blank line, base64 in lines of 64,
/// `=` and the CRC-24 (section 6.1), footer line.
fn armor(label: &str, data: &[u8]) -> String {
    let body = data_encoding::BASE64.encode(data);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 100);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n\n");
    for line in body.as_bytes().chunks(64) {
        // base64 is ASCII, so every chunk is a str.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    let crc = crc24(data).to_be_bytes();
    out.push('=');
    out.push_str(&data_encoding::BASE64.encode(&crc[1..]));
    out.push_str("\n-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn crc24(data: &[u8]) -> u32 {
    const INIT: u32 = 0x00B7_04CE;
    const POLY: u32 = 0x0186_4CFB;
    let mut crc = INIT;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= POLY;
            }
        }
    }
    crc & 0x00FF_FFFF
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn time(unix_seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds)
}

/// `2026-01-02`: the day of `t`, UTC.
fn day(t: &SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(*t).to_string();
    stamp.get(..10).unwrap_or(&stamp).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;
    use pgp::composed::{
        EncryptionCaps, KeyType, Message, SecretKeyParamsBuilder, SignedSecretKey,
        SubkeyParamsBuilder,
    };
    use pgp::crypto::ecc_curve::ECCCurve;
    use pgp::types::Timestamp;
    use proptest::prelude::*;

    /// A day before now: keys are made then, but rPGP dates their
    /// self-signatures at the real time of generation, so checks are made
    /// at `later()`.
    fn t0() -> u32 {
        u32::try_from(unix(SystemTime::now())).unwrap() - 86_400
    }

    /// A minute after now.
    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    fn at(unix_seconds: u32) -> SystemTime {
        time(u64::from(unix_seconds))
    }

    fn encryption_subkey(created: u32) -> pgp::composed::SubkeyParams {
        SubkeyParamsBuilder::default()
            .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
            .can_encrypt(EncryptionCaps::All)
            .created_at(Timestamp::from_secs(created))
            .build()
            .unwrap()
    }

    fn signing_subkey(created: u32) -> pgp::composed::SubkeyParams {
        SubkeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .created_at(Timestamp::from_secs(created))
            .build()
            .unwrap()
    }

    /// An ed25519 key made at t0() with `subkeys`, as gpg 2.2 makes them.
    fn secret_key(uid: &str, subkeys: Vec<pgp::composed::SubkeyParams>) -> SignedSecretKey {
        SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .created_at(Timestamp::from_secs(t0()))
            .primary_user_id(uid.into())
            .subkeys(subkeys)
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap()
    }

    fn public_bytes(secret: &SignedSecretKey) -> Vec<u8> {
        SignedPublicKey::from(secret.clone()).to_bytes().unwrap()
    }

    fn one(bytes: &[u8]) -> Cert {
        let mut certs = parse_keys(bytes).unwrap();
        assert_eq!(certs.len(), 1);
        certs.remove(0)
    }

    #[test]
    fn binary_and_armored_give_the_same_key() {
        let secret = secret_key("Alice <alice@example.org>", vec![encryption_subkey(t0())]);
        let binary = one(&public_bytes(&secret));
        let armored_text = SignedPublicKey::from(secret.clone())
            .to_armored_string(ArmorOptions::default())
            .unwrap();
        let armored = one(armored_text.as_bytes());
        assert_eq!(binary.fingerprint(), armored.fingerprint());
        assert_eq!(binary.fingerprint().len(), 40);
        assert_eq!(
            binary.fingerprint(),
            binary.fingerprint().to_ascii_uppercase()
        );
        assert_eq!(binary.to_bytes(), armored.to_bytes());
        // Our own armor reads back, and is what rPGP writes.
        assert_eq!(binary.to_armored(), armored_text);
        assert_eq!(
            one(binary.to_armored().as_bytes()).to_bytes(),
            binary.to_bytes()
        );
        // Text around the block, as in a mail or a web page, is skipped.
        let wrapped = format!("Here is my key:\r\n\r\n{armored_text}\r\nBye\r\n");
        assert_eq!(one(wrapped.as_bytes()).fingerprint(), binary.fingerprint());
    }

    #[test]
    fn several_keys_concatenated() {
        let a = secret_key("A <a@example.org>", vec![encryption_subkey(t0())]);
        let b = secret_key("B <b@example.org>", vec![encryption_subkey(t0())]);
        let mut binary = public_bytes(&a);
        binary.extend(public_bytes(&b));
        let certs = parse_keys(&binary).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].emails(), ["a@example.org"]);
        assert_eq!(certs[1].emails(), ["b@example.org"]);

        let armored = format!("{}{}", certs[0].to_armored(), certs[1].to_armored());
        let again = parse_keys(armored.as_bytes()).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[1].fingerprint(), certs[1].fingerprint());
    }

    #[test]
    fn emails_are_addr_specs_lower_cased_once() {
        let secret = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .created_at(Timestamp::from_secs(t0()))
            .primary_user_id("Alice Example <Alice@Example.ORG>".into())
            .user_ids(vec![
                "bob@EXAMPLE.net".into(),
                "Alice (work) <alice@example.org>".into(),
                "just a name".into(),
            ])
            .subkeys(vec![encryption_subkey(t0())])
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap();
        let cert = one(&public_bytes(&secret));
        assert_eq!(cert.emails(), ["alice@example.org", "bob@example.net"]);
    }

    #[test]
    fn addr_spec_forms() {
        assert_eq!(addr_spec("A <a@b.example>").as_deref(), Some("a@b.example"));
        assert_eq!(addr_spec(" a@B.example ").as_deref(), Some("a@b.example"));
        assert_eq!(addr_spec("A <a@b> <c@D>").as_deref(), Some("c@d"));
        assert_eq!(addr_spec("A <a@b"), None);
        assert_eq!(addr_spec("A <>"), None);
        assert_eq!(addr_spec("a name"), None);
        assert_eq!(addr_spec("two words@x"), None);
        assert_eq!(addr_spec("@x"), None);
    }

    #[test]
    fn encrypts_to_the_newest_encryption_subkey_and_decrypts() {
        let secret = secret_key(
            "A <a@example.org>",
            vec![
                encryption_subkey(t0()),
                encryption_subkey(t0() + 100),
                signing_subkey(t0() + 200),
                // Made "in the future": not usable until then.
                encryption_subkey(t0() + 2 * 86_400),
            ],
        );
        let cert = one(&public_bytes(&secret));
        let now = later();
        let newest = hex_upper(secret.secret_subkeys[1].fingerprint().as_bytes());
        assert_eq!(cert.encryption_key_fingerprint(now).unwrap(), newest);
        let future = hex_upper(secret.secret_subkeys[3].fingerprint().as_bytes());
        let then = at(t0() + 3 * 86_400);
        assert_eq!(cert.encryption_key_fingerprint(then).unwrap(), future);

        let plaintext = b"line\r\nother\nbytes \x00\xff\x80 end";
        let mut out = Vec::new();
        encrypt(plaintext, &[&cert, &cert], now, &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("-----BEGIN PGP MESSAGE-----\n"), "{text}");
        assert!(text.ends_with("-----END PGP MESSAGE-----\n"), "{text}");
        assert!(!text.contains('\r'));

        let (message, _) = Message::from_armor(std::io::Cursor::new(out)).unwrap();
        let mut decrypted = message.decrypt(&"".into(), &secret).unwrap();
        assert!(!decrypted.is_compressed());
        assert_eq!(decrypted.as_data_vec().unwrap(), plaintext);
    }

    #[test]
    fn a_v6_key_is_parsed_but_refused() {
        let secret = SecretKeyParamsBuilder::default()
            .version(KeyVersion::V6)
            .key_type(KeyType::Ed25519)
            .can_certify(true)
            .created_at(Timestamp::from_secs(t0()))
            .primary_user_id("Six <six@example.org>".into())
            .subkeys(vec![
                SubkeyParamsBuilder::default()
                    .version(KeyVersion::V6)
                    .key_type(KeyType::X25519)
                    .can_encrypt(EncryptionCaps::All)
                    .created_at(Timestamp::from_secs(t0()))
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap();
        let cert = one(&public_bytes(&secret));
        assert_eq!(cert.fingerprint().len(), 64);
        assert_eq!(
            cert.check(later()),
            Err(KeyProblem::UnsupportedVersion {
                fingerprint: cert.fingerprint(),
                version: 6,
            })
        );
        assert!(matches!(
            encrypt(b"x", &[&cert], later(), &mut Vec::new()),
            Err(EncryptError::Key(KeyProblem::UnsupportedVersion { .. }))
        ));
    }

    #[test]
    fn encrypts_to_a_v4_x25519_subkey() {
        let x25519 = SubkeyParamsBuilder::default()
            .key_type(KeyType::X25519)
            .can_encrypt(EncryptionCaps::Communication)
            .created_at(Timestamp::from_secs(t0()))
            .build()
            .unwrap();
        let secret = secret_key("X <x@example.org>", vec![x25519]);
        let cert = one(&public_bytes(&secret));
        let mut out = Vec::new();
        encrypt(b"to X25519", &[&cert], later(), &mut out).unwrap();
        let (message, _) = Message::from_armor(std::io::Cursor::new(out)).unwrap();
        let mut decrypted = message.decrypt(&"".into(), &secret).unwrap();
        assert_eq!(decrypted.as_data_vec().unwrap(), b"to X25519");
    }

    #[test]
    fn key_problems() {
        let sign_only = one(&public_bytes(&secret_key(
            "A <a@example.org>",
            vec![signing_subkey(t0())],
        )));
        let fingerprint = sign_only.fingerprint();
        assert_eq!(
            sign_only.check(later()),
            Err(KeyProblem::NoEncryptionKey {
                fingerprint: fingerprint.clone(),
                why: NoEncryptionKey::NoneFlagged,
            })
        );
        let message = sign_only.check(later()).unwrap_err().to_string();
        assert!(message.contains(&fingerprint) && !message.contains("a@example"));
        assert!(!format!("{sign_only:?}").contains("a@example"));
        let mut out = Vec::new();
        assert!(matches!(
            encrypt(b"x", &[&sign_only], later(), &mut out),
            Err(EncryptError::Key(KeyProblem::NoEncryptionKey { .. }))
        ));
        assert!(out.is_empty());

        let good = one(&public_bytes(&secret_key(
            "A <a@example.org>",
            vec![encryption_subkey(t0())],
        )));
        assert_eq!(
            good.check(at(t0() - 10)),
            Err(KeyProblem::CreatedLater {
                fingerprint: good.fingerprint(),
                created: at(t0()),
            })
        );
        assert_eq!(good.check(later()), Ok(()));
        assert!(matches!(
            encrypt(b"x", &[], later(), &mut out),
            Err(EncryptError::NoRecipients)
        ));
    }

    #[test]
    fn a_subkey_bound_by_another_key_is_not_used() {
        let a = SignedPublicKey::from(secret_key("A <a@example.org>", vec![]));
        let b = SignedPublicKey::from(secret_key(
            "B <b@example.org>",
            vec![encryption_subkey(t0())],
        ));
        let grafted = SignedPublicKey::new(a.primary_key, a.details, b.public_subkeys);
        let cert = one(&grafted.to_bytes().unwrap());
        assert!(matches!(
            cert.check(later()),
            Err(KeyProblem::NoEncryptionKey {
                why: NoEncryptionKey::NoneFlagged,
                ..
            })
        ));
    }

    #[test]
    fn a_user_id_not_signed_by_the_key_is_not_listed() {
        let a = SignedPublicKey::from(secret_key(
            "A <a@example.org>",
            vec![encryption_subkey(t0())],
        ));
        let b = SignedPublicKey::from(secret_key("B <b@example.org>", vec![]));
        let mut details = a.details.clone();
        details.users.extend(b.details.users);
        let grafted = SignedPublicKey::new(a.primary_key, details, a.public_subkeys);
        let cert = one(&grafted.to_bytes().unwrap());
        assert_eq!(cert.emails(), ["a@example.org"]);
        assert_eq!(cert.check(later()), Ok(()));
    }

    #[test]
    fn a_secret_key_is_refused() {
        let secret = secret_key("A <a@example.org>", vec![encryption_subkey(t0())]);
        let fingerprint = hex_upper(secret.fingerprint().as_bytes());
        let bytes = secret.to_bytes().unwrap();
        assert_eq!(
            parse_keys(&bytes).unwrap_err(),
            KeyError::SecretKey {
                fingerprint: fingerprint.clone()
            }
        );
        let armored = secret.to_armored_string(ArmorOptions::default()).unwrap();
        assert_eq!(
            parse_keys(armored.as_bytes()).unwrap_err(),
            KeyError::SecretKey { fingerprint }
        );
    }

    #[test]
    fn malformed_input_is_refused() {
        assert_eq!(parse_keys(b"").unwrap_err(), KeyError::Empty);
        assert_eq!(parse_keys(b" \r\n\t").unwrap_err(), KeyError::Empty);
        let garbage = parse_keys(b"hello, this is not a key").unwrap_err();
        assert!(matches!(garbage, KeyError::Malformed(_)), "{garbage:?}");
        assert!(
            garbage
                .to_string()
                .starts_with("not an OpenPGP public key: "),
            "{garbage}"
        );
        let message = "-----BEGIN PGP MESSAGE-----\n\nwy4ECQMIjP5yG\n-----END PGP MESSAGE-----\n";
        assert!(matches!(
            parse_keys(message.as_bytes()),
            Err(KeyError::Malformed(_))
        ));
        let bad_base64 =
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n";
        assert!(parse_keys(bad_base64.as_bytes()).is_err());

        let good = public_bytes(&secret_key(
            "A <a@example.org>",
            vec![encryption_subkey(t0())],
        ));
        for cut in [1, 2, 10, good.len() / 2, good.len() - 1] {
            match parse_keys(&good[..cut]) {
                Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
                // A cut between packets leaves a shorter, well-formed key.
                Ok(certs) => assert_eq!(certs.len(), 1),
            }
        }
        // A single packet that is no key.
        assert!(parse_keys(&[0xC2, 0x01, 0x00]).is_err());
    }

    #[test]
    fn armor_checksum() {
        assert_eq!(crc24(b""), 0x00B7_04CE);
        let text = armor("PGP PUBLIC KEY BLOCK", b"\x01\x02\x03");
        assert_eq!(
            text,
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAQID\n=\
             "
            .to_string()
                + &data_encoding::BASE64.encode(&crc24(b"\x01\x02\x03").to_be_bytes()[1..])
                + "\n-----END PGP PUBLIC KEY BLOCK-----\n"
        );
    }

    #[test]
    fn mutated_keys_never_panic() {
        let good = public_bytes(&secret_key(
            "A <a@example.org>",
            vec![encryption_subkey(t0())],
        ));
        let armored = one(&good).to_armored().into_bytes();
        let mut rng = XorShift::new(0x0BE5_7A1E);
        for round in 0..300 {
            let mut bytes = if round % 2 == 0 {
                good.clone()
            } else {
                armored.clone()
            };
            for _ in 0..(1 + rng.next() % 4) {
                let len = bytes.len() as u64;
                let at = (rng.next() % len) as usize;
                match rng.next() % 3 {
                    0 => bytes[at] = rng.next() as u8,
                    1 => bytes.truncate(at.max(1)),
                    _ => bytes.insert(at, rng.next() as u8),
                }
            }
            if let Ok(certs) = parse_keys(&bytes) {
                for cert in certs {
                    let _ = cert.check(later());
                    let _ = cert.emails();
                }
            }
        }
    }

    proptest! {
        #[test]
        fn parse_keys_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_keys(&bytes);
        }

        #[test]
        fn armored_garbage_never_panics(body in "[A-Za-z0-9+/=\n]{0,600}") {
            let text = format!(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{body}\n-----END PGP PUBLIC KEY BLOCK-----\n"
            );
            let _ = parse_keys(text.as_bytes());
        }

        #[test]
        fn packets_never_panic(tag in 0u8..64, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            // A new-format packet header with a random tag and a plausible length.
            let mut bytes = vec![0xC0 | tag];
            bytes.push(body.len().min(191) as u8);
            bytes.extend(&body);
            let _ = parse_keys(&bytes);
        }
    }
}

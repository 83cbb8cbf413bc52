//! Finding a recipient's keys, in the documented order (postern-encryptor(1),
//! "KEYS"): the key attached to the alias the recipient came through,
//! then the operator's GnuPG keyring, then the Web Key Directory of the
//! recipient's domain. The first source with a usable key wins.
//!
//! What the keyring and WKD answered is kept, by address, in a file
//! sealed under the spool key (`encryptor.cache` in the spool directory),
//! so a chain started per message (Postfix's pipe) does not ask gpg or
//! the web again: keyring answers until a keyring file changes, WKD
//! answers for `wkd.cache_time` (a key) or `wkd.negative_cache_time`
//! (none, or a server that failed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keyring::{Found, Keyring, KeyringError, Stamp};
use super::openpgp::{self, Cert};
use super::wkd::{KeyDirectory, Lookup, WkdCache, WkdClient};
use crate::alias::store::AliasKey;
use crate::config::WkdConfig;
use crate::log::Log;
use crate::store::sealed_file::{SealedFile, SealedFileError};

/// Where a recipient's keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Alias,
    Keyring,
    Wkd,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Alias => "alias",
            Source::Keyring => "keyring",
            Source::Wkd => "wkd",
        }
    }
}

/// The keys found for one recipient.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub certs: Vec<Arc<Cert>>,
    pub source: Option<Source>,
    /// WKD could not be asked (a timeout, a server error): "no key" is
    /// then not known to be true.
    pub unavailable: Option<String>,
}

/// The keys a recipient is encrypted to, and where to look for more.
pub struct KeyFinder {
    keyring: Option<Keyring>,
    wkd: Option<Box<dyn KeyDirectory>>,
    wkd_config: WkdConfig,
    wkd_cache: WkdCache,
    /// Keys parsed, by the SHA-256 of the bytes they came from.
    parsed: HashMap<[u8; 32], Arc<Vec<Arc<Cert>>>>,
    file: Option<SealedFile>,
    dirty: bool,
}

/// The cache file's contents, inside the seal.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    keyring_stamp: Stamp,
    keyring: HashMap<String, Found>,
    wkd: Vec<u8>,
}

const CACHE_FORMAT: u32 = 1;
/// A cache file larger than this is refused (and replaced).
const MAX_CACHE_FILE: u64 = 64 << 20;
/// Parsed keys kept in memory at most (then the memo starts again).
const MAX_PARSED: usize = 10_000;

impl KeyFinder {
    pub fn new(
        keyring: Option<Keyring>,
        wkd_config: &WkdConfig,
        file: Option<SealedFile>,
    ) -> Result<KeyFinder, super::wkd::WkdError> {
        let wkd: Option<Box<dyn KeyDirectory>> = if wkd_config.enabled {
            Some(Box::new(WkdClient::new(wkd_config)?))
        } else {
            None
        };
        Ok(KeyFinder {
            keyring,
            wkd,
            wkd_config: wkd_config.clone(),
            wkd_cache: WkdCache::default(),
            parsed: HashMap::new(),
            file,
            dirty: false,
        })
    }

    /// For tests: a key directory other than HTTPS.
    pub fn with_directory(mut self, dir: Box<dyn KeyDirectory>) -> KeyFinder {
        self.wkd = Some(dir);
        self
    }

    /// Reads the cache file. A missing file is an empty cache; one that
    /// does not open is reported and replaced at the next save.
    pub fn load(&mut self) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let plain = match file.read(MAX_CACHE_FILE) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.dirty = true;
                return Err(cache_error(file, &e.to_string()));
            }
        };
        let stored: Stored = match serde_json::from_slice(&plain) {
            Ok(s) => s,
            Err(e) => {
                self.dirty = true;
                return Err(cache_error(file, &format!("not a key cache: {e}")));
            }
        };
        if stored.format != CACHE_FORMAT {
            self.dirty = true;
            return Err(cache_error(file, &format!("format {}", stored.format)));
        }
        if let Some(k) = &mut self.keyring {
            k.adopt(&stored.keyring_stamp, stored.keyring);
        }
        match WkdCache::from_bytes(&stored.wkd) {
            Ok(c) => self.wkd_cache = c,
            Err(e) => {
                self.dirty = true;
                return Err(cache_error(file, &e.to_string()));
            }
        }
        Ok(())
    }

    /// Writes the cache file if anything was looked up since the last
    /// load or save.
    pub fn save(&mut self) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let (stamp, answers) = match &self.keyring {
            Some(k) => {
                let (s, a) = k.answers();
                (s.clone(), a.clone())
            }
            None => (Stamp::default(), HashMap::new()),
        };
        let stored = Stored {
            format: CACHE_FORMAT,
            keyring_stamp: stamp,
            keyring: answers,
            wkd: self.wkd_cache.to_bytes(),
        };
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&stored).map_err(|e| cache_error(file, &e.to_string()))?,
        );
        file.write(&plain)
            .map_err(|e: SealedFileError| cache_error(file, &e.to_string()))?;
        self.dirty = false;
        Ok(())
    }

    /// The keys for `address` (lower case, `local@domain`). `alias_key`:
    /// the key attached to the alias the recipient came through, used
    /// when it names the address or was set for every target. A keyring
    /// that does not answer is an error: the job waits.
    pub fn find(
        &mut self,
        address: &str,
        alias_key: Option<&AliasKey>,
        wkd: bool,
        now: SystemTime,
        log: &Log,
    ) -> Result<Keys, KeyringError> {
        if let Some(k) = alias_key {
            let certs = self.usable(&k.key, address, !k.any_user_id, now, log, Source::Alias);
            if !certs.is_empty() {
                return Ok(found(certs, Source::Alias));
            }
        }
        if let Some(ring) = &mut self.keyring {
            let before = ring.answers().1.len();
            let export = ring.lookup(address)?.export.clone();
            self.dirty |= ring.answers().1.len() != before;
            if !export.is_empty() {
                let certs = self.usable(&export, address, true, now, log, Source::Keyring);
                if !certs.is_empty() {
                    return Ok(found(certs, Source::Keyring));
                }
            }
        }
        let mut keys = Keys::default();
        if wkd
            && let Some(dir) = &self.wkd
            && let Some((local, domain)) = address.rsplit_once('@')
        {
            self.dirty |= self.wkd_cache.get(address, now).is_none();
            let lookup = self
                .wkd_cache
                .lookup(dir.as_ref(), local, domain, now, &self.wkd_config);
            match lookup {
                Lookup::Found(bytes) => {
                    let certs = self.usable(&bytes, address, true, now, log, Source::Wkd);
                    if !certs.is_empty() {
                        return Ok(found(certs, Source::Wkd));
                    }
                }
                Lookup::NotFound => {}
                Lookup::Unavailable(why) => keys.unavailable = Some(why),
            }
        }
        Ok(keys)
    }

    /// The keys in `bytes` that can be used now (and, when `named`, have
    /// a user ID for `address`). A key that cannot is logged (by
    /// fingerprint) and left out.
    fn usable(
        &mut self,
        bytes: &[u8],
        address: &str,
        named: bool,
        now: SystemTime,
        log: &Log,
        source: Source,
    ) -> Vec<Arc<Cert>> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let certs = match self.parsed.get(&digest) {
            Some(c) => c.clone(),
            None => {
                let certs = match openpgp::parse_keys(bytes) {
                    Ok(c) => c.into_iter().map(Arc::new).collect(),
                    Err(e) => {
                        log.warning(format_args!("a key from the {}: {e}", source.as_str()));
                        Vec::new()
                    }
                };
                if self.parsed.len() >= MAX_PARSED {
                    self.parsed.clear();
                }
                let certs = Arc::new(certs);
                self.parsed.insert(digest, certs.clone());
                certs
            }
        };
        certs
            .iter()
            .filter(|c| !named || c.emails().iter().any(|e| e == address))
            .filter(|c| match c.check(now) {
                Ok(()) => true,
                Err(problem) => {
                    log.warning(format_args!(
                        "a key from the {}: {problem}",
                        source.as_str()
                    ));
                    false
                }
            })
            .cloned()
            .collect()
    }
}

fn found(certs: Vec<Arc<Cert>>, source: Source) -> Keys {
    Keys {
        certs,
        source: Some(source),
        unavailable: None,
    }
}

fn cache_error(file: &SealedFile, what: &str) -> String {
    format!("key cache {}: {what}", file.path.display())
}

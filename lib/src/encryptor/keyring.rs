//! The operator's GnuPG keyring, read through gpgme: the keys an admin
//! already manages with `gpg --import`, `--edit-key disable`,
//! `--delete-key`. gpgme runs `gpg` for every operation, so the keyring
//! is asked once per address and the answer kept until a keyring file
//! changes (its size, inode or time); encryption itself happens in
//! process with the exported key ([`super::openpgp`]).
//!
//! gpgme is driven from a thread of its own, and every question has a
//! time limit: a `gpg` that hangs (a stale lock, a broken home) makes the
//! job wait (75) with a clear line, never the whole chain. Only public
//! keys are read, so no gpg-agent is needed or started.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::EncryptorConfig;
use crate::mail::text;

/// The keys the keyring holds for one address: their fingerprints and
/// their public parts exported together (binary, minimal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub fingerprints: Vec<String>,
    pub export: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "the GnuPG home {0} does not exist or is not a directory (encryptor.keyring; \"\" for no keyring)"
    )]
    Missing(PathBuf),
    #[error("gpgme cannot use the GnuPG home {home}: {detail}")]
    Start { home: PathBuf, detail: String },
    #[error("the keyring lookup failed: {0}")]
    Lookup(String),
    #[error("the keyring did not answer within {0:?} (is gpg waiting for a lock?)")]
    Timeout(Duration),
}

/// What identifies the keyring's state: each keyring file's size, inode
/// and modification time; another value means the keys may have changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp(Vec<(u64, u64, i64, i64)>);

const KEYRING_FILES: &[&str] = &["pubring.kbx", "pubring.gpg", "trustdb.gpg"];

impl Stamp {
    pub fn of(home: &Path) -> Stamp {
        Stamp(
            KEYRING_FILES
                .iter()
                .map(|f| match fs::metadata(home.join(f)) {
                    Ok(m) => (m.len(), m.ino(), m.mtime(), m.mtime_nsec()),
                    Err(_) => (0, 0, 0, 0),
                })
                .collect(),
        )
    }
}

type Reply = Result<Found, String>;

/// The keyring: a gpgme thread and the answers it gave, by address.
pub struct Keyring {
    home: PathBuf,
    timeout: Duration,
    requests: mpsc::Sender<String>,
    replies: mpsc::Receiver<Reply>,
    stamp: Stamp,
    answers: HashMap<String, Found>,
    /// Set when gpgme stopped answering: every later question fails at
    /// once with it.
    stuck: Option<Duration>,
}

impl Keyring {
    /// Starts gpgme on `encryptor.keyring`; `None` when that is empty.
    pub fn open(config: &EncryptorConfig) -> Result<Option<Keyring>, KeyringError> {
        if config.keyring.as_os_str().is_empty() {
            return Ok(None);
        }
        let home = config.keyring.clone();
        if !home.is_dir() {
            return Err(KeyringError::Missing(home));
        }
        let (requests, inbox) = mpsc::channel::<String>();
        let (outbox, replies) = mpsc::channel::<Reply>();
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        let gpg = (!config.gpg.as_os_str().is_empty()).then(|| config.gpg.clone());
        let thread_home = home.clone();
        thread::Builder::new()
            .name("gpgme".into())
            .spawn(move || worker(&thread_home, gpg.as_deref(), &ready_tx, &inbox, &outbox))
            .map_err(|e| KeyringError::Start {
                home: home.clone(),
                detail: e.to_string(),
            })?;
        match ready.recv_timeout(config.keyring_timeout) {
            Ok(Ok(())) => {}
            Ok(Err(detail)) => return Err(KeyringError::Start { home, detail }),
            Err(_) => return Err(KeyringError::Timeout(config.keyring_timeout)),
        }
        Ok(Some(Keyring {
            stamp: Stamp::of(&home),
            home,
            timeout: config.keyring_timeout,
            requests,
            replies,
            answers: HashMap::new(),
            stuck: None,
        }))
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The keyring's state now; answers kept under another state are
    /// dropped.
    pub fn refresh(&mut self) -> &Stamp {
        let now = Stamp::of(&self.home);
        if now != self.stamp {
            self.answers.clear();
            self.stamp = now;
        }
        &self.stamp
    }

    /// Answers kept from an earlier run (the encryptor's cache file),
    /// used only when the keyring is still as it was then.
    pub fn adopt(&mut self, stamp: &Stamp, answers: HashMap<String, Found>) {
        if *stamp == Stamp::of(&self.home) {
            self.stamp = stamp.clone();
            self.answers.extend(answers);
        }
    }

    pub fn answers(&self) -> (&Stamp, &HashMap<String, Found>) {
        (&self.stamp, &self.answers)
    }

    /// The usable keys for `address` (lower case): not revoked, expired,
    /// disabled or invalid, able to encrypt, with a valid user ID that
    /// names exactly this address. Empty when there is none.
    pub fn lookup(&mut self, address: &str) -> Result<&Found, KeyringError> {
        self.refresh();
        if !self.answers.contains_key(address) {
            let found = self.ask(address)?;
            self.answers.insert(address.to_owned(), found);
        }
        self.answers
            .get(address)
            .ok_or_else(|| KeyringError::Lookup("the answer was lost".into()))
    }

    fn ask(&mut self, address: &str) -> Result<Found, KeyringError> {
        if let Some(t) = self.stuck {
            return Err(KeyringError::Timeout(t));
        }
        self.requests
            .send(address.to_owned())
            .map_err(|_| KeyringError::Lookup("the gpgme thread is gone".into()))?;
        match self.replies.recv_timeout(self.timeout) {
            Ok(reply) => reply.map_err(KeyringError::Lookup),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.stuck = Some(self.timeout);
                Err(KeyringError::Timeout(self.timeout))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(KeyringError::Lookup("the gpgme thread is gone".into()))
            }
        }
    }
}

fn worker(
    home: &Path,
    gpg: Option<&Path>,
    ready: &mpsc::Sender<Result<(), String>>,
    inbox: &mpsc::Receiver<String>,
    outbox: &mpsc::Sender<Reply>,
) {
    let mut ctx = match context(home, gpg) {
        Ok(ctx) => {
            let _ = ready.send(Ok(()));
            ctx
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Ok(address) = inbox.recv() {
        if outbox.send(find(&mut ctx, &address)).is_err() {
            return;
        }
    }
}

fn context(home: &Path, gpg: Option<&Path>) -> Result<gpgme::Context, String> {
    let detail = |e: gpgme::Error| text::bounded(&e.to_string(), 200);
    gpgme::init();
    let mut ctx = gpgme::Context::from_protocol(gpgme::Protocol::OpenPgp).map_err(detail)?;
    let path = |p: &Path| p.to_string_lossy().into_owned();
    ctx.set_engine_info(gpg.map(path), Some(path(home)))
        .map_err(detail)?;
    ctx.set_key_list_mode(gpgme::KeyListMode::LOCAL)
        .map_err(detail)?;
    ctx.set_offline(true);
    // One harmless listing proves the engine runs and reads the home.
    ctx.find_keys(["<postern-keyring-check@invalid>"])
        .map_err(detail)?
        .for_each(drop);
    if let Some(gpg) = gpg
        && ctx.engine_info().path_raw().is_none()
    {
        return Err(format!("gpgme does not accept {} as gpg", gpg.display()));
    }
    Ok(ctx)
}

/// The keys for `address`, checked as [`Keyring::lookup`] says.
fn find(ctx: &mut gpgme::Context, address: &str) -> Reply {
    let detail = |e: gpgme::Error| text::bounded(&e.to_string(), 200);
    let mut fingerprints = Vec::new();
    for key in ctx.find_keys([format!("<{address}>")]).map_err(detail)? {
        let Ok(key) = key else { continue };
        let usable =
            !(key.is_revoked() || key.is_expired() || key.is_disabled() || key.is_invalid())
                && key.can_encrypt();
        let named = key.user_ids().any(|uid| {
            !(uid.is_revoked() || uid.is_invalid())
                && uid.email().is_ok_and(|e| e.eq_ignore_ascii_case(address))
        });
        if usable
            && named
            && let Ok(fpr) = key.fingerprint()
        {
            fingerprints.push(fpr.to_ascii_uppercase());
        }
    }
    let mut export = Vec::new();
    if !fingerprints.is_empty() {
        ctx.export(
            fingerprints.iter().map(String::as_str),
            gpgme::ExportMode::MINIMAL,
            &mut export,
        )
        .map_err(detail)?;
    }
    Ok(Found {
        fingerprints,
        export,
    })
}

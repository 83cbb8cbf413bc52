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
    #[serde(with = "super::wkd::key_bytes")]
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

/// Addresses whose answers are kept at most (then the kept answers start
/// again), so the cache file stays small however many addresses pass.
const MAX_ANSWERS: usize = 10_000;

/// The keyring: a gpgme thread (started at the first question the kept
/// answers cannot settle, so a run that needs none never starts gpg) and
/// the answers it gave, by address.
pub struct Keyring {
    home: PathBuf,
    gpg: Option<PathBuf>,
    timeout: Duration,
    worker: Option<Worker>,
    stamp: Stamp,
    answers: HashMap<String, Found>,
    /// Set when gpgme stopped answering: every later question fails at
    /// once with it.
    stuck: Option<Duration>,
}

struct Worker {
    requests: mpsc::Sender<String>,
    replies: mpsc::Receiver<Reply>,
}

impl Keyring {
    /// The keyring of `encryptor.keyring`; `None` when that is empty. The
    /// directory must exist; gpgme itself is started when first needed.
    pub fn open(config: &EncryptorConfig) -> Result<Option<Keyring>, KeyringError> {
        if config.keyring.as_os_str().is_empty() {
            return Ok(None);
        }
        let home = config.keyring.clone();
        if !home.is_dir() {
            return Err(KeyringError::Missing(home));
        }
        Ok(Some(Keyring {
            stamp: Stamp::of(&home),
            home,
            gpg: (!config.gpg.as_os_str().is_empty()).then(|| config.gpg.clone()),
            timeout: config.keyring_timeout,
            worker: None,
            answers: HashMap::new(),
            stuck: None,
        }))
    }

    /// Starts the gpgme thread and waits until gpgme has read the home.
    fn start(&mut self) -> Result<&Worker, KeyringError> {
        if self.worker.is_none() {
            let (requests, inbox) = mpsc::channel::<String>();
            let (outbox, replies) = mpsc::channel::<Reply>();
            let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
            let (home, gpg) = (self.home.clone(), self.gpg.clone());
            thread::Builder::new()
                .name("gpgme".into())
                .spawn(move || worker(&home, gpg.as_deref(), &ready_tx, &inbox, &outbox))
                .map_err(|e| KeyringError::Start {
                    home: self.home.clone(),
                    detail: e.to_string(),
                })?;
            match ready.recv_timeout(self.timeout) {
                Ok(Ok(())) => {}
                Ok(Err(detail)) => {
                    return Err(KeyringError::Start {
                        home: self.home.clone(),
                        detail,
                    });
                }
                Err(_) => {
                    self.stuck = Some(self.timeout);
                    return Err(KeyringError::Timeout(self.timeout));
                }
            }
            self.worker = Some(Worker { requests, replies });
        }
        self.worker
            .as_ref()
            .ok_or_else(|| KeyringError::Lookup("the gpgme thread is gone".into()))
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
            // gpg may have written its own files (a new trustdb.gpg on a
            // fresh home): the state after the answer is the one it holds
            // for.
            let after = Stamp::of(&self.home);
            if after != self.stamp {
                self.answers.clear();
                self.stamp = after;
            }
            if self.answers.len() >= MAX_ANSWERS {
                self.answers.clear();
            }
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
        let timeout = self.timeout;
        let worker = self.start()?;
        worker
            .requests
            .send(address.to_owned())
            .map_err(|_| KeyringError::Lookup("the gpgme thread is gone".into()))?;
        match worker.replies.recv_timeout(timeout) {
            Ok(reply) => reply.map_err(KeyringError::Lookup),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.stuck = Some(timeout);
                Err(KeyringError::Timeout(timeout))
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
    for key in ctx
        .find_keys(["<postern-keyring-check@invalid>"])
        .map_err(detail)?
    {
        key.map_err(detail)?;
    }
    // A program gpgme cannot run makes a listing find nothing, quietly,
    // which must never read as "no key": the engine is asked its version
    // first, as gpgme itself would.
    let program = ctx
        .engine_info()
        .path()
        .map(str::to_owned)
        .map_err(|_| "gpgme knows no gpg program".to_owned())?;
    let version = std::process::Command::new(&program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !version.status.success() || !version.stdout.starts_with(b"gpg (GnuPG) ") {
        return Err(format!("{program} --version does not answer as GnuPG does"));
    }
    Ok(ctx)
}

/// The keys for `address`, checked as [`Keyring::lookup`] says.
fn find(ctx: &mut gpgme::Context, address: &str) -> Reply {
    let detail = |e: gpgme::Error| text::bounded(&e.to_string(), 200);
    let mut fingerprints = Vec::new();
    for key in ctx.find_keys([format!("<{address}>")]).map_err(detail)? {
        // An engine that fails half-way must not look like "no key".
        let key = key.map_err(detail)?;
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

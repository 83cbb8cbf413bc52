//! postern-encryptor(1) as a library operation: mail to a recipient who
//! has an OpenPGP key leaves encrypted to that key as PGP/MIME (RFC
//! 3156), so nothing after postern — the recipient's mailbox provider
//! included — can read it.
//!
//! One job in, one job out per distinct key set: recipients with the
//! same keys share an encrypted copy, recipients without a key get the
//! message as it came (or, under `require`, are refused with 5.7.1). A
//! message already encrypted (PGP/MIME, S/MIME, inline PGP) passes as it
//! is. A keyring that does not answer makes the whole job wait (75):
//! nothing of it has been passed on.
//!
//! Engine: gpgme finds and checks keys in the operator's keyring; the
//! key is exported once and the encryption itself is done in process by
//! rPGP ([`openpgp`]), since a `gpg` process per message caps the rate
//! near a shell loop of `gpg --encrypt`.

pub mod keyring;
pub mod keys;
pub mod openpgp;
pub mod pgp_mime;
pub mod policy;
pub mod wkd;

use std::io::{self, Write};
use std::sync::Arc;
use std::time::SystemTime;

use crate::alias::domain_key;
use crate::alias::resolve::LocalPart;
use crate::alias::store::{AliasCrypto, AliasStore, StoreError};
use crate::config::{Config, EncryptPolicy};
use crate::exit::{Failure, ToFailure};
use crate::log::Log;
use crate::mail::address::Address;
use crate::mail::job::{Job, RcptStatus, Recipient};
use crate::mail::status;
use crate::stage::Stage;
use crate::store::seal::SealKey;
use crate::store::sealed_file::SealedFile;
use crate::store::spool::Spool;
use keyring::Keyring;
use keys::{KeyFinder, Keys, Source};
use openpgp::Cert;

/// The cache of key lookups, sealed, in the spool directory.
pub const CACHE_FILE: &str = "encryptor.cache";

/// What happened to one recipient, for the log and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub recipient: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already settled, or the message is already encrypted.
    Passed,
    /// Sent as it came: no key (policy `if-key`) or policy `never`.
    Plain {
        policy: EncryptPolicy,
    },
    Encrypted {
        source: &'static str,
        fingerprints: Vec<String>,
    },
    Refused {
        reason: String,
    },
}

/// The encryptor with its handles: the alias store (keys and policies),
/// the keyring, the WKD client and the cache.
pub struct Encryptor<'a> {
    config: &'a Config,
    log: &'a Log,
    store: Option<AliasStore>,
    finder: KeyFinder,
    /// The decisions of the last job.
    pub decisions: Vec<Decision>,
}

impl<'a> Encryptor<'a> {
    pub fn open(config: &'a Config, log: &'a Log) -> Result<Encryptor<'a>, Failure> {
        let fail = |f: Failure| {
            log.error(format_args!("{f}"));
            f
        };
        let store = match AliasStore::open(&config.aliases.store) {
            Ok(s) => Some(s),
            Err(StoreError::Missing { .. }) => None,
            Err(e) => return Err(fail(e.to_failure())),
        };
        let keyring = Keyring::open(&config.encryptor).map_err(|e| fail(keyring_failure(&e)))?;
        // The cache lives in the spool, sealed with its key: opening the
        // spool makes its directory and checks the key is the spool's.
        let spool = SealKey::load(&config.spool.key_file)
            .map_err(|e| e.to_failure())
            .and_then(|key| Spool::open(&config.spool.directory, key).map_err(|e| e.to_failure()));
        let file = match spool {
            Ok(spool) => Some(SealedFile {
                path: spool.dir().join(CACHE_FILE),
                key: spool.key().clone(),
            }),
            Err(f) => {
                log.warning(format_args!("key lookups are not kept between runs: {f}"));
                None
            }
        };
        let finder = KeyFinder::new(keyring, &config.wkd, file)
            .map_err(|e| fail(Failure::config(e.to_string())))?;
        Ok(Encryptor::with_parts(config, log, store, finder))
    }

    /// An encryptor over handles made elsewhere (tests, a chain runner).
    pub fn with_parts(
        config: &'a Config,
        log: &'a Log,
        store: Option<AliasStore>,
        mut finder: KeyFinder,
    ) -> Encryptor<'a> {
        if let Err(e) = finder.load() {
            log.warning(format_args!("{e}; starting with an empty one"));
        }
        Encryptor {
            config,
            log,
            store,
            finder,
            decisions: Vec::new(),
        }
    }

    /// Encrypts one job. `Err`: the job as a whole must wait; nothing of
    /// it was passed on.
    pub fn encrypt(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure> {
        self.decisions.clear();
        if let Some(s) = &mut self.store {
            s.begin_job().map_err(|e| e.to_failure())?;
        }
        let qid = job.envelope.queue_id.clone();
        if let Some(kind) = pgp_mime::already_encrypted(&job.message) {
            self.log.info(format_args!(
                "{qid}: already encrypted ({}): passed as it is",
                kind.as_str()
            ));
            self.decisions = job
                .envelope
                .recipients
                .iter()
                .map(|r| Decision {
                    recipient: r.address.as_str().to_owned(),
                    outcome: Outcome::Passed,
                })
                .collect();
            return Ok(vec![job]);
        }
        let Job {
            mut envelope,
            message,
        } = job;
        // Each recipient's key set (empty: as it came), found first: a
        // keyring that fails leaves the job whole.
        let recipients = std::mem::take(&mut envelope.recipients);
        let mut sets: Vec<Vec<String>> = Vec::with_capacity(recipients.len());
        let mut certs: Vec<Vec<Arc<Cert>>> = Vec::with_capacity(recipients.len());
        let mut settled: Vec<Recipient> = Vec::new();
        let mut pending: Vec<Recipient> = Vec::new();
        for mut r in recipients {
            if r.status != RcptStatus::Pending {
                self.decide(&r, Outcome::Passed);
                settled.push(r);
                continue;
            }
            let (keys, policy) = match self.keys_for(&r, now) {
                Ok(k) => k,
                Err(f) => {
                    self.log.error(format_args!("{qid}: {f}"));
                    return Err(f);
                }
            };
            if keys.certs.is_empty() {
                if policy == EncryptPolicy::Require {
                    if let Some(why) = &keys.unavailable {
                        let f = Failure::new(
                            crate::exit::Sysexit::TempFail,
                            status::NOT_AUTHORIZED,
                            format!(
                                "no OpenPGP key is known yet for a recipient that requires one (WKD: {why})"
                            ),
                        );
                        self.log.error(format_args!("{qid}: {f}"));
                        return Err(f);
                    }
                    let reason = "no OpenPGP key found for the recipient, who requires encryption"
                        .to_owned();
                    r.settle(
                        RcptStatus::Failed {
                            code: status::ENCRYPTION_NEEDED,
                        },
                        Some(&reason),
                    );
                    self.decide(&r, Outcome::Refused { reason });
                    settled.push(r);
                    continue;
                }
                self.decide(&r, Outcome::Plain { policy });
            }
            let fingerprints: Vec<String> = keys.certs.iter().map(|c| c.fingerprint()).collect();
            if !fingerprints.is_empty() {
                self.decide(
                    &r,
                    Outcome::Encrypted {
                        source: keys.source.map_or("", Source::as_str),
                        fingerprints: fingerprints.clone(),
                    },
                );
            }
            sets.push(fingerprints);
            certs.push(keys.certs);
            pending.push(r);
        }
        if let Err(e) = self.finder.save() {
            self.log.warning(format_args!("{e}"));
        }
        let groups = policy::group(&sets);
        let mut jobs = Vec::with_capacity(groups.len() + 1);
        let mut pending: Vec<Option<Recipient>> = pending.into_iter().map(Some).collect();
        let mut plain: Option<Vec<Recipient>> = None;
        for (set, members) in groups {
            let group: Vec<Recipient> = members.iter().filter_map(|&i| pending[i].take()).collect();
            if set.is_empty() {
                plain = Some(group);
                continue;
            }
            let to: Vec<&Cert> = certs[members[0]].iter().map(|c| c.as_ref()).collect();
            let encrypted = self.wrap(&message, &to, now)?;
            let mut env = envelope.clone();
            env.recipients = group;
            env.eight_bit = !encrypted.is_ascii();
            self.log.info(format_args!(
                "{qid}: encrypted for {} recipient(s) to {} key(s), {} bytes",
                env.recipients.len(),
                to.len(),
                encrypted.len()
            ));
            jobs.push(Job {
                envelope: env,
                message: encrypted,
            });
        }
        // Recipients settled before or here ride with the plain copy, or
        // with the first encrypted one when there is no plain copy.
        match (plain, jobs.first_mut()) {
            (Some(mut p), _) => {
                p.extend(settled);
                envelope.recipients = p;
                jobs.push(Job { envelope, message });
            }
            (None, Some(first)) => first.envelope.recipients.extend(settled),
            (None, None) => {
                envelope.recipients = settled;
                jobs.push(Job { envelope, message });
            }
        }
        let count =
            |f: fn(&Outcome) -> bool| self.decisions.iter().filter(|d| f(&d.outcome)).count();
        self.log.info(format_args!(
            "{qid}: encrypted={} plain={} refused={} passed={} jobs={}",
            count(|o| matches!(o, Outcome::Encrypted { .. })),
            count(|o| matches!(o, Outcome::Plain { .. })),
            count(|o| matches!(o, Outcome::Refused { .. })),
            count(|o| matches!(o, Outcome::Passed)),
            jobs.len()
        ));
        Ok(jobs)
    }

    fn decide(&mut self, r: &Recipient, outcome: Outcome) {
        self.decisions.push(Decision {
            recipient: r.address.as_str().to_owned(),
            outcome,
        });
    }

    /// The keys of one pending recipient and the policy that applies.
    fn keys_for(
        &mut self,
        r: &Recipient,
        now: SystemTime,
    ) -> Result<(Keys, EncryptPolicy), Failure> {
        let alias = through(r);
        let (crypto, domain_encrypt, domain_wkd) = match (&self.store, &alias) {
            (Some(store), Some((local, domain))) => {
                let mut crypto = None;
                for form in LocalPart::new(local).forms() {
                    if let Some(c) = store
                        .alias_crypto(domain, form)
                        .map_err(|e| e.to_failure())?
                    {
                        crypto = Some(c);
                        break;
                    }
                }
                (
                    crypto,
                    store
                        .setting(domain, "encrypt")
                        .map_err(|e| e.to_failure())?,
                    store.setting(domain, "wkd").map_err(|e| e.to_failure())?,
                )
            }
            _ => (None, String::new(), String::new()),
        };
        let applies = policy::applies(
            crypto.as_ref(),
            &domain_encrypt,
            &domain_wkd,
            self.config.encryptor.policy,
            self.config.wkd.enabled,
        );
        if applies.policy == EncryptPolicy::Never {
            return Ok((Keys::default(), applies.policy));
        }
        let address = key_address(&r.address);
        let keys = self
            .finder
            .find(
                &address,
                crypto.as_ref().and_then(|c: &AliasCrypto| c.key.as_ref()),
                applies.wkd,
                now,
                self.log,
            )
            .map_err(|e| keyring_failure(&e))?;
        Ok((keys, applies.policy))
    }

    /// The PGP/MIME message for `msg` encrypted to `to`.
    fn wrap(&self, msg: &[u8], to: &[&Cert], now: SystemTime) -> Result<Vec<u8>, Failure> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random)
            .map_err(|e| Failure::tempfail(format!("no random bytes: {e}")))?;
        let boundary = pgp_mime::boundary(random);
        let w = pgp_mime::wrap(msg, &boundary, self.config.encryptor.protected_headers);
        let armor_len = (w.entity_head.len() + w.body.len()) * 140 / 100 + 4096;
        let mut out = Vec::with_capacity(w.outer_head.len() + armor_len + w.tail.len());
        out.extend_from_slice(&w.outer_head);
        // The entity is read from its two pieces as it is encrypted: no
        // copy of a large message is made.
        let entity = io::Read::chain(w.entity_head.as_slice(), w.body);
        let result = if w.eol == "\r\n" {
            openpgp::encrypt_from(entity, to, now, &mut Crlf(&mut out))
        } else {
            openpgp::encrypt_from(entity, to, now, &mut out)
        };
        result.map_err(|e| Failure::tempfail(format!("cannot encrypt: {e}")))?;
        out.extend_from_slice(&w.tail);
        Ok(out)
    }
}

impl Stage for Encryptor<'_> {
    fn process(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure> {
        self.encrypt(job, now)
    }
}

/// The alias a recipient came through: its ORCPT's address when that is
/// an RFC 822 address, else the recipient itself; as (local, domain) in
/// the alias store's key form.
fn through(r: &Recipient) -> Option<(String, String)> {
    let from_orcpt = r.orcpt.as_deref().and_then(|o| {
        let (kind, addr) = o.split_once(';')?;
        kind.trim()
            .eq_ignore_ascii_case("rfc822")
            .then(|| Address::parse(addr.trim()).ok())
            .flatten()
    });
    let a = from_orcpt.as_ref().unwrap_or(&r.address);
    Some((a.local_part().to_owned(), domain_key(a.domain())?))
}

/// The address keys are looked up by: the local part lower-cased (as
/// WKD and gpg compare it), the domain in A-label form.
fn key_address(a: &Address) -> String {
    let domain = domain_key(a.domain()).unwrap_or_else(|| a.domain().to_ascii_lowercase());
    format!("{}@{domain}", a.local_part().to_lowercase())
}

/// A keyring that is not there or that gpgme cannot use is the
/// operator's to fix (78); one that does not answer may answer later (75).
/// Postfix keeps the message either way.
fn keyring_failure(e: &keyring::KeyringError) -> Failure {
    match e {
        keyring::KeyringError::Missing(_) | keyring::KeyringError::Start { .. } => {
            Failure::config(e.to_string())
        }
        _ => Failure::tempfail(e.to_string()),
    }
}

/// Writes LF line ends as CRLF: the armor (whose lines rPGP ends in LF
/// alone) into a message whose lines end in CRLF.
struct Crlf<'a>(&'a mut Vec<u8>);

impl Write for Crlf<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in buf.split_inclusive(|&b| b == b'\n') {
            match line.strip_suffix(b"\n") {
                Some(l) => {
                    self.0.extend_from_slice(l);
                    self.0.extend_from_slice(b"\r\n");
                }
                None => self.0.extend_from_slice(line),
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

//! The Sender Rewriting Scheme (SRS): the envelope sender of forwarded
//! mail rewritten into our own domain, so that SPF at the next hop passes,
//! and reversed when a bounce comes back.
//!
//! The scheme is Shevek's ("Sender Rewriting Scheme", 2004, the paper
//! behind libsrs2) in its *Guarded* form, byte for byte as Mail::SRS
//! 0.31 (`Mail::SRS::Guarded`), postsrsd 1.10 (libsrs2) and srslib write
//! it:
//!
//! ```text
//! SRS0=HHHH=TT=orig.domain=orig-local@srs.domain          first hop
//! SRS1=HHHH=first.hop.domain==HHHH=TT=orig.domain=orig-local@srs.domain
//! ```
//!
//! - `TT` is the day (Unix time / 86400) modulo 1024 in two base32 digits,
//!   alphabet `ABCDEFGHIJKLMNOPQRSTUVWXYZ234567` (RFC 4648's).
//! - `HHHH` is the first four base64 digits (RFC 4648 alphabet, with `+`
//!   and `/`) of HMAC-SHA1 under the secret of the concatenated fields,
//!   each lowercased in ASCII only: `TT`, the original domain and the
//!   original local part for SRS0 (`lc(TT) . lc(domain) . lc(local)`, as
//!   Mail::SRS's `hash_create($timestamp, $sendhost, $senduser)` and
//!   libsrs2's `srs_hash_create(3, stamp, host, user)` do); the first
//!   hop's domain and the rest of its SRS0 local part (from its separator
//!   on, e.g. `=HHHH=TT=orig.domain=orig-local`) for SRS1. srslib
//!   lowercases with Python's `str.lower()`, which also folds non-ASCII
//!   capitals: its hashes differ from the other two for such addresses.
//! - The character after `SRS0`/`SRS1` may be `=`, `+` or `-` (configured
//!   for what we write, any accepted back); every other separator is `=`.
//!   Forwarding an SRS0 address keeps its separator inside the SRS1
//!   address (hence `==` above); forwarding an SRS1 address keeps its
//!   first-hop domain and SRS0 part and signs them anew.
//!
//! Reversal accepts what the peers accept: the tag in any case, any of the
//! three separators, the hash in any case (postsrsd always compares
//! case-insensitively; Mail::SRS does too, after an exact try, with a
//! warning) and in either base64 alphabet (postsrsd 2.2.6 and later write
//! base64url, `-` and `_` for `+` and `/`, and accept both), a hash of 4
//! to 27 digits that is a prefix of the full digest (Mail::SRS's `HashMin`
//! rule), and any listed secret (the first signs, every one verifies:
//! rotation). A stamp is valid for `max_age` days after its day, both ends
//! counted, like Mail::SRS and postsrsd (srslib accepts one day less).
//! Where the peers refuse every stamp from the future (on the 1024-day
//! cycle it reads as 1023 days old), one day ahead is accepted here, so
//! that MX hosts sharing the secret may disagree about the date around
//! midnight.
//!
//! The fields are hashed one after the other with nothing between them, so
//! moving the border between the original domain and local part
//! (`…=example.co=mbob@…` for `…=example.com=bob@…`) keeps the hash. That
//! is the scheme's, in every peer; changing it would break interop.
//!
//! Addresses are handled as SMTP means them: a quoted local part
//! (`"john doe"@example.org`) is signed and embedded without its quotes,
//! as postsrsd sees it from Postfix, and a result that needs quotes gets
//! them. Errors carry no address and no secret: they go to logs.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use data_encoding::{BASE32_NOPAD, BASE64_NOPAD};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use zeroize::Zeroizing;

use crate::config::{Config, SrsConfig};
use crate::exit::{Failure, ToFailure};
use crate::mail::address::{self, Address, MAX_ADDRESS, Sender};
use crate::mail::status::{self, Status};
use crate::store::private::{self, PrivateFileError};

/// HMAC-SHA1; with the `zeroize` features of `hmac` and `sha1`, a keyed
/// state is wiped when dropped.
type HmacSha1 = Hmac<Sha1>;

/// Base64 digits of the hash written (Mail::SRS and libsrs2's default).
pub const HASH_LEN: usize = 4;
/// Base64 digits of a whole 20-byte digest, unpadded: the longest hash a
/// reversal can check.
const HASH_MAX: usize = 27;
const DAY_SECONDS: u64 = 86_400;
/// Two base32 digits: the day number repeats every 1024 days.
const STAMP_CYCLE: u64 = 1024;
/// Days ahead of today a stamp may be (clock skew between our MX hosts).
const FUTURE_DAYS: u64 = 1;
/// The longest `max_age`: past it, old stamps would read as recent ones
/// of the next cycle.
pub const MAX_AGE_DAYS: u64 = 1000;
/// A secrets file is a few lines; anything larger is a wrong path.
const MAX_SECRETS_FILE: u64 = 64 * 1024;
/// The characters allowed right after `SRS0`/`SRS1`.
const SEPARATORS: [u8; 3] = *b"=+-";

/// Why an address could not be rewritten or reversed. No variant holds
/// the address or anything of the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    #[error("SRS address has no {0} (truncated or empty)")]
    Missing(Part),
    #[error("SRS address timestamp is not two base32 characters")]
    BadTimestamp,
    #[error("SRS address hash has {0} characters; {HASH_LEN} to {HASH_MAX} are accepted")]
    HashLength(usize),
    #[error("SRS address hash does not match (forged, damaged, or signed with a retired secret)")]
    BadHash,
    #[error("SRS address is {age} days old; it is accepted for {max_age} days")]
    Expired { age: u64, max_age: u64 },
    #[error("SRS address timestamp lies {days} days in the future")]
    FromFuture { days: u64 },
    #[error("SRS address would be longer than {MAX_ADDRESS} octets")]
    TooLong,
    #[error("SRS address cannot carry a sender with an empty local part")]
    EmptySender,
    #[error("SRS address reverses to an invalid address")]
    BadOriginal,
}

impl SrsError {
    /// 5.1.7 for all of them: the address (a sender we were to rewrite, or
    /// one coming back to us as a recipient) is not one we can use.
    pub fn status(&self) -> Status {
        status::BAD_SENDER_SYNTAX
    }
}

/// The field of an SRS address that is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Hash,
    Timestamp,
    Domain,
    LocalPart,
    /// The first hop's part of an SRS1 address: its separator and more.
    Srs0Part,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Hash => "hash",
            Part::Timestamp => "timestamp",
            Part::Domain => "domain",
            Part::LocalPart => "local part",
            Part::Srs0Part => "SRS0 part",
        })
    }
}

/// Why SRS cannot be set up: the secrets file or the `[srs]` table.
/// Names the file or the setting, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum SrsConfigError {
    #[error("SRS secrets file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SRS secrets file {path} is not a regular file")]
    NotFile { path: PathBuf },
    #[error("SRS secrets file {path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})")]
    Mode { path: PathBuf, mode: u32 },
    #[error(
        "SRS secrets file {path} is owned by uid {owner}; it must be owned by root or by \
         uid {process}, which postern runs as"
    )]
    Owner {
        path: PathBuf,
        owner: u32,
        process: u32,
    },
    #[error("SRS secrets file {path} is larger than {MAX_SECRETS_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error(
        "SRS secrets file {path} holds no secret; write one per line \
         (make one with: umask 077; head -c 18 /dev/urandom | base64 > {path})"
    )]
    NoSecret { path: PathBuf },
    #[error("srs.separator {0:?} must be \"=\", \"+\" or \"-\"")]
    Separator(char),
    #[error("the SRS domain {0:?} (srs.domain, else hostname) is not a domain name")]
    Domain(String),
    #[error("srs.exclude_domains entry {0:?} is not a domain name")]
    Exclude(String),
    #[error("srs.max_age must be from 1d to {MAX_AGE_DAYS}d")]
    MaxAge,
}

impl ToFailure for SrsConfigError {
    fn to_failure(&self) -> Failure {
        match self {
            // A missing file is a set-up step not taken; another read
            // error (EIO, a full table of open files) may pass.
            SrsConfigError::Read { source, .. }
                if source.kind() != std::io::ErrorKind::NotFound =>
            {
                Failure::tempfail(self.to_string())
            }
            _ => Failure::config(self.to_string()),
        }
    }
}

/// The SRS secrets, each kept as a keyed HMAC state (keyed once, cloned
/// per hash) and wiped when dropped. The first signs; all verify.
#[derive(Clone)]
pub struct SrsSecrets {
    keys: Vec<HmacSha1>,
}

impl fmt::Debug for SrsSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrsSecrets({} secrets)", self.keys.len())
    }
}

impl SrsSecrets {
    /// Secrets from memory, the signing one first; `None` when there is
    /// none. An empty secret is skipped.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Option<SrsSecrets> {
        let keys: Vec<HmacSha1> = secrets
            .into_iter()
            .filter(|s| !s.as_ref().is_empty())
            .filter_map(|s| HmacSha1::new_from_slice(s.as_ref()).ok())
            .collect();
        (!keys.is_empty()).then_some(SrsSecrets { keys })
    }

    /// The secrets of a secrets file's contents: one per line, the line's
    /// bytes without its LF or CRLF, blank lines skipped — the rule of
    /// postsrsd's `-s` file, so that one file serves both. There are no
    /// comments: a line starting with `#` is a secret too (in postsrsd as
    /// here), and skipping it would change which secret signs.
    pub fn from_lines(text: &[u8]) -> Option<SrsSecrets> {
        SrsSecrets::new(
            text.split(|&b| b == b'\n')
                .map(|line| line.strip_suffix(b"\r").unwrap_or(line)),
        )
    }

    /// Reads a secrets file: a regular file, mode 0600 or stricter, owned
    /// by root or by the user postern runs as.
    pub fn load(path: &Path) -> Result<SrsSecrets, SrsConfigError> {
        let path_buf = || path.to_owned();
        let read_err = |source| SrsConfigError::Read {
            path: path_buf(),
            source,
        };
        let (file, meta) = private::open(path).map_err(|e| match e {
            PrivateFileError::Open(source) => read_err(source),
            PrivateFileError::NotFile => SrsConfigError::NotFile { path: path_buf() },
            PrivateFileError::Mode(mode) => SrsConfigError::Mode {
                path: path_buf(),
                mode,
            },
        })?;
        private::check_owner(&meta).map_err(|e| SrsConfigError::Owner {
            path: path_buf(),
            owner: e.owner,
            process: e.process,
        })?;
        if meta.len() > MAX_SECRETS_FILE {
            return Err(SrsConfigError::TooLarge { path: path_buf() });
        }
        // Room for the whole file and one byte more, so the buffer never
        // grows (a reallocation would leave an unwiped copy behind).
        let mut text = Zeroizing::new(Vec::with_capacity(MAX_SECRETS_FILE as usize + 1));
        file.take(MAX_SECRETS_FILE + 1)
            .read_to_end(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_SECRETS_FILE {
            return Err(SrsConfigError::TooLarge { path: path_buf() });
        }
        SrsSecrets::from_lines(&text).ok_or_else(|| SrsConfigError::NoSecret { path: path_buf() })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn signing(&self) -> &HmacSha1 {
        // `new` never makes an empty list.
        &self.keys[0]
    }
}

/// A sender's domain as compared (ASCII case-insensitively) with the SRS
/// and excluded domains: the A-label form (IDNA, UTS #46) of a U-label
/// name; an ASCII one as it is, with no allocation on the common path.
fn domain_key(domain: &str) -> Cow<'_, str> {
    if domain.is_ascii() {
        return Cow::Borrowed(domain);
    }
    idna::domain_to_ascii(domain).map_or(Cow::Borrowed(domain), Cow::Owned)
}

/// A host name of the configuration in lowercase A-label form; `None`
/// when it is not one (address literals included: SRS needs a name).
fn a_label(domain: &str) -> Option<String> {
    let key = idna::domain_to_ascii(domain).ok()?;
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && Address::parse(&format!("postmaster@{key}")).is_ok();
    ok.then_some(key)
}

/// The codec, set up once per process: secrets keyed, domain checked.
#[derive(Debug, Clone)]
pub struct Srs {
    secrets: SrsSecrets,
    /// Written into SRS addresses: the A-label form, so that an SRS
    /// address needs SMTPUTF8 only if the original sender did.
    domain: String,
    /// The character after `SRS0`/`SRS1` in what we write.
    separator: &'static str,
    max_age_days: u64,
    /// A-label forms; a leading `.` covers the subdomains (postsrsd's `-X`).
    exclude: Vec<String>,
}

impl Srs {
    /// The codec for `settings` (the `[srs]` table), writing addresses in
    /// `domain` ([`Config::srs_domain`]), with `secrets` already loaded.
    pub fn new(
        settings: &SrsConfig,
        domain: &str,
        secrets: SrsSecrets,
    ) -> Result<Srs, SrsConfigError> {
        let separator = match settings.separator {
            '=' => "=",
            '+' => "+",
            '-' => "-",
            c => return Err(SrsConfigError::Separator(c)),
        };
        let max_age_days = settings.max_age.as_secs() / DAY_SECONDS;
        if !(1..=MAX_AGE_DAYS).contains(&max_age_days) {
            return Err(SrsConfigError::MaxAge);
        }
        let key = a_label(domain).ok_or_else(|| SrsConfigError::Domain(domain.to_owned()))?;
        let exclude = settings
            .exclude_domains
            .iter()
            .map(|d| {
                let (dot, name) = d.strip_prefix('.').map_or(("", d.as_str()), |n| (".", n));
                a_label(name)
                    .map(|k| format!("{dot}{k}"))
                    .ok_or_else(|| SrsConfigError::Exclude(d.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Srs {
            secrets,
            domain: key,
            separator,
            max_age_days,
            exclude,
        })
    }

    /// The codec as `config` says, reading its secrets file.
    pub fn from_config(config: &Config) -> Result<Srs, SrsConfigError> {
        let secrets = SrsSecrets::load(&config.srs.secrets_file)?;
        Srs::new(&config.srs, config.srs_domain(), secrets)
    }

    /// The domain SRS addresses are written in (A-label form).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether a sender is to be rewritten: not when its domain is the SRS
    /// domain (SPF passes already, and its SRS addresses are ours) or an
    /// excluded one. Domains compare case-insensitively and in A-label
    /// form, so `Bücher.example` and `xn--bcher-kva.example` are one.
    pub fn rewrites(&self, sender: &Address) -> bool {
        let domain = domain_key(sender.domain());
        let domain = domain.as_ref();
        if domain.eq_ignore_ascii_case(&self.domain) {
            return false;
        }
        !self.exclude.iter().any(|pattern| {
            if pattern.starts_with('.') {
                domain.len() > pattern.len()
                    && domain.is_char_boundary(domain.len() - pattern.len())
                    && domain[domain.len() - pattern.len()..].eq_ignore_ascii_case(pattern)
            } else {
                domain.eq_ignore_ascii_case(pattern)
            }
        })
    }

    /// The envelope sender for forwarded mail: the null sender and the
    /// senders [`Srs::rewrites`] leaves alone as they are, any other
    /// rewritten by [`Srs::forward`].
    pub fn rewrite_sender(&self, sender: &Sender, now: SystemTime) -> Result<Sender, SrsError> {
        match sender {
            Sender::Mailbox(a) if self.rewrites(a) => self.forward(a, now).map(Sender::Mailbox),
            _ => Ok(sender.clone()),
        }
    }

    /// Rewrites `sender` into the SRS domain: an ordinary address into
    /// SRS0, an SRS0 address into SRS1 pointing at its first hop, an SRS1
    /// address into a new SRS1 with the same first hop. It does not ask
    /// [`Srs::rewrites`]; [`Srs::rewrite_sender`] does.
    pub fn forward(&self, sender: &Address, now: SystemTime) -> Result<Address, SrsError> {
        let local = unquoted(sender.local_part());
        let local = local.as_ref();
        let domain = sender.domain();
        let sep = self.separator;
        let mut digits = [0u8; HASH_MAX];
        // An SRS1 sender that would not reverse to an address (its first
        // hop no domain) is wrapped as an ordinary sender instead.
        if let Some(rest) = tagged(local, b'1')
            && let Ok((_, host, opaque)) = split_srs1(rest)
            && Address::parse(&format!("postmaster@{host}")).is_ok()
        {
            let hash = self.sign(&[host, opaque], &mut digits);
            return self.build(&["SRS1", sep, hash, "=", host, "="], opaque);
        }
        if tagged(local, b'0').is_some_and(|rest| !rest.is_empty()) {
            // Everything from the SRS0 separator on, as Mail::SRS's
            // `s/$SRS0RE/$1/` leaves it.
            let opaque = &local[4..];
            let hash = self.sign(&[domain, opaque], &mut digits);
            return self.build(&["SRS1", sep, hash, "=", domain, "="], opaque);
        }
        if local.is_empty() {
            // `""@domain`: SRS0 has no way to say so (an empty last field
            // reads as a truncated address).
            return Err(SrsError::EmptySender);
        }
        let mut stamp_digits = [0u8; 4];
        let stamp = stamp(now, &mut stamp_digits);
        let hash = self.sign(&[stamp, domain, local], &mut digits);
        self.build(&["SRS0", sep, hash, "=", stamp, "=", domain, "="], local)
    }

    /// The address an SRS address stands for: the original sender for
    /// SRS0, the first hop's SRS0 address for SRS1; `None` when `address`
    /// is not an SRS address. The domain of `address` is not looked at
    /// (like postsrsd): the caller routes only ours here.
    pub fn reverse(&self, address: &Address, now: SystemTime) -> Result<Option<Address>, SrsError> {
        let local = unquoted(address.local_part());
        let local = local.as_ref();
        if let Some(rest) = tagged(local, b'1') {
            let (hash, host, opaque) = split_srs1(rest)?;
            self.verify(hash, &[host, opaque])?;
            return original("SRS0", opaque, host).map(Some);
        }
        let Some(rest) = tagged(local, b'0') else {
            return Ok(None);
        };
        let mut fields = rest.splitn(4, '=');
        let mut field = |part| {
            fields
                .next()
                .filter(|f| !f.is_empty())
                .ok_or(SrsError::Missing(part))
        };
        let hash = field(Part::Hash)?;
        let stamp = field(Part::Timestamp)?;
        let host = field(Part::Domain)?;
        let user = field(Part::LocalPart)?;
        let day = stamp_day(stamp).ok_or(SrsError::BadTimestamp)?;
        self.verify(hash, &[stamp, host, user])?;
        self.check_age(day, now)?;
        original("", user, host).map(Some)
    }

    /// The hash of `pieces` under the signing secret, written in `digits`.
    fn sign<'a>(&self, pieces: &[&str], digits: &'a mut [u8; HASH_MAX]) -> &'a str {
        digest(self.secrets.signing(), pieces, HASH_LEN, digits)
    }

    fn verify(&self, hash: &str, pieces: &[&str]) -> Result<(), SrsError> {
        let hash = hash.as_bytes();
        if !(HASH_LEN..=HASH_MAX).contains(&hash.len()) {
            return Err(SrsError::HashLength(hash.len()));
        }
        let mut digits = [0u8; HASH_MAX];
        let matches = self.secrets.keys.iter().any(|key| {
            let digest = digest(key, pieces, hash.len(), &mut digits);
            // Without an early exit, so the time taken tells nothing about
            // how much matched.
            let diff = digest.bytes().zip(hash).fold(0u8, |d, (ours, theirs)| {
                d | (ours.to_ascii_lowercase() ^ hash_digit(*theirs))
            });
            diff == 0
        });
        if matches {
            Ok(())
        } else {
            Err(SrsError::BadHash)
        }
    }

    /// A stamp of `day` (mod 1024) is valid from that day to `max_age`
    /// days later, and up to [`FUTURE_DAYS`] before it. On the cycle a
    /// stamp reads as either past or future: outside both windows it is
    /// reported as the nearer.
    fn check_age(&self, day: u64, now: SystemTime) -> Result<(), SrsError> {
        let today = day_number(now) % STAMP_CYCLE;
        let age = (today + STAMP_CYCLE - day) % STAMP_CYCLE;
        let ahead = (STAMP_CYCLE - age) % STAMP_CYCLE;
        if age <= self.max_age_days || ahead <= FUTURE_DAYS {
            Ok(())
        } else if age <= STAMP_CYCLE / 2 {
            Err(SrsError::Expired {
                age,
                max_age: self.max_age_days,
            })
        } else {
            Err(SrsError::FromFuture { days: ahead })
        }
    }

    /// `prefix` pieces then `user` at the SRS domain, quoted as a whole
    /// when `user` needs quotes (the prefix never does). Valid by
    /// construction, so not checked again: the pieces come from a valid
    /// address and the checked SRS domain, the length is checked here, and
    /// what [`Address::parse`] refuses outside quotes is quoted.
    fn build(&self, prefix: &[&str], user: &str) -> Result<Address, SrsError> {
        let quote = needs_quotes(user);
        let len = prefix.iter().map(|p| p.len()).sum::<usize>()
            + user.len()
            + 1
            + self.domain.len()
            + if quote { 2 + escapes(user) } else { 0 };
        if len > MAX_ADDRESS {
            return Err(SrsError::TooLong);
        }
        let mut out = String::with_capacity(len);
        if quote {
            out.push('"');
        }
        prefix.iter().for_each(|p| out.push_str(p));
        push_local(&mut out, user, quote);
        if quote {
            out.push('"');
        }
        out.push('@');
        out.push_str(&self.domain);
        Ok(Address::from_valid_parts(out))
    }
}

/// True when a local part (unquoted) starts like an SRS address:
/// `SRS0` or `SRS1` in any case, then `=`, `+` or `-` (libsrs2's
/// `SRS_IS_SRS_ADDRESS`, Mail::SRS's `$SRS0RE`/`$SRS1RE`).
pub fn is_srs(local: &str) -> bool {
    tagged(local, b'0').is_some() || tagged(local, b'1').is_some()
}

/// The rest of `local` after `SRS<digit>` and its separator.
fn tagged(local: &str, digit: u8) -> Option<&str> {
    let b = local.as_bytes();
    let ok = b.len() >= 5
        && b[..3].eq_ignore_ascii_case(b"SRS")
        && b[3] == digit
        && SEPARATORS.contains(&b[4]);
    // The first five bytes are ASCII, so 5 is a character boundary.
    ok.then(|| &local[5..])
}

/// `HASH=host=SRS0-part` of an SRS1 address (after `SRS1` and its
/// separator). The SRS0 part keeps its own separator, so it starts with
/// one and has something after it.
fn split_srs1(rest: &str) -> Result<(&str, &str, &str), SrsError> {
    let mut fields = rest.splitn(3, '=');
    let mut field = |part| {
        fields
            .next()
            .filter(|f| !f.is_empty())
            .ok_or(SrsError::Missing(part))
    };
    let hash = field(Part::Hash)?;
    let host = field(Part::Domain)?;
    let opaque = field(Part::Srs0Part)?;
    if opaque.len() < 2 || !SEPARATORS.contains(&opaque.as_bytes()[0]) {
        return Err(SrsError::Missing(Part::Srs0Part));
    }
    Ok((hash, host, opaque))
}

/// `prefix` + `user` @ `host`, quoted if needed, as a checked address.
/// `user` and `host` come from a valid address (no control characters),
/// and what needs quotes is quoted: the length and the domain are what
/// remain to check.
fn original(prefix: &str, user: &str, host: &str) -> Result<Address, SrsError> {
    let quote = needs_quotes(prefix) || needs_quotes(user);
    let mut out = String::with_capacity(prefix.len() + user.len() + host.len() + 3);
    if quote {
        out.push('"');
    }
    push_local(&mut out, prefix, quote);
    push_local(&mut out, user, quote);
    if quote {
        out.push('"');
    }
    out.push('@');
    out.push_str(host);
    if out.len() > MAX_ADDRESS || address::check_domain(host).is_err() {
        return Err(SrsError::BadOriginal);
    }
    Ok(Address::from_valid_parts(out))
}

/// A hash digit of an address as compared: in any case, like both peers,
/// and in either base64 alphabet — postsrsd 2.2.6 and later write
/// base64url (`-` and `_` for `+` and `/`) and accept both, so an address
/// it signed with a shared secret passes here too.
fn hash_digit(b: u8) -> u8 {
    match b {
        b'-' => b'+',
        b'_' => b'/',
        b => b.to_ascii_lowercase(),
    }
}

/// The first `len` (at most [`HASH_MAX`]) base64 digits of HMAC-SHA1 of
/// the pieces, each lowercased in ASCII only (libsrs2's `tolower` in the C
/// locale, Perl's `lc` on bytes), written in `digits`.
fn digest<'a>(
    key: &HmacSha1,
    pieces: &[&str],
    len: usize,
    digits: &'a mut [u8; HASH_MAX],
) -> &'a str {
    let mut mac = key.clone();
    let mut lower = [0u8; 64];
    for piece in pieces {
        for chunk in piece.as_bytes().chunks(lower.len()) {
            let buf = &mut lower[..chunk.len()];
            buf.copy_from_slice(chunk);
            buf.make_ascii_lowercase();
            mac.update(buf);
        }
    }
    let tag = mac.finalize();
    let tag = tag.as_bytes();
    // Only the bytes the digits need: each digit is 6 bits, and a digit
    // cut short by the end of the input is one not asked for.
    let bytes = &tag[..(len * 6).div_ceil(8).min(tag.len())];
    let encoded = BASE64_NOPAD.encode_len(bytes.len());
    &BASE64_NOPAD.encode_mut_str(bytes, &mut digits[..encoded])[..len.min(encoded)]
}

fn day_number(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        / DAY_SECONDS
}

/// Today's stamp: the day number's low ten bits in two base32 digits.
/// Placed as the top ten bits of two bytes, they are the first two of the
/// four digits RFC 4648 base32 makes of those bytes (whose alphabet is
/// SRS's).
fn stamp(now: SystemTime, digits: &mut [u8; 4]) -> &str {
    let day = (day_number(now) % STAMP_CYCLE) as u16;
    &BASE32_NOPAD.encode_mut_str(&(day << 6).to_be_bytes(), digits)[..2]
}

/// The day (mod 1024) of a stamp in either case; the reverse of [`stamp`]:
/// two zero digits (`AA`) complete the four.
fn stamp_day(stamp: &str) -> Option<u64> {
    let s = stamp.as_bytes();
    if s.len() != 2 {
        return None;
    }
    let digits = [
        s[0].to_ascii_uppercase(),
        s[1].to_ascii_uppercase(),
        b'A',
        b'A',
    ];
    let mut bytes = [0u8; 2];
    BASE32_NOPAD.decode_mut(&digits, &mut bytes).ok()?;
    Some(u64::from(u16::from_be_bytes(bytes) >> 6))
}

/// A local part as SMTP means it: a quoted string (RFC 5321 section
/// 4.1.2) without its quotes and backslash escapes.
fn unquoted(local: &str) -> Cow<'_, str> {
    let inner = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) if local.len() >= 2 => inner,
        _ => return Cow::Borrowed(local),
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether a local part must be quoted to be written in an address: what
/// [`Address::parse`] refuses outside quotes, and `@`.
fn needs_quotes(local: &str) -> bool {
    local
        .bytes()
        .any(|b| matches!(b, b' ' | b'<' | b'>' | b'"' | b'\\' | b',' | b'@'))
}

fn escapes(local: &str) -> usize {
    local.bytes().filter(|&b| b == b'"' || b == b'\\').count()
}

fn push_local(out: &mut String, local: &str, quoted: bool) {
    if !quoted {
        out.push_str(local);
        return;
    }
    for c in local.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests;

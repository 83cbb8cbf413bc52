//! MTA-STS (RFC 8461): what delivery to a domain must respect — which of
//! its MX hosts may take its mail, and whether TLS to them must verify.
//!
//! - Discovery (section 3.1): the TXT records at `_mta-sts.DOMAIN`. Of
//!   those whose first field is `v=STSv1`, exactly one must be left, with
//!   one `id=` of 1 to 32 letters and digits; none, several or a broken
//!   one means the domain has no policy now. A DNS failure is not an
//!   answer: it is temporary, and a cached policy still applies.
//! - The policy (sections 3.2 and 3.3): `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`,
//!   with a certificate that verifies for that name, HTTP 200 only (a
//!   redirect is never followed), `Content-Type: text/plain`, within
//!   `mta_sts.timeout` and `mta_sts.max_policy_size`; read by the strict
//!   parser of [`Policy::parse`].
//! - The cache (section 5.1): policies by domain, with the TXT `id` they
//!   were fetched under and their expiry (`max_age`), in memory and in one
//!   file in the spool directory sealed with the spool key (nothing on
//!   disk names a recipient domain). The same id and an unexpired policy:
//!   no fetch. Another id: fetch; if the fetch fails, an unexpired cached
//!   policy still applies, and without one the domain counts as having
//!   none (section 5.1: "senders SHOULD ... continue with delivery"). A
//!   TXT record that is gone leaves an unexpired cached policy in force.
//!   A failed fetch (or DNS lookup) is held for [`FAILURE_HOLD`], so
//!   every message to a broken domain does not try again.
//! - Application (section 4): mode `enforce` allows only the MX hosts the
//!   policy lists and requires TLS whose certificate verifies for the MX
//!   host name (the caller's TLS checks that); `testing` only reports
//!   mismatches; `none` asks nothing.
//!
//! Time is passed in (`now`), so the cache rules are tested with a fixed
//! clock; fetching is behind [`PolicyFetcher`], so they are tested
//! without HTTP.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::alias::domain_key;
use crate::config::MtaStsConfig;
use crate::dns::{DnsError, DnsLookup};
use crate::mail::text;
use crate::store::sealed_file::SealedFileError;

/// The largest `max_age` a policy may give, in seconds (about a year).
pub const MAX_MAX_AGE: u64 = 31_557_600;
/// How long a failed policy fetch or TXT lookup is remembered, during
/// which the domain is not asked again.
pub const FAILURE_HOLD: Duration = Duration::from_secs(300);
/// Most domains whose policies are kept; when full, expired ones go
/// first, then the one closest to expiry.
pub const MAX_CACHED_DOMAINS: usize = 10_000;
/// The path of the policy on the policy host (section 3.3).
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";
/// The cache file's format, inside the seal.
const CACHE_FORMAT: u32 = 1;
/// Most bytes read from the cache file: every cached policy, with room.
const MAX_CACHE_FILE: u64 = 64 << 20;

// ---------------------------------------------------------------------------
// The policy (RFC 8461 section 3.2)

/// A policy's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to listed MX hosts, over TLS that verifies.
    Enforce,
    /// Deliver as usual; report what enforcing would have refused.
    Testing,
    /// The domain has withdrawn its policy.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// One domain's MTA-STS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// The `mx` patterns, lower-case, in the order given: host names, or
    /// `*.` and a domain for any host one label below it.
    pub mx: Vec<String>,
    /// How long the policy may be cached, in seconds (at most
    /// [`MAX_MAX_AGE`]).
    pub max_age: u64,
}

/// Why a policy file was refused. Values from the file are quoted cut
/// short and without control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is empty")]
    Empty,
    #[error("the policy is not UTF-8 text")]
    NotUtf8,
    #[error("line {line}: not a `key: value` field")]
    Syntax { line: usize },
    #[error("line {line}: {key} is given more than once")]
    Duplicate { line: usize, key: &'static str },
    #[error("the policy has no {0} field")]
    Missing(&'static str),
    #[error("line {line}: version {value:?} is not STSv1")]
    Version { line: usize, value: String },
    #[error("line {line}: mode {value:?} is not enforce, testing or none")]
    Mode { line: usize, value: String },
    #[error("line {line}: max_age {value:?} is not a number of seconds")]
    MaxAge { line: usize, value: String },
    #[error("line {line}: max_age {value} is above {MAX_MAX_AGE}")]
    MaxAgeTooLarge { line: usize, value: u64 },
    #[error("line {line}: mx {value:?} is not a host name or *. and a domain")]
    Mx { line: usize, value: String },
    #[error("the policy has no mx field (only mode none may have none)")]
    NoMx,
}

/// Space and tab: RFC 5234's WSP.
const WSP: [char; 2] = [' ', '\t'];

impl Policy {
    /// Reads a policy file strictly: `version: STSv1`, `mode`, `max_age`
    /// each exactly once, `mx` once or more (none only in mode `none`),
    /// lines ending in LF or CRLF, keys and keywords case-sensitive as
    /// the grammar has them, other well-formed fields ignored. Empty
    /// lines are allowed at the end only.
    pub fn parse(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let text = std::str::from_utf8(bytes).map_err(|_| PolicyError::NotUtf8)?;
        let body = text.trim_end_matches(['\r', '\n']);
        if body.is_empty() {
            return Err(PolicyError::Empty);
        }
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        for (i, raw) in body.split('\n').enumerate() {
            let line = i + 1;
            let field = raw.strip_suffix('\r').unwrap_or(raw);
            let (key, rest) = field.split_once(':').ok_or(PolicyError::Syntax { line })?;
            if !is_field_name(key) || field.chars().any(|c| c.is_control() && c != '\t') {
                return Err(PolicyError::Syntax { line });
            }
            let value = rest.trim_matches(WSP);
            let quoted = || text::bounded(value, 64);
            let once = |seen: bool, key: &'static str| {
                if seen {
                    Err(PolicyError::Duplicate { line, key })
                } else {
                    Ok(())
                }
            };
            match key {
                "version" => {
                    once(version.is_some(), "version")?;
                    if value != "STSv1" {
                        return Err(PolicyError::Version {
                            line,
                            value: quoted(),
                        });
                    }
                    version = Some(());
                }
                "mode" => {
                    once(mode.is_some(), "mode")?;
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        _ => {
                            return Err(PolicyError::Mode {
                                line,
                                value: quoted(),
                            });
                        }
                    });
                }
                "max_age" => {
                    once(max_age.is_some(), "max_age")?;
                    if value.is_empty()
                        || value.len() > 10
                        || !value.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(PolicyError::MaxAge {
                            line,
                            value: quoted(),
                        });
                    }
                    let seconds: u64 = value.parse().map_err(|_| PolicyError::MaxAge {
                        line,
                        value: quoted(),
                    })?;
                    if seconds > MAX_MAX_AGE {
                        return Err(PolicyError::MaxAgeTooLarge {
                            line,
                            value: seconds,
                        });
                    }
                    max_age = Some(seconds);
                }
                "mx" => {
                    let pattern = mx_pattern(value).ok_or_else(|| PolicyError::Mx {
                        line,
                        value: quoted(),
                    })?;
                    mx.push(pattern);
                }
                // An extension: a value is required, its meaning unknown.
                _ if value.is_empty() => return Err(PolicyError::Syntax { line }),
                _ => {}
            }
        }
        version.ok_or(PolicyError::Missing("version"))?;
        let mode = mode.ok_or(PolicyError::Missing("mode"))?;
        let max_age = max_age.ok_or(PolicyError::Missing("max_age"))?;
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::NoMx);
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// True when `mx_host` (any case, with or without the trailing dot)
    /// is one the policy lists: equal to a pattern, or one label below
    /// the domain of a `*.` pattern (section 4.1).
    pub fn matches(&self, mx_host: &str) -> bool {
        let host = mx_host
            .strip_suffix('.')
            .unwrap_or(mx_host)
            .to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }

    /// The policy as a file that [`Policy::parse`] reads back the same.
    pub fn to_text(&self) -> String {
        let mut out = format!("version: STSv1\nmode: {}\n", self.mode.as_str());
        for pattern in &self.mx {
            out.push_str("mx: ");
            out.push_str(pattern);
            out.push('\n');
        }
        out.push_str(&format!("max_age: {}\n", self.max_age));
        out
    }
}

/// `sts-policy-ext-name` (and the names of the known fields): a letter or
/// digit, then up to 31 letters, digits, `_`, `-` and `.`.
fn is_field_name(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// An `mx` value, lower-cased: `["*."] Domain` of RFC 5321.
fn mx_pattern(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let host = lower.strip_prefix("*.").unwrap_or(&lower);
    is_host_name(host).then_some(lower)
}

/// Letters, digits and hyphens in dot-separated labels of 1 to 63, none
/// starting or ending with a hyphen, 253 octets at most.
pub(crate) fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

// ---------------------------------------------------------------------------
// Discovery (RFC 8461 section 3.1)

/// What `_mta-sts.DOMAIN` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// One valid STS record, with this `id`.
    Id(String),
    /// No record starts with `v=STSv1`.
    NoRecord,
    /// This many records start with `v=STSv1`: the domain has no policy.
    Several(usize),
    /// The one STS record is malformed (the reason).
    Invalid(RecordError),
}

/// Why an STS TXT record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the record does not start with v=STSv1")]
    Version,
    #[error("the record has an empty field")]
    EmptyField,
    #[error("the record has a field that is not name=value")]
    Field,
    #[error("the record has no id=")]
    NoId,
    #[error("the record has more than one id=")]
    SeveralIds,
    #[error("the record's id is not 1 to 32 letters and digits")]
    BadId,
}

/// The `id` of an STS TXT record: `v=STSv1`, then `;`-separated
/// `name=value` fields (spaces and tabs around the `;`), one of them
/// `id=` and 1 to 32 letters and digits, and an optional last `;`.
pub fn record_id(record: &str) -> Result<String, RecordError> {
    let mut fields = record.split(';');
    if fields.next().map(|v| v.trim_end_matches(WSP)) != Some("v=STSv1") {
        return Err(RecordError::Version);
    }
    let fields: Vec<&str> = fields.map(|f| f.trim_matches(WSP)).collect();
    let mut id = None;
    for (i, field) in fields.iter().enumerate() {
        if field.is_empty() {
            // Only a last `;` may end the record with nothing after it.
            if i + 1 == fields.len() && i > 0 {
                continue;
            }
            return Err(RecordError::EmptyField);
        }
        let (name, value) = field.split_once('=').ok_or(RecordError::Field)?;
        if !is_field_name(name)
            || value.is_empty()
            || !value
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'=' && b != b';')
        {
            return Err(RecordError::Field);
        }
        if name == "id" {
            if id.is_some() {
                return Err(RecordError::SeveralIds);
            }
            if value.len() > 32 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(RecordError::BadId);
            }
            id = Some(value.to_owned());
        }
    }
    id.ok_or(RecordError::NoId)
}

/// Reads the TXT records at `_mta-sts.DOMAIN` (`domain` already in
/// A-label form). A DNS failure is an error, never "no policy".
pub fn discover(dns: &dyn DnsLookup, domain: &str) -> Result<Discovery, DnsError> {
    let answer = dns.txt(&format!("_mta-sts.{domain}"))?;
    let sts: Vec<&String> = answer
        .records
        .iter()
        .filter(|r| {
            r.split(';')
                .next()
                .is_some_and(|v| v.trim_end_matches(WSP) == "v=STSv1")
        })
        .collect();
    Ok(match sts.as_slice() {
        [] => Discovery::NoRecord,
        [one] => match record_id(one) {
            Ok(id) => Discovery::Id(id),
            Err(e) => Discovery::Invalid(e),
        },
        several => Discovery::Several(several.len()),
    })
}

// ---------------------------------------------------------------------------
// Fetching (RFC 8461 section 3.3)

/// Why a policy could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("the TLS handshake failed: {0}")]
    Tls(String),
    #[error("the server answered HTTP {0}, not 200")]
    Status(u16),
    #[error("the server answered HTTP {status}, a redirect (never followed, RFC 8461 section 3.3)")]
    Redirect { status: u16 },
    #[error("the policy is served as {0:?}, not text/plain")]
    ContentType(String),
    #[error("the policy is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the policy is refused: {0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Transport(String),
}

/// How a policy is fetched: over HTTPS ([`HttpsFetcher`]) or, in tests,
/// from a script.
pub trait PolicyFetcher {
    /// The policy of `domain` (in A-label form), fetched now.
    fn fetch(&self, domain: &str) -> Result<Policy, FetchError>;
}

/// Fetches policies with ureq: certificates verified against the Mozilla
/// roots or `mta_sts.ca_file`, HTTPS only, no redirects, no proxy, one
/// timeout for the whole exchange, the body read up to the size cap.
pub struct HttpsFetcher {
    agent: ureq::Agent,
    timeout: Duration,
    max_size: u64,
}

impl std::fmt::Debug for HttpsFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsFetcher")
            .field("timeout", &self.timeout)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

/// `mta_sts.connect_to`: every host name resolves to this address (for
/// tests: the name still goes into SNI and the certificate check).
#[derive(Debug)]
pub(crate) struct ConnectTo(pub(crate) SocketAddr);

impl ureq::unversioned::resolver::Resolver for ConnectTo {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        addrs.push(self.0);
        Ok(addrs)
    }
}

impl HttpsFetcher {
    pub fn new(config: &MtaStsConfig) -> Result<HttpsFetcher, MtaStsError> {
        let tls = tls_config(config.ca_file.as_deref())?;
        let agent_config = ureq::Agent::config_builder()
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(config.timeout))
            .user_agent("postern-mta-sts")
            .tls_config(tls)
            .build();
        let agent = match &config.connect_to {
            Some(to) => {
                let addr = to
                    .parse::<SocketAddr>()
                    .map_err(|_| MtaStsError::ConnectTo(text::bounded(to, 100)))?;
                ureq::Agent::with_parts(
                    agent_config,
                    ureq::unversioned::transport::DefaultConnector::default(),
                    ConnectTo(addr),
                )
            }
            None => ureq::Agent::new_with_config(agent_config),
        };
        Ok(HttpsFetcher {
            agent,
            timeout: config.timeout,
            max_size: config.max_policy_size,
        })
    }

    /// Where the policy of `domain` is.
    pub fn url(domain: &str) -> String {
        format!("https://mta-sts.{domain}{WELL_KNOWN_PATH}")
    }

    fn error(&self, e: ureq::Error) -> FetchError {
        transport_error(e, self.timeout)
    }
}

/// What a ureq failure means for a fetch that may take `timeout` (the WKD
/// client shares this reading).
pub(crate) fn transport_error(e: ureq::Error, timeout: Duration) -> FetchError {
    match e {
        ureq::Error::Timeout(_) => FetchError::Timeout(timeout),
        ureq::Error::BodyExceedsLimit(n) => FetchError::TooLarge(n),
        ureq::Error::Rustls(e) => FetchError::Tls(text::bounded(&e.to_string(), 200)),
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FetchError::Timeout(timeout),
            // rustls reports a refused certificate through the stream.
            _ => match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(tls) => FetchError::Tls(text::bounded(&tls.to_string(), 200)),
                None => FetchError::Transport(text::bounded(&e.to_string(), 200)),
            },
        },
        other => FetchError::Transport(text::bounded(&other.to_string(), 200)),
    }
}

impl PolicyFetcher for HttpsFetcher {
    fn fetch(&self, domain: &str) -> Result<Policy, FetchError> {
        let mut response = self
            .agent
            .get(HttpsFetcher::url(domain))
            .call()
            .map_err(|e| self.error(e))?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            return Err(FetchError::Redirect { status });
        }
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let content_type = response
            .headers()
            .get(ureq::http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim_matches(WSP);
        if !media.eq_ignore_ascii_case("text/plain") {
            return Err(FetchError::ContentType(text::bounded(&content_type, 64)));
        }
        if response
            .body()
            .content_length()
            .is_some_and(|n| n > self.max_size)
        {
            return Err(FetchError::TooLarge(self.max_size));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_size)
            .read_to_vec()
            .map_err(|e| self.error(e))?;
        Ok(Policy::parse(&body)?)
    }
}

/// The TLS settings of postern's HTTPS clients (MTA-STS, WKD, Launchpad):
/// rustls, certificates always verified, against the Mozilla roots or
/// those of `ca_file`.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, MtaStsError> {
    let roots = match ca_file {
        Some(path) => ureq::tls::RootCerts::new_with_certs(&read_ca_file(path)?),
        None => ureq::tls::RootCerts::WebPki,
    };
    Ok(ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(roots)
        .build())
}

/// The certificates of a PEM file.
pub(crate) fn read_ca_file(
    path: &Path,
) -> Result<Vec<ureq::tls::Certificate<'static>>, MtaStsError> {
    let fail = |reason: String| MtaStsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(fail(text::bounded(&e.to_string(), 200))),
        }
    }
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(certs)
}

// ---------------------------------------------------------------------------
// What delivery must respect

/// What delivery to a domain must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing: no policy, mode `none`, or MTA-STS off.
    None,
    /// Deliver as usual; log the MX hosts and TLS failures that
    /// enforcing would refuse.
    Testing(Policy),
    /// Only MX hosts the policy lists, and only over TLS whose
    /// certificate verifies for the MX host name.
    Enforce(Policy),
}

impl Requirement {
    fn of(policy: &Policy) -> Requirement {
        match policy.mode {
            Mode::Enforce => Requirement::Enforce(policy.clone()),
            Mode::Testing => Requirement::Testing(policy.clone()),
            Mode::None => Requirement::None,
        }
    }

    /// The policy in force, if any.
    pub fn policy(&self) -> Option<&Policy> {
        match self {
            Requirement::None => None,
            Requirement::Testing(p) | Requirement::Enforce(p) => Some(p),
        }
    }

    /// Whether delivery may connect to `mx_host`: always, except under
    /// `Enforce` to a host the policy does not list.
    pub fn allows(&self, mx_host: &str) -> bool {
        match self {
            Requirement::Enforce(p) => p.matches(mx_host),
            _ => true,
        }
    }

    /// Whether TLS with a certificate valid for the MX host name is
    /// required (`Enforce`).
    pub fn requires_verified_tls(&self) -> bool {
        matches!(self, Requirement::Enforce(_))
    }

    /// Whether `mx_host`, or TLS to it that did not verify, is what
    /// `Testing` reports.
    pub fn reports(&self) -> bool {
        matches!(self, Requirement::Testing(_))
    }
}

/// Where a [`Lookup`]'s requirement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `mta_sts.enabled` is off.
    Disabled,
    /// No policy applies (none published, or none could be had).
    NoPolicy,
    /// The cached policy (same id, or the fetch failed, or the record
    /// is gone).
    Cache,
    /// A policy fetched just now.
    Fetched,
}

/// The answer for one domain: the requirement, where it came from, and
/// what went wrong on the way (for the log; a domain, never an address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub requirement: Requirement,
    pub source: Source,
    /// A failed TXT lookup, a broken record, a failed fetch. Reported
    /// once per [`FAILURE_HOLD`]: lookups during the hold carry none.
    pub problem: Option<MtaStsError>,
}

/// A problem with MTA-STS: a setting, or one domain's record or policy.
/// One line that names the setting or the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MtaStsError {
    #[error("mta_sts.ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("mta_sts.connect_to {0:?} is not IP:PORT")]
    ConnectTo(String),
    #[error("MTA-STS: {0:?} is not a domain name")]
    NotADomain(String),
    #[error("MTA-STS for {domain}: {source}")]
    Dns { domain: String, source: DnsError },
    #[error(
        "MTA-STS for {domain}: {count} TXT records at _mta-sts.{domain} start with v=STSv1; the domain has no policy"
    )]
    SeveralRecords { domain: String, count: usize },
    #[error("MTA-STS for {domain}: the TXT record at _mta-sts.{domain} is refused: {reason}")]
    Record { domain: String, reason: RecordError },
    #[error("MTA-STS policy for {domain} could not be fetched: {reason}")]
    Fetch { domain: String, reason: FetchError },
}

// ---------------------------------------------------------------------------
// The cache (RFC 8461 section 5.1)

/// Where the cache persists: a file (in the spool directory) sealed
/// with the spool key.
pub use crate::store::sealed_file::SealedFile as CacheFile;

/// The cache file could not be read or written. Reading fails safe: the
/// cache starts empty and the next save replaces the file.
#[derive(Debug, thiserror::Error)]
#[error("MTA-STS cache {path}: {reason}")]
pub struct CacheError {
    pub path: PathBuf,
    pub reason: CacheFault,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheFault {
    #[error("{0}")]
    File(#[from] SealedFileError),
    #[error("the sealed contents are not a policy cache: {0}")]
    Format(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The TXT record's `id` the policy was fetched under.
    id: String,
    policy: Policy,
    expires: SystemTime,
}

/// The cache file's contents, inside the seal.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    policies: Vec<StoredPolicy>,
}

#[derive(Serialize, Deserialize)]
struct StoredPolicy {
    domain: String,
    id: String,
    /// Unix seconds.
    expires: u64,
    /// As [`Policy::to_text`] writes it: read back by the one parser.
    policy: String,
}

/// MTA-STS for the deliverer: the settings, the policy cache and the
/// fetcher, kept across jobs.
///
/// ```text
/// let mut sts = MtaSts::new(&config.mta_sts, Some(CacheFile { path, key }))?;
/// if let Err(e) = sts.load(now) { log.warning(format_args!("{e}")) }
/// let lookup = sts.lookup(&dns, domain, now);   // before the MX hosts
/// ... deliver: skip hosts !lookup.requirement.allows(host) ...
/// sts.save(now)?;                               // when done
/// ```
pub struct MtaSts<F = HttpsFetcher> {
    enabled: bool,
    fetcher: F,
    file: Option<CacheFile>,
    policies: HashMap<String, Entry>,
    /// Domains whose last fetch or lookup failed, until when.
    held: HashMap<String, SystemTime>,
    /// Policies changed since the last load or save.
    dirty: bool,
}

impl MtaSts<HttpsFetcher> {
    /// From `[mta_sts]`, fetching over HTTPS; the cache persists in
    /// `cache` when given (call [`MtaSts::load`] to read it).
    pub fn new(config: &MtaStsConfig, cache: Option<CacheFile>) -> Result<MtaSts, MtaStsError> {
        Ok(MtaSts::with_fetcher(
            config,
            HttpsFetcher::new(config)?,
            cache,
        ))
    }
}

impl<F: PolicyFetcher> MtaSts<F> {
    /// With another fetcher (tests).
    pub fn with_fetcher(config: &MtaStsConfig, fetcher: F, cache: Option<CacheFile>) -> MtaSts<F> {
        MtaSts {
            enabled: config.enabled,
            fetcher,
            file: cache,
            policies: HashMap::new(),
            held: HashMap::new(),
            dirty: false,
        }
    }

    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }

    /// Domains with a cached policy (expired ones included until pushed
    /// out or the next save).
    pub fn cached(&self) -> usize {
        self.policies.len()
    }

    /// What delivery to `domain` must respect, now.
    pub fn requirement(
        &mut self,
        dns: &dyn DnsLookup,
        domain: &str,
        now: SystemTime,
    ) -> Requirement {
        self.lookup(dns, domain, now).requirement
    }

    /// What delivery to `domain` must respect, now, where that came from,
    /// and what went wrong on the way.
    pub fn lookup(&mut self, dns: &dyn DnsLookup, domain: &str, now: SystemTime) -> Lookup {
        if !self.enabled {
            return Lookup {
                requirement: Requirement::None,
                source: Source::Disabled,
                problem: None,
            };
        }
        let Some(domain) = policy_domain(domain) else {
            return Lookup {
                requirement: Requirement::None,
                source: Source::NoPolicy,
                problem: Some(MtaStsError::NotADomain(text::bounded(domain, 100))),
            };
        };
        if self.held.get(&domain).is_some_and(|until| now < *until) {
            return self.cached_or_none(&domain, now, None);
        }
        let discovery = match discover(dns, &domain) {
            Ok(d) => d,
            Err(source) => {
                self.hold(&domain, now);
                let problem = MtaStsError::Dns {
                    domain: domain.clone(),
                    source,
                };
                return self.cached_or_none(&domain, now, Some(problem));
            }
        };
        let id = match discovery {
            Discovery::Id(id) => id,
            Discovery::NoRecord => return self.cached_or_none(&domain, now, None),
            Discovery::Several(count) => {
                let problem = MtaStsError::SeveralRecords {
                    domain: domain.clone(),
                    count,
                };
                return self.cached_or_none(&domain, now, Some(problem));
            }
            Discovery::Invalid(reason) => {
                let problem = MtaStsError::Record {
                    domain: domain.clone(),
                    reason,
                };
                return self.cached_or_none(&domain, now, Some(problem));
            }
        };
        if let Some(entry) = self.fresh(&domain, now)
            && entry.id == id
        {
            return self.cached_or_none(&domain, now, None);
        }
        match self.fetcher.fetch(&domain) {
            Ok(policy) => {
                let requirement = Requirement::of(&policy);
                let expires = now
                    .checked_add(Duration::from_secs(policy.max_age))
                    .unwrap_or(now);
                self.held.remove(&domain);
                self.keep(
                    domain,
                    Entry {
                        id,
                        policy,
                        expires,
                    },
                    now,
                );
                Lookup {
                    requirement,
                    source: Source::Fetched,
                    problem: None,
                }
            }
            Err(reason) => {
                self.hold(&domain, now);
                let problem = MtaStsError::Fetch {
                    domain: domain.clone(),
                    reason,
                };
                self.cached_or_none(&domain, now, Some(problem))
            }
        }
    }

    fn fresh(&self, domain: &str, now: SystemTime) -> Option<&Entry> {
        self.policies.get(domain).filter(|e| now < e.expires)
    }

    fn cached_or_none(
        &self,
        domain: &str,
        now: SystemTime,
        problem: Option<MtaStsError>,
    ) -> Lookup {
        match self.fresh(domain, now) {
            Some(entry) => Lookup {
                requirement: Requirement::of(&entry.policy),
                source: Source::Cache,
                problem,
            },
            None => Lookup {
                requirement: Requirement::None,
                source: Source::NoPolicy,
                problem,
            },
        }
    }

    fn hold(&mut self, domain: &str, now: SystemTime) {
        if self.held.len() >= MAX_CACHED_DOMAINS {
            self.held.retain(|_, until| now < *until);
        }
        if self.held.len() < MAX_CACHED_DOMAINS {
            self.held.insert(
                domain.to_owned(),
                now.checked_add(FAILURE_HOLD).unwrap_or(now),
            );
        }
    }

    fn keep(&mut self, domain: String, entry: Entry, now: SystemTime) {
        if self.policies.len() >= MAX_CACHED_DOMAINS && !self.policies.contains_key(&domain) {
            self.policies.retain(|_, e| now < e.expires);
            if self.policies.len() >= MAX_CACHED_DOMAINS {
                let soonest = self
                    .policies
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(d, _)| d.clone());
                if let Some(d) = soonest {
                    self.policies.remove(&d);
                }
            }
        }
        self.policies.insert(domain, entry);
        self.dirty = true;
    }

    /// Reads the cache file, replacing what is in memory; expired
    /// policies are left out. A missing file is an empty cache. On an
    /// error (unreadable, sealed under another key, tampered with) the
    /// cache is empty and the next [`MtaSts::save`] replaces the file.
    /// Returns how many policies were read.
    pub fn load(&mut self, now: SystemTime) -> Result<usize, CacheError> {
        let Some(file) = &self.file else {
            return Ok(0);
        };
        self.policies.clear();
        match read_cache(file, now) {
            Ok(policies) => {
                self.policies = policies;
                self.dirty = false;
                Ok(self.policies.len())
            }
            Err(reason) => {
                self.dirty = true;
                Err(CacheError {
                    path: file.path.clone(),
                    reason,
                })
            }
        }
    }

    /// Writes the unexpired policies to the cache file (sealed; replaced
    /// whole, atomically) if they changed since the last load or save.
    /// Returns whether it wrote. Without a cache file, does nothing.
    pub fn save(&mut self, now: SystemTime) -> Result<bool, CacheError> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        if !self.dirty {
            return Ok(false);
        }
        self.policies.retain(|_, e| now < e.expires);
        write_cache(file, &self.policies).map_err(|reason| CacheError {
            path: file.path.clone(),
            reason,
        })?;
        self.dirty = false;
        Ok(true)
    }
}

/// A recipient domain as policies are keyed and fetched: lower-case
/// A-labels of letters, digits and hyphens, no trailing dot, short enough
/// for `mta-sts.` in front.
fn policy_domain(domain: &str) -> Option<String> {
    domain_key(domain).filter(|d| d.len() <= 253 - "mta-sts.".len() && is_host_name(d))
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read_cache(file: &CacheFile, now: SystemTime) -> Result<HashMap<String, Entry>, CacheFault> {
    let Some(plain) = file.read(MAX_CACHE_FILE)? else {
        return Ok(HashMap::new());
    };
    let stored: Stored = serde_json::from_slice(&plain)
        .map_err(|e| CacheFault::Format(text::bounded(&e.to_string(), 200)))?;
    if stored.format != CACHE_FORMAT {
        return Err(CacheFault::Format(format!(
            "format {} (this postern reads {CACHE_FORMAT})",
            stored.format
        )));
    }
    let latest = now
        .checked_add(Duration::from_secs(MAX_MAX_AGE))
        .unwrap_or(now);
    let mut policies = HashMap::new();
    for s in stored.policies {
        let policy = Policy::parse(s.policy.as_bytes())
            .map_err(|e| CacheFault::Format(format!("a cached policy: {e}")))?;
        let domain = policy_domain(&s.domain)
            .filter(|d| *d == s.domain)
            .ok_or_else(|| CacheFault::Format("a cached domain is not a domain name".into()))?;
        if s.id.is_empty() || s.id.len() > 32 || !s.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CacheFault::Format("a cached id is not an STS id".into()));
        }
        // A clock set back must not make a policy outlive its max_age.
        let expires = (SystemTime::UNIX_EPOCH + Duration::from_secs(s.expires)).min(latest);
        if now < expires && policies.len() < MAX_CACHED_DOMAINS {
            policies.insert(
                domain,
                Entry {
                    id: s.id,
                    policy,
                    expires,
                },
            );
        }
    }
    Ok(policies)
}

fn write_cache(file: &CacheFile, policies: &HashMap<String, Entry>) -> Result<(), CacheFault> {
    let mut stored = Stored {
        format: CACHE_FORMAT,
        policies: policies
            .iter()
            .map(|(domain, e)| StoredPolicy {
                domain: domain.clone(),
                id: e.id.clone(),
                expires: unix_seconds(e.expires),
                policy: e.policy.to_text(),
            })
            .collect(),
    };
    stored.policies.sort_by(|a, b| a.domain.cmp(&b.domain));
    let plain = zeroize::Zeroizing::new(
        serde_json::to_vec(&stored).map_err(|e| CacheFault::Format(e.to_string()))?,
    );
    file.write(&plain)?;
    Ok(())
}

#[cfg(test)]
mod tests;

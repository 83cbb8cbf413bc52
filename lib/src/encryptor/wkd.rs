//! Web Key Directory lookups (draft-koch-openpgp-webkey-service, section
//! 3.1): the OpenPGP key a domain publishes for one of its addresses,
//! fetched over HTTPS, for postern-encryptor.
//!
//! - The key's name ([`hashed_local_part`]): the SHA-1 of the local part,
//!   ASCII letters lower-cased, in z-base-32 (RFC 6189 section 5.1.6).
//! - Two places ([`urls`]): the advanced method,
//!   `https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL`,
//!   then the direct method, `https://DOMAIN/.well-known/openpgpkey/hu/HASH?l=LOCAL`.
//!   `l` is the local part unchanged, percent-encoded.
//! - When the direct method is asked: only when the advanced one says
//!   "no key" — its host does not exist in DNS (the draft's case), it
//!   answers 404 or 410 (a wildcard DNS record or a web host without the
//!   directory: what gpg also falls back on), or it serves an empty file.
//!   Any other failure of the advanced host (a timeout, a TLS failure, a
//!   5xx, too many redirects, a private address) is the answer: a domain
//!   that set up `openpgpkey.DOMAIN` has chosen that method, and a failure
//!   there must be reported, not masked by what the bare domain's web
//!   server happens to say. (A redirect to a host that does not exist
//!   reads as "no such host" too: ureq does not say which hop it was.)
//! - "No such host" is getaddrinfo's EAI_NONAME or EAI_NODATA, which std
//!   gives only as text (its message is matched); a temporary DNS failure
//!   makes the lookup unavailable.
//! - One time limit, `wkd.timeout`, for the whole lookup: both methods
//!   and every redirect; the second request gets what the first left.
//! - Every request: HTTPS only (a redirect to `http://` is refused),
//!   certificates verified (Mozilla roots or `wkd.ca_file`), no proxy, at
//!   most `wkd.max_redirects` redirects, the body read up to
//!   `wkd.max_size` and no further, HTTP 200 only counts.
//! - No request reaches a loopback, private, link-local, shared (CGNAT),
//!   multicast, reserved or documentation address ([`is_private_address`]):
//!   every name, redirect targets included, is resolved and refused if any
//!   of its addresses is one, unless `wkd.allow_private_addresses` (tests).
//!
//! The answer ([`Lookup`]) is a key, "no key" or "unavailable" with one
//! line of reason that never holds the address. [`WkdCache`] keeps answers
//! by address (keys `wkd.cache_time`, the rest `wkd.negative_cache_time`)
//! and is (de)serialized by the encryptor into a sealed file. Nothing here
//! logs; time is passed in to the cache; the HTTP side is behind
//! [`KeyDirectory`], so the cache is tested without it.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};

use crate::alias::domain_key;
use crate::config::WkdConfig;
use crate::deliverer::mta_sts::{self, ConnectTo, MtaStsError};
use crate::mail::text;

/// The directory's path on both hosts.
pub const WELL_KNOWN_PATH: &str = "/.well-known/openpgpkey";
/// Most addresses a [`WkdCache`] keeps; past it the oldest entry goes.
pub const MAX_CACHED_ADDRESSES: usize = 10_000;
/// Most key bytes a [`WkdCache`] keeps, all entries together; past it
/// the oldest entries go.
pub const MAX_CACHED_BYTES: u64 = 64 << 20;
/// The cache's serialized format.
const CACHE_FORMAT: u32 = 1;
/// Longest reason kept for an unavailable directory.
const MAX_REASON: usize = 300;
/// z-base-32's alphabet (RFC 6189 section 5.1.6).
const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

// ---------------------------------------------------------------------------
// Names and URLs (section 3.1)

/// z-base-32 of the SHA-1 of the local part with its ASCII letters
/// lower-cased (other characters stay as they are, as the draft says).
pub fn hashed_local_part(local: &str) -> String {
    zbase32(&Sha1::digest(local.to_ascii_lowercase().as_bytes()))
}

/// z-base-32, most significant bits first, no padding.
fn zbase32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ZBASE32[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ZBASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The advanced URL and the direct one for `local@domain`. `domain` is
/// lower-cased and otherwise used as given (A-labels: [`WkdClient`]
/// converts before it calls this); `l` is `local` with everything but
/// letters, digits and `-._~` percent-encoded (UTF-8).
pub fn urls(local: &str, domain: &str) -> (String, String) {
    let domain = domain.to_ascii_lowercase();
    let hash = hashed_local_part(local);
    let l = text::percent_encode(local, |_, c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
    });
    (
        format!("https://openpgpkey.{domain}{WELL_KNOWN_PATH}/{domain}/hu/{hash}?l={l}"),
        format!("https://{domain}{WELL_KNOWN_PATH}/hu/{hash}?l={l}"),
    )
}

/// `domain` as WKD hosts are named: lower-case A-labels of letters,
/// digits and hyphens, no trailing dot, short enough for `openpgpkey.`
/// in front. `None` for an address literal or anything else.
fn wkd_domain(domain: &str) -> Option<String> {
    domain_key(domain).filter(|d| d.len() <= 253 - "openpgpkey.".len() && mta_sts::is_host_name(d))
}

// ---------------------------------------------------------------------------
// Addresses a lookup must not reach

/// True for an address a key lookup must not connect to: unspecified,
/// "this network" (0/8), loopback, private (RFC 1918), shared (CGNAT,
/// 100.64/10), link-local, IETF protocol assignments (192.0.0/24),
/// benchmarking (198.18/15), documentation, multicast, reserved (240/4)
/// and broadcast; for IPv6 also unique-local (fc00::/7), site-local,
/// discard-only (100::/64), documentation (2001:db8::/32, 3fff::/20), the
/// IPv4-compatible ::/96, and IPv4 addresses embedded in IPv4-mapped,
/// NAT64 (64:ff9b::/96; 64:ff9b:1::/48 is local-use) and 6to4 addresses.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    o0 == 0
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || (o0 == 100 && (o1 & 0xc0) == 64)
        || (o0 == 192 && o1 == 0 && o2 == 0)
        || (o0 == 198 && (o1 & 0xfe) == 18)
        || a.is_documentation()
        || a.is_multicast()
        || o0 >= 240
}

fn is_private_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    let s = a.segments();
    let embedded =
        |hi: u16, lo: u16| is_private_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    s[..6].iter().all(|&x| x == 0) // ::/96: unspecified, loopback, IPv4-compatible
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x0100 && s[1..4].iter().all(|&x| x == 0))
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x3fff && s[1] < 0x1000)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) && embedded(s[6], s[7]))
        || (s[0] == 0x2002 && embedded(s[1], s[2]))
}

// ---------------------------------------------------------------------------
// Lookups

/// What a directory says about one address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lookup {
    /// The key file as served (binary or armored; not parsed here).
    Found(#[serde(with = "key_bytes")] Vec<u8>),
    /// The domain has no key for the address: no such host, 404 or 410,
    /// an empty file, or a domain that cannot have a directory.
    NotFound,
    /// The directory could not be asked: one line, naming the host and
    /// the reason, never the address.
    Unavailable(String),
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Found(key) => write!(f, "Found({} bytes)", key.len()),
            Lookup::NotFound => f.write_str("NotFound"),
            Lookup::Unavailable(why) => write!(f, "Unavailable({why:?})"),
        }
    }
}

/// Where keys are looked up: over HTTPS ([`WkdClient`]) or, in tests, a
/// script.
pub trait KeyDirectory {
    /// The key of `local@domain`, asked now.
    fn lookup(&self, local: &str, domain: &str) -> Lookup;
}

/// A WKD setting that cannot be used, or a cache that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WkdError {
    #[error("wkd.ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("wkd.connect_to {0:?} is not IP:PORT")]
    ConnectTo(String),
    #[error("the WKD cache is unreadable: {0}")]
    Cache(String),
}

/// What one request said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Key(Vec<u8>),
    /// DNS has no such host name.
    NoSuchHost,
    /// 404, 410 or an empty body.
    NoKey,
    /// Anything else: the reason, without the host.
    Failed(String),
}

/// The two methods in order, within `timeout` all told: `elapsed` says
/// how much has gone, `get(url, budget)` makes one request (redirects
/// included) that may take `budget`. The decision of the module doc,
/// apart from the I/O.
fn by_methods(
    local: &str,
    domain: &str,
    timeout: Duration,
    elapsed: impl Fn() -> Duration,
    mut get: impl FnMut(&str, Duration) -> Answer,
) -> Lookup {
    let Some(domain) = wkd_domain(domain) else {
        return Lookup::NotFound;
    };
    if local.is_empty() {
        return Lookup::NotFound;
    }
    let (advanced, direct) = urls(local, &domain);
    let unavailable = |host: &str, why: &str| {
        Lookup::Unavailable(text::bounded(&format!("{host}: {why}"), MAX_REASON))
    };
    let timed_out = |host: &str| {
        unavailable(
            host,
            &format!("no answer within {}", humantime::format_duration(timeout)),
        )
    };
    let advanced_host = format!("openpgpkey.{domain}");
    let budget = timeout.saturating_sub(elapsed());
    if budget.is_zero() {
        return timed_out(&advanced_host);
    }
    match get(&advanced, budget) {
        Answer::Key(key) => return Lookup::Found(key),
        Answer::Failed(why) => return unavailable(&advanced_host, &why),
        Answer::NoSuchHost | Answer::NoKey => {}
    }
    let budget = timeout.saturating_sub(elapsed());
    if budget.is_zero() {
        return timed_out(&domain);
    }
    match get(&direct, budget) {
        Answer::Key(key) => Lookup::Found(key),
        Answer::NoSuchHost | Answer::NoKey => Lookup::NotFound,
        Answer::Failed(why) => unavailable(&domain, &why),
    }
}

/// Looks keys up over HTTPS with ureq (see the module doc for the rules).
pub struct WkdClient {
    agent: ureq::Agent,
    timeout: Duration,
    max_size: u64,
}

impl std::fmt::Debug for WkdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WkdClient")
            .field("timeout", &self.timeout)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

/// The resolver under the guard: the system's (getaddrinfo), or
/// `wkd.connect_to` for every name.
#[derive(Debug)]
enum Names {
    System(DefaultResolver),
    ConnectTo(ConnectTo),
}

/// Resolves every name a request connects to (redirect targets too) and
/// refuses private addresses; tells "no such host" apart.
#[derive(Debug)]
struct AddressGuard {
    names: Names,
    allow_private: bool,
}

/// The error [`AddressGuard`] refuses a name with.
#[derive(Debug, thiserror::Error)]
#[error("resolves to a private address")]
struct PrivateAddress;

impl Resolver for AddressGuard {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = match &self.names {
            Names::System(r) => r.resolve(uri, config, timeout),
            Names::ConnectTo(r) => r.resolve(uri, config, timeout),
        }
        .map_err(|e| match e {
            ureq::Error::Io(io) if is_no_such_name(&io) => ureq::Error::HostNotFound,
            other => other,
        })?;
        if !self.allow_private && addrs.iter().any(|a| is_private_address(a.ip())) {
            return Err(ureq::Error::Other(Box::new(PrivateAddress)));
        }
        Ok(addrs)
    }
}

/// getaddrinfo's "no such name" (EAI_NONAME) and "no address for it"
/// (EAI_NODATA). std reports them only as text (gai_strerror), so the
/// text is matched: glibc's, then musl's. A temporary failure
/// (EAI_AGAIN) is not one of them: it makes the lookup unavailable.
fn is_no_such_name(e: &io::Error) -> bool {
    let message = e.to_string();
    [
        "Name or service not known",
        "No address associated with hostname",
        "Name does not resolve",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl WkdClient {
    /// From `[wkd]`. `wkd.enabled` is not read here: whether to look up
    /// at all is the caller's decision.
    pub fn new(config: &WkdConfig) -> Result<WkdClient, WkdError> {
        let tls = mta_sts::tls_config(config.ca_file.as_deref()).map_err(|e| WkdError::CaFile {
            path: config.ca_file.clone().unwrap_or_default(),
            reason: match e {
                MtaStsError::CaFile { reason, .. } => reason,
                other => other.to_string(),
            },
        })?;
        let agent_config = ureq::Agent::config_builder()
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(config.max_redirects)
            .max_redirects_will_error(true)
            .proxy(None)
            .timeout_global(Some(config.timeout))
            .user_agent("postern-wkd")
            .tls_config(tls)
            .build();
        let names = match &config.connect_to {
            Some(to) => Names::ConnectTo(ConnectTo(
                to.parse::<SocketAddr>()
                    .map_err(|_| WkdError::ConnectTo(text::bounded(to, 100)))?,
            )),
            None => Names::System(DefaultResolver::default()),
        };
        let agent = ureq::Agent::with_parts(
            agent_config,
            ureq::unversioned::transport::DefaultConnector::default(),
            AddressGuard {
                names,
                allow_private: config.allow_private_addresses,
            },
        );
        Ok(WkdClient {
            agent,
            timeout: config.timeout,
            max_size: config.max_size,
        })
    }

    /// One GET of `url`, redirects included, within `budget`.
    fn get(&self, url: &str, budget: Duration) -> Answer {
        let mut response = match self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(budget))
            .build()
            .call()
        {
            Ok(r) => r,
            Err(e) => return self.error(e),
        };
        match response.status().as_u16() {
            200 => {}
            404 | 410 => return Answer::NoKey,
            status => return Answer::Failed(format!("the server answered HTTP {status}")),
        }
        if response
            .body()
            .content_length()
            .is_some_and(|n| n > self.max_size)
        {
            return self.too_large();
        }
        match response
            .body_mut()
            .with_config()
            .limit(self.max_size)
            .read_to_vec()
        {
            Ok(key) if key.is_empty() => Answer::NoKey,
            Ok(key) => Answer::Key(key),
            Err(e) => self.error(e),
        }
    }

    fn too_large(&self) -> Answer {
        Answer::Failed(format!("the key is larger than {} bytes", self.max_size))
    }

    /// A failed request. The reasons name no URL: it holds the address.
    fn error(&self, e: ureq::Error) -> Answer {
        match e {
            ureq::Error::HostNotFound => Answer::NoSuchHost,
            ureq::Error::Other(inner) if inner.is::<PrivateAddress>() => {
                Answer::Failed(PrivateAddress.to_string())
            }
            ureq::Error::TooManyRedirects => Answer::Failed("too many redirects".into()),
            ureq::Error::RequireHttpsOnly(_) => {
                Answer::Failed("redirected to a URL that is not https".into())
            }
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                Answer::Failed("redirected to a URL that is not valid".into())
            }
            ureq::Error::BodyExceedsLimit(_) => self.too_large(),
            other => Answer::Failed(mta_sts::transport_error(other, self.timeout).to_string()),
        }
    }
}

impl KeyDirectory for WkdClient {
    fn lookup(&self, local: &str, domain: &str) -> Lookup {
        let start = Instant::now();
        by_methods(
            local,
            domain,
            self.timeout,
            || start.elapsed(),
            |url, budget| self.get(url, budget),
        )
    }
}

// ---------------------------------------------------------------------------
// The cache

/// Lookups by address, each until it expires: keys for `wkd.cache_time`,
/// "no key" and "unavailable" for `wkd.negative_cache_time`. At most
/// [`MAX_CACHED_ADDRESSES`] entries and [`MAX_CACHED_BYTES`] of keys;
/// past either, expired entries go, then the oldest.
///
/// ```text
/// let mut cache = WkdCache::from_bytes(&opened).unwrap_or_default(); // log the error
/// let lookup = cache.lookup(&client, local, domain, now, &config.wkd);
/// ... seal(cache.to_bytes()) ...
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WkdCache {
    entries: BTreeMap<String, CachedLookup>,
    /// The sum of the entries' [`CachedLookup::bytes`] (recounted when
    /// read back).
    #[serde(skip)]
    bytes: u64,
}

/// One cached lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLookup {
    pub lookup: Lookup,
    /// When it was stored, Unix seconds.
    pub stored: u64,
    /// When it expires, Unix seconds.
    pub expires: u64,
}

impl CachedLookup {
    /// Stored no later than `now` (a clock set back expires everything)
    /// and not yet expired.
    fn fresh(&self, now: u64) -> bool {
        self.stored <= now && now < self.expires
    }

    fn bytes(&self) -> u64 {
        match &self.lookup {
            Lookup::Found(key) => key.len() as u64,
            Lookup::NotFound => 0,
            Lookup::Unavailable(why) => why.len() as u64,
        }
    }
}

/// The serialized cache.
#[derive(Serialize)]
struct StoredRef<'a> {
    format: u32,
    cache: &'a WkdCache,
}

#[derive(Deserialize)]
struct Stored {
    format: u32,
    cache: WkdCache,
}

impl WkdCache {
    /// Entries held, expired ones included until pushed out.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The unexpired lookup of `address` (`local@domain`; the domain in
    /// any case, U-labels or A-labels).
    pub fn get(&self, address: &str, now: SystemTime) -> Option<&Lookup> {
        self.entries
            .get(&address_key(address))
            .filter(|e| e.fresh(unix_seconds(now)))
            .map(|e| &e.lookup)
    }

    /// Keeps `lookup` for `address` from `now`: for `wkd.cache_time` if
    /// it found a key, else for `wkd.negative_cache_time` (0 s: not kept).
    pub fn put(&mut self, address: &str, lookup: Lookup, now: SystemTime, config: &WkdConfig) {
        let keep = match lookup {
            Lookup::Found(_) => config.cache_time,
            Lookup::NotFound | Lookup::Unavailable(_) => config.negative_cache_time,
        };
        let lookup = match lookup {
            Lookup::Unavailable(why) => Lookup::Unavailable(text::bounded(&why, MAX_REASON)),
            other => other,
        };
        let key = address_key(address);
        self.remove(&key);
        let now = unix_seconds(now);
        let entry = CachedLookup {
            lookup,
            stored: now,
            expires: now.saturating_add(keep.as_secs()),
        };
        if keep.as_secs() == 0 || entry.bytes() > MAX_CACHED_BYTES {
            return;
        }
        self.make_room(now, entry.bytes());
        self.bytes += entry.bytes();
        self.entries.insert(key, entry);
    }

    /// The cached lookup of `local@domain`, or one asked of `directory`
    /// now and kept.
    pub fn lookup(
        &mut self,
        directory: &(impl KeyDirectory + ?Sized),
        local: &str,
        domain: &str,
        now: SystemTime,
        config: &WkdConfig,
    ) -> Lookup {
        let address = format!("{local}@{domain}");
        if let Some(cached) = self.get(&address, now) {
            return cached.clone();
        }
        let lookup = directory.lookup(local, domain);
        self.put(&address, lookup.clone(), now, config);
        lookup
    }

    /// Room for one more entry of `bytes`: expired entries out if full,
    /// then the oldest until it fits.
    fn make_room(&mut self, now: u64, bytes: u64) {
        let fits = |cache: &WkdCache| {
            cache.entries.len() < MAX_CACHED_ADDRESSES && cache.bytes + bytes <= MAX_CACHED_BYTES
        };
        if fits(self) {
            return;
        }
        self.entries.retain(|_, e| e.fresh(now));
        self.bytes = self.entries.values().map(CachedLookup::bytes).sum();
        while !fits(self) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.stored)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.remove(&k),
                None => return,
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(e.bytes());
        }
    }

    /// The cache as bytes for the encryptor to seal (JSON, keys in base64).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Cannot fail: string keys, no floats, no custom serializer that errs.
        serde_json::to_vec(&StoredRef {
            format: CACHE_FORMAT,
            cache: self,
        })
        .unwrap_or_default()
    }

    /// A cache from [`WkdCache::to_bytes`]. Anything else (another
    /// format, too many entries, a malformed entry) is an error: the
    /// caller logs it and starts with an empty cache.
    pub fn from_bytes(bytes: &[u8]) -> Result<WkdCache, WkdError> {
        let fail = |why: String| WkdError::Cache(why);
        let stored: Stored =
            serde_json::from_slice(bytes).map_err(|e| fail(text::bounded(&e.to_string(), 200)))?;
        if stored.format != CACHE_FORMAT {
            return Err(fail(format!(
                "format {} (this postern reads {CACHE_FORMAT})",
                stored.format
            )));
        }
        let mut cache = stored.cache;
        if cache.entries.len() > MAX_CACHED_ADDRESSES {
            return Err(fail(format!("more than {MAX_CACHED_ADDRESSES} addresses")));
        }
        cache.bytes = cache.entries.values().map(CachedLookup::bytes).sum();
        if cache.bytes > MAX_CACHED_BYTES {
            return Err(fail(format!("more than {MAX_CACHED_BYTES} bytes of keys")));
        }
        for (address, e) in &cache.entries {
            let bad = !address.contains('@')
                || address_key(address) != *address
                || e.expires < e.stored
                || matches!(&e.lookup, Lookup::Found(key) if key.is_empty())
                || matches!(&e.lookup, Lookup::Unavailable(why) if why.len() > MAX_REASON);
            if bad {
                return Err(fail("an entry is malformed".into()));
            }
        }
        Ok(cache)
    }
}

/// `local@domain` as the cache keys it: the local part as given, the
/// domain lower-case in A-labels (as given when it is not a domain name).
fn address_key(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!(
            "{local}@{}",
            domain_key(domain).unwrap_or_else(|| domain.to_ascii_lowercase())
        ),
        None => address.to_owned(),
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Key bytes in the cache's JSON as base64.
pub(crate) mod key_bytes {
    use data_encoding::BASE64;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text.as_bytes()).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests;

//! The DNS side of alias resolution: a domain's alias TXT records
//! (`alias::txt`), looked up through [`DnsLookup`], parsed, and cached per
//! domain — the [`TxtSource`] the rewriter holds across jobs.
//!
//! - TXT records count only for a domain with an MX record that is not a
//!   null MX (RFC 7505), as with Forward Email: a domain that takes no
//!   mail publishes no aliases. The MX is asked first; without one the
//!   TXT query is not made.
//! - An answer (rules, or `None`) is kept for the smaller of its TTLs (MX
//!   and TXT) and `dns.max_cache_ttl`; a TTL of 0 is not kept.
//! - A failure (SERVFAIL, timeout...) is never kept as an answer. It is
//!   kept as a failure for [`FAILURE_HOLD`] (at most `max_cache_ttl`), so
//!   a job with a hundred recipients at a domain whose DNS is down waits
//!   `timeout × attempts` once, not a hundred times; each of them is
//!   deferred (4.4.3) and retried later.
//! - At most [`MAX_CACHE_ENTRIES`] domains are kept (by default): when
//!   full, expired entries go first, then the one closest to expiry.
//!
//! Time comes from a clock that tests replace ([`DnsRecords::with_clock`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::txt::{self, TxtKey, TxtKeyError};
use super::{LookupError, Published, TxtSource, domain_key};
use crate::config::{AliasesConfig, DnsConfig};
use crate::dns::{DnsError, DnsLookup};

/// Most domains whose answers are kept.
pub const MAX_CACHE_ENTRIES: usize = 10_000;
/// How long a failed lookup is remembered as failed.
pub const FAILURE_HOLD: Duration = Duration::from_secs(30);

type Outcome = Result<Option<Arc<Published>>, LookupError>;

struct Cached {
    outcome: Outcome,
    until: Instant,
}

/// Alias TXT records by domain, through `D` (the real client,
/// `crate::dns::DnsClient`, or a stand-in in tests), cached.
pub struct DnsRecords<D> {
    dns: D,
    prefixes: Vec<String>,
    key: Option<TxtKey>,
    max_ttl: Duration,
    capacity: usize,
    clock: Box<dyn Fn() -> Instant + Send>,
    cache: HashMap<String, Cached>,
}

impl<D: DnsLookup> DnsRecords<D> {
    /// Reads records with these prefixes (`aliases.txt_prefixes`),
    /// decrypting encrypted values with `key`, keeping answers at most
    /// `max_cache_ttl` (`dns.max_cache_ttl`; 0: nothing is kept).
    pub fn new(
        dns: D,
        prefixes: Vec<String>,
        key: Option<TxtKey>,
        max_cache_ttl: Duration,
    ) -> DnsRecords<D> {
        DnsRecords {
            dns,
            prefixes,
            key,
            max_ttl: max_cache_ttl,
            capacity: MAX_CACHE_ENTRIES,
            clock: Box::new(Instant::now),
            cache: HashMap::new(),
        }
    }

    /// From the `[aliases]` and `[dns]` tables: reads
    /// `aliases.txt_key_file` when one is set.
    pub fn from_config(
        dns: D,
        aliases: &AliasesConfig,
        dns_config: &DnsConfig,
    ) -> Result<DnsRecords<D>, TxtKeyError> {
        let key = aliases
            .txt_key_file
            .as_deref()
            .map(TxtKey::load)
            .transpose()?;
        Ok(DnsRecords::new(
            dns,
            aliases.txt_prefixes.clone(),
            key,
            dns_config.max_cache_ttl,
        ))
    }

    /// The clock the cache reads (tests age entries with it).
    pub fn with_clock(mut self, clock: impl Fn() -> Instant + Send + 'static) -> DnsRecords<D> {
        self.clock = Box::new(clock);
        self
    }

    /// Keeps at most `entries` domains (at least one).
    pub fn with_capacity(mut self, entries: usize) -> DnsRecords<D> {
        self.capacity = entries.max(1);
        self
    }

    /// Domains in the cache now (expired ones included until pushed out).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    pub fn dns(&self) -> &D {
        &self.dns
    }

    /// Asks DNS: the outcome and how long it may be kept.
    fn fetch(&self, domain: &str) -> (Outcome, Duration) {
        let mx = match self.dns.mx(domain) {
            Ok(mx) => mx,
            Err(e) => return (Err(lookup_error(domain, &e)), FAILURE_HOLD),
        };
        if !mx.accepts_mail() {
            return (Ok(None), mx.ttl);
        }
        let answer = match self.dns.txt(domain) {
            Ok(answer) => answer,
            Err(e) => return (Err(lookup_error(domain, &e)), FAILURE_HOLD),
        };
        let published = txt::parse(&answer.records, &self.prefixes, self.key.as_ref());
        (Ok(published.map(Arc::new)), mx.ttl.min(answer.ttl))
    }

    fn keep(&mut self, domain: String, outcome: Outcome, until: Instant, now: Instant) {
        if self.cache.len() >= self.capacity && !self.cache.contains_key(&domain) {
            self.cache.retain(|_, c| c.until > now);
            if self.cache.len() >= self.capacity {
                let soonest = self
                    .cache
                    .iter()
                    .min_by_key(|(_, c)| c.until)
                    .map(|(d, _)| d.clone());
                if let Some(d) = soonest {
                    self.cache.remove(&d);
                }
            }
        }
        self.cache.insert(domain, Cached { outcome, until });
    }
}

impl<D: DnsLookup> TxtSource for DnsRecords<D> {
    fn published(&mut self, domain: &str) -> Outcome {
        // Not a domain name: it publishes nothing.
        let Some(domain) = domain_key(domain) else {
            return Ok(None);
        };
        let now = (self.clock)();
        if let Some(c) = self.cache.get(&domain)
            && now < c.until
        {
            return c.outcome.clone();
        }
        let (outcome, ttl) = self.fetch(&domain);
        let hold = ttl.min(self.max_ttl);
        match now.checked_add(hold) {
            Some(until) if !hold.is_zero() => self.keep(domain, outcome.clone(), until, now),
            _ => {
                self.cache.remove(&domain);
            }
        }
        outcome
    }
}

fn lookup_error(domain: &str, e: &DnsError) -> LookupError {
    LookupError {
        domain: domain.to_owned(),
        reason: format!("{} ({} query)", e.reason, e.kind),
    }
}

/// The `postern-site-verification=` tokens `domain` publishes, asked
/// fresh (never from a cache: `postern-alias domain verify` runs right
/// after the owner changed the record).
pub fn verification_tokens(dns: &impl DnsLookup, domain: &str) -> Result<Vec<String>, LookupError> {
    let Some(domain) = domain_key(domain) else {
        return Ok(Vec::new());
    };
    let answer = dns.txt(&domain).map_err(|e| lookup_error(&domain, &e))?;
    Ok(txt::verification_tokens(&answer.records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Answer, DnsFailure, Mx, MxHost};
    use std::cell::RefCell;
    use std::sync::Mutex;

    /// A stand-in for DNS: fixed answers per domain, queries counted.
    #[derive(Default)]
    struct Fake {
        mx: HashMap<String, Result<Mx, DnsFailure>>,
        txt: HashMap<String, Result<Answer, DnsFailure>>,
        asked: RefCell<Vec<String>>,
    }

    impl Fake {
        fn domain(mut self, domain: &str, mx_ttl: u64, records: &[&str], txt_ttl: u64) -> Fake {
            self.mx.insert(
                domain.into(),
                Ok(Mx {
                    hosts: vec![MxHost {
                        preference: 10,
                        exchange: format!("mx.{domain}"),
                    }],
                    null: false,
                    ttl: Duration::from_secs(mx_ttl),
                }),
            );
            self.txt.insert(
                domain.into(),
                Ok(Answer {
                    records: records.iter().map(|r| r.to_string()).collect(),
                    ttl: Duration::from_secs(txt_ttl),
                }),
            );
            self
        }

        fn asked(&self) -> Vec<String> {
            self.asked.borrow().clone()
        }
    }

    impl DnsLookup for Fake {
        fn txt(&self, name: &str) -> Result<Answer, DnsError> {
            self.asked.borrow_mut().push(format!("TXT {name}"));
            match self.txt.get(name) {
                Some(Ok(a)) => Ok(a.clone()),
                Some(Err(f)) => Err(DnsError {
                    name: name.into(),
                    kind: "TXT",
                    reason: f.clone(),
                }),
                None => Ok(Answer::default()),
            }
        }

        fn mx(&self, domain: &str) -> Result<Mx, DnsError> {
            self.asked.borrow_mut().push(format!("MX {domain}"));
            match self.mx.get(domain) {
                Some(Ok(m)) => Ok(m.clone()),
                Some(Err(f)) => Err(DnsError {
                    name: domain.into(),
                    kind: "MX",
                    reason: f.clone(),
                }),
                None => Ok(Mx::default()),
            }
        }
    }

    /// A clock tests move by hand.
    fn clock() -> (Arc<Mutex<Instant>>, impl Fn() -> Instant + Send + 'static) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        (now, move || *read.lock().unwrap())
    }

    fn advance(now: &Mutex<Instant>, secs: u64) {
        let mut t = now.lock().unwrap();
        *t += Duration::from_secs(secs);
    }

    fn records(fake: Fake) -> (DnsRecords<Fake>, Arc<Mutex<Instant>>) {
        let (now, read) = clock();
        let r = DnsRecords::new(
            fake,
            vec!["forward-email".into(), "postern".into()],
            None,
            Duration::from_secs(3600),
        )
        .with_clock(read);
        (r, now)
    }

    #[test]
    fn answers_are_kept_for_the_smaller_ttl() {
        let fake =
            Fake::default().domain("example.org", 300, &["forward-email=a:b@example.net"], 60);
        let (mut r, now) = records(fake);
        let first = r.published("Example.ORG.").unwrap().unwrap();
        assert_eq!(first.rules.len(), 1);
        assert_eq!(r.dns().asked(), ["MX example.org", "TXT example.org"]);
        advance(&now, 59);
        assert_eq!(r.published("example.org").unwrap(), Some(first));
        assert_eq!(r.dns().asked().len(), 2, "served from the cache");
        advance(&now, 1);
        r.published("example.org").unwrap();
        assert_eq!(r.dns().asked().len(), 4, "asked again once the TTL passed");
    }

    #[test]
    fn max_cache_ttl_caps_and_zero_keeps_nothing() {
        let fake =
            Fake::default().domain("example.org", 86400, &["postern=a:b@example.net"], 86400);
        let (now, read) = clock();
        let mut r = DnsRecords::new(fake, vec!["postern".into()], None, Duration::from_secs(10))
            .with_clock(read);
        r.published("example.org").unwrap();
        advance(&now, 9);
        r.published("example.org").unwrap();
        assert_eq!(r.dns().asked().len(), 2);
        advance(&now, 1);
        r.published("example.org").unwrap();
        assert_eq!(r.dns().asked().len(), 4);

        let fake = Fake::default().domain("example.org", 300, &["postern=a:b@example.net"], 300);
        let mut r = DnsRecords::new(fake, vec!["postern".into()], None, Duration::ZERO);
        r.published("example.org").unwrap();
        r.published("example.org").unwrap();
        assert_eq!(r.dns().asked().len(), 4);
        assert_eq!(r.cached(), 0);
    }

    #[test]
    fn without_mx_txt_is_not_asked() {
        let mut fake =
            Fake::default().domain("example.org", 300, &["forward-email=a:b@example.net"], 300);
        fake.mx.insert(
            "example.org".into(),
            Ok(Mx {
                hosts: vec![],
                null: true,
                ttl: Duration::from_secs(300),
            }),
        );
        let (mut r, _) = records(fake);
        assert_eq!(r.published("example.org").unwrap(), None);
        assert_eq!(r.dns().asked(), ["MX example.org"]);
        // A domain with no MX at all (NXDOMAIN, TTL 0) is asked every time.
        assert_eq!(r.published("nowhere.example").unwrap(), None);
        assert_eq!(r.published("nowhere.example").unwrap(), None);
        assert_eq!(r.dns().asked().len(), 3);
    }

    #[test]
    fn failures_are_held_briefly_never_as_answers() {
        let mut fake =
            Fake::default().domain("example.org", 300, &["forward-email=a:b@example.net"], 300);
        fake.txt
            .insert("example.org".into(), Err(DnsFailure::ServerFailure));
        let (mut r, now) = records(fake);
        let e = r.published("example.org").unwrap_err();
        assert_eq!(e.domain, "example.org");
        assert_eq!(
            e.to_string(),
            "DNS lookup for example.org failed: the name server answered SERVFAIL (TXT query)"
        );
        assert_eq!(r.published("example.org").unwrap_err(), e);
        assert_eq!(r.dns().asked().len(), 2, "the failure is held");
        advance(&now, FAILURE_HOLD.as_secs());
        r.dns.txt.insert(
            "example.org".into(),
            Ok(Answer {
                records: vec!["forward-email=a:b@example.net".into()],
                ttl: Duration::from_secs(300),
            }),
        );
        assert!(r.published("example.org").unwrap().is_some());
        assert_eq!(r.dns().asked().len(), 4, "asked again after the hold");
    }

    #[test]
    fn an_mx_failure_is_a_lookup_error() {
        let mut fake = Fake::default();
        fake.mx.insert(
            "example.org".into(),
            Err(DnsFailure::Timeout(Duration::from_secs(10))),
        );
        let (mut r, _) = records(fake);
        let e = r.published("example.org").unwrap_err();
        assert_eq!(e.reason, "no answer within 10s (MX query)");
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut fake = Fake::default();
        for i in 0..10 {
            fake = fake.domain(
                &format!("d{i}.example"),
                300 + i,
                &["postern=a:b@example.net"],
                300 + i,
            );
        }
        let (mut r, now) = records(fake);
        r = r.with_capacity(3);
        for i in 0..10 {
            r.published(&format!("d{i}.example")).unwrap();
            assert!(r.cached() <= 3);
        }
        // The newest stay; the oldest (closest to expiry) went.
        let asked = r.dns().asked().len();
        r.published("d9.example").unwrap();
        assert_eq!(r.dns().asked().len(), asked);
        r.published("d0.example").unwrap();
        assert_eq!(r.dns().asked().len(), asked + 2);
        // Expired entries go first.
        advance(&now, 400);
        r.published("d5.example").unwrap();
        assert_eq!(r.cached(), 1);
    }

    #[test]
    fn not_a_domain_publishes_nothing() {
        let (mut r, _) = records(Fake::default());
        assert_eq!(r.published("").unwrap(), None);
        assert_eq!(r.published("[192.0.2.1]").unwrap(), None);
        assert!(r.dns().asked().is_empty());
    }

    #[test]
    fn verification_tokens_are_asked_fresh() {
        let fake = Fake::default().domain(
            "example.org",
            300,
            &["postern-site-verification=abc123", "v=spf1 -all"],
            300,
        );
        assert_eq!(
            verification_tokens(&fake, "EXAMPLE.org").unwrap(),
            ["abc123"]
        );
        assert_eq!(
            verification_tokens(&fake, "example.org").unwrap(),
            ["abc123"]
        );
        assert_eq!(fake.asked(), ["TXT example.org", "TXT example.org"]);
    }

    #[test]
    fn a_key_file_is_read_from_the_config() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("txt.key");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let aliases = AliasesConfig {
            txt_key_file: Some(path.clone()),
            ..AliasesConfig::default()
        };
        let key = TxtKey::from_bytes(*b"0123456789abcdef0123456789abcdef");
        let value = txt::encrypt_value(&key, [9; 12], "a:b@example.net");
        let fake = Fake::default().domain(
            "example.org",
            300,
            &[&format!("forward-email={value}")],
            300,
        );
        let mut r = DnsRecords::from_config(fake, &aliases, &DnsConfig::default()).unwrap();
        let p = r.published("example.org").unwrap().unwrap();
        assert_eq!(p.rules[0].targets, ["b@example.net"]);
        assert!(p.problems.is_empty());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = DnsRecords::from_config(Fake::default(), &aliases, &DnsConfig::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("0644"), "{e}");
    }
}

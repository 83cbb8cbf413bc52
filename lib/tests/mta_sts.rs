//! MTA-STS policy fetches for real: the HTTPS fetcher (ureq + rustls)
//! against a local server with a certificate of its own (`https/`), each
//! of RFC 8461 section 3.3's refusals, and the sealed policy cache across
//! a restart and after tampering. DNS is an in-process stand-in.

mod https;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant, SystemTime};

use https::PolicyServer;
use postern::config::MtaStsConfig;
use postern::deliverer::mta_sts::{
    CacheFile, FetchError, HttpsFetcher, Mode, MtaSts, MtaStsError, Policy, PolicyError,
    PolicyFetcher, Requirement, Source,
};
use postern::dns::{Answer, DnsError, DnsLookup, Mx};
use postern::store::seal::SealKey;

/// Every name the server's certificate holds (not `wrongname.test`'s).
const NAMES: [&str; 10] = [
    "mta-sts.good.test",
    "mta-sts.crlf.test",
    "mta-sts.missing.test",
    "mta-sts.redirect.test",
    "mta-sts.slow.test",
    "mta-sts.dribble.test",
    "mta-sts.html.test",
    "mta-sts.huge.test",
    "mta-sts.stream.test",
    "mta-sts.junk.test",
];

fn server() -> PolicyServer {
    PolicyServer::start(&NAMES)
}

/// Trusting the server's certificate, connecting to it for every name.
fn config(server: &PolicyServer, timeout: Duration) -> MtaStsConfig {
    MtaStsConfig {
        timeout,
        ca_file: Some(server.cert.clone()),
        connect_to: Some(server.address()),
        ..MtaStsConfig::default()
    }
}

fn fetcher(server: &PolicyServer) -> HttpsFetcher {
    HttpsFetcher::new(&config(server, Duration::from_secs(10))).expect("a fetcher")
}

fn good_policy() -> Policy {
    Policy {
        mode: Mode::Enforce,
        mx: vec!["mx.good.test".into(), "*.backup.good.test".into()],
        max_age: 86400,
    }
}

#[test]
fn a_good_policy_is_fetched_over_verified_tls() {
    let server = server();
    let policy = fetcher(&server)
        .fetch("good.test")
        .expect("the good policy");
    assert_eq!(policy, good_policy());
    assert!(policy.matches("mx.good.test") && policy.matches("b2.backup.good.test"));
    assert_eq!(server.log(), ["mta-sts.good.test /.well-known/mta-sts.txt"]);
}

#[test]
fn crlf_and_a_charset_parameter_are_accepted() {
    let server = server();
    let policy = fetcher(&server)
        .fetch("crlf.test")
        .expect("the CRLF policy");
    assert_eq!(policy.mode, Mode::Testing);
    assert_eq!(policy.mx, ["mx.crlf.test"]);
    assert_eq!(policy.max_age, 3600);
}

#[test]
fn only_http_200_is_a_policy() {
    let server = server();
    assert_eq!(
        fetcher(&server).fetch("missing.test"),
        Err(FetchError::Status(404))
    );
}

#[test]
fn a_redirect_is_not_followed() {
    let server = server();
    assert_eq!(
        fetcher(&server).fetch("redirect.test"),
        Err(FetchError::Redirect { status: 301 })
    );
    assert_eq!(
        server.requests_for("mta-sts.good.test"),
        0,
        "the target was never asked"
    );
    assert_eq!(server.requests_for("mta-sts.redirect.test"), 1);
}

#[test]
fn a_policy_not_served_as_text_plain_is_refused() {
    let server = server();
    assert_eq!(
        fetcher(&server).fetch("html.test"),
        Err(FetchError::ContentType("text/html".into()))
    );
}

#[test]
fn a_body_that_is_not_a_policy_is_refused() {
    let server = server();
    assert_eq!(
        fetcher(&server).fetch("junk.test"),
        Err(FetchError::Policy(PolicyError::Syntax { line: 1 }))
    );
}

#[test]
fn a_huge_body_is_not_read_past_the_cap() {
    let server = server();
    let fetcher = fetcher(&server);
    // Announced as 10 MB: refused on the length, before reading.
    let start = Instant::now();
    assert_eq!(fetcher.fetch("huge.test"), Err(FetchError::TooLarge(65536)));
    // Not announced (read until the server closes): reading stops at the cap.
    assert_eq!(
        fetcher.fetch("stream.test"),
        Err(FetchError::TooLarge(65536))
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    for host in ["mta-sts.huge.test", "mta-sts.stream.test"] {
        let end = server
            .wait_for(&format!("aborted {host}"), Duration::from_secs(10))
            .unwrap_or_else(|| panic!("the server sent {host}'s 10 MB whole: {:?}", server.log()));
        let sent: u64 = end.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap();
        assert!(sent < 10 << 20, "{end}");
    }
}

#[test]
fn a_slow_server_times_out() {
    let server = server();
    let fetcher = HttpsFetcher::new(&config(&server, Duration::from_secs(1))).expect("a fetcher");
    for domain in ["slow.test", "dribble.test"] {
        let start = Instant::now();
        assert_eq!(
            fetcher.fetch(domain),
            Err(FetchError::Timeout(Duration::from_secs(1))),
            "{domain}"
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{domain}: {took:?}"
        );
    }
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let server = server();
    match fetcher(&server).fetch("wrongname.test") {
        Err(FetchError::Tls(reason)) => {
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(server.log().is_empty(), "no request was sent");
}

#[test]
fn without_the_ca_file_the_mozilla_roots_refuse_it() {
    let server = server();
    let config = MtaStsConfig {
        ca_file: None,
        ..config(&server, Duration::from_secs(10))
    };
    let fetcher = HttpsFetcher::new(&config).expect("a fetcher");
    match fetcher.fetch("good.test") {
        Err(FetchError::Tls(reason)) => assert!(reason.contains("certificate"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Through the cache

/// `_mta-sts` TXT records by domain.
#[derive(Default)]
struct Dns(RefCell<HashMap<String, Vec<String>>>);

impl Dns {
    fn set(&self, domain: &str, record: &str) {
        self.0
            .borrow_mut()
            .insert(format!("_mta-sts.{domain}"), vec![record.to_owned()]);
    }
}

impl DnsLookup for Dns {
    fn txt(&self, name: &str) -> Result<Answer, DnsError> {
        Ok(Answer {
            records: self.0.borrow().get(name).cloned().unwrap_or_default(),
            ttl: Duration::from_secs(300),
        })
    }

    fn mx(&self, _domain: &str) -> Result<Mx, DnsError> {
        Ok(Mx::default())
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn key() -> SealKey {
    SealKey::from_bytes([42; 32])
}

#[test]
fn the_cache_survives_a_restart_sealed() {
    let server = server();
    let spool = tempfile::tempdir().unwrap();
    let cache = CacheFile {
        path: spool.path().join("mta-sts"),
        key: key(),
    };
    let dns = Dns::default();
    dns.set("good.test", "v=STSv1; id=20261201");
    dns.set("missing.test", "v=STSv1; id=1");

    let config = config(&server, Duration::from_secs(10));
    let mut sts = MtaSts::new(&config, Some(cache.clone())).expect("MTA-STS");
    assert_eq!(sts.load(now()).unwrap(), 0);
    let l = sts.lookup(&dns, "good.test", now());
    assert_eq!(
        (l.source, l.requirement),
        (Source::Fetched, Requirement::Enforce(good_policy()))
    );
    // A failed fetch: no policy, the failure named, held.
    let l = sts.lookup(&dns, "missing.test", now());
    assert_eq!(l.requirement, Requirement::None);
    assert_eq!(
        l.problem.map(|p| p.to_string()).as_deref(),
        Some(
            "MTA-STS policy for missing.test could not be fetched: the server answered HTTP 404, not 200"
        )
    );
    sts.lookup(&dns, "missing.test", now());
    assert_eq!(
        server.requests_for("mta-sts.missing.test"),
        1,
        "held, not fetched again"
    );
    assert!(sts.save(now()).unwrap());
    drop(sts);

    let sealed = fs::read(&cache.path).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("good.test"));

    // Restarted: the same id is served from the file, without a request.
    let mut sts = MtaSts::new(&config, Some(cache.clone())).expect("MTA-STS");
    assert_eq!(sts.load(now()).unwrap(), 1);
    let l = sts.lookup(&dns, "good.test", now() + Duration::from_secs(60));
    assert_eq!(
        (l.source, l.requirement),
        (Source::Cache, Requirement::Enforce(good_policy()))
    );
    assert_eq!(server.requests_for("mta-sts.good.test"), 1);
    // A new id: fetched again.
    dns.set("good.test", "v=STSv1; id=20261202");
    let l = sts.lookup(&dns, "good.test", now() + Duration::from_secs(120));
    assert_eq!(l.source, Source::Fetched);
    assert_eq!(server.requests_for("mta-sts.good.test"), 2);
}

#[test]
fn a_tampered_cache_starts_empty_with_a_clear_error() {
    let server = server();
    let spool = tempfile::tempdir().unwrap();
    let cache = CacheFile {
        path: spool.path().join("mta-sts"),
        key: key(),
    };
    let dns = Dns::default();
    dns.set("good.test", "v=STSv1; id=1");
    let config = config(&server, Duration::from_secs(10));
    let mut sts = MtaSts::new(&config, Some(cache.clone())).expect("MTA-STS");
    sts.lookup(&dns, "good.test", now());
    sts.save(now()).unwrap();

    let mut bytes = fs::read(&cache.path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&cache.path, &bytes).unwrap();

    let mut sts = MtaSts::new(&config, Some(cache.clone())).expect("MTA-STS");
    let e = sts.load(now()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "MTA-STS cache {}: sealed data failed authentication (corrupt, or sealed under another key)",
            cache.path.display()
        )
    );
    assert_eq!(sts.cached(), 0);
    // Working on: the policy is fetched again and the file replaced.
    assert_eq!(sts.lookup(&dns, "good.test", now()).source, Source::Fetched);
    assert_eq!(server.requests_for("mta-sts.good.test"), 2);
    assert!(sts.save(now()).unwrap());
    let mut again = MtaSts::new(&config, Some(cache)).expect("MTA-STS");
    assert_eq!(again.load(now()).unwrap(), 1);
}

#[test]
fn bad_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = MtaSts::new(
        &MtaStsConfig {
            ca_file: Some(bad.clone()),
            ..MtaStsConfig::default()
        },
        None,
    )
    .err()
    .expect("refused");
    assert!(matches!(e, MtaStsError::CaFile { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("mta_sts.ca_file {}: ", bad.display())),
        "{e}"
    );
}

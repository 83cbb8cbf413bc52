//! DNS for real: the client and the alias record source against a private
//! dnsmasq and against a scripted server that misbehaves on purpose.
//!
//! The servers are the fixture in `tests/util/dns.rs`, included here by
//! path (it is std-only for that), so the black-box tests and these share
//! one. Every test that needs dnsmasq fails when it is not installed.

#[path = "../../tests/util/dns.rs"]
mod fixture;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fixture::{Behaviour, Dnsmasq, FakeDns, Records, Zone};
use postern::alias::records::{DnsRecords, verification_tokens};
use postern::alias::txt::{MAX_TXT_TEXT, TxtKey, encrypt_value};
use postern::alias::{Action, Pattern, TxtSource};
use postern::config::DnsConfig;
use postern::dns::{DnsClient, DnsFailure, DnsLookup};

const PREFIXES: [&str; 2] = ["forward-email", "postern"];

fn client_for(nameservers: &[String], timeout: Duration, attempts: usize) -> DnsClient {
    DnsClient::new(&DnsConfig {
        nameservers: nameservers.to_vec(),
        timeout,
        attempts,
        max_cache_ttl: Duration::from_secs(3600),
    })
    .expect("a DNS client")
}

fn client(nameserver: String) -> DnsClient {
    client_for(&[nameserver], Duration::from_millis(500), 2)
}

fn records(dns: DnsClient) -> DnsRecords<DnsClient> {
    DnsRecords::new(
        dns,
        PREFIXES.iter().map(|p| p.to_string()).collect(),
        None,
        Duration::from_secs(3600),
    )
}

/// The zone most tests read: example.org with MX, alias records in both
/// prefixes (one of them in two strings), an SPF record and a
/// verification record; a domain with TXT but no MX.
fn zone() -> Zone {
    Zone::new()
        .local("example.org")
        .ttl(300)
        .mx("example.org", "mx.example.org", 10)
        .txt(
            "example.org",
            &[
                "forward-email=alice:alice@example.net,",
                "bob:bob@example.net",
            ],
        )
        .txt(
            "example.org",
            &["postern=/^(sales|info)$/:team+$1@example.net"],
        )
        .txt("example.org", &["forward-email=!!!gone, catch@example.net"])
        .txt("example.org", &["v=spf1 mx -all"])
        .txt("example.org", &["postern-site-verification=k7Hq2pLm"])
        .txt("nomx.example.org", &["forward-email=a:b@example.net"])
}

#[test]
fn txt_records_are_read_from_dnsmasq() {
    let server = Dnsmasq::start(&zone());
    let dns = client(server.nameserver());
    let mut answer = dns.txt("example.org").unwrap();
    answer.records.sort();
    assert_eq!(
        answer.records,
        [
            "forward-email=!!!gone, catch@example.net",
            "forward-email=alice:alice@example.net,bob:bob@example.net",
            "postern-site-verification=k7Hq2pLm",
            "postern=/^(sales|info)$/:team+$1@example.net",
            "v=spf1 mx -all",
        ]
    );
    assert_eq!(answer.ttl, Duration::from_secs(300));
    let mx = dns.mx("example.org").unwrap();
    assert_eq!(mx.hosts.len(), 1);
    assert_eq!(mx.hosts[0].exchange, "mx.example.org");
    assert!(dns.has_mx("example.org").unwrap());

    let mut source = records(dns);
    let published = source
        .published("Example.ORG.")
        .unwrap()
        .expect("alias records");
    let rules: Vec<(Pattern, Action, Vec<String>)> = published
        .rules
        .iter()
        .map(|r| (r.pattern.clone(), r.action, r.targets.clone()))
        .collect();
    assert_eq!(
        rules,
        [
            (Pattern::Exact("gone".into()), Action::Refuse, vec![]),
            (
                Pattern::CatchAll,
                Action::Forward,
                vec!["catch@example.net".into()]
            ),
            (
                Pattern::Exact("alice".into()),
                Action::Forward,
                vec!["alice@example.net".into()]
            ),
            (
                Pattern::Exact("bob".into()),
                Action::Forward,
                vec!["bob@example.net".into()]
            ),
            (
                Pattern::Regex("^(sales|info)$".into()),
                Action::Forward,
                vec!["team+$1@example.net".into()]
            ),
        ]
    );
    assert!(published.problems.is_empty(), "{:?}", published.problems);
}

#[test]
fn an_answer_too_big_for_a_datagram_comes_over_tcp() {
    // Four records of about 900 octets: more than the 1232 octets of a
    // UDP answer the client offers (EDNS), so dnsmasq truncates it and
    // the client asks again over TCP.
    let mut zone = Zone::new()
        .local("example.org")
        .mx("example.org", "mx.example.org", 10);
    let mut values = Vec::new();
    for r in 0..4 {
        let entries: Vec<String> = (0..30)
            .map(|i| format!("name{r}x{i}:someone{i}@example.net"))
            .collect();
        let value = format!("forward-email={}", entries.join(","));
        assert!(value.len() > 850);
        zone = zone.txt("example.org", &[&value]);
        values.push(value);
    }
    let server = Dnsmasq::start(&zone);
    let dns = client(server.nameserver());
    let mut answer = dns.txt("example.org").unwrap();
    answer.records.sort();
    assert_eq!(answer.records, values);
    assert_eq!(server.queries("TXT"), 2, "over UDP, then over TCP");
    let published = records(dns).published("example.org").unwrap().unwrap();
    assert_eq!(published.rules.len(), 120);
    assert!(published.problems.is_empty(), "{:?}", published.problems);
}

#[test]
fn a_domain_without_mx_publishes_nothing_and_its_txt_is_not_asked() {
    let server = Dnsmasq::start(&zone());
    let mut source = records(client(server.nameserver()));
    assert_eq!(source.published("nomx.example.org").unwrap(), None);
    assert_eq!(server.queries("MX"), 1);
    assert_eq!(server.queries("TXT"), 0);
}

#[test]
fn a_null_mx_means_no_aliases() {
    let server = FakeDns::start(Behaviour::Records(
        Records::new(300)
            .mx("example.org", 0, ".")
            .txt("example.org", &[b"forward-email=a:b@example.net"]),
    ));
    let dns = client(server.nameserver());
    let mx = dns.mx("example.org").unwrap();
    assert!(mx.null && mx.hosts.is_empty());
    assert!(!dns.has_mx("example.org").unwrap());
    assert_eq!(records(dns).published("example.org").unwrap(), None);
}

#[test]
fn nxdomain_and_nodata_are_empty_answers() {
    let server = Dnsmasq::start(&zone());
    let dns = client(server.nameserver());
    assert!(dns.txt("missing.example.org").unwrap().records.is_empty());
    assert!(!dns.has_mx("missing.example.org").unwrap());
    assert!(dns.txt("mx.example.org").unwrap().records.is_empty());
    let mut source = records(dns);
    assert_eq!(source.published("missing.example.org").unwrap(), None);
}

#[test]
fn verification_token_is_found() {
    let server = Dnsmasq::start(&zone());
    let dns = client(server.nameserver());
    assert_eq!(
        verification_tokens(&dns, "example.org").unwrap(),
        ["k7Hq2pLm"]
    );
    assert!(
        verification_tokens(&dns, "nomx.example.org")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn encrypted_records_are_read_with_the_key() {
    let key = TxtKey::from_bytes(*b"0123456789abcdef0123456789abcdef");
    let value = encrypt_value(&key, [3; 12], "secret:hidden@example.net");
    let zone = Zone::new()
        .local("example.org")
        .mx("example.org", "mx.example.org", 10)
        .txt("example.org", &[&format!("forward-email={value}")]);
    let server = Dnsmasq::start(&zone);
    let without = records(client(server.nameserver()))
        .published("example.org")
        .unwrap()
        .unwrap();
    assert_eq!(
        without.problems,
        ["record 1: encrypted TXT value: set aliases.txt_key_file to read it"]
    );
    let mut with = DnsRecords::new(
        client(server.nameserver()),
        vec!["forward-email".into()],
        Some(key),
        Duration::from_secs(60),
    );
    let p = with.published("example.org").unwrap().unwrap();
    assert_eq!(p.rules[0].targets, ["hidden@example.net"]);
}

// ---------------------------------------------------------------------------
// Failures: each a LookupError (4.4.3 at the rewriter), never an answer.

#[track_caller]
fn fails_with(behaviour: Behaviour, expected: DnsFailure) {
    let server = FakeDns::start(behaviour);
    let dns = client_for(&[server.nameserver()], Duration::from_millis(300), 2);
    let e = dns.txt("example.org").unwrap_err();
    assert_eq!(e.reason, expected, "{e}");
    assert_eq!(e.status().to_string(), "4.4.3");
    assert!(!e.to_string().contains('\n'));
    let e = records(dns).published("example.org").unwrap_err();
    assert_eq!(e.domain, "example.org");
}

#[test]
fn servfail_is_a_lookup_error() {
    fails_with(Behaviour::ServFail, DnsFailure::ServerFailure);
}

#[test]
fn refused_is_a_lookup_error() {
    fails_with(Behaviour::Refused, DnsFailure::Refused);
}

#[test]
fn garbage_is_a_lookup_error() {
    fails_with(Behaviour::Garbage, DnsFailure::Malformed);
}

#[test]
fn an_answer_under_another_id_is_ignored_so_the_lookup_times_out() {
    fails_with(
        Behaviour::WrongId,
        DnsFailure::Timeout(Duration::from_millis(600)),
    );
}

#[test]
fn truncated_everywhere_is_a_lookup_error() {
    fails_with(Behaviour::Truncated, DnsFailure::Truncated);
}

#[test]
fn a_silent_server_fails_within_timeout_times_attempts() {
    let server = FakeDns::start(Behaviour::Silent);
    let (timeout, attempts) = (Duration::from_millis(300), 3);
    let dns = client_for(&[server.nameserver()], timeout, attempts);
    assert_eq!(dns.budget(), Duration::from_millis(900));
    let started = Instant::now();
    let e = dns.txt("example.org").unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.reason, DnsFailure::Timeout(Duration::from_millis(900)));
    assert_eq!(
        e.to_string(),
        "DNS TXT lookup for example.org failed: no answer within 900ms"
    );
    assert!(
        took >= Duration::from_millis(250),
        "gave up too early: {took:?}"
    );
    assert!(took < Duration::from_millis(900 + 400), "took {took:?}");
    // hickory sends one query per attempt here.
    assert_eq!(server.queries(), attempts);
}

#[test]
fn a_dead_first_server_does_not_fail_the_lookup() {
    let dead = FakeDns::start(Behaviour::Silent);
    let good = Dnsmasq::start(&zone());
    let dns = client_for(
        &[dead.nameserver(), good.nameserver()],
        Duration::from_millis(500),
        2,
    );
    let started = Instant::now();
    assert!(dns.has_mx("example.org").unwrap());
    assert!(started.elapsed() < dns.budget());
}

#[test]
fn a_huge_answer_over_tcp_is_read_up_to_the_limit() {
    let server = FakeDns::start(Behaviour::Huge {
        prefix: "forward-email=n".into(),
    });
    let dns = client(server.nameserver());
    let answer = dns.txt("example.org").unwrap();
    let total: usize = answer.records.iter().map(String::len).sum();
    assert!(total > MAX_TXT_TEXT, "{total} octets");
    // The fake has no MX for Huge: feed the answer to the parser directly,
    // as the source would.
    let prefixes: Vec<String> = PREFIXES.iter().map(|p| p.to_string()).collect();
    let p = postern::alias::txt::parse(&answer.records, &prefixes, None).unwrap();
    assert!(!p.rules.is_empty());
    assert!(p.rules.len() < answer.records.len());
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert!(p.problems[0].ends_with(&format!(
        "not read: the records pass {MAX_TXT_TEXT} octets in all"
    )));
}

// ---------------------------------------------------------------------------
// The cache

#[test]
fn the_cache_answers_until_the_ttl_then_asks_again() {
    let server = FakeDns::start(Behaviour::Records(
        Records::new(60)
            .mx("example.org", 10, "mx.example.org")
            .txt("example.org", &[b"forward-email=a:", b"b@example.net"]),
    ));
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = now.clone();
    let mut source =
        records(client(server.nameserver())).with_clock(move || *clock.lock().unwrap());
    let first = source.published("example.org").unwrap().unwrap();
    assert_eq!(first.rules[0].targets, ["b@example.net"]);
    assert_eq!(server.queries(), 2, "one MX and one TXT query");
    *now.lock().unwrap() += Duration::from_secs(59);
    assert_eq!(source.published("example.org").unwrap(), Some(first));
    assert_eq!(
        server.queries(),
        2,
        "the second lookup does not reach the server"
    );
    *now.lock().unwrap() += Duration::from_secs(1);
    source.published("example.org").unwrap();
    assert_eq!(server.queries(), 4, "after the TTL it does");
}

#[test]
fn the_client_itself_keeps_nothing() {
    // hickory's cache is off: ours (DnsRecords) is the only one.
    let server = FakeDns::start(Behaviour::Records(
        Records::new(3600).txt("example.org", &[b"postern=a:b@example.net"]),
    ));
    let dns = client(server.nameserver());
    dns.txt("example.org").unwrap();
    dns.txt("example.org").unwrap();
    assert_eq!(server.queries(), 2);
}

#[test]
fn the_source_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    let server = FakeDns::start(Behaviour::Silent);
    send(&records(client(server.nameserver())));
}

#[test]
fn a_failure_is_not_kept_as_an_answer() {
    let server = FakeDns::start(Behaviour::ServFail);
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = now.clone();
    let mut source = records(client_for(
        &[server.nameserver()],
        Duration::from_millis(300),
        1,
    ))
    .with_clock(move || *clock.lock().unwrap());
    assert!(source.published("example.org").is_err());
    server.set(Behaviour::Records(
        Records::new(60)
            .mx("example.org", 10, "mx.example.org")
            .txt("example.org", &[b"forward-email=a:b@example.net"]),
    ));
    // Held as a failure briefly, so a job's many recipients wait once...
    assert!(source.published("example.org").is_err());
    // ...then asked again.
    *now.lock().unwrap() += postern::alias::records::FAILURE_HOLD;
    assert!(source.published("example.org").unwrap().is_some());
}

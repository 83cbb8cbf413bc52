//! The scanner's sender checks for real: SPF, DKIM and DMARC
//! (`scanner::sender`) and DNS blocklists (`scanner::dnsbl`) against a
//! private dnsmasq serving the records below, and against the scripted
//! server that never answers.
//!
//! The servers are the fixture in `tests/util/dns.rs`, included by path as
//! `lib/tests/dns.rs` does. Every test that needs dnsmasq fails when it is
//! not installed. DKIM signatures are made here with mail-auth's own
//! signer and a fresh Ed25519 key (RFC 8463) published in the zone.

#[path = "../../tests/util/dns.rs"]
mod fixture;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use fixture::{Behaviour, Dnsmasq, FakeDns, Zone};
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use postern::config::DnsConfig;
use postern::dns::DnsClient;
use postern::scanner::dnsbl::{Dnsbl, Listing};
use postern::scanner::sender::{
    AuthOutcome, DkimResult, DmarcPolicy, DmarcResult, Input, MAX_SIGNATURES, SenderChecks,
    SpfResult, SpfScope,
};

/// The SMTP client of most tests: inside pass.example's SPF.
const CLIENT: &str = "203.0.113.7";
const HOSTNAME: &str = "mx.receiver.example";

/// A signing key and its DKIM record (`k=ed25519`).
struct Key {
    pkcs8: Vec<u8>,
    record: String,
}

fn key() -> Key {
    let pkcs8 = Ed25519Key::generate_pkcs8().expect("an Ed25519 key");
    let signer = Ed25519Key::from_pkcs8_der(&pkcs8).expect("the key reads back");
    let public = data_encoding::BASE64.encode(&signer.public_key());
    Key {
        pkcs8,
        record: format!("v=DKIM1; k=ed25519; p={public}"),
    }
}

/// The world: every domain is under the TLD `example`, all of it local to
/// dnsmasq, so DMARC's tree walk up to `_dmarc.example` is answered too.
fn zone(key: &Key) -> Zone {
    Zone::new()
        .local("example")
        .txt("pass.example", &["v=spf1 ip4:203.0.113.0/24 -all"])
        .txt("fail.example", &["v=spf1 ip4:198.51.100.1 -all"])
        .txt("soft.example", &["v=spf1 ip4:198.51.100.1 ~all"])
        .txt("nospf.example", &["site-verification=abc123"])
        .txt("perm.example", &["v=spf1 include -all"])
        // Two SPF records: permerror (RFC 7208 section 4.5), whichever
        // comes first in the answer.
        .txt("two.example", &["v=spf1 ip4:203.0.113.0/24 -all"])
        .txt("two.example", &["v=spf1 -all"])
        .txt("two.example", &["site-verification=abc123"])
        // One SPF record among others; a bad one among others.
        .txt("among.example", &["site-verification=abc123"])
        .txt("among.example", &["v=spf1 ip4:203.0.113.0/24 -all"])
        .txt("among.example", &["v=spf10 -all"])
        .txt("badamong.example", &["v=spf1 ip4:203.0.113.0/24 ip4 -all"])
        .txt("badamong.example", &["site-verification=abc123"])
        .txt("helo.example", &["v=spf1 ip4:203.0.113.7 -all"])
        // DMARC: reject.example publishes p=reject and sends from our client.
        .txt("reject.example", &["v=spf1 ip4:203.0.113.0/24 -all"])
        .txt("_dmarc.reject.example", &["v=DMARC1; p=reject"])
        // A subdomain of an organizational record: sp= applies.
        .txt("_dmarc.org.example", &["v=DMARC1; p=reject; sp=quarantine"])
        .host("sub.org.example", "192.0.2.10")
        // signed.example signs with DKIM and publishes no SPF.
        .txt("_dmarc.signed.example", &["v=DMARC1; p=reject"])
        .txt("sel._domainkey.signed.example", &[&key.record])
}

fn checks_with(nameserver: String, dns_timeout: Duration, budget: Duration) -> SenderChecks {
    let config = DnsConfig {
        nameservers: vec![nameserver],
        timeout: dns_timeout,
        attempts: 1,
        max_cache_ttl: Duration::from_secs(60),
    };
    SenderChecks::new(&config, budget).expect("sender checks")
}

fn checks(server: &Dnsmasq) -> SenderChecks {
    checks_with(
        server.nameserver(),
        Duration::from_secs(2),
        Duration::from_secs(10),
    )
}

fn client() -> Option<IpAddr> {
    Some(CLIENT.parse().expect("an address"))
}

fn message(from: &str) -> Vec<u8> {
    format!(
        "From: Someone <{from}>\r\nTo: you@receiver.example\r\nSubject: hello\r\n\
         Message-ID: <1@x>\r\n\r\nThe body.\r\n"
    )
    .into_bytes()
}

/// `message` with a DKIM signature of `domain`, selector `sel`.
fn signed(key: &Key, domain: &str, message: &[u8]) -> Vec<u8> {
    let signer = Ed25519Key::from_pkcs8_der(&key.pkcs8).expect("the key reads back");
    let signature = DkimSigner::from_key(signer)
        .domain(domain)
        .selector("sel")
        .headers(["From", "To", "Subject", "Message-ID"])
        .sign(message)
        .expect("a signature");
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(message);
    out
}

fn spf_of(
    checks: &SenderChecks,
    helo: Option<&str>,
    mail_from: &str,
) -> (SpfResult, SpfScope, String) {
    let msg = message("a@pass.example");
    let outcome = checks.check(
        &Input {
            client_ip: client(),
            helo,
            mail_from,
            message: &msg,
            hostname: HOSTNAME,
        },
        true,
        false,
    );
    assert!(outcome.dmarc.is_none() && outcome.dkim.is_empty());
    let spf = outcome.spf.expect("an SPF result");
    (spf.result, spf.scope, spf.domain)
}

/// The checks with SPF and DMARC on, from our client.
fn both(checks: &SenderChecks, mail_from: &str, msg: &[u8]) -> AuthOutcome {
    let outcome = checks.check(
        &Input {
            client_ip: client(),
            helo: Some("client.pass.example"),
            mail_from,
            message: msg,
            hostname: HOSTNAME,
        },
        true,
        true,
    );
    assert_private(&outcome);
    outcome
}

/// The summary never names an address or a domain.
fn assert_private(outcome: &AuthOutcome) {
    let summary = outcome.summary();
    assert!(
        !summary.contains('@') && !summary.contains('.') && !summary.contains("example"),
        "{summary}"
    );
}

#[test]
fn spf_results_from_dnsmasq() {
    let server = Dnsmasq::start(&zone(&key()));
    let c = checks(&server);
    let helo = Some("client.pass.example");
    let mailfrom = |r, d: &str| (r, SpfScope::MailFrom, d.to_owned());
    assert_eq!(
        spf_of(&c, helo, "a@pass.example"),
        mailfrom(SpfResult::Pass, "pass.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@Fail.Example"),
        mailfrom(SpfResult::Fail, "fail.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@soft.example"),
        mailfrom(SpfResult::SoftFail, "soft.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@nospf.example"),
        mailfrom(SpfResult::None, "nospf.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@nothing-here.example"),
        mailfrom(SpfResult::None, "nothing-here.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@perm.example"),
        mailfrom(SpfResult::PermError, "perm.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@two.example"),
        mailfrom(SpfResult::PermError, "two.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@among.example"),
        mailfrom(SpfResult::Pass, "among.example")
    );
    assert_eq!(
        spf_of(&c, helo, "a@badamong.example"),
        mailfrom(SpfResult::PermError, "badamong.example")
    );
    // The null sender: the HELO name is checked (RFC 7208 section 2.4).
    assert_eq!(
        spf_of(&c, Some("helo.example"), ""),
        (SpfResult::Pass, SpfScope::Helo, "helo.example".to_owned())
    );
    assert_eq!(
        spf_of(&c, Some("fail.example"), ""),
        (SpfResult::Fail, SpfScope::Helo, "fail.example".to_owned())
    );
}

#[test]
fn local_submission_asks_nothing() {
    let server = Dnsmasq::start(&zone(&key()));
    let c = checks(&server);
    let msg = message("a@fail.example");
    let outcome = c.check(
        &Input {
            client_ip: None,
            helo: Some("fail.example"),
            mail_from: "a@fail.example",
            message: &msg,
            hostname: HOSTNAME,
        },
        true,
        false,
    );
    let spf = outcome.spf.expect("an SPF result");
    assert_eq!(spf.result, SpfResult::None);
    assert_eq!(server.queries("TXT"), 0);
    // The same from a client does look it up.
    assert_eq!(
        spf_of(&c, Some("x.example"), "a@fail.example").0,
        SpfResult::Fail
    );
    assert!(server.queries("TXT") > 0);
}

#[test]
fn dmarc_reject_fails_without_alignment() {
    let server = Dnsmasq::start(&zone(&key()));
    let c = checks(&server);
    // SPF passes for pass.example, which is not the From domain.
    let outcome = both(&c, "bounce@pass.example", &message("ceo@reject.example"));
    assert_eq!(
        outcome.spf.as_ref().map(|s| s.result),
        Some(SpfResult::Pass)
    );
    assert!(outcome.dkim.is_empty());
    let dmarc = outcome.dmarc.clone().expect("a DMARC result");
    assert_eq!(dmarc.result, DmarcResult::Fail);
    assert_eq!(dmarc.policy, DmarcPolicy::Reject);
    assert_eq!(dmarc.from_domain, "reject.example");
    assert_eq!(
        outcome.summary(),
        "spf=pass dkim=none dmarc=fail policy=reject"
    );
    assert_eq!(
        outcome.header_value(HOSTNAME, "\r\n"),
        "mx.receiver.example;\r\n\tspf=pass smtp.mailfrom=pass.example;\r\n\tdkim=none;\r\n\
         \tdmarc=fail (p=reject) header.from=reject.example"
    );
}

#[test]
fn dmarc_passes_on_aligned_spf() {
    let server = Dnsmasq::start(&zone(&key()));
    let c = checks(&server);
    let outcome = both(&c, "bounce@reject.example", &message("ceo@reject.example"));
    assert_eq!(
        outcome.spf.as_ref().map(|s| s.result),
        Some(SpfResult::Pass)
    );
    let dmarc = outcome.dmarc.expect("a DMARC result");
    assert_eq!(dmarc.result, DmarcResult::Pass);
    assert_eq!(dmarc.policy, DmarcPolicy::Reject);
}

#[test]
fn dmarc_passes_on_an_aligned_dkim_signature() {
    let key = key();
    let server = Dnsmasq::start(&zone(&key));
    let c = checks(&server);
    let msg = signed(&key, "signed.example", &message("news@signed.example"));
    let outcome = both(&c, "bounce@pass.example", &msg);
    assert_eq!(outcome.dkim.len(), 1);
    assert_eq!(outcome.dkim[0].result, DkimResult::Pass);
    assert_eq!(outcome.dkim[0].domain, "signed.example");
    assert_eq!(outcome.dkim[0].selector, "sel");
    let dmarc = outcome.dmarc.clone().expect("a DMARC result");
    assert_eq!(dmarc.result, DmarcResult::Pass);
    assert_eq!(
        outcome.summary(),
        "spf=pass dkim=pass dmarc=pass policy=reject"
    );
    assert!(
        outcome
            .header_value(HOSTNAME, "\r\n")
            .contains("\tdkim=pass header.d=signed.example header.s=sel;\r\n"),
        "{}",
        outcome.header_value(HOSTNAME, "\r\n")
    );

    // The body changed after signing: the signature fails, and so does DMARC.
    let mut tampered = msg.clone();
    let at = tampered.len() - 3;
    tampered[at] = b'!';
    let outcome = both(&c, "bounce@pass.example", &tampered);
    assert_eq!(outcome.dkim[0].result, DkimResult::Fail);
    assert_eq!(outcome.dmarc.map(|d| d.result), Some(DmarcResult::Fail));

    // A signature by a domain that publishes no key.
    let other = signed(&key, "nokey.example", &message("news@signed.example"));
    let outcome = both(&c, "bounce@pass.example", &other);
    assert_eq!(outcome.dkim[0].result, DkimResult::PermError);
    assert_eq!(outcome.dkim[0].domain, "nokey.example");
    assert_eq!(outcome.dmarc.map(|d| d.result), Some(DmarcResult::Fail));

    // A signature that verifies but is not aligned with the From domain.
    let unaligned = signed(&key, "signed.example", &message("ceo@reject.example"));
    let outcome = both(&c, "bounce@pass.example", &unaligned);
    assert_eq!(outcome.dkim[0].result, DkimResult::Pass);
    assert_eq!(outcome.dmarc.map(|d| d.result), Some(DmarcResult::Fail));
}

#[test]
fn no_dmarc_record_is_none_and_sp_applies_to_subdomains() {
    let server = Dnsmasq::start(&zone(&key()));
    let c = checks(&server);
    let outcome = both(&c, "bounce@fail.example", &message("a@pass.example"));
    let dmarc = outcome.dmarc.clone().expect("a DMARC result");
    assert_eq!(dmarc.result, DmarcResult::None);
    assert_eq!(dmarc.policy, DmarcPolicy::None);
    assert_eq!(dmarc.from_domain, "pass.example");
    assert_eq!(outcome.summary(), "spf=fail dkim=none dmarc=none");

    let outcome = both(&c, "bounce@pass.example", &message("a@sub.org.example"));
    let dmarc = outcome.dmarc.expect("a DMARC result");
    assert_eq!(dmarc.result, DmarcResult::Fail);
    assert_eq!(dmarc.policy, DmarcPolicy::Quarantine);
}

#[test]
fn dmarc_off_means_no_dkim_and_dmarc_without_spf_is_unreported() {
    let server = Dnsmasq::start(&zone(&key()));
    let c = checks(&server);
    let msg = message("ceo@reject.example");
    let input = Input {
        client_ip: client(),
        helo: Some("client.pass.example"),
        mail_from: "bounce@reject.example",
        message: &msg,
        hostname: HOSTNAME,
    };
    // DMARC alone still uses SPF for alignment, without reporting it.
    let outcome = c.check(&input, false, true);
    assert!(outcome.spf.is_none());
    assert_eq!(outcome.dmarc.map(|d| d.result), Some(DmarcResult::Pass));
}

#[test]
fn a_silent_server_gives_temperror_within_the_budget() {
    let server = FakeDns::start(Behaviour::Silent);
    let key = key();
    let msg = signed(&key, "signed.example", &message("news@signed.example"));
    // The resolver would wait 5 s; the budget of the message is 700 ms.
    let c = checks_with(
        server.nameserver(),
        Duration::from_secs(5),
        Duration::from_millis(700),
    );
    let started = Instant::now();
    let outcome = both(&c, "bounce@pass.example", &msg);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(outcome.spf.map(|s| s.result), Some(SpfResult::TempError));
    assert_eq!(outcome.dkim.len(), 1);
    assert_eq!(outcome.dkim[0].result, DkimResult::TempError);
    assert_eq!(outcome.dkim[0].domain, "signed.example");
    let dmarc = outcome.dmarc.expect("a DMARC result");
    assert_eq!(dmarc.result, DmarcResult::TempError);
    assert_eq!(dmarc.from_domain, "signed.example");
    assert!(server.queries() > 0);

    // The resolver's own timeout shorter than the budget: its failures are
    // temperror too.
    let c = checks_with(
        server.nameserver(),
        Duration::from_millis(150),
        Duration::from_secs(5),
    );
    let started = Instant::now();
    let outcome = both(&c, "bounce@pass.example", &msg);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.spf.map(|s| s.result), Some(SpfResult::TempError));
    assert_eq!(outcome.dkim[0].result, DkimResult::TempError);
    assert_eq!(
        outcome.dmarc.map(|d| d.result),
        Some(DmarcResult::TempError)
    );
}

#[test]
fn malformed_messages_are_results_not_failures() {
    let key = key();
    let server = Dnsmasq::start(&zone(&key));
    let c = checks(&server);

    // Bytes that are no message at all.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for bytes in [&garbage[..], b"", b"\r\n\r\n", b"no header at all"] {
        let outcome = both(&c, "a@pass.example", bytes);
        assert_eq!(
            outcome.spf.as_ref().map(|s| s.result),
            Some(SpfResult::Pass)
        );
        assert!(outcome.dkim.is_empty());
        let dmarc = outcome.dmarc.expect("a DMARC result");
        assert_eq!(dmarc.result, DmarcResult::PermError, "{bytes:?}");
        assert_eq!(dmarc.policy, DmarcPolicy::None);
    }

    // A From with no domain, and one with two domains.
    for from in [
        "From: undisclosed\r\n",
        "From: <@>\r\n",
        "From: a@reject.example, b@pass.example\r\n",
        "Subject: no From\r\n",
    ] {
        let msg = format!("{from}Subject: x\r\n\r\nbody\r\n");
        let outcome = both(&c, "a@reject.example", msg.as_bytes());
        let dmarc = outcome.dmarc.expect("a DMARC result");
        assert_eq!(dmarc.result, DmarcResult::PermError, "{from}");
        assert_eq!(dmarc.from_domain, "", "{from}");
    }

    // A huge header: 200,000 fields, and one field of 2 MB.
    let mut huge = String::new();
    for i in 0..200_000 {
        huge.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    huge.push_str(&format!("Subject: {}\r\n", "y".repeat(2 << 20)));
    huge.push_str("From: ceo@reject.example\r\n\r\nbody\r\n");
    let started = Instant::now();
    let outcome = both(&c, "bounce@reject.example", huge.as_bytes());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.dmarc.map(|d| d.result), Some(DmarcResult::Pass));

    // Many signatures: only the first MAX_SIGNATURES are verified.
    let one = signed(&key, "signed.example", &message("news@signed.example"));
    let header_end = one
        .windows(8)
        .position(|w| w == b";\r\nFrom:")
        .expect("the signature ends before From")
        + 3;
    let mut many = Vec::new();
    for _ in 0..(MAX_SIGNATURES * 3) {
        many.extend_from_slice(&one[..header_end]);
    }
    many.extend_from_slice(&one[header_end..]);
    let outcome = both(&c, "bounce@pass.example", &many);
    assert_eq!(outcome.dkim.len(), MAX_SIGNATURES);
    assert!(outcome.dkim.iter().all(|d| d.result == DkimResult::Pass));
}

// ---------------------------------------------------------------------------
// DNS blocklists.

fn dns_client(nameserver: String, timeout: Duration) -> DnsClient {
    DnsClient::new(&DnsConfig {
        nameservers: vec![nameserver],
        timeout,
        attempts: 1,
        max_cache_ttl: Duration::from_secs(60),
    })
    .expect("a DNS client")
}

fn lists(zones: &[&str]) -> Dnsbl {
    Dnsbl::parse(&zones.iter().map(|z| z.to_string()).collect::<Vec<_>>()).expect("zones")
}

#[test]
fn dnsbl_answers_from_dnsmasq() {
    let zone = Zone::new()
        .local("example")
        .host("7.113.0.203.listed.example", "127.0.0.2")
        .host("7.113.0.203.picky.example", "127.0.0.3")
        .host("7.113.0.203.refusing.example", "127.255.255.254")
        .host("7.113.0.203.hijacked.example", "192.0.2.1")
        .host(
            "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.listed.example",
            "127.0.0.4",
        );
    let server = Dnsmasq::start(&zone);
    let dns = dns_client(server.nameserver(), Duration::from_secs(2));
    let bl = lists(&[
        "listed.example",
        "picky.example=127.0.0.2,127.0.0.4",
        "refusing.example",
        "hijacked.example",
        "clean.example",
    ]);

    let outcome = bl.check(&dns, CLIENT.parse().expect("an address"));
    assert_eq!(
        outcome.listed,
        [Listing {
            zone: "listed.example".into(),
            answer: "127.0.0.2".parse().expect("an address"),
        }]
    );
    let zones: Vec<&str> = outcome.errors.iter().map(|(z, _)| z.as_str()).collect();
    assert_eq!(zones, ["refusing.example", "hijacked.example"]);
    assert!(
        outcome.errors[0].1.contains("127.255.255.254"),
        "{:?}",
        outcome.errors
    );
    assert!(
        outcome.errors[1].1.contains("outside 127.0.0.0/8"),
        "{:?}",
        outcome.errors
    );
    for (_, reason) in &outcome.errors {
        assert!(
            !reason.contains(CLIENT) && !reason.contains("7.113.0.203"),
            "{reason}"
        );
    }

    // IPv6, nibbles reversed.
    let outcome = bl.check(&dns, "2001:db8::7".parse().expect("an address"));
    assert_eq!(
        outcome.listed,
        [Listing {
            zone: "listed.example".into(),
            answer: "127.0.0.4".parse().expect("an address"),
        }]
    );
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);

    // Another client: listed nowhere.
    let outcome = bl.check(&dns, "198.51.100.20".parse().expect("an address"));
    assert!(
        outcome.listed.is_empty() && outcome.errors.is_empty(),
        "{outcome:?}"
    );

    // A private client is not looked up at all.
    let before = server.queries("A");
    let outcome = bl.check(&dns, "10.0.0.7".parse().expect("an address"));
    assert!(outcome.listed.is_empty() && outcome.errors.is_empty());
    assert_eq!(server.queries("A"), before);
}

#[test]
fn dnsbl_timeout_is_an_error_not_a_listing() {
    let server = FakeDns::start(Behaviour::Silent);
    let dns = dns_client(server.nameserver(), Duration::from_millis(300));
    let bl = lists(&["slow.example", "slow2.example=127.0.0.2"]);
    let started = Instant::now();
    let outcome = bl.check(&dns, CLIENT.parse().expect("an address"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(outcome.listed.is_empty());
    assert_eq!(outcome.errors.len(), 2, "{outcome:?}");
    assert_eq!(outcome.errors[0].0, "slow.example");
    assert!(
        outcome.errors[0].1.starts_with("no answer within"),
        "{:?}",
        outcome.errors
    );
    assert!(server.queries() > 0);
}

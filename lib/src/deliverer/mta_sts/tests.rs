//! The parser, the discovery rules and the cache rules, without a network:
//! DNS and fetching are stand-ins that count what they are asked.

use super::*;
use crate::dns::{Answer, DnsFailure, Mx};
use crate::store::seal::{self, SealKey};
use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;

const GOOD: &str =
    "version: STSv1\nmode: enforce\nmx: mail.example.org\nmx: *.example.net\nmax_age: 86400\n";

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text.as_bytes())
}

fn policy(mode: Mode, max_age: u64) -> Policy {
    Policy {
        mode,
        mx: vec!["mx.example.org".into(), "*.backup.example.org".into()],
        max_age,
    }
}

// ---------------------------------------------------------------------------
// The policy file

#[test]
fn a_valid_policy() {
    let p = parse(GOOD).unwrap();
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.mx, ["mail.example.org", "*.example.net"]);
    assert_eq!(p.max_age, 86400);
    assert_eq!(parse(&p.to_text()).unwrap(), p, "to_text reads back");
}

#[test]
fn crlf_lf_trailing_blank_lines_and_spaces() {
    let crlf = GOOD.replace('\n', "\r\n");
    assert_eq!(parse(&crlf).unwrap(), parse(GOOD).unwrap());
    // No terminator after the last field, or blank lines after it.
    assert_eq!(parse(GOOD.trim_end()).unwrap(), parse(GOOD).unwrap());
    assert_eq!(
        parse(&format!("{GOOD}\n\r\n\n")).unwrap(),
        parse(GOOD).unwrap()
    );
    // Spaces and tabs after the colon and after the value.
    let spaced = "version:STSv1 \nmode:\tenforce\t\nmx:   MAIL.Example.ORG  \nmax_age: 0\n";
    let p = parse(spaced).unwrap();
    assert_eq!(p.mx, ["mail.example.org"], "mx patterns are lower-cased");
    assert_eq!(p.max_age, 0);
}

#[test]
fn modes_and_the_mx_rule() {
    let with = |mode: &str| {
        parse(&format!(
            "version: STSv1\nmode: {mode}\nmx: mx.example.org\nmax_age: 60\n"
        ))
    };
    assert_eq!(with("enforce").unwrap().mode, Mode::Enforce);
    assert_eq!(with("testing").unwrap().mode, Mode::Testing);
    assert_eq!(with("none").unwrap().mode, Mode::None);
    // Only mode none may list no mx.
    let none = parse("version: STSv1\nmode: none\nmax_age: 60\n").unwrap();
    assert_eq!((none.mode, none.mx.len()), (Mode::None, 0));
    for mode in ["enforce", "testing"] {
        assert_eq!(
            parse(&format!("version: STSv1\nmode: {mode}\nmax_age: 60\n")),
            Err(PolicyError::NoMx)
        );
    }
}

#[test]
fn unknown_fields_are_ignored_in_any_order() {
    let p = parse(
        "max_age: 604800\nx-note: written by hand\nmx: mx.example.org\nfuture.key_2: a b  c\nmode: testing\nversion: STSv1\n",
    )
    .unwrap();
    assert_eq!(p.mode, Mode::Testing);
    assert_eq!(p.max_age, 604_800);
    // Keys are case-sensitive: `Version` is an unknown field.
    assert_eq!(
        parse("Version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n"),
        Err(PolicyError::Missing("version"))
    );
}

#[test]
fn max_age_bounds() {
    let with = |age: &str| {
        parse(&format!(
            "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: {age}\n"
        ))
    };
    assert_eq!(with("31557600").unwrap().max_age, MAX_MAX_AGE);
    assert_eq!(with("0000000060").unwrap().max_age, 60);
    assert_eq!(
        with("31557601"),
        Err(PolicyError::MaxAgeTooLarge {
            line: 4,
            value: 31_557_601
        })
    );
    for bad in [
        "",
        "1d",
        "-5",
        "+5",
        "1 2",
        "12345678901",
        "9999999999999999999999",
        "0x10",
        "86400.0",
    ] {
        let e = with(bad).unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::MaxAge { line: 4, .. } | PolicyError::MaxAgeTooLarge { .. }
            ),
            "{bad:?}: {e}"
        );
    }
    assert!(matches!(
        with("9999999999"),
        Err(PolicyError::MaxAgeTooLarge { .. })
    ));
}

#[test]
fn every_malformed_policy_is_refused() {
    let cases: &[(&[u8], PolicyError)] = &[
        (b"", PolicyError::Empty),
        (b"\n", PolicyError::Empty),
        (b"\r\n\r\n", PolicyError::Empty),
        (
            b"version: STSv1\nmode: enforce\nmx: mx.ex\xffample.org\nmax_age: 60\n",
            PolicyError::NotUtf8,
        ),
        (
            b"mode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Missing("version"),
        ),
        (
            b"version: STSv1\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Missing("mode"),
        ),
        (
            b"version: STSv1\nmode: enforce\nmx: mx.example.org\n",
            PolicyError::Missing("max_age"),
        ),
        (
            b"version: STSv2\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Version {
                line: 1,
                value: "STSv2".into(),
            },
        ),
        (
            b"version: stsv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Version {
                line: 1,
                value: "stsv1".into(),
            },
        ),
        (
            b"version: STSv1\nmode: Enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Mode {
                line: 2,
                value: "Enforce".into(),
            },
        ),
        (
            b"version: STSv1\nmode: strict\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Mode {
                line: 2,
                value: "strict".into(),
            },
        ),
        (
            b"version: STSv1\nmode:\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Mode {
                line: 2,
                value: String::new(),
            },
        ),
        (
            b"version: STSv1\nversion: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Duplicate {
                line: 2,
                key: "version",
            },
        ),
        (
            b"version: STSv1\nmode: enforce\nmode: testing\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Duplicate {
                line: 3,
                key: "mode",
            },
        ),
        (
            b"version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\nmax_age: 60\n",
            PolicyError::Duplicate {
                line: 5,
                key: "max_age",
            },
        ),
        // Junk lines.
        (
            b"version: STSv1\nhello world\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Syntax { line: 2 },
        ),
        (
            b"version: STSv1\n\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Syntax { line: 2 },
        ),
        (
            b" version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Syntax { line: 1 },
        ),
        (
            b"version : STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Syntax { line: 1 },
        ),
        (
            b"version: STSv1\nmode: enforce\rmx: mx.example.org\nmax_age: 60\n",
            PolicyError::Syntax { line: 2 },
        ),
        (
            b"version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\nx-extension:\n",
            PolicyError::Syntax { line: 5 },
        ),
        (
            b"version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n_x: y\n",
            PolicyError::Syntax { line: 5 },
        ),
        (
            b"version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\nx: a\x00b\n",
            PolicyError::Syntax { line: 5 },
        ),
        (
            b"<html><body>Not found</body></html>\n",
            PolicyError::Syntax { line: 1 },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            &Policy::parse(input).unwrap_err(),
            want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn malformed_mx_patterns() {
    for bad in [
        "",
        "*",
        "*.",
        "*.*.example.org",
        "mx.*.example.org",
        "mx..example.org",
        ".example.org",
        "mx.example.org.",
        "-mx.example.org",
        "mx-.example.org",
        "mx_1.example.org",
        "mx.example.org:25",
        "[192.0.2.1]",
        "bücher.example",
        "mx example.org",
        &format!("{}.example.org", "a".repeat(64)),
    ] {
        let text = format!("version: STSv1\nmode: enforce\nmx: {bad}\nmax_age: 60\n");
        assert!(
            matches!(parse(&text), Err(PolicyError::Mx { line: 3, .. })),
            "{bad:?}: {:?}",
            parse(&text)
        );
    }
    // Single labels and digits are host names too.
    let p =
        parse("version: STSv1\nmode: enforce\nmx: mail\nmx: 1mx.example\nmax_age: 60\n").unwrap();
    assert_eq!(p.mx, ["mail", "1mx.example"]);
}

#[test]
fn errors_quote_values_short_and_clean() {
    let long = "x".repeat(500);
    let e = parse(&format!(
        "version: STSv1\nmode: {long}\nmx: a.b\nmax_age: 1\n"
    ))
    .unwrap_err();
    let shown = e.to_string();
    assert!(shown.len() < 120, "{shown}");
    assert!(shown.starts_with("line 2: mode \"xxx"), "{shown}");
}

#[test]
fn mx_matching() {
    let p = parse(GOOD).unwrap();
    for host in [
        "mail.example.org",
        "MAIL.Example.ORG",
        "mail.example.org.",
        "mx1.example.net",
        "MX1.EXAMPLE.NET.",
    ] {
        assert!(p.matches(host), "{host}");
    }
    for host in [
        "example.net",
        ".example.net",
        "a.b.example.net",
        "mx1.example.net.evil",
        "mx1example.net",
        "xmail.example.org",
        "mail.example.org.evil",
        "example.org",
        "",
    ] {
        assert!(!p.matches(host), "{host}");
    }
}

// ---------------------------------------------------------------------------
// The TXT record

#[test]
fn record_ids() {
    assert_eq!(
        record_id("v=STSv1; id=20160831085700Z;").unwrap(),
        "20160831085700Z"
    );
    assert_eq!(record_id("v=STSv1;id=abc").unwrap(), "abc");
    assert_eq!(
        record_id("v=STSv1 ;\tid=abc ; ext_1=val-ue ;").unwrap(),
        "abc"
    );
    assert_eq!(
        record_id(&format!("v=STSv1; id={}", "9".repeat(32)))
            .unwrap()
            .len(),
        32
    );
    let cases = [
        ("v=STSv1", RecordError::NoId),
        ("v=STSv1;", RecordError::EmptyField),
        ("v=STSv1; ext=1", RecordError::NoId),
        ("v=STSv1; id=", RecordError::Field),
        ("v=STSv1; id", RecordError::Field),
        ("v=STSv1; id=a b", RecordError::Field),
        ("v=STSv1; id=a=b", RecordError::Field),
        ("v=STSv1; id=a-b", RecordError::BadId),
        ("v=STSv1; id=2016.08", RecordError::BadId),
        (
            &format!("v=STSv1; id={}", "9".repeat(33)),
            RecordError::BadId,
        ),
        ("v=STSv1; id=a; id=b", RecordError::SeveralIds),
        ("v=STSv1; id=a;; x=y", RecordError::EmptyField),
        ("v=STSv1;; id=a", RecordError::EmptyField),
        ("v=STSv1; junk", RecordError::Field),
        ("v=STSv1; -x=1; id=a", RecordError::Field),
        (" v=STSv1; id=a", RecordError::Version),
        ("v=stsv1; id=a", RecordError::Version),
        ("v=STSv2; id=a", RecordError::Version),
        ("id=a; v=STSv1", RecordError::Version),
    ];
    for (record, want) in cases {
        assert_eq!(record_id(record), Err(want), "{record:?}");
    }
}

/// DNS with fixed TXT answers by name (unknown names: an empty answer),
/// counting the queries.
#[derive(Default)]
struct FakeDns {
    txt: RefCell<HashMap<String, Result<Vec<String>, DnsFailure>>>,
    asked: RefCell<Vec<String>>,
}

impl FakeDns {
    fn set(&self, domain: &str, records: &[&str]) {
        self.txt.borrow_mut().insert(
            format!("_mta-sts.{domain}"),
            Ok(records.iter().map(|r| r.to_string()).collect()),
        );
    }

    fn fail(&self, domain: &str) {
        self.txt
            .borrow_mut()
            .insert(format!("_mta-sts.{domain}"), Err(DnsFailure::ServerFailure));
    }

    fn queries(&self) -> usize {
        self.asked.borrow().len()
    }
}

impl DnsLookup for FakeDns {
    fn txt(&self, name: &str) -> Result<Answer, DnsError> {
        self.asked.borrow_mut().push(name.to_owned());
        match self.txt.borrow().get(name) {
            Some(Ok(records)) => Ok(Answer {
                records: records.clone(),
                ttl: Duration::from_secs(300),
            }),
            Some(Err(reason)) => Err(DnsError {
                name: name.to_owned(),
                kind: "TXT",
                reason: reason.clone(),
            }),
            None => Ok(Answer::default()),
        }
    }

    fn mx(&self, _domain: &str) -> Result<Mx, DnsError> {
        panic!("MTA-STS asks no MX")
    }
}

#[test]
fn discovery_rules() {
    let dns = FakeDns::default();
    dns.set(
        "example.org",
        &["v=spf1 -all", "v=STSv1; id=1a2b;", "something else"],
    );
    assert_eq!(
        discover(&dns, "example.org").unwrap(),
        Discovery::Id("1a2b".into())
    );
    assert_eq!(*dns.asked.borrow(), ["_mta-sts.example.org"]);

    assert_eq!(discover(&dns, "none.example").unwrap(), Discovery::NoRecord);
    dns.set("spf.example", &["v=spf1 -all", "v=STSv10; id=1"]);
    assert_eq!(discover(&dns, "spf.example").unwrap(), Discovery::NoRecord);

    dns.set("two.example", &["v=STSv1; id=1", "v=STSv1; id=2"]);
    assert_eq!(
        discover(&dns, "two.example").unwrap(),
        Discovery::Several(2)
    );
    // Two records even when one of them is broken: still several.
    dns.set("two.example", &["v=STSv1; id=1", "v=STSv1; id=bad-id"]);
    assert_eq!(
        discover(&dns, "two.example").unwrap(),
        Discovery::Several(2)
    );

    dns.set("bad.example", &["v=STSv1; id=no_underscores"]);
    assert_eq!(
        discover(&dns, "bad.example").unwrap(),
        Discovery::Invalid(RecordError::BadId)
    );
    dns.set("noid.example", &["v=STSv1"]);
    assert_eq!(
        discover(&dns, "noid.example").unwrap(),
        Discovery::Invalid(RecordError::NoId)
    );

    dns.fail("down.example");
    let e = discover(&dns, "down.example").unwrap_err();
    assert_eq!(e.name, "_mta-sts.down.example");
}

// ---------------------------------------------------------------------------
// The cache rules

/// Fetches from a script: a result per domain, fetches counted.
#[derive(Default)]
struct FakeFetcher {
    answers: RefCell<HashMap<String, Result<Policy, FetchError>>>,
    fetched: RefCell<Vec<String>>,
}

impl FakeFetcher {
    fn serve(&self, domain: &str, answer: Result<Policy, FetchError>) {
        self.answers.borrow_mut().insert(domain.to_owned(), answer);
    }

    fn count(&self) -> usize {
        self.fetched.borrow().len()
    }
}

impl PolicyFetcher for FakeFetcher {
    fn fetch(&self, domain: &str) -> Result<Policy, FetchError> {
        self.fetched.borrow_mut().push(domain.to_owned());
        self.answers
            .borrow()
            .get(domain)
            .cloned()
            .unwrap_or(Err(FetchError::Status(404)))
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

fn sts(cache: Option<CacheFile>) -> MtaSts<FakeFetcher> {
    MtaSts::with_fetcher(&MtaStsConfig::default(), FakeFetcher::default(), cache)
}

fn enforce(max_age: u64) -> Policy {
    policy(Mode::Enforce, max_age)
}

#[test]
fn same_id_and_unexpired_uses_the_cache() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(None);
    s.fetcher().serve("example.org", Ok(enforce(3600)));
    let first = s.lookup(&dns, "example.org", t0());
    assert_eq!(first.source, Source::Fetched);
    assert_eq!(first.requirement, Requirement::Enforce(enforce(3600)));
    assert_eq!(first.problem, None);
    for (when, name) in [(1, "example.org"), (3599, "EXAMPLE.org.")] {
        let again = s.lookup(&dns, name, at(when));
        assert_eq!(again.source, Source::Cache);
        assert_eq!(again.requirement, first.requirement);
    }
    assert_eq!(s.fetcher().count(), 1, "no fetch while the id is the same");
    assert_eq!(dns.queries(), 3, "the TXT record is asked every time");
    // Expired (max_age passed): fetched again, though the id is the same.
    assert_eq!(
        s.lookup(&dns, "example.org", at(3600)).source,
        Source::Fetched
    );
    assert_eq!(s.fetcher().count(), 2);
}

#[test]
fn a_new_id_fetches_the_new_policy() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(None);
    s.fetcher().serve("example.org", Ok(enforce(3600)));
    s.lookup(&dns, "example.org", t0());
    dns.set("example.org", &["v=STSv1; id=two"]);
    s.fetcher()
        .serve("example.org", Ok(policy(Mode::Testing, 3600)));
    let l = s.lookup(&dns, "example.org", at(10));
    assert_eq!(l.source, Source::Fetched);
    assert_eq!(
        l.requirement,
        Requirement::Testing(policy(Mode::Testing, 3600))
    );
    assert_eq!(s.fetcher().count(), 2);
    // And the new id is the one remembered.
    assert_eq!(s.lookup(&dns, "example.org", at(20)).source, Source::Cache);
    assert_eq!(s.fetcher().count(), 2);
}

#[test]
fn a_failed_fetch_keeps_the_cached_policy_and_is_held() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(None);
    s.fetcher().serve("example.org", Ok(enforce(86400)));
    s.lookup(&dns, "example.org", t0());
    dns.set("example.org", &["v=STSv1; id=two"]);
    s.fetcher()
        .serve("example.org", Err(FetchError::Status(500)));
    let l = s.lookup(&dns, "example.org", at(10));
    assert_eq!(l.source, Source::Cache);
    assert_eq!(l.requirement, Requirement::Enforce(enforce(86400)));
    assert_eq!(
        l.problem.unwrap().to_string(),
        "MTA-STS policy for example.org could not be fetched: the server answered HTTP 500, not 200"
    );
    assert_eq!(s.fetcher().count(), 2);
    // Held: neither DNS nor HTTPS is asked again for FAILURE_HOLD.
    let queries = dns.queries();
    let held = s.lookup(&dns, "example.org", at(10 + FAILURE_HOLD.as_secs() - 1));
    assert_eq!((held.source, held.problem), (Source::Cache, None));
    assert_eq!((s.fetcher().count(), dns.queries()), (2, queries));
    // After the hold: tried again, and the new policy replaces the old.
    s.fetcher()
        .serve("example.org", Ok(policy(Mode::Testing, 60)));
    let l = s.lookup(&dns, "example.org", at(10 + FAILURE_HOLD.as_secs()));
    assert_eq!(l.source, Source::Fetched);
    assert!(matches!(l.requirement, Requirement::Testing(_)));
}

#[test]
fn a_failed_fetch_without_a_cache_is_no_policy_held() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(None);
    s.fetcher().serve(
        "example.org",
        Err(FetchError::Timeout(Duration::from_secs(10))),
    );
    let l = s.lookup(&dns, "example.org", t0());
    assert_eq!(
        (l.requirement, l.source),
        (Requirement::None, Source::NoPolicy)
    );
    assert_eq!(
        l.problem.unwrap().to_string(),
        "MTA-STS policy for example.org could not be fetched: no answer within 10s"
    );
    for when in [1, 299] {
        let l = s.lookup(&dns, "example.org", at(when));
        assert_eq!((l.requirement, l.problem), (Requirement::None, None));
    }
    assert_eq!(
        s.fetcher().count(),
        1,
        "held: not fetched for every message"
    );
    s.fetcher().serve("example.org", Ok(enforce(60)));
    assert_eq!(
        s.lookup(&dns, "example.org", at(300)).source,
        Source::Fetched
    );
    assert_eq!(s.fetcher().count(), 2);
}

#[test]
fn a_record_gone_keeps_the_cached_policy_until_it_expires() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(None);
    s.fetcher().serve("example.org", Ok(enforce(600)));
    s.lookup(&dns, "example.org", t0());
    dns.set("example.org", &[]);
    let l = s.lookup(&dns, "example.org", at(599));
    assert_eq!((l.source, l.problem), (Source::Cache, None));
    assert!(l.requirement.requires_verified_tls());
    let l = s.lookup(&dns, "example.org", at(600));
    assert_eq!(
        (l.requirement, l.source),
        (Requirement::None, Source::NoPolicy)
    );
    assert_eq!(s.fetcher().count(), 1);
}

#[test]
fn broken_or_several_records_keep_the_cached_policy() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(None);
    s.fetcher().serve("example.org", Ok(enforce(600)));
    s.lookup(&dns, "example.org", t0());
    dns.set("example.org", &["v=STSv1; id=one", "v=STSv1; id=two"]);
    let l = s.lookup(&dns, "example.org", at(1));
    assert_eq!(l.source, Source::Cache);
    assert_eq!(
        l.problem.unwrap().to_string(),
        "MTA-STS for example.org: 2 TXT records at _mta-sts.example.org start with v=STSv1; the domain has no policy"
    );
    dns.set("example.org", &["v=STSv1; id=two-"]);
    let l = s.lookup(&dns, "example.org", at(2));
    assert_eq!(l.source, Source::Cache);
    assert_eq!(
        l.problem.unwrap().to_string(),
        "MTA-STS for example.org: the TXT record at _mta-sts.example.org is refused: the record's id is not 1 to 32 letters and digits"
    );
    assert_eq!(s.fetcher().count(), 1);
    // Without a cache: no policy, nothing fetched.
    dns.set("other.example", &["v=STSv1; id=1", "v=STSv1; id=2"]);
    let l = s.lookup(&dns, "other.example", at(3));
    assert_eq!(
        (l.requirement, l.source),
        (Requirement::None, Source::NoPolicy)
    );
    assert_eq!(s.fetcher().count(), 1);
}

#[test]
fn a_dns_failure_is_temporary_not_no_policy() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(None);
    s.fetcher().serve("example.org", Ok(enforce(3600)));
    s.lookup(&dns, "example.org", t0());
    dns.fail("example.org");
    let l = s.lookup(&dns, "example.org", at(1));
    assert_eq!(l.source, Source::Cache, "the cached policy still applies");
    assert_eq!(
        l.problem.unwrap().to_string(),
        "MTA-STS for example.org: DNS TXT lookup for _mta-sts.example.org failed: the name server answered SERVFAIL"
    );
    // Held like a failed fetch.
    let queries = dns.queries();
    s.lookup(&dns, "example.org", at(2));
    assert_eq!(dns.queries(), queries);

    dns.fail("new.example");
    let l = s.lookup(&dns, "new.example", at(3));
    assert_eq!(l.requirement, Requirement::None);
    assert!(matches!(l.problem, Some(MtaStsError::Dns { .. })));
}

#[test]
fn mode_none_asks_nothing_but_is_cached() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=off"]);
    let mut s = sts(None);
    s.fetcher().serve(
        "example.org",
        Ok(Policy {
            mode: Mode::None,
            mx: vec![],
            max_age: 86400,
        }),
    );
    assert_eq!(s.requirement(&dns, "example.org", t0()), Requirement::None);
    let l = s.lookup(&dns, "example.org", at(1));
    assert_eq!(
        (l.requirement, l.source),
        (Requirement::None, Source::Cache)
    );
    assert_eq!(s.fetcher().count(), 1);
}

#[test]
fn disabled_asks_nothing() {
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let config = MtaStsConfig {
        enabled: false,
        ..MtaStsConfig::default()
    };
    let mut s = MtaSts::with_fetcher(&config, FakeFetcher::default(), None);
    let l = s.lookup(&dns, "example.org", t0());
    assert_eq!(
        (l.requirement, l.source),
        (Requirement::None, Source::Disabled)
    );
    assert_eq!((dns.queries(), s.fetcher().count()), (0, 0));
}

#[test]
fn domains_are_normalised_and_checked() {
    let dns = FakeDns::default();
    dns.set("xn--bcher-kva.example", &["v=STSv1; id=1"]);
    let mut s = sts(None);
    s.fetcher().serve("xn--bcher-kva.example", Ok(enforce(60)));
    assert_eq!(
        s.lookup(&dns, "Bücher.example.", t0()).source,
        Source::Fetched
    );
    assert_eq!(*s.fetcher().fetched.borrow(), ["xn--bcher-kva.example"]);
    for bad in [
        "",
        ".",
        "[192.0.2.1]",
        "exa mple.org",
        "a..b",
        "under_score.example",
        "x/y.example",
    ] {
        let l = s.lookup(&dns, bad, t0());
        assert_eq!(l.requirement, Requirement::None, "{bad:?}");
        assert!(
            matches!(l.problem, Some(MtaStsError::NotADomain(_))),
            "{bad:?}: {:?}",
            l.problem
        );
    }
    assert_eq!(dns.queries(), 1);
}

#[test]
fn what_a_requirement_allows() {
    let e = Requirement::Enforce(enforce(60));
    assert!(e.allows("mx.example.org") && e.allows("b1.backup.example.org"));
    assert!(!e.allows("mx.attacker.example"));
    assert!(e.requires_verified_tls() && !e.reports());
    let t = Requirement::Testing(policy(Mode::Testing, 60));
    assert!(t.allows("mx.attacker.example") && !t.requires_verified_tls() && t.reports());
    assert_eq!(t.policy().map(|p| p.max_age), Some(60));
    assert!(Requirement::None.allows("anything") && Requirement::None.policy().is_none());
}

// ---------------------------------------------------------------------------
// The cache file

fn key() -> SealKey {
    SealKey::from_bytes([5; 32])
}

fn cache_in(dir: &Path) -> CacheFile {
    CacheFile {
        path: dir.join("mta-sts.cache"),
        key: key(),
    }
}

#[test]
fn the_cache_file_is_sealed_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    dns.set("short.example", &["v=STSv1; id=s"]);
    let mut s = sts(Some(cache_in(dir.path())));
    assert_eq!(s.load(t0()).unwrap(), 0, "no file yet: an empty cache");
    assert!(!s.save(t0()).unwrap(), "nothing changed: nothing written");
    assert!(!dir.path().join("mta-sts.cache").exists());
    s.fetcher().serve("example.org", Ok(enforce(86400)));
    s.fetcher().serve("short.example", Ok(enforce(60)));
    s.lookup(&dns, "example.org", t0());
    s.lookup(&dns, "short.example", t0());
    assert!(s.save(t0()).unwrap());
    assert!(!s.save(t0()).unwrap());

    let path = dir.path().join("mta-sts.cache");
    let bytes = fs::read(&path).unwrap();
    let hay = String::from_utf8_lossy(&bytes);
    assert!(!hay.contains("example") && !hay.contains("STSv1") && !hay.contains("enforce"));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );

    // After a restart (and the short policy's expiry): the same id is
    // served from the file, without a fetch.
    let mut again = sts(Some(cache_in(dir.path())));
    assert_eq!(again.load(at(60)).unwrap(), 1);
    let l = again.lookup(&dns, "example.org", at(60));
    assert_eq!(
        (l.source, l.requirement),
        (Source::Cache, Requirement::Enforce(enforce(86400)))
    );
    assert_eq!(again.fetcher().count(), 0);
    // The record gone: the file's policy still applies until it expires.
    dns.set("example.org", &[]);
    assert_eq!(
        again.lookup(&dns, "example.org", at(86399)).source,
        Source::Cache
    );
    assert_eq!(
        again.lookup(&dns, "example.org", at(86400)).source,
        Source::NoPolicy
    );
}

#[test]
fn a_bad_cache_file_starts_an_empty_cache_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let dns = FakeDns::default();
    dns.set("example.org", &["v=STSv1; id=one"]);
    let mut s = sts(Some(cache_in(dir.path())));
    s.fetcher().serve("example.org", Ok(enforce(86400)));
    s.lookup(&dns, "example.org", t0());
    s.save(t0()).unwrap();
    let path = dir.path().join("mta-sts.cache");
    let good = fs::read(&path).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    for (bytes, key, want) in [
        (flipped, key(), "failed authentication"),
        (
            good.clone(),
            SealKey::from_bytes([6; 32]),
            "failed authentication",
        ),
        (b"plain text".to_vec(), key(), "bad magic"),
        (Vec::new(), key(), "bad magic"),
    ] {
        fs::write(&path, &bytes).unwrap();
        let cache = CacheFile {
            path: path.clone(),
            key,
        };
        let mut s = sts(Some(cache.clone()));
        let e = s.load(t0()).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("MTA-STS cache {}: ", path.display())),
            "{shown}"
        );
        assert!(shown.contains(want), "{shown}");
        assert_eq!(s.cached(), 0);
        // It still works, and the next save replaces the bad file.
        s.fetcher().serve("example.org", Ok(enforce(60)));
        assert_eq!(s.lookup(&dns, "example.org", t0()).source, Source::Fetched);
        assert!(s.save(t0()).unwrap());
        assert_eq!(sts(Some(cache)).load(t0()).unwrap(), 1);
    }

    // Sealed, but not a cache, or a cache with a broken policy.
    for payload in [
        &b"not json"[..],
        br#"{"format":2,"policies":[]}"#,
        br#"{"format":1,"policies":[{"domain":"example.org","id":"one","expires":1900000000,"policy":"mode: enforce"}]}"#,
        br#"{"format":1,"policies":[{"domain":"Example.ORG","id":"one","expires":1900000000,"policy":"version: STSv1\nmode: none\nmax_age: 1\n"}]}"#,
        br#"{"format":1,"policies":[{"domain":"example.org","id":"o-ne","expires":1900000000,"policy":"version: STSv1\nmode: none\nmax_age: 1\n"}]}"#,
    ] {
        fs::write(&path, seal::seal(&key(), [1; 24], payload).unwrap()).unwrap();
        let mut s = sts(Some(cache_in(dir.path())));
        let e = s.load(t0()).unwrap_err();
        assert!(matches!(e.reason, CacheFault::Format(_)), "{e}");
        assert_eq!(s.cached(), 0);
    }
}

#[test]
fn a_clock_set_back_does_not_stretch_a_cached_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mta-sts.cache");
    let far = unix_seconds(t0()) + 10 * MAX_MAX_AGE;
    let payload = format!(
        r#"{{"format":1,"policies":[{{"domain":"example.org","id":"one","expires":{far},"policy":"version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n"}}]}}"#
    );
    fs::write(
        &path,
        seal::seal(&key(), [1; 24], payload.as_bytes()).unwrap(),
    )
    .unwrap();
    let mut s = sts(Some(cache_in(dir.path())));
    assert_eq!(s.load(t0()).unwrap(), 1);
    let dns = FakeDns::default();
    assert_eq!(
        s.lookup(&dns, "example.org", at(MAX_MAX_AGE - 1)).source,
        Source::Cache
    );
    assert_eq!(
        s.lookup(&dns, "example.org", at(MAX_MAX_AGE)).source,
        Source::NoPolicy
    );
}

#[test]
fn the_cache_is_bounded() {
    let dns = FakeDns::default();
    let mut s = sts(None);
    for i in 0..MAX_CACHED_DOMAINS + 5 {
        let d = format!("d{i}.example");
        dns.set(&d, &["v=STSv1; id=1"]);
        s.fetcher().serve(&d, Ok(enforce(1000 + i as u64)));
        s.lookup(&dns, &d, t0());
    }
    assert_eq!(s.cached(), MAX_CACHED_DOMAINS);
    // The ones closest to expiry went first.
    assert!(!s.policies.contains_key("d0.example"));
    assert!(
        s.policies
            .contains_key(&format!("d{}.example", MAX_CACHED_DOMAINS + 4))
    );
}

#[test]
fn fetch_errors_read_as_one_line() {
    let cases = [
        (
            FetchError::Redirect { status: 301 },
            "the server answered HTTP 301, a redirect (never followed, RFC 8461 section 3.3)",
        ),
        (
            FetchError::ContentType("text/html; charset=utf-8".into()),
            "the policy is served as \"text/html; charset=utf-8\", not text/plain",
        ),
        (
            FetchError::TooLarge(65536),
            "the policy is larger than 65536 bytes",
        ),
        (
            FetchError::Policy(PolicyError::NoMx),
            "the policy is refused: the policy has no mx field (only mode none may have none)",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
    assert_eq!(
        HttpsFetcher::url("example.org"),
        "https://mta-sts.example.org/.well-known/mta-sts.txt"
    );
}

#[test]
fn fetcher_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = MtaStsConfig {
        ca_file: Some(dir.path().join("missing.pem")),
        ..MtaStsConfig::default()
    };
    let e = HttpsFetcher::new(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with("mta_sts.ca_file ") && e.contains("missing.pem"),
        "{e}"
    );
    let empty = dir.path().join("empty.pem");
    fs::write(&empty, "no certificates here\n").unwrap();
    let e = HttpsFetcher::new(&MtaStsConfig {
        ca_file: Some(empty),
        ..MtaStsConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.ends_with("holds no PEM certificate"), "{e}");
    let e = HttpsFetcher::new(&MtaStsConfig {
        connect_to: Some("localhost".into()),
        ..MtaStsConfig::default()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "mta_sts.connect_to \"localhost\" is not IP:PORT"
    );
    assert!(HttpsFetcher::new(&MtaStsConfig::default()).is_ok());
}

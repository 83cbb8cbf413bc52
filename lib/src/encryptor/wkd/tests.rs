//! The WKD names, URLs, address classifier, method order and cache,
//! without HTTP (lib/tests/wkd.rs has the HTTPS side).

use super::*;
use std::cell::{Cell, RefCell};

/// Computed with `gpg-wks-client --print-wkd-hash` (GnuPG 2.2).
#[test]
fn hashed_local_part_matches_gnupg() {
    for (local, hash) in [
        ("Joe.Doe", "iy9q119eutrkn8s1mk4r39qejnbu3n5q"),
        ("alice", "kei1q4tipxxu1yj79k9kfukdhfy631xe"),
        ("bob+tag", "3f4m1zubdt93wwrp3xagb1xknzu9a91x"),
        // Only ASCII letters are lower-cased: gpg hashes "Ändreas".
        ("ÄNDREAS", "qbtchaezwwdxu4b17phcsgh4b1qshwes"),
        ("a%b&c=d", "md49inawrh3h7do8fw8rx49914t4syrt"),
    ] {
        assert_eq!(hashed_local_part(local), hash, "{local}");
    }
}

#[test]
fn zbase32_of_short_inputs() {
    assert_eq!(zbase32(b""), "");
    // 0xff: 11111 -> 31 '9', then 111(00) -> 28 'h'.
    assert_eq!(zbase32(&[0xff]), "9h");
    assert_eq!(zbase32(&[0x00]), "yy");
}

#[test]
fn urls_of_the_draft_example() {
    let (advanced, direct) = urls("Joe.Doe", "Example.ORG");
    assert_eq!(
        advanced,
        "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
    );
    assert_eq!(
        direct,
        "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
    );
}

#[test]
fn urls_percent_encode_the_local_part_and_keep_a_labels() {
    let (advanced, direct) = urls("bob+tag", "XN--BCHER-KVA.example");
    assert!(advanced.starts_with(
        "https://openpgpkey.xn--bcher-kva.example/.well-known/openpgpkey/xn--bcher-kva.example/hu/3f4m1zubdt93wwrp3xagb1xknzu9a91x?"
    ));
    assert!(advanced.ends_with("?l=bob%2Btag"), "{advanced}");
    assert!(direct.starts_with("https://xn--bcher-kva.example/.well-known/openpgpkey/hu/"));
    assert!(direct.ends_with("?l=bob%2Btag"));
    let (advanced, _) = urls("a b%c&d=e/Ä~_-.", "example.org");
    assert!(
        advanced.ends_with("?l=a%20b%25c%26d%3De%2F%C3%84~_-."),
        "{advanced}"
    );
}

#[test]
fn private_addresses_are_told_apart() {
    let private = [
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::127.0.0.1",
        "::8.8.8.8",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.1.1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "100::1",
        "2001:db8::1",
        "3fff::1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::1",
        "2002:c0a8:0101::1",
    ];
    let public = [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.0.1.1",
        "192.169.0.1",
        "198.17.0.1",
        "198.20.0.1",
        "223.255.255.255",
        "::ffff:8.8.8.8",
        "2001:4860:4860::8888",
        "2a00:1450:4001::1",
        "64:ff9b::808:808",
        "2002:0808:0808::1",
        "3fff:1000::1",
        "fbff::1",
    ];
    for a in private {
        let ip: IpAddr = a.parse().expect(a);
        assert!(is_private_address(ip), "{a} should be private");
    }
    for a in public {
        let ip: IpAddr = a.parse().expect(a);
        assert!(!is_private_address(ip), "{a} should be public");
    }
}

#[test]
fn no_such_name_is_read_from_getaddrinfo_text() {
    let e = |m: &str| io::Error::other(format!("failed to lookup address information: {m}"));
    assert!(is_no_such_name(&e("Name or service not known")));
    assert!(is_no_such_name(&e("No address associated with hostname")));
    assert!(!is_no_such_name(&e("Temporary failure in name resolution")));
    assert!(!is_no_such_name(&io::Error::from(
        io::ErrorKind::ConnectionRefused
    )));
}

// ---------------------------------------------------------------------------
// The order of the methods, with a scripted `get`

/// Runs [`by_methods`] with `answers` by URL prefix (advanced: "a",
/// direct: "d"); returns the lookup and the (method, budget) asked.
fn scripted(
    domain: &str,
    advanced: Answer,
    direct: Answer,
    per_request: Duration,
) -> (Lookup, Vec<(String, Duration)>) {
    let clock = Cell::new(Duration::ZERO);
    let asked = RefCell::new(Vec::new());
    let lookup = by_methods(
        "Joe.Doe",
        domain,
        Duration::from_secs(2),
        || clock.get(),
        |url, budget| {
            let method = if url.starts_with("https://openpgpkey.") {
                "advanced"
            } else {
                "direct"
            };
            asked.borrow_mut().push((url.to_owned(), budget));
            clock.set(clock.get() + per_request);
            if method == "advanced" {
                advanced.clone()
            } else {
                direct.clone()
            }
        },
    );
    (lookup, asked.into_inner())
}

#[test]
fn the_advanced_method_comes_first_and_a_key_there_ends_it() {
    let (lookup, asked) = scripted(
        "example.org",
        Answer::Key(b"key".to_vec()),
        Answer::Failed("never asked".into()),
        Duration::ZERO,
    );
    assert_eq!(lookup, Lookup::Found(b"key".to_vec()));
    assert_eq!(asked.len(), 1);
    assert!(asked[0].0.starts_with("https://openpgpkey.example.org/"));
    assert_eq!(asked[0].1, Duration::from_secs(2));
}

#[test]
fn no_such_host_404_or_empty_at_the_advanced_host_falls_back_to_direct() {
    for advanced in [Answer::NoSuchHost, Answer::NoKey] {
        let (lookup, asked) = scripted(
            "example.org",
            advanced.clone(),
            Answer::Key(b"direct key".to_vec()),
            Duration::ZERO,
        );
        assert_eq!(
            lookup,
            Lookup::Found(b"direct key".to_vec()),
            "{advanced:?}"
        );
        assert_eq!(asked.len(), 2);
        assert!(
            asked[1]
                .0
                .starts_with("https://example.org/.well-known/openpgpkey/hu/")
        );
    }
    let (lookup, _) = scripted(
        "example.org",
        Answer::NoSuchHost,
        Answer::NoSuchHost,
        Duration::ZERO,
    );
    assert_eq!(lookup, Lookup::NotFound);
}

#[test]
fn another_failure_at_the_advanced_host_is_the_answer() {
    let (lookup, asked) = scripted(
        "example.org",
        Answer::Failed("the server answered HTTP 500".into()),
        Answer::Key(b"direct key".to_vec()),
        Duration::ZERO,
    );
    assert_eq!(
        lookup,
        Lookup::Unavailable("openpgpkey.example.org: the server answered HTTP 500".into())
    );
    assert_eq!(asked.len(), 1);
}

#[test]
fn the_direct_method_gets_what_the_first_left() {
    let (lookup, asked) = scripted(
        "example.org",
        Answer::NoKey,
        Answer::Failed("no answer".into()),
        Duration::from_millis(1500),
    );
    assert_eq!(asked[1].1, Duration::from_millis(500));
    assert_eq!(lookup, Lookup::Unavailable("example.org: no answer".into()));
    // Nothing left: the direct method is not asked.
    let (lookup, asked) = scripted(
        "example.org",
        Answer::NoKey,
        Answer::Key(b"k".to_vec()),
        Duration::from_secs(2),
    );
    assert_eq!(asked.len(), 1);
    assert_eq!(
        lookup,
        Lookup::Unavailable("example.org: no answer within 2s".into())
    );
}

#[test]
fn an_idn_domain_is_asked_in_a_labels_and_a_literal_not_at_all() {
    let (_, asked) = scripted(
        "Bücher.Example",
        Answer::NoKey,
        Answer::NoKey,
        Duration::ZERO,
    );
    assert!(asked[0].0.starts_with(
        "https://openpgpkey.xn--bcher-kva.example/.well-known/openpgpkey/xn--bcher-kva.example/hu/"
    ));
    for domain in ["[192.0.2.1]", "", "a/b.example", "ex ample.org"] {
        let (lookup, asked) = scripted(domain, Answer::NoKey, Answer::NoKey, Duration::ZERO);
        assert_eq!(lookup, Lookup::NotFound, "{domain}");
        assert!(asked.is_empty(), "{domain}");
    }
}

// ---------------------------------------------------------------------------
// The cache

/// A directory that answers from a script and counts the questions.
struct Script {
    answer: Lookup,
    asked: Cell<usize>,
}

impl KeyDirectory for Script {
    fn lookup(&self, _local: &str, _domain: &str) -> Lookup {
        self.asked.set(self.asked.get() + 1);
        self.answer.clone()
    }
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

#[test]
fn a_found_key_is_kept_for_cache_time() {
    let config = WkdConfig::default();
    let dir = Script {
        answer: Lookup::Found(b"key".to_vec()),
        asked: Cell::new(0),
    };
    let mut cache = WkdCache::default();
    let first = cache.lookup(&dir, "joe", "Example.org", at(0), &config);
    assert_eq!(first, Lookup::Found(b"key".to_vec()));
    let again = cache.lookup(&dir, "joe", "example.ORG", at(86_399), &config);
    assert_eq!(again, first);
    assert_eq!(dir.asked.get(), 1);
    assert_eq!(cache.get("joe@EXAMPLE.org", at(86_399)), Some(&first));
    assert_eq!(
        cache.get("Joe@example.org", at(10)),
        None,
        "local parts are kept as given"
    );
    assert_eq!(cache.get("joe@example.org", at(86_400)), None);
    cache.lookup(&dir, "joe", "example.org", at(86_400), &config);
    assert_eq!(dir.asked.get(), 2);
}

#[test]
fn not_found_and_unavailable_are_kept_for_negative_cache_time() {
    let config = WkdConfig::default();
    for answer in [
        Lookup::NotFound,
        Lookup::Unavailable("x: too many redirects".into()),
    ] {
        let mut cache = WkdCache::default();
        cache.put("joe@example.org", answer.clone(), at(0), &config);
        assert_eq!(cache.get("joe@example.org", at(3599)), Some(&answer));
        assert_eq!(cache.get("joe@example.org", at(3600)), None);
    }
    let off = WkdConfig {
        negative_cache_time: Duration::ZERO,
        ..WkdConfig::default()
    };
    let mut cache = WkdCache::default();
    cache.put("joe@example.org", Lookup::NotFound, at(0), &off);
    assert!(cache.is_empty());
}

#[test]
fn a_clock_set_back_expires_an_entry() {
    let mut cache = WkdCache::default();
    cache.put(
        "joe@example.org",
        Lookup::NotFound,
        at(100),
        &WkdConfig::default(),
    );
    assert_eq!(cache.get("joe@example.org", at(99)), None);
}

#[test]
fn the_cache_is_bounded_and_drops_the_oldest() {
    // Nothing expires here: the oldest goes.
    let config = WkdConfig {
        negative_cache_time: Duration::from_secs(86_400),
        ..WkdConfig::default()
    };
    let mut cache = WkdCache::default();
    for i in 0..MAX_CACHED_ADDRESSES as u64 {
        cache.put(
            &format!("u{i}@example.org"),
            Lookup::NotFound,
            at(i),
            &config,
        );
    }
    assert_eq!(cache.len(), MAX_CACHED_ADDRESSES);
    let now = at(MAX_CACHED_ADDRESSES as u64);
    cache.put("new@example.org", Lookup::NotFound, now, &config);
    assert_eq!(cache.len(), MAX_CACHED_ADDRESSES);
    assert!(cache.get("new@example.org", now).is_some());
    assert!(cache.get("u1@example.org", now).is_some());
    assert!(!cache.entries.contains_key("u0@example.org"));

    // Full of entries an hour old or more: the expired ones all go.
    let config = WkdConfig::default();
    let mut cache = WkdCache::default();
    for i in 0..MAX_CACHED_ADDRESSES as u64 {
        cache.put(
            &format!("u{i}@example.org"),
            Lookup::NotFound,
            at(i),
            &config,
        );
    }
    let now = at(MAX_CACHED_ADDRESSES as u64);
    cache.put("new@example.org", Lookup::NotFound, now, &config);
    assert_eq!(cache.len(), 3599 + 1);
    assert!(!cache.entries.contains_key("u6400@example.org"));
    assert!(cache.get("u6401@example.org", now).is_some());

    // Key bytes are bounded too: the oldest key goes.
    let mut cache = WkdCache::default();
    let big = vec![7u8; (MAX_CACHED_BYTES / 2) as usize];
    cache.put("a@example.org", Lookup::Found(big.clone()), at(0), &config);
    cache.put("b@example.org", Lookup::Found(big.clone()), at(1), &config);
    cache.put("c@example.org", Lookup::Found(big), at(2), &config);
    assert_eq!(cache.len(), 2);
    assert!(cache.get("a@example.org", at(3)).is_none());
    assert!(cache.get("c@example.org", at(3)).is_some());
}

#[test]
fn the_cache_round_trips_through_bytes() {
    let config = WkdConfig::default();
    let mut cache = WkdCache::default();
    let key: Vec<u8> = (0..=255u8).collect();
    cache.put(
        "joe@example.org",
        Lookup::Found(key.clone()),
        at(0),
        &config,
    );
    cache.put("ann@example.org", Lookup::NotFound, at(1), &config);
    cache.put(
        "bob@example.org",
        Lookup::Unavailable("x: y".into()),
        at(2),
        &config,
    );
    let bytes = cache.to_bytes();
    let back = WkdCache::from_bytes(&bytes).expect("the cache reads back");
    assert_eq!(back, cache);
    assert_eq!(
        back.get("joe@example.org", at(5)),
        Some(&Lookup::Found(key))
    );
    // Keys are base64, not a list of numbers.
    assert!(String::from_utf8_lossy(&bytes).contains("\"AAECAwQF"));
}

#[test]
fn a_corrupt_cache_is_an_error() {
    let mut cache = WkdCache::default();
    cache.put(
        "joe@example.org",
        Lookup::Found(b"key".to_vec()),
        at(0),
        &WkdConfig::default(),
    );
    let good = String::from_utf8(cache.to_bytes()).expect("JSON");
    for bad in [
        String::new(),
        "not json".to_owned(),
        good[..good.len() - 3].to_owned(),
        good.replace("\"format\":1", "\"format\":2"),
        good.replace("a2V5", "!!!"),
        good.replace("a2V5", ""),
        good.replace("joe@example.org", "joe-example.org"),
        good.replace("joe@example.org", "joe@EXAMPLE.org"),
    ] {
        let result = WkdCache::from_bytes(bad.as_bytes());
        assert!(
            matches!(result, Err(WkdError::Cache(_))),
            "{bad:?} gave {result:?}"
        );
    }
}

#[test]
fn a_long_reason_is_cut_short() {
    let mut cache = WkdCache::default();
    let long = "x".repeat(5000);
    cache.put(
        "joe@example.org",
        Lookup::Unavailable(long),
        at(0),
        &WkdConfig::default(),
    );
    match cache.get("joe@example.org", at(1)) {
        Some(Lookup::Unavailable(why)) => assert!(why.len() <= MAX_REASON),
        other => panic!("{other:?}"),
    }
    assert!(WkdCache::from_bytes(&cache.to_bytes()).is_ok());
}

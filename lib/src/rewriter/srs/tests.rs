//! Golden vectors from postsrsd's own tests (secret `tops3cr3t`, time
//! 1577836860 = 2020-01-01 00:01 UTC, day stamp `2W`), chains, rotation,
//! every refusal, secrets files, and property tests of reversal.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// postsrsd's test time: 2020-01-01 00:01:00 UTC, stamp `2W`.
const T: u64 = 1_577_836_860;
const DAY: u64 = 86_400;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn a(s: &str) -> Address {
    Address::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn settings(separator: char, max_age_days: u64, exclude: &[&str]) -> SrsConfig {
    SrsConfig {
        separator,
        max_age: Duration::from_secs(max_age_days * DAY),
        exclude_domains: exclude.iter().map(|s| s.to_string()).collect(),
        ..SrsConfig::default()
    }
}

fn srs_at(domain: &str, secrets: &[&str], separator: char) -> Srs {
    let secrets = SrsSecrets::new(secrets).unwrap();
    Srs::new(&settings(separator, 21, &[]), domain, secrets).unwrap()
}

/// The codec of postsrsd's tests.
fn postsrsd() -> Srs {
    srs_at("example.com", &["tops3cr3t"], '=')
}

/// Forwards, and checks that the result (built without a check) parses.
fn forward(srs: &Srs, addr: &str, now: u64) -> String {
    let out = srs.forward(&a(addr), at(now)).unwrap();
    assert_eq!(Address::parse(out.as_str()), Ok(out.clone()));
    out.to_string()
}

/// Reverses, and checks that the result (built without a full check) parses.
fn reverse(srs: &Srs, addr: &str, now: u64) -> Result<Option<String>, SrsError> {
    let out = srs.reverse(&a(addr), at(now))?;
    if let Some(out) = &out {
        assert_eq!(Address::parse(out.as_str()).as_ref(), Ok(out));
    }
    Ok(out.map(|x| x.to_string()))
}

#[test]
fn postsrsd_vectors() {
    let srs = postsrsd();
    assert_eq!(
        forward(&srs, "test@otherdomain.com", T),
        "SRS0=vmyz=2W=otherdomain.com=test@example.com"
    );
    assert_eq!(
        forward(&srs, "sender@otherdomain.com", T),
        "SRS0=9KJ+=2W=otherdomain.com=sender@example.com"
    );
    let back = |s: &str| reverse(&srs, s, T).unwrap().unwrap();
    // postsrsd 2.2.6 and later write base64url (`9KJ-`); both pass.
    for hash in ["9KJ+", "9KJ-", "9kj-"] {
        assert_eq!(
            back(&format!(
                "SRS0={hash}=2W=otherdomain.com=sender@example.com"
            )),
            "sender@otherdomain.com"
        );
    }
    assert_eq!(
        back("SRS0=vmyz=2W=otherdomain.com=test@example.com"),
        "test@otherdomain.com"
    );
    // Any case: the tag, the hash, the stamp, and the hashed fields
    // (lowercased before hashing), as postsrsd's blackbox tests have it.
    assert_eq!(
        back("srs0=xjo9=2v=otherdomain.com=test@example.com"),
        "test@otherdomain.com"
    );
    assert_eq!(
        back("SRS0=XJO9=2V=OTHERDOMAIN.COM=TEST@EXAMPLE.COM"),
        "TEST@OTHERDOMAIN.COM"
    );
    assert_eq!(
        back("SRS1=JIBX=thirddomain.com==opaque+string@example.com"),
        "SRS0=opaque+string@thirddomain.com"
    );
    // postsrsd refuses these two stamps as six months old or ahead.
    assert!(matches!(
        reverse(&srs, "SRS0=te87=T7=otherdomain.com=test@example.com", T),
        Err(SrsError::Expired { .. })
    ));
    assert!(matches!(
        reverse(&srs, "SRS0=VcIb=7N=otherdomain.com=test@example.com", T),
        Err(SrsError::FromFuture { .. })
    ));
    assert_eq!(
        reverse(&srs, "SRS0=FAKE=2V=otherdomain.com=test@example.com", T),
        Err(SrsError::BadHash)
    );
}

#[test]
fn not_srs_addresses_are_none() {
    let srs = postsrsd();
    for s in [
        "test@example.com",
        "SRS2=vmyz=2W=otherdomain.com=test@example.com",
        "SRS0_vmyz=2W=otherdomain.com=test@example.com",
        "SRS0@example.com",
        "SRS@example.com",
        "xSRS0=vmyz=2W=otherdomain.com=test@example.com",
        "\"john doe\"@example.com",
    ] {
        assert_eq!(reverse(&srs, s, T), Ok(None), "{s}");
    }
    assert!(is_srs("SRS0=x") && is_srs("srs1+x") && is_srs("Srs0-"));
    assert!(!is_srs("SRS0") && !is_srs("SRS0*x") && !is_srs("SRS2=x") && !is_srs(""));
}

#[test]
fn round_trips_with_each_separator() {
    for sep in ['=', '+', '-'] {
        let srs = srs_at("fwd.example.net", &["s3cret"], sep);
        for orig in [
            "alice@example.org",
            "Alice.Smith+tag@Mail.Example.ORG",
            "a=b=c@example.org",
            "jörg@bücher.example",
            "x@[192.0.2.1]",
        ] {
            let srs0 = forward(&srs, orig, T);
            assert!(srs0.starts_with(&format!("SRS0{sep}")), "{srs0}");
            assert!(srs0.ends_with("@fwd.example.net"), "{srs0}");
            assert_eq!(
                reverse(&srs, &srs0, T + 3 * DAY),
                Ok(Some(orig.into())),
                "{srs0}"
            );
        }
    }
}

#[test]
fn any_separator_is_accepted_back() {
    let srs = postsrsd();
    for sep in ["=", "+", "-"] {
        let s = format!("SRS0{sep}vmyz=2W=otherdomain.com=test@example.com");
        assert_eq!(
            reverse(&srs, &s, T),
            Ok(Some("test@otherdomain.com".into()))
        );
    }
}

/// original → hop 1 (SRS0) → hop 2 (SRS1) → hop 3 (SRS1, same first hop)
/// and back, each hop with its own secret and separator.
#[test]
fn srs1_chains() {
    let hop1 = srs_at("first.example", &["one"], '+');
    let hop2 = srs_at("second.example", &["two"], '=');
    let hop3 = srs_at("third.example", &["three"], '-');
    let srs0 = forward(&hop1, "bob@origin.example", T);
    assert!(srs0.starts_with("SRS0+"), "{srs0}");
    let srs1 = forward(&hop2, &srs0, T);
    // The SRS0 part keeps its own separator: `first.example=+HHHH=...`.
    let opaque = &srs0["SRS0".len()..srs0.find('@').unwrap()];
    assert_eq!(&srs1[..5], "SRS1=", "{srs1}");
    assert!(
        srs1.ends_with(&format!("=first.example={opaque}@second.example")),
        "{srs1}"
    );
    assert_eq!(
        srs1.len(),
        "SRS1=HHHH=first.example=".len() + opaque.len() + "@second.example".len()
    );
    let srs1b = forward(&hop3, &srs1, T);
    assert!(srs1b.starts_with("SRS1-"), "{srs1b}");
    assert!(
        srs1b.ends_with(&format!("=first.example={opaque}@third.example")),
        "{srs1b}"
    );
    // Back: each SRS1 leads to the first hop's SRS0 address, which only the
    // first hop can open.
    let to_first = format!("SRS0{opaque}@first.example");
    assert_eq!(reverse(&hop3, &srs1b, T), Ok(Some(to_first.clone())));
    assert_eq!(reverse(&hop2, &srs1, T), Ok(Some(to_first.clone())));
    assert_eq!(reverse(&hop2, &srs1b, T), Err(SrsError::BadHash));
    assert_eq!(
        reverse(&hop1, &to_first, T + DAY),
        Ok(Some("bob@origin.example".into()))
    );
    assert_eq!(reverse(&hop3, &to_first, T), Err(SrsError::BadHash));
}

#[test]
fn srs1_needs_its_srs0_part() {
    let srs = postsrsd();
    for (s, err) in [
        ("SRS1=@example.com", Part::Hash),
        ("SRS1==thirddomain.com==x@example.com", Part::Hash),
        ("SRS1=JIBX@example.com", Part::Domain),
        ("SRS1=JIBX==opaque@example.com", Part::Domain),
        ("SRS1=JIBX=thirddomain.com@example.com", Part::Srs0Part),
        ("SRS1=JIBX=thirddomain.com=@example.com", Part::Srs0Part),
        ("SRS1=JIBX=thirddomain.com==@example.com", Part::Srs0Part),
        (
            "SRS1=JIBX=thirddomain.com=opaque@example.com",
            Part::Srs0Part,
        ),
    ] {
        assert_eq!(reverse(&srs, s, T), Err(SrsError::Missing(err)), "{s}");
    }
    // Forwarding such a malformed SRS1 address wraps it as an ordinary
    // sender, which reverses to itself.
    let odd = "SRS1=JIBX=thirddomain.com=opaque@other.example";
    let out = forward(&srs, odd, T);
    assert!(out.starts_with("SRS0="), "{out}");
    assert_eq!(reverse(&srs, &out, T), Ok(Some(odd.into())));
}

#[test]
fn rotation_first_signs_all_verify() {
    let old = srs_at("example.com", &["old"], '=');
    let both = srs_at("example.com", &["new", "old"], '=');
    let new = srs_at("example.com", &["new"], '=');
    let by_old = forward(&old, "a@b.example", T);
    let by_both = forward(&both, "a@b.example", T);
    assert_ne!(by_old, by_both);
    assert_eq!(by_both, forward(&new, "a@b.example", T));
    assert_eq!(reverse(&both, &by_old, T), Ok(Some("a@b.example".into())));
    assert_eq!(reverse(&both, &by_both, T), Ok(Some("a@b.example".into())));
    assert_eq!(reverse(&new, &by_old, T), Err(SrsError::BadHash));
}

#[test]
fn hash_rules() {
    let srs = postsrsd();
    let good = "SRS0=vmyz=2W=otherdomain.com=test@example.com";
    // Case is ignored (postsrsd always, Mail::SRS with a warning).
    for hash in ["VMYZ", "VmYz", "vmyz"] {
        let s = good.replace("vmyz", hash);
        assert_eq!(
            reverse(&srs, &s, T),
            Ok(Some("test@otherdomain.com".into()))
        );
    }
    // Each digit counts.
    for (i, c) in [(0, 'w'), (1, 'n'), (2, 'x'), (3, 'a')] {
        let mut h: Vec<char> = "vmyz".chars().collect();
        h[i] = c;
        let s = good.replace("vmyz", &h.iter().collect::<String>());
        assert_eq!(reverse(&srs, &s, T), Err(SrsError::BadHash), "{s}");
    }
    assert_eq!(
        reverse(&srs, &good.replace("vmyz", "vmy"), T),
        Err(SrsError::HashLength(3))
    );
    // A longer hash must be a longer prefix of the digest (Mail::SRS).
    let mut digits = [0u8; HASH_MAX];
    let full = digest(
        srs.secrets.signing(),
        &["2W", "otherdomain.com", "test"],
        HASH_MAX,
        &mut digits,
    )
    .to_owned();
    assert_eq!(full.len(), HASH_MAX);
    for len in 1..HASH_MAX {
        let mut d = [0u8; HASH_MAX];
        let short = digest(
            srs.secrets.signing(),
            &["2W", "otherdomain.com", "test"],
            len,
            &mut d,
        );
        assert_eq!(short, &full[..len]);
    }
    assert!(full.starts_with("vmyz"), "{full}");
    for len in [5, 8, HASH_MAX] {
        let s = good.replace("vmyz", &full[..len]);
        assert_eq!(
            reverse(&srs, &s, T),
            Ok(Some("test@otherdomain.com".into())),
            "{len}"
        );
    }
    let s = good.replace("vmyz", &format!("{}x", &full[..5]));
    assert_eq!(reverse(&srs, &s, T), Err(SrsError::BadHash));
    let s = good.replace("vmyz", &format!("{full}A"));
    assert_eq!(
        reverse(&srs, &s, T),
        Err(SrsError::HashLength(HASH_MAX + 1))
    );
    // The hashed fields are tied together: a changed field breaks the
    // hash...
    assert_eq!(
        reverse(&srs, "SRS0=vmyz=2W=otherdomain.com=tesT2@example.com", T),
        Err(SrsError::BadHash)
    );
    assert_eq!(
        reverse(&srs, "SRS0=vmyz=2X=otherdomain.com=test@example.com", T),
        Err(SrsError::BadHash)
    );
    // ...but the fields are hashed one after the other with nothing
    // between them (in every peer: the scheme's hash input), so moving the
    // border between domain and local part keeps the hash. Interop forbids
    // a fix; the forger still needs an address of ours to start from.
    assert_eq!(
        reverse(&srs, "SRS0=vmyz=2W=otherdomain.co=mtest@example.com", T),
        Ok(Some("mtest@otherdomain.co".into()))
    );
}

#[test]
fn stamps_expire_and_may_be_a_day_ahead() {
    let srs = postsrsd();
    let s = "SRS0=vmyz=2W=otherdomain.com=test@example.com";
    let ok = Ok(Some("test@otherdomain.com".to_string()));
    // Valid through day 21 after its own, both counted (Mail::SRS, postsrsd).
    assert_eq!(reverse(&srs, s, T), ok);
    assert_eq!(reverse(&srs, s, T + 21 * DAY), ok);
    assert_eq!(
        reverse(&srs, s, T + 22 * DAY),
        Err(SrsError::Expired {
            age: 22,
            max_age: 21
        })
    );
    // A day ahead passes (another MX host past midnight); two do not.
    assert_eq!(reverse(&srs, s, T - DAY), ok);
    assert_eq!(
        reverse(&srs, s, T - 2 * DAY),
        Err(SrsError::FromFuture { days: 2 })
    );
    // The stamp repeats every 1024 days.
    assert_eq!(reverse(&srs, s, T + 1024 * DAY), ok);
    assert!(reverse(&srs, s, T + 512 * DAY).is_err());
    // The hash is checked first: a forged old address is a bad hash.
    assert_eq!(
        reverse(
            &srs,
            "SRS0=FAKE=2W=otherdomain.com=test@example.com",
            T + 100 * DAY
        ),
        Err(SrsError::BadHash)
    );
    // A longer max_age keeps it longer.
    let long = Srs::new(
        &settings('=', 60, &[]),
        "example.com",
        SrsSecrets::new(["tops3cr3t"]).unwrap(),
    )
    .unwrap();
    assert_eq!(reverse(&long, s, T + 60 * DAY), ok);
    assert!(reverse(&long, s, T + 61 * DAY).is_err());
}

#[test]
fn truncated_and_empty_parts() {
    let srs = postsrsd();
    for (s, err) in [
        ("SRS0=@example.com", SrsError::Missing(Part::Hash)),
        (
            "SRS0==2W=otherdomain.com=test@example.com",
            SrsError::Missing(Part::Hash),
        ),
        ("SRS0=XjO9@example.com", SrsError::Missing(Part::Timestamp)),
        ("SRS0=XjO9=@example.com", SrsError::Missing(Part::Timestamp)),
        ("SRS0=XjO9=2V@example.com", SrsError::Missing(Part::Domain)),
        (
            "SRS0=XjO9=2V==test@example.com",
            SrsError::Missing(Part::Domain),
        ),
        (
            "SRS0=XjO9=2V=otherdomain.com@example.com",
            SrsError::Missing(Part::LocalPart),
        ),
        (
            "SRS0=XjO9=2V=otherdomain.com=@example.com",
            SrsError::Missing(Part::LocalPart),
        ),
        (
            "SRS0=XjO9=2=otherdomain.com=test@example.com",
            SrsError::BadTimestamp,
        ),
        (
            "SRS0=XjO9=2VV=otherdomain.com=test@example.com",
            SrsError::BadTimestamp,
        ),
        (
            "SRS0=XjO9=21=otherdomain.com=test@example.com",
            SrsError::BadTimestamp,
        ),
        (
            "SRS0=XjO9=2é=otherdomain.com=test@example.com",
            SrsError::BadTimestamp,
        ),
        (
            "SRS0=X=2W=otherdomain.com=test@example.com",
            SrsError::HashLength(1),
        ),
    ] {
        assert_eq!(reverse(&srs, s, T), Err(err), "{s}");
    }
    // The local part keeps any further `=`: it was split off last.
    let srs0 = forward(&srs, "a=b@otherdomain.com", T);
    assert_eq!(
        reverse(&srs, &srs0, T),
        Ok(Some("a=b@otherdomain.com".into()))
    );
}

#[test]
fn a_reversal_that_is_no_address_is_refused() {
    // Signed by us but not a valid address when put back together: only
    // possible with an address made by something else with our secret.
    let srs = postsrsd();
    let mut digits = [0u8; HASH_MAX];
    let hash = digest(
        srs.secrets.signing(),
        &["2W", "bad_domain!", "x"],
        4,
        &mut digits,
    )
    .to_owned();
    let s = format!("SRS0={hash}=2W=bad_domain!=x@example.com");
    assert_eq!(reverse(&srs, &s, T), Err(SrsError::BadOriginal));
}

#[test]
fn quoted_local_parts_travel_without_their_quotes() {
    let srs = postsrsd();
    let out = forward(&srs, "\"john doe\"@otherdomain.com", T);
    assert!(
        out.starts_with("\"SRS0=") && out.ends_with("=otherdomain.com=john doe\"@example.com"),
        "{out}"
    );
    // Signed as postsrsd signs what Postfix hands it: `john doe`.
    let mut digits = [0u8; HASH_MAX];
    let hash = digest(
        srs.secrets.signing(),
        &["2W", "otherdomain.com", "john doe"],
        4,
        &mut digits,
    );
    assert_eq!(
        out,
        format!("\"SRS0={hash}=2W=otherdomain.com=john doe\"@example.com")
    );
    assert_eq!(
        reverse(&srs, &out, T),
        Ok(Some("\"john doe\"@otherdomain.com".into()))
    );
    // Escapes inside quotes survive the round trip; needless quotes go.
    let odd = r#""a\"b\\c@d"@otherdomain.com"#;
    let out = forward(&srs, odd, T);
    assert_eq!(reverse(&srs, &out, T), Ok(Some(odd.into())));
    let out = forward(&srs, "\"plain\"@otherdomain.com", T);
    assert_eq!(out, forward(&srs, "plain@otherdomain.com", T));
}

#[test]
fn too_long_is_an_error_not_a_cut() {
    let srs = postsrsd();
    let local = "x".repeat(300);
    // The longest original local part that still fits.
    let room = 254 - "SRS0=HHHH=TT=otherdomain.com=@example.com".len();
    let just = format!("{}@otherdomain.com", &local[..room]);
    let out = forward(&srs, &just, T);
    assert_eq!(out.len(), 254);
    let over = format!("{}@otherdomain.com", &local[..room + 1]);
    assert_eq!(srs.forward(&a(&over), at(T)), Err(SrsError::TooLong));
    assert_eq!(
        srs.forward(&a("\"\"@otherdomain.com"), at(T)),
        Err(SrsError::EmptySender)
    );
}

#[test]
fn which_senders_are_rewritten() {
    let secrets = SrsSecrets::new(["s"]).unwrap();
    let srs = Srs::new(
        &settings(
            '=',
            21,
            &["Kept.Example", "bücher.example", ".family.example"],
        ),
        "Fwd.Example.NET",
        secrets,
    )
    .unwrap();
    assert_eq!(srs.domain(), "fwd.example.net");
    let rewrites = |s: &str| srs.rewrites(&a(s));
    assert!(rewrites("a@other.example"));
    assert!(!rewrites("a@fwd.example.net"));
    assert!(!rewrites("a@FWD.example.Net"));
    assert!(!rewrites("a@kept.example"));
    assert!(!rewrites("a@KEPT.EXAMPLE"));
    assert!(!rewrites("a@bücher.example"));
    assert!(!rewrites("a@BÜCHER.example"));
    assert!(!rewrites("a@xn--bcher-kva.example"));
    assert!(!rewrites("a@one.family.example"));
    assert!(!rewrites("a@deep.one.Family.example"));
    // The leading dot means subdomains only, like postsrsd's -X.
    assert!(rewrites("a@family.example"));
    assert!(rewrites("a@notfamily.example"));
    assert!(rewrites("a@sub.kept.example"));
    assert!(rewrites("a@[192.0.2.1]"));
    // The sender as a whole: the null sender and ours stay, others change.
    let now = at(T);
    assert_eq!(srs.rewrite_sender(&Sender::Null, now), Ok(Sender::Null));
    let ours = Sender::Mailbox(a("x@fwd.example.net"));
    assert_eq!(srs.rewrite_sender(&ours, now), Ok(ours.clone()));
    let theirs = Sender::Mailbox(a("x@other.example"));
    let Ok(Sender::Mailbox(out)) = srs.rewrite_sender(&theirs, now) else {
        panic!("not rewritten");
    };
    assert!(out.as_str().starts_with("SRS0=") && out.domain() == "fwd.example.net");
}

#[test]
fn an_idn_srs_domain_is_written_as_an_a_label() {
    let srs = srs_at("Bücher.Example", &["s"], '=');
    assert_eq!(srs.domain(), "xn--bcher-kva.example");
    let out = forward(&srs, "a@b.example", T);
    assert!(
        out.ends_with("@xn--bcher-kva.example") && out.is_ascii(),
        "{out}"
    );
    assert!(!srs.rewrites(&a("a@bücher.example")));
}

#[test]
fn setup_errors() {
    let secrets = || SrsSecrets::new(["s"]).unwrap();
    let new = |s: &SrsConfig, d: &str| Srs::new(s, d, secrets()).err();
    assert!(matches!(
        new(&settings('*', 21, &[]), "example.com"),
        Some(SrsConfigError::Separator('*'))
    ));
    assert!(matches!(
        new(&settings('=', 0, &[]), "example.com"),
        Some(SrsConfigError::MaxAge)
    ));
    assert!(matches!(
        new(&settings('=', MAX_AGE_DAYS + 1, &[]), "example.com"),
        Some(SrsConfigError::MaxAge)
    ));
    assert!(new(&settings('=', MAX_AGE_DAYS, &[]), "example.com").is_none());
    for bad in ["", "bad domain", "a..b", "[192.0.2.1]", "x@y"] {
        assert!(
            matches!(
                new(&settings('=', 21, &[]), bad),
                Some(SrsConfigError::Domain(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        new(&settings('=', 21, &["ok.example", "not ok"]), "example.com"),
        Some(SrsConfigError::Exclude(e)) if e == "not ok"
    ));
    assert!(SrsSecrets::new(Vec::<&[u8]>::new()).is_none());
    assert!(SrsSecrets::new([""]).is_none());
    assert_eq!(
        format!("{:?}", SrsSecrets::new(["tops3cr3t", "x"]).unwrap()),
        "SrsSecrets(2 secrets)"
    );
    let srs = srs_at("example.com", &["tops3cr3t"], '=');
    assert!(!format!("{srs:?}").contains("tops3cr3t"));
}

#[test]
fn errors_name_no_address() {
    let errors = [
        SrsError::Missing(Part::Srs0Part),
        SrsError::BadTimestamp,
        SrsError::HashLength(2),
        SrsError::BadHash,
        SrsError::Expired {
            age: 30,
            max_age: 21,
        },
        SrsError::FromFuture { days: 3 },
        SrsError::TooLong,
        SrsError::EmptySender,
        SrsError::BadOriginal,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(
            !text.contains('@') && text.starts_with("SRS address"),
            "{text}"
        );
        assert_eq!(e.status(), status::BAD_SENDER_SYNTAX);
        assert_eq!(e.status().to_string(), "5.1.7");
    }
}

#[test]
fn stamps_follow_the_srs_base32_alphabet() {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    for day in 0..STAMP_CYCLE * 2 {
        let mut digits = [0u8; 4];
        let s = stamp(at(day * DAY + 4000), &mut digits).to_owned();
        let d = (day % STAMP_CYCLE) as usize;
        let expect = [ALPHABET[d >> 5], ALPHABET[d & 31]];
        assert_eq!(s.as_bytes(), expect, "day {day}");
        assert_eq!(stamp_day(&s), Some(day % STAMP_CYCLE));
        assert_eq!(stamp_day(&s.to_lowercase()), Some(day % STAMP_CYCLE));
    }
    let mut digits = [0u8; 4];
    assert_eq!(stamp(at(T), &mut digits), "2W");
    for bad in ["", "A", "AAA", "A1", "A8", "A=", "é"] {
        assert_eq!(stamp_day(bad), None, "{bad}");
    }
}

fn write_secrets(dir: &Path, bytes: &[u8], mode: u32) -> PathBuf {
    let path = dir.join("srs.secrets");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn secrets_file() {
    let dir = tempfile::tempdir().unwrap();
    // Blank lines skipped, CRLF taken off, `#` is part of a secret.
    let path = write_secrets(dir.path(), b"\n\ntops3cr3t\r\n\n#old secret\nlast", 0o600);
    let secrets = SrsSecrets::load(&path).unwrap();
    assert_eq!(secrets.len(), 3);
    let srs = Srs::new(&settings('=', 21, &[]), "example.com", secrets).unwrap();
    assert_eq!(
        forward(&srs, "test@otherdomain.com", T),
        "SRS0=vmyz=2W=otherdomain.com=test@example.com"
    );
    let by_comment = srs_at("example.com", &["#old secret"], '=');
    let s = forward(&by_comment, "test@otherdomain.com", T);
    assert!(reverse(&srs, &s, T).is_ok_and(|r| r.is_some()));

    let path = write_secrets(dir.path(), b"tops3cr3t\n", 0o640);
    let err = SrsSecrets::load(&path).unwrap_err();
    assert!(matches!(err, SrsConfigError::Mode { mode: 0o640, .. }));
    let text = err.to_string();
    assert!(text.contains("0640") && text.contains("0600") && text.contains("srs.secrets"));
    assert!(!text.contains("tops3cr3t"));
    assert_eq!(err.to_failure().exit, crate::exit::Sysexit::Config);

    let path = write_secrets(dir.path(), b"\n\r\n\n", 0o400);
    assert!(matches!(
        SrsSecrets::load(&path),
        Err(SrsConfigError::NoSecret { .. })
    ));
    let path = write_secrets(dir.path(), &vec![b'x'; 70_000], 0o600);
    assert!(matches!(
        SrsSecrets::load(&path),
        Err(SrsConfigError::TooLarge { .. })
    ));
    let missing = SrsSecrets::load(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(missing, SrsConfigError::Read { .. }));
    // A file never made is a set-up step not taken: 78, not a retry loop.
    assert_eq!(missing.to_failure().exit, crate::exit::Sysexit::Config);
    assert!(matches!(
        SrsSecrets::load(dir.path()),
        Err(SrsConfigError::NotFile { .. } | SrsConfigError::Mode { .. })
    ));
}

#[test]
fn secrets_file_of_another_user_is_refused() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it gives a file to another user"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_secrets(dir.path(), b"s\n", 0o600);
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let err = SrsSecrets::load(&path).unwrap_err();
    assert!(
        matches!(
            err,
            SrsConfigError::Owner {
                owner: 65534,
                process: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("uid 65534"), "{err}");
}

#[test]
fn from_config_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        hostname: "host.example".into(),
        ..Config::default()
    };
    config.srs.secrets_file = write_secrets(dir.path(), b"tops3cr3t\n", 0o600);
    let srs = Srs::from_config(&config).unwrap();
    assert_eq!(srs.domain(), "host.example");
    config.srs.domain = "example.com".into();
    let srs = Srs::from_config(&config).unwrap();
    assert_eq!(
        forward(&srs, "test@otherdomain.com", T),
        "SRS0=vmyz=2W=otherdomain.com=test@example.com"
    );
}

// ---------------------------------------------------------------------------
// Property tests (proptest; cargo-fuzz needs nightly). Modest case counts.

fn config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

fn valid_address() -> impl Strategy<Value = Address> {
    prop_oneof![
        "[A-Za-z0-9][A-Za-z0-9._+=-]{0,20}@[A-Za-z0-9]{1,10}(\\.[A-Za-z]{2,6}){1,2}",
        "\"[a-z =@\\\\\"]{1,10}\"@example\\.org",
        "[a-z]{1,8}@\\[192\\.0\\.2\\.[0-9]{1,3}\\]",
        "[a-zäöüÄÖ]{1,8}@[a-zü]{1,8}\\.example",
        "(SRS0|srs0|SRS1)[=+-][A-Za-z0-9=+/-]{0,30}@[a-z]{1,8}\\.example",
    ]
    .prop_filter_map("a valid address", |s| Address::parse(&s).ok())
}

/// Anything that parses as an address, weighted towards SRS shapes.
fn any_address() -> impl Strategy<Value = Address> {
    prop_oneof![
        "(SRS0|srs1|SRS1|Srs0)[=+-][^@\\x00-\\x1f]{0,80}@example\\.com",
        "(SRS0|SRS1)[=+-][A-Za-z0-9+/]{0,6}(=[A-Za-z0-9.+/=-]{0,12}){0,5}@example\\.com",
        "\"SRS[01][=+-][^\"\\x00-\\x1f]{0,40}\"@example\\.com",
        "[^@\\x00-\\x1f]{1,60}@[a-z]{1,8}\\.com",
    ]
    .prop_filter_map("a valid address", |s| Address::parse(&s).ok())
}

/// The same mailbox: quotes that are not needed say nothing.
fn same_mailbox(a: &Address, b: &Address) -> bool {
    unquoted(a.local_part()) == unquoted(b.local_part()) && a.domain() == b.domain()
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn reverse_never_panics(addr in any_address(), days in 0u64..3000) {
        let srs = postsrsd();
        if let Ok(Some(out)) = srs.reverse(&addr, at(T + days * DAY)) {
            prop_assert_eq!(Address::parse(out.as_str()), Ok(out.clone()));
        }
    }

    #[test]
    fn forward_then_reverse_gives_the_sender_back(
        addr in valid_address(),
        sep in prop::sample::select(vec!['=', '+', '-']),
        days in 0u64..=21,
        start in 0u64..4_000_000_000,
    ) {
        let srs = srs_at("fwd.example.net", &["new", "older"], sep);
        let now = at(start);
        match srs.forward(&addr, now) {
            Ok(out) => {
                // Built without a check (valid by construction): check it.
                prop_assert_eq!(Address::parse(out.as_str()), Ok(out.clone()));
                let back = srs.reverse(&out, at(start + days * DAY));
                prop_assert!(matches!(back, Ok(Some(_))), "{} -> {} -> {:?}", addr, out, back);
                let back = back.unwrap().unwrap();
                prop_assert_eq!(Address::parse(back.as_str()), Ok(back.clone()));
                // An SRS1 leads to the first hop, whose SRS0 it keeps whole.
                if unquoted(out.local_part()).starts_with("SRS1") {
                    prop_assert!(unquoted(back.local_part()).starts_with("SRS0"));
                    prop_assert!(is_srs(&unquoted(addr.local_part())));
                } else {
                    prop_assert!(same_mailbox(&back, &addr), "{} -> {} -> {}", addr, out, back);
                }
            }
            Err(e) => prop_assert!(
                e == SrsError::TooLong
                    || (e == SrsError::EmptySender && unquoted(addr.local_part()).is_empty())
            ),
        }
    }

    /// Fields signed with our secret reverse to a valid address or to
    /// BadOriginal, whatever they hold (the reversal checks only the
    /// length and the domain of what it builds).
    #[test]
    fn signed_fields_reverse_to_valid_addresses(
        host in "[^=@\\x00-\\x1f\\x7f]{1,20}",
        user in "[^\\x00-\\x1f\\x7f]{1,20}",
    ) {
        let srs = postsrsd();
        let mut digits = [0u8; HASH_MAX];
        let hash = digest(srs.secrets.signing(), &["2W", &host, &user], 4, &mut digits).to_owned();
        let local = format!("SRS0={hash}=2W={host}={user}");
        let mut s = String::new();
        let quote = needs_quotes(&local);
        if quote {
            s.push('"');
        }
        push_local(&mut s, &local, quote);
        if quote {
            s.push('"');
        }
        s.push_str("@example.com");
        let Ok(addr) = Address::parse(&s) else {
            return Ok(());
        };
        match srs.reverse(&addr, at(T)) {
            Ok(Some(out)) => {
                prop_assert_eq!(Address::parse(out.as_str()), Ok(out.clone()));
                let local = unquoted(out.local_part()).into_owned();
                prop_assert_eq!(local, user);
            }
            Ok(None) => prop_assert!(false, "{} not SRS", s),
            Err(e) => prop_assert!(matches!(e, SrsError::BadOriginal | SrsError::Missing(_)), "{}: {:?}", s, e),
        }
    }

    #[test]
    fn a_changed_character_is_refused(addr in valid_address(), pos in 0usize..200, c in "[a-z0-9=]") {
        let srs = postsrsd();
        let out = srs.forward(&addr, at(T));
        prop_assume!(out.is_ok());
        let out = out.unwrap();
        let s = out.as_str();
        let pos = pos % s.len();
        prop_assume!(s.is_char_boundary(pos) && s.is_char_boundary(pos + 1));
        let changed = format!("{}{}{}", &s[..pos], c, &s[pos + 1..]);
        prop_assume!(!changed.eq_ignore_ascii_case(s));
        if let Ok(changed) = Address::parse(&changed) {
            // Only the domain at the end is free to change (not signed).
            if let Ok(Some(back)) = srs.reverse(&changed, at(T)) {
                prop_assert!(pos > s.rfind('@').unwrap() || same_mailbox(&back, &addr)
                    || back.as_str().eq_ignore_ascii_case(addr.as_str()),
                    "{} accepted as {}", changed, back);
            }
        }
    }
}

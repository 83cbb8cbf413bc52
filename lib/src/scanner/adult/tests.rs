use super::*;

fn rules() -> AdultRules {
    AdultRules::new(&BTreeMap::new(), &[]).unwrap()
}

fn message(subject: &[u8]) -> Vec<u8> {
    let mut m = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: ".to_vec();
    m.extend_from_slice(subject);
    m.extend_from_slice(b"\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n");
    m
}

fn reason(r: &AdultRules, subject: &str) -> Option<AdultReason> {
    r.check(&message(subject.as_bytes()), "alice@example.org")
        .map(|f| f.reason)
}

fn word(lang: &str) -> Option<AdultReason> {
    Some(AdultReason::Word { lang: lang.into() })
}

#[test]
fn the_can_spam_label_is_the_strongest_sign() {
    let r = rules();
    for s in [
        "SEXUALLY-EXPLICIT: Hot pictures",
        "  sexually-explicit: porn",
        "=?UTF-8?B?U0VYVUFMTFktRVhQTElDSVQ6IGhlbGxv?=",
    ] {
        assert_eq!(reason(&r, s), Some(AdultReason::Label), "{s}");
    }
    for s in [
        "Re: SEXUALLY-EXPLICIT: hi",
        "SEXUALLY-EXPLICIT hi",
        "SEXUALLY-EXPLICI",
    ] {
        assert_eq!(reason(&r, s), None, "{s}");
    }
}

#[test]
fn listed_words_are_found_whole_and_in_any_case() {
    let r = rules();
    for (s, lang) in [
        ("Hot sex tonight", "en"),
        ("SEX", "en"),
        ("(porn)", "en"),
        ("xxx-videos for you", "en"),
        ("Neue Nacktbilder", "de"),
        ("Photos érotiques", "fr"),
        ("=?ISO-8859-1?Q?Photos_=E9rotiques?=", "fr"),
        ("=?utf-8?q?Sexe_gratuit?=", "fr"),
        ("Chicas desnudas", "es"),
        ("literatura ERÓTICA", "es"),
        ("literatura erotica", "es"),
    ] {
        assert_eq!(reason(&r, s), word(lang), "{s}");
    }
}

#[test]
fn common_obfuscations_are_folded() {
    let r = rules();
    for s in [
        "FREE P0RN",
        "$3X chat",
        "5ex",
        "s.e.x",
        "S-E-X tonight",
        "p*o*r*n",
        "se.x",
        "s_e_x",
        "pr0n p0rno",
        "s1ut",
        "sl*ut",
        "se\u{ad}x",
        "s\u{200b}ex",
        "séx",
        "h0rny",
        "=?utf-8?q?p=C3=B6rn?=",
    ] {
        assert!(reason(&r, s).is_some(), "{s:?} not found");
    }
}

#[test]
fn innocent_subjects_are_not_flagged() {
    let r = rules();
    for s in [
        "Essex county council",
        "Sussex, Middlesex and Wessex",
        "middlesex",
        "A brass sextant for sale",
        "Quarterly analysis",
        "Scunthorpe United v Grimsby",
        "Find a therapist",
        "Unisex sizes",
        "s e x",
        "sexxx",
        "Top 5 ex-partners",
        "U.S. exports",
        "AT&T and S&P 500 news",
        "2024-05-01 report",
        "Sextet in E flat",
        "Cocktail hour",
        "",
        "   ",
    ] {
        assert_eq!(reason(&r, s), None, "{s:?}");
    }
}

#[test]
fn the_body_is_never_read() {
    let r = rules();
    let mut m = message(b"Minutes of the meeting");
    m.extend_from_slice(&b"sex porn xxx SEXUALLY-EXPLICIT: nudes\r\n".repeat(100));
    m.extend_from_slice(b"Subject: porn\r\n");
    assert_eq!(r.check(&m, "alice@example.org"), None);
    // Nor a header without a Subject.
    let m = b"From: a@example.org\r\nX-Note: porn\r\n\r\nsex\r\n";
    assert_eq!(r.check(m, "a@example.org"), None);
}

#[test]
fn only_the_first_64_kib_and_1000_characters_are_read() {
    let r = rules();
    let mut m = b"X-Filler: ".to_vec();
    m.extend_from_slice(&b"a".repeat(MAX_HEADER_BYTES));
    m.extend_from_slice(b"\r\nSubject: porn\r\n\r\n");
    assert_eq!(r.check(&m, ""), None);
    let long = format!("{} porn", "word ".repeat(200));
    assert_eq!(reason(&r, &long), None);
    let early = format!("porn {}", "word ".repeat(10_000));
    assert_eq!(reason(&r, &early), word("en"));
}

#[test]
fn bad_bytes_and_bad_encoded_words_do_not_break_it() {
    let r = rules();
    assert_eq!(
        r.check(&message(b"\xff\xfe sex \x80"), ""),
        Some(AdultFinding {
            reason: AdultReason::Word { lang: "en".into() }
        })
    );
    assert_eq!(r.check(&message(b"\xffsex\x80"), ""), None);
    for s in [
        &b"=?x-unknown?B?!!!?="[..],
        b"=?utf-8?B?////?=",
        b"=?utf-8?B?/w==?= =?utf-8?Q?=FF=FE?=",
        b"=?utf-8?Q?=?=",
        b"=?=?=?=?",
        b"\x00\x01\x02",
    ] {
        assert_eq!(
            r.check(&message(s), ""),
            None,
            "{}",
            String::from_utf8_lossy(s)
        );
    }
    assert_eq!(r.check(b"", ""), None);
    assert_eq!(
        r.check(b"Subject: sex", ""),
        word("en").map(|reason| AdultFinding { reason })
    );
}

#[test]
fn seeded_random_headers_never_panic() {
    let r = rules();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"Subject: sex=?utf-8?BQ?\r\n\t @$0135.-*\xc3\xa9\xff";
    for _ in 0..2000 {
        let mut m = Vec::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 300) as usize;
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            m.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = r.check(&m, "x@example.org");
    }
}

#[test]
fn sender_domains_are_matched_exactly_or_below() {
    let senders = vec![
        "adult.example".to_owned(),
        "*.xxx".to_owned(),
        " *.Porn.Example ".to_owned(),
    ];
    let r = AdultRules::new(&BTreeMap::new(), &senders).unwrap();
    let m = message(b"Hello");
    let check = |sender: &str| r.check(&m, sender).map(|f| f.reason);
    assert_eq!(check("a@adult.example"), Some(AdultReason::Sender));
    assert_eq!(check("<a@ADULT.example>"), Some(AdultReason::Sender));
    assert_eq!(check("a@sub.adult.example"), None);
    assert_eq!(check("a@promo.example.xxx"), Some(AdultReason::Sender));
    assert_eq!(check("a@xxx"), None);
    assert_eq!(check("a@news.porn.example"), Some(AdultReason::Sender));
    assert_eq!(check("a@porn.example"), None);
    assert_eq!(check(""), None);
    assert_eq!(check("not an address"), None);
    // A From address counts as much as the envelope sender.
    let from = b"From: Promo <deals@mail.site.xxx>\r\nSubject: Hello\r\n\r\nHi\r\n";
    assert_eq!(
        r.check(from, "bounce@esp.example").map(|f| f.reason),
        Some(AdultReason::Sender)
    );
    let group = b"From: team: a@example.org, b@adult.example;\r\nSubject: Hello\r\n\r\n";
    assert_eq!(
        r.check(group, "").map(|f| f.reason),
        Some(AdultReason::Sender)
    );
    // The label and words are stronger.
    assert_eq!(
        r.check(&message(b"porn"), "a@adult.example")
            .map(|f| f.reason),
        word("en")
    );
    assert_eq!(
        r.check(&message(b"SEXUALLY-EXPLICIT: porn"), "a@adult.example")
            .map(|f| f.reason),
        Some(AdultReason::Label)
    );
    // Without listed senders, no sender is adult.
    assert_eq!(rules().check(from, "a@adult.example"), None);
}

#[test]
fn configured_lists_replace_the_built_in_ones_per_language() {
    let mut words = BTreeMap::new();
    words.insert(
        "en".to_owned(),
        vec!["Banana".to_owned(), " kiwi ".to_owned()],
    );
    words.insert("de".to_owned(), vec![]);
    words.insert("it".to_owned(), vec!["nudo".to_owned(), "Éro".to_owned()]);
    let r = AdultRules::new(&words, &[]).unwrap();
    assert_eq!(reason(&r, "Cheap BANANAS and a banana"), word("en"));
    assert_eq!(reason(&r, "K1WI"), word("en"));
    assert_eq!(reason(&r, "porn"), None);
    assert_eq!(reason(&r, "ficken"), None);
    assert_eq!(reason(&r, "sexe"), word("fr"));
    assert_eq!(reason(&r, "Nudo ero"), word("it"));
    // A word in two lists: the first language alphabetically.
    let mut words = BTreeMap::new();
    words.insert("zz".to_owned(), vec!["sex".to_owned()]);
    words.insert("aa".to_owned(), vec!["sex".to_owned()]);
    assert_eq!(
        reason(&AdultRules::new(&words, &[]).unwrap(), "sex"),
        word("aa")
    );
}

#[test]
fn bad_configuration_is_an_error_naming_it() {
    let one = |lang: &str, w: &str| {
        let mut words = BTreeMap::new();
        words.insert(lang.to_owned(), vec!["fine".to_owned(), w.to_owned()]);
        AdultRules::new(&words, &[]).err()
    };
    assert_eq!(
        one("en", ""),
        Some(AdultError::EmptyWord { lang: "en".into() })
    );
    assert_eq!(
        one("en", "   "),
        Some(AdultError::EmptyWord { lang: "en".into() })
    );
    for w in [
        "two words",
        "p0rn",
        "s.e.x",
        "x-rated",
        "\u{200b}",
        &"a".repeat(MAX_WORD + 1),
    ] {
        assert!(
            matches!(one("en", w), Some(AdultError::NotAWord { .. })),
            "{w:?}"
        );
    }
    for lang in ["EN", "", "e n", "1en", "en\n", &"a".repeat(17)] {
        assert!(
            matches!(one(lang, "fine"), Some(AdultError::Language { .. })),
            "{lang:?}"
        );
    }
    let mut words = BTreeMap::new();
    words.insert("en".to_owned(), vec!["word".to_owned(); MAX_WORDS + 1]);
    assert!(matches!(
        AdultRules::new(&words, &[]),
        Err(AdultError::TooManyWords { .. })
    ));
    for entry in [
        "",
        "*.",
        "*",
        "@",
        "@example.org",
        "a@example.org",
        "*.*.example",
        "exa mple.org",
    ] {
        let e = AdultRules::new(&BTreeMap::new(), &[entry.to_owned()]).err();
        assert!(matches!(e, Some(AdultError::Sender { .. })), "{entry:?}");
    }
    let e = one("en", "two words").unwrap().to_string();
    assert!(
        e.contains("adult_words.en") && e.contains("two words"),
        "{e}"
    );
}

#[test]
fn descriptions_are_ascii_and_echo_nothing() {
    let r = AdultRules::new(&BTreeMap::new(), &["adult.example".to_owned()]).unwrap();
    for (subject, sender) in [
        ("SEXUALLY-EXPLICIT: naughty", "a@example.org"),
        ("porn", "a@example.org"),
        ("hello", "someone@adult.example"),
    ] {
        let d = r
            .check(&message(subject.as_bytes()), sender)
            .unwrap()
            .describe();
        assert!(d.is_ascii() && !d.contains('\n') && d.len() < 80, "{d}");
        assert!(
            !d.to_lowercase().contains("porn") && !d.contains("naughty"),
            "{d}"
        );
        assert!(!d.contains('@') && !d.contains("adult.example"), "{d}");
    }
    let d = AdultFinding {
        reason: AdultReason::Word { lang: "en".into() },
    }
    .describe();
    assert_eq!(d, "subject has a listed word (en)");
}

#[test]
fn the_built_in_lists_are_valid_and_quoted_in_the_documentation() {
    let source = include_str!("../adult.rs");
    let doc: String = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join(" ");
    for (lang, words) in BUILT_IN {
        let line = format!("`{lang}`:");
        assert!(doc.contains(&line), "{lang} is not in the documentation");
        for w in *words {
            assert!(fold_word(w).is_ok(), "{w}");
            assert!(
                doc.contains(&format!(" {w},"))
                    || doc.contains(&format!(" {w} "))
                    || doc.ends_with(w),
                "{w} is not in the documentation"
            );
        }
    }
    let r = rules();
    for (lang, words) in BUILT_IN {
        for w in *words {
            assert_eq!(reason(&r, w), word(lang), "{w}");
        }
    }
}

//! Golden-style tests of the TXT alias parser: records in, a plain-text
//! rendering of what was read out, one case per entry kind and per
//! malformed input.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::*;

fn prefixes() -> Vec<String> {
    vec!["forward-email".into(), "postern".into()]
}

fn records(rs: &[&str]) -> Vec<String> {
    rs.iter().map(|r| r.to_string()).collect()
}

/// One line per rule (`pattern action -> targets`), then `port N`, then
/// one `problem: ...` line per problem.
fn render(p: &Published) -> String {
    let mut out = String::new();
    for r in &p.rules {
        let pattern = match &r.pattern {
            Pattern::Exact(n) => format!("exact {n}"),
            Pattern::Regex(s) => format!("regex /{s}/"),
            Pattern::CatchAll => "catch-all".to_owned(),
        };
        let action = match r.action {
            Action::Forward => "forward",
            Action::Drop => "drop",
            Action::Defer => "defer",
            Action::Refuse => "refuse",
        };
        let _ = write!(out, "{pattern} {action}");
        if !r.targets.is_empty() {
            let _ = write!(out, " -> {}", r.targets.join(", "));
        }
        out.push('\n');
    }
    if let Some(port) = p.port {
        let _ = writeln!(out, "port {port}");
    }
    for problem in &p.problems {
        let _ = writeln!(out, "problem: {problem}");
    }
    out
}

fn read(rs: &[&str]) -> String {
    render(&parse(&records(rs), &prefixes(), None).expect("records with our prefix"))
}

#[track_caller]
fn golden(rs: &[&str], expected: &str) {
    let got = read(rs);
    let expected = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert_eq!(got, expected, "records: {rs:?}");
}

// ---------------------------------------------------------------------------
// Every entry kind

#[test]
fn exact_alias() {
    golden(
        &["forward-email=Hello:user@example.net"],
        "exact hello forward -> user@example.net",
    );
}

#[test]
fn catch_all_address_and_url() {
    golden(
        &["forward-email=user@example.net, https://hooks.example.net/in?x=1"],
        "catch-all forward -> user@example.net, https://hooks.example.net/in?x=1",
    );
}

#[test]
fn exact_alias_to_a_webhook() {
    golden(
        &["forward-email=hook:https://hooks.example.net/a:b"],
        "exact hook forward -> https://hooks.example.net/a:b",
    );
}

#[test]
fn regex_alias_with_group() {
    golden(
        &["forward-email=/^(support|info)$/:user+$1@example.net"],
        "regex /^(support|info)$/ forward -> user+$1@example.net",
    );
    // Flags g and i are read and change nothing; ${N} is a group too.
    golden(
        &["forward-email=/^Sales-(.+)$/gi:${1}@example.net"],
        "regex /^Sales-(.+)$/ forward -> ${1}@example.net",
    );
}

#[test]
fn commas_colons_and_slashes_inside_a_regex_are_its_own() {
    golden(
        &[r"forward-email=/^a{1,3}:[/,]\/x$/:one@example.net,two:two@example.net"],
        r"regex /^a{1,3}:[/,]\/x$/ forward -> one@example.net
          exact two forward -> two@example.net",
    );
}

#[test]
fn drop_defer_refuse() {
    golden(
        &[
            "forward-email=!quiet,!!away,!!!gone,!/^spam-.*$/,!!/^later$/i,!!!/^no$/:ignored@example.net",
        ],
        "exact quiet drop
         exact away defer
         exact gone refuse
         regex /^spam-.*$/ drop
         regex /^later$/ defer
         regex /^no$/ refuse",
    );
    // `!name:target`: the target means nothing (Forward Email allows it).
    golden(
        &["forward-email=!old:someone@example.net"],
        "exact old drop",
    );
}

#[test]
fn port_record() {
    golden(
        &["forward-email-port=2525", "forward-email=a:b@example.net"],
        "exact a forward -> b@example.net
         port 2525",
    );
    golden(
        &["postern-port=0", "postern-port=x", "postern-port=70000"],
        "problem: port record 1: not a port number (1 to 65535)
         problem: port record 2: not a port number (1 to 65535)
         problem: port record 3: not a port number (1 to 65535)",
    );
    golden(
        &[
            "postern-port=2526",
            "postern-port=2525",
            "postern-port=2525",
        ],
        "port 2525
         problem: port record 2: another port than the first port record; the first is used",
    );
}

#[test]
fn several_records_multi_string_joined_and_both_prefixes() {
    // Records are read sorted, forward-email's before postern's.
    golden(
        &[
            "postern=zed:z@example.net",
            "forward-email=b:b@example.net",
            "v=spf1 include:example.net -all",
            "forward-email=a:a@example.net, c:c@example.net",
        ],
        "exact a forward -> a@example.net
         exact c forward -> c@example.net
         exact b forward -> b@example.net
         exact zed forward -> z@example.net",
    );
}

#[test]
fn prefix_is_matched_without_regard_to_case_and_others_are_ignored() {
    golden(
        &["Forward-Email=a:b@example.net"],
        "exact a forward -> b@example.net",
    );
    assert_eq!(
        parse(
            &records(&["v=spf1 -all", "forward-emailx=a:b@c.d"]),
            &prefixes(),
            None
        ),
        None
    );
    assert_eq!(parse(&[], &prefixes(), None), None);
    // Only the configured prefixes count.
    assert_eq!(
        parse(
            &records(&["forward-email=a:b@example.net"]),
            &["postern".into()],
            None
        ),
        None
    );
}

#[test]
fn several_entries_for_one_name_make_one_rule() {
    golden(
        &[
            "forward-email=a:one@example.net,b:x@example.net,A:two@example.net,a:ONE@example.net,a:one@example.net",
        ],
        "exact a forward -> one@example.net, two@example.net
         exact b forward -> x@example.net",
    );
    let p = parse(
        &records(&["forward-email=a:one@example.net, a:two@example.net"]),
        &prefixes(),
        None,
    )
    .unwrap();
    assert_eq!(
        p.rules[0].origin,
        Origin::Txt {
            entry: "a:one@example.net,a:two@example.net".into()
        }
    );
}

#[test]
fn whitespace_and_empty_entries() {
    golden(
        &["forward-email=  a : b@example.net ,, , c:d@example.net,  "],
        "exact a forward -> b@example.net
         exact c forward -> d@example.net",
    );
}

// ---------------------------------------------------------------------------
// Contradictions: a `!` entry wins over forwarding wherever it stands; the
// first of two `!` modes wins.

#[test]
fn a_bang_entry_wins_over_forwarding_before_or_after_it() {
    golden(
        &["forward-email=a:x@example.net,a:y@example.net,!a"],
        "exact a drop
         problem: entry 1: not used: entry 3 disables the same alias (a ! entry wins over forwarding)
         problem: entry 2: not used: entry 3 disables the same alias (a ! entry wins over forwarding)",
    );
    golden(
        &["forward-email=!!!a,a:x@example.net"],
        "exact a refuse
         problem: entry 2: not used: entry 1 disables the same alias (a ! entry wins over forwarding)",
    );
}

#[test]
fn the_first_bang_mode_wins() {
    golden(
        &["forward-email=!a,!!!a,!a"],
        "exact a drop
         problem: entry 2: not used: entry 1 gives the same alias another ! mode (the first wins)",
    );
}

// ---------------------------------------------------------------------------
// Malformed entries: a problem each, by number, never quoted; the good
// entries still count.

#[test]
fn bad_entries_are_problems_and_good_ones_count() {
    golden(
        &["forward-email=a:b@example.net,secret:not-an-address,c:,:x@example.net,d@e..f,g:example.org,!!!!h"],
        "exact a forward -> b@example.net
         problem: entry 2: target has no @: forwarding to a whole domain or host is not supported
         problem: entry 3: target is empty
         problem: entry 4: alias name is empty
         problem: entry 5: target is not an address, maildb:NAME or an http(s) URL: address domain is not a host name or an address literal
         problem: entry 6: target has no @: forwarding to a whole domain or host is not supported
         problem: entry 7: more than three ! before a name",
    );
    let p = parse(
        &records(&["forward-email=x:secret-local@"]),
        &prefixes(),
        None,
    )
    .unwrap();
    assert!(
        !p.problems.iter().any(|pr| pr.contains("secret")),
        "{:?}",
        p.problems
    );
}

#[test]
fn maildb_targets_are_refused_from_dns() {
    golden(
        &["forward-email=a:maildb:alice,maildb:bob,/^(x)$/:maildb:$1"],
        "problem: entry 1: maildb: targets are not allowed in DNS records (only the alias store delivers to local mailboxes)
         problem: entry 2: target has no @: forwarding to a whole domain or host is not supported
         problem: entry 3: maildb: targets are not allowed in DNS records (only the alias store delivers to local mailboxes)",
    );
}

#[test]
fn bad_alias_names() {
    golden(
        &["forward-email=a+b:x@example.net,a b:x@example.net,a@b:x@example.net,!,!!"],
        "problem: entry 1: alias name holds +: plus-addressing takes +tag off before lookup, so it never matches
         problem: entry 2: alias name holds a character not allowed in a local part
         problem: entry 3: alias name holds a character not allowed in a local part
         problem: entry 4: ! without a name
         problem: entry 5: ! without a name",
    );
    let long = format!("forward-email={}:x@example.net", "n".repeat(65));
    golden(
        &[&long],
        "problem: entry 1: alias name is longer than 64 octets",
    );
}

#[test]
fn empty_records() {
    golden(&["forward-email="], "");
    golden(&["forward-email=   ", "postern=,,,"], "");
    let p = parse(&records(&["forward-email="]), &prefixes(), None).unwrap();
    assert_eq!(p, Published::default());
}

#[test]
fn bad_regexes() {
    golden(
        &[
            "forward-email=/(unclosed/:x@example.net,/a/x:y@example.net,//:y@example.net,/^a$/,/[/:x@example.net,/ok/:y@example.net",
        ],
        "regex /ok/ forward -> y@example.net
         problem: entry 1: bad regex: error: unclosed group
         problem: entry 2: regex flags other than g and i are not read
         problem: entry 3: regex is empty
         problem: entry 4: regex alias has no :target
         problem: entry 5: regex has no closing /",
    );
    // Lookaround and backreferences are not in a linear-time engine.
    let p = read(&[r"forward-email=/^(?=a)/:x@example.net,/(a)\1/:x@example.net"]);
    assert_eq!(p.lines().count(), 2, "{p}");
    assert!(
        p.lines()
            .all(|l| l.starts_with("problem: entry ") && l.contains("bad regex")),
        "{p}"
    );
}

#[test]
fn dollar_without_a_group() {
    golden(
        &[
            "forward-email=/^abc$/:$1@example.net,/^(a)(b)$/:$3@example.net,/^(a)$/:$0@example.net,/^(a)$/:${2}x@example.net,/^(a)$/:a$$b@example.net",
        ],
        "regex /^(a)$/ forward -> a$$b@example.net
         problem: entry 1: target uses $1 but the regex has no group
         problem: entry 2: target uses $3 but the regex has 2 groups
         problem: entry 3: target uses $0 but the regex has 1 group
         problem: entry 4: target uses $2 but the regex has 1 group",
    );
}

#[test]
fn catastrophic_regexes_are_linear_or_refused_and_never_hang() {
    let started = Instant::now();
    // Backtracking killers are fine here: matching is linear-time.
    let p = parse(
        &records(&["forward-email=/(a*)*b/:x@example.net,/(x+x+)+y/:y@example.net"]),
        &prefixes(),
        None,
    )
    .unwrap();
    assert_eq!(p.rules.len(), 2, "{:?}", p.problems);
    for rule in &p.rules {
        let Pattern::Regex(source) = &rule.pattern else {
            panic!("a regex rule")
        };
        let re = compile_pattern(source).unwrap();
        assert!(!re.is_match(&"a".repeat(100_000)) || source.contains('a'));
        assert!(!re.is_match(&"x".repeat(100_000)));
    }
    // A size blow-up is refused when compiled, quickly.
    golden(
        &["forward-email=/a{1000}{1000}/:x@example.net,/(((a{100}){100}){100})/:x@example.net"],
        "problem: entry 1: regex is too large once compiled
         problem: entry 2: regex is too large once compiled",
    );
    // Long sources: over the regex limit, and over the entry limit.
    let long_regex = format!("forward-email=/{}/:x@example.net", "a".repeat(2000));
    golden(
        &[&long_regex],
        "problem: entry 1: regex is longer than 1024 octets",
    );
    let longer = format!(
        "forward-email=/{}/:x@example.net,ok:y@example.net",
        "(a|b)".repeat(1000)
    );
    golden(
        &[&longer],
        "exact ok forward -> y@example.net
         problem: entry 1: entry is longer than 4096 octets",
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn regex_entries_are_bounded() {
    let entries: Vec<String> = (0..MAX_REGEX_ENTRIES + 2)
        .map(|i| format!("/^r{i}$/:x@example.net"))
        .collect();
    let record = format!("forward-email={}", entries.join(","));
    let p = parse(&[record], &prefixes(), None).unwrap();
    assert_eq!(p.rules.len(), MAX_REGEX_ENTRIES);
    assert_eq!(
        p.problems,
        [
            format!("entry 101: more than {MAX_REGEX_ENTRIES} regex entries: this one is not read"),
            format!("entry 102: more than {MAX_REGEX_ENTRIES} regex entries: this one is not read"),
        ]
    );
}

#[test]
fn overlong_records_and_too_many_entries() {
    // Records past MAX_TXT_TEXT are not read, whole.
    let filler = |first: &str| {
        let many: Vec<String> = (0..400)
            .map(|i| format!("{first}{i}:someone-with-a-long-name-{i}@example.net"))
            .collect();
        format!("forward-email={first}:x@example.net,{}", many.join(","))
    };
    let (one, two) = (filler("a"), filler("c"));
    assert!(one.len() < MAX_TXT_TEXT && one.len() + two.len() > MAX_TXT_TEXT);
    let p = parse(
        &[two, "postern=e:z@example.net".into(), one],
        &prefixes(),
        None,
    )
    .unwrap();
    assert!(
        p.rules
            .iter()
            .any(|r| r.pattern == Pattern::Exact("a".into()))
    );
    assert!(
        p.rules
            .iter()
            .all(|r| r.pattern != Pattern::Exact("c".into()))
    );
    assert!(
        p.rules
            .iter()
            .all(|r| r.pattern != Pattern::Exact("e".into()))
    );
    assert_eq!(p.problems.len(), 1);
    assert!(
        p.problems.contains(&format!(
            "record 2: not read: the records pass {MAX_TXT_TEXT} octets in all"
        )),
        "{:?}",
        p.problems
    );
    // More than MAX_ENTRIES entries: the rest are not read.
    let many: Vec<String> = (0..MAX_ENTRIES + 5)
        .map(|i| format!("n{i}:x@example.net"))
        .collect();
    let p = parse(
        &[format!("forward-email={}", many.join(","))],
        &prefixes(),
        None,
    )
    .unwrap();
    assert_eq!(p.rules.len(), MAX_ENTRIES);
    assert_eq!(
        p.problems,
        [format!("entries after the {MAX_ENTRIES}th are not read")]
    );
    // Many targets for one name: bounded.
    let targets: Vec<String> = (0..MAX_RULE_TARGETS + 3)
        .map(|i| format!("a:t{i}@example.net"))
        .collect();
    let p = parse(
        &[format!("forward-email={}", targets.join(","))],
        &prefixes(),
        None,
    )
    .unwrap();
    assert_eq!(p.rules[0].targets.len(), MAX_RULE_TARGETS);
    assert_eq!(p.problems.len(), 3);
    // Problems themselves are bounded.
    let bad: Vec<String> = (0..200).map(|i| format!("bad{i}:nowhere")).collect();
    let p = parse(
        &[format!("forward-email={}", bad.join(","))],
        &prefixes(),
        None,
    )
    .unwrap();
    assert_eq!(p.problems.len(), MAX_PROBLEMS + 1);
    assert_eq!(p.problems.last().unwrap(), "150 more problems not listed");
}

#[test]
fn bytes_that_are_not_utf8_and_control_characters() {
    // The DNS client turns bad bytes into U+FFFD.
    golden(
        &["forward-email=a:b\u{fffd}@example.net,c:d@example.net,e:f\u{7}@example.net"],
        "exact c forward -> d@example.net
         problem: entry 1: entry holds bytes that are not UTF-8
         problem: entry 3: entry holds a control character",
    );
}

#[test]
fn unicode_and_idn() {
    golden(
        &[
            "forward-email=Jürgen:jürgen@bücher.example,ΔΙΚΗ:d@xn--bcher-kva.example,/^(ü+)$/:$1@bücher.example",
        ],
        "exact jürgen forward -> jürgen@bücher.example
         exact δικη forward -> d@xn--bcher-kva.example
         regex /^(ü+)$/ forward -> $1@bücher.example",
    );
}

// ---------------------------------------------------------------------------
// Encrypted values

fn key() -> TxtKey {
    TxtKey::from_bytes(*b"0123456789abcdef0123456789abcdef")
}

#[test]
fn encrypted_value_without_a_key_is_a_clear_problem() {
    let value = encrypt_value(&key(), [1; 12], "a:b@example.net,c:d@example.net");
    let p = parse(
        &records(&[
            &format!("forward-email={value}"),
            "forward-email=x:y@example.net",
        ]),
        &prefixes(),
        None,
    )
    .unwrap();
    assert_eq!(
        render(&p).lines().next(),
        Some("exact x forward -> y@example.net")
    );
    assert_eq!(
        p.problems,
        ["record 1: encrypted TXT value: set aliases.txt_key_file to read it"]
    );
}

#[test]
fn encrypted_value_decrypts_with_the_key() {
    let value = encrypt_value(&key(), [2; 12], "a:b@example.net, !c");
    // The form Forward Email writes: base64 of the hex text of the bytes.
    let hex = BASE64.decode(value.as_bytes()).unwrap();
    assert!(hex.iter().all(u8::is_ascii_hexdigit));
    let p = parse(
        &records(&[&format!("forward-email={value}")]),
        &prefixes(),
        Some(&key()),
    )
    .unwrap();
    assert_eq!(
        render(&p),
        "exact a forward -> b@example.net\nexact c drop\n"
    );

    // The older form: base64 of the bytes themselves.
    let raw = BASE64.encode(&HEXLOWER.decode(&hex).unwrap());
    let p = parse(
        &records(&[&format!("forward-email={raw}")]),
        &prefixes(),
        Some(&key()),
    )
    .unwrap();
    assert_eq!(
        render(&p),
        "exact a forward -> b@example.net\nexact c drop\n"
    );

    // An encrypted port.
    let port = encrypt_value(&key(), [3; 12], "2525");
    let p = parse(
        &records(&[&format!("forward-email-port={port}")]),
        &prefixes(),
        Some(&key()),
    )
    .unwrap();
    assert_eq!(p.port, Some(2525));
}

#[test]
fn encrypted_value_under_another_key_or_tampered() {
    let other = TxtKey::from_bytes([7; 32]);
    let value = encrypt_value(&other, [4; 12], "a:b@example.net");
    let p = parse(
        &records(&[&format!("postern={value}")]),
        &prefixes(),
        Some(&key()),
    )
    .unwrap();
    assert_eq!(
        p.problems,
        [
            "record 1: encrypted TXT value does not open with aliases.txt_key_file (encrypted under another key)"
        ]
    );
    let mut bytes = BASE64
        .decode(encrypt_value(&key(), [5; 12], "a:b@example.net").as_bytes())
        .unwrap();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
    let tampered = BASE64.encode(&bytes);
    let p = parse(
        &records(&[&format!("postern={tampered}")]),
        &prefixes(),
        Some(&key()),
    )
    .unwrap();
    assert_eq!(p.rules, []);
    assert_eq!(p.problems.len(), 1);
    // An encrypted value inside a list is named as such.
    let inner = encrypt_value(&key(), [6; 12], "a:b@example.net");
    let p = parse(
        &records(&[&format!("postern=x:y@example.net,{inner}")]),
        &prefixes(),
        Some(&key()),
    )
    .unwrap();
    assert_eq!(
        p.problems,
        ["entry 2: an encrypted value must be a record of its own (PREFIX=VALUE)"]
    );
}

#[test]
fn short_base64_looking_values_are_plain() {
    golden(
        &["forward-email=abcd"],
        "problem: entry 1: target has no @: forwarding to a whole domain or host is not supported",
    );
}

#[test]
fn key_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let good = write("good", b"0123456789abcdef0123456789abcdef\n", 0o600);
    let k = TxtKey::load(&good).unwrap();
    assert_eq!(format!("{k:?}"), "TxtKey(..)");
    let value = encrypt_value(&k, [8; 12], "a:b@example.net");
    assert!(
        parse(
            &records(&[&format!("postern={value}")]),
            &prefixes(),
            Some(&key())
        )
        .unwrap()
        .problems
        .is_empty()
    );
    assert!(
        TxtKey::load(&write(
            "crlf",
            b"0123456789abcdef0123456789abcdef\r\n",
            0o400
        ))
        .is_ok()
    );

    let open = write("open", b"0123456789abcdef0123456789abcdef", 0o640);
    let e = TxtKey::load(&open).unwrap_err();
    assert!(matches!(e, TxtKeyError::Mode { mode: 0o640, .. }), "{e}");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    for (name, bytes) in [
        ("short", &b"0123"[..]),
        ("long", &[b'a'; 40][..]),
        ("empty", &b""[..]),
    ] {
        let e = TxtKey::load(&write(name, bytes, 0o600)).unwrap_err();
        assert!(matches!(e, TxtKeyError::Length { .. }), "{name}: {e}");
    }
    assert!(matches!(
        TxtKey::load(dir.path()).unwrap_err(),
        TxtKeyError::NotFile { .. }
    ));
    assert!(matches!(
        TxtKey::load(&dir.path().join("missing")).unwrap_err(),
        TxtKeyError::Read { .. }
    ));
}

// ---------------------------------------------------------------------------
// Verification records

#[test]
fn verification_tokens_are_found() {
    let rs = records(&[
        "postern-site-verification=Tok3n_abc",
        " Postern-Site-Verification=second ",
        "postern-site-verification=Tok3n_abc",
        "postern-site-verification=",
        "postern-site-verification=has space",
        "forward-email-site-verification=theirs",
        "forward-email=a:b@example.net",
    ]);
    assert_eq!(verification_tokens(&rs), ["Tok3n_abc", "second"]);
    let long = format!("postern-site-verification={}", "t".repeat(MAX_TOKEN + 1));
    assert!(verification_tokens(&[long]).is_empty());
    assert!(verification_tokens(&[]).is_empty());
}

// ---------------------------------------------------------------------------
// The splitter on its own

#[test]
fn entries_split_at_commas_outside_regexes() {
    assert_eq!(
        split_entries(r" a:b@c.d ,!/x,y/, /[,/]{1,2}\/,/:q@r.s ,/open,next:n@m.o"),
        [
            "a:b@c.d",
            "!/x,y/",
            r"/[,/]{1,2}\/,/:q@r.s",
            "/open",
            "next:n@m.o"
        ]
    );
    assert!(split_entries(" , ,, ").is_empty());
    assert_eq!(split_entries("/\\"), ["/\\"]);
}

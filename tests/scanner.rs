//! postern-scanner, black-box: a corpus of messages, one per rule, each
//! with its expected verdict, through the real binary and a real clamd;
//! per-domain settings; clamd down (defer, or pass when told); the
//! sender checks against a local DNS server (SPF, DMARC, blocklists,
//! lists); greylisting; forged fields removed; bad settings and input.

mod util;

#[path = "../lib/tests/clamd/mod.rs"]
mod clamd;

use std::path::Path;

use clamd::ClamdServer;
use postern::mail::job::{Job, RcptStatus};
use util::dns::{Dnsmasq, Zone};
use util::{RECEIVER, SCANNER, Site, jobs};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scanner-corpus");

/// A site whose scanner asks `clamd` (none: no virus scanning).
fn site(clamd: Option<&ClamdServer>) -> Site {
    let site = Site::new(util::closed_port());
    let endpoint = clamd.map_or(String::new(), ClamdServer::tcp);
    site.configure("scanner", &format!("clamd = \"{endpoint}\""));
    site.configure(
        "scanner",
        "protected_names = [\"PayPal\", \"Example Bank\"]",
    );
    site
}

/// receiver | scanner for a bare message; the scanner's output.
fn scan(
    site: &Site,
    client: Option<&str>,
    sender: &str,
    rcpts: &[&str],
    msg: &[u8],
) -> util::Output {
    let client_arg;
    let mut args = vec!["-f", sender];
    if let Some(ip) = client {
        client_arg = format!("--client-address={ip}");
        args.push(&client_arg);
    }
    args.push("--");
    args.extend_from_slice(rcpts);
    let r = site.run(RECEIVER, &args, msg);
    assert_eq!(r.code, 0, "receiver: {}", r.stderr);
    site.run(SCANNER, &[], &r.stdout)
}

/// The one job a scan wrote.
fn one(out: &util::Output) -> Job {
    assert_eq!(out.code, 0, "scanner: {}", out.stderr);
    let mut js = jobs(&out.stdout);
    assert_eq!(js.len(), 1, "one job");
    js.remove(0)
}

/// The values of header fields named `name` in `msg`'s header section.
fn fields(msg: &[u8], name: &str) -> Vec<String> {
    let end = postern::mail::header::header_end(msg);
    postern::mail::header::fields(&msg[..end])
        .filter(|f| f.is(name))
        .map(|f| f.value())
        .collect()
}

/// The X-Postern-* fields of a message, as `name: value`.
fn tags(msg: &[u8]) -> Vec<String> {
    let end = postern::mail::header::header_end(msg);
    postern::mail::header::fields(&msg[..end])
        .filter(|f| f.name.len() > 10 && f.name[..10].eq_ignore_ascii_case(b"X-Postern-"))
        .map(|f| format!("{}: {}", String::from_utf8_lossy(f.name), f.value()))
        .collect()
}

fn failed(job: &Job, rcpt: &str) -> Option<(String, String)> {
    let r = job
        .envelope
        .recipients
        .iter()
        .find(|r| r.address.as_str() == rcpt)
        .unwrap_or_else(|| panic!("{rcpt} is in the job"));
    match r.status {
        RcptStatus::Failed { code } => {
            Some((code.to_string(), r.diagnostic.clone().unwrap_or_default()))
        }
        RcptStatus::Pending => None,
        ref s => panic!("{rcpt}: unexpected status {s}"),
    }
}

/// A job stream of one job carrying `msg` unchanged.
fn job_of(msg: &[u8], sender: &str, rcpt: &str) -> Vec<u8> {
    use postern::mail::address::{Address, Sender};
    use postern::mail::job::{Envelope, QueueId, Recipient};
    let mut env = Envelope::new(
        QueueId::from_random([7; 8]),
        std::time::SystemTime::now(),
        Sender::parse(sender).expect("a sender"),
    );
    env.recipients
        .push(Recipient::new(Address::parse(rcpt).expect("a recipient")));
    env.eight_bit = !msg.is_ascii();
    Job {
        envelope: env,
        message: msg.to_vec(),
    }
    .to_bytes()
}

#[test]
fn the_corpus_gets_its_expected_verdicts() {
    let clamd = ClamdServer::start();
    let site = site(Some(&clamd));
    let manifest = std::fs::read_to_string(Path::new(CORPUS).join("MANIFEST")).expect("MANIFEST");
    let mut wrong = Vec::new();
    let mut counted = std::collections::BTreeMap::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [file, verdict, rule] = words[..] else {
            panic!("MANIFEST line {line:?}: want FILE VERDICT RULE");
        };
        *counted.entry((verdict, rule)).or_insert(0) += 1;
        let msg = std::fs::read(Path::new(CORPUS).join(file)).expect("corpus file");
        // A job of the file's bytes as they are (the receiver would add a
        // Received: field and move the EICAR that straddles a chunk).
        let out = site.run(
            SCANNER,
            &[],
            &job_of(&msg, "sender@example.org", "user@example.com"),
        );
        if out.code != 0 {
            wrong.push(format!("{file}: exit {} {}", out.code, out.stderr.trim()));
            continue;
        }
        let job = one(&out);
        let refused = failed(&job, "user@example.com");
        let tagged = tags(&job.message);
        let got = match (&refused, tagged.is_empty()) {
            (Some((code, why)), _) => format!("reject {code} {why}"),
            (None, false) => format!("tag {}", tagged.join(" | ")),
            (None, true) => "pass".to_owned(),
        };
        let ok = match verdict {
            "pass" => got == "pass",
            "reject" => refused
                .as_ref()
                .is_some_and(|(code, why)| code == "5.7.1" && why.to_lowercase().contains(rule)),
            "tag" => {
                let want = format!("x-postern-{rule}:");
                refused.is_none() && tagged.iter().any(|t| t.to_lowercase().starts_with(&want))
            }
            v => panic!("MANIFEST: unknown verdict {v}"),
        };
        if !ok {
            wrong.push(format!("{file}: want {verdict} {rule}, got {got}"));
        }
    }
    let total: usize = counted.values().sum();
    assert!(total >= 40, "the corpus has {total} messages");
    for rule in ["executable", "virus", "phishing", "adult"] {
        assert!(
            counted.keys().any(|(v, r)| *r == rule && *v != "pass"),
            "the corpus has a flagged {rule} case"
        );
    }
    assert!(
        counted.get(&("pass", "none")).copied().unwrap_or(0) >= 12,
        "at least 12 look-alikes that must pass"
    );
    assert!(
        wrong.is_empty(),
        "{} wrong of {total}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The log names no address, subject or file name.
    let log = site.log();
    assert!(!log.contains("@example"), "{log}");
    assert!(!log.contains(".exe"), "{log}");
}

/// A message with an executable attachment and the EICAR string in it.
fn exe_message() -> Vec<u8> {
    b"From: a@example.org\nTo: user@example.com\nSubject: tools\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nsee attached\n\
--b\nContent-Type: application/octet-stream; name=\"setup.exe\"\n\
Content-Disposition: attachment; filename=\"setup.exe\"\nContent-Transfer-Encoding: base64\n\n\
TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n--b--\n"
        .to_vec()
}

fn eicar_message() -> Vec<u8> {
    let mut m = b"From: a@example.org\nTo: user@example.com\nSubject: test\n\n".to_vec();
    m.extend_from_slice(&clamd::eicar());
    m.extend_from_slice(b"\n");
    m
}

#[test]
fn domains_get_their_own_rules_and_copies() {
    let clamd = ClamdServer::start();
    let site = site(Some(&clamd));
    site.alias(&["domain", "add", "tagging.example"]);
    site.alias(&[
        "domain",
        "set",
        "tagging.example",
        "executable_action",
        "tag",
    ]);
    site.alias(&["domain", "add", "open.example"]);
    site.alias(&[
        "domain",
        "set",
        "open.example",
        "has_executable_protection",
        "false",
    ]);
    site.alias(&[
        "domain",
        "set",
        "open.example",
        "has_virus_protection",
        "false",
    ]);
    let rcpts = ["a@tagging.example", "b@open.example", "c@strict.example"];
    let out = scan(&site, None, "sender@example.org", &rcpts, &exe_message());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let js = jobs(&out.stdout);
    assert_eq!(js.len(), 2, "a tagged copy and a plain one");
    let tagged = &js[0];
    assert_eq!(tagged.envelope.queue_id, js[1].envelope.queue_id);
    let t = tags(&tagged.message);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(
        t[0].starts_with("X-Postern-Executable: attachment \"setup.exe\""),
        "{t:?}"
    );
    assert_eq!(failed(tagged, "a@tagging.example"), None);
    let (code, why) = failed(tagged, "c@strict.example").expect("c is refused");
    assert_eq!(code, "5.7.1");
    assert!(
        why.starts_with("executable content refused: attachment \"setup.exe\""),
        "{why}"
    );
    assert_eq!(failed(&js[1], "b@open.example"), None);
    assert!(tags(&js[1].message).is_empty());
    assert_eq!(
        util::without_our_trace(&js[1].message),
        exe_message(),
        "the plain copy is as it came"
    );
    assert_eq!(
        tagged.envelope.ret,
        Some(postern::mail::job::Ret::Headers),
        "a bounce returns the headers only"
    );

    // A virus: refused where virus protection is on, passed where off.
    let out = scan(
        &site,
        None,
        "sender@example.org",
        &["b@open.example", "c@strict.example"],
        &eicar_message(),
    );
    let job = one(&out);
    assert_eq!(failed(&job, "b@open.example"), None);
    let (code, why) = failed(&job, "c@strict.example").expect("refused");
    assert_eq!(
        (code.as_str(), why.as_str()),
        ("5.7.1", "virus found: PosternTest.EICAR.UNOFFICIAL")
    );

    // A bad setting value is refused by postern-alias.
    let bad = site.run(
        util::ALIAS,
        &["domain", "set", "open.example", "deny_list", "10.0.0.0/33"],
        b"",
    );
    assert_eq!(bad.code, 65, "{}", bad.stderr);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
}

#[test]
fn clamd_down_defers_the_job_or_passes_it_tagged_when_told() {
    let mut clamd = ClamdServer::start();
    let site = site(Some(&clamd));
    let out = scan(
        &site,
        None,
        "sender@example.org",
        &["user@example.com"],
        b"Subject: x\n\nhello\n",
    );
    assert!(tags(&one(&out).message).is_empty());
    clamd.kill();
    let out = scan(
        &site,
        None,
        "sender@example.org",
        &["user@example.com"],
        b"Subject: x\n\nhello\n",
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing passed on");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("4.7.1 the virus scanner is not available: "),
        "{}",
        out.stderr
    );

    site.configure("scanner", "clamd_failure = \"pass\"");
    let out = scan(
        &site,
        None,
        "sender@example.org",
        &["user@example.com"],
        b"Subject: x\n\nhello\n",
    );
    let job = one(&out);
    assert_eq!(failed(&job, "user@example.com"), None);
    assert_eq!(
        fields(&job.message, "X-Postern-Virus-Scan"),
        ["not scanned: the virus scanner was not available"]
    );
    assert!(
        site.log().contains("passed without a virus scan"),
        "{}",
        site.log()
    );

    // A domain without virus protection never asks clamd.
    site.configure("scanner", "clamd_failure = \"defer\"");
    site.alias(&["domain", "add", "open.example"]);
    site.alias(&[
        "domain",
        "set",
        "open.example",
        "has_virus_protection",
        "false",
    ]);
    let out = scan(
        &site,
        None,
        "sender@example.org",
        &["u@open.example"],
        b"Subject: x\n\nhello\n",
    );
    assert!(tags(&one(&out).message).is_empty());
}

#[test]
fn fields_only_the_scanner_may_write_are_removed_on_the_way_in() {
    let site = site(None);
    let msg = b"Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=forged\n\
Authentication-Results: other.example; spf=fail\nX-Postern-Phishing: none, trust me\n\
x-postern-virus-scan: clean\nFrom: a@example.org\nSubject: hi\n\nX-Postern-Adult: in the body\n";
    let job = one(&scan(
        &site,
        None,
        "a@example.org",
        &["user@example.com"],
        msg,
    ));
    let text = String::from_utf8_lossy(&job.message);
    assert!(!text.contains("forged"), "{text}");
    assert!(!text.contains("trust me"), "{text}");
    assert!(!text.contains("virus-scan"), "{text}");
    assert!(
        text.contains("Authentication-Results: other.example; spf=fail\n"),
        "{text}"
    );
    assert!(text.ends_with("\nX-Postern-Adult: in the body\n"), "{text}");
}

/// A site with a local DNS server publishing SPF and DMARC for
/// example.org (only 198.51.100.10 may send), and a blocklist `bl.test`
/// listing 198.51.100.66 (127.0.0.2) and 198.51.100.67 (the
/// "query refused" code 127.255.255.254).
fn dns_site() -> (Site, Dnsmasq) {
    let zone = Zone::new()
        // DMARC asks the organisational domain's parent too (`_dmarc.org`):
        // whole top-level domains are local, so nothing goes upstream.
        .local("org")
        .local("example")
        .local("test")
        .txt("example.org", &["v=spf1 ip4:198.51.100.10 -all"])
        .txt("_dmarc.example.org", &["v=DMARC1; p=reject"])
        .txt("softfail.example", &["v=spf1 ~all"])
        .host("66.100.51.198.bl.test", "127.0.0.2")
        .host("67.100.51.198.bl.test", "127.255.255.254");
    let dns = Dnsmasq::start(&zone);
    let site = site(None);
    site.configure("dns", &format!("nameservers = [\"{}\"]", dns.nameserver()));
    site.configure("dns", "timeout = \"2s\"");
    site.configure("scanner", "dnsbl_zones = [\"bl.test\"]");
    (site, dns)
}

const FROM_ORG: &[u8] =
    b"From: Alice <alice@example.org>\nTo: user@example.com\nSubject: hi\n\nhello\n";

#[test]
fn spf_dmarc_and_authentication_results_from_a_real_dns_server() {
    let (site, _dns) = dns_site();
    let pass = one(&scan(
        &site,
        Some("198.51.100.10"),
        "alice@example.org",
        &["user@example.com"],
        FROM_ORG,
    ));
    assert_eq!(failed(&pass, "user@example.com"), None);
    let ar = fields(&pass.message, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{ar:?}");
    assert!(ar[0].starts_with("mx.test.example;"), "{ar:?}");
    assert!(ar[0].contains("spf=pass"), "{ar:?}");
    assert!(ar[0].contains("dmarc=pass"), "{ar:?}");
    let summary = pass
        .envelope
        .auth_results
        .clone()
        .expect("auth-results in the envelope");
    assert!(
        summary.contains("spf=pass") && summary.contains("dmarc=pass"),
        "{summary}"
    );
    assert!(
        !summary.contains('@') && !summary.contains("example"),
        "{summary}"
    );
    assert!(tags(&pass.message).is_empty());

    // Another client: SPF fails (tagged by default), DMARC p=reject refuses.
    let job = one(&scan(
        &site,
        Some("198.51.100.99"),
        "alice@example.org",
        &["user@example.com"],
        FROM_ORG,
    ));
    let (code, why) = failed(&job, "user@example.com").expect("refused by DMARC");
    assert_eq!(code, "5.7.26", "{why}");
    assert!(why.contains("DMARC"), "{why}");
    let ar = fields(&job.message, "Authentication-Results");
    assert!(
        ar[0].contains("spf=fail") && ar[0].contains("dmarc=fail"),
        "{ar:?}"
    );

    // DMARC only tags when told; SPF refuses when told.
    site.configure("scanner", "dmarc_action = \"tag\"");
    let job = one(&scan(
        &site,
        Some("198.51.100.99"),
        "alice@example.org",
        &["user@example.com"],
        FROM_ORG,
    ));
    assert_eq!(failed(&job, "user@example.com"), None);
    let t = tags(&job.message);
    assert!(
        t.contains(&"X-Postern-Sender: spf fail".to_owned()),
        "{t:?}"
    );
    assert!(
        t.iter()
            .any(|t| t.starts_with("X-Postern-Sender: dmarc fail")),
        "{t:?}"
    );
    site.configure("scanner", "spf_fail_action = \"reject\"");
    let job = one(&scan(
        &site,
        Some("198.51.100.99"),
        "alice@example.org",
        &["user@example.com"],
        FROM_ORG,
    ));
    assert_eq!(
        failed(&job, "user@example.com").expect("refused").0,
        "5.7.23"
    );

    // Local submission (no client address) is not checked at all.
    let job = one(&scan(
        &site,
        None,
        "alice@example.org",
        &["user@example.com"],
        FROM_ORG,
    ));
    assert_eq!(failed(&job, "user@example.com"), None);
    assert!(fields(&job.message, "Authentication-Results").is_empty());
    assert!(!site.log().contains("alice"), "{}", site.log());
}

#[test]
fn blocklists_and_the_allow_and_deny_lists() {
    let (site, dns) = dns_site();
    let msg = b"From: bob@elsewhere.example\nSubject: hi\n\nhello\n";
    let listed = one(&scan(
        &site,
        Some("198.51.100.66"),
        "bob@elsewhere.example",
        &["user@example.com"],
        msg,
    ));
    let (code, why) = failed(&listed, "user@example.com").expect("listed");
    assert_eq!(
        (code.as_str(), why.as_str()),
        ("5.7.1", "the sending client is listed in bl.test")
    );
    // The "query refused" answer is not a listing.
    let job = one(&scan(
        &site,
        Some("198.51.100.67"),
        "bob@elsewhere.example",
        &["user@example.com"],
        msg,
    ));
    assert_eq!(failed(&job, "user@example.com"), None);
    assert!(site.log().contains("bl.test"), "{}", site.log());
    // Not listed.
    let job = one(&scan(
        &site,
        Some("198.51.100.68"),
        "bob@elsewhere.example",
        &["user@example.com"],
        msg,
    ));
    assert_eq!(failed(&job, "user@example.com"), None);
    // Tag instead of reject.
    site.configure("scanner", "dnsbl_action = \"tag\"");
    let job = one(&scan(
        &site,
        Some("198.51.100.66"),
        "bob@elsewhere.example",
        &["user@example.com"],
        msg,
    ));
    assert_eq!(
        tags(&job.message),
        ["X-Postern-Sender: client listed in bl.test"]
    );
    site.configure("scanner", "dnsbl_action = \"reject\"");

    // An allowed client skips the blocklist; the domain's allow list too.
    site.configure("scanner", "allow = [\"198.51.100.64/30\"]");
    let job = one(&scan(
        &site,
        Some("198.51.100.66"),
        "bob@elsewhere.example",
        &["user@example.com"],
        msg,
    ));
    assert_eq!(failed(&job, "user@example.com"), None);
    site.configure("scanner", "allow = []");
    site.alias(&["domain", "add", "example.com"]);
    site.alias(&[
        "domain",
        "set",
        "example.com",
        "allow_list",
        "@elsewhere.example",
    ]);
    let job = one(&scan(
        &site,
        Some("198.51.100.66"),
        "bob@elsewhere.example",
        &["user@example.com"],
        msg,
    ));
    assert_eq!(failed(&job, "user@example.com"), None);

    // Deny lists refuse whatever else is said.
    site.alias(&["domain", "set", "example.com", "deny_list", "*.example"]);
    let job = one(&scan(
        &site,
        Some("198.51.100.68"),
        "bob@elsewhere.example",
        &["user@example.com", "x@other.test"],
        msg,
    ));
    let (code, why) = failed(&job, "user@example.com").expect("denied");
    assert_eq!(code, "5.7.1");
    assert!(why.contains("deny list"), "{why}");
    assert_eq!(
        failed(&job, "x@other.test"),
        None,
        "another domain's list does not apply"
    );
    drop(dns);
}

#[test]
fn a_dns_server_that_never_answers_gives_temperror_within_the_budget() {
    let silent = util::dns::FakeDns::start(util::dns::Behaviour::Silent);
    let site = site(None);
    site.configure(
        "dns",
        &format!("nameservers = [\"{}\"]", silent.nameserver()),
    );
    site.configure("dns", "timeout = \"1s\"");
    site.configure("dns", "attempts = 1");
    site.configure("scanner", "auth_timeout = \"3s\"");
    site.configure("scanner", "dnsbl_zones = [\"bl.test\"]");
    let start = std::time::Instant::now();
    let job = one(&scan(
        &site,
        Some("198.51.100.66"),
        "alice@example.org",
        &["user@example.com"],
        FROM_ORG,
    ));
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert_eq!(
        failed(&job, "user@example.com"),
        None,
        "nothing is refused on a DNS failure"
    );
    let ar = fields(&job.message, "Authentication-Results");
    assert!(ar[0].contains("spf=temperror"), "{ar:?}");
}

#[test]
fn greylisting_defers_a_new_triple_then_lets_it_through() {
    let site = site(None);
    let db = site.path().join("greylist.db");
    site.configure("scanner", &format!("greylist_db = \"{}\"", db.display()));
    site.configure("scanner", "greylist_delay = \"2s\"");
    site.configure("scanner", "greylist = true");
    site.configure("scanner", "spf = false");
    site.configure("scanner", "dmarc = false");
    let msg = b"From: a@example.org\nSubject: hi\n\nhello\n";
    let first = scan(
        &site,
        Some("198.51.100.20"),
        "a@example.org",
        &["user@example.com"],
        msg,
    );
    assert_eq!(first.code, 75, "{}", first.stderr);
    assert_eq!(first.stderr, "4.7.1 greylisted, try again in 1 minute\n");
    assert!(first.stdout.is_empty());
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let again = scan(
        &site,
        Some("198.51.100.21"),
        "a@example.org",
        &["user@example.com"],
        msg,
    );
    assert_eq!(
        failed(&one(&again), "user@example.com"),
        None,
        "same /24, after the delay"
    );
    // A new recipient is a new triple.
    let other = scan(
        &site,
        Some("198.51.100.20"),
        "a@example.org",
        &["user@example.com", "new@example.com"],
        msg,
    );
    assert_eq!(other.code, 75, "{}", other.stderr);
    let bytes = std::fs::read(&db).expect("greylist db");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("example"), "no address at rest");
}

#[test]
fn bad_settings_are_refused_with_one_line() {
    for (key, value, says) in [
        ("clamd", "\"nowhere\"", "clamd endpoint"),
        ("dnsbl_zones", "[\"bad zone!\"]", "dnsbl_zones"),
        ("allow", "[\"10.0.0.0/33\"]", "scanner.allow"),
        ("deny", "[\"@\"]", "scanner.deny"),
        ("executable_action", "\"quarantine\"", "quarantine"),
        ("adult_words", "{ en = [\"\"] }", "adult_words"),
    ] {
        let site = site(None);
        site.configure("scanner", &format!("{key} = {value}"));
        let out = site.run(
            SCANNER,
            &[],
            &job_of(b"Subject: x\n\nx\n", "a@example.org", "user@example.com"),
        );
        assert_eq!(out.code, 78, "{key}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{key}: {}", out.stderr);
        assert!(out.stderr.starts_with("4.3.5 "), "{key}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{key}: {}", out.stderr);
    }
}

#[test]
fn a_cut_stream_is_refused_whole_and_dry_run_says_what_would_happen() {
    let clamd = ClamdServer::start();
    let site = site(Some(&clamd));
    let r = site.run(
        RECEIVER,
        &["-f", "a@example.org", "--", "user@example.com"],
        &exe_message(),
    );
    let cut = &r.stdout[..r.stdout.len() - 10];
    let out = site.run(SCANNER, &[], cut);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    let out = site.run(SCANNER, &["--dry-run"], &r.stdout);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "<user@example.com> refused: 5.7.1 executable content refused: attachment \"setup.exe\""
        ),
        "{text}"
    );
    let out = site.run(
        SCANNER,
        &["--dry-run", "-f", "a@example.org", "--", "user@example.com"],
        &eicar_message(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("refused: 5.7.1 virus found: PosternTest.EICAR.UNOFFICIAL"),
        "{text}"
    );
}

#[test]
fn malformed_messages_pass_through_whole_and_are_not_misread() {
    let clamd = ClamdServer::start();
    let site = site(Some(&clamd));
    let mut deep = String::new();
    for i in 0..300 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    deep.push_str("Content-Type: text/plain\n\nbottom\n");
    let mut garbage: Vec<u8> = b"Subject: bytes\n\n".to_vec();
    garbage.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no header section", b"just a line\n".to_vec()),
        ("empty", Vec::new()),
        (
            "unterminated multipart",
            b"Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"q\"\n\n--q\nContent-Type: application/zip; name=\"a.zip\"\nContent-Transfer-Encoding: base64\n\nUEsDBBQAAAAIAP////\n"
                .to_vec(),
        ),
        ("300 nested multiparts", deep.into_bytes()),
        ("binary garbage body", garbage),
        (
            "a 100 KB header line",
            format!("Subject: {}\n\nbody\n", "w ".repeat(50_000)).into_bytes(),
        ),
        (
            "a broken encoded name",
            b"Subject: x\nMIME-Version: 1.0\nContent-Type: application/octet-stream; name=\"=?utf-8?B?!!!?=\"\nContent-Transfer-Encoding: base64\n\n%%%\n"
                .to_vec(),
        ),
    ];
    for (what, msg) in cases {
        let out = site.run(
            SCANNER,
            &[],
            &job_of(&msg, "sender@example.org", "user@example.com"),
        );
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        let job = one(&out);
        assert_eq!(failed(&job, "user@example.com"), None, "{what}");
        assert_eq!(job.message, msg, "{what}: passed on byte for byte");
    }
}

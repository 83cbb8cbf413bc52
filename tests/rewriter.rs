//! postern-rewriter and postern-alias, black-box: aliases from the store
//! through the real chain to an SMTP server, SRS on the way out and back,
//! every refusal with its exit status and one line, rate limits counted
//! right by rewriters running at once, DKIM signatures still valid, and
//! the admin commands (import, export, JSON).

mod util;

use util::smtp::{Script, Server};
use util::{ALIAS, REWRITER, SRS_DOMAIN, Site};

fn site_with_aliases(relay_port: u16) -> Site {
    let site = Site::new(relay_port);
    site.alias(&["domain", "add", "--verified", "example.com"]);
    site.alias(&[
        "alias",
        "add",
        "info@example.com",
        "alice@dest.example",
        "bob@dest.example",
    ]);
    site.alias(&["alias", "add", "box@example.com", "maildb:box@mail.example"]);
    site.alias(&[
        "alias",
        "add",
        "/^sales-(.+)$/@example.com",
        "sales+$1@dest.example",
    ]);
    site.alias(&["alias", "add", "!quiet@example.com"]);
    site.alias(&["alias", "add", "!!later@example.com"]);
    site.alias(&["alias", "add", "!!!gone@example.com"]);
    site.alias(&[
        "alias",
        "add",
        "hook@example.com",
        "https://hooks.example/in",
    ]);
    site
}

fn msg() -> Vec<u8> {
    util::message("aliased", "the body stays as it was")
}

#[test]
fn an_alias_reaches_both_targets_with_an_srs_sender_and_a_bounce_comes_back() {
    let relay = Server::start(Script::default());
    let site = site_with_aliases(relay.port);
    let [r, w, d] = site.chain3("carol@sender.example", &["info@example.com"], &msg());
    assert_eq!(
        (r.code, w.code, d.code),
        (0, 0, 0),
        "{}{}{}",
        r.stderr,
        w.stderr,
        d.stderr
    );
    let got = relay.received();
    assert_eq!(got.len(), 1, "one transaction for both targets");
    let m = &got[0];
    assert_eq!(m.rcpts, ["alice@dest.example", "bob@dest.example"]);
    let srs = m
        .mail_from
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    assert!(
        srs.starts_with("SRS0=") && srs.ends_with(&format!("=sender.example=carol@{SRS_DOMAIN}")),
        "{srs}"
    );
    let text = String::from_utf8_lossy(&m.data).replace("\r\n", "\n");
    assert!(
        text.starts_with(
            "X-Original-To: info@example.com\nReceived: by mx.test.example (postern-rewriter)"
        ),
        "{text}"
    );
    assert!(text.contains("\n\nthe body stays as it was"), "{text}");

    // The bounce comes back to the SRS address, with the null sender.
    let [r, w, d] = site.chain3("", &[&srs], b"Subject: bounce\n\nundeliverable\n");
    assert_eq!(
        (r.code, w.code, d.code),
        (0, 0, 0),
        "{}{}{}",
        r.stderr,
        w.stderr,
        d.stderr
    );
    let got = relay.received();
    assert_eq!(got[1].rcpts, ["carol@sender.example"]);
    assert_eq!(got[1].mail_from, "<>");

    // Nothing about who wrote to whom in the log.
    let log = site.log();
    for word in ["carol", "alice", "info@", "sender.example"] {
        assert!(!log.contains(word), "{word} in the log:\n{log}");
    }
    assert!(log.contains("forwarded=1"), "{log}");
}

#[test]
fn plus_tags_regexes_mailboxes_and_passing_recipients() {
    let relay = Server::start(Script::default());
    let site = site_with_aliases(relay.port);
    let rcpts = [
        "INFO+news@Example.COM",
        "sales-eu@example.com",
        "box@example.com",
        "dave@elsewhere.example",
    ];
    let [_, w, d] = site.chain3("carol@sender.example", &rcpts, &msg());
    assert_eq!((w.code, d.code), (0, 0), "{}{}", w.stderr, d.stderr);
    let got = relay.received();
    assert_eq!(got.len(), 2, "forwarded and kept copies");
    let forwarded = got
        .iter()
        .find(|m| m.mail_from.starts_with("<SRS0="))
        .expect("SRS copy");
    assert_eq!(
        forwarded.rcpts,
        [
            "alice+news@dest.example",
            "bob+news@dest.example",
            "sales+eu@dest.example"
        ]
    );
    // Two aliases in one copy: neither alias is shown to the targets.
    assert!(!String::from_utf8_lossy(&forwarded.data).contains("X-Original-To"));
    let kept = got
        .iter()
        .find(|m| !m.mail_from.starts_with("<SRS0="))
        .expect("kept copy");
    assert_eq!(kept.mail_from, "<carol@sender.example>");
    assert_eq!(kept.rcpts, ["box@mail.example", "dave@elsewhere.example"]);
}

#[test]
fn refusals_have_their_status_and_one_line() {
    let site = site_with_aliases(util::closed_port());
    site.alias(&["domain", "add", "unverified.example"]);
    let cases: &[(&str, i32, &str)] = &[
        (
            "nobody@example.com",
            67,
            "5.1.1 <nobody@example.com> does not exist",
        ),
        ("gone@example.com", 69, "5.2.1 "),
        ("later@example.com", 75, "4.2.1 "),
        (
            "hook@example.com",
            69,
            "5.3.3 webhook targets are not supported by this version",
        ),
        ("x@unverified.example", 75, "4.7.1 "),
        ("SRS0=abcd=AA=x.example=y@srs.test.example", 69, "5.1.7 "),
    ];
    for (rcpt, code, line) in cases {
        let [r, w, _] = site.chain3("carol@sender.example", &[rcpt], &msg());
        assert_eq!(r.code, 0);
        assert_eq!(w.code, *code, "{rcpt}: {}", w.stderr);
        assert_eq!(w.stderr.lines().count(), 1, "{rcpt}: {}", w.stderr);
        assert!(w.stderr.starts_with(line), "{rcpt}: {}", w.stderr);
        assert!(
            w.stdout.is_empty(),
            "{rcpt}: a refused job is not passed on"
        );
    }
    // A dropped recipient: done, and no job at all.
    let [_, w, _] = site.chain3("carol@sender.example", &["quiet@example.com"], &msg());
    assert_eq!((w.code, w.stdout.len()), (0, 0), "{}", w.stderr);
    // One refused among deliverable ones rides along, marked failed.
    let [_, w, _] = site.chain3(
        "carol@sender.example",
        &["nobody@example.com", "dave@elsewhere.example"],
        &msg(),
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let jobs = String::from_utf8_lossy(&w.stdout);
    assert!(jobs.contains("status: failed 5.1.1"), "{jobs}");
}

#[test]
fn malformed_input_is_a_local_problem() {
    let site = site_with_aliases(util::closed_port());
    for input in [
        &b"postern-job 1\nsender: <a@b.org>\n"[..],
        b"garbage\n",
        b"postern-job 99\n",
    ] {
        let out = site.run(REWRITER, &[], input);
        assert_eq!(out.code, 75, "{}", out.stderr);
        assert!(out.stderr.starts_with("4.3.0 "), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    // An empty stream is no work.
    assert_eq!(site.run(REWRITER, &[], b"").code, 0);
    // A missing store or SRS secrets file is a configuration problem.
    std::fs::remove_file(site.path().join("srs.secrets")).unwrap();
    let out = site.run(REWRITER, &[], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.starts_with("4.3.5 "), "{}", out.stderr);
    let fresh = Site::new(util::closed_port());
    std::fs::remove_file(fresh.path().join("aliases.db")).unwrap();
    let out = fresh.run(REWRITER, &[], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("postern-alias"), "{}", out.stderr);
}

#[test]
fn rate_limits_count_right_with_rewriters_running_at_once() {
    let site = site_with_aliases(util::closed_port());
    site.alias(&["domain", "set", "example.com", "messages_per_day", "40"]);
    let r = site.run(
        util::RECEIVER,
        &["-f", "carol@sender.example", "--", "info@example.com"],
        &msg(),
    );
    let job = std::sync::Arc::new(r.stdout);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let job = job.clone();
            let config = site.config.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| util::run(REWRITER, &[], &job, &[("POSTERN_CONFIG", &config)]).code)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let codes: Vec<i32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(codes, vec![0; 40], "the first 40 of the day pass");
    let out = site.run(REWRITER, &[], &job);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("4.7.0 over the limit of 40 messages a day for this domain example.com"),
        "{}",
        out.stderr
    );
}

#[test]
fn explain_and_dry_run_say_where_mail_goes() {
    let site = site_with_aliases(util::closed_port());
    let out = site.run(
        REWRITER,
        &[
            "explain",
            "info@example.com",
            "nobody@example.com",
            "x@elsewhere.example",
        ],
        b"",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("result:  forwarded to alice@dest.example, bob@dest.example"),
        "{text}"
    );
    assert!(text.contains("alias store row"), "{text}");
    assert!(
        text.contains("result:  refuse 5.1.1 <nobody@example.com> does not exist"),
        "{text}"
    );
    assert!(text.contains("not one of ours"), "{text}");
    let out = site.run(REWRITER, &["explain", "--json", "sales-x@example.com"], b"");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["result"], "forward");
    assert_eq!(v["targets"][0], "sales+x@dest.example");
    let out = site.run(REWRITER, &["explain", "not an address"], b"");
    assert_eq!(out.code, 65, "{}", out.stderr);

    let out = site.run(
        REWRITER,
        &[
            "--dry-run",
            "-f",
            "carol@sender.example",
            "--",
            "info@example.com",
            "gone@example.com",
        ],
        &msg(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("<info@example.com> forwarded to alice@dest.example, bob@dest.example"),
        "{text}"
    );
    assert!(text.contains("<gone@example.com> refused 5.2.1"), "{text}");
    assert!(!text.contains("postern-job"), "no job is written");
}

/// Signs a message with a fresh key (python3-dkim), and verifies a
/// message against that key: the rewriter's copy must still verify.
#[test]
fn the_senders_dkim_signature_still_verifies() {
    let relay = Server::start(Script::default());
    let site = site_with_aliases(relay.port);
    let script = site.path().join("dkim_check.py");
    std::fs::write(
        &script,
        r#"
import sys, dkim
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
import base64, os
keyfile = sys.argv[2]
if sys.argv[1] == "sign":
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    open(keyfile, "wb").write(b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub))
    msg = sys.stdin.buffer.read()
    sig = dkim.sign(msg, b"sel", b"sender.example", pem, include_headers=[b"from", b"to", b"subject", b"message-id"])
    sys.stdout.buffer.write(sig + msg)
else:
    record = open(keyfile, "rb").read()
    ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda name, timeout=5: record)
    sys.exit(0 if ok else 1)
"#,
    )
    .unwrap();
    let key = site.path().join("dkim.txt");
    let signed = util::run(
        "/usr/bin/python3",
        &[script.to_str().unwrap(), "sign", key.to_str().unwrap()],
        &util::crlf(&msg()),
        &[],
    );
    assert_eq!(
        signed.code, 0,
        "python3-dkim must be installed (make deps): {}",
        signed.stderr
    );
    let check = |data: &[u8]| {
        util::run(
            "/usr/bin/python3",
            &[script.to_str().unwrap(), "verify", key.to_str().unwrap()],
            data,
            &[],
        )
        .code
    };
    assert_eq!(check(&signed.stdout), 0, "the signature verifies before");
    let mut tampered = signed.stdout.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    assert_eq!(check(&tampered), 1, "the check can fail");
    let [_, w, d] = site.chain3(
        "carol@sender.example",
        &["info@example.com"],
        &signed.stdout,
    );
    assert_eq!((w.code, d.code), (0, 0), "{}{}", w.stderr, d.stderr);
    let got = relay.received();
    assert_eq!(check(&got[0].data), 0, "the forwarded copy still verifies");
}

#[test]
fn import_export_and_json() {
    let site = Site::new(util::closed_port());
    let out = site.alias(&["--json", "domain", "add", "example.com"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(
        v["record"]
            .as_str()
            .unwrap()
            .starts_with("postern-site-verification=")
    );
    assert_eq!(v["verified"], false);
    let file = site.path().join("virtual");
    std::fs::write(
        &file,
        "# ours\ninfo@example.com a@x.example, b@x.example\n@example.com all@x.example\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    assert_eq!(
        site.alias(&["import", path]).trim(),
        "2 added, 0 changed, 0 unchanged"
    );
    assert_eq!(
        site.alias(&["import", path]).trim(),
        "0 added, 0 changed, 2 unchanged"
    );
    std::fs::write(&file, "new@example.com a@x.example\nbroken@example.com\n").unwrap();
    let out = site.run(ALIAS, &["import", path], b"");
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
    assert!(
        !site.alias(&["alias", "list"]).contains("new@"),
        "nothing imported"
    );
    let export = site.alias(&["export"]);
    assert!(
        export.contains("info@example.com a@x.example, b@x.example\n@example.com all@x.example"),
        "{export}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&site.alias(&["--json", "alias", "list"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    site.alias(&["alias", "disable", "info@example.com"]);
    let shown: serde_json::Value =
        serde_json::from_str(&site.alias(&["--json", "alias", "show", "info@example.com"]))
            .unwrap();
    assert_eq!(shown["enabled"], false);
    for bad in [
        &["alias", "add", "x@nowhere.example", "a@x.example"][..],
        &["alias", "add", "x@example.com", "not-an-address"],
        &[
            "domain",
            "set",
            "example.com",
            "has_virus_protection",
            "maybe",
        ],
        &["alias", "add", "/(/@example.com", "a@x.example"],
    ] {
        let out = site.run(ALIAS, bad, b"");
        assert_eq!(out.code, 65, "{bad:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{bad:?}: {}", out.stderr);
    }
}

/// A domain served from its TXT records alone, read from a real dnsmasq:
/// exact, regex and catch-all entries, refusals, and domain verification.
#[test]
fn txt_records_from_a_real_dns_server() {
    use util::dns::{Dnsmasq, Zone};
    let zone = Zone::new()
        .local("txt.example")
        .mx("txt.example", "mx.txt.example", 10)
        .txt(
            "txt.example",
            &[
                "forward-email=info:alice@dest.example,info:bob@dest.example,",
                "/^list-(.+)$/:lists+$1@dest.example,!!!old,catchall@dest.example",
            ],
        )
        .txt("txt.example", &["postern=ops:ops@dest.example"])
        .txt("txt.example", &["forward-email-port=2525"])
        .local("nomx.example")
        .txt("nomx.example", &["forward-email=all@dest.example"])
        .local("verify.example")
        .txt(
            "verify.example",
            &["postern-site-verification=will-not-match"],
        );
    let dns = Dnsmasq::start(&zone);
    let relay = Server::start(Script::default());
    let site = Site::new(relay.port);
    site.configure(
        "aliases",
        "dns_domains = [\"txt.example\", \"nomx.example\"]",
    );
    site.configure(
        "dns",
        &format!("nameservers = [\"{}\"]\ntimeout = \"2s\"", dns.nameserver()),
    );
    let explain = |a: &str| {
        let out = site.run(REWRITER, &["explain", "--json", a], b"");
        assert_eq!(out.code, 0, "{a}: {}", out.stderr);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON")
    };
    let v = explain("info@txt.example");
    assert_eq!(
        v["targets"],
        serde_json::json!(["alice@dest.example", "bob@dest.example"])
    );
    assert!(
        v["rules"][0]["source"]
            .as_str()
            .unwrap()
            .contains("TXT entry"),
        "{v}"
    );
    assert_eq!(
        explain("list-dev@TXT.example")["targets"][0],
        "lists+dev@dest.example"
    );
    assert_eq!(explain("ops@txt.example")["targets"][0], "ops@dest.example");
    assert_eq!(v["txt"]["rules"], 5, "{v}");
    assert_eq!(v["txt"]["port"], 2525, "{v}");
    assert_eq!(
        explain("anyone@txt.example")["targets"][0],
        "catchall@dest.example"
    );
    assert_eq!(explain("old@txt.example")["status"], "5.2.1");
    // No MX: its TXT records do not count, and nothing matches.
    assert_eq!(explain("x@nomx.example")["status"], "5.1.1");

    // Through the chain: SRS sender, both targets.
    let [_, w, d] = site.chain3("carol@sender.example", &["info@txt.example"], &msg());
    assert_eq!((w.code, d.code), (0, 0), "{}{}", w.stderr, d.stderr);
    assert_eq!(
        relay.received()[0].rcpts,
        ["alice@dest.example", "bob@dest.example"]
    );

    // A store domain is verified only by its exact record.
    site.alias(&["domain", "add", "verify.example"]);
    let out = site.run(ALIAS, &["domain", "verify", "verify.example"], b"");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("4.7.1 verify.example: no TXT record postern-site-verification="),
        "{}",
        out.stderr
    );
}

/// DNS that fails, in each way: the mail waits (4.4.3), never bounces.
#[test]
fn a_failing_dns_server_defers_and_never_bounces() {
    use util::dns::{Behaviour, FakeDns};
    let dns = FakeDns::start(Behaviour::ServFail);
    let site = Site::new(util::closed_port());
    site.configure("aliases", "dns_domains = [\"txt.example\"]");
    site.configure(
        "dns",
        &format!(
            "nameservers = [\"{}\"]\ntimeout = \"300ms\"\nattempts = 2",
            dns.nameserver()
        ),
    );
    let r = site.run(
        util::RECEIVER,
        &["-f", "carol@sender.example", "--", "info@txt.example"],
        &msg(),
    );
    for behaviour in [
        Behaviour::ServFail,
        Behaviour::Silent,
        Behaviour::Garbage,
        Behaviour::Refused,
    ] {
        let name = format!("{behaviour:?}");
        dns.set(behaviour);
        let started = std::time::Instant::now();
        let out = site.run(REWRITER, &[], &r.stdout);
        assert_eq!(out.code, 75, "{name}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with("4.4.3 DNS lookup for txt.example failed"),
            "{name}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{name}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{name}: took {:?}",
            started.elapsed()
        );
    }
}

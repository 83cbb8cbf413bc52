//! The privacy rule of postern(7): with the default settings
//! (`log_addresses = false`) no log line carries an envelope address or a
//! subject. "Log" here is everything postern writes for an operator to
//! read: its log file, and the status line each tool prints on stderr,
//! which Postfix's pipe(8) copies into the maillog (and the bounce).
//!
//! Two sweeps: every situation of each tool run directly (no root needed),
//! and `make demo`'s script through a private Postfix (root), whose
//! postern.log and whose maillog lines for the postern and maildb services
//! are read.

mod util;

#[path = "../lib/tests/gpg/mod.rs"]
mod gpg;

#[path = "../lib/tests/clamd/mod.rs"]
mod clamd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use util::smtp::{Script, Server};
use util::{DELIVERER, MailSite, Output, RECEIVER, Site};

const SENDER: &str = "alice.privacy@example.org";
const RECIPIENTS: [&str; 3] = [
    "bob.privacy@example.net",
    "carol.privacy@example.net",
    "dave.privacy@example.net",
];
const SUBJECT: &str = "Privacy subject 7f3a";

fn message() -> Vec<u8> {
    format!(
        "From: Alice <{SENDER}>\nTo: Bob <{}>\nSubject: {SUBJECT}\n\
         Message-ID: <privacy-7f3a@example.org>\n\nThe body.\n",
        RECIPIENTS[0]
    )
    .into_bytes()
}

/// The lines of `text` that show an address or a subject: one of the
/// given addresses, or their local parts next to an `@`, or anything of the
/// subject (its marker).
fn leaks(text: &str, addresses: &[&str]) -> Vec<String> {
    text.lines()
        .filter(|line| {
            let lower = line.to_ascii_lowercase();
            addresses.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                let local = a.split('@').next().unwrap_or(&a);
                lower.contains(&a) || lower.contains(&format!("{local}@"))
            }) || lower.contains("7f3a")
                || lower.contains("privacy subject")
        })
        .map(str::to_owned)
        .collect()
}

/// Everything one sweep saw, with the situation it came from.
#[derive(Default)]
struct Said {
    lines: Vec<(String, String)>,
}

impl Said {
    fn tool(&mut self, situation: &str, out: &Output) {
        for line in out.stderr.lines() {
            self.lines
                .push((format!("{situation} (stderr)"), line.to_owned()));
        }
    }

    fn log(&mut self, situation: &str, log: &str) {
        for line in log.lines() {
            self.lines
                .push((format!("{situation} (log)"), line.to_owned()));
        }
    }

    fn assert_private(&self, addresses: &[&str]) {
        // Something must have been said, or the judgement is empty.
        assert!(
            self.lines.iter().any(|(_, l)| !l.trim().is_empty()),
            "nothing was said to judge"
        );
        let leaked: Vec<String> = self
            .lines
            .iter()
            .filter(|(_, line)| !leaks(line, addresses).is_empty())
            .map(|(from, line)| format!("{from}: {line}"))
            .collect();
        assert!(
            leaked.is_empty(),
            "with log_addresses = false, lines show an address or the subject:\n  {}",
            leaked.join("\n  ")
        );
    }
}

fn all_addresses() -> Vec<&'static str> {
    let mut a = vec![SENDER];
    a.extend(RECIPIENTS);
    a
}

fn args(rcpts: &[&'static str]) -> Vec<&'static str> {
    let mut a = vec!["-f", SENDER, "--"];
    a.extend_from_slice(rcpts);
    a
}

/// The receiver and the deliverer in each situation they can end in.
#[test]
fn receiver_and_deliverer_say_no_address_or_subject() {
    let mut said = Said::default();
    let msg = message();

    // A relay that names each address in its replies, refuses one
    // recipient for good and another for now.
    let mut replies = HashMap::new();
    replies.insert(
        RECIPIENTS[1].to_owned(),
        format!("550 5.1.1 <{}>: Recipient address rejected", RECIPIENTS[1]),
    );
    replies.insert(
        RECIPIENTS[2].to_owned(),
        format!(
            "450 4.2.0 <{}>: Recipient address greylisted",
            RECIPIENTS[2]
        ),
    );
    let relay = Server::start(Script {
        rcpt_replies: replies,
        ..Script::default()
    });
    let site = Site::with_extra(
        relay.port,
        "message_size_limit = 100000\nhop_count_limit = 3",
    );
    let (r, d) = site.chain(SENDER, &RECIPIENTS, &msg);
    assert_eq!((r.code, d.code), (0, 0), "{} {}", r.stderr, d.stderr);
    said.tool("chain to a relay that refuses two", &r);
    said.tool("chain to a relay that refuses two", &d);
    // A relay that refuses the message, quoting it.
    let refusing = Server::start(Script {
        data_reply: Some(format!(
            "554 5.6.0 message from <{SENDER}> ({SUBJECT}) refused"
        )),
        greeting: None,
        ..Script::default()
    });
    let refusing_site = Site::new(refusing.port);
    let (r, d) = refusing_site.chain(SENDER, &RECIPIENTS[..1], &msg);
    said.tool("relay refuses the data", &r);
    said.tool("relay refuses the data", &d);
    said.log("relay refuses the data", &refusing_site.log());

    // The relay down, then a queue run with the relay back.
    let port = util::closed_port();
    let down = Site::new(port);
    let (r, d) = down.chain(SENDER, &RECIPIENTS, &msg);
    assert_eq!(down.queue("deferred").len(), 1, "{}", d.stderr);
    said.tool("relay down", &r);
    said.tool("relay down", &d);
    let back = Server::start_on(port, Script::default());
    let out = down.run(DELIVERER, &["--run-queue", "--flush"], b"");
    said.tool("queue run", &out);
    assert_eq!(back.received().len(), 1);
    said.log("relay down, queue run", &down.log());

    // Refusals of the receiver and of a bare message to the deliverer.
    let bad_rcpt = format!("{}\r\nRCPT TO:<x@y.org>", RECIPIENTS[0]);
    let looped = [
        b"Received: 1\nReceived: 2\nDelivered-To: x\n".as_slice(),
        &msg,
    ]
    .concat();
    let big = [msg.as_slice(), &vec![b'x'; 100_001]].concat();
    let no_header = format!("{SUBJECT} {SENDER}\n\nbody\n").into_bytes();
    let bad_sender = format!("{SENDER} x");
    let cases: Vec<(&str, Vec<&str>, Vec<u8>)> = vec![
        ("too large", args(&RECIPIENTS), big),
        ("a loop", args(&RECIPIENTS), looped),
        ("no header", args(&RECIPIENTS), no_header),
        (
            "a bad recipient",
            vec!["-f", SENDER, "--", &bad_rcpt],
            msg.clone(),
        ),
        (
            "a bad sender",
            vec!["-f", &bad_sender, "--", RECIPIENTS[0]],
            msg.clone(),
        ),
        ("no recipients", vec!["-f", SENDER, "--"], msg.clone()),
        (
            "an unknown option with an address",
            vec!["--frobnicate", SENDER, "-f", SENDER, "--", RECIPIENTS[0]],
            msg.clone(),
        ),
    ];
    for (situation, argv, input) in &cases {
        for bin in [RECEIVER, DELIVERER] {
            let out = site.run(bin, argv, input);
            assert_ne!(out.code, 0, "{situation}: {bin}");
            said.tool(situation, &out);
        }
    }
    said.log("receiver and deliverer refusals", &site.log());

    // Jobs cut short, for the deliverer (damaged ones: see below).
    let job = site.run(RECEIVER, &args(&RECIPIENTS), &msg).stdout;
    for cut in [40, 200, job.len() - 10] {
        let out = site.run(DELIVERER, &[], &job[..cut]);
        assert_eq!(out.code, 75, "cut at {cut}: {}", out.stderr);
        said.tool("a cut job", &out);
    }
    said.log("all", &site.log());
    said.assert_private(&all_addresses());
}

/// Fed a message where a job should be (a master.cf without the
/// receiver), or a damaged job, the deliverer refuses it without quoting
/// it.
#[test]
fn deliverer_refusing_a_bad_stream_does_not_quote_it() {
    let site = Site::new(util::closed_port());
    let mut said = Said::default();
    for input in [
        message(),
        format!("{SENDER} {SUBJECT}\n").into_bytes(),
        format!("postern-job 1 {SENDER}\n").into_bytes(),
    ] {
        let out = site.run(DELIVERER, &[], &input);
        assert_eq!(out.code, 75, "{}", out.stderr);
        said.tool("a message instead of a job", &out);
    }
    // A job whose fields were damaged on the way (a value where another
    // kind of value belongs).
    let job = site.run(RECEIVER, &args(&RECIPIENTS), &message()).stdout;
    let text = String::from_utf8_lossy(&job).into_owned();
    for (field, bad) in [
        ("attempts: 0", format!("attempts: {SENDER}")),
        (
            "attempts: 0",
            format!("attempts: 0\nnext-attempt: {SENDER}"),
        ),
        ("  status: pending", format!("  status: {SUBJECT}")),
        (
            "  status: pending",
            format!("  status: pending\n  notify: {SENDER}"),
        ),
    ] {
        let out = site.run(DELIVERER, &[], text.replacen(field, &bad, 1).as_bytes());
        assert_eq!(out.code, 75, "{}", out.stderr);
        said.tool("a damaged job", &out);
    }
    said.log("a message instead of a job", &site.log());
    said.assert_private(&all_addresses());
}

/// A master.cf that forgets the `--` puts addresses where options go: the
/// usage error must say what is wrong without quoting them.
#[test]
fn usage_error_does_not_quote_an_address() {
    let site = Site::new(util::closed_port());
    let mut said = Said::default();
    for bin in [RECEIVER, DELIVERER] {
        for argv in [
            vec!["-f", SENDER, RECIPIENTS[0]],
            vec![RECIPIENTS[0]],
            vec![
                "-f",
                SENDER,
                "--",
                RECIPIENTS[0],
                "--frobnicate",
                RECIPIENTS[1],
            ],
        ] {
            let out = site.run(bin, &argv, &message());
            said.tool("usage error", &out);
        }
    }
    said.assert_private(&all_addresses());
}

/// postern-maildb: deliveries (run by Postfix's pipe(8), so their status
/// lines reach the maillog) that work, fail and defer, and the log of the
/// owner's commands, for mailboxes named by address.
#[test]
fn maildb_says_no_address_or_subject() {
    let site = MailSite::new();
    let mut said = Said::default();
    let msg = message();
    let [bob, carol, _] = RECIPIENTS;
    let out = site.owner(bob, &["init"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    said.tool("init", &out);
    let text = std::fs::read_to_string(&site.config).expect("config");
    std::fs::write(
        &site.config,
        text.replace("[maildb]", "[maildb]\nquota = \"70K\""),
    )
    .expect("config");
    for (situation, user, input) in [
        ("deliver", bob, msg.clone()),
        ("deliver to no mailbox", carol, msg.clone()),
        ("deliver an empty message", bob, Vec::new()),
        (
            "deliver over quota",
            bob,
            [msg.as_slice(), &vec![b'q'; 200_000]].concat(),
        ),
    ] {
        let out = site.run(&["deliver", user], &input);
        said.tool(situation, &out);
    }
    let key = site.path().join(format!("mail/{bob}.sqlite-pub"));
    let aside = site.path().join("key-aside");
    std::fs::rename(&key, &aside).expect("move the key");
    said.tool(
        "deliver without the mailbox's key",
        &site.run(&["deliver", bob], &msg),
    );
    std::fs::rename(&aside, &key).expect("move the key back");
    // The owner's commands, run by the owner at a terminal, may show the
    // owner's mail and mailbox (`list` shows subjects, an error names the
    // file); only what they log counts.
    for argv in [
        vec!["list"],
        vec!["show", "1"],
        vec!["search", "nothing-like-this"],
        vec!["show", "99"],
    ] {
        let _ = site.owner(bob, &argv);
    }
    let _ = site.owner(carol, &["list"]);
    said.log("maildb", &site.log());
    said.assert_private(&all_addresses());
}

/// A sealed message in the drop area that cannot be opened is moved aside
/// at the next open, with a warning that must not name the mailbox file
/// (whose name is the owner's address).
#[test]
fn maildb_corrupt_drop_file_warning_names_no_address() {
    let site = MailSite::new();
    let bob = RECIPIENTS[0];
    assert_eq!(site.owner(bob, &["init"]).code, 0);
    let mut said = Said::default();
    for _ in 0..6 {
        let out = site.run(&["deliver", bob], &message());
        assert_eq!(out.code, 0, "{}", out.stderr);
        said.tool("deliver", &out);
    }
    let new = site.path().join(format!("mail/{bob}.sqlite-drop/new"));
    let sealed = std::fs::read_dir(&new)
        .expect("the drop area")
        .flatten()
        .next()
        .expect("a sealed message")
        .path();
    let mut bytes = std::fs::read(&sealed).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&sealed, bytes).expect("write");
    let out = site.owner(bob, &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("could not be opened"), "{}", out.stderr);
    said.tool("list after a damaged sealed file", &out);
    said.log("maildb", &site.log());
    said.assert_private(&all_addresses());
}

/// Removes a directory when dropped.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && std::env::var_os("POSTERN_KEEP_TEST_DIR").is_none()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `make demo` through a private Postfix: delivered, too large, a
/// recipient refused by the relay, the relay down and a queue run, a
/// mailbox. Its postern.log, and the maillog's results of the postern and
/// maildb pipe(8) services (postern's status lines), show no address of
/// the demo and none of its subjects.
#[test]
fn demo_through_postfix_logs_no_address_or_subject() {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    assert!(
        root,
        "needs root to start a private Postfix (make test runs as root)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo.sh");
    let bindir = Path::new(RECEIVER).parent().expect("binary directory");
    let out = Command::new("timeout")
        .args(["--kill-after=10", "300", "bash", script])
        .env("POSTERN_DEMO_KEEP", "1")
        .env("POSTERN_BINDIR", bindir)
        .env_remove("POSTERN_CONFIG")
        .output()
        .expect("run tests/fixtures/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: kept "))
        .map(PathBuf::from);
    let _cleanup = Cleanup(dir.clone());
    assert!(
        out.status.success(),
        "demo.sh failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = dir.expect("demo.sh says where it kept its directory");
    let config = std::fs::read_to_string(dir.join("postern.toml")).expect("postern.toml");
    assert!(
        !config.contains("log_addresses"),
        "the demo must run with the default log_addresses:\n{config}"
    );

    let mut said = Said::default();
    said.log(
        "postern.log",
        &std::fs::read_to_string(dir.join("log/postern.log")).expect("postern.log"),
    );
    // pipe(8)'s result lines: `to=<...>, relay=postern, ... status=sent
    // (TEXT)`; TEXT is what postern said (its status line), the rest is
    // Postfix's own and names the recipient by design.
    let maillog = std::fs::read_to_string(dir.join("log/maillog")).expect("maillog");
    let mut results = 0;
    for line in maillog.lines() {
        if line.contains(" relay=postern,") || line.contains(" relay=maildb,") {
            let text = line.split_once(", status=").map_or("", |(_, t)| t);
            let text = text.split_once(" (").map_or("", |(_, t)| t);
            said.lines
                .push(("maillog, postern's text".into(), text.to_owned()));
            results += 1;
        } else if line.contains("Command output") {
            said.lines.push(("maillog".into(), line.to_owned()));
        }
    }
    assert!(
        results >= 6,
        "too few postern results in the maillog:\n{maillog}"
    );
    // The demo's addresses and subjects (tests/fixtures/demo.sh).
    let mut addresses: Vec<String> = [
        "alice@example.org",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
        "erin@example.com",
        "rejected@example.com",
    ]
    .map(String::from)
    .to_vec();
    addresses.push(format!(
        "bob@{}",
        ports_value(&dir, "MAILDB_DOMAIN").unwrap_or_else(|| "mailbox.test".into())
    ));
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let leaked: Vec<String> = said
        .lines
        .iter()
        // The demo's subjects are "demo N: ..." (a domain such as
        // team.demo in a log line is not one).
        .filter(|(_, line)| {
            !leaks(line, &addresses).is_empty()
                || line
                    .match_indices("demo ")
                    .any(|(i, _)| line[i + 5..].starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(|(from, line)| format!("{from}: {line}"))
        .collect();
    assert!(
        leaked.is_empty(),
        "with log_addresses = false, postern's log lines show an address or a subject:\n  {}",
        leaked.join("\n  ")
    );
    assert!(
        said.lines.len() > 10,
        "too little was logged: {:?}",
        said.lines
    );
}

fn ports_value(dir: &Path, key: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("ports"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

/// The rewriter in each situation that is not a refusal of the recipient
/// itself: forwarding (with SRS), a bounce reversed, a drop, a domain not
/// verified, a rate limit, a bad SRS address, a broken stream. A refusal
/// of one recipient ("5.1.1 <addr> does not exist", "5.2.1") names that
/// recipient, as Postfix's own maillog line for it (`to=<addr>`) and its
/// bounce do: the one exception, documented in postern-rewriter(1).
#[test]
fn rewriter_says_no_address_or_subject() {
    let mut said = Said::default();
    let relay = Server::start(Script::default());
    let site = Site::new(relay.port);
    site.alias(&["domain", "add", "--verified", "example.net"]);
    site.alias(&["domain", "add", "example.com"]);
    site.alias(&["alias", "add", RECIPIENTS[0], "target.privacy@dest.example"]);
    site.alias(&["alias", "add", &format!("!{}", RECIPIENTS[1])]);
    let msg = message();
    let [r, w, d] = site.chain3(SENDER, &RECIPIENTS[..2], &msg);
    assert_eq!(
        (r.code, w.code, d.code),
        (0, 0, 0),
        "{}{}{}",
        r.stderr,
        w.stderr,
        d.stderr
    );
    for o in [&r, &w, &d] {
        said.tool("forwarded and dropped", o);
    }
    let srs = relay.received()[0]
        .mail_from
        .trim_matches(['<', '>'])
        .to_owned();
    let [_, w, d] = site.chain3("", &[&srs], &msg);
    said.tool("a bounce reversed", &w);
    said.tool("a bounce reversed", &d);
    let [_, w, _] = site.chain3(SENDER, &["someone.privacy@example.com"], &msg);
    assert_eq!(w.code, 75, "{}", w.stderr);
    said.tool("domain not verified", &w);
    let forged = srs.replacen("SRS0=", "SRS0=x", 1);
    let [_, w, _] = site.chain3(SENDER, &[&forged], &msg);
    assert_eq!(w.code, 69, "{}", w.stderr);
    said.tool("forged SRS address", &w);
    site.configure("rewriter", "messages_per_day_per_sender = 1");
    let [_, w, _] = site.chain3(SENDER, &[RECIPIENTS[0]], &msg);
    assert_eq!(w.code, 75, "{}", w.stderr);
    said.tool("over the sender's rate limit", &w);
    let out = site.run(
        util::REWRITER,
        &[],
        b"postern-job 1\nsender: <alice.privacy@example.org>\n",
    );
    said.tool("a cut job", &out);
    said.log("rewriter", &site.log());
    let mut addresses = all_addresses();
    addresses.extend(["target.privacy@dest.example", "someone.privacy@example.com"]);
    said.assert_private(&addresses);
}

/// The encryptor: a message encrypted (the key's user ID is an address
/// too), one sent plain, one whose only key expired (the keyring leaves
/// it out), refusals under `require`, and a cut job.
#[test]
fn encryptor_says_no_address_user_id_or_subject() {
    let mut said = Said::default();
    let ring = gpg::GnupgHome::new();
    let bob = gpg::GnupgHome::new();
    let key = bob.ed25519(&format!("Bob Privacy <{}>", RECIPIENTS[0]));
    ring.import(&bob.export(&[&key.fingerprint]));
    let old = bob.expired(&format!("Carol Privacy <{}>", RECIPIENTS[1]));
    ring.import(&bob.export(&[&old.fingerprint]));
    let site = Site::new(util::closed_port());
    site.configure(
        "encryptor",
        &format!("keyring = \"{}\"", ring.path().display()),
    );
    site.configure("wkd", "enabled = false");
    let r = site.run(RECEIVER, &args(&RECIPIENTS), &message());
    let e = site.run(util::ENCRYPTOR, &[], &r.stdout);
    assert_eq!(e.code, 0, "{}", e.stderr);
    said.tool("encrypted, plain, expired key", &e);
    site.configure("encryptor", "policy = \"require\"");
    let e = site.run(util::ENCRYPTOR, &[], &r.stdout);
    assert_eq!(e.code, 0, "{}", e.stderr);
    said.tool("refused under require", &e);
    let e = site.run(util::ENCRYPTOR, &[], &r.stdout[..r.stdout.len() / 2]);
    assert_eq!(e.code, 75, "{}", e.stderr);
    said.tool("a cut job", &e);
    said.log("encryptor", &site.log());
    assert!(site.log().contains("refused=2"), "{}", site.log());
    said.assert_private(&all_addresses());
}

/// The scanner: a virus, an executable attachment whose name carries the
/// subject's marker, phishing and adult tags, a deny list naming the
/// sender, greylisting, and clamd gone.
#[test]
fn scanner_says_no_address_subject_or_file_name() {
    let mut said = Said::default();
    let mut server = clamd::ClamdServer::start();
    let site = Site::new(util::closed_port());
    site.configure("scanner", &format!("clamd = \"{}\"", server.tcp()));
    site.configure("scanner", "spf = false");
    site.configure("scanner", "dmarc = false");
    let mut eicar = message();
    eicar.extend_from_slice(&clamd::eicar());
    eicar.push(b'\n');
    let exe = format!(
        "From: Alice <{SENDER}>\nSubject: {SUBJECT} XXX\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/html\n\n\
         <a href=\"http://192.0.2.9/7f3a\">https://www.example.org/7f3a</a>\n--b\n\
         Content-Type: application/octet-stream; name=\"privacy-7f3a.exe\"\n\n\
         MZ binary\n--b--\n"
    )
    .into_bytes();
    for (situation, msg) in [
        ("a virus", eicar.clone()),
        ("an executable, phishing, adult", exe),
    ] {
        let r = site.run(RECEIVER, &args(&RECIPIENTS), &msg);
        let s = site.run(util::SCANNER, &[], &r.stdout);
        assert_eq!(s.code, 0, "{}", s.stderr);
        said.tool(situation, &s);
    }
    assert!(site.log().contains("virus found"), "{}", site.log());
    assert!(site.log().contains("phishing sign"), "{}", site.log());

    site.configure("scanner", &format!("deny = [\"{SENDER}\"]"));
    let mut greylisted = vec!["--client-address=198.51.100.7"];
    greylisted.extend(args(&RECIPIENTS));
    let r = site.run(RECEIVER, &greylisted, &message());
    let s = site.run(util::SCANNER, &[], &r.stdout);
    assert_eq!(s.code, 0, "{}", s.stderr);
    said.tool("the sender denied", &s);
    site.configure("scanner", "deny = []");
    site.configure(
        "scanner",
        &format!(
            "greylist_db = \"{}\"",
            site.path().join("grey.db").display()
        ),
    );
    site.configure("scanner", "greylist = true");
    let s = site.run(util::SCANNER, &[], &r.stdout);
    assert_eq!(s.code, 75, "{}", s.stderr);
    said.tool("greylisted", &s);
    site.configure("scanner", "greylist = false");
    server.kill();
    let s = site.run(util::SCANNER, &[], &r.stdout);
    assert_eq!(s.code, 75, "{}", s.stderr);
    said.tool("clamd gone", &s);
    let s = site.run(util::SCANNER, &[], &r.stdout[..r.stdout.len() / 2]);
    assert_eq!(s.code, 75, "{}", s.stderr);
    said.tool("a cut job", &s);
    said.log("scanner", &site.log());
    assert!(
        !site.log().contains("privacy-"),
        "no file name: {}",
        site.log()
    );
    said.assert_private(&all_addresses());
}

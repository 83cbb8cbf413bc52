//! postern-bouncer(8): notifications as golden files, the job-stream
//! mode, and the bounce/ queue drained on a site whose entries the real
//! postern-deliverer made, through to the notification's delivery with
//! the null sender.

mod util;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use mailparse::MailHeaderMap;
use postern::bouncer::dsn::{self, Notice};
use postern::bouncer::original;
use postern::bouncer::policy::Action;
use postern::config::SrsConfig;
use postern::mail::address::{Address, Sender};
use postern::mail::job::{Job, JobReader, Notify, QueueId, RcptStatus, Recipient, Ret};
use postern::mail::status::Status;
use postern::rewriter::srs::{Srs, SrsSecrets};
use postern::store::seal::SealKey;
use postern::store::spool::Spool;
use util::smtp::{Script, Server};
use util::{DELIVERER, RECEIVER, SRS_DOMAIN, SRS_SECRET, Site};

const BOUNCER: &str = env!("CARGO_BIN_EXE_postern-bouncer");

// ---------------------------------------------------------------------------
// Golden notifications

/// 2026-11-23T16:31:44Z.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_451_504)
}

fn status(s: &str) -> Status {
    Status::parse(s).expect("a status code")
}

fn recipient(address: &str, st: RcptStatus, diagnostic: Option<&str>) -> Recipient {
    let mut r = Recipient::new(Address::parse(address).expect("an address"));
    r.settle(st, diagnostic);
    r
}

/// The parts of a notification, checked as a mail reader sees it: a
/// multipart/report of exactly three parts, every header of ours there.
fn parse_notice(message: &[u8]) -> Vec<(String, Vec<u8>)> {
    let m = mailparse::parse_mail(message).expect("the notification parses");
    assert_eq!(m.ctype.mimetype, "multipart/report");
    assert_eq!(m.ctype.params["report-type"], "delivery-status");
    for h in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "MIME-Version",
    ] {
        assert!(m.headers.get_first_value(h).is_some(), "no {h}:");
    }
    assert_eq!(m.subparts.len(), 3);
    for line in message.split(|&b| b == b'\n') {
        assert!(line.len() <= 999, "a line of {} octets", line.len());
    }
    assert!(
        !message.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "a bare LF in the notification"
    );
    m.subparts
        .iter()
        .map(|p| {
            (
                p.ctype.mimetype.clone(),
                p.get_body_raw().expect("a part body"),
            )
        })
        .collect()
}

#[test]
fn golden_failure_notice_with_the_message_returned() {
    let mut carol = recipient(
        "carol@example.net",
        RcptStatus::Failed {
            code: status("5.1.1"),
        },
        Some("smtp; 550 5.1.1 <carol@example.net>: Recipient address rejected"),
    );
    carol.orcpt = Some("rfc822;info@example.com".into());
    carol.remote_mta = Some("dns; relay.example.net".into());
    carol.last_attempt = Some(t0() + Duration::from_secs(30));
    let mut dave = recipient(
        "dave@example.net",
        RcptStatus::Failed {
            code: status("5.4.7"),
        },
        Some("x-postern; delivery time expired; last problem: x-postern; connection refused"),
    );
    dave.last_attempt = Some(t0() + Duration::from_secs(30));
    let msg = b"From: Alice <alice@example.org>\nTo: info@example.com\nSubject: hello\n\
Message-ID: <hello@example.org>\n\nA line.\n.leading dot\n";
    let to = Address::parse("alice@example.org").unwrap();
    let qid = QueueId::parse("8F3A2C91D04B7E65").unwrap();
    let nid = QueueId::parse("0D5E1B7A9C3F2468").unwrap();
    let notice = Notice {
        hostname: "mx.test.example",
        reporting_mta: "mx.test.example",
        to: &to,
        queue_id: &qid,
        notice_id: &nid,
        envid: Some("QQ314159"),
        arrival: t0(),
        date: t0() + Duration::from_secs(60),
        retry_until: t0() + Duration::from_secs(5 * 86400),
        recipients: vec![(&carol, Action::Failed), (&dave, Action::Failed)],
        original: original::returned(msg, true, 50_000),
    };
    let bytes = dsn::compose(&notice);
    util::check_golden("dsn-failed.eml", &bytes);
    let parts = parse_notice(&bytes);
    assert_eq!(parts[2].0, "message/rfc822");
    assert_eq!(parts[2].1, util::crlf(msg));
    let report = String::from_utf8(parts[1].1.clone()).unwrap();
    assert!(
        report.contains("Original-Envelope-Id: QQ314159\r\n"),
        "{report}"
    );
}

#[test]
fn golden_delay_notice_for_a_utf8_recipient_with_8bit_headers() {
    let mut jorg = recipient(
        "j\u{f6}rg@example.net",
        RcptStatus::Deferred {
            code: status("4.2.2"),
        },
        Some("smtp; 452 4.2.2 mailbox full"),
    );
    jorg.notify = Notify::parse("DELAY").unwrap();
    jorg.last_attempt = Some(t0() + Duration::from_secs(4 * 3600));
    let mut eve = recipient("eve@example.net", RcptStatus::Delivered, None);
    eve.notify = Notify::parse("SUCCESS").unwrap();
    eve.remote_mta = Some("dns; relay.example.net".into());
    let msg = "From: Zo\u{eb} <zoe@example.org>\nSubject: caf\u{e9}\n\nbody\n";
    let to = Address::parse("zoe@example.org").unwrap();
    let qid = QueueId::parse("8F3A2C91D04B7E65").unwrap();
    let nid = QueueId::parse("13579BDF02468ACE").unwrap();
    let notice = Notice {
        hostname: "mx.test.example",
        reporting_mta: "mail.test.example",
        to: &to,
        queue_id: &qid,
        notice_id: &nid,
        envid: None,
        arrival: t0(),
        date: t0() + Duration::from_secs(4 * 3600 + 60),
        retry_until: t0() + Duration::from_secs(5 * 86400),
        recipients: vec![(&jorg, Action::Delayed), (&eve, Action::Relayed)],
        original: original::returned(msg.as_bytes(), false, 50_000),
    };
    let bytes = dsn::compose(&notice);
    util::check_golden("dsn-delayed.eml", &bytes);
    let parts = parse_notice(&bytes);
    assert_eq!(parts[2].0, "text/rfc822-headers");
    let report = String::from_utf8(parts[1].1.clone()).unwrap();
    assert!(report.is_ascii());
    assert!(report.contains("Final-Recipient: utf-8; j\\x{F6}rg@example.net\r\n"));
    assert!(report.contains("Will-Retry-Until: Sat, 28 Nov 2026 16:31:44 +0000\r\n"));
    assert!(report.contains("Action: relayed\r\n"));
    let text = mailparse::parse_mail(&bytes).unwrap().subparts[0]
        .get_body()
        .unwrap();
    assert!(text.contains("<j\u{f6}rg@example.net>: 4.2.2"), "{text}");
}

// ---------------------------------------------------------------------------
// The binary

/// A relay that refuses carol (550) and takes everyone else, and a site
/// pointed at it.
fn refusing_site() -> (Server, Site) {
    let mut replies = HashMap::new();
    replies.insert(
        "carol@example.net".to_string(),
        "550 5.1.1 <carol@example.net>: Recipient address rejected".to_string(),
    );
    let relay = Server::start(Script {
        rcpt_replies: replies,
        ..Script::default()
    });
    let site = Site::new(relay.port);
    (relay, site)
}

/// receiver | deliverer for a message from `sender` to bob and carol:
/// bob is delivered, carol's failure lands in bounce/.
fn bounce_one(site: &Site, sender: &str, msg: &[u8]) {
    let (r, d) = site.chain(sender, &["bob@example.net", "carol@example.net"], msg);
    assert_eq!((r.code, d.code), (0, 0), "{}{}", r.stderr, d.stderr);
}

fn read_jobs(bytes: &[u8]) -> Vec<Job> {
    let mut reader = JobReader::new(bytes, u64::MAX);
    let mut jobs = Vec::new();
    while let Some(j) = reader.next_job().expect("a readable job stream") {
        jobs.push(j);
    }
    jobs
}

fn spool(site: &Site) -> Spool {
    Spool::open(&site.path().join("spool"), SealKey::from_bytes([0x42; 32])).expect("the spool")
}

/// The notification jobs waiting in deferred/, by file name.
fn notices(site: &Site) -> Vec<(String, Job)> {
    let s = spool(site);
    let mut out: Vec<(String, Job)> = s
        .list(postern::store::spool::Queue::Deferred)
        .unwrap()
        .into_iter()
        .map(|(name, _)| {
            let entry = postern::store::spool::Entry {
                queue: postern::store::spool::Queue::Deferred,
                name: name.clone(),
            };
            (name, s.load(&entry).expect("a notification job loads"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn run_queue_turns_a_bounce_entry_into_one_notice_that_is_delivered_with_the_null_sender() {
    let (relay, site) = refusing_site();
    let msg = util::message("refused", "for carol");
    bounce_one(&site, "alice@example.org", &msg);
    assert_eq!(site.queue("bounce").len(), 1);
    relay.messages.lock().unwrap().clear();

    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(site.queue("bounce").is_empty(), "the entry is gone");
    let waiting = notices(&site);
    assert_eq!(waiting.len(), 1);
    let (name, job) = &waiting[0];
    assert!(
        name.ends_with("-b1-dsn") || name.ends_with("-dsn"),
        "{name}"
    );
    assert_eq!(job.envelope.sender, Sender::Null);
    assert_eq!(job.envelope.recipients.len(), 1);
    assert_eq!(
        job.envelope.recipients[0].address.as_str(),
        "alice@example.org"
    );
    assert!(job.envelope.recipients[0].notify.never);
    let parts = parse_notice(&job.message);
    let report = String::from_utf8(parts[1].1.clone()).unwrap();
    assert!(
        report.contains("Final-Recipient: rfc822; carol@example.net\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Action: failed\r\nStatus: 5.1.1\r\n"),
        "{report}"
    );
    assert!(
        !report.contains("bob@example.net"),
        "bob was delivered: {report}"
    );
    // The sealed file tells nothing.
    let sealed = std::fs::read(&site.queue("deferred")[0]).unwrap();
    let text = String::from_utf8_lossy(&sealed);
    assert!(!text.contains("alice") && !text.contains("carol") && !text.contains("Undelivered"));

    // A second run finds nothing to do: no second notice.
    let again = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(notices(&site).len(), 1);

    let log = site.log();
    assert!(
        log.contains("bounce run: 1 notification(s) queued"),
        "{log}"
    );
    assert!(
        log.contains("bounce run: 0 notification(s) queued"),
        "{log}"
    );
    assert!(
        !log.contains("alice") && !log.contains("carol"),
        "the log names someone: {log}"
    );

    // The deliverer sends it: MAIL FROM:<>, to alice.
    let d = site.run(DELIVERER, &["--run-queue", "--flush"], b"");
    assert_eq!(d.code, 0, "{}", d.stderr);
    let got = relay.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "<>");
    assert_eq!(got[0].rcpts, ["alice@example.org"]);
    let parts = parse_notice(&got[0].data);
    assert_eq!(parts[2].0, "text/rfc822-headers");
    assert!(String::from_utf8_lossy(&parts[2].1).contains("Subject: refused\r\n"));
    assert!(site.queue("deferred").is_empty() && site.queue("bounce").is_empty());
}

#[test]
fn a_crash_between_writing_the_notice_and_removing_the_entry_makes_no_second_notice() {
    let (_relay, site) = refusing_site();
    bounce_one(&site, "alice@example.org", &util::message("twice", "x"));
    let entry = site.queue("bounce").remove(0);
    let kept = std::fs::read(&entry).unwrap();
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    // As if the run had died before the unlink: the entry is back.
    std::fs::write(&entry, kept).unwrap();
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(notices(&site).len(), 1, "the same file, written again");
    assert!(site.queue("bounce").is_empty());
}

#[test]
fn loops_get_no_notice() {
    let (_relay, site) = refusing_site();
    bounce_one(&site, "", &util::message("nullsender", "a bounce"));
    bounce_one(
        &site,
        "MAILER-DAEMON@other.example",
        &util::message("daemon", "x"),
    );
    bounce_one(&site, "Postmaster@other.example", &util::message("pm", "x"));
    bounce_one(
        &site,
        "alice@example.org",
        b"From: alice@example.org\nSubject: away\nAuto-Submitted: auto-replied\n\nI am away.\n",
    );
    bounce_one(
        &site,
        "alice@example.org",
        b"From: MAILER-DAEMON@other.example\nSubject: Undelivered\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status;\n boundary=\"b\"\n\n\
--b\nContent-Type: text/plain\n\nfailed\n--b--\n",
    );
    assert_eq!(site.queue("bounce").len(), 5);
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(site.queue("bounce").is_empty());
    assert!(notices(&site).is_empty(), "no notice for any of them");
    let log = site.log();
    for why in [
        "the sender is <>",
        "the sender is MAILER-DAEMON or postmaster",
        "the message is Auto-Submitted",
        "the message is itself a report",
    ] {
        assert!(
            log.contains(&format!("no sender notification: {why}")),
            "{why}: {log}"
        );
    }
    assert!(
        log.contains("bounce run: 0 notification(s) queued, 5 entries needed none"),
        "{log}"
    );
}

fn srs() -> Srs {
    let settings = SrsConfig::default();
    Srs::new(
        &settings,
        SRS_DOMAIN,
        SrsSecrets::new([SRS_SECRET]).unwrap(),
    )
    .unwrap()
}

#[test]
fn an_srs_sender_is_reversed_and_a_forged_one_gets_nothing() {
    let (_relay, site) = refusing_site();
    let carol = Address::parse("carol@sender.example").unwrap();
    let rewritten = srs().forward(&carol, SystemTime::now()).unwrap();
    bounce_one(&site, rewritten.as_str(), &util::message("forwarded", "x"));
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let waiting = notices(&site);
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].1.envelope.recipients[0].address, carol);
    let m = mailparse::parse_mail(&waiting[0].1.message).unwrap();
    assert_eq!(
        m.headers.get_first_value("To").as_deref(),
        Some("<carol@sender.example>")
    );

    let forged = format!("SRS0=abcd=AA=sender.example=carol@{SRS_DOMAIN}");
    bounce_one(&site, &forged, &util::message("forged", "x"));
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(site.queue("bounce").is_empty());
    assert_eq!(notices(&site).len(), 1, "none for the forged sender");
    let log = site.log();
    assert!(
        log.contains("no sender notification: the SRS sender does not verify"),
        "{log}"
    );
    assert!(
        !log.contains("carol") && !log.contains("sender.example"),
        "{log}"
    );
}

#[test]
fn the_job_stream_mode_writes_a_notice_job() {
    let (_relay, site) = refusing_site();
    let r = site.run(
        RECEIVER,
        &[
            "-f",
            "alice@example.org",
            "--",
            "carol@example.net",
            "bob@example.net",
        ],
        &util::message("stream", "x"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut jobs = read_jobs(&r.stdout);
    let mut job = jobs.remove(0);
    job.envelope.ret = Some(Ret::Full);
    job.envelope.recipients[0].settle(
        RcptStatus::Failed {
            code: status("5.1.1"),
        },
        Some("smtp; 550 5.1.1 no such user"),
    );
    job.envelope.recipients[1].status = RcptStatus::Delivered;
    let mut input = job.to_bytes();
    // A second job that needs no notice: nothing comes out for it.
    let mut quiet = job.clone();
    quiet.envelope.sender = Sender::Null;
    input.extend(quiet.to_bytes());
    let out = site.run(BOUNCER, &[], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let notices = read_jobs(&out.stdout);
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert_eq!(n.envelope.sender, Sender::Null);
    assert_eq!(
        n.envelope.recipients[0].address.as_str(),
        "alice@example.org"
    );
    let parts = parse_notice(&n.message);
    assert_eq!(parts[2].0, "message/rfc822", "RET=FULL, a small message");
    // Nothing touched the spool.
    assert!(site.queue("deferred").is_empty());
}

#[test]
fn exit_statuses() {
    let (_relay, site) = refusing_site();
    // Not a job stream: 75, as for every stage.
    let out = site.run(BOUNCER, &[], b"Subject: not a job\n\n");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.status_line().starts_with("4.3.0 "), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);
    // Empty input: nothing to do.
    assert_eq!(site.run(BOUNCER, &[], b"").code, 0);
    // A bad config: 78.
    let bad = site.path().join("bad.toml");
    std::fs::write(&bad, "[bouncer]\nreturn_size_limit = 0\n").unwrap();
    let out = util::run(BOUNCER, &["--run-queue"], b"", &[("POSTERN_CONFIG", &bad)]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.status_line().starts_with("4.3.5 "), "{}", out.stderr);
    // An unknown option: 78.
    assert_eq!(site.run(BOUNCER, &["--frobnicate"], b"").code, 78);
    // A corrupt entry goes to corrupt/; an unreadable one stays, and the
    // run ends 75 after doing the rest.
    bounce_one(&site, "alice@example.org", &util::message("good", "x"));
    let bounce = site.path().join("spool/bounce");
    std::fs::write(bounce.join("BAD-1"), b"PSPL\x01 not sealed").unwrap();
    std::fs::create_dir(bounce.join("ODD-1")).unwrap();
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.status_line().starts_with("4.3.0 "), "{}", out.stderr);
    assert_eq!(notices(&site).len(), 1, "the good entry was done");
    assert_eq!(site.queue("corrupt").len(), 1);
    assert_eq!(site.queue("bounce"), vec![bounce.join("ODD-1")]);
    std::fs::remove_dir(bounce.join("ODD-1")).unwrap();
    // Another runner holds the lock: nothing is done, exit 0.
    bounce_one(&site, "alice@example.org", &util::message("locked", "x"));
    let s = spool(&site);
    let lock = s.lock_runner().unwrap().expect("the lock");
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(site.queue("bounce").len(), 1);
    drop(lock);
    assert_eq!(site.run(BOUNCER, &["--run-queue"], b"").code, 0);
    assert!(site.queue("bounce").is_empty());
    // A missing spool key: 75; one others can read: 78.
    bounce_one(&site, "alice@example.org", &util::message("key", "x"));
    let key = site.path().join("spool.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);
    std::fs::remove_file(&key).unwrap();
    let out = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(site.queue("bounce").len(), 1, "nothing lost");
}

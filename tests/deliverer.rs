//! postern-deliverer(8) against a scriptable SMTP server: per-recipient
//! results, the spool, the queue run, and every way a relay can fail.

mod util;

use std::collections::HashMap;

use util::smtp::{Script, Server};
use util::{DELIVERER, RECEIVER, Site, message};

fn job_for(site: &Site, rcpts: &[&str], msg: &[u8]) -> Vec<u8> {
    let mut args = vec!["-f", "alice@example.org", "--"];
    args.extend_from_slice(rcpts);
    let out = site.run(RECEIVER, &args, msg);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

#[test]
fn delivered_byte_identical_apart_from_our_trace_header() {
    let sink = Server::start(Script::default());
    let site = Site::new(sink.port);
    let msg = message("identical", "line\n.leading dot\n\nlast line");
    let (r, d) = site.chain(
        "alice@example.org",
        &["bob@example.net", "carol@example.net"],
        &msg,
    );
    assert_eq!((r.code, d.code), (0, 0), "{} {}", r.stderr, d.stderr);
    assert!(d.stderr.is_empty());
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "<alice@example.org>");
    assert_eq!(got[0].rcpts, ["bob@example.net", "carol@example.net"]);
    let mut expect = util::crlf(&msg);
    expect.truncate(expect.len() - 2);
    assert_eq!(util::without_our_trace(&got[0].data), expect);
    // The fast path never touches the spool.
    assert!(!site.path().join("spool").exists());
    let log = site.log();
    assert!(log.contains("delivered=2 deferred=0 failed=0"), "{log}");
    assert!(!log.contains("example.net"), "log leaks an address: {log}");
}

#[test]
fn crlf_and_bare_lf_arrive_the_same() {
    let sink = Server::start(Script::default());
    let site = Site::new(sink.port);
    let msg = message("ends", "a\nb");
    for m in [msg.clone(), util::crlf(&msg)] {
        let (_, d) = site.chain("alice@example.org", &["bob@example.net"], &m);
        assert_eq!(d.code, 0, "{}", d.stderr);
    }
    let got = sink.received();
    assert_eq!(
        util::without_our_trace(&got[0].data),
        util::without_our_trace(&got[1].data)
    );
}

#[test]
fn relay_down_spools_and_run_queue_delivers_later() {
    let port = util::closed_port();
    let site = Site::new(port);
    let msg = message("later", "wait for me");
    let (_, d) = site.chain("alice@example.org", &["bob@example.net"], &msg);
    assert_eq!(d.code, 0, "relay down must spool and exit 0: {}", d.stderr);
    let deferred = site.queue("deferred");
    assert_eq!(deferred.len(), 1);
    let sealed = std::fs::read(&deferred[0]).unwrap();
    let text = String::from_utf8_lossy(&sealed);
    assert!(!text.contains("bob") && !text.contains("later") && !text.contains("alice"));
    // Not due yet: nothing happens without --flush.
    let sink = Server::start_on(port, Script::default());
    let out = site.run(DELIVERER, &["--run-queue"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(sink.received().is_empty());
    let out = site.run(DELIVERER, &["--run-queue", "--flush"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpts, ["bob@example.net"]);
    assert!(site.queue("deferred").is_empty() && site.queue("active").is_empty());
    assert!(
        site.log().contains("queue run: 1 job(s) tried"),
        "{}",
        site.log()
    );
}

#[test]
fn one_of_three_recipients_refused_with_550() {
    let mut replies = HashMap::new();
    replies.insert(
        "carol@example.net".to_string(),
        "550 5.1.1 <carol@example.net>: Recipient address rejected".to_string(),
    );
    let sink = Server::start(Script {
        rcpt_replies: replies,
        ..Script::default()
    });
    let site = Site::new(sink.port);
    let job = job_for(
        &site,
        &["bob@example.net", "carol@example.net", "dave@example.net"],
        &message("three", "x"),
    );
    let d = site.run(DELIVERER, &[], &job);
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert_eq!(
        sink.received()[0].rcpts,
        ["bob@example.net", "dave@example.net"]
    );
    assert!(site.queue("deferred").is_empty());
    assert_eq!(
        site.queue("bounce").len(),
        1,
        "carol's failure waits for the bouncer"
    );
    let log = site.log();
    assert!(log.contains("delivered=2 deferred=0 failed=1"), "{log}");
    assert!(!log.contains("carol"), "{log}");
}

#[test]
fn a_421_in_the_middle_defers_everyone_not_yet_delivered() {
    let sink = Server::start(Script {
        drop_at_rcpt: Some(2),
        ..Script::default()
    });
    let site = Site::new(sink.port);
    let job = job_for(
        &site,
        &["bob@example.net", "carol@example.net", "dave@example.net"],
        &message("drop", "x"),
    );
    let d = site.run(DELIVERER, &[], &job);
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(sink.received().is_empty());
    assert_eq!(site.queue("deferred").len(), 1);
    assert!(
        site.log().contains("delivered=0 deferred=3 failed=0"),
        "{}",
        site.log()
    );
}

#[test]
fn temporary_data_failure_defers_and_permanent_bounces() {
    for (reply, queue) in [
        ("451 4.3.0 try later", "deferred"),
        ("554 5.6.0 rejected content", "bounce"),
    ] {
        let sink = Server::start(Script {
            data_reply: Some(reply.into()),
            ..Script::default()
        });
        let site = Site::new(sink.port);
        let d = site.run(
            DELIVERER,
            &[],
            &job_for(&site, &["bob@example.net"], &message("data", "x")),
        );
        assert_eq!(d.code, 0, "{}", d.stderr);
        assert_eq!(site.queue(queue).len(), 1, "{reply}");
    }
}

#[test]
fn a_5xx_greeting_defers_rather_than_bounces() {
    let sink = Server::start(Script {
        greeting: Some("554 5.7.1 go away".into()),
        ..Script::default()
    });
    let site = Site::new(sink.port);
    let d = site.run(
        DELIVERER,
        &[],
        &job_for(&site, &["bob@example.net"], &message("greet", "x")),
    );
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert_eq!(site.queue("deferred").len(), 1);
    assert!(site.queue("bounce").is_empty());
}

#[test]
fn a_relay_that_speaks_nonsense_defers() {
    for greeting in ["hello there", "220-never finished", "999 what"] {
        let sink = Server::start(Script {
            greeting: Some(greeting.into()),
            ..Script::default()
        });
        let site = Site::new(sink.port);
        let d = site.run(
            DELIVERER,
            &[],
            &job_for(&site, &["bob@example.net"], &message("odd", "x")),
        );
        assert_eq!(d.code, 0, "{greeting}: {}", d.stderr);
        assert_eq!(site.queue("deferred").len(), 1, "{greeting}");
        assert!(site.log().contains("dsn=4.4.2"), "{}", site.log());
    }
}

#[test]
fn unwritable_spool_hands_the_message_back_with_75() {
    let site = Site::new(util::closed_port());
    let job = job_for(&site, &["bob@example.net"], &message("nospool", "x"));
    std::fs::create_dir_all(site.path().join("spool")).unwrap();
    std::fs::write(site.path().join("spool").join("tmp"), b"not a directory").unwrap();
    let d = site.run(DELIVERER, &[], &job);
    assert_eq!(d.code, 75, "{}", d.stderr);
    assert!(d.status_line().starts_with("4.3.0 spool "), "{}", d.stderr);
    assert_eq!(d.stderr.lines().count(), 1);
}

#[test]
fn bad_spool_key_is_refused_and_the_message_kept() {
    let site = Site::new(util::closed_port());
    let job = job_for(&site, &["bob@example.net"], &message("key", "x"));
    let key = site.path().join("spool.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = site.run(DELIVERER, &[], &job);
    assert_eq!(d.code, 78, "{}", d.stderr);
    assert!(
        d.status_line().starts_with("4.3.5 spool key ")
            && d.stderr.contains("0644")
            && d.stderr.contains("0600"),
        "{}",
        d.stderr
    );
    std::fs::write(&key, [1u8; 16]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = site.run(DELIVERER, &[], &job);
    assert_eq!(d.code, 78, "{}", d.stderr);
    assert!(
        d.stderr.contains("16 bytes") && d.stderr.contains("32"),
        "{}",
        d.stderr
    );
    assert!(site.queue("deferred").is_empty());
}

#[test]
fn a_cut_job_stream_delivers_nothing() {
    let sink = Server::start(Script::default());
    let site = Site::new(sink.port);
    let one = job_for(&site, &["bob@example.net"], &message("one", "first"));
    let two = job_for(&site, &["bob@example.net"], &message("two", "second"));
    let body_at = two.windows(7).position(|w| w == b"Subject").unwrap();
    let envelope_at = 30;
    for cut in [envelope_at, body_at + 3, two.len() - 2] {
        let mut stream = one.clone();
        stream.extend_from_slice(&two[..cut]);
        let d = site.run(DELIVERER, &[], &stream);
        assert_eq!(d.code, 75, "cut at {cut}: {}", d.stderr);
        assert!(
            d.status_line()
                .starts_with("4.3.0 job stream ends inside a job"),
            "{}",
            d.stderr
        );
    }
    assert!(
        sink.received().is_empty(),
        "nothing of a cut stream may go out"
    );
    let mut both = one.clone();
    both.extend_from_slice(&two);
    assert_eq!(site.run(DELIVERER, &[], &both).code, 0);
    assert_eq!(sink.received().len(), 2);
}

#[test]
fn garbage_and_wrong_lengths_are_data_errors() {
    let site = Site::new(util::closed_port());
    let good =
        String::from_utf8(job_for(&site, &["bob@example.net"], &message("len", "x"))).unwrap();
    let size_line = good
        .lines()
        .find(|l| l.starts_with("size: "))
        .unwrap()
        .to_string();
    let n: usize = size_line[6..].parse().unwrap();
    let short = good.replace(&size_line, &format!("size: {}", n - 1));
    for bad in [
        short.as_bytes(),
        b"Subject: not a job\n\n" as &[u8],
        b"postern-job 9\n",
    ] {
        let d = site.run(DELIVERER, &[], bad);
        assert_eq!(d.code, 65, "{}", d.stderr);
        assert!(d.status_line().starts_with("5.6.0 "));
    }
}

#[test]
fn a_flipped_bit_moves_that_file_to_corrupt_and_the_rest_goes_out() {
    let port = util::closed_port();
    let site = Site::new(port);
    for s in ["a", "b"] {
        let (_, d) = site.chain("alice@example.org", &["bob@example.net"], &message(s, "x"));
        assert_eq!(d.code, 0);
    }
    let files = site.queue("deferred");
    assert_eq!(files.len(), 2);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[200] ^= 0x04;
    std::fs::write(&files[0], bytes).unwrap();
    let sink = Server::start_on(port, Script::default());
    let out = site.run(DELIVERER, &["--run-queue", "--flush"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sink.received().len(), 1);
    assert_eq!(site.queue("corrupt").len(), 1);
    assert!(site.queue("deferred").is_empty());
    assert!(
        site.log()
            .contains("moved to corrupt/: sealed data failed authentication"),
        "{}",
        site.log()
    );
}

#[test]
fn bare_message_mode_and_usage_errors() {
    let sink = Server::start(Script::default());
    let site = Site::new(sink.port);
    let d = site.run(
        DELIVERER,
        &["-f", "alice@example.org", "--", "bob@example.net"],
        &message("bare", "x"),
    );
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert_eq!(sink.received().len(), 1);
    let d = site.run(DELIVERER, &["--flush"], b"");
    assert_eq!(d.code, 78);
    assert!(d.status_line().starts_with("4.3.5 usage: "));
    let d = site.run(
        DELIVERER,
        &["--run-queue", "-f", "a@b.org", "--", "c@d.org"],
        b"",
    );
    assert_eq!(d.code, 78);
    // An oversized bare message is read to the end and refused with its size.
    let cfg = site.path().join("small.toml");
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(&cfg, format!("message_size_limit = 1000\n{text}")).unwrap();
    let big = [b"Subject: x\n\n".as_slice(), &[b'a'; 5000]].concat();
    let d = util::run(
        DELIVERER,
        &[
            "-c",
            cfg.to_str().unwrap(),
            "-f",
            "a@b.org",
            "--",
            "c@d.org",
        ],
        &big,
        &[],
    );
    assert_eq!(d.code, 69, "{}", d.stderr);
    assert!(
        d.status_line()
            .starts_with("5.3.4 message size 5012 exceeds the limit of 1000"),
        "{}",
        d.stderr
    );
    // A usage error names what is missing, on one line.
    let d = site.run(RECEIVER, &["--", "c@d.org"], b"");
    assert_eq!(d.stderr.lines().count(), 1);
    assert!(d.stderr.contains("-f <SENDER>"), "{}", d.stderr);
    // No input at all is not an error: an earlier stage refused the message.
    assert_eq!(site.run(DELIVERER, &[], b"").code, 0);
}

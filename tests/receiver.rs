//! postern-receiver(1) as a black box: good messages become jobs, bad ones
//! get the right exit code and one status line.

mod util;

use util::{RECEIVER, Site, message};

fn receive(site: &Site, args: &[&str], msg: &[u8]) -> util::Output {
    site.run(RECEIVER, args, msg)
}

#[test]
fn a_message_becomes_one_job() {
    let site = Site::new(util::closed_port());
    let msg = message("hello", "body");
    let out = receive(
        &site,
        &[
            "-f",
            "alice@example.org",
            "--client-address",
            "192.0.2.7",
            "--queue-id",
            "4Pz1",
            "--",
            "bob@example.net",
            "carol@example.net",
        ],
        &msg,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("postern-job 1\n"), "{text}");
    assert!(text.contains("\nsender: <alice@example.org>\n"));
    assert!(text.contains(
        "\nrecipient: <bob@example.net>\n  status: pending\nrecipient: <carol@example.net>\n"
    ));
    assert!(
        text.contains("\nclient-address: 192.0.2.7\n")
            && text.contains("\nupstream-queue-id: 4Pz1\n")
    );
    assert!(text.contains("Received: by mx.test.example (postern-receiver) id "));
    assert!(text.ends_with(&format!("{}end\n", String::from_utf8_lossy(&msg))));
    // The log names no address.
    let log = site.log();
    assert!(
        log.contains("upstream=4Pz1") && log.contains("nrcpt=2"),
        "{log}"
    );
    assert!(!log.contains("example"), "log leaks an address: {log}");
}

#[test]
fn null_sender_and_crlf_messages() {
    let site = Site::new(util::closed_port());
    let msg = util::crlf(&message("crlf", "line one\nline two"));
    let out = receive(&site, &["-f", "", "--", "bob@example.net"], &msg);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nsender: <>\n"));
    // Our trace header follows the message's own line endings.
    assert!(text.contains("(postern-receiver) id ") && text.contains(";\r\n\t"));
}

#[test]
fn bad_input_gets_the_right_code_and_one_line() {
    let site = Site::with_extra(
        util::closed_port(),
        "message_size_limit = 100000\nhop_count_limit = 3",
    );
    let ok = message("x", "y");
    // (name, arguments, message, exit code, status code)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<u8>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            "empty stdin",
            vec!["-f", "a@b.org", "--", "c@d.org"],
            vec![],
            65,
            "5.6.0",
        ),
        (
            "no recipients",
            vec!["-f", "a@b.org", "--"],
            ok.clone(),
            78,
            "4.3.5",
        ),
        (
            "no -f at all",
            vec!["--", "c@d.org"],
            ok.clone(),
            78,
            "4.3.5",
        ),
        (
            "CR LF in recipient",
            vec!["-f", "a@b.org", "--", "c@d.org\r\nRCPT TO:<x@y.org>"],
            ok.clone(),
            67,
            "5.1.3",
        ),
        // NUL cannot reach argv (C strings); the address unit tests cover it.
        (
            "recipient without domain",
            vec!["-f", "a@b.org", "--", "c"],
            ok.clone(),
            67,
            "5.1.3",
        ),
        (
            "tab in recipient",
            vec!["-f", "a@b.org", "--", "c\td@x.org"],
            ok.clone(),
            67,
            "5.1.3",
        ),
        (
            "bad sender",
            vec!["-f", "a b@b.org", "--", "c@d.org"],
            ok.clone(),
            65,
            "5.1.7",
        ),
        (
            "NUL in body",
            vec!["-f", "a@b.org", "--", "c@d.org"],
            b"Subject: x\n\na\0b\n".to_vec(),
            65,
            "5.6.0",
        ),
        (
            "no header",
            vec!["-f", "a@b.org", "--", "c@d.org"],
            b"hello there\n\nbody\n".to_vec(),
            65,
            "5.6.0",
        ),
        (
            "too large",
            vec!["-f", "a@b.org", "--", "c@d.org"],
            vec![b'x'; 100_001],
            69,
            "5.3.4",
        ),
        (
            "loop",
            vec!["-f", "a@b.org", "--", "c@d.org"],
            b"Received: 1\nReceived: 2\nDelivered-To: x\n\nb\n".to_vec(),
            69,
            "5.4.6",
        ),
        (
            "HELO that looks like an option",
            vec!["--client-helo", "--help", "-f", "a@b.org", "--", "c@d.org"],
            b"Subject: x\n\nb\n".to_vec(),
            0,
            "",
        ),
        (
            "unknown option",
            vec!["--frobnicate", "-f", "a@b.org", "--", "c@d.org"],
            ok.clone(),
            78,
            "4.3.5",
        ),
    ];
    for (name, args, msg, code, status) in cases {
        let out = receive(&site, &args, &msg);
        assert_eq!(out.code, code, "{name}: {}", out.stderr);
        if code == 0 {
            assert!(out.stderr.is_empty() && !out.stdout.is_empty(), "{name}");
            continue;
        }
        assert!(
            out.stdout.is_empty(),
            "{name}: a refused message must not produce a job"
        );
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{name}: exactly one line: {:?}",
            out.stderr
        );
        assert!(
            out.status_line().starts_with(&format!("{status} ")),
            "{name}: {}",
            out.stderr
        );
    }
    let log = site.log();
    assert!(
        log.contains("rejected: 5.1.3 bad recipient address #1"),
        "{log}"
    );
    assert!(
        !log.contains("d.org") && !log.contains("b.org"),
        "refusals must not log addresses: {log}"
    );
}

#[test]
fn a_51_mb_message_is_refused_with_5_3_4_after_reading_it_all() {
    // Default limit: 50 MiB.
    let site = Site::new(util::closed_port());
    let mut msg = b"Subject: big\n\n".to_vec();
    msg.resize(51 * 1024 * 1024, b'a');
    let out = receive(&site, &["-f", "a@b.org", "--", "c@d.org"], &msg);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(
        out.status_line()
            .starts_with("5.3.4 message size 53477376 exceeds the limit of 52428800"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_zero_byte_message_is_refused() {
    let site = Site::new(util::closed_port());
    let out = receive(&site, &["-f", "a@b.org", "--", "c@d.org"], b"");
    assert_eq!(
        (out.code, out.status_line()),
        (65, "5.6.0 message is empty")
    );
}

#[test]
fn missing_header_body_separator_is_repaired_and_mbox_from_line_dropped() {
    let site = Site::new(util::closed_port());
    let msg = b"From alice@example.org Mon Nov 23 16:31:44 2026\nSubject: x\nbody line\n";
    let out = receive(&site, &["-f", "a@b.org", "--", "c@d.org"], msg);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+0000\nSubject: x\n\nbody line\nend\n"),
        "{text}"
    );
    assert!(!text.contains("From alice"));
}

#[test]
fn bad_config_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "hostname = \"mx\"\n[relay]\nhots = \"x\"\n").unwrap();
    let out = util::run(
        RECEIVER,
        &[
            "-c",
            cfg.to_str().unwrap(),
            "-f",
            "a@b.org",
            "--",
            "c@d.org",
        ],
        b"Subject: x\n\n",
        &[],
    );
    assert_eq!(out.code, 78);
    assert!(
        out.status_line().starts_with("4.3.5 config ")
            && out.stderr.contains("line 3")
            && out.stderr.contains("hots"),
        "{}",
        out.stderr
    );
    let missing = util::run(
        RECEIVER,
        &[
            "-c",
            "/nonexistent/postern.toml",
            "-f",
            "a@b.org",
            "--",
            "c@d.org",
        ],
        b"Subject: x\n\n",
        &[],
    );
    assert_eq!(missing.code, 78, "{}", missing.stderr);
}

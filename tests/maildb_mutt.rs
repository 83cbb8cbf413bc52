//! postern-maildb(8)'s mbox export read by a real mutt(1): mutt opens the
//! exported file and pipes every message it finds, as it parsed it, into a
//! file, which is then compared with what was delivered.
//!
//! mutt needs a terminal; script(1) (bsdutils) gives it one, and the work
//! is done by a `push` in a muttrc written here (`-n -F`: no system or
//! personal muttrc), so nothing is typed and nothing waits on the screen.

mod util;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{MailSite, message};

/// What mutt writes after each message it pipes (`pipe_sep`).
const SEPARATOR: &str = "=====postern-mutt-separator=====\n";

fn ok(out: util::Output) -> util::Output {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    out
}

/// Fails, saying how to get it, when a program the test needs is missing.
fn require(program: &str, version_flag: &str, package: &str) {
    match Command::new(program).arg(version_flag).output() {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{program} is not installed, so the mbox export cannot be checked with it: \
             run `make deps` (as root) to install the Debian package {package}"
        ),
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

/// A path as a single-quoted shell word.
fn quoted(p: &Path) -> String {
    let s = p.display().to_string();
    assert!(!s.contains('\''), "{s}");
    format!("'{s}'")
}

/// Opens `mbox` read-only in mutt and returns every message mutt found,
/// in mailbox order, as mutt piped it (its From_ line included).
fn messages_mutt_sees(dir: &Path, mbox: &Path) -> Vec<String> {
    let out = dir.join("piped");
    let rc = dir.join("muttrc");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let sep = SEPARATOR.replace('\n', "\\n");
    std::fs::write(
        &rc,
        format!(
            "set charset=\"utf-8\"\n\
             set folder=\"{home}\"\n\
             set spoolfile=\"{mbox}\"\n\
             set tmpdir=\"{home}\"\n\
             set header_cache=\"\"\n\
             set record=\"\"\n\
             set sort=mailbox-order\n\
             set wait_key=no\n\
             set quit=yes\n\
             set move=no\n\
             set mark_old=no\n\
             set pipe_split=yes\n\
             set pipe_decode=no\n\
             set pipe_sep=\"{sep}\"\n\
             push \"<tag-pattern>~A<enter><tag-prefix><pipe-message>cat >> {out}<enter><quit>\"\n",
            home = home.display(),
            mbox = mbox.display(),
            out = quoted(&out),
        ),
    )
    .unwrap();
    let command = format!("mutt -n -F {} -R -f {}", quoted(&rc), quoted(mbox));
    let screen = dir.join("screen");
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("TERM", "xterm")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&screen).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mutt did not finish in 30 s; its screen:\n{}",
                String::from_utf8_lossy(&std::fs::read(&screen).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "mutt (under script) exited with {status}; its screen:\n{}",
        String::from_utf8_lossy(&std::fs::read(&screen).unwrap_or_default())
    );
    let piped = std::fs::read(&out).unwrap_or_else(|e| {
        panic!(
            "mutt piped nothing ({e}); its screen:\n{}",
            String::from_utf8_lossy(&std::fs::read(&screen).unwrap_or_default())
        )
    });
    let text = String::from_utf8(piped).unwrap();
    assert!(text.ends_with(SEPARATOR), "{text:?}");
    text[..text.len() - SEPARATOR.len()]
        .split(SEPARATOR)
        .map(str::to_owned)
        .collect()
}

/// A piped message without its From_ line: (Subject, body).
fn subject_and_body(piped: &str) -> (String, String) {
    let (from_line, message) = piped.split_once('\n').unwrap();
    assert!(from_line.starts_with("From MAILER-DAEMON "), "{piped:?}");
    let (header, body) = message.split_once("\n\n").unwrap();
    let subject = header
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_else(|| panic!("no Subject in {header:?}"));
    (subject.to_owned(), body.to_owned())
}

/// The mboxrd reading: one `>` less on every line matching `^>+From `.
fn mboxrd_unquoted(body: &str) -> String {
    body.split_inclusive('\n')
        .map(|line| {
            let quotes = line.bytes().take_while(|&b| b == b'>').count();
            if quotes > 0 && line[quotes..].starts_with("From ") {
                &line[1..]
            } else {
                line
            }
        })
        .collect()
}

#[test]
fn mutt_reads_the_mbox_export() {
    require("mutt", "-v", "mutt");
    require("script", "--version", "bsdutils");
    let site = MailSite::new();
    ok(site.owner("bob", &["init"]));

    // A body with `From ` lines, one of them a From_ line as mutt knows
    // one (a sender and a date, after an empty line): mutt would start a
    // message there if the export did not quote it.
    let from_body = "From here on\n>From there\n>>From everywhere\n\n\
                     From alice@example.org Mon Jan  1 00:00:00 2024\nend\n";
    let tricky = format!(
        "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\nSubject: from-lines\n\
         Message-ID: <from-lines@example.org>\n\n{from_body}"
    );
    let windows = util::crlf(&message("windows", "line one\nline two"));
    let unterminated = b"From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\n\
                         Subject: no-newline\nMessage-ID: <no-newline@example.org>\n\n\
                         the last line has no end"
        .to_vec();
    let delivered: [Vec<u8>; 5] = [
        message("plain", "hello"),
        tricky.into_bytes(),
        windows,
        unterminated,
        message("after", "the message after it"),
    ];
    for m in &delivered {
        ok(site.run(&["deliver", "bob"], m));
    }
    ok(site.owner("bob", &["list"]));
    // Stored byte for byte, so what mutt sees below is the export's doing.
    for (uid, m) in delivered.iter().enumerate() {
        let shown = ok(site.owner("bob", &["show", &(uid + 1).to_string()]));
        assert_eq!(&shown.stdout, m, "message {}", uid + 1);
    }

    let mbox = site.path().join("bob.mbox");
    let out = ok(site.owner(
        "bob",
        &["export", "--format", "mbox", &mbox.display().to_string()],
    ));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("exported\t5\t"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let seen = messages_mutt_sees(site.path(), &mbox);
    let parsed: Vec<(String, String)> = seen.iter().map(|m| subject_and_body(m)).collect();
    let subjects: Vec<&str> = parsed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        ["plain", "from-lines", "windows", "no-newline", "after"],
        "mutt saw:\n{seen:#?}"
    );
    let body = |subject: &str| {
        parsed
            .iter()
            .find(|(s, _)| s == subject)
            .map(|(_, b)| b.clone())
            .unwrap()
    };
    assert_eq!(body("plain"), "hello\n");
    // mutt reads mbox as mboxo: it never takes the `>` off again, so each
    // `From ` line shows with the one `>` the export added, and the From_
    // line in the body did not start a message. Taking one `>` off, as an
    // mboxrd reader does, gives the body exactly as it was delivered.
    let quoted_body = body("from-lines");
    assert_eq!(
        quoted_body,
        ">From here on\n>>From there\n>>>From everywhere\n\n\
         >From alice@example.org Mon Jan  1 00:00:00 2024\nend\n"
    );
    assert_eq!(mboxrd_unquoted(&quoted_body), from_body);
    // CRLF became LF; the message without a final newline got one, and
    // the next message starts where it should.
    assert_eq!(body("windows"), "line one\nline two\n");
    assert!(seen.iter().all(|m| !m.contains('\r')));
    assert_eq!(body("no-newline"), "the last line has no end\n");
    assert_eq!(body("after"), "the message after it\n");
}

/// Postfix's local(8) and procmail hand a message over with an mbox
/// envelope line first (`From MAILER-DAEMON ...`, then the `Received:`
/// lines). `deliver`, run by the recipe in contrib/procmail, must store the
/// message without it: kept, it hid the header from `list` and came out
/// of the mbox export as a `>From ` line above the header, so a mail
/// reader found neither sender nor subject.
#[test]
fn a_local_delivery_through_procmail_keeps_sender_and_subject() {
    require("procmail", "-v", "procmail");
    require("mutt", "-v", "mutt");
    require("script", "--version", "bsdutils");
    let site = MailSite::new();
    ok(site.owner("bob", &["init"]));
    let bindir = Path::new(util::MAILDB).parent().unwrap();
    let recipe = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/procmail/postern-maildb.rc"
    ))
    .unwrap()
    .replace("@BINDIR@", &bindir.display().to_string());
    let rc = site.path().join("procmailrc");
    std::fs::write(&rc, recipe).unwrap();
    let message = "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\n\
                   Subject: bounce-report\nMessage-ID: <local@example.org>\n\n\
                   the body\n";
    let local = format!(
        "From MAILER-DAEMON  Mon Nov 23 16:31:44 2026\n\
         Received: from mx.example.org (mx.example.org [192.0.2.1])\n\
         \tby mx.test.example (Postfix) with ESMTP id 4ABC\n\
         \tfor <bob@example.net>; Mon, 23 Nov 2026 16:31:44 +0000 (UTC)\n\
         Received: by mx.example.org (Postfix, from userid 0) id 3DEF;\n\
         \tMon, 23 Nov 2026 16:31:43 +0000 (UTC)\n{message}"
    );
    // procmail as root keeps only the variables it is given as arguments.
    let out = util::run(
        "procmail",
        &[
            "-m",
            "LOGNAME=bob",
            &format!("POSTERN_CONFIG={}", site.config.display()),
            &rc.display().to_string(),
        ],
        local.as_bytes(),
        &[],
    );
    assert_eq!(out.code, 0, "procmail: {}", out.stderr);

    let listed = ok(site.owner("bob", &["list"]));
    let line = String::from_utf8_lossy(&listed.stdout).into_owned();
    let fields: Vec<&str> = line.trim_end().split('\t').collect();
    assert_eq!(
        fields[4..],
        ["Alice <alice@example.org>", "bounce-report"],
        "{line}"
    );
    let shown = ok(site.owner("bob", &["show", "1"]));
    assert!(
        shown.stdout.starts_with(b"Received: from mx.example.org"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );

    let mbox = site.path().join("bob.mbox");
    ok(site.owner(
        "bob",
        &["export", "--format", "mbox", &mbox.display().to_string()],
    ));
    let seen = messages_mutt_sees(site.path(), &mbox);
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let (subject, body) = subject_and_body(&seen[0]);
    // procmail ends what it pipes with an empty line, as in an mbox.
    assert_eq!(
        (subject.as_str(), body.trim_end()),
        ("bounce-report", "the body")
    );
    let from = seen[0]
        .lines()
        .find_map(|l| l.strip_prefix("From: "))
        .unwrap_or_else(|| panic!("no From: in {:?}", seen[0]));
    assert_eq!(from, "Alice <alice@example.org>");
    assert!(!seen[0].contains(">From "), "{:?}", seen[0]);
}

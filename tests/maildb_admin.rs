//! postern-maildb(8) as a black box, looking after whole mailboxes:
//! `passwd`, `destroy`, `quota`, the terminal prompt, and the faults of
//! several processes at once, of kill -9 and of a damaged file.

mod util;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use postern::mailbox::{self, Mailbox, MailboxError};
use util::{MAILDB, MailSite, message};

fn stdout(out: &util::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn init(site: &MailSite, user: &str) {
    let out = site.owner(user, &["init"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// A second private passphrase file in the site.
fn passphrase_file(site: &MailSite, name: &str, text: &str) -> PathBuf {
    let p = site.path().join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// `postern-maildb -u USER --passphrase-file PW args...`
fn with_pw(site: &MailSite, user: &str, pw: &Path, args: &[&str]) -> util::Output {
    let pw = pw.display().to_string();
    let mut all = vec!["-u", user, "--passphrase-file", pw.as_str()];
    all.extend_from_slice(args);
    site.run(&all, b"")
}

/// Every file under `dir`, as paths relative to it, with their bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.push((p.strip_prefix(dir).unwrap().to_owned(), Vec::new()));
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p.strip_prefix(dir).unwrap().to_owned(), bytes));
            }
        }
    }
    out.sort();
    out
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Opens a mailbox in this process; `Ok(messages)` or the error.
fn open_count(path: &Path, pw: &str) -> Result<u64, MailboxError> {
    let mb = Mailbox::open_for_check(path, pw, Duration::from_secs(10))?;
    let report = mailbox::check(&mb)?;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    Ok(report.messages)
}

/// Subjects of a folder's messages, as the owner's `list` shows them.
fn subjects(site: &MailSite, user: &str) -> Vec<String> {
    let out = site.owner(user, &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    stdout(&out)
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// passwd

#[test]
fn passwd_changes_the_passphrase_and_keeps_the_mail() {
    let site = MailSite::new();
    init(&site, "bob");
    let old = site.passphrase_file.clone();
    let new = passphrase_file(&site, "new-pass", "a new and longer passphrase");
    for s in ["one", "two"] {
        let out = site.run(&["deliver", "bob"], &message(s, "text"));
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let out = with_pw(&site, "bob", &old, &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // One more waits in the drop area: passwd merges it first.
    let out = site.run(&["deliver", "bob"], &message("three", "text"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let public = std::fs::read(site.path().join("mail/bob.sqlite-pub")).unwrap();

    let new_arg = new.display().to_string();
    let out = with_pw(
        &site,
        "bob",
        &old,
        &["passwd", "--new-passphrase-file", &new_arg],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty());

    let out = with_pw(&site, "bob", &old, &["list"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.status_line().starts_with("5.7.0 wrong passphrase"),
        "{}",
        out.stderr
    );
    let out = with_pw(&site, "bob", &new, &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stdout(&out).lines().count(), 3);
    let out = with_pw(&site, "bob", &new, &["check"]);
    assert_eq!(out.code, 0, "{}{}", stdout(&out), out.stderr);
    // Delivery goes on with the same key; no stray copy is left.
    assert_eq!(
        std::fs::read(site.path().join("mail/bob.sqlite-pub")).unwrap(),
        public
    );
    let out = site.run(&["deliver", "bob"], &message("four", "text"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = with_pw(&site, "bob", &new, &["list"]);
    assert_eq!(stdout(&out).lines().count(), 4);
    assert_eq!(
        names_in(&site.path().join("mail")),
        ["bob.sqlite", "bob.sqlite-drop", "bob.sqlite-pub"]
            .map(String::from)
            .into()
    );

    // And back, the new passphrase from a descriptor (standard input).
    let new_pw = new.display().to_string();
    let out = site.run(
        &[
            "-u",
            "bob",
            "--passphrase-file",
            &new_pw,
            "passwd",
            "--new-passphrase-fd",
            "0",
        ],
        format!("{}\n", MailSite::PASSPHRASE).as_bytes(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(with_pw(&site, "bob", &new, &["list"]).code, 77);
    assert_eq!(with_pw(&site, "bob", &old, &["list"]).code, 0);
}

#[test]
fn passwd_with_a_wrong_passphrase_is_77_and_changes_nothing() {
    let site = MailSite::new();
    init(&site, "bob");
    let out = site.run(&["deliver", "bob"], &message("kept", "text"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let wrong = passphrase_file(&site, "wrong", "not the passphrase");
    let new = passphrase_file(&site, "new", "new passphrase");
    let before = snapshot(&site.path().join("mail"));
    let new_arg = new.display().to_string();
    let out = with_pw(
        &site,
        "bob",
        &wrong,
        &["passwd", "--new-passphrase-file", &new_arg],
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert_eq!(snapshot(&site.path().join("mail")), before);
    // No new passphrase at all (and no terminal): 78, nothing changed.
    let out = site.owner("bob", &["passwd"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("--new-passphrase-fd"), "{}", out.stderr);
    assert_eq!(subjects(&site, "bob"), ["kept"]);
    // A new passphrase file others can read is refused before any change.
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = site.owner("bob", &["passwd", "--new-passphrase-file", &new_arg]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    let out = site.owner("bob", &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// A mailbox big enough that `passwd` takes a while: `n` messages of
/// about 64 KB, stored through the library.
fn big_mailbox(path: &Path, pw: &str, n: usize) {
    let now = SystemTime::now();
    let mut mb = Mailbox::create(path, pw, Duration::from_secs(10), now).unwrap();
    let mut seed = 0x2545_f491_u64;
    for i in 0..n {
        let mut body = String::with_capacity(65 * 1024);
        while body.len() < 64 * 1024 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let word_len = 2 + (seed % 9) as usize;
            for k in 0..word_len {
                body.push((b'a' + ((seed >> (k * 5)) % 26) as u8) as char);
            }
            body.push(if seed.is_multiple_of(13) { '\n' } else { ' ' });
        }
        mailbox::deliver(&mut mb, &message(&format!("big-{i}"), &body), "INBOX", now).unwrap();
    }
    mb.checkpoint().unwrap();
}

fn spawn_passwd(site: &MailSite, old: &Path, new: &Path) -> Child {
    Command::new(MAILDB)
        .args(["-u", "bob", "--passphrase-file"])
        .arg(old)
        .args(["passwd", "--new-passphrase-file"])
        .arg(new)
        .env("POSTERN_CONFIG", &site.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn kill_9_during_passwd_leaves_one_passphrase_and_every_message() {
    const N: u64 = 300;
    let site = MailSite::new();
    let path = site.mailbox("bob");
    let a = MailSite::PASSPHRASE;
    let b = "the other passphrase, for the kill test";
    big_mailbox(&path, a, N as usize);
    let file_a = site.passphrase_file.clone();
    let file_b = passphrase_file(&site, "pass-b", b);

    // How long one whole passwd takes here.
    let started = Instant::now();
    let out = spawn_passwd(&site, &file_a, &file_b)
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole = started.elapsed();
    let (mut current, mut other) = ((b, &file_b), (a, &file_a));
    assert_eq!(open_count(&path, current.0).unwrap(), N);

    let mut changed = 0;
    // Before, in the middle of, near the end of, and after a whole run.
    let points = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 1.0, 1.05, 1.2];
    for f in points {
        let delay = whole.mul_f64(f);
        let mut child = spawn_passwd(&site, current.1, other.1);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; it may have finished already
        let _ = child.wait();
        let with_current = open_count(&path, current.0);
        let with_other = open_count(&path, other.0);
        match (with_current, with_other) {
            (Ok(n), Err(MailboxError::WrongPassphrase { .. })) => assert_eq!(n, N),
            (Err(MailboxError::WrongPassphrase { .. }), Ok(n)) => {
                assert_eq!(n, N);
                std::mem::swap(&mut current, &mut other);
                changed += 1;
            }
            (x, y) => panic!("after a kill at {delay:?}: {x:?} / {y:?}"),
        }
        // Never a write-ahead log of the other file beside this one.
        let wal = site.path().join("mail/bob.sqlite-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    }
    // The last one, uninterrupted, also clears any stray copy.
    let out = spawn_passwd(&site, current.1, other.1)
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(open_count(&path, other.0).unwrap(), N);
    assert!(!site.path().join("mail/bob.sqlite-passwd").exists());
    eprintln!(
        "passwd of {N} x 64 KB took {whole:?}; {changed} of {} killed runs had committed",
        points.len()
    );
}

// ---------------------------------------------------------------------------
// destroy

#[test]
fn destroy_needs_yes_and_leaves_nothing_behind() {
    let site = MailSite::new();
    init(&site, "bob");
    init(&site, "alice");
    let mail = site.path().join("mail");
    for (user, s) in [("bob", "b1"), ("bob", "b2"), ("alice", "a1")] {
        let out = site.run(&["deliver", user], &message(s, "text"));
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(subjects(&site, "bob"), ["b1", "b2"]);
    // Mail waiting in the drop area, a damaged sealed file, a stray copy
    // from a killed passwd, a half-written public key: all bob's.
    let out = site.run(&["deliver", "bob"], &message("b3", "waiting"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::fs::create_dir_all(mail.join("bob.sqlite-drop/corrupt")).unwrap();
    std::fs::write(mail.join("bob.sqlite-drop/corrupt/0123"), b"x").unwrap();
    std::fs::write(mail.join("bob.sqlite-passwd"), b"x").unwrap();
    std::fs::write(mail.join("bob.sqlite-passwd-journal"), b"x").unwrap();
    std::fs::write(
        mail.join("bob.sqlite-pub.0123456789abcdef0123456789abcdef"),
        b"x",
    )
    .unwrap();
    // Not bob's, though its name starts like his files.
    std::fs::write(mail.join("bob.sqlite-pub.notours"), b"x").unwrap();
    let alice_before = snapshot(&mail)
        .into_iter()
        .filter(|(p, _)| p.to_str().unwrap().starts_with("alice"))
        .collect::<Vec<_>>();

    let before = snapshot(&mail);
    let out = site.run(&["-u", "bob", "destroy"], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert_eq!(snapshot(&mail), before);
    let wrong = passphrase_file(&site, "wrong", "not bob's");
    let out = with_pw(&site, "bob", &wrong, &["destroy", "--yes"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert_eq!(snapshot(&mail), before);

    let out = site.run(&["-u", "bob", "destroy", "--yes"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let removed = stdout(&out);
    assert!(removed.starts_with("removed "), "{removed}");
    assert!(
        removed.lines().next().unwrap().ends_with("/bob.sqlite"),
        "{removed}"
    );
    let left: BTreeSet<String> = names_in(&mail)
        .into_iter()
        .filter(|n| n.starts_with("bob"))
        .collect();
    assert_eq!(left, ["bob.sqlite-pub.notours".to_string()].into());
    let alice_after = snapshot(&mail)
        .into_iter()
        .filter(|(p, _)| p.to_str().unwrap().starts_with("alice"))
        .collect::<Vec<_>>();
    assert_eq!(alice_after, alice_before);
    assert_eq!(subjects(&site, "alice"), ["a1"]);

    // Gone: delivery bounces, a second destroy finds nothing.
    let out = site.run(&["deliver", "bob"], &message("late", "text"));
    assert_eq!(out.code, 67, "{}", out.stderr);
    assert!(out.status_line().starts_with("5.1.1"), "{}", out.stderr);
    let out = site.run(&["-u", "bob", "destroy", "--yes"], b"");
    assert_eq!(out.code, 67, "{}", out.stderr);

    // With the right passphrase, and the side files of an open mailbox.
    let out = site.owner("alice", &["destroy", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        names_in(&mail),
        ["bob.sqlite-pub.notours".to_string()].into()
    );
}

#[test]
fn destroy_waits_for_an_open_mailbox() {
    let site = MailSite::new();
    init(&site, "bob");
    let path = site.mailbox("bob");
    let mb = Mailbox::open(
        &path,
        MailSite::PASSPHRASE,
        Duration::from_secs(5),
        SystemTime::now(),
    )
    .unwrap();
    // lock_timeout is 5s in the site's config: make it short for this.
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace("lock_timeout = \"5s\"", "lock_timeout = \"300ms\"");
    std::fs::write(&site.config, text).unwrap();
    let out = site.run(&["-u", "bob", "destroy", "--yes"], b"");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.status_line().starts_with("4.2.0"), "{}", out.stderr);
    assert!(path.exists());
    drop(mb);
    let out = site.run(&["-u", "bob", "destroy", "--yes"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(names_in(&site.path().join("mail")).is_empty());
}

// ---------------------------------------------------------------------------
// quota

fn set_quota(site: &MailSite, quota: &str) {
    let mut text = std::fs::read_to_string(&site.config).unwrap();
    text = text
        .lines()
        .filter(|l| !l.starts_with("quota"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("quota = {quota}\n"));
    std::fs::write(&site.config, text).unwrap();
}

#[test]
fn quota_is_measured_without_the_passphrase_and_enforced_by_deliver() {
    let site = MailSite::new();
    init(&site, "bob");
    let out = site.run(&["-u", "bob", "quota", "--json"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["limit"], 10u64 << 30);
    let empty = json["used"].as_u64().unwrap();
    assert!(empty > 0 && json["waiting"] == 0, "{json}");

    // Room for one 20 KB message, not for two.
    let limit = empty + 40 * 1024;
    set_quota(&site, &limit.to_string());
    let big = message("big", &"x".repeat(20 * 1024));
    let out = site.run(&["deliver", "bob"], &big);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = site.run(&["deliver", "bob"], &big);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(
        out.status_line().starts_with("5.2.2 mailbox full"),
        "{}",
        out.stderr
    );
    assert!(site.log().contains("5.2.2"), "{}", site.log());
    // Small mail still fits.
    let out = site.run(&["deliver", "bob"], &message("small", "hi"));
    assert_eq!(out.code, 0, "{}", out.stderr);

    let out = site.run(&["-u", "bob", "quota"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = stdout(&out);
    assert!(text.contains("2 sealed messages waiting"), "{text}");
    assert!(text.contains(&format!("limit: {limit} bytes")), "{text}");
    // No quota: anything goes.
    set_quota(&site, "0");
    let out = site.run(&["deliver", "bob"], &big);
    assert_eq!(out.code, 0, "{}", out.stderr);
    set_quota(&site, "\"1K\"");
    let out = site.run(&["-u", "bob", "quota"], b"");
    assert!(
        stdout(&out).contains("limit: 1024 bytes"),
        "{}",
        stdout(&out)
    );
    let out = site.run(&["-u", "nobody", "quota"], b"");
    assert_eq!(out.code, 67, "{}", out.stderr);
    assert_eq!(subjects(&site, "bob"), ["big", "small", "big"]);
}

// ---------------------------------------------------------------------------
// The terminal prompt, through tmux

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Option<Tmux> {
        // A fresh server each time: reusing a name can race with the
        // previous server still shutting down.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let socket = format!(
            "postern-test-{}-{:?}-{n}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
            ])
            .arg(command)
            .status()
            .ok()?
            .success();
        ok.then_some(Tmux { socket })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-S", "-100"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `times` times.
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, text: &str) {
        // The prompt is written just before echo is turned off; a person
        // takes longer than that to start typing, and so does this.
        std::thread::sleep(Duration::from_millis(300));
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "Enter"])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// Runs postern-maildb ARGS in a terminal; returns the session and the
/// file its exit code will be written to.
fn in_terminal(site: &MailSite, args: &str, name: &str) -> Option<(Tmux, PathBuf)> {
    let code = site.path().join(format!("{name}.code"));
    let command = format!(
        "POSTERN_CONFIG='{}' '{MAILDB}' {args}; echo $? > '{}.tmp'; mv '{}.tmp' '{}'; \
         echo FINISHED; sleep 30",
        site.config.display(),
        code.display(),
        code.display(),
        code.display()
    );
    Tmux::start(&command).map(|t| (t, code))
}

fn exit_code(code: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !code.exists() {
        assert!(Instant::now() < deadline, "the command did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(code)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn passphrases_from_the_terminal_without_echo() {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is not installed: run `make deps`");
    }
    let site = MailSite::new();
    let secret = "typed-secret-words";

    // init asks twice; two different answers create nothing.
    let Some((tmux, code)) = in_terminal(&site, "-u bob init", "mismatch") else {
        panic!("tmux could not start a terminal session here");
    };
    tmux.wait_for("New passphrase for", 1);
    tmux.type_line(secret);
    tmux.wait_for("Repeat the new passphrase", 1);
    tmux.type_line("something else");
    assert_eq!(exit_code(&code), 78);
    let screen = tmux.wait_for("FINISHED", 1);
    assert!(screen.contains("the two passphrases differ"), "{screen}");
    assert!(!site.mailbox("bob").exists());
    drop(tmux);

    let (tmux, code) = in_terminal(&site, "-u bob init", "init").unwrap();
    tmux.wait_for("New passphrase for", 1);
    tmux.type_line(secret);
    tmux.wait_for("Repeat the new passphrase", 1);
    tmux.type_line(secret);
    assert_eq!(exit_code(&code), 0);
    let screen = tmux.wait_for("FINISHED", 1);
    assert!(
        !screen.contains(secret),
        "the passphrase was echoed:\n{screen}"
    );
    drop(tmux);
    let typed = passphrase_file(&site, "typed", secret);
    assert_eq!(with_pw(&site, "bob", &typed, &["list"]).code, 0);

    // passwd: the old one once, the new one twice.
    let (tmux, code) = in_terminal(&site, "-u bob passwd", "passwd").unwrap();
    tmux.wait_for("Passphrase for", 1);
    tmux.type_line(secret);
    tmux.wait_for("New passphrase for", 1);
    tmux.type_line("second-typed-secret");
    tmux.wait_for("Repeat the new passphrase", 1);
    tmux.type_line("second-typed-secret");
    assert_eq!(exit_code(&code), 0);
    let screen = tmux.wait_for("FINISHED", 1);
    assert!(!screen.contains("typed-secret"), "echoed:\n{screen}");
    drop(tmux);
    assert_eq!(with_pw(&site, "bob", &typed, &["list"]).code, 77);
    let second = passphrase_file(&site, "second", "second-typed-secret");
    assert_eq!(with_pw(&site, "bob", &second, &["list"]).code, 0);

    // Any other command asks once; a wrong answer is 77.
    let (tmux, code) = in_terminal(&site, "-u bob list", "list").unwrap();
    tmux.wait_for("Passphrase for", 1);
    tmux.type_line("wrong");
    assert_eq!(exit_code(&code), 77);
}

// ---------------------------------------------------------------------------
// Faults: several processes at once, kill -9, a damaged file

#[test]
fn two_delivers_and_a_list_at_the_same_time() {
    const ROUNDS: usize = 12;
    let site = MailSite::new();
    init(&site, "bob");
    let pw = site.passphrase_file.display().to_string();
    for round in 0..ROUNDS {
        let mut children = Vec::new();
        for k in 0..2 {
            let mut child = Command::new(MAILDB)
                .args(["deliver", "bob"])
                .env("POSTERN_CONFIG", &site.config)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let msg = message(&format!("r{round}-d{k}"), &"y".repeat(5000));
            child.stdin.take().unwrap().write_all(&msg).unwrap();
            children.push(child);
        }
        children.push(
            Command::new(MAILDB)
                .args(["-u", "bob", "--passphrase-file", &pw, "list"])
                .env("POSTERN_CONFIG", &site.config)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let got = subjects(&site, "bob");
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 2 * ROUNDS, "{got:?}");
    assert_eq!(
        unique.len(),
        got.len(),
        "a message was stored twice: {got:?}"
    );
    let out = site.owner("bob", &["check"]);
    assert_eq!(out.code, 0, "{}{}", stdout(&out), out.stderr);
}

#[test]
fn kill_9_during_deliver_leaves_no_half_message_and_no_duplicate() {
    let site = MailSite::new();
    init(&site, "bob");
    let new_dir = site.path().join("mail/bob.sqlite-drop/new");
    // A large message, so that reading, sealing and writing take a while.
    let body = "z".repeat(2 * 1024 * 1024);
    let spawn = |subject: &str| {
        let msg = message(subject, &body);
        let mut child = Command::new(MAILDB)
            .args(["deliver", "bob"])
            .env("POSTERN_CONFIG", &site.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&msg);
        });
        (child, writer)
    };
    // How long one whole deliver takes here.
    let started = Instant::now();
    let (mut child, writer) = spawn("whole");
    assert!(child.wait().unwrap().success());
    writer.join().unwrap();
    let whole = started.elapsed();
    let mut subjects_sent = vec!["whole".to_string()];
    let mut finished = 1;
    let points = [0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1];
    for (k, f) in points.iter().enumerate() {
        let subject = format!("kill-{k}");
        let (mut child, writer) = spawn(&subject);
        subjects_sent.push(subject);
        std::thread::sleep(whole.mul_f64(*f));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let _ = writer.join();
        if status.success() {
            finished += 1;
        }
        // Whatever is in new/ is complete: it unseals (checked by the
        // merge below, which would move a damaged one to corrupt/).
    }
    let waiting = names_in(&new_dir).len();
    assert!(
        waiting >= finished,
        "{waiting} waiting, {finished} finished"
    );
    // The mailbox opens, merges every complete message once, none damaged.
    let out = site.owner("bob", &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("could not be opened"),
        "{}",
        out.stderr
    );
    assert!(names_in(&site.path().join("mail/bob.sqlite-drop/corrupt")).is_empty());
    let got = subjects(&site, "bob");
    assert_eq!(got.len(), waiting, "{got:?}");
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "duplicated: {got:?}");
    assert!(got.iter().all(|s| subjects_sent.contains(s)));
    assert!(names_in(&new_dir).is_empty());
    let out = site.owner("bob", &["check"]);
    assert_eq!(out.code, 0, "{}{}", stdout(&out), out.stderr);
    eprintln!(
        "deliver of 2 MB took {whole:?}; {finished} of {} delivers finished, {waiting} were in new/",
        points.len() + 1
    );
}

#[test]
fn a_truncated_mailbox_is_reported_and_others_are_unaffected() {
    let site = MailSite::new();
    init(&site, "bob");
    init(&site, "alice");
    for i in 0..40 {
        for user in ["bob", "alice"] {
            let out = site.run(
                &["deliver", user],
                &message(&format!("m{i}"), &"w ".repeat(3000)),
            );
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
    }
    assert_eq!(subjects(&site, "bob").len(), 40);
    assert_eq!(subjects(&site, "alice").len(), 40);
    let path = site.mailbox("bob");
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 100_000, "{len}");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);

    let out = site.owner("bob", &["list"]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.status_line().starts_with("4.3.0 mailbox ") && out.status_line().contains("damaged"),
        "{}",
        out.stderr
    );
    let out = site.owner("bob", &["check"]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    let report = stdout(&out);
    assert!(report.contains("\nproblem: "), "{report}");
    // Delivery keeps the mail queued for the damaged one; the other
    // mailbox works as before.
    let out = site.run(&["deliver", "bob"], &message("after", "text"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = site.run(&["deliver", "alice"], &message("after", "text"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(subjects(&site, "alice").len(), 41);
    let out = site.owner("alice", &["check"]);
    assert_eq!(out.code, 0, "{}{}", stdout(&out), out.stderr);
}

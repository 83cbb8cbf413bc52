//! postern-maildb(8) as a black box: init, deliver without the passphrase,
//! the owner's commands with it, and the faults that must give a clear
//! error and the right exit code.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use util::{MailSite, message};

fn stdout(out: &util::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The mailbox file and every side file and sealed file, concatenated.
fn everything_on_disk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn init(site: &MailSite, user: &str) {
    let out = site.owner(user, &["init"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn init_deliver_and_read() {
    let site = MailSite::new();
    init(&site, "bob");
    let mb = site.mailbox("bob");
    assert!(mb.is_file());
    assert_eq!(
        std::fs::metadata(&mb).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Delivery needs no passphrase.
    let m1 = message("Quarterly-invoice", "Please pay PLAINTEXT-MARKER soon.");
    let m2 = message("Lunch", "Shall we meet?");
    let out = site.run(&["deliver", "bob"], &m1);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty() && out.stdout.is_empty());
    let out = site.run(&["deliver", "Bob", "--folder", "Archive"], &m2);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let disk = everything_on_disk(&site.path().join("mail"));
    for needle in [
        &b"PLAINTEXT-MARKER"[..],
        b"Quarterly",
        b"alice@example.org",
        b"SQLite format 3",
    ] {
        assert!(!contains(&disk, needle));
    }
    let log = site.log();
    assert!(log.contains("sealed: size="), "{log}");
    assert!(!log.contains("bob") && !log.contains("example"), "{log}");

    // The owner's first command merges the drop area.
    let out = site.owner("bob", &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = stdout(&out);
    let fields: Vec<&str> = text.trim_end().split('\t').collect();
    assert_eq!(fields[0], "1");
    assert_eq!(fields[1], "-----");
    assert_eq!(fields[3], m1.len().to_string());
    assert_eq!(fields[4], "Alice <alice@example.org>");
    assert_eq!(fields[5], "Quarterly-invoice");
    assert_eq!(text.lines().count(), 1);
    let drop_new = site.path().join("mail/bob.sqlite-drop/new");
    assert_eq!(std::fs::read_dir(&drop_new).unwrap().count(), 0);

    let out = site.owner("bob", &["list", "--folder", "Archive", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["subject"], "Lunch");
    assert_eq!(json[0]["folder"], "Archive");
    assert_eq!(json[0]["uid"], 1);

    let out = site.owner("bob", &["show", "1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, m1);

    let out = site.owner("bob", &["search", "quarterly"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(stdout(&out).starts_with("INBOX\t1\t"), "{}", stdout(&out));
    let out = site.owner("bob", &["search", "shall", "meet", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    let out = site.owner(
        "bob",
        &["search", "--limit", "1", "--folder", "Archive", "shall"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(stdout(&out).starts_with("Archive\t"), "{}", stdout(&out));
    assert_eq!(json[0]["folder"], "Archive");

    let out = site.owner("bob", &["flag", "1", "--set", "seen", "--set", "\\Flagged"]);
    assert_eq!((out.code, stdout(&out).as_str()), (0, "\\Seen \\Flagged\n"));
    let out = site.owner("bob", &["move", "1", "Trash"]);
    assert_eq!((out.code, stdout(&out).as_str()), (0, "Trash\t1\n"));
    let out = site.owner("bob", &["folders"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let folders = stdout(&out);
    assert!(folders.starts_with("INBOX\t0\t0\t"), "{folders}");
    assert!(folders.contains("\nTrash\t1\t0\t"), "{folders}");
    assert!(folders.contains("\nArchive\t1\t1\t"), "{folders}");
    let out = site.owner("bob", &["delete", "1", "--folder", "Trash"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = site.owner("bob", &["search", "quarterly"]);
    assert_eq!((out.code, stdout(&out).as_str()), (0, ""));
    let out = site.owner("bob", &["folders", "--create", "Lists/rust"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        stdout(&out).contains("\nLists/rust\t0\t0\t"),
        "{}",
        stdout(&out)
    );

    let out = site.owner("bob", &["check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = stdout(&out);
    assert!(report.contains("cipher: chacha20"), "{report}");
    assert!(
        report.contains("library: SQLite3 Multiple Ciphers"),
        "{report}"
    );
    assert!(report.contains("messages: 1\n") && report.contains("waiting: 0\n"));
    assert!(!report.contains("problem"));
}

#[test]
fn passphrase_from_a_descriptor() {
    let site = MailSite::new();
    let pw = format!("{}\n", MailSite::PASSPHRASE);
    let out = site.run(
        &["-u", "dora", "--passphrase-fd", "0", "init"],
        pw.as_bytes(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = site.run(
        &["-u", "dora", "--passphrase-fd", "0", "folders"],
        pw.as_bytes(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stdout(&out).lines().count(), 6);
    // The same mailbox opens with the passphrase file too.
    assert_eq!(site.owner("dora", &["check"]).code, 0);
}

#[test]
fn wrong_passphrase_is_77_and_changes_nothing() {
    let site = MailSite::new();
    init(&site, "bob");
    site.run(&["deliver", "bob"], &message("x", "y"));
    let before = everything_on_disk(&site.path().join("mail"));
    let out = site.run(
        &["-u", "bob", "--passphrase-fd", "0", "list"],
        b"Correct horse battery staple\n",
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.status_line().starts_with("5.7.0 wrong passphrase"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    assert!(out.stdout.is_empty());
    assert_eq!(everything_on_disk(&site.path().join("mail")), before);
}

#[test]
fn passphrase_mistakes() {
    let site = MailSite::new();
    init(&site, "bob");
    let out = site.run(&["-u", "bob", "list"], b"");
    assert_eq!(out.code, 78);
    assert!(
        out.status_line().contains("no passphrase given"),
        "{}",
        out.stderr
    );
    std::fs::set_permissions(
        &site.passphrase_file,
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = site.owner("bob", &["list"]);
    assert_eq!(out.code, 78);
    assert!(out.status_line().contains("mode 0644"), "{}", out.stderr);
    let out = site.run(&["-u", "bob", "--passphrase-fd", "0", "list"], b"\n");
    assert_eq!(out.code, 78);
    assert!(out.status_line().contains("empty"), "{}", out.stderr);
    // Never on the command line.
    let out = site.run(&["-u", "bob", "--passphrase", "x", "list"], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);
}

#[test]
fn delivery_failures_postfix_understands() {
    let site = MailSite::new();
    init(&site, "bob");
    let m = message("x", "y");
    assert_eq!(site.run(&["deliver", "bob"], &m).code, 0);
    let out = site.run(&["deliver", "nobody"], &m);
    assert_eq!(out.code, 67);
    assert!(out.status_line().starts_with("5.1.1 "), "{}", out.stderr);
    let out = site.run(&["deliver", "../bob"], &m);
    assert_eq!(out.code, 67);
    assert!(out.status_line().starts_with("5.1.3 "), "{}", out.stderr);
    let out = site.run(&["deliver", "bob"], b"");
    assert_eq!(out.code, 65);
    assert!(out.status_line().starts_with("5.6.0 "), "{}", out.stderr);
    let pw = site.passphrase_file.display().to_string();
    let out = site.run(&["deliver", "bob", "--passphrase-file", &pw], &m);
    assert_eq!(out.code, 78, "{}", out.stderr);
    // Over message_size_limit.
    let mut text = std::fs::read_to_string(&site.config).unwrap();
    text = text.replacen("hostname", "message_size_limit = 1000\nhostname", 1);
    std::fs::write(&site.config, text).unwrap();
    let big = message("big", &"x".repeat(2000));
    let out = site.run(&["deliver", "bob"], &big);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(out.status_line().starts_with("5.3.4 "), "{}", out.stderr);
    // The public key gone: defer, do not bounce.
    std::fs::remove_file(site.path().join("mail/bob.sqlite-pub")).unwrap();
    let out = site.run(&["deliver", "bob"], &m);
    assert_eq!(out.code, 75, "{}", out.stderr);
    // Nothing half-written was left in the drop area.
    let tmp = site.path().join("mail/bob.sqlite-drop/tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
    let new = site.path().join("mail/bob.sqlite-drop/new");
    assert_eq!(std::fs::read_dir(new).unwrap().count(), 1);
}

#[test]
fn a_plaintext_database_is_refused() {
    let site = MailSite::new();
    let path = site.mailbox("eve");
    let status = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .status();
    match status {
        Ok(s) if s.success() => {}
        // Without the sqlite3 tool, write the header by hand.
        _ => {
            let mut page = b"SQLite format 3\0".to_vec();
            page.resize(4096, 0);
            std::fs::write(&path, page).unwrap();
        }
    }
    let out = site.owner("eve", &["list"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.status_line().contains("unencrypted SQLite database"),
        "{}",
        out.stderr
    );
    let out = site.owner("eve", &["init"]);
    assert_eq!(out.code, 73, "{}", out.stderr);
}

#[test]
fn a_flipped_bit_is_reported_and_other_mailboxes_are_fine() {
    let site = MailSite::new();
    init(&site, "bob");
    init(&site, "carol");
    let big = "lorem ipsum dolor ".repeat(1500);
    for i in 0..8 {
        let m = message(&format!("m{i}"), &big);
        assert_eq!(site.run(&["deliver", "bob"], &m).code, 0);
        assert_eq!(site.run(&["deliver", "carol"], &m).code, 0);
    }
    // Merge, then close (which checkpoints the WAL into the file).
    assert_eq!(site.owner("bob", &["list"]).code, 0);
    assert_eq!(site.owner("carol", &["list"]).code, 0);
    let path = site.mailbox("bob");
    let mut bytes = std::fs::read(&path).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 8, "{pages} pages");
    bytes[(pages / 2) * 4096 + 1234] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    let out = site.owner("bob", &["check"]);
    assert_ne!(out.code, 0, "check missed a flipped bit: {}", stdout(&out));
    assert!(
        stdout(&out).contains("problem:") || out.status_line().contains("damaged"),
        "{} / {}",
        stdout(&out),
        out.stderr
    );
    let out = site.owner("carol", &["check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(stdout(&out).contains("messages: 8\n"));
}

#[test]
fn usage_mistakes() {
    let site = MailSite::new();
    init(&site, "bob");
    let out = site.owner("bob", &["list", "--folder", "Nope"]);
    assert_eq!(out.code, 65);
    assert!(out.status_line().contains("no folder"), "{}", out.stderr);
    let out = site.owner("bob", &["show", "42"]);
    assert_eq!(out.code, 65);
    let out = site.owner("bob", &["flag", "1", "--set", "shiny"]);
    assert_eq!(out.code, 78);
    for bad in ["-1", "many", "", "99999999999999999999999"] {
        let out = site.owner("bob", &["search", "--limit", bad, "x"]);
        assert_eq!(out.code, 78, "--limit {bad:?}: {}", out.stderr);
    }
    let out = site.owner("bob", &["search", "--limit", "0", "x"]);
    assert_eq!((out.code, stdout(&out).as_str()), (0, ""), "{}", out.stderr);
    let pw = site.passphrase_file.display().to_string();
    let out = site.run(&["--passphrase-file", &pw, "list"], b"");
    assert_eq!(out.code, 78);
    assert!(
        out.status_line().contains("-u USER or -m FILE"),
        "{}",
        out.stderr
    );
    // -m names the file itself.
    let file = site.mailbox("bob").display().to_string();
    let out = site.run(&["-m", &file, "--passphrase-file", &pw, "folders"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Every option of `--help` (of the tool and of each command) is in the
/// man page as an `.It Fl` item, and every flag the page names exists; the
/// page is clean mdoc.
#[test]
fn man_page_matches_help() {
    use std::collections::BTreeSet;
    let help = |args: &[&str]| -> String {
        let out = std::process::Command::new(util::MAILDB)
            .args(args)
            .env_remove("POSTERN_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert_eq!(commands.len(), 18, "{commands:?}");
    let mut in_help = BTreeSet::new();
    let mut texts = vec![top.clone()];
    for c in &commands {
        texts.push(help(&[c, "--help"]));
    }
    for text in &texts {
        for line in text
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
        {
            let spec = line.split("  ").next().unwrap_or(line);
            for w in spec.split([',', ' ']).filter(|w| w.starts_with('-')) {
                in_help.insert(w.to_owned());
            }
        }
    }
    let page_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/postern-maildb.8");
    let page = std::fs::read_to_string(&page_path).unwrap();
    let mut in_page = BTreeSet::new();
    let mut items = BTreeSet::new();
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let words: Vec<&str> = line[1..].split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if *w != "Fl" {
                continue;
            }
            if let Some(name) = words
                .get(i + 1)
                .filter(|n| !matches!(**n, "|" | "," | "Ns"))
            {
                let flag = format!("-{name}");
                in_page.insert(flag.clone());
                if line.starts_with(".It Fl") {
                    items.insert(flag);
                }
            }
        }
    }
    let undocumented: Vec<_> = in_help.difference(&items).collect();
    assert!(
        undocumented.is_empty(),
        "not in the man page: {undocumented:?}"
    );
    let unknown: Vec<_> = in_page.difference(&in_help).collect();
    assert!(
        unknown.is_empty(),
        "in the man page but not in --help: {unknown:?}"
    );
    for c in &commands {
        assert!(
            page.contains(&format!(".It Cm {c}")),
            "command {c} not documented"
        );
    }
    util::assert_mandoc_clean(&page_path);
}

/// A small tmpfs, mounted for one test and unmounted when dropped. Only
/// root can mount; elsewhere the test that needs it fails and says why
/// (`make test` runs as root).
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    fn mount(bytes: u64) -> TinyDisk {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "cannot mount a {bytes}-byte tmpfs on {} (this test needs root; make test runs \
             as root): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        TinyDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn disk_full_during_deliver_is_75_and_leaves_no_half_file() {
    let disk = TinyDisk::mount(256 * 1024);
    let site = MailSite::new();
    let text = std::fs::read_to_string(&site.config).unwrap().replace(
        &site.path().join("mail").display().to_string(),
        &disk.path().display().to_string(),
    );
    std::fs::write(&site.config, text).unwrap();
    init(&site, "bob");
    let small = message("small", "fits");
    assert_eq!(site.run(&["deliver", "bob"], &small).code, 0);
    let big = message("big", &"y".repeat(400 * 1024));
    let out = site.run(&["deliver", "bob"], &big);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.status_line().starts_with("4.3.1 "), "{}", out.stderr);
    let drop = disk.path().join("bob.sqlite-drop");
    assert_eq!(std::fs::read_dir(drop.join("tmp")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(drop.join("new")).unwrap().count(), 1);
    // The mailbox still opens and has the message that fitted.
    let pw = site.passphrase_file.display().to_string();
    let file = disk.path().join("bob.sqlite").display().to_string();
    let out = site.run(&["-m", &file, "--passphrase-file", &pw, "list"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stdout(&out).lines().count(), 1);
}

/// Where `tests/interop/install.sh` put better-sqlite3-multiple-ciphers,
/// or `$POSTERN_INTEROP_NODE_MODULES`; `None` (the test fails, saying how)
/// when it is not installed.
fn node_modules() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("POSTERN_INTEROP_NODE_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/node_modules")
        });
    let module = dir.join("better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node");
    (module.is_file()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok())
    .then_some(dir)
}

fn node(modules: &Path, args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check.js");
    std::process::Command::new("node")
        .arg(script)
        .args(args)
        .env("NODE_PATH", modules)
        .output()
        .expect("run node")
}

/// A mailbox opens in better-sqlite3-multiple-ciphers (Forward Email's
/// stack) with the same passphrase, FTS5 and an un-checkpointed WAL
/// included, and what it writes postern-maildb reads; a database it
/// creates opens in postern-maildb.
#[test]
fn interop_with_better_sqlite3_multiple_ciphers() {
    let Some(modules) = node_modules() else {
        panic!(
            "better-sqlite3-multiple-ciphers is not installed: run tests/interop/install.sh \
             (make test does)"
        );
    };
    let site = MailSite::new();
    // Not ASCII, with spaces: the bytes must be the same on both sides.
    std::fs::write(&site.passphrase_file, "pässwörd with spaces\n").unwrap();
    init(&site, "bob");
    let m = message("Quarterly-invoice", "please pay");
    assert_eq!(site.run(&["deliver", "bob"], &m).code, 0);
    assert_eq!(site.owner("bob", &["list"]).code, 0);
    let pw = site.passphrase_file.display().to_string();
    let file = site.mailbox("bob").display().to_string();

    // postern-maildb -> Node.
    let out = node(&modules, &["read", &file, &pw]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["subjects"][0], "Quarterly-invoice");
    assert_eq!(json["fts"][0], 1);
    assert_eq!(json["raw_starts"], "From:");
    assert_eq!(json["integrity"], "ok");
    assert_eq!(json["folders"].as_array().unwrap().len(), 6);
    // What Node wrote is there.
    let out = site.owner("bob", &["folders"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        stdout(&out).contains("\nFrom Node\t0\t0\t"),
        "{}",
        stdout(&out)
    );
    // A wrong passphrase fails there too.
    std::fs::write(site.path().join("wrong"), "Pässwörd with spaces\n").unwrap();
    let wrong = site.path().join("wrong").display().to_string();
    assert!(!node(&modules, &["read", &file, &wrong]).status.success());

    // A message still only in the WAL of an open connection.
    {
        let now = std::time::SystemTime::now();
        let timeout = std::time::Duration::from_secs(5);
        let mut mb = postern::mailbox::Mailbox::open(
            &site.mailbox("bob"),
            "pässwörd with spaces",
            timeout,
            now,
        )
        .unwrap();
        let wal_only = message("only-in-the-wal", "x");
        postern::mailbox::deliver(&mut mb, &wal_only, "INBOX", now).unwrap();
        let wal = site.path().join("mail/bob.sqlite-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        let out = node(&modules, &["read", &file, &pw]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["subjects"][1], "only-in-the-wal");
    }

    // Node -> postern-maildb.
    let created = site.path().join("mail/node.sqlite");
    let out = node(&modules, &["create", &created.display().to_string(), &pw]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read(&created).unwrap();
    assert!(!head.starts_with(b"SQLite format 3"));
    let out = site.owner("node", &["folders"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(stdout(&out).starts_with("INBOX\t"));
    assert_eq!(site.run(&["deliver", "node"], &m).code, 0);
    let out = site.owner("node", &["search", "quarterly"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(stdout(&out).starts_with("INBOX\t1\t"));
}

/// With the default `log_addresses = false`, nothing postern-maildb logs
/// names a mailbox: its file names hold the user's address. Each scenario
/// that logs is run for a user named by an address — a delivery, a merge
/// that finds a damaged sealed file, a backup that fails — and neither the
/// log file nor the warnings on stderr may contain the address.
#[test]
fn default_logs_never_name_a_mailbox() {
    let site = MailSite::new();
    let user = "bob.private@example.org";
    let out = site.owner(user, &["init"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = site.run(&["deliver", user], &message("hello", "body"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A sealed file that cannot be opened: the next open moves it aside.
    let new = site.path().join(format!("mail/{user}.sqlite-drop/new"));
    std::fs::write(
        new.join("00000000000000000000000000000000.9"),
        b"not sealed",
    )
    .unwrap();
    let out = site.owner(user, &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let merge_warning = out.stderr.clone();
    assert!(
        merge_warning.contains("could not be opened"),
        "{merge_warning}"
    );
    // A backup that fails: the target exists already.
    let dir = site.path().join("nightly");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(format!("{user}.sqlite")), b"old").unwrap();
    let out = site.run(&["backup", "--all", &dir.display().to_string()], b"");
    assert_eq!(out.code, 73, "{}", out.stderr);
    let log = site.log();
    assert!(log.contains("sealed: size="), "{log}");
    assert!(log.contains("could not be opened"), "{log}");
    assert!(log.contains("backup failed"), "{log}");
    for text in [&log, &merge_warning, &out.stderr] {
        for needle in ["bob", "example.org"] {
            assert!(!text.contains(needle), "{needle:?} in {text}");
        }
    }
}

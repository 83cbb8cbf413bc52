//! postern-maildb(8) export, import, purge, backup and restore as a black
//! box: formats other programs read (Python's `mailbox` module for mbox),
//! every importer fed malformed input, repeatable imports, consistent
//! backups taken while the mailbox is being written, and bounded memory.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use postern::mailbox::{self, Mailbox};
use util::{MailSite, message};

fn stdout(out: &util::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn ok(out: util::Output) -> util::Output {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    out
}

fn init(site: &MailSite, user: &str) {
    ok(site.owner(user, &["init"]));
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The `imported` line as numbers: imported, duplicates, skipped,
/// too_large, truncated.
fn import_counts(out: &util::Output) -> [u64; 5] {
    let text = stdout(out);
    let f: Vec<&str> = text.trim_end().split('\t').collect();
    assert_eq!(f.len(), 10, "{text}");
    [f[1], f[3], f[5], f[7], f[9]].map(|n| n.parse().unwrap())
}

fn import(site: &MailSite, user: &str, args: &[&str]) -> [u64; 5] {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    import_counts(&ok(site.owner(user, &all)))
}

/// UIDs and subjects of a folder.
fn subjects(site: &MailSite, user: &str, folder: &str) -> Vec<String> {
    let out = ok(site.owner(user, &["list", "--folder", folder]));
    stdout(&out)
        .lines()
        .map(|l| l.split('\t').nth(5).unwrap_or("").to_owned())
        .collect()
}

fn deliver_and_merge(site: &MailSite, user: &str, msgs: &[Vec<u8>]) {
    for m in msgs {
        ok(site.run(&["deliver", user], m));
    }
    ok(site.owner(user, &["list"]));
}

fn have_python() -> bool {
    Command::new("python3")
        .arg("-c")
        .arg("import mailbox")
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn mbox_export_is_mboxrd_that_python_reads() {
    let site = MailSite::new();
    init(&site, "bob");
    let tricky = b"From: Alice <alice@example.org>\nSubject: tricky\n\nFrom here on\n>From there\n\
                   >>From everywhere\nend\n"
        .to_vec();
    let crlf = util::crlf(&message("windows", "line one\nFrom line two"));
    deliver_and_merge(
        &site,
        "bob",
        &[message("plain", "hello"), tricky.clone(), crlf],
    );
    let dest = site.path().join("out.mbox");
    let out = ok(site.owner("bob", &["export", "--format", "mbox", &s(&dest)]));
    assert!(
        stdout(&out).starts_with("exported\t3\t"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&dest).unwrap();
    assert_eq!(text.matches("\nFrom MAILER-DAEMON ").count(), 2, "{text}");
    assert!(text.starts_with("From MAILER-DAEMON "));
    assert!(text.contains("\n>From here on\n>>From there\n>>>From everywhere\nend\n\n"));
    assert!(text.contains("\n>From line two\n"));
    assert!(!text.contains('\r'));

    // Standard output gives the same bytes.
    let out = ok(site.owner("bob", &["export", "--format", "mbox", "-"]));
    assert_eq!(out.stdout, text.as_bytes());
    // Never over an existing file.
    let out = site.owner("bob", &["export", "--format", "mbox", &s(&dest)]);
    assert_eq!(out.code, 73, "{}", out.stderr);
    // One folder.
    let arch = site.path().join("archive.mbox");
    let out = ok(site.owner(
        "bob",
        &[
            "export",
            "--format",
            "mbox",
            "--folder",
            "Archive",
            &s(&arch),
        ],
    ));
    assert!(stdout(&out).starts_with("exported\t0\t"));
    assert_eq!(std::fs::metadata(&arch).unwrap().len(), 0);
    let out = site.owner(
        "bob",
        &["export", "--format", "mbox", "--folder", "Nope", "x"],
    );
    assert_eq!(out.code, 65);

    if !have_python() {
        panic!("python3 with its mailbox module is needed: run `make deps`");
    }
    let py = Command::new("python3")
        .arg("-c")
        .arg(
            "import mailbox, sys\n\
             for m in mailbox.mbox(sys.argv[1]):\n\
             \x20   print(m['subject'] + '|' + m.get_payload().replace('\\n', '/'))\n",
        )
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let lines: Vec<String> = String::from_utf8(py.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Python keeps the quoting; what matters is that the messages split
    // where they should.
    assert_eq!(
        lines,
        [
            "plain|hello/",
            "tricky|>From here on/>>From there/>>>From everywhere/end/",
            "windows|line one/>From line two/",
        ]
    );
}

#[test]
fn eml_export_names_files_by_folder_and_uid() {
    let site = MailSite::new();
    init(&site, "bob");
    ok(site.owner("bob", &["folders", "--create", "Lists/rust"]));
    let m1 = message("one", "first");
    let m2 = util::crlf(&message("two", "second"));
    deliver_and_merge(&site, "bob", std::slice::from_ref(&m1));
    ok(site.run(&["deliver", "bob", "--folder", "Sent Mail"], &m2));
    ok(site.run(&["deliver", "bob", "--folder", "Lists/rust"], &m1));
    let dest = site.path().join("eml");
    let out = ok(site.owner("bob", &["export", "--format", "eml", &s(&dest)]));
    assert!(stdout(&out).starts_with("exported\t3\t"));
    assert_eq!(std::fs::read(dest.join("INBOX/1.eml")).unwrap(), m1);
    assert_eq!(std::fs::read(dest.join("Sent Mail/1.eml")).unwrap(), m2);
    assert_eq!(std::fs::read(dest.join("Lists%2Frust/1.eml")).unwrap(), m1);
    assert_eq!(
        std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(dest.join("INBOX/1.eml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // A directory that is not empty is refused; an empty one is fine.
    let out = site.owner("bob", &["export", "--format", "eml", &s(&dest)]);
    assert_eq!(out.code, 73);
    let empty = site.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    ok(site.owner(
        "bob",
        &["export", "--format", "eml", "--folder", "inbox", &s(&empty)],
    ));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 1);
    // And back: a directory of .eml files imports.
    init(&site, "carol");
    let counts = import(&site, "carol", &[&s(&dest.join("Sent Mail"))]);
    assert_eq!(counts, [1, 0, 0, 0, 0]);
    let out = ok(site.owner("carol", &["show", "1"]));
    assert_eq!(out.stdout, m2);
}

#[test]
fn sqlite_export_is_encrypted_and_can_take_a_new_passphrase() {
    let site = MailSite::new();
    init(&site, "bob");
    deliver_and_merge(
        &site,
        "bob",
        &[
            message("secret-one", "PLAINTEXT-MARKER"),
            message("two", "x"),
        ],
    );
    ok(site.run(
        &["deliver", "bob", "--folder", "Archive"],
        &message("arch", "y"),
    ));
    let new_pw = site.path().join("new-pw");
    std::fs::write(&new_pw, "a new passphrase\n").unwrap();
    std::fs::set_permissions(&new_pw, std::fs::Permissions::from_mode(0o600)).unwrap();

    let copy = site.path().join("copy.sqlite");
    let out = ok(site.owner(
        "bob",
        &[
            "export",
            "--format",
            "sqlite",
            "--new-passphrase-file",
            &s(&new_pw),
            &s(&copy),
        ],
    ));
    assert!(
        stdout(&out).starts_with("exported\t3\t"),
        "{}",
        stdout(&out)
    );
    let bytes = std::fs::read(&copy).unwrap();
    assert!(!contains(&bytes, b"SQLite format 3"));
    assert!(!contains(&bytes, b"PLAINTEXT-MARKER"));
    let m = s(&copy);
    let npw = s(&new_pw);
    let pw = s(&site.passphrase_file);
    let out = site.run(&["-m", &m, "--passphrase-file", &pw, "list"], b"");
    assert_eq!(out.code, 77, "{}", out.stderr);
    let out = ok(site.run(&["-m", &m, "--passphrase-file", &npw, "check"], b""));
    assert!(stdout(&out).contains("messages: 3\n"), "{}", stdout(&out));
    let out = ok(site.run(
        &[
            "-m",
            &m,
            "--passphrase-file",
            &npw,
            "search",
            "plaintext-marker",
        ],
        b"",
    ));
    assert!(stdout(&out).starts_with("INBOX\t1\t"));

    // Same passphrase, one folder.
    let copy2 = site.path().join("archive.sqlite");
    ok(site.owner(
        "bob",
        &[
            "export",
            "--format",
            "sqlite",
            "--folder",
            "Archive",
            &s(&copy2),
        ],
    ));
    let m2 = s(&copy2);
    let out = ok(site.run(&["-m", &m2, "--passphrase-file", &pw, "folders"], b""));
    let f = stdout(&out);
    assert!(
        f.starts_with("INBOX\t0\t") && f.contains("\nArchive\t1\t"),
        "{f}"
    );
    let out = ok(site.run(
        &[
            "-m",
            &m2,
            "--passphrase-file",
            &pw,
            "search",
            "plaintext-marker",
        ],
        b"",
    ));
    assert_eq!(stdout(&out), "");

    // Refused: an existing file, a new passphrase for a plaintext format.
    let out = site.owner("bob", &["export", "--format", "sqlite", &s(&copy)]);
    assert_eq!(out.code, 73);
    let out = site.owner(
        "bob",
        &[
            "export",
            "--format",
            "mbox",
            "--new-passphrase-file",
            &npw,
            "x.mbox",
        ],
    );
    assert_eq!(out.code, 78);
    let out = site.owner("bob", &["export", "--format", "zip", "x"]);
    assert_eq!(out.code, 78);
}

#[test]
fn mbox_round_trip_and_a_second_import_stores_nothing_twice() {
    let site = MailSite::new();
    init(&site, "bob");
    init(&site, "carol");
    let msgs = vec![
        message("a", "From the start"),
        b"Subject: b\n\n>From quoted\n>>From twice\n".to_vec(),
        message("c", "last"),
    ];
    deliver_and_merge(&site, "bob", &msgs);
    let dest = site.path().join("bob.mbox");
    ok(site.owner("bob", &["export", "--format", "mbox", &s(&dest)]));
    assert_eq!(import(&site, "carol", &[&s(&dest)]), [3, 0, 0, 0, 0]);
    for (i, m) in msgs.iter().enumerate() {
        let out = ok(site.owner("carol", &["show", &(i + 1).to_string()]));
        assert_eq!(&out.stdout, m, "message {}", i + 1);
    }
    assert_eq!(import(&site, "carol", &[&s(&dest)]), [0, 3, 0, 0, 0]);
    assert_eq!(subjects(&site, "carol", "INBOX"), ["a", "b", "c"]);
    // A message deleted can be imported again.
    ok(site.owner("carol", &["delete", "2"]));
    assert_eq!(
        import(&site, "carol", &["--folder", "Archive", &s(&dest)]),
        [1, 2, 0, 0, 0]
    );
    assert_eq!(subjects(&site, "carol", "Archive"), ["b"]);
    let log = site.log();
    assert!(log.contains("imported: 3 "), "{log}");
    assert!(!log.contains("example.org"), "{log}");
}

#[test]
fn mbox_variants_mixed_line_endings_and_unescaped_from_lines() {
    let site = MailSite::new();
    init(&site, "bob");
    let cl_body =
        "From: inside the body, unescaped\n\nFrom x Mon Jan  1 00:00:00 2024\nstill body\n";
    let mbox = format!(
        // mboxo: an unescaped From line in the body that is not a From_ line.
        "From alice@example.org Mon Jan  1 10:00:00 2024\n\
         Subject: mboxo\nStatus: RO\nX-Status: F\n\n\
         Hello\n\nFrom now on we meet at noon.\n\n\
         From bob@example.org Tue Jan  2 11:00:00 2024\r\n\
         Subject: crlf\r\n\r\nwindows\r\nlines\r\n\r\n\
         From carol@example.org Wed Jan  3 12:00:00 2024\n\
         Subject: cl2\nContent-Length: {}\n\n{cl_body}\n\
         From dave@example.org Thu Jan  4 13:00:00 2024\n\
         Subject: rd\n\n>From escaped\n>>From twice\n",
        cl_body.len()
    );
    let path = site.path().join("mixed.mbox");
    std::fs::write(&path, mbox).unwrap();
    assert_eq!(import(&site, "bob", &[&s(&path)]), [4, 0, 0, 0, 0]);
    assert_eq!(
        subjects(&site, "bob", "INBOX"),
        ["mboxo", "crlf", "cl2", "rd"]
    );
    let show = |uid: &str| ok(site.owner("bob", &["show", uid])).stdout;
    assert_eq!(
        show("1"),
        b"Subject: mboxo\nStatus: RO\nX-Status: F\n\nHello\n\nFrom now on we meet at noon.\n"
    );
    assert_eq!(show("2"), b"Subject: crlf\r\n\r\nwindows\r\nlines\r\n");
    assert_eq!(
        show("3"),
        format!(
            "Subject: cl2\nContent-Length: {}\n\n{cl_body}",
            cl_body.len()
        )
        .as_bytes()
    );
    assert_eq!(show("4"), b"Subject: rd\n\nFrom escaped\n>From twice\n");
    // Status and X-Status give the flags; the From_ line the date.
    let out = ok(site.owner("bob", &["list", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["flags"], serde_json::json!(["\\Seen", "\\Flagged"]));
    assert_eq!(json[0]["internal_date"], 1_704_103_200);
    assert_eq!(json[1]["flags"], serde_json::json!([]));
}

#[test]
fn malformed_mbox_files() {
    let site = MailSite::new();
    init(&site, "bob");
    // 0 bytes: nothing to import, not an error.
    let empty = site.path().join("empty.mbox");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(import(&site, "bob", &[&s(&empty)]), [0, 0, 0, 0, 0]);
    // Garbage: refused, nothing stored.
    let garbage = site.path().join("garbage");
    std::fs::write(&garbage, b"\x00\x01binary\xff\nnot mail\n").unwrap();
    let out = site.owner("bob", &["import", &s(&garbage)]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.status_line().contains("not an mbox"), "{}", out.stderr);
    // Truncated in the middle of the second message: both stored, a warning.
    let cut = site.path().join("cut.mbox");
    std::fs::write(
        &cut,
        b"From a Mon Jan  1 00:00:00 2024\nSubject: whole\n\nbody\n\n\
          From b Mon Jan  1 00:00:00 2024\nSubject: cut\n\nhalf a li",
    )
    .unwrap();
    let out = ok(site.owner("bob", &["import", &s(&cut)]));
    assert_eq!(import_counts(&out), [2, 0, 0, 0, 1]);
    assert!(out.stderr.contains("cut short"), "{}", out.stderr);
    // Truncated inside a Content-Length body: read line by line instead.
    let cl = site.path().join("cl.mbox");
    std::fs::write(
        &cl,
        b"From a Mon Jan  1 00:00:00 2024\nSubject: cl-cut\nContent-Length: 500\n\nshort\n",
    )
    .unwrap();
    assert_eq!(import(&site, "bob", &[&s(&cl)]), [1, 0, 0, 0, 0]);
    // A message over message_size_limit is skipped, the rest imported.
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text.replace("[maildb]", "message_size_limit = 2000\n[maildb]"),
    )
    .unwrap();
    let big = site.path().join("big.mbox");
    std::fs::write(
        &big,
        format!(
            "From a Mon Jan  1 00:00:00 2024\nSubject: big\n\n{}\n\n\
             From b Mon Jan  1 00:00:00 2024\nSubject: small-one\n\nok\n",
            "x".repeat(10_000)
        ),
    )
    .unwrap();
    assert_eq!(import(&site, "bob", &[&s(&big)]), [1, 0, 0, 1, 0]);
    // No such file; no such folder.
    let out = site.owner("bob", &["import", "/nonexistent/mbox"]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    let out = site.owner("bob", &["import", "--folder", "Nope", &s(&cut)]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert_eq!(
        subjects(&site, "bob", "INBOX"),
        ["whole", "cut", "cl-cut", "small-one"]
    );
}

#[test]
fn maildir_import_with_flags_and_bad_names() {
    let site = MailSite::new();
    init(&site, "bob");
    let md = site.path().join("Maildir");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    let put = |rel: &str, subject: &str| {
        std::fs::write(md.join(rel), message(subject, "body")).unwrap();
    };
    put("new/1700000003.M3P1.host", "fresh");
    put("cur/1700000001.M1P1.host:2,FS", "seen-flagged");
    put("cur/1700000002.M2P1.host:2,RT", "answered-deleted");
    put("cur/1700000004.M4P1.host:1,S", "bad-info");
    put("cur/no-info-at-all", "no-info");
    put("cur/1700000005.M5P1.host:2,xyz!", "odd-flags");
    put("tmp/1700000006.M6P1.host", "in-tmp");
    std::fs::write(md.join("cur/.dotfile"), b"not a message").unwrap();
    std::fs::create_dir(md.join("cur/subdir")).unwrap();
    std::fs::write(md.join("cur/empty:2,S"), b"").unwrap();
    let counts = import(&site, "bob", &["--folder", "Archive", &s(&md)]);
    assert_eq!(counts, [6, 0, 3, 0, 0]);
    let out = ok(site.owner("bob", &["list", "--folder", "Archive"]));
    let rows: Vec<(String, String)> = stdout(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[5].to_owned(), f[1].to_owned())
        })
        .collect();
    let flags_of = |subject: &str| {
        rows.iter()
            .find(|(s, _)| s == subject)
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("{subject} missing: {rows:?}"))
    };
    assert_eq!(flags_of("fresh"), "-----");
    assert_eq!(flags_of("seen-flagged"), "S-F--");
    assert_eq!(flags_of("answered-deleted"), "-A-D-");
    assert_eq!(flags_of("bad-info"), "-----");
    assert_eq!(flags_of("no-info"), "-----");
    assert_eq!(flags_of("odd-flags"), "-----");
    assert!(!rows.iter().any(|(s, _)| s == "in-tmp"));
    // The same Maildir again: nothing twice.
    assert_eq!(
        import(&site, "bob", &["--folder", "Archive", &s(&md)]),
        [0, 6, 3, 0, 0]
    );
}

/// The internal date of an imported message: a Maildir name's time, else
/// the Date field, else the file's time; for an mbox, the From_ line's
/// date, else the Date field. Absurd or malformed dates are passed over.
#[test]
fn imported_messages_keep_when_they_arrived() {
    let site = MailSite::new();
    init(&site, "bob");
    let md = site.path().join("Maildir");
    for d in ["cur", "new"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    let feb_2021 = "Sun, 14 Feb 2021 10:00:00 +0000"; // 1613296800
    let put = |path: &Path, subject: &str, date: Option<&str>, mtime: u64| {
        let date = date.map(|d| format!("Date: {d}\n")).unwrap_or_default();
        std::fs::write(path, format!("Subject: {subject}\n{date}\nbody\n")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime))
            .unwrap();
    };
    put(
        &md.join("new/1600000000.M1P1.host"),
        "name",
        Some(feb_2021),
        1_500_000_000,
    );
    put(
        &md.join("cur/from-an-mua:2,S"),
        "date",
        Some(feb_2021),
        1_500_000_000,
    );
    put(
        &md.join("cur/1700000000.M2P1.host:2,S"),
        "name-no-date",
        None,
        1_500_000_000,
    );
    put(
        &md.join("cur/other:2,"),
        "bad-date",
        Some("Mon, 32 Foo 2024 99:99:99"),
        1_500_000_000,
    );
    put(
        &md.join("cur/future:2,"),
        "future-date",
        Some("Fri, 1 Jan 2100 00:00:00 +0000"),
        1_500_000_001,
    );
    import(&site, "bob", &["--folder", "Archive", &s(&md)]);
    let eml = site.path().join("one.eml");
    put(
        &eml,
        "eml",
        Some("Sun, 14 Feb 2021 11:00:00 +0100"),
        1_500_000_000,
    );
    import(&site, "bob", &["--folder", "Archive", &s(&eml)]);
    let mbox = site.path().join("in.mbox");
    std::fs::write(
        &mbox,
        "From a@b Tue Nov 14 22:13:20 2023\nSubject: from-line\nDate: Sun, 14 Feb 2021 10:00:00 +0000\n\nx\n\n\
         From a@b 22:13:20 2023\nSubject: from-line-without-month\nDate: Sun, 14 Feb 2021 10:00:02 +0000\n\nx\n",
    )
    .unwrap();
    import(&site, "bob", &["--folder", "Archive", &s(&mbox)]);

    let out = ok(site.owner("bob", &["list", "--folder", "Archive", "--json"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<(String, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["subject"].as_str().unwrap().to_owned(),
                m["internal_date"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("bad-date", 1_500_000_000),
        ("date", 1_613_296_800),
        ("eml", 1_613_296_800),
        ("from-line", 1_700_000_000),
        ("from-line-without-month", 1_613_296_802),
        ("future-date", 1_500_000_001),
        ("name", 1_600_000_000),
        ("name-no-date", 1_700_000_000),
    ];
    assert_eq!(got, want.map(|(s, t)| (s.to_owned(), t)));
}

#[test]
fn eml_directory_with_files_that_are_not_messages() {
    let site = MailSite::new();
    init(&site, "bob");
    let dir = site.path().join("emls");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("10.eml"), message("ten", "x")).unwrap();
    std::fs::write(dir.join("2.EML"), message("two", "x")).unwrap();
    std::fs::write(dir.join("README.txt"), b"not mail").unwrap();
    std::fs::write(dir.join("empty.eml"), b"").unwrap();
    std::fs::write(dir.join("photo.jpg"), b"\xff\xd8\xff\xe0").unwrap();
    std::fs::create_dir(dir.join("sub.eml")).unwrap();
    assert_eq!(import(&site, "bob", &[&s(&dir)]), [2, 0, 4, 0, 0]);
    assert_eq!(subjects(&site, "bob", "INBOX"), ["two", "ten"]);
    // One .eml file on its own.
    let one = site.path().join("one.eml");
    std::fs::write(&one, message("single", "x")).unwrap();
    assert_eq!(import(&site, "bob", &[&s(&one)]), [1, 0, 0, 0, 0]);
    // An empty directory is an empty import.
    let none = site.path().join("none");
    std::fs::create_dir(&none).unwrap();
    assert_eq!(import(&site, "bob", &[&s(&none)]), [0, 0, 0, 0, 0]);
}

/// A plaintext mailbox with postern's schema, made with Python's sqlite3.
fn plaintext_mailbox(path: &Path) -> bool {
    let script = "import sqlite3, sys\n\
        c = sqlite3.connect(sys.argv[1])\n\
        c.executescript('''CREATE TABLE folders (id INTEGER PRIMARY KEY, name TEXT, special_use TEXT,\n\
          uidvalidity INTEGER, uidnext INTEGER, created INTEGER);\n\
          CREATE TABLE messages (id INTEGER PRIMARY KEY, folder_id INTEGER, uid INTEGER, flags INTEGER,\n\
          internal_date INTEGER, size INTEGER, raw BLOB);\n\
          INSERT INTO folders VALUES (1, 'INBOX', NULL, 1, 3, 0), (2, 'Old/Stuff', NULL, 2, 2, 0);''')\n\
        c.execute('INSERT INTO messages VALUES (1, 1, 1, 1, 1600000000, 5, ?)', (b'Subject: p1\\n\\nPLAIN-ONE\\n',))\n\
        c.execute('INSERT INTO messages VALUES (2, 2, 1, 4, 1600000001, 5, ?)', (b'Subject: p2\\n\\nx\\n',))\n\
        c.commit()\n";
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_plaintext_mailbox_imports_only_when_allowed() {
    let site = MailSite::new();
    init(&site, "bob");
    let plain = site.path().join("plain.sqlite");
    if !plaintext_mailbox(&plain) {
        panic!("python3 with its sqlite3 module is needed: run `make deps`");
    }
    let out = site.owner("bob", &["import", &s(&plain)]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.status_line().contains("--allow-plaintext-import"),
        "{}",
        out.stderr
    );
    assert!(subjects(&site, "bob", "INBOX").is_empty());
    assert_eq!(
        import(&site, "bob", &["--allow-plaintext-import", &s(&plain)]),
        [2, 0, 0, 0, 0]
    );
    let out = ok(site.owner("bob", &["list", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["subject"], "p1");
    assert_eq!(json[0]["flags"], serde_json::json!(["\\Seen"]));
    assert_eq!(json[0]["internal_date"], 1_600_000_000);
    assert_eq!(subjects(&site, "bob", "Old/Stuff"), ["p2"]);
    let out = ok(site.owner("bob", &["search", "plain-one"]));
    assert!(stdout(&out).starts_with("INBOX\t1\t"));
    let disk = std::fs::read(site.mailbox("bob")).unwrap();
    assert!(!contains(&disk, b"PLAIN-ONE"));
    // A table that is not a mailbox.
    let other = site.path().join("other.sqlite");
    let made = Command::new("sqlite3")
        .arg(&other)
        .arg("CREATE TABLE t (x);")
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let out = site.owner("bob", &["import", "--allow-plaintext-import", &s(&other)]);
        assert_eq!(out.code, 65, "{}", out.stderr);
    }
}

/// An mbox of `n` messages of about `size` bytes each.
fn write_mbox(path: &Path, n: usize, size: usize, first_date: i64, step: i64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let line = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod\n";
    let body = line.repeat(size / line.len() + 1);
    for i in 0..n {
        let date = first_date + step * i as i64;
        let from = postern::mailbox::mbox::from_line(date);
        write!(
            f,
            "{from}\nFrom: sender{i}@example.org\nSubject: message-{i}\nMessage-ID: <{i}@x>\n\n\
             word{i}\n{body}\n"
        )
        .unwrap();
    }
    f.flush().unwrap();
}

#[test]
fn purge_by_internal_date_updates_the_index() {
    let site = MailSite::new();
    init(&site, "bob");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let old = site.path().join("old.mbox");
    // Five messages 100, 80, 60, 40 and 20 days old.
    write_mbox(&old, 5, 200, now - 100 * 86_400, 20 * 86_400);
    assert_eq!(import(&site, "bob", &[&s(&old)]), [5, 0, 0, 0, 0]);
    ok(site.run(
        &["deliver", "bob", "--folder", "Archive"],
        &message("new", "x"),
    ));
    let out = ok(site.owner(
        "bob",
        &["purge", "--older-than", "50", "--folder", "Archive"],
    ));
    assert_eq!(stdout(&out), "purged\t0\n");
    let out = ok(site.owner("bob", &["purge", "--older-than", "50"]));
    assert_eq!(stdout(&out), "purged\t3\n");
    assert_eq!(subjects(&site, "bob", "INBOX"), ["message-3", "message-4"]);
    let out = ok(site.owner("bob", &["search", "word0"]));
    assert_eq!(stdout(&out), "");
    let out = ok(site.owner("bob", &["search", "word4"]));
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = ok(site.owner("bob", &["check"]));
    assert!(stdout(&out).contains("messages: 3\n"), "{}", stdout(&out));
    let out = site.owner("bob", &["purge"]);
    assert_eq!(out.code, 78);
}

#[test]
fn an_import_killed_half_way_is_finished_by_running_it_again() {
    let site = MailSite::new();
    init(&site, "bob");
    let path = site.path().join("many.mbox");
    // Several batches' worth.
    const N: u64 = 8500;
    write_mbox(&path, N as usize, 1000, 1_600_000_000, 60);
    let pw = s(&site.passphrase_file);
    let mut child = Command::new(util::MAILDB)
        .args(["-u", "bob", "--passphrase-file", &pw, "import", &s(&path)])
        .env("POSTERN_CONFIG", &site.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let _ = child.kill();
    let _ = child.wait();
    let first = ok(site.owner("bob", &["check"]));
    let before: u64 = stdout(&first)
        .lines()
        .find_map(|l| l.strip_prefix("messages: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        before.is_multiple_of(1000) || before == N,
        "a kill left a partial batch: {before}"
    );
    eprintln!("killed after {before} messages were stored");
    let counts = import(&site, "bob", &[&s(&path)]);
    assert_eq!(counts[0] + counts[1], N, "{counts:?}");
    assert_eq!(counts[1], before);
    let out = ok(site.owner("bob", &["check"]));
    assert!(
        stdout(&out).contains(&format!("messages: {N}\n")),
        "{}",
        stdout(&out)
    );
}

fn count_messages(site: &MailSite, args: &[&str]) -> u64 {
    let mut all = args.to_vec();
    all.push("check");
    let out = ok(site.run(&all, b""));
    stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("messages: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn backup_needs_no_passphrase_and_restore_checks_it() {
    let site = MailSite::new();
    init(&site, "bob");
    init(&site, "carol");
    let path = site.path().join("seed.mbox");
    write_mbox(&path, 50, 2000, 1_600_000_000, 60);
    import(&site, "bob", &[&s(&path)]);

    // A writer in this process keeps the mailbox open, so the log holds
    // frames, and goes on writing while the backup is taken.
    let mb_path = site.mailbox("bob");
    let mut mb = Mailbox::open(
        &mb_path,
        MailSite::PASSPHRASE,
        Duration::from_secs(10),
        SystemTime::now(),
    )
    .unwrap();
    for i in 0..20 {
        mailbox::deliver(
            &mut mb,
            &message(&format!("in-wal-{i}"), &"z".repeat(3000)),
            "Archive",
            SystemTime::now(),
        )
        .unwrap();
    }
    assert!(
        std::fs::metadata(PathBuf::from(format!("{}-wal", mb_path.display())))
            .unwrap()
            .len()
            > 0
    );
    // A sealed message waiting in the drop area is part of the backup.
    ok(site.run(&["deliver", "bob"], &message("waiting", "sealed")));
    let writer = std::thread::spawn(move || {
        for i in 0..100 {
            mailbox::deliver(
                &mut mb,
                &message(&format!("during-{i}"), "w"),
                "Trash",
                SystemTime::now(),
            )
            .unwrap();
        }
        mb
    });
    let bk = site.path().join("backup");
    let out = site.run(&["-u", "bob", "backup", &s(&bk)], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mb = writer.join().unwrap();
    let file = bk.join("bob.sqlite");
    assert!(file.is_file());
    assert!(bk.join("bob.sqlite-wal").is_file());
    assert!(bk.join("bob.sqlite-pub").is_file());
    assert_eq!(
        std::fs::read_dir(bk.join("bob.sqlite-drop/new"))
            .unwrap()
            .count(),
        1
    );
    for entry in std::fs::read_dir(&bk).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(!contains(&bytes, b"SQLite format 3"), "{}", p.display());
            assert!(!contains(&bytes, b"in-wal-"), "{}", p.display());
        }
    }
    // Not over an existing backup.
    let out = site.run(&["-u", "bob", "backup", &s(&bk)], b"");
    assert_eq!(out.code, 73, "{}", out.stderr);

    // Restore as another mailbox: the log's frames and the sealed message
    // are there, and the copy is consistent whatever the writer did.
    let f = s(&file);
    let pw = s(&site.passphrase_file);
    let target = site.path().join("mail/restored.sqlite");
    let t = s(&target);
    let out = site.run(&["-m", &t, "--passphrase-file", &pw, "restore", &f], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let n = count_messages(&site, &["-m", &t, "--passphrase-file", &pw]);
    assert!((71..=171).contains(&n), "{n}");
    let archive = ok(site.run(
        &[
            "-m",
            &t,
            "--passphrase-file",
            &pw,
            "list",
            "--folder",
            "Archive",
        ],
        b"",
    ));
    assert_eq!(stdout(&archive).lines().count(), 20);
    let inbox = ok(site.run(
        &["-m", &t, "--passphrase-file", &pw, "search", "sealed"],
        b"",
    ));
    assert_eq!(stdout(&inbox).lines().count(), 1);

    // Refused: over an existing mailbox without --force; a wrong
    // passphrase (nothing put in place); --force while it is open.
    let out = site.run(
        &["-u", "carol", "--passphrase-file", &pw, "restore", &f],
        b"",
    );
    assert_eq!(out.code, 73, "{}", out.stderr);
    let wrong = site.path().join("wrong");
    std::fs::write(&wrong, "wrong\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = site.run(
        &["-u", "dave", "--passphrase-file", &s(&wrong), "restore", &f],
        b"",
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(!site.mailbox("dave").exists());
    let leftovers: Vec<_> = std::fs::read_dir(site.path().join("mail"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let out = site.run(
        &[
            "-u",
            "bob",
            "--passphrase-file",
            &pw,
            "restore",
            "--force",
            &f,
        ],
        b"",
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    drop(mb);
    let out = site.run(
        &[
            "-u",
            "carol",
            "--passphrase-file",
            &pw,
            "restore",
            "--force",
            &f,
        ],
        b"",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        count_messages(&site, &["-u", "carol", "--passphrase-file", &pw]),
        n
    );
    assert_eq!(
        site.run(&["deliver", "carol"], &message("after", "x")).code,
        0
    );
    assert_eq!(
        count_messages(&site, &["-u", "carol", "--passphrase-file", &pw]),
        n
    );
    ok(site.owner("carol", &["list"]));
    assert_eq!(
        count_messages(&site, &["-u", "carol", "--passphrase-file", &pw]),
        n + 1
    );
}

#[test]
fn backup_all_for_cron() {
    let site = MailSite::new();
    init(&site, "bob");
    init(&site, "carol");
    ok(site.run(&["deliver", "carol"], &message("hi", "x")));
    let dir = site.path().join("nightly");
    let out = site.run(&["backup", "--all", &s(&dir)], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = stdout(&out);
    assert!(text.starts_with("bob.sqlite\tok\t"), "{text}");
    assert!(text.contains("\ncarol.sqlite\tok\t"), "{text}");
    let pw = s(&site.passphrase_file);
    let f = s(&dir.join("carol.sqlite"));
    // A log left over from an earlier mailbox of that name is not read.
    let stale = site.path().join("mail/erin.sqlite-wal");
    std::fs::write(&stale, vec![0x5a; 8192]).unwrap();
    let out = site.run(
        &["-u", "erin", "--passphrase-file", &pw, "restore", &f],
        b"",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(subjects(&site, "erin", "INBOX"), ["hi"]);
    // Again into the same directory: each mailbox fails on its own.
    let out = site.run(&["backup", "--all", &s(&dir)], b"");
    assert_eq!(out.code, 73, "{}", out.stderr);
    assert_eq!(
        stdout(&out).matches("\tfailed\t").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("erin.sqlite\tok\t"),
        "{}",
        stdout(&out)
    );
    // Without --all a mailbox must be named.
    let out = site.run(&["backup", &s(&dir)], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);
}

/// A private (mode 0600) file in the site holding `text` and a newline.
fn private_file(site: &MailSite, name: &str, text: &str) -> PathBuf {
    let p = site.path().join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// The site's configuration with another `lock_timeout`.
fn config_with_lock_timeout(site: &MailSite, timeout: &str) -> PathBuf {
    let text = std::fs::read_to_string(&site.config).unwrap();
    assert!(text.contains("lock_timeout = \"5s\""), "{text}");
    let p = site.path().join(format!("lock-{timeout}.toml"));
    std::fs::write(
        &p,
        text.replace(
            "lock_timeout = \"5s\"",
            &format!("lock_timeout = \"{timeout}\""),
        ),
    )
    .unwrap();
    p
}

/// `backup` while `passwd` re-encrypts the mailbox, started at different
/// moments of it: both succeed, and every backup is whole and opens with
/// exactly one of the two passphrases, never a file half replaced.
#[test]
fn a_backup_during_passwd_is_the_old_or_the_new_mailbox_whole() {
    let site = MailSite::new();
    init(&site, "bob");
    let seed = site.path().join("seed.mbox");
    write_mbox(&seed, 300, 8000, 1_600_000_000, 60);
    assert_eq!(import(&site, "bob", &[&s(&seed)])[0], 300);
    let pws = [
        site.passphrase_file.clone(),
        private_file(&site, "second", "a second passphrase"),
    ];
    for (round, delay) in [0u64, 10, 30, 80, 150, 300].into_iter().enumerate() {
        let (cur, next) = (&pws[round % 2], &pws[(round + 1) % 2]);
        let passwd = Command::new(util::MAILDB)
            .env("POSTERN_CONFIG", &site.config)
            .args(["-u", "bob", "--passphrase-file", &s(cur), "passwd"])
            .args(["--new-passphrase-file", &s(next)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let dest = site.path().join(format!("backup-{round}"));
        let out = site.run(&["-u", "bob", "backup", &s(&dest)], b"");
        let passwd = passwd.wait_with_output().unwrap();
        assert!(
            passwd.status.success(),
            "round {round}: passwd: {}",
            String::from_utf8_lossy(&passwd.stderr)
        );
        assert_eq!(out.code, 0, "round {round}: backup: {}", out.stderr);
        // restore checks every page (a wrong passphrase leaves nothing).
        let copy = s(&dest.join("bob.sqlite"));
        let opened: Vec<usize> = (0..2)
            .filter(|&i| {
                let target = site.path().join(format!("mail/r{round}-{i}.sqlite"));
                let out = site.run(
                    &["-m", &s(&target), "--passphrase-file", &s(&pws[i])]
                        .into_iter()
                        .chain(["restore", &copy])
                        .collect::<Vec<_>>(),
                    b"",
                );
                match out.code {
                    0 => {
                        let n = count_messages(
                            &site,
                            &["-m", &s(&target), "--passphrase-file", &s(&pws[i])],
                        );
                        assert_eq!(n, 300, "round {round}: the backup is not whole");
                        true
                    }
                    77 => false,
                    code => panic!("round {round}: restore exit {code}: {}", out.stderr),
                }
            })
            .collect();
        assert_eq!(opened.len(), 1, "round {round}: opened with {opened:?}");
    }
    // The mailbox itself went through every passwd whole.
    let n = count_messages(&site, &["-u", "bob", "--passphrase-file", &s(&pws[0])]);
    assert_eq!(n, 300);
}

/// `restore --force` over a mailbox another process has open: it waits up
/// to `lock_timeout`, then gives up with 75 and leaves the mailbox as it
/// was; once the other process lets go, it goes ahead.
#[test]
fn restore_over_an_open_mailbox_waits_then_gives_up() {
    let site = MailSite::new();
    init(&site, "bob");
    init(&site, "carol");
    ok(site.run(&["deliver", "carol"], &message("from-carol", "x")));
    ok(site.owner("carol", &["list"]));
    let bk = site.path().join("bk");
    ok(site.run(&["-u", "carol", "backup", &s(&bk)], b""));
    let from = s(&bk.join("carol.sqlite"));
    let seed = site.path().join("seed.mbox");
    write_mbox(&seed, 40, 4000, 1_600_000_000, 60);
    import(&site, "bob", &[&s(&seed)]);
    let bob = site.mailbox("bob");
    let pw = s(&site.passphrase_file);
    let short = s(&config_with_lock_timeout(&site, "1s"));
    let restore = |config: &str| {
        let started = std::time::Instant::now();
        let out = site.run(
            &["-c", config, "-u", "bob", "--passphrase-file", &pw]
                .into_iter()
                .chain(["restore", "--force", &from])
                .collect::<Vec<_>>(),
            b"",
        );
        (out, started.elapsed())
    };
    let untouched = |before: &(u64, Vec<u8>)| {
        use std::os::unix::fs::MetadataExt;
        let now = (
            std::fs::metadata(&bob).unwrap().ino(),
            std::fs::read(&bob).unwrap(),
        );
        assert!(now == *before, "the mailbox file was replaced or changed");
        let stray: Vec<_> = std::fs::read_dir(site.path().join("mail"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    };
    let snapshot = || {
        use std::os::unix::fs::MetadataExt;
        (
            std::fs::metadata(&bob).unwrap().ino(),
            std::fs::read(&bob).unwrap(),
        )
    };

    // A reader that stops with the mailbox open: an export into a pipe
    // that nobody reads (the mbox is larger than the pipe's buffer).
    let mut reader = Command::new(util::MAILDB)
        .env("POSTERN_CONFIG", &site.config)
        .args([
            "-u",
            "bob",
            "--passphrase-file",
            &pw,
            "export",
            "--format",
            "mbox",
            "-",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while mailbox::lock::MailboxLock::exclusive(&bob, Duration::ZERO).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the export never opened the mailbox"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = snapshot();
    let (out, took) = restore(&short);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.status_line().starts_with("4.2.0"), "{}", out.stderr);
    assert!(
        out.stderr.contains("bob.sqlite") && out.stderr.contains("locked"),
        "{}",
        out.stderr
    );
    assert!(took >= Duration::from_secs(1), "gave up after {took:?}");
    untouched(&before);
    reader.kill().unwrap();
    reader.wait().unwrap();

    // Only the flock of an open mailbox (a command between taking it and
    // opening the file; SQLite holds no lock yet): the same.
    let held = mailbox::lock::MailboxLock::shared(&bob, Duration::from_secs(5)).unwrap();
    let before = snapshot();
    let (out, _) = restore(&short);
    assert_eq!(out.code, 75, "{}", out.stderr);
    untouched(&before);

    // Let go while the restore waits: it goes ahead.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(held);
    });
    let (out, took) = restore(&s(&site.config));
    release.join().unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took >= Duration::from_millis(500), "did not wait: {took:?}");
    assert_eq!(subjects(&site, "bob", "INBOX"), ["from-carol"]);
}

/// Two `deliver`s and an `export` at the same time on one mailbox: every
/// command succeeds, each export is a whole snapshot, nothing is lost.
#[test]
fn two_delivers_and_an_export_at_the_same_time() {
    let site = std::sync::Arc::new(MailSite::new());
    init(&site, "bob");
    let deliverers: Vec<_> = (0..2)
        .map(|t| {
            let site = site.clone();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let m = message(&format!("t{t}-m{i}"), "concurrent");
                    let out = site.run(&["deliver", "bob"], &m);
                    assert_eq!(out.code, 0, "{}", out.stderr);
                }
            })
        })
        .collect();
    let mut exports = Vec::new();
    for i in 0..6 {
        let dest = site.path().join(format!("snap{i}.mbox"));
        let out = ok(site.owner("bob", &["export", "--format", "mbox", &s(&dest)]));
        let n: usize = stdout(&out).split('\t').nth(1).unwrap().parse().unwrap();
        let text = std::fs::read_to_string(&dest).unwrap();
        assert_eq!(text.matches("From MAILER-DAEMON ").count(), n);
        exports.push(n);
    }
    for d in deliverers {
        d.join().unwrap();
    }
    assert!(exports.windows(2).all(|w| w[0] <= w[1]), "{exports:?}");
    let out = ok(site.owner("bob", &["export", "--format", "mbox", "-"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("From MAILER-DAEMON ").count(), 30);
    for t in 0..2 {
        for i in 0..15 {
            assert!(
                text.contains(&format!("Subject: t{t}-m{i}\n")),
                "t{t}-m{i} lost"
            );
        }
    }
}

/// Runs a command and returns its exit code and peak RSS in kB (Python's
/// `resource` reads it for the child).
fn peak_rss(site: &MailSite, args: &[&str]) -> Option<(i32, u64)> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import resource, subprocess, sys\n\
             r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n\
             print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
             sys.exit(r.returncode)\n",
        )
        .arg(util::MAILDB)
        .args(args)
        .env("POSTERN_CONFIG", &site.config)
        .output()
        .ok()?;
    let rss = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((out.status.code().unwrap_or(-1), rss))
}

/// Import and export stream: peak memory stays far below the size of the
/// mail moved (here 120 MB; POSTERN_BIG_MB makes it larger).
#[test]
fn import_and_export_use_bounded_memory() {
    if !have_python() {
        panic!("python3 is needed to read the peak RSS: run `make deps`");
    }
    let mb: usize = std::env::var("POSTERN_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let site = MailSite::new();
    init(&site, "bob");
    let path = site.path().join("big.mbox");
    // 1 MB messages: few enough to be quick in a debug build, large
    // enough that holding them all would show.
    write_mbox(&path, mb, 1 << 20, 1_600_000_000, 60);
    let size = std::fs::metadata(&path).unwrap().len();
    let pw = s(&site.passphrase_file);
    let base = ["-u", "bob", "--passphrase-file", pw.as_str()];
    let started = std::time::Instant::now();
    let mut args = base.to_vec();
    args.extend(["import", path.to_str().unwrap()]);
    let (code, import_rss) = peak_rss(&site, &args).unwrap();
    assert_eq!(code, 0);
    let import_time = started.elapsed();
    let out_path = site.path().join("out.mbox");
    let mut args = base.to_vec();
    args.extend(["export", "--format", "mbox", out_path.to_str().unwrap()]);
    let started = std::time::Instant::now();
    let (code, export_rss) = peak_rss(&site, &args).unwrap();
    assert_eq!(code, 0);
    let export_time = started.elapsed();
    let exported = std::fs::metadata(&out_path).unwrap().len();
    eprintln!(
        "mbox of {} MB: import {:.1} s, peak RSS {} MB; export {:.1} s ({:.0} MB/s), peak RSS {} MB",
        size >> 20,
        import_time.as_secs_f64(),
        import_rss >> 10,
        export_time.as_secs_f64(),
        exported as f64 / export_time.as_secs_f64() / 1e6,
        export_rss >> 10
    );
    assert_eq!(exported, size);
    assert!(export_rss < 100 * 1024, "export peak RSS {export_rss} kB");
    assert!(import_rss < 100 * 1024, "import peak RSS {import_rss} kB");
    assert!(
        export_rss * 1024 < size / 2 && import_rss * 1024 < size / 2,
        "memory grows with the mailbox: {import_rss} / {export_rss} kB for {size} bytes"
    );
}

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::*;
use crate::exit::Sysexit;
use crate::mail::status;

const PW: &str = "correct horse battery staple";
const LOCK: Duration = Duration::from_secs(5);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_452_559)
}

fn new_mailbox() -> (tempfile::TempDir, PathBuf, Mailbox) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.sqlite");
    let mb = Mailbox::create(&path, PW, LOCK, now()).unwrap();
    (dir, path, mb)
}

fn msg(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n\
         Subject: {subject}\r\nDate: Mon, 23 Nov 2026 16:49:19 +0000\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Every byte of the mailbox file and its side files.
fn all_bytes(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn linked_library_is_sqlite3mc() {
    assert!(library_version().contains("Multiple Ciphers"));
}

#[test]
fn create_then_open_with_standard_folders_and_pragmas() {
    let (_dir, path, mb) = new_mailbox();
    drop(mb);
    let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
    let names: Vec<String> = folders(&mb).unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        ["INBOX", "Drafts", "Sent Mail", "Archive", "Spam", "Trash"]
    );
    let inbox = &folders(&mb).unwrap()[0];
    assert_eq!((inbox.uidvalidity, inbox.uidnext), (1_795_452_559, 1));
    let c = mb.conn();
    let pragma = |p: &str| -> String {
        c.query_row(&format!("PRAGMA {p}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
    };
    assert_eq!(pragma("journal_mode"), "wal");
    assert_eq!(pragma("secure_delete"), "1");
    assert_eq!(pragma("auto_vacuum"), "1"); // FULL
    assert_eq!(pragma("synchronous"), "1"); // NORMAL
    assert_eq!(pragma("foreign_keys"), "1");
    assert_eq!(pragma("temp_store"), "2"); // MEMORY
    assert_eq!(pragma("encoding"), "UTF-8");
    assert_eq!(pragma("user_version"), "1");
    assert_eq!(pragma("cipher"), "chacha20");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn create_refuses_an_existing_file() {
    let (_dir, path, mb) = new_mailbox();
    drop(mb);
    let before = all_bytes(&path);
    let err = Mailbox::create(&path, "other", LOCK, now()).unwrap_err();
    assert!(matches!(err, MailboxError::Exists { .. }), "{err}");
    assert_eq!(err.to_failure().exit, Sysexit::CantCreat);
    assert_eq!(all_bytes(&path), before);
    Mailbox::open(&path, PW, LOCK, now()).unwrap();
}

#[test]
fn wrong_passphrase_is_refused_and_changes_nothing() {
    let (_dir, path, mut mb) = new_mailbox();
    deliver(&mut mb, &msg("hello", "body"), INBOX, now()).unwrap();
    drop(mb);
    let before = all_bytes(&path);
    let err = Mailbox::open(&path, "Correct horse battery staple", LOCK, now()).unwrap_err();
    assert!(matches!(err, MailboxError::WrongPassphrase { .. }), "{err}");
    let f = err.to_failure();
    assert_eq!((f.exit, f.status), (Sysexit::NoPerm, status::POLICY));
    assert!(!f.to_string().contains(PW));
    assert_eq!(
        all_bytes(&path),
        before,
        "a wrong passphrase changed the file"
    );
    let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
    assert_eq!(list(&mb, INBOX).unwrap().len(), 1);
}

#[test]
fn nothing_on_disk_is_plaintext() {
    let (_dir, path, mut mb) = new_mailbox();
    let body = "PLAINTEXT-MARKER SQLite format 3 in a body";
    for i in 0..20 {
        deliver(
            &mut mb,
            &msg(&format!("secret-subject-{i}"), body),
            INBOX,
            now(),
        )
        .unwrap();
    }
    // Both with the data still in the WAL and after it is checkpointed.
    for _ in 0..2 {
        let bytes = all_bytes(&path);
        assert!(bytes.len() > 20 * 100);
        for needle in [
            &b"SQLite format 3"[..],
            b"PLAINTEXT-MARKER",
            b"secret-subject",
            b"alice@example.org",
            b"CREATE TABLE",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{:?} found on disk",
                String::from_utf8_lossy(needle)
            );
        }
        mb.checkpoint().unwrap();
    }
}

#[test]
fn a_plaintext_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.sqlite");
    // Without a key SQLite3MC writes an ordinary, unencrypted database.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES ('hello');")
        .unwrap();
    drop(c);
    assert!(starts_plaintext(&path).unwrap());
    let err = Mailbox::open(&path, PW, LOCK, now()).unwrap_err();
    assert!(matches!(err, MailboxError::Plaintext { .. }), "{err}");
    assert!(err.to_string().contains("unencrypted"));
    assert_eq!(err.to_failure().exit, Sysexit::NoPerm);
}

#[test]
fn missing_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sqlite");
    let err = Mailbox::open(&path, PW, LOCK, now()).unwrap_err();
    assert!(matches!(err, MailboxError::NotFound { .. }), "{err}");
    let f = err.to_delivery_failure();
    assert_eq!(
        (f.exit, f.status),
        (Sysexit::NoUser, status::NO_SUCH_MAILBOX)
    );
    // What Postfix puts in the bounce names no file (nor so the address).
    assert_eq!(f.text, "no such mailbox");
    assert!(err.to_string().contains("nobody.sqlite"));
    std::fs::write(&path, b"").unwrap();
    let err = Mailbox::open(&path, PW, LOCK, now()).unwrap_err();
    assert!(matches!(err, MailboxError::Damaged { .. }), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    // Delivery keeps mail queued when the mailbox itself is broken.
    let f = err.to_delivery_failure();
    assert_eq!(f.exit, Sysexit::TempFail);
    assert!(
        !f.text.contains("nobody") && !f.text.contains('/'),
        "{}",
        f.text
    );
    let io = MailboxError::Io {
        path: path.clone(),
        op: "write a sealed message",
        source: std::io::Error::from_raw_os_error(13),
    };
    assert_eq!(
        io.to_delivery_failure().text,
        "mailbox unavailable: cannot write a sealed message: permission denied; try again later"
    );
}

#[test]
fn a_flipped_bit_is_found_by_check() {
    let (_dir, path, mut mb) = new_mailbox();
    let big = "lorem ipsum ".repeat(2000);
    for i in 0..10 {
        deliver(&mut mb, &msg(&format!("m{i}"), &big), INBOX, now()).unwrap();
    }
    mb.checkpoint().unwrap();
    let report = check(&mb).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.messages, 10);
    drop(mb);
    let mut bytes = std::fs::read(&path).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 10, "{pages} pages");
    // A byte in the middle of a page that holds message data.
    let at = (pages / 2) * 4096 + 2000;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    match Mailbox::open_for_check(&path, PW, LOCK) {
        Ok(mb) => {
            let report = check(&mb).unwrap();
            assert!(!report.problems.is_empty(), "check missed a flipped bit");
        }
        Err(e) => assert!(matches!(e, MailboxError::Damaged { .. }), "{e}"),
    }
    // A flip in the first page makes the file unreadable: it cannot be
    // told from a wrong passphrase.
    bytes[at] ^= 0x01;
    bytes[100] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();
    let err = Mailbox::open(&path, PW, LOCK, now()).unwrap_err();
    assert!(matches!(err, MailboxError::WrongPassphrase { .. }), "{err}");
}

#[test]
fn deliver_list_show_flag_move_delete() {
    let (_dir, _path, mut mb) = new_mailbox();
    let m1 = msg("first", "one");
    let m2 = msg("second", "two");
    let d1 = deliver(&mut mb, &m1, INBOX, now()).unwrap();
    let d2 = deliver(&mut mb, &m2, "inbox", now()).unwrap();
    assert_eq!((d1.uid, d2.uid), (1, 2));
    assert_eq!(d2.folder, INBOX);
    // An unknown folder falls back to INBOX; a known one is used.
    assert_eq!(
        deliver(&mut mb, &m1, "No Such", now()).unwrap(),
        Delivered {
            folder: INBOX.into(),
            uid: 3
        }
    );
    assert_eq!(
        deliver(&mut mb, &m1, "Archive", now()).unwrap(),
        Delivered {
            folder: "Archive".into(),
            uid: 1
        }
    );
    assert!(matches!(
        deliver(&mut mb, b"", INBOX, now()),
        Err(MailboxError::EmptyMessage)
    ));

    let l = list(&mb, INBOX).unwrap();
    assert_eq!(l.len(), 3);
    assert_eq!(l[1].subject, "second");
    assert_eq!(l[1].from, "Alice <alice@example.org>");
    assert_eq!(l[1].size, m2.len() as u64);
    assert_eq!(l[1].internal_date, 1_795_452_559);
    assert_eq!(l[1].flags, Flags::default());
    assert_eq!(show(&mb, INBOX, 2).unwrap(), m2);
    assert!(matches!(
        show(&mb, INBOX, 9),
        Err(MailboxError::NoMessage { uid: 9, .. })
    ));
    assert!(matches!(
        list(&mb, "Nope"),
        Err(MailboxError::NoFolder { .. })
    ));

    let f = flag(
        &mut mb,
        INBOX,
        2,
        Flags::SEEN.union(Flags::FLAGGED),
        Flags::default(),
    )
    .unwrap();
    assert_eq!(f.letters(), "S-F--");
    let f = flag(&mut mb, INBOX, 2, Flags::default(), Flags::FLAGGED).unwrap();
    assert_eq!(f.names(), ["\\Seen"]);
    let inbox = &folders(&mb).unwrap()[0];
    assert_eq!((inbox.messages, inbox.unseen, inbox.uidnext), (3, 2, 4));

    let moved = move_message(&mut mb, INBOX, 2, "Archive").unwrap();
    assert_eq!((moved.folder.as_str(), moved.uid), ("Archive", 2));
    assert_eq!(show(&mb, "Archive", 2).unwrap(), m2);
    assert!(show(&mb, INBOX, 2).is_err());
    assert_eq!(list(&mb, "Archive").unwrap()[1].flags, Flags::SEEN);

    delete(&mut mb, "Archive", 2).unwrap();
    assert!(matches!(
        delete(&mut mb, "Archive", 2),
        Err(MailboxError::NoMessage { .. })
    ));
    assert_eq!(list(&mb, "Archive").unwrap().len(), 1);
    // UIDs are not reused.
    assert_eq!(deliver(&mut mb, &m1, "Archive", now()).unwrap().uid, 3);
    assert!(check(&mb).unwrap().problems.is_empty());
}

#[test]
fn search_finds_words_and_forgets_deleted_mail() {
    let (_dir, path, mut mb) = new_mailbox();
    deliver(
        &mut mb,
        &msg("Quarterly invoice", "Please pay soon."),
        INBOX,
        now(),
    )
    .unwrap();
    deliver(
        &mut mb,
        &msg("Lunch", "Shall we meet at the café?"),
        INBOX,
        now(),
    )
    .unwrap();
    let hits = |mb: &Mailbox, q: &str| -> Vec<u32> {
        search(mb, q, None, None)
            .unwrap()
            .into_iter()
            .map(|s| s.uid)
            .collect()
    };
    assert_eq!(hits(&mb, "invoice"), [1]);
    assert_eq!(hits(&mb, "INVOICE quarterly"), [1]);
    assert_eq!(hits(&mb, "invoice lunch"), Vec::<u32>::new());
    assert_eq!(hits(&mb, "cafe"), [2]); // diacritics folded
    assert_eq!(hits(&mb, "quart*"), [1]);
    assert_eq!(hits(&mb, "subject:lunch"), [2]);
    assert_eq!(hits(&mb, "body:lunch"), Vec::<u32>::new());
    assert_eq!(hits(&mb, "from:alice").len(), 2);
    // Characters that mean something to FTS5 are taken literally.
    assert_eq!(hits(&mb, "\"pay\" (soon) alice@example.org -x").len(), 0);
    assert_eq!(hits(&mb, "alice@example.org").len(), 2);
    assert!(matches!(
        search(&mb, "   ", None, None),
        Err(MailboxError::EmptyQuery { .. })
    ));
    assert_eq!(
        search(&mb, "invoice", Some("Trash"), None).unwrap().len(),
        0
    );
    // --limit: the best N, in all folders or in one.
    deliver(
        &mut mb,
        &msg("invoice invoice invoice", "invoice"),
        INBOX,
        now(),
    )
    .unwrap();
    let best = |folder, n| -> Vec<u32> {
        search(&mb, "invoice", folder, Some(n))
            .unwrap()
            .into_iter()
            .map(|s| s.uid)
            .collect()
    };
    assert_eq!(best(None, 1), [3]);
    assert_eq!(best(Some(INBOX), 1), [3]);
    assert_eq!(best(None, 5), [3, 1]);
    assert_eq!(best(Some(INBOX), 0), Vec::<u32>::new());
    delete(&mut mb, INBOX, 1).unwrap();
    assert_eq!(hits(&mb, "invoice"), [3]);
    assert_eq!(hits(&mb, "quarterly"), Vec::<u32>::new());
    assert!(check(&mb).unwrap().problems.is_empty());
    drop(mb);
    // The index survives a reopen.
    let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
    assert_eq!(hits(&mb, "lunch"), [2]);
}

#[test]
fn fts_query_quotes_everything() {
    assert_eq!(fts_query("a b").unwrap(), "\"a\" AND \"b\"");
    assert_eq!(fts_query("pre*").unwrap(), "\"pre\" *");
    assert_eq!(
        fts_query("say \"hi\"").unwrap(),
        "\"say\" AND \"\"\"hi\"\"\""
    );
    assert_eq!(
        fts_query("From:bob x:y").unwrap(),
        "from_addr : \"bob\" AND \"x:y\""
    );
    assert_eq!(fts_query("*").unwrap(), "\"*\"");
    assert!(fts_query(" \t\n").is_none());
}

#[test]
fn user_folders() {
    let (_dir, _path, mut mb) = new_mailbox();
    let later = now() + Duration::from_secs(60);
    let f = create_folder(&mut mb, "Lists/rust", later).unwrap();
    assert_eq!((f.uidvalidity, f.uidnext), (1_795_452_619, 1));
    // Created again in the same second: a new UIDVALIDITY all the same.
    assert!(matches!(
        create_folder(&mut mb, "Lists/rust", later),
        Err(MailboxError::FolderExists { .. })
    ));
    let g = create_folder(&mut mb, "Another", later).unwrap();
    assert!(g.uidvalidity > f.uidvalidity);
    for bad in ["", "inbox", "a//b", "/a", "a/", "x*", "a\nb"] {
        assert!(create_folder(&mut mb, bad, later).is_err(), "{bad:?}");
    }
    let names: Vec<String> = folders(&mb).unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(names[6..], ["Another", "Lists/rust"]);
    assert_eq!(
        deliver(&mut mb, &msg("l", "x"), "Lists/rust", now())
            .unwrap()
            .folder,
        "Lists/rust"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let (_dir, path, mb) = new_mailbox();
    mb.conn().pragma_update(None, "user_version", 99).unwrap();
    drop(mb);
    let err = Mailbox::open(&path, PW, LOCK, now()).unwrap_err();
    assert!(
        matches!(err, MailboxError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert_eq!(err.to_failure().exit, Sysexit::TempFail);
}

#[test]
fn a_locked_mailbox_is_a_temporary_failure() {
    let (_dir, path, mb) = new_mailbox();
    mb.conn().execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut other = Mailbox::open(&path, PW, Duration::from_millis(100), now()).unwrap();
    let err = deliver(&mut other, &msg("x", "y"), INBOX, now()).unwrap_err();
    assert!(matches!(err, MailboxError::Locked { .. }), "{err}");
    let f = err.to_delivery_failure();
    assert_eq!(
        (f.exit, f.status),
        (Sysexit::TempFail, status::MAILBOX_BUSY)
    );
    mb.conn().execute_batch("COMMIT").unwrap();
    deliver(&mut other, &msg("x", "y"), INBOX, now()).unwrap();
}

mod sealed_delivery {
    use super::*;
    use crate::mailbox::drop_area::{self, UnsealError};
    use crate::store::durable::DirectoryFsync;

    fn new_in(dir: &Path) -> PathBuf {
        let path = dir.join("carol.sqlite");
        Mailbox::create(&path, PW, LOCK, now()).unwrap();
        path
    }

    fn sealed_files(path: &Path, sub: &str) -> Vec<PathBuf> {
        match std::fs::read_dir(drop_area::drop_dir(path).join(sub)) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn seal_and_unseal() {
        let (secret, public) = drop_area::new_key_pair().unwrap();
        let raw = msg("sealed", "body");
        let sealed = drop_area::seal(&public, &raw, "Archive", now()).unwrap();
        let d = drop_area::unseal(&secret, &sealed).unwrap();
        assert_eq!(
            (d.internal_date, d.folder.as_str()),
            (1_795_452_559, "Archive")
        );
        assert_eq!(&d.raw[..], &raw[..]);
        // Sizes are padded: a short and a longer message look the same.
        let other = drop_area::seal(&public, &msg("s", &"x".repeat(1000)), "", now()).unwrap();
        assert_eq!(sealed.len(), other.len());
        assert!(!contains(&sealed, b"sealed") && !contains(&sealed, b"alice"));
        // Another key, a flipped bit, a cut file, garbage.
        let (secret2, _) = drop_area::new_key_pair().unwrap();
        assert_eq!(
            drop_area::unseal(&secret2, &sealed),
            Err(UnsealError::Authentication)
        );
        let mut flipped = sealed.clone();
        let n = flipped.len();
        flipped[n / 2] ^= 4;
        assert_eq!(
            drop_area::unseal(&secret, &flipped),
            Err(UnsealError::Authentication)
        );
        assert!(drop_area::unseal(&secret, &sealed[..sealed.len() - 1]).is_err());
        assert_eq!(
            drop_area::unseal(&secret, b"hello"),
            Err(UnsealError::BadMagic)
        );
    }

    #[test]
    fn deliver_without_passphrase_then_merge_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = new_in(dir.path());
        let later = now() + Duration::from_secs(5);
        drop_area::deliver_sealed(
            &path,
            &msg("one", "first body"),
            INBOX,
            now(),
            DirectoryFsync::Auto,
        )
        .unwrap();
        drop_area::deliver_sealed(
            &path,
            &msg("two", "second body"),
            "Archive",
            later,
            DirectoryFsync::Auto,
        )
        .unwrap();
        drop_area::deliver_sealed(
            &path,
            &msg("three", "x"),
            "No Such",
            later,
            DirectoryFsync::Auto,
        )
        .unwrap();
        assert_eq!(drop_area::waiting(&path).unwrap(), 3);
        assert!(sealed_files(&path, "tmp").is_empty());
        // Nothing in the drop area or its names is readable.
        for f in sealed_files(&path, "new") {
            let bytes = std::fs::read(&f).unwrap();
            assert!(!contains(&bytes, b"first body") && !contains(&bytes, b"alice"));
            let name = f.file_name().unwrap().to_str().unwrap().to_owned();
            let (random, size) = name.split_once('.').unwrap();
            assert_eq!(random.len(), 32);
            assert!(random.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(size, std::fs::metadata(&f).unwrap().len().to_string());
        }
        let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
        assert_eq!(mb.merged.merged, 3);
        assert_eq!(drop_area::waiting(&path).unwrap(), 0);
        let inbox = list(&mb, INBOX).unwrap();
        let subjects: Vec<&str> = inbox.iter().map(|s| s.subject.as_str()).collect();
        assert_eq!(subjects, ["one", "three"]);
        assert_eq!(inbox[1].internal_date, 1_795_452_564);
        assert_eq!(list(&mb, "Archive").unwrap()[0].subject, "two");
        assert_eq!(search(&mb, "second", None, None).unwrap().len(), 1);
        let n: i64 = mb
            .conn()
            .query_row("SELECT count(*) FROM drop_merged", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        assert!(check(&mb).unwrap().problems.is_empty());
    }

    #[test]
    fn a_crash_after_the_commit_stores_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = new_in(dir.path());
        let receipt =
            drop_area::deliver_sealed(&path, &msg("once", "x"), INBOX, now(), DirectoryFsync::Auto)
                .unwrap();
        let file = drop_area::drop_dir(&path).join("new").join(&receipt.name);
        let copy = std::fs::read(&file).unwrap();
        let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
        assert_eq!(list(&mb, INBOX).unwrap().len(), 1);
        // As if the process died after the commit, before the removal.
        std::fs::write(&file, &copy).unwrap();
        mb.conn()
            .execute(
                "INSERT INTO drop_merged (name) VALUES (?1)",
                [&receipt.name],
            )
            .unwrap();
        drop(mb);
        let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
        assert_eq!(mb.merged.merged, 0);
        assert_eq!(list(&mb, INBOX).unwrap().len(), 1);
        assert!(!file.exists());
    }

    /// The synchronous level a `PRAGMA synchronous` statement sets, as
    /// SQLite numbers them (NORMAL 1, FULL 2, EXTRA 3); `None` for a read.
    fn synchronous_set_by(sql: &str) -> Option<i64> {
        let rest = sql.trim().strip_prefix("PRAGMA synchronous")?;
        let value = rest.trim().trim_start_matches(['=', '(']).trim();
        let value = value
            .trim_end_matches([')', ';'])
            .trim()
            .trim_matches(['\'', '"']);
        match value.to_ascii_uppercase().as_str() {
            "" => None,
            "OFF" | "0" => Some(0),
            "NORMAL" | "1" => Some(1),
            "FULL" | "2" => Some(2),
            "EXTRA" | "3" => Some(3),
            other => panic!("unknown synchronous level {other:?} in {sql:?}"),
        }
    }

    /// Under WAL with synchronous = NORMAL a commit is not on disk when it
    /// returns, and a power loss can undo it. A merge removes the sealed
    /// files after its commit, so that commit must be made at FULL (the
    /// WAL fsync'ed) — else a crash could lose both the stored message and
    /// its sealed file. The statements of the merge are traced: at its
    /// COMMIT the level last set must be FULL or more, and the sealed
    /// files must all still be there.
    #[test]
    fn the_merge_commit_is_durable_before_any_sealed_file_goes() {
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let path = new_in(dir.path());
        let mut mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
        for i in 0..3 {
            drop_area::deliver_sealed(
                &path,
                &msg(&format!("m{i}"), "x"),
                INBOX,
                now(),
                DirectoryFsync::Auto,
            )
            .unwrap();
        }
        let before: i64 = mb
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        // (statement, sealed files waiting when it ran)
        let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let log = Arc::clone(&seen);
        let drop_path = path.clone();
        mb.conn_mut()
            .trace_v2(
                rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
                Some(move |e: rusqlite::trace::TraceEvent<'_>| {
                    if let rusqlite::trace::TraceEvent::Stmt(_, sql) = e {
                        let waiting = drop_area::waiting(&drop_path).unwrap();
                        log.lock().unwrap().push((sql.to_owned(), waiting));
                    }
                }),
            )
            .unwrap();
        let report = drop_area::merge(&mut mb).unwrap();
        assert_eq!(report.merged, 3);
        let seen = seen.lock().unwrap().clone();
        let recorded = seen
            .iter()
            .position(|(sql, _)| sql.contains("INSERT INTO drop_merged"))
            .expect("the merge records the names");
        let commit = recorded
            + seen[recorded..]
                .iter()
                .position(|(sql, _)| sql.trim().eq_ignore_ascii_case("COMMIT"))
                .expect("the merge commits");
        let level = seen[..commit]
            .iter()
            .filter_map(|(sql, _)| synchronous_set_by(sql))
            .next_back()
            .unwrap_or(before);
        assert!(
            level >= 2,
            "the merge committed at synchronous level {level}: {seen:#?}"
        );
        assert_eq!(seen[commit].1, 3, "a sealed file went before the commit");
        assert_eq!(drop_area::waiting(&path).unwrap(), 0);
        // Other transactions stay at NORMAL.
        let after: i64 = mb
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(after, 1);
    }

    #[test]
    fn a_damaged_sealed_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = new_in(dir.path());
        let bad =
            drop_area::deliver_sealed(&path, &msg("bad", "x"), INBOX, now(), DirectoryFsync::Auto)
                .unwrap();
        drop_area::deliver_sealed(&path, &msg("good", "x"), INBOX, now(), DirectoryFsync::Auto)
            .unwrap();
        let file = drop_area::drop_dir(&path).join("new").join(&bad.name);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[60] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
        assert_eq!(
            mb.merged,
            drop_area::MergeReport {
                merged: 1,
                corrupt: 1
            }
        );
        assert_eq!(list(&mb, INBOX).unwrap()[0].subject, "good");
        assert_eq!(sealed_files(&path, "corrupt").len(), 1);
        assert_eq!(drop_area::waiting(&path).unwrap(), 0);
    }

    #[test]
    fn concurrent_opens_merge_each_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = new_in(dir.path());
        for i in 0..40 {
            let m = msg(&format!("m{i}"), "x");
            drop_area::deliver_sealed(&path, &m, INBOX, now(), DirectoryFsync::Auto).unwrap();
        }
        let merged: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        // Deliveries keep arriving while the owner opens.
                        let m = msg("late", "x");
                        drop_area::deliver_sealed(&path, &m, INBOX, now(), DirectoryFsync::Auto)
                            .unwrap();
                        Mailbox::open(&path, PW, LOCK, now()).unwrap().merged.merged
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
        let total: usize = merged.iter().sum::<usize>() + mb.merged.merged;
        assert_eq!(total, 43, "{merged:?}");
        let l = list(&mb, INBOX).unwrap();
        assert_eq!(l.len(), 43);
        let uids: Vec<u32> = l.iter().map(|s| s.uid).collect();
        assert_eq!(uids, (1..=43).collect::<Vec<u32>>());
        assert_eq!(drop_area::waiting(&path).unwrap(), 0);
    }

    #[test]
    fn missing_mailbox_or_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = drop_area::deliver_sealed(
            &dir.path().join("x.sqlite"),
            b"m",
            INBOX,
            now(),
            DirectoryFsync::Auto,
        )
        .unwrap_err();
        assert_eq!(err.to_delivery_failure().status, status::NO_SUCH_MAILBOX);
        let path = new_in(dir.path());
        let key = drop_area::public_key_path(&path);
        let before = std::fs::read(&key).unwrap();
        std::fs::remove_file(&key).unwrap();
        let err =
            drop_area::deliver_sealed(&path, b"m", INBOX, now(), DirectoryFsync::Auto).unwrap_err();
        assert!(matches!(err, MailboxError::DeliveryKey { .. }), "{err}");
        assert_eq!(err.to_delivery_failure().exit, Sysexit::TempFail);
        // Opening with the passphrase writes it again, the same.
        Mailbox::open(&path, PW, LOCK, now()).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), before);
        drop_area::deliver_sealed(
            &path,
            b"Subject: m\n\nx\n",
            INBOX,
            now(),
            DirectoryFsync::Auto,
        )
        .unwrap();
    }

    #[test]
    fn the_running_total_follows_deliveries_and_a_merge_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = new_in(dir.path());
        let size_file = crate::mailbox::quota::size_file(&path);
        let first =
            drop_area::deliver_sealed(&path, &msg("a", "x"), INBOX, now(), DirectoryFsync::Always)
                .unwrap();
        // No total yet: the first check counts the directory.
        assert!(!size_file.exists());
        crate::mailbox::quota::check_delivery(&path, 1, u64::MAX).unwrap();
        assert_eq!(
            std::fs::read_to_string(&size_file).unwrap(),
            format!("{}\n", first.size)
        );
        let second =
            drop_area::deliver_sealed(&path, &msg("b", "x"), INBOX, now(), DirectoryFsync::Auto)
                .unwrap();
        assert_eq!(
            std::fs::read_to_string(&size_file).unwrap(),
            format!("{}\n{}\n", first.size, second.size)
        );
        let mb = Mailbox::open(&path, PW, LOCK, now()).unwrap();
        assert_eq!(mb.merged.merged, 2);
        assert!(!size_file.exists());
    }

    #[test]
    fn a_delivery_racing_destroy_takes_its_message_back() {
        // The public key is a FIFO, so that the delivery waits in the
        // middle (after its check that the mailbox exists) until the
        // mailbox and its drop area have been removed.
        let dir = tempfile::tempdir().unwrap();
        let path = new_in(dir.path());
        let key = drop_area::public_key_path(&path);
        let key_bytes = std::fs::read(&key).unwrap();
        std::fs::remove_file(&key).unwrap();
        nix::unistd::mkfifo(&key, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let delivery = {
            let path = path.clone();
            std::thread::spawn(move || {
                drop_area::deliver_sealed(
                    &path,
                    &msg("late", "x"),
                    INBOX,
                    now(),
                    DirectoryFsync::Auto,
                )
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        std::fs::remove_file(&path).unwrap();
        let _ = std::fs::remove_dir_all(drop_area::drop_dir(&path));
        std::fs::write(&key, &key_bytes).unwrap();
        let err = delivery.join().unwrap().unwrap_err();
        assert_eq!(
            err.to_delivery_failure().status,
            status::NO_SUCH_MAILBOX,
            "{err}"
        );
        assert!(!drop_area::drop_dir(&path).exists());
    }
}

#[test]
fn message_count_adds_up_every_folder() {
    let (_dir, _path, mut mb) = new_mailbox();
    assert_eq!(message_count(&mb).unwrap(), 0);
    deliver(&mut mb, &msg("a", "one"), INBOX, now()).unwrap();
    deliver(&mut mb, &msg("b", "two"), "Sent", now()).unwrap();
    create_folder(&mut mb, "Lists", now()).unwrap();
    deliver(&mut mb, &msg("c", "three"), "Lists", now()).unwrap();
    assert_eq!(message_count(&mb).unwrap(), 3);
}

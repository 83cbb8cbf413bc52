//! postern-queue(8) on spools the real tools made: entries deferred by
//! postern-deliverer against a relay that is down, and bounce entries
//! from a relay that refuses a recipient; then listed, shown, held,
//! released, flushed and deleted, with the queue runs of
//! postern-deliverer and postern-bouncer doing what they do next.

mod util;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use postern::mail::job::RcptStatus;
use util::smtp::{Script, Server};
use util::{DELIVERER, Output, Site, message};

const QUEUE: &str = env!("CARGO_BIN_EXE_postern-queue");
const BOUNCER: &str = env!("CARGO_BIN_EXE_postern-bouncer");

/// Words that must not appear in output given without --show-addresses.
const PRIVATE: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "example.org",
    "example.net",
    "Subject",
];

/// A site whose relay port is closed, and `n` messages from alice to bob
/// deferred in its spool.
fn deferred_site(n: usize) -> (u16, Site) {
    let port = util::closed_port();
    let site = Site::new(port);
    for i in 0..n {
        let (r, d) = site.chain(
            "alice@example.org",
            &["bob@example.net"],
            &message(&format!("waiting{i}"), "wait for me"),
        );
        assert_eq!((r.code, d.code), (0, 0), "{}{}", r.stderr, d.stderr);
    }
    assert_eq!(site.queue("deferred").len(), n);
    (port, site)
}

fn names(site: &Site, queue: &str) -> Vec<String> {
    let mut v: Vec<String> = site
        .queue(queue)
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

fn queue(site: &Site, args: &[&str]) -> Output {
    site.run(QUEUE, args, b"")
}

fn ok(site: &Site, args: &[&str]) -> String {
    let out = queue(site, args);
    assert_eq!(out.code, 0, "postern-queue {args:?}: {}", out.stderr);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn assert_private(what: &str, text: &str) {
    for word in PRIVATE {
        assert!(!text.contains(word), "{what} shows {word}: {text}");
    }
}

#[test]
fn list_and_show_say_no_address_unless_asked() {
    let (_, site) = deferred_site(1);
    let id = names(&site, "deferred").remove(0);
    let table = ok(&site, &["list"]);
    assert_private("list", &table);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("CATEGORY"),
        "{table}"
    );
    assert!(lines[1].starts_with(&id), "{table}");
    assert!(
        lines[1].contains(" deferred ") && lines[1].contains(" 1/1 "),
        "{table}"
    );
    assert!(lines[1].contains(" network"), "the relay was down: {table}");
    assert!(lines[2].starts_with("-- 1 entry, "), "{table}");

    let json: serde_json::Value = serde_json::from_str(&ok(&site, &["list", "--json"])).unwrap();
    assert_private("list --json", &json.to_string());
    let e = &json[0];
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["queue"], "deferred");
    assert_eq!(
        (e["recipients"].as_u64(), e["undone"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(e["attempts"], 1);
    assert!(
        e["next_attempt"].is_string() && e["size"].as_u64() > Some(0),
        "{e}"
    );
    assert!(id.starts_with(e["queue_id"].as_str().unwrap()), "{e}");

    let open = ok(&site, &["list", "--show-addresses"]);
    assert!(open.contains("from <alice@example.org>"), "{open}");
    assert!(
        open.contains("to   <bob@example.net> deferred 4.4."),
        "{open}"
    );
    let json = ok(&site, &["list", "--json", "--show-addresses"]);
    assert!(json.contains("<bob@example.net>") && json.contains("<alice@example.org>"));

    let shown = ok(&site, &["show", &id]);
    assert_private("show", &shown);
    assert!(
        shown.contains("<redacted>") && shown.contains("status:"),
        "{shown}"
    );
    assert!(
        shown.contains("category:") && shown.contains("network"),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&site, &["show", &id, "--json"])).unwrap();
    assert_private("show --json", &json.to_string());
    assert_eq!(json["recipients"][0]["address"], "<redacted>");
    assert!(
        json["recipients"][0]["status"]
            .as_str()
            .unwrap()
            .starts_with("deferred 4.")
    );
    let open = ok(&site, &["show", &id, "--show-addresses", "--headers"]);
    assert!(
        open.contains("<bob@example.net>") && open.contains("Subject: waiting0"),
        "{open}"
    );
    assert!(
        !open.contains("wait for me"),
        "the body is never shown: {open}"
    );
    // --headers alone is a usage error.
    let out = queue(&site, &["show", &id, "--headers"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(!site.log().contains("bob"), "{}", site.log());
}

#[test]
fn a_held_entry_is_not_tried_until_released() {
    let (port, site) = deferred_site(2);
    let ids = names(&site, "deferred");
    let out = ok(&site, &["hold", &ids[0]]);
    assert_eq!(out, format!("{}: held\n", ids[0]));
    assert_eq!(names(&site, "hold"), [ids[0].clone()]);
    let table = ok(&site, &["list"]);
    assert!(
        table.contains(" hold ") && table.contains(" held "),
        "{table}"
    );

    let relay = Server::start_on(port, Script::default());
    let run = site.run(DELIVERER, &["--run-queue", "--flush"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(relay.received().len(), 1, "only the entry not held went");
    assert_eq!(names(&site, "hold"), [ids[0].clone()]);
    assert!(site.queue("deferred").is_empty());

    assert_eq!(
        ok(&site, &["release", &ids[0]]),
        format!("{}: released\n", ids[0])
    );
    assert!(site.queue("hold").is_empty());
    // Released means due now: a plain queue run sends it.
    let run = site.run(DELIVERER, &["--run-queue"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(relay.received().len(), 2);
    assert!(site.queue("deferred").is_empty() && site.queue("active").is_empty());
    let log = site.log();
    assert!(
        log.contains(&format!("{}: held by the operator", ids[0])),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}: released by the operator", ids[0])),
        "{log}"
    );
}

#[test]
fn flush_makes_an_entry_due_now() {
    let (port, site) = deferred_site(2);
    let relay = Server::start_on(port, Script::default());
    let run = site.run(DELIVERER, &["--run-queue"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(relay.received().is_empty(), "not due yet");
    let ids = names(&site, "deferred");
    assert_eq!(
        ok(&site, &["flush", &ids[1]]),
        "1 entry due now; the next queue run sends it\n"
    );
    let run = site.run(DELIVERER, &["--run-queue"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(relay.received().len(), 1);
    assert_eq!(names(&site, "deferred"), [ids[0].clone()]);
    // Without IDs: every deferred entry.
    assert_eq!(
        ok(&site, &["flush"]),
        "1 entry due now; the next queue run sends it\n"
    );
    let run = site.run(DELIVERER, &["--run-queue"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(relay.received().len(), 2);
    assert!(site.queue("deferred").is_empty());
}

#[test]
fn delete_removes_and_delete_bounce_tells_the_sender() {
    let (port, site) = deferred_site(3);
    let ids = names(&site, "deferred");
    assert_eq!(
        ok(&site, &["delete", &ids[0]]),
        format!("{}: deleted\n", ids[0])
    );
    assert_eq!(names(&site, "deferred"), ids[1..]);

    // A held entry can be deleted too.
    ok(&site, &["hold", &ids[2]]);
    let out = ok(&site, &["delete", "--bounce", &ids[1], &ids[2]]);
    assert!(
        out.contains(&format!("{}: deleted, bounce queued", ids[1])),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: deleted, bounce queued", ids[2])),
        "{out}"
    );
    assert!(site.queue("deferred").is_empty() && site.queue("hold").is_empty());
    assert_eq!(
        names(&site, "bounce"),
        [format!("{}-d", ids[1]), format!("{}-d", ids[2])]
    );
    for job in site.spooled("bounce") {
        assert_eq!(job.envelope.recipients.len(), 1);
        let r = &job.envelope.recipients[0];
        assert!(
            matches!(r.status, RcptStatus::Failed { .. }),
            "{:?}",
            r.status
        );
        assert_eq!(r.status.to_string(), "failed 5.0.0");
        assert!(
            r.diagnostic
                .as_deref()
                .unwrap()
                .contains("deleted from the queue by the operator")
        );
    }
    let table = ok(&site, &["list"]);
    assert!(
        table.contains(" bounce ") && table.contains(" 0/1 "),
        "{table}"
    );

    let b = site.run(BOUNCER, &["--run-queue"], b"");
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(site.queue("bounce").is_empty());
    assert_eq!(
        names(&site, "deferred"),
        [format!("{}-d-dsn", ids[1]), format!("{}-d-dsn", ids[2])]
    );
    let notices = site.spooled("deferred");
    assert_eq!(
        notices[0].envelope.recipients[0].address.as_str(),
        "alice@example.org"
    );
    let text = String::from_utf8_lossy(&notices[0].message);
    assert!(text.contains("Status: 5.0.0"), "{text}");
    // And the deliverer sends it to alice, from <>.
    let relay = Server::start_on(port, Script::default());
    let run = site.run(DELIVERER, &["--run-queue"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = relay.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].mail_from.as_str(), got[0].rcpts.clone()),
        ("<>", vec!["alice@example.org".to_owned()])
    );
}

#[test]
fn a_bounce_entry_from_a_refused_recipient_is_listed() {
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
    let (r, d) = site.chain(
        "alice@example.org",
        &["bob@example.net", "carol@example.net"],
        &message("refused", "x"),
    );
    assert_eq!((r.code, d.code), (0, 0), "{}{}", r.stderr, d.stderr);
    let id = names(&site, "bounce").remove(0);
    let table = ok(&site, &["list"]);
    assert_private("list", &table);
    let line = table
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("the entry");
    assert!(
        line.contains(" bounce ") && line.contains(" 0/1 "),
        "{table}"
    );
    assert!(line.contains(" recipient"), "{table}");
    let shown = ok(&site, &["show", &id]);
    assert_private("show", &shown);
    assert!(shown.contains("failed 5.1.1"), "{shown}");
    // Only deferred/ and hold/ entries can be held or deleted with a bounce.
    let out = queue(&site, &["hold", &id]);
    assert_eq!(out.code, 66, "{}", out.stderr);
    assert!(
        out.stderr.contains(&id) && out.stderr.contains("bounce/"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_ids_and_entries_being_delivered_are_refused_one_by_one() {
    let (_, site) = deferred_site(2);
    let ids = names(&site, "deferred");
    for args in [
        vec!["show", "NOSUCHID-00"],
        vec!["flush", "NOSUCHID-00"],
        vec!["release", "NOSUCHID-00"],
        vec!["delete", "NOSUCHID-00"],
        vec!["hold", "../spool.key"],
    ] {
        let out = queue(&site, &args);
        assert_eq!(out.code, 66, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(args[1]), "{}", out.stderr);
    }
    // One entry claimed by a queue runner: refused with 75, the other held.
    let spool = site.path().join("spool");
    std::fs::rename(
        spool.join("deferred").join(&ids[0]),
        spool.join("active").join(&ids[0]),
    )
    .unwrap();
    let out = queue(&site, &["hold", &ids[0], "NOSUCHID-00", &ids[1]]);
    assert_eq!(out.code, 75, "the first failure's status: {}", out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: held\n", ids[1])
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].starts_with("4.3.0 ") && lines[0].contains(&ids[0]),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("being delivered"), "{}", lines[0]);
    assert!(lines[1].contains("NOSUCHID-00"), "{}", lines[1]);
    assert_eq!(names(&site, "hold"), [ids[1].clone()]);
    let table = ok(&site, &["list"]);
    assert!(
        table.contains(" active ") && table.contains(" running "),
        "{table}"
    );
}

#[test]
fn a_wrong_spool_key_is_a_config_error() {
    let (_, site) = deferred_site(1);
    let key = site.path().join("spool.key");
    std::fs::write(&key, [0x17u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    for args in [vec!["list"], vec!["flush"]] {
        let out = queue(&site, &args);
        assert_eq!(out.code, 78, "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.starts_with("4.3.5 spool key does not open"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(site.queue("deferred").len(), 1, "nothing was touched");
}

#[test]
fn a_corrupt_file_is_listed_as_unreadable() {
    let (_, site) = deferred_site(1);
    let spool = site.path().join("spool");
    std::fs::write(spool.join("deferred/BROKEN-0000"), b"not sealed at all").unwrap();
    std::fs::write(spool.join("corrupt/OLD-0000"), b"set aside").unwrap();
    let table = ok(&site, &["list"]);
    let broken = table
        .lines()
        .find(|l| l.starts_with("BROKEN-0000"))
        .expect("listed");
    assert!(broken.contains("unreadable: "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("OLD-0000") && l.contains(" corrupt ")),
        "{table}"
    );
    assert!(table.contains("-- 3 entries"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&site, &["list", "--json"])).unwrap();
    let broken = json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "BROKEN-0000")
        .expect("listed");
    assert!(broken["error"].is_string(), "{broken}");
    let out = queue(&site, &["show", "BROKEN-0000"]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    // A corrupt entry can be deleted.
    assert_eq!(ok(&site, &["delete", "OLD-0000"]), "OLD-0000: deleted\n");
}

#[test]
fn an_empty_or_missing_spool_lists_nothing() {
    let site = Site::new(util::closed_port());
    assert!(!site.path().join("spool").exists());
    assert_eq!(ok(&site, &["list"]), "spool is empty\n");
    assert_eq!(ok(&site, &["list", "--json"]), "[]\n");
    assert!(
        !site.path().join("spool").exists(),
        "listing creates nothing"
    );
    let out = queue(&site, &["show", "X-1"]);
    assert_eq!(out.code, 66, "{}", out.stderr);
}

//! `postern-alias sync` and `member` through the built binary, against
//! the fake Launchpad (tests/fixtures/launchpad.py) and a members file,
//! with the real alias store; the admins' notifications go through the
//! rewriter and deliverer in the same process to the test SMTP server
//! (tests/postfix.rs has one through a real Postfix).

mod util;

use serde_json::{Value, json};
use util::launchpad::FakeLaunchpad;
use util::smtp::{Script, Server};
use util::{ALIAS, Site};

const DOMAIN: &str = "ubuntu.test";
const ADMIN: &str = "council@admins.example";

/// A site with a verified domain, its admin, and `[sync]` pointed at the
/// fake Launchpad's team `ubuntumembers` (short timeouts, quick retries).
fn site(lp: &FakeLaunchpad, relay: u16) -> Site {
    let site = Site::new(relay);
    site.alias(&["domain", "add", "--verified", DOMAIN]);
    site.alias(&["domain", "set", DOMAIN, "admins", ADMIN]);
    site.configure("sync", &format!("launchpad_url = \"{}\"", lp.base()));
    site.configure("sync", "timeout = \"2s\"");
    site.configure("sync", "retries = 2");
    site.configure("sync", "retry_backoff = \"10ms\"");
    site.configure("sync.teams", &format!("\"{DOMAIN}\" = \"~ubuntumembers\""));
    site
}

fn team(members: &[&str]) -> Value {
    json!({
        "teams": {"ubuntumembers": members},
        "persons": {
            "bob": {"is_valid": false},
            "carol": {"is_ubuntu_coc_signer": false},
            "dave": {"hidden": true},
        }
    })
}

fn sync(site: &Site, args: &[&str]) -> util::Output {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    site.run(ALIAS, &all, b"")
}

/// The standard output of a sync that must succeed.
fn synced(site: &Site, args: &[&str]) -> String {
    let out = sync(site, args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn aliases(site: &Site) -> Vec<Value> {
    let out = site.alias(&["--json", "alias", "list", DOMAIN]);
    serde_json::from_str::<Value>(&out)
        .expect("JSON alias list")
        .as_array()
        .expect("an array")
        .clone()
}

fn alias<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter()
        .find(|a| a["alias"] == format!("{name}@{DOMAIN}"))
}

fn text(m: &util::smtp::Received) -> String {
    String::from_utf8_lossy(&m.data).into_owned()
}

#[test]
fn a_team_is_synced_once_and_a_second_run_changes_and_sends_nothing() {
    let lp = FakeLaunchpad::start(team(&["alice", "bob", "carol", "dave", "erin"]));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);

    let stdout = synced(&site, &[]);
    assert!(
        stdout.contains("5 member(s), 2 created, 0 changed, 0 disabled")
            && stdout.contains("1 problem(s) (1 new); 1 admin(s) notified"),
        "{stdout}"
    );
    let list = aliases(&site);
    assert_eq!(list.len(), 2, "{list:#?}");
    assert_eq!(
        alias(&list, "alice").expect("alice")["targets"],
        json!(["alice@example.org"])
    );
    assert!(alias(&list, "erin").is_some());
    // bob is not valid, carol has not signed the CoC, dave hides his address.
    for nobody in ["bob", "carol", "dave"] {
        assert!(alias(&list, nobody).is_none(), "{nobody}");
    }

    let got = smtp.received();
    assert_eq!(got.len(), 1, "one notification");
    assert_eq!(got[0].mail_from, "<postmaster@mx.test.example>");
    assert_eq!(got[0].rcpts, [ADMIN]);
    let mail = text(&got[0]);
    assert!(
        mail.contains("Subject: Team addresses of ubuntu.test: 2 created, 1 problem(s)"),
        "{mail}"
    );
    assert!(
        mail.contains("alice@ubuntu.test -> alice@example.org"),
        "{mail}"
    );
    assert!(mail.contains("dave: no address known"), "{mail}");
    assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");

    // Nothing new: no change, no mail, the same store.
    let stdout = synced(&site, &[]);
    assert!(
        stdout.contains("0 created, 0 changed, 0 disabled, 0 enabled again, 2 unchanged")
            && stdout.contains("1 problem(s) (0 new)")
            && !stdout.contains("notified"),
        "{stdout}"
    );
    assert_eq!(aliases(&site), list);
    assert_eq!(smtp.received().len(), 1, "no second notification");

    // The log says counts, never who.
    let log = site.log();
    assert!(
        log.contains("sync ubuntu.test ~ubuntumembers: members=5 created=2"),
        "{log}"
    );
    for secret in ["alice", "example.org", ADMIN, "dave"] {
        assert!(!log.contains(secret), "the log names {secret}: {log}");
    }
}

#[test]
fn a_member_who_leaves_has_exactly_their_alias_disabled_and_back_enabled() {
    let lp = FakeLaunchpad::start(team(&["alice", "erin", "frank"]));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);
    assert_eq!(sync(&site, &[]).code, 0);
    let before = aliases(&site);
    assert_eq!(before.len(), 3);

    lp.set_state(team(&["erin", "frank"]));
    let stdout = synced(&site, &["-v"]);
    assert!(
        stdout.contains("  disable  alice@ubuntu.test (left the team)"),
        "{stdout}"
    );
    let after = aliases(&site);
    for (b, a) in before.iter().zip(&after) {
        if b["alias"] == format!("alice@{DOMAIN}") {
            assert_eq!(a["enabled"], false);
            assert_eq!(a["targets"], b["targets"], "kept, not deleted");
        } else {
            assert_eq!(a, b, "only alice's alias changes");
        }
    }
    let got = smtp.received();
    assert_eq!(got.len(), 2);
    let mail = text(&got[1]);
    assert!(mail.contains("alice@ubuntu.test: left the team"), "{mail}");

    // Mail to the disabled alias is refused with 5.2.1.
    let [_, w, _] = site.chain3(
        "someone@example.net",
        &[&format!("alice@{DOMAIN}")],
        &util::message("hello", "hi"),
    );
    assert_eq!(w.code, 69, "{}", w.stderr);
    assert!(w.stderr.starts_with("5.2.1 "), "{}", w.stderr);

    // Back in the team: enabled again, and the admins are told.
    lp.set_state(team(&["alice", "erin", "frank"]));
    assert_eq!(sync(&site, &[]).code, 0);
    assert_eq!(aliases(&site), before);
    let mail = text(&smtp.received()[2]);
    assert!(
        mail.contains("Enabled again:\r\n  alice@ubuntu.test -> alice@example.org"),
        "{mail}"
    );
}

/// A team of 2,500 over several pages, read whole; one member leaving
/// disables exactly their alias.
#[test]
fn a_team_of_2500_is_synced_whole_and_one_leaving_disables_one() {
    let names: Vec<String> = (1..=2500).map(|i| format!("member{i:04}")).collect();
    let lp = FakeLaunchpad::start(json!({"teams": {"ubuntumembers": names}}));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);
    synced(&site, &[]);
    let before = aliases(&site);
    assert_eq!(before.len(), 2500);
    assert!(lp.requests() >= 9, "{} requests", lp.requests());

    let mut fewer = names.clone();
    fewer.remove(1233);
    lp.set_state(json!({"teams": {"ubuntumembers": fewer}}));
    synced(&site, &["-v"]);
    let after = aliases(&site);
    let changed: Vec<&Value> = after.iter().filter(|a| !before.contains(a)).collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0]["alias"], format!("member1234@{DOMAIN}"));
    assert_eq!(changed[0]["enabled"], false);
    assert_eq!(smtp.received().len(), 2);
}

/// A second run while one holds the lock: 75, nothing done.
#[test]
fn one_sync_at_a_time() {
    let lp = FakeLaunchpad::start(team(&["alice"]));
    let site = site(&lp, util::closed_port());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(site.path().join("aliases.db.sync-lock"))
        .expect("lock file");
    lock.try_lock().expect("lock");
    let out = sync(&site, &[]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.status_line()
            .contains("another postern-alias sync is running"),
        "{}",
        out.stderr
    );
    // A dry run reads only, so it needs no lock.
    assert_eq!(sync(&site, &["-n"]).code, 0);
    drop(lock);
    assert_eq!(sync(&site, &[]).code, 0);
    assert_eq!(aliases(&site).len(), 1);
}

#[test]
fn the_registry_address_wins_and_a_ban_disables() {
    let lp = FakeLaunchpad::start(team(&["alice", "dave"]));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);
    // dave hides his address: the registry gives one.
    site.alias(&["member", "add", "Dave", "dave@elsewhere.example"]);
    assert_eq!(sync(&site, &[]).code, 0);
    let list = aliases(&site);
    assert_eq!(
        alias(&list, "dave").expect("dave")["targets"],
        json!(["dave@elsewhere.example"])
    );

    // A new address in the registry changes the alias.
    site.alias(&["member", "add", "alice", "alice@new.example"]);
    site.alias(&["member", "ban", "dave"]);
    let stdout = synced(&site, &["-v"]);
    assert!(
        stdout
            .contains("  change   alice@ubuntu.test -> alice@new.example (was alice@example.org)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  disable  dave@ubuntu.test (banned here)"),
        "{stdout}"
    );
    let shown = site.alias(&["member", "show", "dave"]);
    assert!(
        shown.contains("banned") && shown.contains("dave@ubuntu.test"),
        "{shown}"
    );
    assert!(shown.contains("(disabled)"), "{shown}");

    site.alias(&["member", "unban", "dave"]);
    assert_eq!(sync(&site, &[]).code, 0);
    assert_eq!(
        alias(&aliases(&site), "dave").expect("dave")["enabled"],
        true
    );

    // Bad arguments get one clear line.
    let out = site.run(ALIAS, &["member", "add", "bad/name", "x@example.org"], b"");
    assert_eq!(out.code, 65);
    assert!(
        out.status_line().contains("is not a username"),
        "{}",
        out.stderr
    );
    let out = site.run(ALIAS, &["member", "add", "zed", "not an address"], b"");
    assert_eq!(out.code, 65);
    assert!(out.status_line().contains("not valid"), "{}", out.stderr);
}

#[test]
fn a_team_that_cannot_be_read_changes_nothing_and_is_told_once() {
    let lp = FakeLaunchpad::start(team(&["alice"]));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);
    assert_eq!(sync(&site, &[]).code, 0);
    let before = aliases(&site);
    let failing = |fault: &str| {
        let mut state = team(&["erin"]);
        state["faults"] =
            json!({"/~ubuntumembers/members": [fault, fault, fault, fault, fault, fault]});
        state
    };

    // 5xx after every retry: 75, nothing changed (alice is not disabled).
    lp.set_state(failing("503"));
    let out = sync(&site, &[]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.status_line().contains("sync failed for ubuntu.test"),
        "{}",
        out.stderr
    );
    assert_eq!(aliases(&site), before);
    let got = smtp.received();
    assert_eq!(got.len(), 2);
    assert!(
        text(&got[1]).contains("The sync failed, so nothing changed"),
        "{}",
        text(&got[1])
    );

    // The same failure again is not mailed again.
    lp.set_state(failing("503"));
    assert_eq!(sync(&site, &[]).code, 75);
    assert_eq!(smtp.received().len(), 2);

    // A body that is not JSON: 69, nothing changed.
    lp.set_state(failing("malformed"));
    let out = sync(&site, &[]);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert_eq!(aliases(&site), before);

    // A 404 team: 69, not tried again.
    let asked = lp.requests();
    lp.set_state(failing("404"));
    assert_eq!(sync(&site, &[]).code, 69);
    assert_eq!(lp.requests(), asked + 1, "a 4xx is not retried");
    assert_eq!(aliases(&site), before);
}

#[test]
fn a_run_that_would_disable_too_many_is_refused_unless_forced() {
    let members: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    let names: Vec<&str> = members.iter().map(String::as_str).collect();
    let lp = FakeLaunchpad::start(team(&names));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);
    site.configure("sync", "max_disable = 3");
    assert_eq!(sync(&site, &[]).code, 0);
    let before = aliases(&site);

    lp.set_state(team(&[]));
    let out = sync(&site, &[]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("would disable 6 aliases"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(aliases(&site), before);

    synced(&site, &["--force", DOMAIN]);
    assert!(aliases(&site).iter().all(|a| a["enabled"] == false));
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let lp = FakeLaunchpad::start(team(&["alice", "dave"]));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);
    let stdout = synced(&site, &["--dry-run"]);
    assert!(
        stdout.contains("ubuntu.test ~ubuntumembers (dry run):"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  create   alice@ubuntu.test -> alice@example.org"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  problem  dave: no address known"),
        "{stdout}"
    );
    assert!(aliases(&site).is_empty());
    assert!(smtp.received().is_empty());

    // --json: the same plan for scripts.
    let out = site.run(ALIAS, &["--json", "sync", "-n"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let d = &v["domains"][0];
    assert_eq!(d["domain"], DOMAIN);
    assert_eq!(d["outcome"], "synced");
    assert_eq!(d["changes"][0]["change"], "create");
    assert_eq!(d["changes"][0]["username"], "alice");
    assert_eq!(v["dry_run"], true);
    assert!(aliases(&site).is_empty());
}

#[test]
fn a_members_file_is_a_directory_too() {
    let smtp = Server::start(Script::default());
    let site = Site::new(smtp.port);
    site.alias(&["domain", "add", "--verified", "staff.test"]);
    site.alias(&["domain", "add", "unverified.test"]);
    let file = site.path().join("members");
    std::fs::write(
        &file,
        "# team username address\nstaff alice alice@example.org\nstaff Bob bob@example.net\n",
    )
    .expect("members file");
    site.configure("sync", &format!("members_file = \"{}\"", file.display()));
    site.configure("sync.teams", "\"staff.test\" = \"file:staff\"");
    site.configure("sync.teams", "\"unverified.test\" = \"file:staff\"");
    let stdout = synced(&site, &[]);
    assert!(
        stdout.contains("staff.test file:staff: 2 member(s), 2 created"),
        "{stdout}"
    );
    assert!(
        stdout.contains("unverified.test file:staff: skipped: not verified"),
        "{stdout}"
    );
    let bob = site.alias(&["alias", "show", "bob@staff.test"]);
    assert!(
        bob.contains("bob@example.net") && bob.contains("team file:staff"),
        "{bob}"
    );
    // No admins set: no mail.
    assert!(smtp.received().is_empty());

    // One bad line fails the team whole, with the line named.
    std::fs::write(&file, "staff alice alice@example.org\nstaff bob\n").expect("members file");
    let out = sync(&site, &["staff.test"]);
    assert_eq!(out.code, 69, "{}", out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("line 2: not three fields"), "{stdout}");
    assert!(
        site.alias(&["alias", "show", "bob@staff.test"])
            .contains("enabled:     yes")
    );

    // A domain not in [sync] teams on the command line.
    let out = sync(&site, &["other.test"]);
    assert_eq!(out.code, 65);
    assert!(
        out.status_line().contains("not in [sync] teams"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_sync_config_is_refused_with_one_line() {
    let site = Site::new(util::closed_port());
    let out = sync(&site, &[]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.status_line().contains("no [sync] teams"),
        "{}",
        out.stderr
    );
    site.configure("sync.teams", "\"a.test\" = \"ubuntumembers\"");
    let out = sync(&site, &[]);
    assert_eq!(out.code, 78);
    assert!(
        out.status_line().contains("neither ~NAME"),
        "{}",
        out.stderr
    );
    site.configure("sync.teams", "\"a.test\" = \"~team\"");
    site.configure("sync", "launchpad_url = \"http://launchpad.example/1.0\"");
    site.alias(&["domain", "add", "--verified", "a.test"]);
    let out = sync(&site, &[]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.status_line().contains("sync.launchpad_url"),
        "{}",
        out.stderr
    );
}

/// sync.notify = "sendmail": a sendmail that fails keeps the notification
/// in the outbox (75), and the next run hands it on.
#[test]
fn a_notification_sendmail_refuses_is_sent_by_the_next_run() {
    let lp = FakeLaunchpad::start(team(&["alice"]));
    let site = site(&lp, util::closed_port());
    let script = site.path().join("sendmail");
    let got = site.path().join("sendmail.out");
    let fail = site.path().join("fail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e {fail} ]; then echo 'sendmail: fatal: no queue' >&2; exit 75; fi\n\
             echo \"$@\" > {got}.args\ncat > {got}\n",
            fail = fail.display(),
            got = got.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    site.configure("sync", "notify = \"sendmail\"");
    site.configure("sync", &format!("sendmail = \"{}\"", script.display()));
    std::fs::write(&fail, "").expect("fail marker");
    let out = sync(&site, &[]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.status_line().contains("kept for the next run"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("no queue"), "{}", out.stderr);
    assert_eq!(aliases(&site).len(), 1, "the aliases are made all the same");

    std::fs::remove_file(&fail).expect("rm");
    synced(&site, &[]);
    let args = std::fs::read_to_string(format!("{}.args", got.display())).expect("args");
    assert_eq!(
        args.trim(),
        format!("-oi -f postmaster@mx.test.example -- {ADMIN}")
    );
    let mail = std::fs::read_to_string(&got).expect("message");
    assert!(
        mail.contains("alice@ubuntu.test -> alice@example.org"),
        "{mail}"
    );
}

/// The cron line of contrib/ runs as written (its binary and flags).
#[test]
fn the_contrib_cron_line_runs_a_sync() {
    let lp = FakeLaunchpad::start(team(&["alice"]));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);
    let cron = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/cron/postern-alias-sync"),
    )
    .expect("cron file");
    let line = cron
        .lines()
        .find(|l| l.contains("@BINDIR@/postern-alias"))
        .expect("a postern-alias line");
    let command = line
        .split_once("@BINDIR@/")
        .map(|(_, c)| c)
        .expect("a command");
    let bindir = std::path::Path::new(ALIAS).parent().expect("bindir");
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{}/{command}", bindir.display()))
        .env("POSTERN_CONFIG", &site.config)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(aliases(&site).len(), 1);
    assert_eq!(smtp.received().len(), 1);
}

#[test]
fn a_sub_teams_members_are_members_unless_sub_teams_is_off() {
    let lp = FakeLaunchpad::start(json!({
        "teams": {
            "ubuntumembers": ["alice", "kubuntu-members"],
            "kubuntu-members": ["kim", "alice"],
        },
    }));
    let smtp = Server::start(Script::default());
    let site = site(&lp, smtp.port);

    let stdout = synced(&site, &[]);
    assert!(
        stdout.contains("2 member(s), 2 created") && stdout.contains("0 problem(s)"),
        "{stdout}"
    );
    let list = aliases(&site);
    assert_eq!(
        alias(&list, "kim").expect("kim, through kubuntu-members")["targets"],
        json!(["kim@example.org"])
    );

    site.configure("sync", "sub_teams = false");
    let stdout = synced(&site, &[]);
    assert!(
        stdout.contains("1 member(s), 0 created, 0 changed, 1 disabled"),
        "{stdout}"
    );
    let list = aliases(&site);
    assert_eq!(alias(&list, "kim").expect("kim")["enabled"], json!(false));
    assert_eq!(
        alias(&list, "alice").expect("alice")["enabled"],
        json!(true)
    );
    let got = smtp.received();
    let mail = text(got.last().expect("a notification"));
    assert!(
        mail.contains("~kubuntu-members is a team (sync.sub_teams is off)"),
        "{mail}"
    );
}

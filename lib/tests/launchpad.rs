//! `alias::sync::launchpad` against a fake Launchpad web service
//! (tests/fixtures/launchpad.py, one per test): paging, standings,
//! retries, timeouts, bad answers and links that lead elsewhere.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use postern::alias::sync::launchpad::Launchpad;
use postern::alias::sync::{Directory, Member, SourceError, Standing, Team};
use postern::config::SyncConfig;
use postern::mail::address::Address;
use serde_json::json;

#[path = "../../tests/util/launchpad.rs"]
mod fake;
use fake::FakeLaunchpad;

/// What these tests ask of the fake service besides the shared helper.
trait Fixture {
    /// `[sync]` for this service: short backoff, two retries.
    fn config(&self) -> SyncConfig;
    fn team(&self, config: &SyncConfig, team: &str) -> Result<Team, SourceError>;
}

impl Fixture for FakeLaunchpad {
    fn config(&self) -> SyncConfig {
        SyncConfig {
            launchpad_url: self.base(),
            timeout: Duration::from_secs(5),
            retries: 2,
            retry_backoff: Duration::from_millis(10),
            ..SyncConfig::default()
        }
    }

    fn team(&self, config: &SyncConfig, team: &str) -> Result<Team, SourceError> {
        Launchpad::new(config).unwrap().team(team)
    }
}

fn member(username: &str, standing: Standing, address: Option<&str>) -> Member {
    Member {
        username: username.into(),
        standing,
        address: address.map(|a| Address::parse(a).unwrap()),
    }
}

fn active(username: &str) -> Member {
    member(
        username,
        Standing::Active,
        Some(&format!("{username}@example.org")),
    )
}

fn usernames(team: &Team) -> Vec<&str> {
    team.members.iter().map(|m| m.username.as_str()).collect()
}

#[test]
fn a_team_of_many_pages_is_read_whole() {
    let fake = FakeLaunchpad::start(json!({
        "max_page_size": 75,
        "generate": {"big-team": {"members": 700, "prefix": "member"}},
    }));
    let team = fake.team(&fake.config(), "big-team").unwrap();
    assert_eq!(team.members.len(), 700);
    assert_eq!(team.requests, 10, "9 pages of 75 and one of 25");
    assert_eq!(fake.requests(), 10);
    assert!(team.skipped.is_empty());
    for (i, m) in team.members.iter().enumerate() {
        let name = format!("member{:04}", i + 1);
        assert_eq!(
            *m,
            member(
                &name,
                Standing::Active,
                Some(&format!("{name}@example.net"))
            )
        );
    }
}

#[test]
fn standings_addresses_and_skipped_entries() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {
            "ubuntumembers": ["alice", "bob", "carol", "dave", "erin", "core-devs", "Frank", "bad_name"],
            "core-devs": ["zed"],
        },
        "persons": {
            "bob": {"is_valid": false},
            "carol": {"is_ubuntu_coc_signer": false, "email": "carol+lp@example.org"},
            "dave": {"hidden": true},
            "erin": {"email": null},
        },
    }));
    let team = fake.team(&fake.config(), "ubuntumembers").unwrap();
    assert_eq!(
        team.members,
        [
            active("alice"),
            member("bob", Standing::Invalid, Some("bob@example.org")),
            member(
                "carol",
                Standing::NoCodeOfConduct,
                Some("carol+lp@example.org")
            ),
            member("dave", Standing::Active, None),
            member("erin", Standing::Active, None),
            // Launchpad's names are lower case; one that is not is read so.
            member("frank", Standing::Active, Some("Frank@example.org")),
            // A member of a member team, after the team's own.
            active("zed"),
        ]
    );
    assert_eq!(team.skipped, ["\"bad_name\" is not a Launchpad username"]);
    assert_eq!(team.requests, 2, "the team's page and the sub-team's");

    let config = SyncConfig {
        require_coc: false,
        ..fake.config()
    };
    let team = fake.team(&config, "ubuntumembers").unwrap();
    assert_eq!(team.members[2].standing, Standing::Active);
    assert_eq!(team.members[1].standing, Standing::Invalid);
}

#[test]
fn membership_is_read_anew_each_run() {
    let fake = FakeLaunchpad::start(json!({"teams": {"t": ["alice", "bob"]}}));
    let lp = Launchpad::new(&fake.config()).unwrap();
    assert_eq!(usernames(&lp.team("t").unwrap()), ["alice", "bob"]);
    fake.set_state(json!({"teams": {"t": ["bob", "carol"]}}));
    assert_eq!(usernames(&lp.team("t").unwrap()), ["bob", "carol"]);
}

#[test]
fn server_errors_are_tried_again_and_client_errors_not() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice"]},
        "faults": {"/~t/members": ["500", "503"]},
    }));
    let started = Instant::now();
    let team = fake.team(&fake.config(), "t").unwrap();
    assert_eq!(team.members, [active("alice")]);
    assert_eq!(team.requests, 3);
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "10ms, then 20ms"
    );

    // One more failure than there are retries.
    fake.set_state(json!({
        "teams": {"t": ["alice"]},
        "faults": {"/~t/members": ["502", "502", "502", "ok"]},
    }));
    let before = fake.requests();
    let e = fake.team(&fake.config(), "t").unwrap_err();
    assert_eq!(
        e,
        SourceError::Status {
            what: "~t members page 1".into(),
            status: 502
        }
    );
    assert!(e.is_temporary());
    assert_eq!(fake.requests() - before, 3);

    let before = fake.requests();
    let e = fake.team(&fake.config(), "no-such-team").unwrap_err();
    assert_eq!(
        e,
        SourceError::Status {
            what: "~no-such-team members page 1".into(),
            status: 404
        }
    );
    assert!(!e.is_temporary());
    assert_eq!(fake.requests() - before, 1, "a 404 is not tried again");
}

#[test]
fn timeouts_fail_the_team_on_a_page_and_the_member_on_a_person() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "carol"]},
        "persons": {"carol": {"omit": ["is_ubuntu_coc_signer"]}},
        "faults": {"/~carol": ["timeout", "timeout"]},
    }));
    let config = SyncConfig {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..fake.config()
    };
    let team = fake.team(&config, "t").unwrap();
    assert_eq!(
        team.members,
        [
            active("alice"),
            member(
                "carol",
                Standing::Unknown("person ~carol: no answer within 300ms".into()),
                Some("carol@example.org")
            ),
        ]
    );
    assert_eq!(team.requests, 3);

    fake.set_state(json!({
        "teams": {"t": ["alice"]},
        "faults": {"/~t/members": ["timeout", "timeout"]},
    }));
    let e = fake.team(&config, "t").unwrap_err();
    assert_eq!(
        e,
        SourceError::Timeout {
            what: "~t members page 1".into(),
            timeout: Duration::from_millis(300)
        }
    );
    assert!(e.is_temporary());
}

#[test]
fn a_malformed_page_fails_the_team_and_a_malformed_person_is_unknown() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "dave", "ghost"]},
        "persons": {
            "dave": {"omit": ["is_valid"]},
            "ghost": {"omit": ["is_valid"]},
        },
        "faults": {"/~t/members": ["ok", "malformed"], "/~dave": ["malformed"], "/~ghost": ["410"]},
    }));
    let team = fake.team(&fake.config(), "t").unwrap();
    assert_eq!(team.members[0], active("alice"));
    let Standing::Unknown(reason) = &team.members[1].standing else {
        panic!("{:?}", team.members[1]);
    };
    assert!(
        reason.starts_with("person ~dave: the answer is not JSON"),
        "{reason}"
    );
    assert_eq!(
        team.members[2].standing,
        Standing::Unknown("not found".into())
    );
    assert_eq!(team.requests, 3, "a malformed body is not tried again");

    let before = fake.requests();
    let e = fake.team(&fake.config(), "t").unwrap_err();
    assert!(
        matches!(&e, SourceError::Malformed { what, reason }
            if what == "~t members page 1" && reason.starts_with("the answer is not JSON")),
        "{e:?}"
    );
    assert_eq!(fake.requests() - before, 1);
}

#[test]
fn entries_missing_a_field_are_completed_from_the_person() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "bob", "carol"]},
        "persons": {
            "bob": {"omit": ["is_valid"], "is_valid": false},
            "carol": {"omit": ["is_ubuntu_coc_signer", "preferred_email_address_link"]},
        },
    }));
    let team = fake.team(&fake.config(), "t").unwrap();
    assert_eq!(
        team.members,
        [
            active("alice"),
            member("bob", Standing::Invalid, Some("bob@example.org")),
            active("carol"),
        ]
    );
    assert_eq!(team.requests, 3, "the page, ~bob and ~carol");
    assert_eq!(fake.requests(), 3);
}

#[test]
fn minimal_entries_fetch_every_person_concurrently() {
    let fake = FakeLaunchpad::start(json!({
        "entries": "minimal",
        "latency_ms": 50,
        "generate": {"t": {"members": 40, "prefix": "m"}},
    }));
    let config = SyncConfig {
        concurrency: 8,
        ..fake.config()
    };
    let started = Instant::now();
    let team = fake.team(&config, "t").unwrap();
    let elapsed = started.elapsed();
    assert_eq!(team.members.len(), 40);
    for (i, m) in team.members.iter().enumerate() {
        let name = format!("m{:04}", i + 1);
        assert_eq!(
            *m,
            member(
                &name,
                Standing::Active,
                Some(&format!("{name}@example.net"))
            )
        );
    }
    assert_eq!(team.requests, 41);
    assert_eq!(fake.requests(), 41);
    // 41 requests of 50ms one after another take 2s; 8 at a time, 0.3s.
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

/// A page or a person of 17 MiB with no Content-Length: read up to the
/// limit, then refused (a page fails the team, a person is Unknown).
#[test]
fn a_huge_answer_is_cut_at_the_limit() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "bob"]},
        "persons": {"bob": {"omit": ["is_valid"]}},
        "faults": {"/~bob": ["huge"]},
    }));
    let team = fake.team(&fake.config(), "t").unwrap();
    assert_eq!(team.members[0], active("alice"));
    let Standing::Unknown(why) = &team.members[1].standing else {
        panic!("{:?}", team.members[1]);
    };
    assert!(why.contains("larger than"), "{why}");
    fake.set_state(json!({
        "teams": {"t": ["alice"]},
        "faults": {"/~t/members": ["huge"]},
    }));
    let e = fake.team(&fake.config(), "t").unwrap_err();
    assert!(
        matches!(&e, SourceError::Malformed { reason, .. } if reason.contains("larger than 16777216")),
        "{e}"
    );
    assert!(!e.is_temporary());
}

#[test]
fn a_person_found_to_be_a_team_is_expanded_too() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "sub"], "sub": ["bob"]},
        "persons": {"sub": {"is_team": true, "omit": ["is_team"]}},
    }));
    let team = fake.team(&fake.config(), "t").unwrap();
    assert_eq!(team.members, [active("alice"), active("bob")]);
    assert!(team.skipped.is_empty(), "{:?}", team.skipped);
    assert_eq!(team.requests, 3, "t's page, ~sub, sub's page");

    let config = SyncConfig {
        sub_teams: false,
        ..fake.config()
    };
    let team = fake.team(&config, "t").unwrap();
    assert_eq!(team.members, [active("alice")]);
    assert_eq!(team.skipped, ["~sub is a team (sync.sub_teams is off)"]);
}

#[test]
fn sub_teams_are_read_once_each_to_any_depth_and_a_cycle_ends() {
    // t has a and b; a has c (and t again: a cycle); b has c and dave,
    // and dave is also t's; c has erin.
    let fake = FakeLaunchpad::start(json!({
        "teams": {
            "t": ["alice", "a", "b", "dave"],
            "a": ["c", "t", "bob"],
            "b": ["c", "dave"],
            "c": ["erin", "alice"],
        },
    }));
    let team = fake.team(&fake.config(), "t").unwrap();
    assert_eq!(
        usernames(&team),
        ["alice", "dave", "bob", "erin"],
        "each person once, in the order first met"
    );
    assert!(team.skipped.is_empty(), "{:?}", team.skipped);
    assert_eq!(team.requests, 4, "one page for each of t, a, b, c");

    let config = SyncConfig {
        sub_teams: false,
        ..fake.config()
    };
    let team = fake.team(&config, "t").unwrap();
    assert_eq!(usernames(&team), ["alice", "dave"]);
    assert_eq!(
        team.skipped,
        [
            "~a is a team (sync.sub_teams is off)",
            "~b is a team (sync.sub_teams is off)",
        ]
    );
    assert_eq!(team.requests, 1);
}

#[test]
fn a_sub_team_that_cannot_be_read_fails_the_team() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "sub"], "sub": ["bob"]},
        "faults": {"/~sub/members": ["500", "500", "500"]},
    }));
    let e = fake.team(&fake.config(), "t").unwrap_err();
    assert_eq!(
        e,
        SourceError::Status {
            what: "~sub members page 1".into(),
            status: 500,
        }
    );
    assert!(e.is_temporary());
}

#[test]
fn max_members_counts_the_entries_of_every_sub_team() {
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "sub"], "sub": ["bob", "carol"]},
    }));
    let config = SyncConfig {
        max_members: 3,
        ..fake.config()
    };
    assert_eq!(
        fake.team(&config, "t"),
        Err(SourceError::TooLarge {
            what: "~t".into(),
            limit: 3,
        })
    );
    let config = SyncConfig {
        max_members: 4,
        ..fake.config()
    };
    assert_eq!(fake.team(&config, "t").unwrap().members.len(), 3);
}

#[test]
fn links_elsewhere_or_back_are_never_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let other = elsewhere.local_addr().unwrap().port();
    let fake = FakeLaunchpad::start(json!({
        "teams": {"t": ["alice", "bob"]},
        "next_links": {"t": format!("http://127.0.0.1:{other}/1.0/~t/members?ws.start=75")},
    }));
    let e = fake.team(&fake.config(), "t").unwrap_err();
    assert_eq!(
        e,
        SourceError::Malformed {
            what: "~t members page 1".into(),
            reason: format!("next_collection_link leads outside {}", fake.base()),
        }
    );
    assert_eq!(fake.requests(), 1);
    assert!(
        elsewhere.accept().is_err(),
        "the other server was contacted"
    );

    let first = format!("{}/~t/members?ws.size=300", fake.base());
    fake.set_state(json!({
        "teams": {"t": ["alice", "bob"]},
        "next_links": {"t": first},
    }));
    let e = fake.team(&fake.config(), "t").unwrap_err();
    assert_eq!(
        e,
        SourceError::Malformed {
            what: "~t members page 1".into(),
            reason: "next_collection_link leads back to an earlier page".into(),
        }
    );
}

#[test]
fn a_team_larger_than_max_members_is_refused() {
    let fake = FakeLaunchpad::start(json!({
        "max_page_size": 75,
        "generate": {"big": {"members": 700}},
    }));
    let config = SyncConfig {
        max_members: 500,
        ..fake.config()
    };
    let too_large = SourceError::TooLarge {
        what: "~big".into(),
        limit: 500,
    };
    // total_size tells at once.
    assert_eq!(fake.team(&config, "big"), Err(too_large.clone()));
    assert_eq!(fake.requests(), 1);
    // Without it, the count does on page 7.
    fake.set_state(json!({
        "max_page_size": 75,
        "generate": {"big": {"members": 700}},
        "total_size_link": ["big"],
    }));
    assert_eq!(fake.team(&config, "big"), Err(too_large));
    assert_eq!(fake.requests(), 1 + 7);
    // Exactly max_members is not too large.
    let config = SyncConfig {
        max_members: 700,
        ..config
    };
    assert_eq!(fake.team(&config, "big").unwrap().members.len(), 700);
}

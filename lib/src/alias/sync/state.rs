//! The sync's tables in the alias store (schema 3): the member registry
//! (`postern-alias member`), the aliases the sync keeps, the problems
//! already told to the admins, and the outbox of notifications. Reading
//! and writing them; what to write is `plan`'s decision.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::is_username;
use super::plan::{Change, Registered, SyncState, Synced};
use crate::alias::store::{AliasStore, NewAlias, StoreError};
use crate::alias::{Action, Pattern};
use crate::mail::address::Address;
use crate::mail::text;

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn invalid(message: String) -> StoreError {
    StoreError::Invalid(message)
}

/// A username as given on the command line: lower-cased and checked.
pub fn username_arg(name: &str) -> Result<String, StoreError> {
    let lower = name.to_ascii_lowercase();
    if is_username(&lower) {
        Ok(lower)
    } else {
        Err(invalid(format!(
            "{:?} is not a username (lower-case letters, digits, '+', '-' and '.', at most 64)",
            text::bounded(name, 80)
        )))
    }
}

// ---- the member registry -------------------------------------------------

/// Sets where `username`'s mail goes (keeps a ban).
pub fn add_member(
    store: &mut AliasStore,
    username: &str,
    address: &str,
    now: SystemTime,
) -> Result<Registered, StoreError> {
    let username = username_arg(username)?;
    let address = Address::parse(address)
        .map_err(|e| invalid(format!("member {username}: the address is not valid: {e}")))?;
    store.write(|tx| {
        tx.execute(
            "INSERT INTO members(username, address, banned, updated) VALUES (?1, ?2, 0, ?3) \
             ON CONFLICT(username) DO UPDATE SET address = excluded.address, updated = excluded.updated",
            params![username, address.as_str(), unix(now)],
        )?;
        member(tx, &username).map(Option::unwrap_or_default)
    })
}

/// Bans or lets `username` back in (a registry entry is made if needed).
pub fn ban_member(
    store: &mut AliasStore,
    username: &str,
    banned: bool,
    now: SystemTime,
) -> Result<Registered, StoreError> {
    let username = username_arg(username)?;
    store.write(|tx| {
        tx.execute(
            "INSERT INTO members(username, address, banned, updated) VALUES (?1, NULL, ?2, ?3) \
             ON CONFLICT(username) DO UPDATE SET banned = excluded.banned, updated = excluded.updated",
            params![username, banned, unix(now)],
        )?;
        // An entry that says nothing any more is forgotten.
        tx.execute(
            "DELETE FROM members WHERE username = ?1 AND address IS NULL AND banned = 0",
            [&username],
        )?;
        member(tx, &username).map(|m| {
            m.unwrap_or(Registered {
                username: username.clone(),
                address: None,
                banned: false,
            })
        })
    })
}

/// Forgets `username`'s registry entry (their address and any ban).
pub fn remove_member(store: &mut AliasStore, username: &str) -> Result<(), StoreError> {
    let username = username_arg(username)?;
    let n = store.write(|tx| tx.execute("DELETE FROM members WHERE username = ?1", [&username]))?;
    if n == 0 {
        return Err(invalid(format!("member {username} is not in the registry")));
    }
    Ok(())
}

fn member(conn: &Connection, username: &str) -> rusqlite::Result<Option<Registered>> {
    conn.prepare_cached("SELECT username, address, banned FROM members WHERE username = ?1")?
        .query_row([username], registered_row)
        .optional()
}

fn registered_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Registered> {
    Ok(Registered {
        username: r.get(0)?,
        address: r.get(1)?,
        banned: r.get(2)?,
    })
}

/// The registry, in username order.
pub fn members(conn: &Connection) -> rusqlite::Result<Vec<Registered>> {
    conn.prepare_cached("SELECT username, address, banned FROM members ORDER BY username")?
        .query_map([], registered_row)?
        .collect()
}

/// One member's registry entry, if any.
pub fn find_member(store: &AliasStore, username: &str) -> Result<Option<Registered>, StoreError> {
    let username = username_arg(username)?;
    store.read(|c| member(c, &username))
}

/// A synced alias with its domain, for `member show` and `sync list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedRow {
    pub domain: String,
    pub team: String,
    pub synced: Synced,
    pub enabled: bool,
}

/// The synced aliases of `username` (every domain), or of every member.
pub fn synced_rows(conn: &Connection, username: Option<&str>) -> rusqlite::Result<Vec<SyncedRow>> {
    conn.prepare_cached(
        "SELECT a.domain, s.team, s.alias, s.username, s.state, a.targets, a.enabled \
         FROM synced s JOIN aliases a ON a.id = s.alias \
         WHERE ?1 IS NULL OR s.username = ?1 ORDER BY a.domain, s.username",
    )?
    .query_map([username], |r| {
        let state: String = r.get(4)?;
        let targets: String = r.get(5)?;
        Ok(SyncedRow {
            domain: r.get(0)?,
            team: r.get(1)?,
            synced: Synced {
                alias: r.get(2)?,
                username: r.get(3)?,
                state: SyncState::parse(&state).ok_or_else(|| bad_state(4))?,
                targets: targets.lines().map(str::to_owned).collect(),
            },
            enabled: r.get(6)?,
        })
    })?
    .collect()
}

fn bad_state(i: usize) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        i,
        rusqlite::types::Type::Text,
        "unknown sync state".into(),
    )
}

// ---- what a run reads ------------------------------------------------------

/// Everything `plan` needs about one domain, read in one go (inside the
/// run's transaction, so nothing changes under it).
pub struct Current {
    pub registry: HashMap<String, Registered>,
    pub synced: Vec<Synced>,
    pub hand_made: HashSet<String>,
    pub reported: HashSet<String>,
}

pub fn current(conn: &Connection, domain: &str) -> rusqlite::Result<Current> {
    let registry = members(conn)?
        .into_iter()
        .map(|m| (m.username.clone(), m))
        .collect();
    let mut synced = Vec::new();
    let mut hand_made = HashSet::new();
    let mut s = conn.prepare_cached(
        "SELECT a.id, a.name, a.targets, s.username, s.state FROM aliases a \
         LEFT JOIN synced s ON s.alias = a.id WHERE a.domain = ?1 AND a.kind = 'exact'",
    )?;
    let mut rows = s.query([domain])?;
    while let Some(r) = rows.next()? {
        let username: Option<String> = r.get(3)?;
        match username {
            Some(username) => {
                let state: String = r.get(4)?;
                let targets: String = r.get(2)?;
                synced.push(Synced {
                    alias: r.get(0)?,
                    username,
                    state: SyncState::parse(&state).ok_or_else(|| bad_state(4))?,
                    targets: targets.lines().map(str::to_owned).collect(),
                });
            }
            None => {
                hand_made.insert(r.get(1)?);
            }
        }
    }
    let reported = conn
        .prepare_cached("SELECT problem FROM sync_reported WHERE domain = ?1")?
        .query_map([domain], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Current {
        registry,
        synced,
        hand_made,
        reported,
    })
}

// ---- what a run writes -----------------------------------------------------

/// Writes a plan's `changes` for `domain` (team `team`) in `tx`.
pub fn apply(
    tx: &Transaction<'_>,
    domain: &str,
    team: &str,
    changes: &[Change],
    now: SystemTime,
) -> rusqlite::Result<()> {
    let t = unix(now);
    let set_state = |alias: i64, state: SyncState| {
        tx.prepare_cached("UPDATE synced SET state = ?2, team = ?3, updated = ?4 WHERE alias = ?1")?
            .execute(params![alias, state.as_str(), team, t])
    };
    let set_alias = |alias: i64, enabled: Option<bool>, target: Option<&str>| {
        if let Some(target) = target {
            tx.prepare_cached("UPDATE aliases SET targets = ?2 WHERE id = ?1")?
                .execute(params![alias, target])?;
        }
        if let Some(enabled) = enabled {
            tx.prepare_cached("UPDATE aliases SET enabled = ?2 WHERE id = ?1")?
                .execute(params![alias, enabled])?;
        }
        Ok::<_, rusqlite::Error>(())
    };
    for change in changes {
        match change {
            Change::Create { username, address } => {
                let (alias, _) = AliasStore::put_alias(
                    tx,
                    &NewAlias {
                        domain: domain.to_owned(),
                        pattern: Pattern::Exact(username.clone()),
                        action: Action::Forward,
                        targets: vec![address.clone()],
                        description: format!("team {team}"),
                    },
                    now,
                )?;
                tx.prepare_cached(
                    "INSERT INTO synced(alias, team, username, state, updated) \
                     VALUES (?1, ?2, ?3, 'active', ?4) \
                     ON CONFLICT(alias) DO UPDATE SET state = 'active', team = excluded.team, \
                     updated = excluded.updated",
                )?
                .execute(params![alias, team, username, t])?;
            }
            Change::Retarget { alias, address, .. } => {
                set_alias(*alias, None, Some(address))?;
                set_state(*alias, SyncState::Active)?;
            }
            Change::Disable { alias, state, .. } => {
                set_alias(*alias, Some(false), None)?;
                set_state(*alias, *state)?;
            }
            Change::Enable { alias, address, .. } => {
                set_alias(*alias, Some(true), Some(address))?;
                set_state(*alias, SyncState::Active)?;
            }
            Change::Restate { alias, state, .. } => {
                set_state(*alias, *state)?;
            }
        }
    }
    Ok(())
}

/// Makes `problems` the domain's reported set and returns those not
/// reported before. `keep_old`: add to the set rather than replace it
/// (a run that failed says nothing about the members' problems).
pub fn record_problems(
    tx: &Transaction<'_>,
    domain: &str,
    problems: &[String],
    reported: &HashSet<String>,
    keep_old: bool,
    now: SystemTime,
) -> rusqlite::Result<Vec<String>> {
    if !keep_old {
        let now_set: HashSet<&str> = problems.iter().map(String::as_str).collect();
        let mut del =
            tx.prepare_cached("DELETE FROM sync_reported WHERE domain = ?1 AND problem = ?2")?;
        for gone in reported.iter().filter(|p| !now_set.contains(p.as_str())) {
            del.execute([domain, gone])?;
        }
    }
    let mut add = tx.prepare_cached(
        "INSERT OR IGNORE INTO sync_reported(domain, problem, first) VALUES (?1, ?2, ?3)",
    )?;
    let mut fresh = Vec::new();
    for p in problems {
        if !reported.contains(p) {
            add.execute(params![domain, p, unix(now)])?;
            fresh.push(p.clone());
        }
    }
    Ok(fresh)
}

// ---- the outbox --------------------------------------------------------------

/// A notification written in a run's transaction, handed on after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: i64,
    pub domain: String,
    pub recipients: Vec<String>,
    pub message: Vec<u8>,
}

pub fn put_outgoing(
    tx: &Transaction<'_>,
    domain: &str,
    recipients: &[String],
    message: &[u8],
    now: SystemTime,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO sync_outbox(domain, created, recipients, message) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![domain, unix(now), recipients.join("\n"), message])?;
    Ok(())
}

/// Every notification not handed on yet, oldest first.
pub fn outbox(conn: &Connection) -> rusqlite::Result<Vec<Outgoing>> {
    conn.prepare_cached("SELECT id, domain, recipients, message FROM sync_outbox ORDER BY id")?
        .query_map([], |r| {
            let recipients: String = r.get(2)?;
            Ok(Outgoing {
                id: r.get(0)?,
                domain: r.get(1)?,
                recipients: recipients.lines().map(str::to_owned).collect(),
                message: r.get(3)?,
            })
        })?
        .collect()
}

pub fn remove_outgoing(store: &mut AliasStore, id: i64) -> Result<(), StoreError> {
    store
        .write(|tx| tx.execute("DELETE FROM sync_outbox WHERE id = ?1", [id]))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alias::store::DomainMode;
    use crate::alias::sync::plan::Plan;

    fn store() -> (tempfile::TempDir, AliasStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = AliasStore::open_or_create(&dir.path().join("a.db")).unwrap();
        s.add_domain("ubuntu.com", DomainMode::Store, "t", SystemTime::UNIX_EPOCH)
            .unwrap();
        (dir, s)
    }

    #[test]
    fn the_registry_keeps_addresses_and_bans() {
        let (_d, mut s) = store();
        let now = SystemTime::UNIX_EPOCH;
        add_member(&mut s, "Alice", "alice@example.org", now).unwrap();
        ban_member(&mut s, "alice", true, now).unwrap();
        let a = find_member(&s, "alice").unwrap().unwrap();
        assert_eq!(a.address.as_deref(), Some("alice@example.org"));
        assert!(a.banned);
        // A ban alone, lifted, leaves nothing behind.
        ban_member(&mut s, "bob", true, now).unwrap();
        ban_member(&mut s, "bob", false, now).unwrap();
        assert_eq!(find_member(&s, "bob").unwrap(), None);
        assert!(add_member(&mut s, "bad name", "x@example.org", now).is_err());
        assert!(add_member(&mut s, "carol", "not an address", now).is_err());
        assert!(remove_member(&mut s, "nobody").is_err());
    }

    #[test]
    fn a_plan_is_written_and_read_back() {
        let (_d, mut s) = store();
        let now = SystemTime::UNIX_EPOCH;
        let plan = Plan {
            changes: vec![
                Change::Create {
                    username: "alice".into(),
                    address: "alice@example.org".into(),
                },
                Change::Create {
                    username: "bob".into(),
                    address: "bob@example.org".into(),
                },
            ],
            ..Plan::default()
        };
        s.write(|tx| apply(tx, "ubuntu.com", "~team", &plan.changes, now))
            .unwrap();
        let cur = s.read(|c| current(c, "ubuntu.com")).unwrap();
        assert_eq!(cur.synced.len(), 2);
        let bob = cur.synced.iter().find(|x| x.username == "bob").unwrap();
        let plan = Plan {
            changes: vec![Change::Disable {
                alias: bob.alias,
                username: "bob".into(),
                state: SyncState::Left,
            }],
            ..Plan::default()
        };
        s.write(|tx| apply(tx, "ubuntu.com", "~team", &plan.changes, now))
            .unwrap();
        let row = s.exact("ubuntu.com", "bob").unwrap().unwrap();
        assert!(!row.enabled);
        let rows = s.read(|c| synced_rows(c, Some("bob"))).unwrap();
        assert_eq!(rows[0].synced.state, SyncState::Left);
        assert!(!rows[0].enabled);
    }

    #[test]
    fn problems_are_new_once() {
        let (_d, mut s) = store();
        let now = SystemTime::UNIX_EPOCH;
        let first = vec!["a".to_owned(), "b".to_owned()];
        let fresh = s
            .write(|tx| record_problems(tx, "ubuntu.com", &first, &HashSet::new(), false, now))
            .unwrap();
        assert_eq!(fresh, first);
        let reported = s.read(|c| current(c, "ubuntu.com")).unwrap().reported;
        let fresh = s
            .write(|tx| record_problems(tx, "ubuntu.com", &["b".into()], &reported, false, now))
            .unwrap();
        assert!(fresh.is_empty());
        // "a" went away, so it is news again when it comes back.
        let reported = s.read(|c| current(c, "ubuntu.com")).unwrap().reported;
        assert_eq!(reported.len(), 1);
        let fresh = s
            .write(|tx| record_problems(tx, "ubuntu.com", &first, &reported, false, now))
            .unwrap();
        assert_eq!(fresh, vec!["a".to_owned()]);
    }
}

//! What one sync run changes in one domain: the team as the directory
//! shows it, the member registry and the domain's synced aliases in;
//! the list of changes and problems out. Pure: `apply` writes it.

use std::collections::{HashMap, HashSet};

use super::{Member, Standing, Team};
use crate::mail::address::Address;

/// Where a synced alias stands, as the `synced` table keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncState {
    /// A member in good standing: the alias forwards.
    Active,
    /// No longer in the team.
    Left,
    /// The directory says the account is not valid.
    Invalid,
    /// Has not signed the Code of Conduct.
    NoCoc,
    /// Banned here (`postern-alias member ban`).
    Banned,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Active => "active",
            SyncState::Left => "left",
            SyncState::Invalid => "invalid",
            SyncState::NoCoc => "no-coc",
            SyncState::Banned => "banned",
        }
    }

    pub fn parse(text: &str) -> Option<SyncState> {
        [
            SyncState::Active,
            SyncState::Left,
            SyncState::Invalid,
            SyncState::NoCoc,
            SyncState::Banned,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Why an alias in this state is disabled, in words for the admins.
    pub fn reason(self) -> &'static str {
        match self {
            SyncState::Active => "a member in good standing",
            SyncState::Left => "left the team",
            SyncState::Invalid => "the account is not valid",
            SyncState::NoCoc => "has not signed the Code of Conduct",
            SyncState::Banned => "banned here",
        }
    }
}

/// A member of the registry (`postern-alias member`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    pub username: String,
    /// Where their mail goes; wins over the directory's address.
    pub address: Option<String>,
    pub banned: bool,
}

/// A synced alias of the domain, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub alias: i64,
    pub username: String,
    pub state: SyncState,
    pub targets: Vec<String>,
}

/// What the plan is computed from.
pub struct Inputs<'a> {
    pub domain: &'a str,
    pub team: &'a Team,
    pub registry: &'a HashMap<String, Registered>,
    /// The domain's synced aliases.
    pub synced: &'a [Synced],
    /// Exact local parts of the domain's other aliases (made by hand):
    /// the sync never takes one over.
    pub hand_made: &'a HashSet<String>,
}

/// One change to one alias.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum Change {
    /// A new alias `username@domain` forwarding to `address`.
    Create { username: String, address: String },
    /// The alias forwards to `address` now, not `old`.
    Retarget {
        alias: i64,
        username: String,
        old: String,
        address: String,
    },
    /// Disabled: mail to it gets 5.2.1.
    Disable {
        alias: i64,
        username: String,
        state: SyncState,
    },
    /// Enabled again (the member is back), forwarding to `address`.
    Enable {
        alias: i64,
        username: String,
        address: String,
    },
    /// Still disabled, for another reason now (left, then banned): no
    /// mail is sent about it.
    Restate {
        alias: i64,
        username: String,
        state: SyncState,
    },
}

impl Change {
    pub fn username(&self) -> &str {
        match self {
            Change::Create { username, .. }
            | Change::Retarget { username, .. }
            | Change::Disable { username, .. }
            | Change::Enable { username, .. }
            | Change::Restate { username, .. } => username,
        }
    }

    /// Worth telling the admins about.
    pub fn is_news(&self) -> bool {
        !matches!(self, Change::Restate { .. })
    }
}

/// How many changes of each kind (what the output, the log and the
/// Subject say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub changed: usize,
    pub disabled: usize,
    pub enabled: usize,
}

impl Counts {
    pub fn of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Counts {
        let mut c = Counts::default();
        for change in changes {
            match change {
                Change::Create { .. } => c.created += 1,
                Change::Retarget { .. } => c.changed += 1,
                Change::Disable { .. } => c.disabled += 1,
                Change::Enable { .. } => c.enabled += 1,
                Change::Restate { .. } => {}
            }
        }
        c
    }
}

/// A domain's plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In username order.
    pub changes: Vec<Change>,
    /// One line each, naming a username (never an address from outside):
    /// the same problem gives the same line every run, so it is reported once.
    pub problems: Vec<String>,
    /// Members whose alias is as it should be.
    pub unchanged: usize,
}

impl Plan {
    pub fn disables(&self) -> usize {
        Counts::of(&self.changes).disabled
    }
}

/// The local part a username gets: itself, if it is one an alias can
/// have (no `+`, which is the address extension, and a dot-atom).
pub fn local_part(username: &str) -> Result<&str, &'static str> {
    if username.contains('+') {
        return Err("has a '+' (the address extension separator), so it cannot be an alias");
    }
    if username.ends_with('.') || username.contains("..") {
        return Err("is not a valid local part (a dot at the end or two in a row)");
    }
    Ok(username)
}

/// Decides the domain's changes.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let mut out = Plan::default();
    let by_user: HashMap<&str, &Synced> = inputs
        .synced
        .iter()
        .map(|s| (s.username.as_str(), s))
        .collect();
    let mut seen: HashSet<&str> = HashSet::new();
    for skipped in &inputs.team.skipped {
        out.problems.push(format!("skipped: {skipped}"));
    }
    for member in &inputs.team.members {
        if !seen.insert(member.username.as_str()) {
            continue;
        }
        let current = by_user.get(member.username.as_str()).copied();
        decide(inputs, member, current, &mut out);
    }
    // Synced aliases whose member the team no longer lists.
    for s in inputs.synced {
        if seen.contains(s.username.as_str()) {
            continue;
        }
        match s.state {
            SyncState::Active => out.changes.push(Change::Disable {
                alias: s.alias,
                username: s.username.clone(),
                state: SyncState::Left,
            }),
            SyncState::Left => out.unchanged += 1,
            _ => out.changes.push(Change::Restate {
                alias: s.alias,
                username: s.username.clone(),
                state: SyncState::Left,
            }),
        }
    }
    out.changes.sort_by(|a, b| a.username().cmp(b.username()));
    out.problems.sort();
    out.problems.dedup();
    out
}

fn decide(inputs: &Inputs<'_>, member: &Member, current: Option<&Synced>, out: &mut Plan) {
    let user = member.username.as_str();
    let registered = inputs.registry.get(user);
    let wanted = if registered.is_some_and(|r| r.banned) {
        SyncState::Banned
    } else {
        match &member.standing {
            Standing::Active => SyncState::Active,
            Standing::Invalid => SyncState::Invalid,
            Standing::NoCodeOfConduct => SyncState::NoCoc,
            Standing::Unknown(reason) => {
                out.problems.push(format!(
                    "{user}: could not be read, left as it is: {reason}"
                ));
                out.unchanged += usize::from(current.is_some());
                return;
            }
        }
    };
    if wanted != SyncState::Active {
        match current {
            Some(s) if s.state == SyncState::Active => out.changes.push(Change::Disable {
                alias: s.alias,
                username: user.to_owned(),
                state: wanted,
            }),
            Some(s) if s.state != wanted => out.changes.push(Change::Restate {
                alias: s.alias,
                username: user.to_owned(),
                state: wanted,
            }),
            Some(_) => out.unchanged += 1,
            None => {}
        }
        return;
    }
    if let Err(why) = local_part(user) {
        out.problems.push(format!("{user}: {why}"));
        return;
    }
    let address = match registered.and_then(|r| r.address.clone()) {
        Some(a) => a,
        None => match &member.address {
            Some(a) => a.as_str().to_owned(),
            None => {
                out.problems.push(format!(
                    "{user}: no address known (the directory shows none; \
                     postern-alias member add {user} ADDRESS)"
                ));
                out.unchanged += usize::from(current.is_some());
                return;
            }
        },
    };
    if is_ours(&address, inputs.domain, user) {
        out.problems
            .push(format!("{user}: their address is the team address itself"));
        out.unchanged += usize::from(current.is_some());
        return;
    }
    match current {
        None if inputs.hand_made.contains(user) => out.problems.push(format!(
            "{user}@{}: an alias made by hand has this name; the sync leaves it alone",
            inputs.domain
        )),
        None => out.changes.push(Change::Create {
            username: user.to_owned(),
            address,
        }),
        Some(s) if s.state != SyncState::Active => out.changes.push(Change::Enable {
            alias: s.alias,
            username: user.to_owned(),
            address,
        }),
        Some(s) if s.targets != [address.as_str()] => out.changes.push(Change::Retarget {
            alias: s.alias,
            username: user.to_owned(),
            old: s.targets.join(", "),
            address,
        }),
        Some(_) => out.unchanged += 1,
    }
}

/// `address` is `user@domain` itself: forwarding it there would loop.
fn is_ours(address: &str, domain: &str, user: &str) -> bool {
    Address::parse(address).is_ok_and(|a| {
        a.local_part().eq_ignore_ascii_case(user)
            && crate::alias::domain_key(a.domain()).as_deref() == Some(domain)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, standing: Standing, address: Option<&str>) -> Member {
        Member {
            username: name.into(),
            standing,
            address: address.map(|a| Address::parse(a).unwrap()),
        }
    }

    fn synced(alias: i64, name: &str, state: SyncState, target: &str) -> Synced {
        Synced {
            alias,
            username: name.into(),
            state,
            targets: vec![target.into()],
        }
    }

    fn run(team: Vec<Member>, registry: &[Registered], current: &[Synced]) -> Plan {
        run_with(team, registry, current, &[])
    }

    fn run_with(
        members: Vec<Member>,
        registry: &[Registered],
        current: &[Synced],
        hand: &[&str],
    ) -> Plan {
        let team = Team {
            members,
            ..Team::default()
        };
        let registry = registry
            .iter()
            .map(|r| (r.username.clone(), r.clone()))
            .collect();
        let hand_made = hand.iter().map(|h| (*h).to_owned()).collect();
        plan(&Inputs {
            domain: "ubuntu.com",
            team: &team,
            registry: &registry,
            synced: current,
            hand_made: &hand_made,
        })
    }

    #[test]
    fn a_new_member_gets_an_alias_and_a_second_run_changes_nothing() {
        let team = || vec![member("alice", Standing::Active, Some("alice@example.org"))];
        let p = run(team(), &[], &[]);
        assert_eq!(
            p.changes,
            vec![Change::Create {
                username: "alice".into(),
                address: "alice@example.org".into()
            }]
        );
        let p = run(
            team(),
            &[],
            &[synced(1, "alice", SyncState::Active, "alice@example.org")],
        );
        assert!(p.changes.is_empty());
        assert_eq!(p.unchanged, 1);
    }

    #[test]
    fn the_registry_wins_over_the_directory_and_a_change_retargets() {
        let reg = [Registered {
            username: "alice".into(),
            address: Some("alice@new.example".into()),
            banned: false,
        }];
        let p = run(
            vec![member("alice", Standing::Active, Some("alice@example.org"))],
            &reg,
            &[synced(7, "alice", SyncState::Active, "alice@example.org")],
        );
        assert_eq!(
            p.changes,
            vec![Change::Retarget {
                alias: 7,
                username: "alice".into(),
                old: "alice@example.org".into(),
                address: "alice@new.example".into()
            }]
        );
    }

    #[test]
    fn leaving_invalid_no_coc_and_banned_disable_and_return_enables() {
        let reg = [Registered {
            username: "dave".into(),
            address: None,
            banned: true,
        }];
        let current = [
            synced(1, "alice", SyncState::Active, "a@x.example"),
            synced(2, "bob", SyncState::Active, "b@x.example"),
            synced(3, "carol", SyncState::Active, "c@x.example"),
            synced(4, "dave", SyncState::Active, "d@x.example"),
            synced(5, "erin", SyncState::Left, "e@x.example"),
        ];
        let p = run(
            vec![
                member("bob", Standing::Invalid, Some("b@x.example")),
                member("carol", Standing::NoCodeOfConduct, Some("c@x.example")),
                member("dave", Standing::Active, Some("d@x.example")),
                member("erin", Standing::Active, Some("e@x.example")),
            ],
            &reg,
            &current,
        );
        let states: Vec<(&str, SyncState)> = p
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Disable {
                    username, state, ..
                } => Some((username.as_str(), *state)),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            vec![
                ("alice", SyncState::Left),
                ("bob", SyncState::Invalid),
                ("carol", SyncState::NoCoc),
                ("dave", SyncState::Banned)
            ]
        );
        assert!(p.changes.contains(&Change::Enable {
            alias: 5,
            username: "erin".into(),
            address: "e@x.example".into()
        }));
        assert_eq!(p.disables(), 4);
    }

    #[test]
    fn unknown_members_and_members_without_an_address_are_left_alone_and_reported() {
        let current = [synced(1, "alice", SyncState::Active, "a@x.example")];
        let p = run(
            vec![
                member("alice", Standing::Unknown("HTTP 503".into()), None),
                member("bob", Standing::Active, None),
            ],
            &[],
            &current,
        );
        assert!(p.changes.is_empty(), "{p:?}");
        assert_eq!(p.problems.len(), 2);
        assert!(p.problems[0].starts_with("alice: could not be read"));
        assert!(p.problems[1].contains("member add bob ADDRESS"));
    }

    #[test]
    fn hand_made_aliases_plus_names_and_loops_are_not_touched() {
        let p = run_with(
            vec![
                member("root", Standing::Active, Some("r@x.example")),
                member("a+b", Standing::Active, Some("ab@x.example")),
                member("loop", Standing::Active, Some("LOOP@Ubuntu.com")),
                member("ok", Standing::Active, Some("ok@x.example")),
            ],
            &[],
            &[],
            &["root"],
        );
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].username(), "ok");
        assert_eq!(p.problems.len(), 3, "{:?}", p.problems);
    }

    #[test]
    fn a_disabled_member_who_stays_out_is_not_news() {
        let current = [synced(1, "bob", SyncState::Left, "b@x.example")];
        let p = run(
            vec![member("bob", Standing::Invalid, Some("b@x.example"))],
            &[],
            &current,
        );
        assert_eq!(
            p.changes,
            vec![Change::Restate {
                alias: 1,
                username: "bob".into(),
                state: SyncState::Invalid
            }]
        );
        assert!(!p.changes[0].is_news());
        // A non-member who was never synced gets nothing.
        let p = run(vec![member("carol", Standing::Invalid, None)], &[], &[]);
        assert_eq!(p, Plan::default());
    }
}

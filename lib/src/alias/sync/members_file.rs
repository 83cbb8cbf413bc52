//! The members file (`sync.members_file`): a [`Directory`] for
//! organisations without Launchpad. One member per line:
//!
//! ```text
//! # team      username  address
//! staff       alice     alice@example.org
//! staff       bob       bob@example.net
//! ```
//!
//! Fields are separated by blanks; `#` starts a comment line. Everyone
//! listed is a member in good standing (a ban is the registry's). The
//! file is read whole before anything is concluded: one bad line makes
//! every team of the file fail, since a half-read file would look like
//! members who left.

use std::collections::HashMap;
use std::path::Path;

use super::{Directory, Member, SourceError, Standing, Team, is_username};
use crate::mail::address::Address;
use crate::mail::text;

/// Largest members file read (a runaway file is an error, not a sync).
const MAX_FILE: u64 = 64 << 20;

/// The teams of a members file, read once.
#[derive(Debug)]
pub struct MembersFile {
    /// `Err`: why the file cannot be used (every team fails with it).
    teams: Result<HashMap<String, Vec<Member>>, SourceError>,
}

impl MembersFile {
    /// Reads and checks `path`.
    pub fn open(path: &Path) -> MembersFile {
        let what = || format!("members file {}", path.display());
        let teams = read(path)
            .map_err(|e| SourceError::Transport {
                what: what(),
                reason: e,
            })
            .and_then(|text| {
                parse(&text).map_err(|reason| SourceError::Malformed {
                    what: what(),
                    reason,
                })
            });
        MembersFile { teams }
    }
}

fn read(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

/// The teams a members file lists, each member once (a second line for
/// the same member of a team is an error: which address would be meant?).
pub fn parse(text: &str) -> Result<HashMap<String, Vec<Member>>, String> {
    let mut teams: HashMap<String, Vec<Member>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}", n + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [team, username, address] = fields[..] else {
            return Err(bad("not three fields: team username address"));
        };
        let team = team.strip_prefix("file:").unwrap_or(team);
        if !is_username(team) {
            return Err(bad(&format!(
                "team {:?} is not a name (lower-case letters, digits, '+', '-', '.')",
                text::bounded(team, 64)
            )));
        }
        let username = username.to_ascii_lowercase();
        if !is_username(&username) {
            return Err(bad(&format!(
                "username {:?} is not a name (lower-case letters, digits, '+', '-', '.')",
                text::bounded(&username, 64)
            )));
        }
        let address = Address::parse(address)
            .map_err(|e| bad(&format!("the address of {username} is not valid: {e}")))?;
        let members = teams.entry(team.to_owned()).or_default();
        if members.iter().any(|m| m.username == username) {
            return Err(bad(&format!("{username} is listed twice in team {team}")));
        }
        members.push(Member {
            username,
            standing: Standing::Active,
            address: Some(address),
        });
    }
    Ok(teams)
}

impl Directory for MembersFile {
    /// A team the file does not name has no members: every alias of it
    /// is disabled (with `sync.max_disable` as the guard against a typo).
    fn team(&self, team: &str) -> Result<Team, SourceError> {
        let teams = self.teams.as_ref().map_err(Clone::clone)?;
        Ok(Team {
            members: teams.get(team).cloned().unwrap_or_default(),
            skipped: Vec::new(),
            requests: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_into_teams() {
        let t = parse(
            "# team username address\n\nstaff alice alice@example.org\n\
             staff\tBob  bob@example.net\nfile:board alice alice@example.org\n",
        )
        .unwrap();
        assert_eq!(t["staff"].len(), 2);
        assert_eq!(t["staff"][1].username, "bob");
        assert_eq!(t["board"].len(), 1);
    }

    #[test]
    fn a_bad_line_is_an_error_that_names_it() {
        for (text, needle) in [
            ("staff alice\n", "line 1: not three fields"),
            ("staff alice a@x.example extra\n", "not three fields"),
            ("Staff! alice a@x.example\n", "team"),
            ("staff al/ice a@x.example\n", "username"),
            ("staff alice not-an-address\n", "address of alice"),
            (
                "staff a a@x.example\nstaff a b@x.example\n",
                "line 2: a is listed twice",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_missing_or_bad_file_fails_every_team() {
        let dir = tempfile::tempdir().unwrap();
        let missing = MembersFile::open(&dir.path().join("none"));
        assert!(matches!(
            missing.team("staff"),
            Err(SourceError::Transport { .. })
        ));
        let path = dir.path().join("members");
        std::fs::write(&path, "staff alice\n").unwrap();
        let e = MembersFile::open(&path).team("staff").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(!e.is_temporary());
        std::fs::write(&path, "staff alice alice@example.org\n").unwrap();
        let f = MembersFile::open(&path);
        assert_eq!(f.team("staff").unwrap().members.len(), 1);
        assert!(f.team("other").unwrap().members.is_empty());
    }
}

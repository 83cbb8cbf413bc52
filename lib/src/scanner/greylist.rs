//! Greylisting (`[scanner] greylist`): mail from a client network, sender
//! and recipient not seen before is deferred (4.7.1) for `greylist_delay`;
//! a real MTA retries (RFC 5321 section 4.5.4.1) and passes, much
//! bulk-sending software does not. The scheme is Evan Harris's ("The Next
//! Step in the Spam Control War: Greylisting", 2003), as postgrey runs it.
//!
//! The triple is (client network, sender, recipient):
//!
//! - the client network is the client's IPv4 /24 or IPv6 /64, so a retry
//!   from another host of the same pool passes;
//! - the sender is normalised by [`normalise_sender`] so that senders that
//!   change with every message (BATV, SRS, VERP-like counters) still match
//!   their retry;
//! - the recipient is lower-cased, its domain in A-labels.
//!
//! Privacy: the database never holds an address, a domain or an IP
//! address. A triple is stored as the first 16 bytes of HMAC-SHA256, under
//! a 32-byte key the caller passes, of its three normalised fields; with
//! the key, a guessed triple can be checked, without it nothing can be
//! learnt. Times are whole seconds since the Unix epoch.
//!
//! A triple is recorded when first seen. It passes once `delay` has gone
//! by since then, at any later retry, and its last-seen time is refreshed
//! at every sighting; a triple not seen for `expiry` is forgotten (and
//! starts again). Expired rows are deleted at the first check of each
//! process and then at most once an hour, through an index on the
//! last-seen time. Loopback clients are never greylisted.
//!
//! The file is SQLite (WAL, so concurrent scanners do not wait for each
//! other's reads), created with mode 0600 and marked with its own
//! `application_id`: a file that is not ours is refused, never written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::alias::domain_key;

/// `PRAGMA application_id`: "PGRY".
const APPLICATION_ID: i64 = 0x5047_5259;
/// `PRAGMA user_version` of the schema this code writes.
const SCHEMA_VERSION: i64 = 1;
/// How long a statement waits for another writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Expired rows are deleted at most this often by one process.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Bytes of the HMAC kept as a triple's key.
const KEY_BYTES: usize = 16;
/// SRS and BATV wrappers taken off one sender, at most.
const MAX_WRAPPERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE triples(
    key BLOB PRIMARY KEY,             -- HMAC-SHA256 (16 bytes) of the triple
    first_seen INTEGER NOT NULL,      -- unix time
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX triples_last_seen ON triples(last_seen);
";

#[derive(Debug, thiserror::Error)]
pub enum GreylistError {
    #[error("greylist database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("greylist database {path}: cannot create it: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a greylist database of postern (another program's file, or damaged); \
         move it away and postern-scanner will create a new one"
    )]
    Foreign { path: PathBuf },
    #[error(
        "greylist database {path} has schema version {found}; this postern reads {SCHEMA_VERSION}"
    )]
    Version { path: PathBuf, found: i64 },
}

/// Whether the message may pass now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreyVerdict {
    /// Every recipient's triple has waited long enough.
    Pass,
    /// Defer; the longest time still to wait of its triples.
    Wait { remaining: Duration },
}

/// The greylisting database, one connection kept open.
pub struct Greylist {
    conn: Connection,
    path: PathBuf,
    /// Keyed once; wiped when dropped (the `zeroize` feature of `hmac`).
    mac: Hmac<Sha256>,
    delay: i64,
    expiry: i64,
    last_prune: Option<SystemTime>,
}

impl Greylist {
    /// Opens the database at `path`, creating it (mode 0600) with its
    /// schema if it does not exist or is empty.
    pub fn open(
        path: &Path,
        mut key: [u8; 32],
        delay: Duration,
        expiry: Duration,
    ) -> Result<Greylist, GreylistError> {
        let mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key length");
        key.zeroize();
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|source| GreylistError::Create {
                path: path.to_owned(),
                source,
            })?;
        let sql = |source: rusqlite::Error| sql_error(path, source);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let mut grey = Greylist {
            conn,
            path: path.to_owned(),
            mac,
            delay: seconds(delay),
            expiry: seconds(expiry),
            last_prune: None,
        };
        // Looked at before anything is written: a foreign file stays as it is.
        if !grey.schema_ready()? {
            let created = grey.write(|tx| match identity(tx)? {
                Identity::Empty => {
                    tx.execute_batch(SCHEMA)?;
                    tx.execute_batch(&format!(
                        "PRAGMA application_id = {APPLICATION_ID}; \
                         PRAGMA user_version = {SCHEMA_VERSION};"
                    ))?;
                    Ok(true)
                }
                // Another scanner created it meanwhile (its version is
                // checked below), or it is not ours.
                Identity::Ours(_) => Ok(true),
                Identity::Foreign => Ok(false),
            })?;
            if !created || !grey.schema_ready()? {
                return Err(GreylistError::Foreign { path: grey.path });
            }
        }
        grey.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| grey.sql(e))?;
        Ok(grey)
    }

    /// True when the file holds our schema, false when it is empty; an
    /// error for anything else.
    fn schema_ready(&self) -> Result<bool, GreylistError> {
        let identity = identity(&self.conn).map_err(|e| self.sql(e))?;
        match identity {
            Identity::Ours(SCHEMA_VERSION) => Ok(true),
            Identity::Ours(found) => Err(GreylistError::Version {
                path: self.path.clone(),
                found,
            }),
            Identity::Empty => Ok(false),
            Identity::Foreign => Err(GreylistError::Foreign {
                path: self.path.clone(),
            }),
        }
    }

    /// Records the message's triples, one per recipient, in one
    /// transaction, and says whether it may pass at `now`.
    pub fn check(
        &mut self,
        client_ip: IpAddr,
        sender: &str,
        recipients: &[&str],
        now: SystemTime,
    ) -> Result<GreyVerdict, GreylistError> {
        if client_ip.to_canonical().is_loopback() || recipients.is_empty() {
            return Ok(GreyVerdict::Pass);
        }
        let network = client_network(client_ip);
        let sender = normalise_sender(sender);
        let keys: Vec<[u8; KEY_BYTES]> = recipients
            .iter()
            .map(|r| self.key(&network, &sender, &normalise_recipient(r)))
            .collect();
        let now_s = unix(now);
        let (delay, expiry) = (self.delay, self.expiry);
        let prune = self.last_prune.is_none_or(|t| {
            now.duration_since(t)
                .map_or(true, |since| since >= PRUNE_EVERY)
        });
        let longest = self.write(|tx| {
            if prune {
                tx.execute(
                    "DELETE FROM triples WHERE last_seen <= ?1",
                    [now_s.saturating_sub(expiry)],
                )?;
            }
            let mut longest = 0;
            for key in &keys {
                let first = tx
                    .query_row(
                        "SELECT first_seen, last_seen FROM triples WHERE key = ?1",
                        [key],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?
                    .filter(|&(_, last)| last.saturating_add(expiry) > now_s)
                    .map_or(now_s, |(first, _)| first);
                tx.execute(
                    "INSERT INTO triples(key, first_seen, last_seen) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(key) DO UPDATE \
                     SET first_seen = excluded.first_seen, last_seen = excluded.last_seen",
                    params![key, first, now_s],
                )?;
                // A clock set back does not make a triple wait longer than
                // the delay.
                let remaining = first.saturating_add(delay).saturating_sub(now_s);
                longest = longest.max(remaining.clamp(0, delay));
            }
            Ok(longest)
        })?;
        if prune {
            self.last_prune = Some(now);
        }
        Ok(match longest {
            0 => GreyVerdict::Pass,
            s => GreyVerdict::Wait {
                remaining: Duration::from_secs(s.unsigned_abs()),
            },
        })
    }

    /// The stored key of a triple: each field with its length before it,
    /// so no two triples run together into the same bytes.
    fn key(&self, network: &str, sender: &str, recipient: &str) -> [u8; KEY_BYTES] {
        let mut mac = self.mac.clone();
        mac.update(b"postern greylist 1");
        for field in [network, sender, recipient] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        let mut key = [0; KEY_BYTES];
        key.copy_from_slice(&mac.finalize().into_bytes()[..KEY_BYTES]);
        key
    }

    fn sql(&self, source: rusqlite::Error) -> GreylistError {
        sql_error(&self.path, source)
    }

    /// Runs `f` in one write transaction (taken at once, so two scanners
    /// queue instead of failing half-way) and commits it.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<T, GreylistError> {
        let path = self.path.clone();
        let sql = |source| sql_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let value = f(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(value)
    }
}

/// SQLite's "not a database" (a file of other bytes, or damaged) is said
/// in our words.
fn sql_error(path: &Path, source: rusqlite::Error) -> GreylistError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => GreylistError::Foreign {
            path: path.to_owned(),
        },
        _ => GreylistError::Sqlite {
            path: path.to_owned(),
            source,
        },
    }
}

enum Identity {
    /// Our `application_id`, with this `user_version`.
    Ours(i64),
    /// No id, no version, no tables: a new file.
    Empty,
    Foreign,
}

fn identity(conn: &Connection) -> Result<Identity, rusqlite::Error> {
    let id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    Ok(match (id, version, objects) {
        (APPLICATION_ID, v, _) => Identity::Ours(v),
        (0, 0, 0) => Identity::Empty,
        _ => Identity::Foreign,
    })
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, seconds)
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The client's network in a triple: its IPv4 /24 or IPv6 /64, as
/// `192.0.2.0/24` (an IPv4 address written as IPv6 is taken as IPv4).
pub fn client_network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let [a, b, c, _] = a.octets();
            format!("{}/24", Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// The sender as a triple holds it, so that a sender address made anew
/// for each message still matches its retry:
///
/// 1. angle brackets dropped; the null sender is `<>`;
/// 2. lower case (the whole address);
/// 3. SRS (`SRS0=HASH=TT=orig.domain=orig-local@forwarder`, and SRS1's
///    `SRS1=HASH=first.hop==HASH=TT=orig.domain=orig-local@forwarder`, any
///    of the separators `=`, `+`, `-` after the tag) becomes the original
///    `orig-local@orig.domain`: the hash and day stamp change, the
///    original does not, and the forwarder is in the client network
///    already. An SRS local part that does not parse becomes `srs`, at
///    the forwarder's domain;
/// 4. BATV (`prvs=TAG=user@domain`) becomes `user@domain`; steps 3 and 4
///    repeat, up to four wrappers;
/// 5. every run of digits in the local part becomes `#`
///    (`bounce-1234-5678@` and `bounce-9-10@` are one sender);
/// 6. the domain in A-labels.
///
/// Tags of letters (VERP with the recipient's address in it, hex ids)
/// are not folded: such a sender waits again each time it changes.
pub fn normalise_sender(sender: &str) -> String {
    let s = strip_brackets(sender.trim());
    if s.is_empty() {
        return "<>".into();
    }
    let lower = s.to_lowercase();
    let (mut local, mut domain) = lower.rsplit_once('@').unwrap_or((lower.as_str(), ""));
    for _ in 0..MAX_WRAPPERS {
        if let Some(user) = batv_user(local) {
            local = user;
        } else if let Some((original_local, original_domain)) = srs_original(local) {
            local = original_local;
            domain = original_domain.unwrap_or(domain);
        } else {
            break;
        }
    }
    let domain = domain_key(domain).unwrap_or_else(|| domain.to_owned());
    format!("{}@{domain}", fold_digits(local))
}

/// The recipient as a triple holds it: lower case, the domain in A-labels.
pub fn normalise_recipient(recipient: &str) -> String {
    let lower = strip_brackets(recipient.trim()).to_lowercase();
    match lower.rsplit_once('@') {
        Some((local, domain)) => match domain_key(domain) {
            Some(d) => format!("{local}@{d}"),
            None => lower,
        },
        None => lower,
    }
}

fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s)
}

/// `user` of a BATV local part `prvs=TAG=user` (draft-levine-smtp-batv).
fn batv_user(local: &str) -> Option<&str> {
    let (_tag, user) = local.strip_prefix("prvs=")?.split_once('=')?;
    (!user.is_empty()).then_some(user)
}

/// The original local part and domain inside an SRS local part (lower
/// case); `("srs", None)` for one that starts like SRS and does not parse.
fn srs_original(local: &str) -> Option<(&str, Option<&str>)> {
    let b = local.as_bytes();
    if b.len() < 5 || !b.starts_with(b"srs") || !matches!(b[4], b'=' | b'+' | b'-') {
        return None;
    }
    let srs0_fields = match b[3] {
        b'0' => Some(&local[5..]),
        b'1' => {
            // HASH=first.hop=<separator>HASH=TT=domain=local
            let mut fields = local[5..].splitn(3, '=');
            let (_hash, _hop) = (fields.next(), fields.next());
            fields
                .next()
                .filter(|o| matches!(o.as_bytes().first(), Some(b'=' | b'+' | b'-')))
                .map(|o| &o[1..])
        }
        _ => return None,
    };
    let original = srs0_fields.and_then(|rest| {
        let mut f = rest.splitn(4, '=');
        let (_hash, _stamp) = (f.next()?, f.next()?);
        let (domain, user) = (f.next()?, f.next()?);
        (!domain.is_empty() && !user.is_empty()).then_some((user, Some(domain)))
    });
    Some(original.unwrap_or(("srs", None)))
}

/// Every run of ASCII digits as one `#`.
fn fold_digits(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    let mut in_digits = false;
    for c in local.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const KEY: [u8; 32] = [7; 32];
    const DELAY: Duration = Duration::from_secs(300);
    const EXPIRY: Duration = Duration::from_secs(35 * 86400);

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn ip(a: &str) -> IpAddr {
        a.parse().unwrap()
    }

    fn open(dir: &tempfile::TempDir) -> Greylist {
        Greylist::open(&dir.path().join("greylist.db"), KEY, DELAY, EXPIRY).unwrap()
    }

    fn wait(s: u64) -> GreyVerdict {
        GreyVerdict::Wait {
            remaining: Duration::from_secs(s),
        }
    }

    fn rows(g: &Greylist) -> i64 {
        g.conn
            .query_row("SELECT count(*) FROM triples", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_triple_waits_and_its_retry_passes_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = open(&dir);
        let c = ip("192.0.2.10");
        let to = ["bob@example.org"];
        assert_eq!(
            g.check(c, "alice@example.net", &to, at(0)).unwrap(),
            wait(300)
        );
        assert_eq!(
            g.check(c, "alice@example.net", &to, at(100)).unwrap(),
            wait(200)
        );
        assert_eq!(
            g.check(c, "alice@example.net", &to, at(299)).unwrap(),
            wait(1)
        );
        assert_eq!(
            g.check(c, "alice@example.net", &to, at(300)).unwrap(),
            GreyVerdict::Pass
        );
        // From another host of the /24, in another case: the same triple.
        let c2 = ip("192.0.2.200");
        assert_eq!(
            g.check(c2, "<ALICE@example.net>", &["Bob@EXAMPLE.org"], at(5000))
                .unwrap(),
            GreyVerdict::Pass
        );
        // Another network, sender or recipient: new.
        assert_eq!(
            g.check(ip("192.0.3.10"), "alice@example.net", &to, at(5000))
                .unwrap(),
            wait(300)
        );
        assert_eq!(
            g.check(c, "carol@example.net", &to, at(5000)).unwrap(),
            wait(300)
        );
        assert_eq!(
            g.check(c, "alice@example.net", &["dave@example.org"], at(5000))
                .unwrap(),
            wait(300)
        );
        // The state survives the process.
        drop(g);
        let mut g = open(&dir);
        assert_eq!(
            g.check(c, "alice@example.net", &to, at(6000)).unwrap(),
            GreyVerdict::Pass
        );
        assert_eq!(
            g.check(c, "carol@example.net", &to, at(5100)).unwrap(),
            wait(200)
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_by_slash_64() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = open(&dir);
        let to = ["bob@example.org"];
        assert_eq!(
            g.check(ip("2001:db8:1:2::10"), "a@example.net", &to, at(0))
                .unwrap(),
            wait(300)
        );
        assert_eq!(
            g.check(ip("2001:db8:1:2:ffff::1"), "a@example.net", &to, at(400))
                .unwrap(),
            GreyVerdict::Pass
        );
        assert_eq!(
            g.check(ip("2001:db8:1:3::10"), "a@example.net", &to, at(400))
                .unwrap(),
            wait(300)
        );
        assert_eq!(client_network(ip("::ffff:192.0.2.77")), "192.0.2.0/24");
        assert_eq!(
            client_network(ip("2001:db8:1:2:3:4:5:6")),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn every_recipient_must_have_waited() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = open(&dir);
        let c = ip("198.51.100.1");
        g.check(c, "a@example.net", &["old@example.org"], at(0))
            .unwrap();
        let both = ["old@example.org", "new@example.org"];
        assert_eq!(
            g.check(c, "a@example.net", &both, at(1000)).unwrap(),
            wait(300)
        );
        assert_eq!(
            g.check(c, "a@example.net", &both, at(1100)).unwrap(),
            wait(200)
        );
        assert_eq!(
            g.check(c, "a@example.net", &both, at(1300)).unwrap(),
            GreyVerdict::Pass
        );
        assert_eq!(
            g.check(c, "a@example.net", &[], at(0)).unwrap(),
            GreyVerdict::Pass
        );
    }

    #[test]
    fn loopback_is_never_greylisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = open(&dir);
        for c in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                g.check(ip(c), "a@example.net", &["b@example.org"], at(0))
                    .unwrap(),
                GreyVerdict::Pass,
                "{c}"
            );
        }
        assert_eq!(rows(&g), 0);
    }

    #[test]
    fn a_triple_not_seen_for_the_expiry_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = open(&dir);
        let c = ip("192.0.2.1");
        let to = ["b@example.org"];
        let expiry = EXPIRY.as_secs();
        g.check(c, "a@example.net", &to, at(0)).unwrap();
        // Seen again within the expiry: kept, and its last sighting moves.
        assert_eq!(
            g.check(c, "a@example.net", &to, at(expiry - 1)).unwrap(),
            GreyVerdict::Pass
        );
        assert_eq!(
            g.check(c, "a@example.net", &to, at(2 * expiry - 2))
                .unwrap(),
            GreyVerdict::Pass
        );
        // Then not for the expiry: it starts again.
        assert_eq!(
            g.check(c, "a@example.net", &to, at(3 * expiry - 2))
                .unwrap(),
            wait(300)
        );
        // Expired rows are deleted by the next prune, at most once an hour.
        g.check(c, "other@example.net", &to, at(3 * expiry))
            .unwrap();
        assert_eq!(rows(&g), 2);
        g.check(c, "third@example.net", &to, at(4 * expiry))
            .unwrap();
        assert_eq!(rows(&g), 1, "the two older rows are gone");
        g.check(c, "fourth@example.net", &to, at(5 * expiry))
            .unwrap();
        g.check(c, "fifth@example.net", &to, at(5 * expiry + 10))
            .unwrap();
        assert_eq!(rows(&g), 2, "no prune again within the hour");
    }

    #[test]
    fn a_clock_set_back_waits_no_longer_than_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = open(&dir);
        let c = ip("192.0.2.1");
        g.check(c, "a@example.net", &["b@example.org"], at(10_000))
            .unwrap();
        assert_eq!(
            g.check(c, "a@example.net", &["b@example.org"], at(0))
                .unwrap(),
            wait(300)
        );
    }

    #[test]
    fn the_file_is_private_and_holds_no_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greylist.db");
        let mut g = Greylist::open(&path, KEY, DELAY, EXPIRY).unwrap();
        let c = ip("203.0.113.45");
        g.check(
            c,
            "alice.secret@sender.example",
            &["bob.hidden@rcpt.example"],
            at(0),
        )
        .unwrap();
        g.check(
            c,
            "alice.secret@sender.example",
            &["bob.hidden@rcpt.example"],
            at(400),
        )
        .unwrap();
        drop(g);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(bytes.len() > 1000);
        for needle in [
            &b"alice"[..],
            b"secret",
            b"sender.example",
            b"bob.hidden",
            b"rcpt.example",
            b"203.0.113",
            &[203, 0, 113],
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{:?} found in the database",
                String::from_utf8_lossy(needle)
            );
        }
    }

    #[test]
    fn the_key_changes_every_stored_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greylist.db");
        let mut g = Greylist::open(&path, KEY, DELAY, EXPIRY).unwrap();
        g.check(ip("192.0.2.1"), "a@example.net", &["b@example.org"], at(0))
            .unwrap();
        drop(g);
        let mut g = Greylist::open(&path, [8; 32], DELAY, EXPIRY).unwrap();
        assert_eq!(
            g.check(
                ip("192.0.2.1"),
                "a@example.net",
                &["b@example.org"],
                at(1000)
            )
            .unwrap(),
            wait(300)
        );
    }

    #[test]
    fn a_file_that_is_not_ours_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        let bytes = b"this is not an SQLite file at all, just text\n".repeat(200);
        std::fs::write(&garbage, &bytes).unwrap();
        let e = Greylist::open(&garbage, KEY, DELAY, EXPIRY).err().unwrap();
        assert!(matches!(e, GreylistError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("garbage.db") && e.to_string().contains("move it away"));
        assert_eq!(std::fs::read(&garbage).unwrap(), bytes);

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE triples(key BLOB, first_seen INTEGER, last_seen INTEGER)")
            .unwrap();
        let before = std::fs::read(&other).unwrap();
        let e = Greylist::open(&other, KEY, DELAY, EXPIRY).err().unwrap();
        assert!(matches!(e, GreylistError::Foreign { .. }), "{e}");
        assert_eq!(std::fs::read(&other).unwrap(), before);

        let newer = dir.path().join("newer.db");
        Connection::open(&newer)
            .unwrap()
            .execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 9"
            ))
            .unwrap();
        let e = Greylist::open(&newer, KEY, DELAY, EXPIRY).err().unwrap();
        assert!(matches!(e, GreylistError::Version { found: 9, .. }), "{e}");

        let e = Greylist::open(&dir.path().join("no/such/dir.db"), KEY, DELAY, EXPIRY)
            .err()
            .unwrap();
        assert!(matches!(e, GreylistError::Create { .. }), "{e}");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greylist.db");
        let mut g = Greylist::open(&path, KEY, DELAY, EXPIRY).unwrap();
        g.check(ip("192.0.2.1"), "a@example.net", &["b@example.org"], at(0))
            .unwrap();
        g.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        drop(g);
        let mut bytes = std::fs::read(&path).unwrap();
        // Keep SQLite's header magic, break the page size and the pages.
        for b in &mut bytes[16..] {
            *b = 0xff;
        }
        std::fs::write(&path, &bytes).unwrap();
        let e = Greylist::open(&path, KEY, DELAY, EXPIRY).err().unwrap();
        assert!(matches!(e, GreylistError::Foreign { .. }), "{e}");
    }

    #[test]
    fn senders_are_normalised_so_retries_match() {
        for (given, kept) in [
            ("", "<>"),
            ("<>", "<>"),
            ("  <Alice@Example.NET>  ", "alice@example.net"),
            ("prvs=1234abcdef=alice@example.net", "alice@example.net"),
            ("PRVS=0987zyxwvu=Alice@Example.net", "alice@example.net"),
            ("prvs=", "prvs=@"),
            (
                "SRS0=HHHH=TT=example.net=alice@forwarder.example",
                "alice@example.net",
            ),
            (
                "srs0+hhhh=tt=example.net=alice@forwarder.example",
                "alice@example.net",
            ),
            (
                "SRS1=HHHH=first.example==HHHH=TT=example.net=alice@forwarder.example",
                "alice@example.net",
            ),
            (
                "SRS1=XXXX=first.example=-YYYY=TT=example.net=al=ice@fw.example",
                "al=ice@example.net",
            ),
            ("SRS0=broken@forwarder.example", "srs@forwarder.example"),
            ("SRS1=a=b@forwarder.example", "srs@forwarder.example"),
            (
                "SRS0=HHHH=TT=example.net=prvs=4321abcdef=alice@fw.example",
                "alice@example.net",
            ),
            ("bounce-12345-678@lists.example", "bounce-#-#@lists.example"),
            ("bounce-9-1@lists.example", "bounce-#-#@lists.example"),
            ("srsly@example.net", "srsly@example.net"),
            ("user@BÜCHER.example", "user@xn--bcher-kva.example"),
            ("no-domain", "no-domain@"),
        ] {
            assert_eq!(normalise_sender(given), kept, "{given:?}");
        }
        // Wrappers nested without end stop after four.
        let deep = format!("{}alice@example.net", "prvs=t=".repeat(10));
        assert_eq!(
            normalise_sender(&deep),
            format!("{}alice@example.net", "prvs=t=".repeat(6))
        );
        assert_eq!(
            normalise_recipient("<Bob@BÜCHER.example>"),
            "bob@xn--bcher-kva.example"
        );
    }

    #[test]
    fn a_batv_retry_passes() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = open(&dir);
        let c = ip("192.0.2.1");
        let to = ["b@example.org"];
        g.check(c, "prvs=1111aaaaaa=a@example.net", &to, at(0))
            .unwrap();
        assert_eq!(
            g.check(c, "prvs=2222bbbbbb=a@example.net", &to, at(400))
                .unwrap(),
            GreyVerdict::Pass
        );
    }
}

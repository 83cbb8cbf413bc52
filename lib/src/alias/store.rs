//! The alias store (postern-alias(8)): one SQLite file of domains,
//! aliases, per-domain settings and the rate-limit counters.
//!
//! The rewriter reads it with one indexed query per recipient; regex and
//! catch-all rules of a domain are read once and kept compiled until
//! another connection changes the file (SQLite's `data_version`).
//! `postern-alias` writes it, each command in one transaction, so a
//! reader sees a change whole or not at all (WAL: readers never wait).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::{Action, Origin, Pattern, Rule};
use crate::config::EncryptPolicy;

/// `PRAGMA user_version` of the schema this code writes (1: domains,
/// aliases, settings; 2: encryption; 3: team sync).
const SCHEMA_VERSION: i64 = 3;
/// How long a statement waits for another writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE domains(
    name TEXT PRIMARY KEY,            -- lower case, IDNs as A-labels
    mode TEXT NOT NULL CHECK (mode IN ('store', 'dns')),
    token TEXT NOT NULL,              -- postern-site-verification value
    verified INTEGER NOT NULL DEFAULT 0,  -- unix time of verification, 0: not
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE aliases(
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('exact', 'regex', 'catchall')),
    name TEXT NOT NULL,               -- local part, regex source, or ''
    action TEXT NOT NULL CHECK (action IN ('forward', 'drop', 'defer', 'refuse')),
    targets TEXT NOT NULL,            -- one per line
    enabled INTEGER NOT NULL DEFAULT 1,
    description TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    UNIQUE (domain, kind, name)
);
CREATE INDEX aliases_created ON aliases(domain, created);
CREATE TABLE settings(
    domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (domain, key)
) WITHOUT ROWID;
CREATE TABLE counters(
    key TEXT NOT NULL,                -- 'domain:NAME' or 'sender:' + keyed hash
    day INTEGER NOT NULL,             -- unix time / 86400
    count INTEGER NOT NULL,
    PRIMARY KEY (key, day)
) WITHOUT ROWID;
CREATE TABLE secrets(
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
";

/// Schema 2: how an exact alias is encrypted (postern-encryptor(1)).
const SCHEMA_2: &str = "
CREATE TABLE alias_crypto(
    alias INTEGER PRIMARY KEY REFERENCES aliases(id) ON DELETE CASCADE,
    key BLOB,                         -- binary transferable public key
    fingerprint TEXT,
    any_user_id INTEGER NOT NULL DEFAULT 0,  -- used for every target
    encrypt TEXT CHECK (encrypt IN ('if-key', 'require', 'never')),
    wkd INTEGER,                      -- NULL: the domain's setting
    updated INTEGER NOT NULL
);
";

/// Schema 3: team sync (`postern-alias sync`, `member`).
const SCHEMA_3: &str = "
CREATE TABLE members(                 -- the member registry
    username TEXT PRIMARY KEY,        -- the directory's name, lower case
    address TEXT,                     -- where their mail goes (NULL: the directory's)
    banned INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE synced(                  -- the aliases the sync keeps
    alias INTEGER PRIMARY KEY REFERENCES aliases(id) ON DELETE CASCADE,
    team TEXT NOT NULL,               -- '~NAME' or 'file:NAME'
    username TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'left', 'invalid', 'no-coc', 'banned')),
    updated INTEGER NOT NULL
);
CREATE TABLE sync_reported(           -- problems already told to the admins
    domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
    problem TEXT NOT NULL,
    first INTEGER NOT NULL,
    PRIMARY KEY (domain, problem)
) WITHOUT ROWID;
CREATE TABLE sync_outbox(             -- notifications written, not yet handed on
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL,
    created INTEGER NOT NULL,
    recipients TEXT NOT NULL,         -- one address per line
    message BLOB NOT NULL
);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alias store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("alias store {path} does not exist (create it with postern-alias domain add)")]
    Missing { path: PathBuf },
    #[error("alias store {path} has schema version {found}; this postern reads {SCHEMA_VERSION}")]
    Version { path: PathBuf, found: i64 },
    #[error("domain {0} is not in the alias store")]
    NoDomain(String),
    #[error("domain {0} is already in the alias store")]
    DomainExists(String),
    #[error("{0}")]
    Invalid(String),
}

impl crate::exit::ToFailure for StoreError {
    fn to_failure(&self) -> crate::exit::Failure {
        use crate::exit::{Failure, Sysexit};
        use crate::mail::status;
        match self {
            StoreError::Sqlite { .. } => Failure::tempfail(self.to_string()),
            StoreError::Missing { .. } | StoreError::Version { .. } => {
                Failure::config(self.to_string())
            }
            _ => Failure::new(Sysexit::DataErr, status::BAD_ARGUMENTS, self.to_string()),
        }
    }
}

/// How a domain's aliases are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainMode {
    /// The store's rows only.
    Store,
    /// The store's rows, then the domain's TXT records.
    Dns,
}

impl DomainMode {
    fn as_str(self) -> &'static str {
        match self {
            DomainMode::Store => "store",
            DomainMode::Dns => "dns",
        }
    }
}

/// A domain of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub mode: DomainMode,
    pub token: String,
    /// When it was verified (unix time), if it was.
    pub verified: Option<i64>,
    pub created: i64,
}

/// An alias row as `postern-alias` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRow {
    pub id: i64,
    pub domain: String,
    pub pattern: Pattern,
    pub action: Action,
    pub targets: Vec<String>,
    pub enabled: bool,
    pub description: String,
    pub created: i64,
}

impl AliasRow {
    /// The rule the rewriter applies: a disabled alias refuses its mail
    /// (5.2.1) rather than falling through to a catch-all.
    pub fn rule(&self) -> Rule {
        Rule {
            pattern: self.pattern.clone(),
            action: if self.enabled {
                self.action
            } else {
                Action::Refuse
            },
            targets: self.targets.clone(),
            origin: Origin::Store { id: self.id },
        }
    }

    /// `name@domain`, `/regex/@domain` or `*@domain`, as the tools print it.
    pub fn label(&self) -> String {
        format!("{}@{}", pattern_label(&self.pattern), self.domain)
    }
}

/// `name`, `/regex/` or `*`.
pub fn pattern_label(p: &Pattern) -> String {
    match p {
        Pattern::Exact(n) => n.clone(),
        Pattern::Regex(r) => format!("/{r}/"),
        Pattern::CatchAll => "*".into(),
    }
}

/// A new or replaced alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlias {
    pub domain: String,
    pub pattern: Pattern,
    pub action: Action,
    pub targets: Vec<String>,
    pub description: String,
}

/// The regex and catch-all rules of a domain, compiled once.
#[derive(Debug, Default)]
pub struct DomainPatterns {
    pub regexes: Vec<(Rule, regex::Regex)>,
    pub catch_all: Option<Rule>,
}

/// Per-domain settings that later stages read, with their defaults.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "has_virus_protection",
        "true",
        "scan for viruses with clamd",
    ),
    (
        "has_executable_protection",
        "true",
        "refuse or tag executable attachments",
    ),
    ("has_phishing_protection", "true", "look for phishing"),
    ("has_adult_content_protection", "true", "tag adult content"),
    (
        "executable_action",
        "",
        "reject or tag executable attachments (empty: scanner.executable_action)",
    ),
    (
        "phishing_action",
        "",
        "reject or tag phishing (empty: scanner.phishing_action)",
    ),
    (
        "adult_action",
        "",
        "reject or tag adult content (empty: scanner.adult_action)",
    ),
    (
        "allow_list",
        "",
        "clients and senders whose mail skips the sender checks (IP, CIDR, host, *.domain, user@domain, @domain; comma-separated)",
    ),
    (
        "deny_list",
        "",
        "clients and senders whose mail is refused with 5.7.1 (same forms)",
    ),
    (
        "retention_days",
        "0",
        "days mail is kept in mailboxes (0: no limit)",
    ),
    (
        "sent_retention_days",
        "",
        "days a redacted copy of delivered mail stays in the spool (empty: queue.retention_time; 0: none)",
    ),
    (
        "messages_per_day",
        "",
        "messages a day to the domain (empty: rewriter.messages_per_day_per_domain)",
    ),
    (
        "admins",
        "",
        "addresses told about changes, comma-separated",
    ),
    (
        "encrypt",
        "",
        "if-key, require or never: OpenPGP encryption (empty: encryptor.policy)",
    ),
    (
        "wkd",
        "",
        "look keys up by Web Key Directory (empty: wkd.enabled)",
    ),
];

/// Checks a setting's value against its kind; returns it normalised.
pub fn check_setting(key: &str, value: &str) -> Result<String, StoreError> {
    let bad = |what: &str| StoreError::Invalid(format!("setting {key}: {what}"));
    if !SETTINGS.iter().any(|(k, _, _)| *k == key) {
        return Err(StoreError::Invalid(format!(
            "unknown setting {key} (known: {})",
            SETTINGS
                .iter()
                .map(|(k, _, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let v = value.trim();
    if key.starts_with("has_") {
        return match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok("true".into()),
            "false" | "no" | "off" | "0" => Ok("false".into()),
            _ => Err(bad("must be true or false")),
        };
    }
    if key == "admins" {
        let mut out = Vec::new();
        for a in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            crate::mail::address::Address::parse(a)
                .map_err(|e| bad(&format!("an address is not valid: {e}")))?;
            out.push(a.to_owned());
        }
        return Ok(out.join(","));
    }
    if key == "encrypt" {
        return match v.to_ascii_lowercase().as_str() {
            "" => Ok(String::new()),
            p @ ("if-key" | "require" | "never") => Ok(p.to_owned()),
            _ => Err(bad("must be if-key, require or never (or empty)")),
        };
    }
    if key.ends_with("_action") {
        return match v.to_ascii_lowercase().as_str() {
            "" => Ok(String::new()),
            a @ ("reject" | "tag") => Ok(a.to_owned()),
            _ => Err(bad("must be reject or tag (or empty)")),
        };
    }
    if key == "allow_list" || key == "deny_list" {
        return crate::scanner::lists::List::parse_str(v)
            .map(|_| v.to_owned())
            .map_err(|e| bad(&e.to_string()));
    }
    if key == "wkd" {
        return match v.to_ascii_lowercase().as_str() {
            "" => Ok(String::new()),
            "true" | "yes" | "on" | "1" => Ok("true".into()),
            "false" | "no" | "off" | "0" => Ok("false".into()),
            _ => Err(bad("must be true or false (or empty)")),
        };
    }
    if v.is_empty() && (key == "messages_per_day" || key == "sent_retention_days") {
        return Ok(String::new());
    }
    v.parse::<u64>()
        .map(|n| n.to_string())
        .map_err(|_| bad("must be a whole number"))
}

/// The alias store, one connection kept open.
pub struct AliasStore {
    conn: Connection,
    path: PathBuf,
    /// `PRAGMA data_version` when `patterns` was filled.
    seen_version: i64,
    patterns: HashMap<String, Arc<DomainPatterns>>,
    /// Domains looked up since `seen_version` (absent ones as `None`):
    /// the rewriter asks for a domain for the recipient, each target and
    /// the sender, and a query each costs a read lock on the file.
    domains: HashMap<String, Option<Domain>>,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl AliasStore {
    /// Opens an existing store (the rewriter: a missing store is a
    /// configuration error unless the caller treats it as empty).
    pub fn open(path: &Path) -> Result<AliasStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        AliasStore::connect(path, false)
    }

    /// Opens a store, creating it (mode 0640 by the umask's leave) if it
    /// does not exist: `postern-alias`.
    pub fn open_or_create(path: &Path) -> Result<AliasStore, StoreError> {
        AliasStore::connect(path, true)
    }

    fn connect(path: &Path, create: bool) -> Result<AliasStore, StoreError> {
        let sql = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        )
        .map_err(sql)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        let mut store = AliasStore {
            conn,
            path: path.to_owned(),
            seen_version: -1,
            patterns: HashMap::new(),
            domains: HashMap::new(),
        };
        match version {
            SCHEMA_VERSION => {}
            0..=2 => store.write(|tx| {
                // Another process may have created or upgraded it meanwhile.
                let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                if v == 0 {
                    tx.execute_batch(SCHEMA)?;
                }
                if v <= 1 {
                    tx.execute_batch(SCHEMA_2)?;
                }
                if v <= 2 {
                    tx.execute_batch(SCHEMA_3)?;
                    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
                }
                Ok(())
            })?,
            found => {
                return Err(StoreError::Version {
                    path: path.to_owned(),
                    found,
                });
            }
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` in one write transaction (taken at once, so two writers
    /// queue instead of failing half-way) and commits it.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let value = f(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(value)
    }

    /// Runs `f` on the connection, outside any transaction of ours.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        f(&self.conn).map_err(|e| self.sql(e))
    }

    // ---- reading, for the rewriter ----------------------------------

    pub fn domain(&self, name: &str) -> Result<Option<Domain>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT name, mode, token, verified, created FROM domains WHERE name = ?1",
            )
            .and_then(|mut s| s.query_row([name], domain_row).optional())
            .map_err(|e| self.sql(e))
    }

    /// Empties the caches when another connection changed the file.
    fn forget_if_changed(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if version != self.seen_version {
            self.patterns.clear();
            self.domains.clear();
            self.seen_version = version;
        }
        Ok(())
    }

    /// `domain`, from the cache while the file is unchanged. The caller
    /// calls `begin_job` once per job, so a change made by postern-alias
    /// is seen by the next job.
    pub fn domain_cached(&mut self, name: &str) -> Result<Option<Domain>, StoreError> {
        if let Some(d) = self.domains.get(name) {
            return Ok(d.clone());
        }
        let d = self.domain(name)?;
        if self.domains.len() >= 100_000 {
            self.domains.clear();
        }
        self.domains.insert(name.to_owned(), d.clone());
        Ok(d)
    }

    /// Called before each job: drops what another process has changed.
    pub fn begin_job(&mut self) -> Result<(), StoreError> {
        self.forget_if_changed()
    }

    pub fn domains(&self) -> Result<Vec<Domain>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached(
                "SELECT name, mode, token, verified, created FROM domains ORDER BY name",
            )
            .map_err(|e| self.sql(e))?;
        s.query_map([], domain_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }

    /// The exact alias `local` of `domain` (both in key form).
    pub fn exact(&self, domain: &str, local: &str) -> Result<Option<AliasRow>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ALIAS_COLUMNS} FROM aliases \
                 WHERE domain = ?1 AND kind = 'exact' AND name = ?2"
            ))
            .and_then(|mut s| s.query_row([domain, local], alias_row).optional())
            .map_err(|e| self.sql(e))
    }

    /// The regex and catch-all rules of `domain`, compiled; kept until the
    /// file changes. A regex that no longer compiles (a store written by
    /// another version) is left out, with its reason in `problems`.
    pub fn patterns(
        &mut self,
        domain: &str,
        problems: &mut Vec<String>,
    ) -> Result<Arc<DomainPatterns>, StoreError> {
        self.forget_if_changed()?;
        if let Some(p) = self.patterns.get(domain) {
            return Ok(p.clone());
        }
        let rows = {
            let mut s = self
                .conn
                .prepare_cached(&format!(
                    "SELECT {ALIAS_COLUMNS} FROM aliases \
                     WHERE domain = ?1 AND kind IN ('regex', 'catchall') ORDER BY id"
                ))
                .map_err(|e| self.sql(e))?;
            s.query_map([domain], alias_row)
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sql(e))?
        };
        let mut patterns = DomainPatterns::default();
        for row in rows {
            match &row.pattern {
                Pattern::Regex(src) => match super::compile_pattern(src) {
                    Ok(re) => patterns.regexes.push((row.rule(), re)),
                    Err(e) => problems.push(format!("alias store row {}: {e}", row.id)),
                },
                Pattern::CatchAll => patterns.catch_all = Some(row.rule()),
                Pattern::Exact(_) => {}
            }
        }
        let patterns = Arc::new(patterns);
        self.patterns.insert(domain.to_owned(), patterns.clone());
        Ok(patterns)
    }

    /// A domain's setting, or its default.
    pub fn setting(&self, domain: &str, key: &str) -> Result<String, StoreError> {
        let stored: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE domain = ?1 AND key = ?2")
            .and_then(|mut s| s.query_row([domain, key], |r| r.get(0)).optional())
            .map_err(|e| self.sql(e))?;
        Ok(stored.unwrap_or_else(|| {
            SETTINGS
                .iter()
                .find(|(k, _, _)| *k == key)
                .map_or(String::new(), |(_, d, _)| (*d).to_owned())
        }))
    }

    pub fn settings(&self, domain: &str) -> Result<Vec<(String, String)>, StoreError> {
        SETTINGS
            .iter()
            .map(|(k, _, _)| Ok(((*k).to_owned(), self.setting(domain, k)?)))
            .collect()
    }

    /// A random secret of this store, made on first use (the key of the
    /// hashes that name senders in the counters).
    pub fn secret(&mut self, name: &str) -> Result<[u8; 32], StoreError> {
        let found: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT value FROM secrets WHERE name = ?1")
            .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
            .map_err(|e| self.sql(e))?;
        if let Some(v) = found.and_then(|v| <[u8; 32]>::try_from(v).ok()) {
            return Ok(v);
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|e| StoreError::Invalid(format!("no randomness for a store secret: {e}")))?;
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO secrets(name, value) VALUES (?1, ?2)",
                params![name, fresh.as_slice()],
            )?;
            tx.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                r.get::<_, Vec<u8>>(0)
            })
        })
        .and_then(|v| {
            <[u8; 32]>::try_from(v)
                .map_err(|_| StoreError::Invalid(format!("store secret {name} is not 32 bytes")))
        })
    }

    /// Adds `n` to counter `key` for `day` and returns the new count, in
    /// one statement: concurrent rewriters never lose an update.
    pub fn count(&mut self, key: &str, day: i64, n: u64) -> Result<u64, StoreError> {
        self.count_all(&[key], day, n).map(|v| v[0])
    }

    /// `count` for several keys in one transaction (one lock, one commit
    /// for a job's domain and sender counters).
    pub fn count_all(&mut self, keys: &[&str], day: i64, n: u64) -> Result<Vec<u64>, StoreError> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO counters(key, day, count) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(key, day) DO UPDATE SET count = count + excluded.count \
                 RETURNING count",
            )?;
            keys.iter()
                .map(|k| {
                    stmt.query_row(params![k, day, n as i64], |r| r.get::<_, i64>(0))
                        .map(|c| c.max(0) as u64)
                })
                .collect()
        })
    }

    /// Forgets counters of days before `day`.
    pub fn prune_counters(&mut self, day: i64) -> Result<usize, StoreError> {
        self.write(|tx| tx.execute("DELETE FROM counters WHERE day < ?1", [day]))
    }

    // ---- writing, for postern-alias -----------------------------------

    pub fn add_domain(
        &mut self,
        name: &str,
        mode: DomainMode,
        token: &str,
        now: SystemTime,
    ) -> Result<Domain, StoreError> {
        let domain = Domain {
            name: name.to_owned(),
            mode,
            token: token.to_owned(),
            verified: None,
            created: unix(now),
        };
        let n = self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO domains(name, mode, token, verified, created) \
                 VALUES (?1, ?2, ?3, 0, ?4)",
                params![name, mode.as_str(), token, domain.created],
            )
        })?;
        if n == 0 {
            return Err(StoreError::DomainExists(name.to_owned()));
        }
        Ok(domain)
    }

    pub fn remove_domain(&mut self, name: &str) -> Result<(), StoreError> {
        let n = self.write(|tx| tx.execute("DELETE FROM domains WHERE name = ?1", [name]))?;
        if n == 0 {
            return Err(StoreError::NoDomain(name.to_owned()));
        }
        Ok(())
    }

    pub fn set_domain_mode(&mut self, name: &str, mode: DomainMode) -> Result<(), StoreError> {
        let n = self.write(|tx| {
            tx.execute(
                "UPDATE domains SET mode = ?2 WHERE name = ?1",
                [name, mode.as_str()],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NoDomain(name.to_owned()));
        }
        Ok(())
    }

    pub fn set_verified(&mut self, name: &str, now: SystemTime) -> Result<(), StoreError> {
        let n = self.write(|tx| {
            tx.execute(
                "UPDATE domains SET verified = ?2 WHERE name = ?1",
                params![name, unix(now).max(1)],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NoDomain(name.to_owned()));
        }
        Ok(())
    }

    pub fn set_setting(&mut self, domain: &str, key: &str, value: &str) -> Result<(), StoreError> {
        let value = check_setting(key, value)?;
        self.require_domain(domain)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO settings(domain, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(domain, key) DO UPDATE SET value = excluded.value",
                [domain, key, &value],
            )
        })?;
        Ok(())
    }

    fn require_domain(&self, domain: &str) -> Result<Domain, StoreError> {
        self.domain(domain)?
            .ok_or_else(|| StoreError::NoDomain(domain.to_owned()))
    }

    /// Aliases created in `domain` since `since` (the daily cap).
    pub fn created_since(&self, domain: &str, since: i64) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM aliases WHERE domain = ?1 AND created >= ?2",
                params![domain, since],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.sql(e))
    }

    /// Adds an alias or replaces the one with the same pattern (keeping
    /// its id, state and creation time). Returns the id and whether it
    /// was new.
    pub fn put_alias(
        tx: &Transaction<'_>,
        alias: &NewAlias,
        now: SystemTime,
    ) -> Result<(i64, bool), rusqlite::Error> {
        let (kind, name) = pattern_columns(&alias.pattern);
        let targets = alias.targets.join("\n");
        let existing: Option<i64> = tx
            .prepare_cached("SELECT id FROM aliases WHERE domain = ?1 AND kind = ?2 AND name = ?3")?
            .query_row([&alias.domain, kind, name], |r| r.get(0))
            .optional()?;
        match existing {
            Some(id) => {
                tx.prepare_cached(
                    "UPDATE aliases SET action = ?2, targets = ?3, description = ?4 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    action_str(alias.action),
                    targets,
                    alias.description
                ])?;
                Ok((id, false))
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO aliases(domain, kind, name, action, targets, description, created) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    alias.domain,
                    kind,
                    name,
                    action_str(alias.action),
                    targets,
                    alias.description,
                    unix(now)
                ])?;
                Ok((tx.last_insert_rowid(), true))
            }
        }
    }

    /// The alias with this pattern in `domain`.
    pub fn find_alias(
        &self,
        domain: &str,
        pattern: &Pattern,
    ) -> Result<Option<AliasRow>, StoreError> {
        let (kind, name) = pattern_columns(pattern);
        self.conn
            .prepare_cached(&format!(
                "SELECT {ALIAS_COLUMNS} FROM aliases WHERE domain = ?1 AND kind = ?2 AND name = ?3"
            ))
            .and_then(|mut s| s.query_row([domain, kind, name], alias_row).optional())
            .map_err(|e| self.sql(e))
    }

    pub fn remove_alias(&mut self, id: i64) -> Result<(), StoreError> {
        self.write(|tx| tx.execute("DELETE FROM aliases WHERE id = ?1", [id]))?;
        Ok(())
    }

    pub fn set_enabled(&mut self, id: i64, enabled: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE aliases SET enabled = ?2 WHERE id = ?1",
                params![id, enabled],
            )
        })?;
        Ok(())
    }

    /// Every alias, or a domain's, in a stable order.
    pub fn aliases(&self, domain: Option<&str>) -> Result<Vec<AliasRow>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ALIAS_COLUMNS} FROM aliases WHERE ?1 IS NULL OR domain = ?1 \
                 ORDER BY domain, kind = 'catchall', kind = 'regex', name, id"
            ))
            .map_err(|e| self.sql(e))?;
        s.query_map([domain], alias_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }
}

/// How mail through one exact alias is encrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasCrypto {
    /// The key attached with `postern-alias key set`.
    pub key: Option<AliasKey>,
    /// The alias's policy (`None`: the domain's).
    pub encrypt: Option<EncryptPolicy>,
    /// WKD lookups for its targets (`None`: the domain's).
    pub wkd: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasKey {
    /// The binary transferable public key, checked when it was set.
    pub key: Vec<u8>,
    pub fingerprint: String,
    /// Used for every target of the alias, not only those its user IDs
    /// name (`--any-user-id`).
    pub any_user_id: bool,
}

/// `if-key`, `require` or `never`.
pub fn parse_policy(s: &str) -> Option<EncryptPolicy> {
    match s {
        "if-key" => Some(EncryptPolicy::IfKey),
        "require" => Some(EncryptPolicy::Require),
        "never" => Some(EncryptPolicy::Never),
        _ => None,
    }
}

impl AliasStore {
    /// The encryption settings of the exact alias `local@domain` (both
    /// in key form); `None` when there is no such alias or it has none.
    pub fn alias_crypto(
        &self,
        domain: &str,
        local: &str,
    ) -> Result<Option<AliasCrypto>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT c.key, c.fingerprint, c.any_user_id, c.encrypt, c.wkd \
                 FROM aliases a JOIN alias_crypto c ON c.alias = a.id \
                 WHERE a.domain = ?1 AND a.kind = 'exact' AND a.name = ?2",
            )
            .and_then(|mut s| s.query_row([domain, local], crypto_row).optional())
            .map_err(|e| self.sql(e))
    }

    /// The encryption settings of the alias with id `alias`.
    pub fn alias_crypto_by_id(&self, alias: i64) -> Result<AliasCrypto, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT key, fingerprint, any_user_id, encrypt, wkd FROM alias_crypto WHERE alias = ?1",
            )
            .and_then(|mut s| s.query_row([alias], crypto_row).optional())
            .map(Option::unwrap_or_default)
            .map_err(|e| self.sql(e))
    }

    /// Replaces the encryption settings of the alias with id `alias`
    /// (all of them at once: the caller read, changed and writes back).
    pub fn set_alias_crypto(
        &mut self,
        alias: i64,
        crypto: &AliasCrypto,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            if *crypto == AliasCrypto::default() {
                tx.execute("DELETE FROM alias_crypto WHERE alias = ?1", [alias])?;
                return Ok(());
            }
            tx.execute(
                "INSERT INTO alias_crypto(alias, key, fingerprint, any_user_id, encrypt, wkd, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT(alias) DO UPDATE SET key = excluded.key, \
                 fingerprint = excluded.fingerprint, any_user_id = excluded.any_user_id, \
                 encrypt = excluded.encrypt, wkd = excluded.wkd, updated = excluded.updated",
                params![
                    alias,
                    crypto.key.as_ref().map(|k| k.key.as_slice()),
                    crypto.key.as_ref().map(|k| k.fingerprint.as_str()),
                    crypto.key.as_ref().is_some_and(|k| k.any_user_id),
                    crypto.encrypt.map(EncryptPolicy::as_str),
                    crypto.wkd,
                    unix(now)
                ],
            )?;
            Ok(())
        })
    }

    /// Every alias with encryption settings, in a stable order.
    pub fn crypto_aliases(&self) -> Result<Vec<(AliasRow, AliasCrypto)>, StoreError> {
        let mut out = Vec::new();
        for row in self.aliases(None)? {
            let crypto = self.alias_crypto_by_id(row.id)?;
            if crypto != AliasCrypto::default() {
                out.push((row, crypto));
            }
        }
        Ok(out)
    }
}

fn crypto_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AliasCrypto> {
    let key: Option<Vec<u8>> = r.get(0)?;
    let fingerprint: Option<String> = r.get(1)?;
    let encrypt: Option<String> = r.get(3)?;
    Ok(AliasCrypto {
        key: match (key, fingerprint) {
            (Some(key), Some(fingerprint)) => Some(AliasKey {
                key,
                fingerprint,
                any_user_id: r.get(2)?,
            }),
            _ => None,
        },
        encrypt: encrypt.as_deref().and_then(parse_policy),
        wkd: r.get(4)?,
    })
}

const ALIAS_COLUMNS: &str =
    "id, domain, kind, name, action, targets, enabled, description, created";

fn pattern_columns(p: &Pattern) -> (&'static str, &str) {
    match p {
        Pattern::Exact(n) => ("exact", n),
        Pattern::Regex(r) => ("regex", r),
        Pattern::CatchAll => ("catchall", ""),
    }
}

pub fn action_str(a: Action) -> &'static str {
    match a {
        Action::Forward => "forward",
        Action::Drop => "drop",
        Action::Defer => "defer",
        Action::Refuse => "refuse",
    }
}

fn bad_column(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        i,
        rusqlite::types::Type::Text,
        format!("unknown {what}").into(),
    )
}

fn domain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Domain> {
    let mode: String = r.get(1)?;
    let verified: i64 = r.get(3)?;
    Ok(Domain {
        name: r.get(0)?,
        mode: match mode.as_str() {
            "store" => DomainMode::Store,
            "dns" => DomainMode::Dns,
            _ => return Err(bad_column(1, "domain mode")),
        },
        token: r.get(2)?,
        verified: (verified > 0).then_some(verified),
        created: r.get(4)?,
    })
}

fn alias_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AliasRow> {
    let kind: String = r.get(2)?;
    let name: String = r.get(3)?;
    let action: String = r.get(4)?;
    let targets: String = r.get(5)?;
    Ok(AliasRow {
        id: r.get(0)?,
        domain: r.get(1)?,
        pattern: match kind.as_str() {
            "exact" => Pattern::Exact(name),
            "regex" => Pattern::Regex(name),
            "catchall" => Pattern::CatchAll,
            _ => return Err(bad_column(2, "alias kind")),
        },
        action: match action.as_str() {
            "forward" => Action::Forward,
            "drop" => Action::Drop,
            "defer" => Action::Defer,
            "refuse" => Action::Refuse,
            _ => return Err(bad_column(4, "alias action")),
        },
        targets: targets
            .lines()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        enabled: r.get(6)?,
        description: r.get(7)?,
        created: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, AliasStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = AliasStore::open_or_create(&dir.path().join("aliases.db")).unwrap();
        (dir, s)
    }

    fn alias(domain: &str, pattern: Pattern, targets: &[&str]) -> NewAlias {
        NewAlias {
            domain: domain.into(),
            pattern,
            action: Action::Forward,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            description: String::new(),
        }
    }

    #[test]
    fn aliases_round_trip_and_replace_in_place() {
        let (_d, mut s) = store();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(86400 * 100);
        s.add_domain("example.com", DomainMode::Store, "tok", now)
            .unwrap();
        assert!(matches!(
            s.add_domain("example.com", DomainMode::Store, "tok", now),
            Err(StoreError::DomainExists(_))
        ));
        let a = alias(
            "example.com",
            Pattern::Exact("bob".into()),
            &["b@x.org", "c@y.org"],
        );
        let (id, new) = s.write(|tx| AliasStore::put_alias(tx, &a, now)).unwrap();
        assert!(new);
        let row = s.exact("example.com", "bob").unwrap().unwrap();
        assert_eq!(row.targets, ["b@x.org", "c@y.org"]);
        assert_eq!(row.id, id);
        let b = alias("example.com", Pattern::Exact("bob".into()), &["d@z.org"]);
        let (id2, new) = s.write(|tx| AliasStore::put_alias(tx, &b, now)).unwrap();
        assert_eq!((id2, new), (id, false));
        assert_eq!(
            s.exact("example.com", "bob").unwrap().unwrap().targets,
            ["d@z.org"]
        );
        assert_eq!(s.created_since("example.com", 86400 * 100).unwrap(), 1);
        s.set_enabled(id, false).unwrap();
        assert_eq!(
            s.exact("example.com", "bob")
                .unwrap()
                .unwrap()
                .rule()
                .action,
            Action::Refuse
        );
        s.remove_domain("example.com").unwrap();
        assert!(s.exact("example.com", "bob").unwrap().is_none(), "cascade");
    }

    #[test]
    fn patterns_follow_changes_made_by_another_connection() {
        let (dir, mut s) = store();
        let now = SystemTime::now();
        s.add_domain("example.com", DomainMode::Store, "t", now)
            .unwrap();
        let mut problems = Vec::new();
        assert!(
            s.patterns("example.com", &mut problems)
                .unwrap()
                .catch_all
                .is_none()
        );
        let mut other = AliasStore::open(&dir.path().join("aliases.db")).unwrap();
        let c = alias("example.com", Pattern::CatchAll, &["all@x.org"]);
        let r = alias(
            "example.com",
            Pattern::Regex("^sales-(.*)$".into()),
            &["$1@x.org"],
        );
        other
            .write(|tx| {
                AliasStore::put_alias(tx, &c, now)?;
                AliasStore::put_alias(tx, &r, now)
            })
            .unwrap();
        let p = s.patterns("example.com", &mut problems).unwrap();
        assert!(p.catch_all.is_some());
        assert_eq!(p.regexes.len(), 1);
        assert!(problems.is_empty());
    }

    #[test]
    fn counters_add_up_across_connections() {
        let (dir, mut s) = store();
        let path = dir.path().join("aliases.db");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut s = AliasStore::open(&path).unwrap();
                    for _ in 0..50 {
                        s.count("domain:example.com", 7, 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.count("domain:example.com", 7, 0).unwrap(), 200);
        assert_eq!(s.prune_counters(8).unwrap(), 1);
        assert_eq!(s.count("domain:example.com", 7, 0).unwrap(), 0);
    }

    #[test]
    fn settings_are_checked() {
        let (_d, mut s) = store();
        s.add_domain("example.com", DomainMode::Store, "t", SystemTime::now())
            .unwrap();
        assert_eq!(
            s.setting("example.com", "has_virus_protection").unwrap(),
            "true"
        );
        s.set_setting("example.com", "has_virus_protection", "off")
            .unwrap();
        assert_eq!(
            s.setting("example.com", "has_virus_protection").unwrap(),
            "false"
        );
        assert!(
            s.set_setting("example.com", "has_virus_protection", "maybe")
                .is_err()
        );
        assert!(s.set_setting("example.com", "colour", "red").is_err());
        assert!(
            s.set_setting("example.com", "admins", "a@b.org, bad")
                .is_err()
        );
        assert!(s.set_setting("nowhere.org", "retention_days", "3").is_err());
        s.set_setting("example.com", "admins", " a@b.org , c@d.org ")
            .unwrap();
        assert_eq!(
            s.setting("example.com", "admins").unwrap(),
            "a@b.org,c@d.org"
        );
    }

    #[test]
    fn encryption_settings_follow_their_alias() {
        let (_d, mut s) = store();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(86400 * 100);
        s.add_domain("example.com", DomainMode::Store, "tok", now)
            .unwrap();
        let a = alias("example.com", Pattern::Exact("bob".into()), &["b@x.org"]);
        let (id, _) = s.write(|tx| AliasStore::put_alias(tx, &a, now)).unwrap();
        assert_eq!(s.alias_crypto("example.com", "bob").unwrap(), None);
        let crypto = AliasCrypto {
            key: Some(AliasKey {
                key: vec![0x99, 1, 2],
                fingerprint: "AB".repeat(20),
                any_user_id: true,
            }),
            encrypt: Some(EncryptPolicy::Require),
            wkd: Some(false),
        };
        s.set_alias_crypto(id, &crypto, now).unwrap();
        assert_eq!(
            s.alias_crypto("example.com", "bob").unwrap(),
            Some(crypto.clone())
        );
        // Re-importing the alias keeps its row, and so its key.
        s.write(|tx| AliasStore::put_alias(tx, &a, now)).unwrap();
        assert_eq!(s.alias_crypto_by_id(id).unwrap(), crypto);
        assert_eq!(s.crypto_aliases().unwrap().len(), 1);
        s.set_alias_crypto(id, &AliasCrypto::default(), now)
            .unwrap();
        assert!(s.crypto_aliases().unwrap().is_empty());
        s.set_alias_crypto(id, &crypto, now).unwrap();
        s.remove_alias(id).unwrap();
        assert_eq!(s.alias_crypto_by_id(id).unwrap(), AliasCrypto::default());
        assert_eq!(s.setting("example.com", "encrypt").unwrap(), "");
        s.set_setting("example.com", "encrypt", "Require").unwrap();
        assert_eq!(s.setting("example.com", "encrypt").unwrap(), "require");
        assert!(s.set_setting("example.com", "encrypt", "always").is_err());
        assert!(s.set_setting("example.com", "wkd", "maybe").is_err());
    }

    #[test]
    fn a_version_1_store_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1; INSERT INTO domains VALUES ('example.com', 'store', 't', 0, 0);",
        )
        .unwrap();
        drop(conn);
        let s = AliasStore::open(&path).unwrap();
        assert_eq!(s.domains().unwrap().len(), 1);
        assert_eq!(s.alias_crypto("example.com", "x").unwrap(), None);
        let v: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_store_of_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        assert!(matches!(
            AliasStore::open(&path),
            Err(StoreError::Version { found: 99, .. })
        ));
        assert!(matches!(
            AliasStore::open(&dir.path().join("none.db")),
            Err(StoreError::Missing { .. })
        ));
    }
}

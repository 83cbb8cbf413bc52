//! The Launchpad web service (`https://api.launchpad.net/1.0`, a
//! lazr.restful service) as a [`Directory`].
//!
//! - A team's members are the collection `~TEAM/members`: pages that are
//!   JSON objects with `entries`, `start`, `total_size` (or
//!   `total_size_link` instead) and, on every page but the last,
//!   `next_collection_link`. A link is followed only when it is under
//!   `sync.launchpad_url` and was not followed before; past
//!   `sync.max_members` entries the team is too large. A page that cannot
//!   be read fails the team: nothing may be concluded about who left.
//! - A member that is itself a team (`is_team`) is expanded: its members
//!   are read the same way and count as members, as Launchpad counts
//!   participation (`sync.sub_teams`; off, it is skipped and reported).
//!   Each team is read once however often it is listed, so a cycle ends;
//!   `sync.max_members` bounds the entries of all the collections read.
//!   A sub-team that cannot be read fails the team.
//! - Each entry is a person's representation. `is_valid` and
//!   `is_ubuntu_coc_signer` give the standing; an entry missing either
//!   (or `is_team`) is completed from the person's own record `~NAME`,
//!   fetched `sync.concurrency` at a time. A person whose record cannot
//!   be read has [`Standing::Unknown`]; the team is still read.
//! - The address is the last path segment of
//!   `preferred_email_address_link` (`.../~NAME/+email/ADDRESS`). Launchpad
//!   redacts the link for anonymous callers when the person hides their
//!   addresses; no address is taken then.
//! - A timeout, a failed connection or a 5xx answer is tried again
//!   `sync.retries` times, after `sync.retry_backoff`, doubled each time;
//!   any other answer but 200 is final.
//!
//! Errors and reasons name the team or the person, never an address.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Directory, Member, SourceError, Standing, Team, is_username};
use crate::config::SyncConfig;
use crate::deliverer::mta_sts::{self, FetchError, MtaStsError};
use crate::mail::address::Address;
use crate::mail::text;

/// Most bytes of one page of a members collection (300 full person
/// entries are about 1 MiB).
pub const MAX_PAGE_SIZE: u64 = 16 << 20;
/// Most bytes of one person's record.
pub const MAX_PERSON_SIZE: u64 = 1 << 20;
/// Entries asked for per page (`ws.size`; Launchpad gives at most 300).
pub const PAGE_ENTRIES: usize = 300;
/// The link Launchpad shows anonymous callers for a hidden address.
pub const REDACTED: &str = "tag:launchpad.net:2008:redacted";
const USER_AGENT: &str = "postern-alias-sync";

/// `[sync]` settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchpadError {
    #[error(
        "sync.launchpad_url {0:?} is not a URL of the form https://HOST[:PORT][/PATH] (no user, query or fragment)"
    )]
    Url(String),
    #[error("sync.launchpad_url {0:?} is not https (http is allowed only on a loopback address)")]
    NotHttps(String),
    #[error("sync.launchpad_ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
}

/// The Launchpad web service, read anonymously over one connection pool.
pub struct Launchpad {
    agent: ureq::Agent,
    /// `sync.launchpad_url` without a trailing `/`.
    base: String,
    require_coc: bool,
    sub_teams: bool,
    timeout: Duration,
    concurrency: usize,
    retries: u32,
    retry_backoff: Duration,
    max_members: usize,
}

impl std::fmt::Debug for Launchpad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launchpad")
            .field("base", &self.base)
            .field("require_coc", &self.require_coc)
            .field("sub_teams", &self.sub_teams)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_members", &self.max_members)
            .finish_non_exhaustive()
    }
}

impl Launchpad {
    /// From `[sync]`: certificates verified against the Mozilla roots or
    /// `sync.launchpad_ca_file`, no proxy, no redirects, `sync.timeout`
    /// for each request from connecting to the last byte.
    pub fn new(config: &SyncConfig) -> Result<Launchpad, LaunchpadError> {
        let (base, plain_http) = service_root(&config.launchpad_url)?;
        let tls = mta_sts::tls_config(config.launchpad_ca_file.as_deref()).map_err(|e| {
            LaunchpadError::CaFile {
                path: config.launchpad_ca_file.clone().unwrap_or_default(),
                reason: match e {
                    MtaStsError::CaFile { reason, .. } => reason,
                    other => other.to_string(),
                },
            }
        })?;
        let concurrency = config.concurrency.max(1);
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .https_only(!plain_http)
                .http_status_as_error(false)
                .max_redirects(0)
                .proxy(None)
                .timeout_global(Some(config.timeout))
                .user_agent(USER_AGENT)
                // Every worker keeps its connection between requests.
                .max_idle_connections_per_host(concurrency)
                .max_idle_connections(concurrency.max(10))
                .tls_config(tls)
                .build(),
        );
        Ok(Launchpad {
            agent,
            base,
            require_coc: config.require_coc,
            sub_teams: config.sub_teams,
            timeout: config.timeout,
            concurrency,
            retries: config.retries,
            retry_backoff: config.retry_backoff,
            max_members: config.max_members,
        })
    }

    /// Every entry of `~team/members`, page after page, each username
    /// once. `listed` entries were read before from other collections of
    /// `top`, the team asked for: with these, more than
    /// `sync.max_members` make `top` too large.
    fn entries(
        &self,
        top: &str,
        team: &str,
        listed: usize,
        requests: &AtomicU64,
    ) -> Result<Vec<Entry>, SourceError> {
        let first = format!("{}/~{team}/members?ws.size={PAGE_ENTRIES}", self.base);
        let mut followed = HashSet::from([first.clone()]);
        let mut url = first;
        let mut entries = Vec::new();
        let mut names = HashSet::new();
        let mut page_number = 0usize;
        let total = loop {
            page_number += 1;
            let what = format!("~{team} members page {page_number}");
            let malformed = |reason: String| SourceError::Malformed {
                what: what.clone(),
                reason,
            };
            let body = self.get(&url, MAX_PAGE_SIZE, &what, requests)?;
            let page = parse_page(&body).map_err(malformed)?;
            if page
                .total_size
                .is_some_and(|n| listed + n > self.max_members)
                || listed + entries.len() + page.entries.len() > self.max_members
            {
                return Err(SourceError::TooLarge {
                    what: format!("~{top}"),
                    limit: self.max_members,
                });
            }
            for value in &page.entries {
                let entry = parse_entry(value).map_err(malformed)?;
                if let Entry::Person { username, .. } = &entry
                    && !names.insert(username.clone())
                {
                    // Pages are offsets into a list: a member seen twice
                    // means another may have been missed.
                    return Err(SourceError::Changed {
                        what: format!("~{team} members"),
                        reason: format!("~{username} is listed twice"),
                    });
                }
                entries.push(entry);
            }
            let Some(next) = page.next else {
                break page.total_size;
            };
            if page.entries.is_empty() {
                return Err(malformed("an empty page links to a next one".into()));
            }
            if !is_under(&next, &self.base) {
                return Err(malformed(format!(
                    "next_collection_link leads outside {}",
                    self.base
                )));
            }
            if !followed.insert(next.clone()) {
                return Err(malformed(
                    "next_collection_link leads back to an earlier page".into(),
                ));
            }
            url = next;
        };
        if let Some(total) = total
            && total != entries.len()
        {
            return Err(SourceError::Changed {
                what: format!("~{team} members"),
                reason: format!(
                    "total_size is {total}, but {} entries were listed",
                    entries.len()
                ),
            });
        }
        Ok(entries)
    }

    /// The records of `names`, `sync.concurrency` at a time, in the order
    /// given; a record that could not be read is the one-line reason.
    fn people(&self, names: &[String], requests: &AtomicU64) -> Vec<Result<Person, String>> {
        if names.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<Option<Result<Person, String>>> = names.iter().map(|_| None).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..self.concurrency.min(names.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(name) = names.get(i) else { break };
                            done.push((i, self.person(name, requests)));
                        }
                        done
                    })
                })
                .collect();
            for worker in workers {
                match worker.join() {
                    Ok(done) => {
                        for (i, person) in done {
                            found[i] = Some(person);
                        }
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        found
            .into_iter()
            .map(|p| p.unwrap_or_else(|| Err("not looked up".into())))
            .collect()
    }

    /// The record of person `name`.
    fn person(&self, name: &str, requests: &AtomicU64) -> Result<Person, String> {
        let what = format!("person ~{name}");
        let url = format!("{}/~{name}", self.base);
        match self.get(&url, MAX_PERSON_SIZE, &what, requests) {
            Ok(body) => parse_person(&body, name).map_err(|reason| format!("{what}: {reason}")),
            Err(SourceError::Status {
                status: 404 | 410, ..
            }) => Err("not found".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A GET of `url` answered 200, its body at most `limit` bytes, with
    /// the retries; `what` names it in errors.
    fn get(
        &self,
        url: &str,
        limit: u64,
        what: &str,
        requests: &AtomicU64,
    ) -> Result<Vec<u8>, SourceError> {
        let mut wait = self.retry_backoff;
        let mut retries_left = self.retries;
        loop {
            requests.fetch_add(1, Ordering::Relaxed);
            match self.get_once(url, limit, what) {
                Attempt::Body(body) => return Ok(body),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e) if retries_left == 0 => return Err(e),
                Attempt::Retry(_) => {
                    std::thread::sleep(wait);
                    wait = wait.saturating_mul(2);
                    retries_left -= 1;
                }
            }
        }
    }

    fn get_once(&self, url: &str, limit: u64, what: &str) -> Attempt {
        let mut response = match self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .call()
        {
            Ok(r) => r,
            Err(e) => return self.failed(e, what),
        };
        let status = response.status().as_u16();
        if status != 200 {
            let e = SourceError::Status {
                what: what.to_owned(),
                status,
            };
            return if status >= 500 {
                Attempt::Retry(e)
            } else {
                Attempt::Fail(e)
            };
        }
        if response.body().content_length().is_some_and(|n| n > limit) {
            return Attempt::Fail(too_large(what, limit));
        }
        match response.body_mut().with_config().limit(limit).read_to_vec() {
            Ok(body) => Attempt::Body(body),
            Err(e) => self.failed(e, what),
        }
    }

    /// A request that got no full answer: a timeout or a connection that
    /// failed is worth another try; TLS refused or a body too large is not.
    fn failed(&self, e: ureq::Error, what: &str) -> Attempt {
        let again = matches!(
            e,
            ureq::Error::Timeout(_)
                | ureq::Error::Io(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::BodyStalled
        );
        let what = what.to_owned();
        let error = match mta_sts::transport_error(e, self.timeout) {
            FetchError::Timeout(timeout) => SourceError::Timeout { what, timeout },
            FetchError::TooLarge(limit) => return Attempt::Fail(too_large(&what, limit)),
            FetchError::Tls(reason) => {
                return Attempt::Fail(SourceError::Transport {
                    what,
                    reason: format!("the TLS handshake failed: {reason}"),
                });
            }
            other => SourceError::Transport {
                what,
                reason: other.to_string(),
            },
        };
        if again {
            Attempt::Retry(error)
        } else {
            Attempt::Fail(error)
        }
    }

    fn standing(&self, record: Record) -> Standing {
        standing(record, self.require_coc)
    }
}

impl Directory for Launchpad {
    fn team(&self, team: &str) -> Result<Team, SourceError> {
        if !is_username(team) {
            return Err(SourceError::Malformed {
                what: format!("~{}", text::bounded(team, 64)),
                reason: "not a Launchpad team name".into(),
            });
        }
        let requests = AtomicU64::new(0);
        let mut out = Team::default();
        let mut people = HashSet::new();
        let mut teams = Expansion {
            enabled: self.sub_teams,
            seen: HashSet::from([team.to_owned()]),
            queue: VecDeque::from([team.to_owned()]),
        };
        let mut listed = 0;
        // Rounds: the queued teams' pages, then the records of the members
        // whose entries did not say enough, some of whom may be teams.
        while !teams.queue.is_empty() {
            // Members whose entry does not say enough: their index in
            // `out.members`, and their name.
            let mut incomplete = Vec::new();
            let mut names = Vec::new();
            while let Some(current) = teams.queue.pop_front() {
                let entries = self.entries(team, &current, listed, &requests)?;
                listed += entries.len();
                for entry in entries {
                    match entry {
                        Entry::Skipped(why) => out.skipped.push(why),
                        Entry::Team(name) => teams.found(name, &mut out.skipped),
                        Entry::Person {
                            username,
                            record,
                            address,
                        } => {
                            // In two teams of the tree: one member.
                            if !people.insert(username.clone()) {
                                continue;
                            }
                            let standing = match record {
                                Some(record) => self.standing(record),
                                None => {
                                    incomplete.push(out.members.len());
                                    names.push(username.clone());
                                    Standing::Unknown("not looked up".into())
                                }
                            };
                            out.members.push(Member {
                                username,
                                standing,
                                address,
                            });
                        }
                    }
                }
            }
            let mut found_teams = HashSet::new();
            for (i, person) in incomplete.into_iter().zip(self.people(&names, &requests)) {
                let member = &mut out.members[i];
                match person {
                    Ok(Person::Member { record, address }) => {
                        member.standing = self.standing(record);
                        member.address = address.or(member.address.take());
                    }
                    Ok(Person::Team) => {
                        teams.found(member.username.clone(), &mut out.skipped);
                        found_teams.insert(i);
                    }
                    Err(reason) => member.standing = Standing::Unknown(reason),
                }
            }
            if !found_teams.is_empty() {
                let mut i = 0;
                out.members.retain(|_| {
                    i += 1;
                    !found_teams.contains(&(i - 1))
                });
            }
        }
        out.requests = requests.into_inner();
        Ok(out)
    }
}

/// The teams of a team's tree still to read, and those already queued.
struct Expansion {
    /// `sync.sub_teams`: off, a sub-team is skipped.
    enabled: bool,
    seen: HashSet<String>,
    queue: VecDeque<String>,
}

impl Expansion {
    /// Team `name` is a member: queued once, or skipped with why.
    fn found(&mut self, name: String, skipped: &mut Vec<String>) {
        if !self.enabled {
            skipped.push(format!("~{name} is a team (sync.sub_teams is off)"));
        } else if self.seen.insert(name.clone()) {
            self.queue.push_back(name);
        }
    }
}

/// One request's outcome.
enum Attempt {
    Body(Vec<u8>),
    /// Worth another try (a timeout, a failed connection, a 5xx).
    Retry(SourceError),
    Fail(SourceError),
}

fn too_large(what: &str, limit: u64) -> SourceError {
    SourceError::Malformed {
        what: what.to_owned(),
        reason: format!("the answer is larger than {limit} bytes"),
    }
}

// ---------------------------------------------------------------------------
// What the answers say (no I/O below)

/// `sync.launchpad_url` without a trailing `/`, and whether it is plain
/// http (allowed only to a loopback address).
fn service_root(url: &str) -> Result<(String, bool), LaunchpadError> {
    let bad = || LaunchpadError::Url(text::bounded(url, 200));
    let root = url.trim_end_matches('/');
    if root.contains(['?', '#']) || root.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let uri: ureq::http::Uri = root.parse().map_err(|_| bad())?;
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad());
    }
    let plain_http = match uri.scheme_str() {
        Some("https") => false,
        Some("http") if is_loopback(authority.host()) => true,
        Some(_) => return Err(LaunchpadError::NotHttps(text::bounded(url, 200))),
        None => return Err(bad()),
    };
    Ok((root.to_owned(), plain_http))
}

/// `localhost`, `127.0.0.0/8` or `::1` (bracketed or not).
fn is_loopback(host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// True when `link` is a resource under the service root `base` (given
/// without a trailing `/`): links from an answer are followed only there.
fn is_under(link: &str, base: &str) -> bool {
    link.strip_prefix(base)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// One page of a collection.
#[derive(Debug, PartialEq)]
struct Page {
    entries: Vec<Value>,
    total_size: Option<usize>,
    next: Option<String>,
}

fn parse_page(body: &[u8]) -> Result<Page, String> {
    let Value::Object(mut page) = json(body)? else {
        return Err("the answer is not a JSON object".into());
    };
    let entries = match page.remove("entries") {
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err("entries is not an array".into()),
        None => return Err("the answer has no entries".into()),
    };
    let total_size = match page.get("total_size") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or("total_size is not a number")?,
        ),
    };
    let next = match page.get("next_collection_link") {
        None | Some(Value::Null) => None,
        Some(Value::String(link)) => Some(link.clone()),
        Some(_) => return Err("next_collection_link is not a string".into()),
    };
    Ok(Page {
        entries,
        total_size,
        next,
    })
}

/// A body as JSON. serde_json's syntax errors quote no part of the body
/// (which may hold addresses).
fn json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "the answer is not JSON ({})",
            text::bounded(&e.to_string(), 100)
        )
    })
}

/// The fields that decide a person's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    is_valid: bool,
    coc_signer: bool,
}

/// Where a person with `record` stands.
fn standing(record: Record, require_coc: bool) -> Standing {
    if !record.is_valid {
        Standing::Invalid
    } else if require_coc && !record.coc_signer {
        Standing::NoCodeOfConduct
    } else {
        Standing::Active
    }
}

/// What an entry of a members collection says.
#[derive(Debug, PartialEq)]
enum Entry {
    /// A person; `record` is `None` when the entry lacks `is_team`,
    /// `is_valid` or `is_ubuntu_coc_signer` (or has one that is not true
    /// or false): their own record is read for them.
    Person {
        username: String,
        record: Option<Record>,
        address: Option<Address>,
    },
    /// A team, by its name.
    Team(String),
    /// Left out, with why: a name that is not a username.
    Skipped(String),
}

/// An entry of a members collection. `Err` only for an entry that names
/// no one, whose member cannot be told apart.
fn parse_entry(entry: &Value) -> Result<Entry, String> {
    let Value::Object(entry) = entry else {
        return Err("an entry is not a JSON object".into());
    };
    let Some(name) = entry.get("name").and_then(Value::as_str) else {
        return Err("an entry has no name".into());
    };
    let username = name.to_ascii_lowercase();
    if !is_username(&username) {
        return Ok(Entry::Skipped(format!(
            "{:?} is not a Launchpad username",
            text::bounded(name, 70)
        )));
    }
    let is_team = entry.get("is_team").and_then(Value::as_bool);
    if is_team == Some(true) {
        return Ok(Entry::Team(username));
    }
    let record = match (is_team, record(entry)) {
        (Some(false), Ok(record)) => Some(record),
        _ => None,
    };
    Ok(Entry::Person {
        username,
        record,
        address: preferred_address(entry),
    })
}

/// `is_valid` and `is_ubuntu_coc_signer` of a person's representation.
fn record(person: &Map<String, Value>) -> Result<Record, String> {
    Ok(Record {
        is_valid: flag(person, "is_valid")?,
        coc_signer: flag(person, "is_ubuntu_coc_signer")?,
    })
}

fn flag(person: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match person.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{key} is not true or false")),
        None => Err(format!("the record has no {key}")),
    }
}

/// What a person's own record (`~NAME`) says.
#[derive(Debug, PartialEq)]
enum Person {
    Member {
        record: Record,
        address: Option<Address>,
    },
    /// The name is a team's.
    Team,
}

/// The record of `username`, read from its body.
fn parse_person(body: &[u8], username: &str) -> Result<Person, String> {
    let Value::Object(person) = json(body)? else {
        return Err("the answer is not a JSON object".into());
    };
    match person.get("name").and_then(Value::as_str) {
        Some(name) if name.eq_ignore_ascii_case(username) => {}
        Some(_) => return Err("the record is of another name".into()),
        None => return Err("the record has no name".into()),
    }
    if flag(&person, "is_team")? {
        return Ok(Person::Team);
    }
    Ok(Person::Member {
        record: record(&person)?,
        address: preferred_address(&person),
    })
}

/// The address of a person's `preferred_email_address_link`; `None`
/// when they hide their addresses, when Launchpad redacted or gave no
/// link, or when it holds no address.
fn preferred_address(person: &Map<String, Value>) -> Option<Address> {
    if person.get("hide_email_addresses") == Some(&Value::Bool(true)) {
        return None;
    }
    email_link_address(person.get("preferred_email_address_link")?.as_str()?)
}

/// The address in a link `.../~NAME/+email/ADDRESS` (its last path
/// segment, percent-decoded).
fn email_link_address(link: &str) -> Option<Address> {
    if link == REDACTED {
        return None;
    }
    let (_, segment) = link.split(['?', '#']).next()?.rsplit_once("/+email/")?;
    if segment.contains('/') {
        return None;
    }
    Address::parse(&String::from_utf8(text::percent_decode(segment)?).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BASE: &str = "https://api.launchpad.net/1.0";

    /// A person's representation as Launchpad gives it in a collection.
    fn alice() -> Value {
        json!({
            "self_link": "https://api.launchpad.net/1.0/~alice",
            "resource_type_link": "https://api.launchpad.net/1.0/#person",
            "name": "alice",
            "display_name": "Alice",
            "is_team": false,
            "is_valid": true,
            "is_ubuntu_coc_signer": true,
            "hide_email_addresses": false,
            "preferred_email_address_link":
                "https://api.launchpad.net/1.0/~alice/+email/alice@example.org",
            "karma": 1234,
        })
    }

    fn with(mut value: Value, key: &str, field: Value) -> Value {
        value[key] = field;
        value
    }

    fn without(mut value: Value, key: &str) -> Value {
        if let Value::Object(map) = &mut value {
            map.remove(key);
        }
        value
    }

    fn address(s: &str) -> Option<Address> {
        Some(Address::parse(s).unwrap())
    }

    const ACTIVE: Record = Record {
        is_valid: true,
        coc_signer: true,
    };

    #[test]
    fn a_full_entry_is_read_whole() {
        assert_eq!(
            parse_entry(&alice()),
            Ok(Entry::Person {
                username: "alice".into(),
                record: Some(ACTIVE),
                address: address("alice@example.org"),
            })
        );
        let entry = with(
            with(alice(), "is_valid", json!(false)),
            "name",
            json!("Alice"),
        );
        assert_eq!(
            parse_entry(&entry),
            Ok(Entry::Person {
                username: "alice".into(),
                record: Some(Record {
                    is_valid: false,
                    coc_signer: true
                }),
                address: address("alice@example.org"),
            })
        );
    }

    #[test]
    fn an_entry_missing_or_mistyping_a_field_asks_for_the_record() {
        for entry in [
            without(alice(), "is_valid"),
            without(alice(), "is_ubuntu_coc_signer"),
            without(alice(), "is_team"),
            with(alice(), "is_valid", json!("true")),
            with(alice(), "is_ubuntu_coc_signer", Value::Null),
            with(alice(), "is_team", json!(0)),
        ] {
            let Ok(Entry::Person {
                username, record, ..
            }) = parse_entry(&entry)
            else {
                panic!("{entry}");
            };
            assert_eq!((username.as_str(), record), ("alice", None), "{entry}");
        }
        // Launchpad's minimal entry.
        let minimal = json!({"name": "bob", "self_link": "https://api.launchpad.net/1.0/~bob", "is_team": false});
        assert_eq!(
            parse_entry(&minimal),
            Ok(Entry::Person {
                username: "bob".into(),
                record: None,
                address: None
            })
        );
    }

    #[test]
    fn teams_are_told_apart_bad_names_skipped_and_nameless_entries_refused() {
        let team = with(
            with(alice(), "is_team", json!(true)),
            "name",
            json!("Ubuntu-Dev"),
        );
        assert_eq!(parse_entry(&team), Ok(Entry::Team("ubuntu-dev".into())));
        for name in ["", "-x", "a b", "a/../b", "ä", &"x".repeat(65)] {
            let entry = with(alice(), "name", json!(name));
            assert!(
                matches!(parse_entry(&entry), Ok(Entry::Skipped(why)) if why.ends_with("is not a Launchpad username")),
                "{name:?}"
            );
        }
        assert!(parse_entry(&without(alice(), "name")).is_err());
        assert!(parse_entry(&with(alice(), "name", json!(7))).is_err());
        assert!(parse_entry(&json!(["alice"])).is_err());
    }

    #[test]
    fn the_address_is_the_last_segment_of_the_email_link() {
        let link = |l: &str| email_link_address(l).map(|a| a.as_str().to_owned());
        assert_eq!(
            link("https://api.launchpad.net/1.0/~bob/+email/bob@example.org").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(
            link("https://api.launchpad.net/1.0/~bob/+email/bob%2Blists@example.org").as_deref(),
            Some("bob+lists@example.org")
        );
        assert_eq!(
            link("https://api.launchpad.net/1.0/~b/+email/b@example.org?ws.op=x#y").as_deref(),
            Some("b@example.org")
        );
        for none in [
            REDACTED,
            "",
            "https://api.launchpad.net/1.0/~bob",
            "https://api.launchpad.net/1.0/~bob/+email/",
            "https://api.launchpad.net/1.0/~bob/+email/bob@example.org/x",
            "https://api.launchpad.net/1.0/~bob/+email/bob%4@example.org",
            "https://api.launchpad.net/1.0/~bob/+email/bob%ff@example.org",
            "https://api.launchpad.net/1.0/~bob/+email/bob%0A@example.org",
            "https://api.launchpad.net/1.0/~bob/+email/no-domain",
            "https://api.launchpad.net/1.0/~bob/+email/bob%20smith@example.org",
        ] {
            assert_eq!(link(none), None, "{none:?}");
        }
    }

    #[test]
    fn hidden_redacted_and_absent_addresses_are_none() {
        let address = |entry: Value| match parse_entry(&entry) {
            Ok(Entry::Person { address, .. }) => address,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            address(with(alice(), "hide_email_addresses", json!(true))),
            None
        );
        assert_eq!(
            address(with(
                alice(),
                "preferred_email_address_link",
                json!(REDACTED)
            )),
            None
        );
        assert_eq!(
            address(with(alice(), "preferred_email_address_link", Value::Null)),
            None
        );
        assert_eq!(
            address(without(alice(), "preferred_email_address_link")),
            None
        );
    }

    #[test]
    fn links_are_followed_only_under_the_service_root() {
        assert!(is_under(
            "https://api.launchpad.net/1.0/~team/members?ws.start=300&ws.size=300",
            BASE
        ));
        for elsewhere in [
            "https://api.launchpad.net/1.0",
            "https://api.launchpad.net/1.0evil/~team/members",
            "https://api.launchpad.net/1.0@evil.example/~team/members",
            "https://api.launchpad.net.evil.example/1.0/~team/members",
            "http://api.launchpad.net/1.0/~team/members",
            "https://api.launchpad.net/devel/~team/members",
            "/1.0/~team/members",
        ] {
            assert!(!is_under(elsewhere, BASE), "{elsewhere}");
        }
    }

    #[test]
    fn standing_follows_validity_then_the_code_of_conduct() {
        let r = |is_valid, coc_signer| Record {
            is_valid,
            coc_signer,
        };
        assert_eq!(standing(r(true, true), true), Standing::Active);
        assert_eq!(standing(r(true, false), true), Standing::NoCodeOfConduct);
        assert_eq!(standing(r(true, false), false), Standing::Active);
        assert_eq!(standing(r(false, true), true), Standing::Invalid);
        assert_eq!(standing(r(false, false), true), Standing::Invalid);
        assert_eq!(standing(r(false, false), false), Standing::Invalid);
    }

    #[test]
    fn pages_need_entries_and_read_their_links() {
        let page = json!({
            "start": 0, "total_size": 2,
            "entries": [alice(), {"name": "bob"}],
            "next_collection_link": "https://api.launchpad.net/1.0/~t/members?ws.start=2",
        });
        let page = parse_page(page.to_string().as_bytes()).unwrap();
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.total_size, Some(2));
        assert_eq!(
            page.next.as_deref(),
            Some("https://api.launchpad.net/1.0/~t/members?ws.start=2")
        );
        let last = parse_page(br#"{"start": 300, "entries": [], "total_size_link": "x"}"#).unwrap();
        assert_eq!((last.total_size, last.next), (None, None));
        for (body, reason) in [
            (&b"<html>oops</html>"[..], "the answer is not JSON"),
            (b"[]", "the answer is not a JSON object"),
            (b"{}", "the answer has no entries"),
            (br#"{"entries": {}}"#, "entries is not an array"),
            (
                br#"{"entries": [], "total_size": "2"}"#,
                "total_size is not a number",
            ),
            (
                br#"{"entries": [], "next_collection_link": 3}"#,
                "next_collection_link is not a string",
            ),
        ] {
            let e = parse_page(body).unwrap_err();
            assert!(e.starts_with(reason), "{e}");
        }
    }

    #[test]
    fn errors_about_bodies_quote_no_address() {
        let e = parse_page(b"{\"entries\": [\"bob@example.org\"").unwrap_err();
        assert!(!e.contains("example.org"), "{e}");
        let e = parse_person(
            br#"{"name": "bob", "is_team": false, "is_valid": "bob@example.org"}"#,
            "bob",
        )
        .unwrap_err();
        assert_eq!(e, "is_valid is not true or false");
    }

    #[test]
    fn a_person_record_is_read_or_refused() {
        let body = |v: Value| v.to_string().into_bytes();
        assert_eq!(
            parse_person(&body(alice()), "alice"),
            Ok(Person::Member {
                record: ACTIVE,
                address: address("alice@example.org")
            })
        );
        assert_eq!(
            parse_person(&body(with(alice(), "is_team", json!(true))), "alice"),
            Ok(Person::Team)
        );
        for (v, reason) in [
            (alice(), "the record is of another name"),
            (without(alice(), "name"), "the record has no name"),
        ] {
            assert_eq!(parse_person(&body(v), "bob"), Err(reason.to_string()));
        }
        assert_eq!(
            parse_person(&body(without(alice(), "is_ubuntu_coc_signer")), "alice"),
            Err("the record has no is_ubuntu_coc_signer".into())
        );
        assert_eq!(
            parse_person(&body(without(alice(), "is_team")), "alice"),
            Err("the record has no is_team".into())
        );
    }

    #[test]
    fn the_service_root_is_https_or_loopback_http() {
        assert_eq!(
            service_root("https://api.launchpad.net/1.0/"),
            Ok((BASE.to_string(), false))
        );
        for loopback in [
            "http://127.0.0.1:8080/1.0",
            "http://127.9.9.9/1.0",
            "http://[::1]:8080/1.0",
            "http://localhost:8080/1.0",
        ] {
            assert_eq!(service_root(loopback), Ok((loopback.to_string(), true)));
        }
        for not_https in [
            "http://api.launchpad.net/1.0",
            "http://10.0.0.1/1.0",
            "ftp://x/1.0",
        ] {
            let e = service_root(not_https).unwrap_err();
            assert_eq!(e, LaunchpadError::NotHttps(not_https.into()));
            assert!(e.to_string().starts_with("sync.launchpad_url"), "{e}");
        }
        for bad in [
            "",
            "api.launchpad.net/1.0",
            "https://user@api.launchpad.net/1.0",
            "https://api.launchpad.net/1.0?x=1",
            "https://api.launchpad.net/1.0#x",
            "https://api.launchpad.net/1 .0",
        ] {
            assert!(
                matches!(service_root(bad), Err(LaunchpadError::Url(_))),
                "{bad:?}: {:?}",
                service_root(bad)
            );
        }
    }

    #[test]
    fn a_bad_ca_file_names_the_key() {
        let config = SyncConfig {
            launchpad_ca_file: Some("/nonexistent/ca.pem".into()),
            ..SyncConfig::default()
        };
        let e = Launchpad::new(&config).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("sync.launchpad_ca_file /nonexistent/ca.pem: "),
            "{e}"
        );
    }
}

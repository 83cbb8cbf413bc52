//! postern-queue(8)'s operations on the spool, the operator's view of it
//! (as Postfix's mailq, postqueue -f and postsuper -h/-H/-d): list the
//! entries, show one envelope, make deferred entries due now, hold and
//! release them, delete them (optionally telling the sender). Each
//! operation is a function over a [`Spool`] that returns data; the text
//! and JSON forms are pure functions of that data, apart from the I/O.
//!
//! No operation takes the runner lock. Renames are atomic, a queue runner
//! skips an entry that vanished before it claimed it, and an entry the
//! runner has claimed (in `active/`) is never touched here: that request
//! is refused, and the others go on. Entries are named by their spool file
//! name (`QUEUEID-RANDOM`, as `list` prints it), which says nothing about
//! the message.
//!
//! Privacy: addresses, diagnostics (which may quote them), client
//! details and headers appear in the output only when the caller asks for
//! them (`show_addresses`); otherwise a placeholder stands in their place.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::config::Config;
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::job::{Envelope, Job, RcptStatus};
use crate::mail::status;
use crate::mail::text;
use crate::store::seal::SealKey;
use crate::store::spool::{self, Entry, Queue, Spool, SpoolError};

/// The queues `list` reads, in the order it prints them. `sent/` (redacted
/// copies kept for retention) is not mail waiting for anything.
pub const LISTED: [Queue; 5] = [
    Queue::Deferred,
    Queue::Hold,
    Queue::Active,
    Queue::Bounce,
    Queue::Corrupt,
];

/// What stands where an address, a diagnostic or a header would be.
pub const REDACTED: &str = "<redacted>";

/// The diagnostic of a recipient deleted with `delete --bounce`.
pub const DELETED_DIAGNOSTIC: &str = "x-postern; deleted from the queue by the operator";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{id}: no such entry in {wanted}")]
    NotFound { id: String, wanted: &'static str },
    #[error("{id}: is in {}/, not in {wanted}", found.dir_name())]
    WrongQueue {
        id: String,
        found: Queue,
        wanted: &'static str,
    },
    #[error("{id}: is being delivered (in active/); try again when the queue run is over")]
    Active { id: String },
    #[error("{id}: left {}/ while it was being {doing} (a queue runner claimed it); try again", from.dir_name())]
    Vanished {
        id: String,
        from: Queue,
        doing: &'static str,
    },
    #[error("{id}: cannot be opened: {source}")]
    Unreadable { id: String, source: SpoolError },
    #[error("{id}: cannot change its due time: {source}")]
    Touch { id: String, source: io::Error },
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl ToFailure for AdminError {
    fn to_failure(&self) -> Failure {
        match self {
            AdminError::NotFound { .. } | AdminError::WrongQueue { .. } => {
                Failure::new(Sysexit::NoInput, status::BAD_ARGUMENTS, self.to_string())
            }
            AdminError::Unreadable { source, .. } if source.is_corrupt_file() => {
                Failure::new(Sysexit::DataErr, status::BAD_MESSAGE, self.to_string())
            }
            AdminError::Spool(e) => e.to_failure(),
            _ => Failure::tempfail(self.to_string()),
        }
    }
}

/// Loads the spool key and checks it against the spool, as
/// postern-deliverer(8) does; `None` when there is no spool directory yet
/// (nothing is queued, and nothing is created here).
pub fn open(config: &Config) -> Result<Option<Spool>, Failure> {
    let dir = &config.spool.directory;
    let key = SealKey::load(&config.spool.key_file)?;
    spool::check_key(dir, &key)?;
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(Some(Spool::open(dir, key)?))
}

// ---------------------------------------------------------------------------
// Finding an entry

/// A spool file name as `list` prints it: letters, digits and `-` only,
/// so that no argument reaches outside its queue directory.
fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An ID as it may be quoted back: cleaned and cut.
fn quoted(id: &str) -> String {
    text::bounded(id, 80)
}

/// The listed queue that holds a file named `id`, if any.
pub fn locate(spool: &Spool, id: &str) -> Option<Queue> {
    if !valid_id(id) {
        return None;
    }
    LISTED
        .into_iter()
        .find(|q| path(spool, *q, id).symlink_metadata().is_ok())
}

fn path(spool: &Spool, queue: Queue, id: &str) -> std::path::PathBuf {
    spool.dir().join(queue.dir_name()).join(id)
}

fn entry(queue: Queue, id: &str) -> Entry {
    Entry {
        queue,
        name: id.to_owned(),
    }
}

/// Finds `id` in one of `allowed`; the error says where it is instead.
fn find(
    spool: &Spool,
    id: &str,
    allowed: &[Queue],
    wanted: &'static str,
) -> Result<Queue, AdminError> {
    match locate(spool, id) {
        Some(q) if allowed.contains(&q) => Ok(q),
        Some(Queue::Active) => Err(AdminError::Active { id: quoted(id) }),
        Some(found) => Err(AdminError::WrongQueue {
            id: quoted(id),
            found,
            wanted,
        }),
        None => Err(AdminError::NotFound {
            id: quoted(id),
            wanted,
        }),
    }
}

/// Why an entry that was just in `from` is gone: a runner claimed it
/// (it is in `active/` now), or it is gone altogether.
fn vanished(spool: &Spool, id: &str, from: Queue, doing: &'static str) -> AdminError {
    match locate(spool, id) {
        Some(Queue::Active) => AdminError::Active { id: quoted(id) },
        _ => AdminError::Vanished {
            id: quoted(id),
            from,
            doing,
        },
    }
}

fn is_not_found(e: &SpoolError) -> bool {
    matches!(e, SpoolError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

// ---------------------------------------------------------------------------
// list

/// One spool file as `list` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The spool file name: the ID the other commands take.
    pub id: String,
    pub queue: Queue,
    /// The file's mtime: in `deferred/` the next attempt, in `hold/` the
    /// due time it had when it was held.
    pub mtime: SystemTime,
    /// What is in it, or why it cannot be opened.
    pub job: Result<Summary, String>,
}

/// What `list` tells of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub queue_id: String,
    pub arrival: SystemTime,
    /// Message bytes.
    pub size: usize,
    pub recipients: usize,
    /// Recipients still to be tried (pending or deferred).
    pub undone: usize,
    pub attempts: u32,
    /// See [`category`].
    pub category: Option<String>,
    /// Shown only on request.
    pub sender: String,
    /// Each recipient's address and status; shown only on request.
    pub addresses: Vec<(String, String)>,
}

impl Summary {
    pub fn of(env: &Envelope, size: usize) -> Summary {
        Summary {
            queue_id: env.queue_id.to_string(),
            arrival: env.arrival,
            size,
            recipients: env.recipients.len(),
            undone: env.undone().count(),
            attempts: env.attempts,
            category: category(env),
            sender: env.sender.to_string(),
            addresses: env
                .recipients
                .iter()
                .map(|r| (format!("<{}>", r.address), r.status.to_string()))
                .collect(),
        }
    }
}

/// The failure category of an envelope: the most common `category` among
/// its undone recipients (among all of them when none is undone, as in a
/// bounce entry); of equally common ones, the first met.
pub fn category(env: &Envelope) -> Option<String> {
    let undone: Vec<_> = env.undone().collect();
    let pool: Vec<_> = if undone.is_empty() {
        env.recipients.iter().collect()
    } else {
        undone
    };
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in pool.iter().filter_map(|r| r.category.as_deref()) {
        match counts.iter_mut().find(|(k, _)| *k == c) {
            Some((_, n)) => *n += 1,
            None => counts.push((c, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(c, _)| c.to_owned())
}

/// Every entry of the [`LISTED`] queues, queue by queue, oldest file
/// first. A file that cannot be opened is listed with its error (files in
/// `corrupt/` are not opened); one that vanishes meanwhile is left out.
pub fn list(spool: &Spool) -> Result<Vec<Listed>, SpoolError> {
    let mut out = Vec::new();
    for queue in LISTED {
        let mut names = spool.list(queue)?;
        names.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        for (id, mtime) in names {
            let job = if queue == Queue::Corrupt {
                Err("set aside by a queue run: fails authentication or holds no job".to_owned())
            } else {
                match spool.load(&entry(queue, &id)) {
                    Ok(job) => Ok(Summary::of(&job.envelope, job.message.len())),
                    Err(e) if is_not_found(&e) => continue,
                    Err(e) => Err(e.to_string()),
                }
            };
            out.push(Listed {
                id,
                queue,
                mtime,
                job,
            });
        }
    }
    Ok(out)
}

/// A duration as mailq-like text: `42s`, `12m`, `3h12m`, `2d3h`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn since(now: SystemTime, t: SystemTime) -> Duration {
    now.duration_since(t).unwrap_or_default()
}

/// When an entry is next tried, as the table says it.
fn next_text(l: &Listed, now: SystemTime) -> String {
    match l.queue {
        Queue::Deferred => match l.mtime.duration_since(now) {
            Ok(d) if d.as_secs() > 0 => format!("in {}", age(d)),
            _ => "due".to_owned(),
        },
        Queue::Hold => "held".to_owned(),
        Queue::Active => "running".to_owned(),
        Queue::Bounce => "bouncer".to_owned(),
        _ => "-".to_owned(),
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The listing as a table: a header line, one line per entry, addresses
/// on indented lines below their entry when `show_addresses`, and a last
/// line with the count and the bytes.
pub fn table(entries: &[Listed], now: SystemTime, show_addresses: bool) -> String {
    if entries.is_empty() {
        return "spool is empty\n".to_owned();
    }
    let header = [
        "ID", "QUEUE", "QUEUE-ID", "AGE", "SIZE", "RCPT", "NEXT", "TRIES", "CATEGORY",
    ];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|l| {
            let mut row = vec![l.id.clone(), l.queue.dir_name().to_owned()];
            match &l.job {
                Ok(s) => row.extend([
                    s.queue_id.clone(),
                    age(since(now, s.arrival)),
                    s.size.to_string(),
                    format!("{}/{}", s.undone, s.recipients),
                    next_text(l, now),
                    s.attempts.to_string(),
                    s.category.clone().unwrap_or_else(|| "-".to_owned()),
                ]),
                Err(e) => row.push(format!("unreadable: {e}")),
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        // An error spans the rest of the line: it does not widen columns.
        let cells = if row.len() == header.len() {
            row.len()
        } else {
            2
        };
        for (w, cell) in widths.iter_mut().zip(&row[..cells]) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let right = matches!(i, 3..=5) && cells.len() == header.len();
            if i + 1 == cells.len() {
                if right {
                    s.push_str(&format!("{c:>w$}", w = widths[i]));
                } else {
                    s.push_str(c);
                }
            } else if right {
                s.push_str(&format!("{c:>w$}  ", w = widths[i]));
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header.map(str::to_owned));
    let mut bytes = 0usize;
    for (l, row) in entries.iter().zip(&rows) {
        out.push_str(&line(row));
        if let Ok(s) = &l.job {
            bytes += s.size;
            if show_addresses {
                out.push_str(&format!("    from {}\n", text::clean(&s.sender)));
                for (a, st) in &s.addresses {
                    out.push_str(&format!("    to   {} {st}\n", text::clean(a)));
                }
            }
        }
    }
    out.push_str(&format!(
        "-- {} entr{}, {bytes} message bytes\n",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    ));
    out
}

/// The listing as a JSON array: one object per entry.
pub fn list_json(entries: &[Listed], now: SystemTime, show_addresses: bool) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|l| {
                let mut v = json!({
                    "id": l.id,
                    "queue": l.queue.dir_name(),
                    "next_attempt": (l.queue == Queue::Deferred).then(|| rfc3339(l.mtime)),
                });
                match &l.job {
                    Ok(s) => {
                        v["queue_id"] = json!(s.queue_id);
                        v["arrival"] = json!(rfc3339(s.arrival));
                        v["age_seconds"] = json!(since(now, s.arrival).as_secs());
                        v["size"] = json!(s.size);
                        v["recipients"] = json!(s.recipients);
                        v["undone"] = json!(s.undone);
                        v["attempts"] = json!(s.attempts);
                        v["category"] = json!(s.category);
                        if show_addresses {
                            v["sender"] = json!(s.sender);
                            v["recipient_addresses"] = Value::Array(
                                s.addresses
                                    .iter()
                                    .map(|(a, st)| json!({"address": a, "status": st}))
                                    .collect(),
                            );
                        }
                    }
                    Err(e) => v["error"] = json!(e),
                }
                v
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// show

/// One entry, whole (the message is kept for its headers; it is never
/// shown).
#[derive(Debug, Clone)]
pub struct Shown {
    pub id: String,
    pub queue: Queue,
    pub mtime: SystemTime,
    pub job: Job,
}

/// Opens the entry `id` from whichever queue holds it.
pub fn show(spool: &Spool, id: &str) -> Result<Shown, AdminError> {
    let queue = find(
        spool,
        id,
        &LISTED,
        "deferred/, hold/, active/, bounce/ or corrupt/",
    )?;
    let e = entry(queue, id);
    let job = spool.load(&e).map_err(|source| {
        if is_not_found(&source) {
            vanished(spool, id, queue, "read")
        } else {
            AdminError::Unreadable {
                id: quoted(id),
                source,
            }
        }
    })?;
    let mtime = std::fs::metadata(path(spool, queue, id))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(Shown {
        id: id.to_owned(),
        queue,
        mtime,
        job,
    })
}

/// The header section of a message: up to its first empty line.
pub fn headers(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < message.len() {
        let end = message[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |p| start + p + 1);
        let line = &message[start..end];
        if line == b"\n" || line == b"\r\n" {
            return &message[..start];
        }
        start = end;
    }
    message
}

/// An envelope's fields as `(key, value)` pairs, top level then per
/// recipient (keys indented by two spaces), as postern-job(5) names them;
/// what may name a person is [`REDACTED`] unless `show_addresses`.
fn fields(s: &Shown, now: SystemTime, show_addresses: bool) -> Vec<(String, String)> {
    let env = &s.job.envelope;
    let private = |v: &str| {
        if show_addresses {
            text::clean(v).into_owned()
        } else {
            REDACTED.to_owned()
        }
    };
    let mut f: Vec<(String, String)> = vec![
        ("id".into(), s.id.clone()),
        ("queue".into(), s.queue.dir_name().into()),
        ("queue-id".into(), env.queue_id.to_string()),
        (
            "arrival".into(),
            format!(
                "{} ({} ago)",
                rfc3339(env.arrival),
                age(since(now, env.arrival))
            ),
        ),
        ("sender".into(), private(&env.sender.to_string())),
        ("attempts".into(), env.attempts.to_string()),
    ];
    if s.queue == Queue::Deferred {
        f.push(("due".into(), rfc3339(s.mtime)));
    }
    if let Some(t) = env.next_attempt {
        f.push(("next-attempt".into(), rfc3339(t)));
    }
    for (key, value) in [
        ("client-address", &env.client_address),
        ("client-hostname", &env.client_hostname),
        ("client-helo", &env.client_helo),
        ("sasl-username", &env.sasl_username),
        ("envid", &env.envid),
    ] {
        if let Some(v) = value {
            f.push((key.into(), private(v)));
        }
    }
    if let Some(v) = &env.upstream_queue_id {
        f.push(("upstream-queue-id".into(), text::clean(v).into_owned()));
    }
    if let Some(v) = &env.auth_results {
        f.push(("auth-results".into(), text::clean(v).into_owned()));
    }
    if let Some(r) = env.ret {
        f.push(("ret".into(), r.to_string()));
    }
    f.push(("eight-bit".into(), yes(env.eight_bit)));
    let warned = match env.delay_warned {
        0 => "no".to_owned(),
        n => format!("after attempt {n}"),
    };
    f.push(("delay-warned".into(), warned));
    for (k, v) in &env.extra {
        f.push((k.clone(), private(v)));
    }
    f.push(("size".into(), s.job.message.len().to_string()));
    for r in &env.recipients {
        f.push(("recipient".into(), private(&format!("<{}>", r.address))));
        if let Some(o) = &r.orcpt {
            f.push(("  orcpt".into(), private(o)));
        }
        if !r.notify.is_unset() {
            f.push(("  notify".into(), r.notify.to_string()));
        }
        f.push(("  status".into(), r.status.to_string()));
        if let Some(d) = &r.diagnostic {
            f.push(("  diagnostic".into(), private(d)));
        }
        if let Some(c) = &r.category {
            f.push(("  category".into(), c.clone()));
        }
        if let Some(m) = &r.remote_mta {
            f.push(("  remote-mta".into(), text::clean(m).into_owned()));
        }
        if let Some(t) = r.last_attempt {
            f.push(("  last-attempt".into(), rfc3339(t)));
        }
        if r.dsn_passed {
            f.push(("  dsn-passed".into(), "yes".into()));
        }
        for (k, v) in &r.extra {
            f.push((format!("  {k}"), private(v)));
        }
    }
    f
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// An entry as text, one `key: value` line per field, recipients'
/// fields indented; with `headers` (only together with
/// `show_addresses`), an empty line and the message's header section.
pub fn show_text(s: &Shown, now: SystemTime, show_addresses: bool, headers: bool) -> String {
    let f = fields(s, now, show_addresses);
    let width = f.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in &f {
        out.push_str(&format!("{:<width$} {v}\n", format!("{k}:")));
    }
    if headers && show_addresses {
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(self::headers(&s.job.message)));
    }
    out
}

/// An entry as one JSON object; recipients as an array of objects.
pub fn show_json(s: &Shown, now: SystemTime, show_addresses: bool, headers: bool) -> Value {
    let mut top = serde_json::Map::new();
    let mut recipients: Vec<Value> = Vec::new();
    for (k, v) in fields(s, now, show_addresses) {
        let key = k.trim_start().replace('-', "_");
        let value = match key.as_str() {
            "attempts" | "size" => v.parse::<u64>().map_or(json!(v), |n| json!(n)),
            "arrival" => json!(rfc3339(s.job.envelope.arrival)),
            _ => json!(v),
        };
        if k == "recipient" {
            recipients.push(json!({ "address": value }));
        } else if k.starts_with("  ") {
            if let Some(Value::Object(r)) = recipients.last_mut() {
                r.insert(key, value);
            }
        } else {
            top.insert(key, value);
        }
    }
    top.insert(
        "age_seconds".into(),
        json!(since(now, s.job.envelope.arrival).as_secs()),
    );
    top.insert("recipients".into(), Value::Array(recipients));
    if headers && show_addresses {
        top.insert(
            "headers".into(),
            json!(String::from_utf8_lossy(self::headers(&s.job.message))),
        );
    }
    Value::Object(top)
}

// ---------------------------------------------------------------------------
// flush, hold, release, delete

/// What a command that takes IDs did: the IDs it acted on (with a word on
/// each), and one error per ID it could not.
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<(String, &'static str)>,
    pub failed: Vec<AdminError>,
}

impl Outcome {
    fn record(&mut self, id: &str, r: Result<&'static str, AdminError>) {
        match r {
            Ok(word) => self.done.push((id.to_owned(), word)),
            Err(e) => self.failed.push(e),
        }
    }
}

/// Sets a file's mtime (a `deferred/` file's due time) and makes it last.
fn touch(path: &Path, t: SystemTime) -> io::Result<()> {
    let f = File::open(path)?;
    f.set_modified(t)?;
    f.sync_all()
}

/// Makes deferred entries due at `now`: those named, or every one when
/// `ids` is empty (entries that vanish meanwhile are not counted).
pub fn flush(spool: &Spool, ids: &[String], now: SystemTime) -> Result<Outcome, SpoolError> {
    let mut out = Outcome::default();
    if ids.is_empty() {
        let mut names = spool.list(Queue::Deferred)?;
        names.sort();
        for (id, _) in names {
            match touch(&path(spool, Queue::Deferred, &id), now) {
                Ok(()) => out.done.push((id, "flushed")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => out.failed.push(AdminError::Touch {
                    id: quoted(&id),
                    source,
                }),
            }
        }
        return Ok(out);
    }
    for id in ids {
        let r = find(spool, id, &[Queue::Deferred], "deferred/").and_then(|_| {
            touch(&path(spool, Queue::Deferred, id), now)
                .map(|()| "flushed")
                .map_err(|source| {
                    if source.kind() == io::ErrorKind::NotFound {
                        vanished(spool, id, Queue::Deferred, "flushed")
                    } else {
                        AdminError::Touch {
                            id: quoted(id),
                            source,
                        }
                    }
                })
        });
        out.record(id, r);
    }
    Ok(out)
}

/// Moves deferred entries into `hold/`, where no queue runner looks.
pub fn hold(spool: &Spool, ids: &[String]) -> Outcome {
    let mut out = Outcome::default();
    for id in ids {
        let r = find(spool, id, &[Queue::Deferred, Queue::Hold], "deferred/").and_then(|q| {
            if q == Queue::Hold {
                return Ok("already held");
            }
            match spool.move_to(&entry(Queue::Deferred, id), Queue::Hold)? {
                Some(_) => Ok("held"),
                None => Err(vanished(spool, id, Queue::Deferred, "held")),
            }
        });
        out.record(id, r);
    }
    out
}

/// Moves held entries back into `deferred/`, due at `now`.
pub fn release(spool: &Spool, ids: &[String], now: SystemTime) -> Outcome {
    let mut out = Outcome::default();
    for id in ids {
        let r = find(spool, id, &[Queue::Hold, Queue::Deferred], "hold/").and_then(|q| {
            if q == Queue::Deferred {
                return Ok("not held");
            }
            // Due now before it is where a runner looks.
            touch(&path(spool, Queue::Hold, id), now).map_err(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    vanished(spool, id, Queue::Hold, "released")
                } else {
                    AdminError::Touch {
                        id: quoted(id),
                        source,
                    }
                }
            })?;
            match spool.move_to(&entry(Queue::Hold, id), Queue::Deferred)? {
                Some(_) => Ok("released"),
                None => Err(vanished(spool, id, Queue::Hold, "released")),
            }
        });
        out.record(id, r);
    }
    out
}

/// The name of the bounce entry `delete --bounce` writes for `id`: the
/// same each time, so a repeat replaces it.
pub fn deleted_bounce_name(id: &str) -> String {
    format!("{id}-d")
}

/// The bounce entry for a deleted job: its undone recipients, failed
/// with 5.0.0 and [`DELETED_DIAGNOSTIC`]; `None` if none is undone.
pub fn deleted_bounce(job: &Job) -> Option<Job> {
    let mut copy = job.clone();
    copy.envelope.recipients.retain(|r| !r.status.is_done());
    if copy.envelope.recipients.is_empty() {
        return None;
    }
    for r in &mut copy.envelope.recipients {
        r.settle(
            RcptStatus::Failed {
                code: status::DELETED_BY_OPERATOR,
            },
            Some(DELETED_DIAGNOSTIC),
        );
        r.remote_mta = None;
    }
    copy.envelope.next_attempt = None;
    Some(copy)
}

/// Removes entries from `deferred/`, `hold/` or `corrupt/`. A deferred
/// entry is first moved to `hold/`, out of a runner's reach. With
/// `bounce`, the bounce entry ([`deleted_bounce`]) is written and
/// fsync'ed before the entry is removed: a crash in between leaves the
/// entry in `hold/`, and a repeat writes the same bounce entry again.
pub fn delete(spool: &Spool, ids: &[String], bounce: bool, now: SystemTime) -> Outcome {
    let mut out = Outcome::default();
    for id in ids {
        let r = delete_one(spool, id, bounce, now);
        out.record(id, r);
    }
    out
}

fn delete_one(
    spool: &Spool,
    id: &str,
    bounce: bool,
    now: SystemTime,
) -> Result<&'static str, AdminError> {
    let allowed: &[Queue] = if bounce {
        &[Queue::Deferred, Queue::Hold]
    } else {
        &[Queue::Deferred, Queue::Hold, Queue::Corrupt]
    };
    let wanted = if bounce {
        "deferred/ or hold/"
    } else {
        "deferred/, hold/ or corrupt/"
    };
    let queue = find(spool, id, allowed, wanted)?;
    let held = match queue {
        Queue::Deferred => spool
            .move_to(&entry(Queue::Deferred, id), Queue::Hold)?
            .ok_or_else(|| vanished(spool, id, Queue::Deferred, "deleted"))?,
        q => entry(q, id),
    };
    let mut word = "deleted";
    if bounce {
        let job = spool.load(&held).map_err(|source| AdminError::Unreadable {
            id: quoted(id),
            source,
        })?;
        if let Some(b) = deleted_bounce(&job) {
            spool.put(Queue::Bounce, &deleted_bounce_name(id), &b, now)?;
            word = "deleted, bounce queued";
        }
    }
    spool.remove(&held)?;
    Ok(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::address::{Address, Sender};
    use crate::mail::job::{QueueId, Recipient};

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_451_504)
    }

    fn job() -> Job {
        let mut env = Envelope::new(
            QueueId::parse("ABCDEF0123456789").unwrap(),
            t0(),
            Sender::parse("alice@example.org").unwrap(),
        );
        for (who, cat) in [
            ("bob@example.net", Some("network")),
            ("carol@example.net", Some("greylist")),
            ("dave@example.net", Some("greylist")),
        ] {
            let mut r = Recipient::new(Address::parse(who).unwrap());
            r.settle(
                RcptStatus::Deferred {
                    code: status::BAD_CONNECTION,
                },
                Some(&format!("450 4.2.0 <{who}> greylisted")),
            );
            r.category = cat.map(str::to_owned);
            r.remote_mta = Some("dns; mx.example.net".into());
            env.recipients.push(r);
        }
        env.attempts = 2;
        env.sasl_username = Some("alice".into());
        Job {
            envelope: env,
            message: b"Subject: secret plans\nTo: Bob <bob@example.net>\n\nthe body\n".to_vec(),
        }
    }

    fn spool(dir: &Path) -> Spool {
        Spool::open(dir, SealKey::from_bytes([5; 32])).unwrap()
    }

    #[test]
    fn ages_read_like_mailq() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h0m"),
            (3 * 3600 + 12 * 60 + 9, "3h12m"),
            (86_399, "23h59m"),
            (86_400, "1d0h"),
            (5 * 86_400 + 7 * 3600 + 1, "5d7h"),
        ];
        for (secs, text) in cases {
            assert_eq!(age(Duration::from_secs(secs)), text, "{secs}");
        }
    }

    #[test]
    fn category_is_the_most_common_among_undone_then_first() {
        let mut j = job();
        assert_eq!(category(&j.envelope).as_deref(), Some("greylist"));
        // A tie: the first met wins.
        j.envelope.recipients[2].category = Some("dns".into());
        assert_eq!(category(&j.envelope).as_deref(), Some("network"));
        // Done recipients do not count while some are undone.
        j.envelope.recipients[0].status = RcptStatus::Delivered;
        assert_eq!(category(&j.envelope).as_deref(), Some("greylist"));
        // None undone (a bounce entry): all of them count.
        for r in &mut j.envelope.recipients {
            r.status = RcptStatus::Failed {
                code: status::NO_SUCH_MAILBOX,
            };
        }
        assert_eq!(category(&j.envelope).as_deref(), Some("network"));
        for r in &mut j.envelope.recipients {
            r.category = None;
        }
        assert_eq!(category(&j.envelope), None);
    }

    fn secrets_in(text: &str) -> Vec<&'static str> {
        ["alice", "bob", "carol", "dave", "secret plans", "the body"]
            .into_iter()
            .filter(|s| text.contains(s))
            .collect()
    }

    #[test]
    fn addresses_only_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let e = s.enqueue(Queue::Deferred, &job(), t0()).unwrap();
        let now = t0() + Duration::from_secs(3 * 3600 + 12 * 60);
        let listed = list(&s).unwrap();
        assert_eq!(listed.len(), 1);
        let plain = table(&listed, now, false);
        let json = list_json(&listed, now, false).to_string();
        for out in [&plain, &json] {
            assert!(secrets_in(out).is_empty(), "{out}");
        }
        assert!(
            plain.contains(&e.name) && plain.contains("3h12m"),
            "{plain}"
        );
        assert!(
            plain.contains("3/3") && plain.contains("greylist"),
            "{plain}"
        );
        let open = table(&listed, now, true);
        assert!(open.contains("from <alice@example.org>"), "{open}");
        assert!(
            open.contains("to   <carol@example.net> deferred 4.4.2"),
            "{open}"
        );
        let shown = show(&s, &e.name).unwrap();
        let text = show_text(&shown, now, false, true);
        let json = show_json(&shown, now, false, true).to_string();
        for out in [&text, &json] {
            assert!(secrets_in(out).is_empty(), "{out}");
            assert!(out.contains(REDACTED) && out.contains("network"), "{out}");
            assert!(
                out.contains("4.4.2") && out.contains("mx.example.net"),
                "{out}"
            );
        }
        let text = show_text(&shown, now, true, true);
        assert!(text.contains("<carol@example.net> greylisted"), "{text}");
        assert!(text.contains("Subject: secret plans"), "{text}");
        assert!(!text.contains("the body"), "{text}");
        let json = show_json(&shown, now, true, false);
        assert_eq!(json["recipients"][1]["address"], "<carol@example.net>");
        assert_eq!(json["recipients"][1]["category"], "greylist");
        assert_eq!(json["sasl_username"], "alice");
        assert_eq!(json["size"], 58);
        assert!(json.get("headers").is_none());
    }

    #[test]
    fn headers_stop_at_the_empty_line() {
        assert_eq!(
            headers(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(headers(b"A: 1\n\nbody\n"), b"A: 1\n");
        assert_eq!(headers(b"A: 1\n"), b"A: 1\n");
    }

    #[test]
    fn an_unreadable_file_is_listed_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let good = s.enqueue(Queue::Deferred, &job(), t0()).unwrap();
        std::fs::write(dir.path().join("deferred/BAD-00"), b"garbage").unwrap();
        std::fs::write(dir.path().join("corrupt/OLD-00"), b"garbage").unwrap();
        let listed = list(&s).unwrap();
        assert_eq!(listed.len(), 3);
        let by_id = |id: &str| listed.iter().find(|l| l.id == id).unwrap();
        assert!(by_id(&good.name).job.is_ok());
        assert!(by_id("BAD-00").job.is_err());
        assert_eq!(by_id("OLD-00").queue, Queue::Corrupt);
        let t = table(&listed, t0(), false);
        assert!(
            t.lines()
                .any(|l| l.starts_with("BAD-00 ") && l.contains(" deferred  unreadable: ")),
            "{t}"
        );
        let err = show(&s, "BAD-00").unwrap_err();
        assert_eq!(err.to_failure().exit, Sysexit::DataErr);
    }

    #[test]
    fn hold_release_flush_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(dir.path());
        let later = t0() + Duration::from_secs(3600);
        let a = s.enqueue(Queue::Deferred, &job(), later).unwrap().name;
        let b = s.enqueue(Queue::Deferred, &job(), later).unwrap().name;
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        let o = hold(&s, &ids(&[&a, "NOPE-1", "../key-check"]));
        assert_eq!(o.done, vec![(a.clone(), "held")]);
        assert_eq!(o.failed.len(), 2);
        assert!(
            o.failed
                .iter()
                .all(|e| e.to_failure().exit == Sysexit::NoInput)
        );
        assert_eq!(locate(&s, &a), Some(Queue::Hold));
        assert!(s.due(later, false).unwrap().iter().all(|e| e.name != a));

        // Flushing all touches deferred/ only.
        let o = flush(&s, &[], t0()).unwrap();
        assert_eq!(o.done, vec![(b.clone(), "flushed")]);
        assert_eq!(s.due(t0(), false).unwrap().len(), 1);
        let o = flush(&s, &ids(&[&a]), t0()).unwrap();
        assert!(matches!(
            o.failed[..],
            [AdminError::WrongQueue {
                found: Queue::Hold,
                ..
            }]
        ));

        let o = release(&s, &ids(&[&a]), t0());
        assert_eq!(o.done, vec![(a.clone(), "released")]);
        assert_eq!(s.due(t0(), false).unwrap().len(), 2, "released is due now");

        // An entry being delivered is refused; the others go on.
        let active = s
            .move_to(&entry(Queue::Deferred, &b), Queue::Active)
            .unwrap()
            .unwrap();
        let o = delete(&s, &ids(&[&b, &a]), true, t0());
        assert_eq!(o.done, vec![(a.clone(), "deleted, bounce queued")]);
        assert!(matches!(o.failed[..], [AdminError::Active { .. }]));
        assert_eq!(o.failed[0].to_failure().exit, Sysexit::TempFail);
        assert_eq!(locate(&s, &a), None);
        let bounced = s
            .load(&entry(Queue::Bounce, &deleted_bounce_name(&a)))
            .unwrap();
        assert_eq!(bounced.envelope.recipients.len(), 3);
        for r in &bounced.envelope.recipients {
            assert_eq!(r.status.to_string(), "failed 5.0.0");
            assert_eq!(r.diagnostic.as_deref(), Some(DELETED_DIAGNOSTIC));
            assert_eq!(r.remote_mta, None);
        }
        s.move_to(&active, Queue::Deferred).unwrap();
        let o = delete(&s, &ids(&[&b]), false, t0());
        assert_eq!(o.done, vec![(b.clone(), "deleted")]);
        assert!(list(&s).unwrap().iter().all(|l| l.queue == Queue::Bounce));
    }
}

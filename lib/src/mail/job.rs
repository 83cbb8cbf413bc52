//! The job stream (postern-job(5)): an envelope a person can read, then the
//! message as exactly `size` bytes, then the line `end`.
//!
//! Jobs are self-delimiting, so several can follow each other on one pipe,
//! and the message is length-prefixed: no dot-stuffing, no scan of the
//! body. A reader hands on a job only once all of it, trailer included, has
//! arrived; a cut or corrupt stream is an error, never a partial job.
//!
//! ```text
//! postern-job 1
//! queue-id: 8F3A2C91D04B7E65
//! arrival: 2026-11-23T16:31:44Z
//! sender: <alice@example.org>
//! attempts: 0
//! recipient: <bob@example.net>
//!   notify: FAILURE,DELAY
//!   status: pending
//! size: 1234
//!
//! <1234 bytes of RFC 5322 message>end
//! ```

use std::io::{self, BufRead, Read, Write};
use std::time::SystemTime;

use crate::exit::{Failure, Sysexit, ToFailure};
use crate::mail::address::{Address, AddressError, Sender};
use crate::mail::status::{self, Status};
use crate::mail::text;

/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
const MAGIC: &str = "postern-job";
const TRAILER: &[u8] = b"end\n";
/// Hard caps that hold whatever the configuration says. The writer keeps
/// every line within `MAX_LINE`, and what postern itself records per
/// recipient is bounded (an address of at most 254 octets, a diagnostic of
/// at most [`MAX_DIAGNOSTIC`]), so that `MAX_RECIPIENTS` recipients with
/// every field postern writes fit in `MAX_ENVELOPE` with room to spare:
/// nothing a stage writes can be refused by the next reader.
pub const MAX_LINE: usize = 16 * 1024;
pub const MAX_ENVELOPE: usize = 32 * 1024 * 1024;
/// RFC 5321 asks servers to take at least 100; Postfix defaults to 1000.
pub const MAX_RECIPIENTS: usize = 10_000;
/// The longest diagnostic kept for a recipient: a remote reply or a local
/// reason, cleaned and cut when it is recorded (see [`Recipient::settle`]).
pub const MAX_DIAGNOSTIC: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job stream: {0}")]
    Io(#[from] io::Error),
    /// The input is not a job stream (a bare message, or garbage). The
    /// bytes are not shown: they may be anyone's mail.
    #[error("job stream does not start with `{MAGIC} N`")]
    NotAJob,
    #[error("job stream version {0} is not supported (this build reads version {VERSION})")]
    UnknownVersion(String),
    #[error("job stream ends inside a job ({0})")]
    Truncated(&'static str),
    /// `reason` names the field, never its value: the input may be
    /// anyone's mail.
    #[error("job envelope line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("job envelope exceeds {MAX_ENVELOPE} bytes")]
    EnvelopeTooLarge,
    #[error("job message of {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge { size: u64, limit: u64 },
    #[error("job message is not followed by `end`: the size field is wrong or the job is corrupt")]
    BadTrailer,
}

impl ToFailure for JobError {
    /// A job stream comes from postern's own previous stage, not from the
    /// sender: one it cannot read (cut, of another version after a
    /// half-done upgrade, malformed by a bug) is a local problem, and
    /// Postfix must keep the message (75, 4.3.0) rather than bounce it.
    /// Only a message over the size limit is the sender's doing.
    fn to_failure(&self) -> Failure {
        match self {
            JobError::MessageTooLarge { .. } => {
                Failure::new(Sysexit::Unavailable, status::TOO_BIG, self.to_string())
            }
            _ => Failure::tempfail(self.to_string()),
        }
    }
}

/// A queue id: 16 upper-case hex digits, random, unique per message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueId(String);

impl QueueId {
    pub fn from_random(bytes: [u8; 8]) -> QueueId {
        QueueId(text::hex_upper(&bytes))
    }

    /// A fresh random queue id (75 when the system has no randomness).
    pub fn fresh() -> Result<QueueId, Failure> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| Failure::tempfail(format!("no randomness for a queue id: {e}")))?;
        Ok(QueueId::from_random(bytes))
    }

    /// Accepts 1 to 32 ASCII letters and digits, which is safe in a file name.
    pub fn parse(s: &str) -> Option<QueueId> {
        let ok = (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| QueueId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// DSN NOTIFY (RFC 3461 section 4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    pub fn parse(s: &str) -> Option<Notify> {
        let mut n = Notify::default();
        for word in s.split(',') {
            match word.trim().to_ascii_uppercase().as_str() {
                "NEVER" => n.never = true,
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => return None,
            }
        }
        // NEVER excludes the others (RFC 3461 section 4.1).
        (!(n.never && (n.success || n.failure || n.delay))).then_some(n)
    }

    pub fn is_unset(&self) -> bool {
        *self == Notify::default()
    }
}

impl std::fmt::Display for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .into_iter()
        .filter_map(|(on, w)| on.then_some(w))
        .collect();
        f.write_str(&words.join(","))
    }
}

/// DSN RET (RFC 3461 section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// The whole message (`FULL`).
    Full,
    /// Only its headers (`HDRS`).
    Headers,
}

impl Ret {
    pub fn parse(s: &str) -> Option<Ret> {
        match s.to_ascii_uppercase().as_str() {
            "FULL" => Some(Ret::Full),
            "HDRS" => Some(Ret::Headers),
            _ => None,
        }
    }
}

impl std::fmt::Display for Ret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ret::Full => "FULL",
            Ret::Headers => "HDRS",
        })
    }
}

/// Where a recipient stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptStatus {
    Pending,
    Delivered,
    /// Temporary failure: try again later. `code` is an enhanced status code.
    Deferred {
        code: Status,
    },
    /// Permanent failure: the bouncer will report it.
    Failed {
        code: Status,
    },
}

impl RcptStatus {
    fn parse(s: &str) -> Option<RcptStatus> {
        let mut words = s.split_whitespace();
        let status = match (words.next()?, words.next()) {
            ("pending", None) => RcptStatus::Pending,
            ("delivered", None) => RcptStatus::Delivered,
            ("deferred", Some(code)) => RcptStatus::Deferred {
                code: Status::parse_class(code, 4)?,
            },
            ("failed", Some(code)) => RcptStatus::Failed {
                code: Status::parse_class(code, 5)?,
            },
            _ => return None,
        };
        words.next().is_none().then_some(status)
    }

    pub fn is_done(&self) -> bool {
        matches!(self, RcptStatus::Delivered | RcptStatus::Failed { .. })
    }
}

impl std::fmt::Display for RcptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RcptStatus::Pending => f.write_str("pending"),
            RcptStatus::Delivered => f.write_str("delivered"),
            RcptStatus::Deferred { code } => write!(f, "deferred {code}"),
            RcptStatus::Failed { code } => write!(f, "failed {code}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: Address,
    /// ORCPT (RFC 3461 section 4.2), e.g. `rfc822;bob@example.net`.
    pub orcpt: Option<String>,
    pub notify: Notify,
    pub status: RcptStatus,
    /// The remote reply or local reason behind the status, for DSNs.
    pub diagnostic: Option<String>,
    /// The server that gave the status (`dns; mx.example.net`), for DSNs.
    pub remote_mta: Option<String>,
    /// What kind of failure the status is (`greylist`, `network`, ...: a
    /// lower-case word), for the operator's queue listing.
    pub category: Option<String>,
    /// When the recipient was last tried.
    pub last_attempt: Option<SystemTime>,
    /// Delivered to a next hop that offers DSN, with NOTIFY and ORCPT
    /// passed on: success and later delays are that hop's to report.
    pub dsn_passed: bool,
    /// Recipient fields this build does not know, kept and passed on.
    pub extra: Vec<(String, String)>,
}

impl Recipient {
    /// Records where the recipient stands and why. The diagnostic (a
    /// remote reply, a local reason) is cleaned of control characters and
    /// cut to [`MAX_DIAGNOSTIC`] bytes here, when it is recorded, so that a
    /// relay's 20-line reply cannot make the job unreadable later.
    pub fn settle(&mut self, status: RcptStatus, diagnostic: Option<&str>) {
        self.status = status;
        self.diagnostic = diagnostic.map(|d| text::bounded(d, MAX_DIAGNOSTIC));
        self.category = None;
    }

    pub fn new(address: Address) -> Recipient {
        Recipient {
            address,
            orcpt: None,
            notify: Notify::default(),
            status: RcptStatus::Pending,
            diagnostic: None,
            remote_mta: None,
            category: None,
            last_attempt: None,
            dsn_passed: false,
            extra: Vec::new(),
        }
    }
}

/// Everything about a message but its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub queue_id: QueueId,
    pub arrival: SystemTime,
    pub sender: Sender,
    pub recipients: Vec<Recipient>,
    pub client_address: Option<String>,
    pub client_hostname: Option<String>,
    pub client_helo: Option<String>,
    pub sasl_username: Option<String>,
    /// The queue id of the MTA that handed us the message (Postfix's).
    pub upstream_queue_id: Option<String>,
    /// The scanner's sender checks, results only (`spf=pass dkim=none
    /// dmarc=pass`): what its `Authentication-Results:` header says, for
    /// later stages.
    pub auth_results: Option<String>,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub next_attempt: Option<SystemTime>,
    /// The message has bytes over 127: send with BODY=8BITMIME.
    pub eight_bit: bool,
    /// DSN envelope id (RFC 3461 section 4.4), as xtext-decoded text.
    pub envid: Option<String>,
    /// DSN RET (RFC 3461 section 4.3): what a DSN returns of the message.
    pub ret: Option<Ret>,
    /// The attempt after which a delay warning was queued for this
    /// message (one per message); 0 when none was.
    pub delay_warned: u32,
    /// Keys this build does not know, kept in order and passed on unchanged,
    /// so a newer stage's fields survive an older one.
    pub extra: Vec<(String, String)>,
}

impl Envelope {
    pub fn new(queue_id: QueueId, arrival: SystemTime, sender: Sender) -> Envelope {
        Envelope {
            queue_id,
            arrival,
            sender,
            recipients: Vec::new(),
            client_address: None,
            client_hostname: None,
            client_helo: None,
            sasl_username: None,
            upstream_queue_id: None,
            auth_results: None,
            attempts: 0,
            next_attempt: None,
            eight_bit: false,
            envid: None,
            ret: None,
            delay_warned: 0,
            extra: Vec::new(),
        }
    }

    /// Recipients still to be tried (pending or deferred).
    pub fn undone(&self) -> impl Iterator<Item = &Recipient> {
        self.recipients.iter().filter(|r| !r.status.is_done())
    }
}

/// An envelope and the message it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub envelope: Envelope,
    pub message: Vec<u8>,
}

impl Job {
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        write_job(w, &self.envelope, &[&self.message])
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message.len() + 512);
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }
}

/// Writes one job whose message is the concatenation of `parts`, so that a
/// stage can prepend a header without copying the message.
pub fn write_job<W: Write>(w: &mut W, env: &Envelope, parts: &[&[u8]]) -> io::Result<()> {
    let size: usize = parts.iter().map(|p| p.len()).sum();
    let mut head = String::with_capacity(512);
    envelope_text(&mut head, env, size);
    w.write_all(head.as_bytes())?;
    for part in parts {
        w.write_all(part)?;
    }
    w.write_all(TRAILER)
}

fn envelope_text(out: &mut String, env: &Envelope, size: usize) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "{MAGIC} {VERSION}");
    let field = |out: &mut String, indent: &str, key: &str, value: &str| {
        let _ = writeln!(out, "{indent}{key}: {}", fitted(indent, key, value));
    };
    field(out, "", "queue-id", env.queue_id.as_str());
    field(
        out,
        "",
        "arrival",
        &humantime::format_rfc3339_seconds(env.arrival).to_string(),
    );
    field(out, "", "sender", &env.sender.to_string());
    for (key, value) in [
        ("client-address", &env.client_address),
        ("client-hostname", &env.client_hostname),
        ("client-helo", &env.client_helo),
        ("sasl-username", &env.sasl_username),
        ("upstream-queue-id", &env.upstream_queue_id),
        ("auth-results", &env.auth_results),
    ] {
        if let Some(v) = value {
            field(out, "", key, v);
        }
    }
    field(out, "", "attempts", &env.attempts.to_string());
    if let Some(t) = env.next_attempt {
        field(
            out,
            "",
            "next-attempt",
            &humantime::format_rfc3339_seconds(t).to_string(),
        );
    }
    if env.eight_bit {
        field(out, "", "eight-bit", "yes");
    }
    if let Some(e) = &env.envid {
        field(out, "", "envid", e);
    }
    if let Some(r) = env.ret {
        field(out, "", "ret", &r.to_string());
    }
    if env.delay_warned > 0 {
        field(out, "", "delay-warned", &env.delay_warned.to_string());
    }
    for (k, v) in &env.extra {
        field(out, "", k, v);
    }
    for r in &env.recipients {
        field(out, "", "recipient", &format!("<{}>", r.address));
        if let Some(o) = &r.orcpt {
            field(out, "  ", "orcpt", o);
        }
        if !r.notify.is_unset() {
            field(out, "  ", "notify", &r.notify.to_string());
        }
        field(out, "  ", "status", &r.status.to_string());
        if let Some(d) = &r.diagnostic {
            field(out, "  ", "diagnostic", d);
        }
        if let Some(m) = &r.remote_mta {
            field(out, "  ", "remote-mta", m);
        }
        if let Some(c) = &r.category {
            field(out, "  ", "category", c);
        }
        if let Some(t) = r.last_attempt {
            field(
                out,
                "  ",
                "last-attempt",
                &humantime::format_rfc3339_seconds(t).to_string(),
            );
        }
        if r.dsn_passed {
            field(out, "  ", "dsn-passed", "yes");
        }
        for (k, v) in &r.extra {
            field(out, "  ", k, v);
        }
    }
    field(out, "", "size", &size.to_string());
    out.push('\n');
}

/// A value as it may stand in an envelope line: control characters (from
/// a remote reply, say) become spaces, so a value can never end its line
/// early or forge another field; and the line is kept within `MAX_LINE`,
/// so the reader never refuses what was written. Only a value that did
/// not come through a reader can be that long; it is cut on a character
/// boundary.
fn fitted<'a>(indent: &str, key: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    let room = MAX_LINE - 1 - indent.len() - key.len() - 2;
    match text::clean(value) {
        std::borrow::Cow::Borrowed(v) => text::cut(v, room).into(),
        std::borrow::Cow::Owned(v) => text::cut(&v, room).to_owned().into(),
    }
}

/// Reads jobs one after another from a byte stream.
pub struct JobReader<R> {
    input: R,
    max_message: u64,
    line_no: usize,
}

impl<R: BufRead> JobReader<R> {
    /// `max_message` caps the message size a job may declare.
    pub fn new(input: R, max_message: u64) -> JobReader<R> {
        JobReader {
            input,
            max_message,
            line_no: 0,
        }
    }

    /// The next whole job; `Ok(None)` at a clean end of stream.
    pub fn next_job(&mut self) -> Result<Option<Job>, JobError> {
        self.line_no = 0;
        let mut envelope_bytes = 0usize;
        let mut head = Vec::new();
        (&mut self.input).take(64).read_until(b'\n', &mut head)?;
        if head.is_empty() {
            return Ok(None);
        }
        let prefix = &head[..head.len().min(MAGIC.len() + 1)];
        if !format!("{MAGIC} ").as_bytes().starts_with(prefix) {
            return Err(JobError::NotAJob);
        }
        if head.pop() != Some(b'\n') {
            return Err(if head.len() >= 63 {
                JobError::Malformed {
                    line: 1,
                    reason: "first line too long".into(),
                }
            } else {
                JobError::Truncated("in the first line")
            });
        }
        self.line_no = 1;
        envelope_bytes += head.len() + 1;
        let first = String::from_utf8(head).map_err(|_| JobError::NotAJob)?;
        let version = first
            .strip_prefix(MAGIC)
            .and_then(|v| v.strip_prefix(' '))
            .ok_or(JobError::NotAJob)?;
        if version != VERSION.to_string() {
            // Only a number is named: anything else may be anyone's mail.
            let number =
                (1..=9).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_digit());
            return Err(if number {
                JobError::UnknownVersion(version.to_owned())
            } else {
                JobError::Malformed {
                    line: 1,
                    reason: "the version is not a number".into(),
                }
            });
        }
        let mut b = EnvelopeBuilder::default();
        loop {
            let line = self
                .read_line(&mut envelope_bytes)?
                .ok_or(JobError::Truncated("in the envelope"))?;
            if line.is_empty() {
                break;
            }
            b.field(&line).map_err(|reason| JobError::Malformed {
                line: self.line_no,
                reason,
            })?;
        }
        let (envelope, size) = b.finish().map_err(|reason| JobError::Malformed {
            line: self.line_no,
            reason,
        })?;
        if size > self.max_message {
            return Err(JobError::MessageTooLarge {
                size,
                limit: self.max_message,
            });
        }
        let size = usize::try_from(size).map_err(|_| JobError::MessageTooLarge {
            size,
            limit: self.max_message,
        })?;
        let mut message = Vec::new();
        message
            .try_reserve_exact(size)
            .map_err(|_| JobError::Io(io::Error::from(io::ErrorKind::OutOfMemory)))?;
        (&mut self.input)
            .take(size as u64)
            .read_to_end(&mut message)?;
        if message.len() != size {
            return Err(JobError::Truncated("in the message"));
        }
        let mut trailer = [0u8; TRAILER.len()];
        let mut got = 0;
        while got < trailer.len() {
            match self.input.read(&mut trailer[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if &trailer[..got] != TRAILER {
            return Err(if TRAILER.starts_with(&trailer[..got]) {
                JobError::Truncated("before the `end` line")
            } else {
                JobError::BadTrailer
            });
        }
        Ok(Some(Job { envelope, message }))
    }

    /// One line without its `\n`; `None` at end of stream only where allowed.
    fn read_line(&mut self, total: &mut usize) -> Result<Option<String>, JobError> {
        let mut buf = Vec::new();
        let n = (&mut self.input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        self.line_no += 1;
        if n == 0 {
            return Ok(None);
        }
        *total += n;
        if *total > MAX_ENVELOPE {
            return Err(JobError::EnvelopeTooLarge);
        }
        if buf.last() != Some(&b'\n') {
            return Err(if n > MAX_LINE {
                JobError::Malformed {
                    line: self.line_no,
                    reason: format!("line longer than {MAX_LINE} bytes"),
                }
            } else {
                JobError::Truncated("in the envelope")
            });
        }
        buf.pop();
        let line = String::from_utf8(buf).map_err(|_| JobError::Malformed {
            line: self.line_no,
            reason: "not UTF-8".into(),
        })?;
        if line.chars().any(char::is_control) {
            return Err(JobError::Malformed {
                line: self.line_no,
                reason: "control character".into(),
            });
        }
        Ok(Some(line))
    }
}

fn yes_no(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{key} must be yes or no")),
    }
}

#[derive(Default)]
struct EnvelopeBuilder {
    queue_id: Option<QueueId>,
    arrival: Option<SystemTime>,
    sender: Option<Sender>,
    recipients: Vec<Recipient>,
    client_address: Option<String>,
    client_hostname: Option<String>,
    client_helo: Option<String>,
    sasl_username: Option<String>,
    upstream_queue_id: Option<String>,
    auth_results: Option<String>,
    attempts: u32,
    next_attempt: Option<SystemTime>,
    eight_bit: bool,
    envid: Option<String>,
    ret: Option<Ret>,
    delay_warned: u32,
    extra: Vec<(String, String)>,
    size: Option<u64>,
    /// Single-valued fields met so far, top level and current recipient
    /// (a set: a recipient may carry many fields of later stages).
    seen: Vec<String>,
    rcpt_seen: std::collections::HashSet<String>,
}

/// Top-level fields that may appear once.
const SINGLE_FIELDS: &[&str] = &[
    "queue-id",
    "arrival",
    "sender",
    "client-address",
    "client-hostname",
    "client-helo",
    "sasl-username",
    "upstream-queue-id",
    "auth-results",
    "attempts",
    "next-attempt",
    "eight-bit",
    "envid",
    "ret",
    "delay-warned",
];

impl EnvelopeBuilder {
    fn field(&mut self, line: &str) -> Result<(), String> {
        if self.size.is_some() {
            return Err("field after `size`, which must come last".into());
        }
        let indented = line.starts_with(' ');
        let (key, value) = line
            .trim_start()
            .split_once(": ")
            .or_else(|| line.trim_start().strip_suffix(':').map(|k| (k, "")))
            .ok_or_else(|| "expected `key: value`".to_string())?;
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("bad field name".to_string());
        }
        if indented {
            return self.recipient_field(key, value);
        }
        let time = |v: &str| humantime::parse_rfc3339(v).map_err(|e| format!("{key}: {e}"));
        if SINGLE_FIELDS.contains(&key) {
            if self.seen.iter().any(|k| k == key) {
                return Err(format!("`{key}` given twice"));
            }
            self.seen.push(key.to_owned());
        }
        let text = Some(value.to_owned());
        match key {
            "queue-id" => {
                self.queue_id =
                    Some(QueueId::parse(value).ok_or_else(|| "bad queue id".to_string())?)
            }
            "arrival" => self.arrival = Some(time(value)?),
            "sender" => {
                if !(value.starts_with('<') && value.ends_with('>')) {
                    return Err("sender must be in angle brackets".into());
                }
                self.sender = Some(Sender::parse(value).map_err(|e| format!("sender: {e}"))?)
            }
            "recipient" => {
                if self.recipients.len() >= MAX_RECIPIENTS {
                    return Err(format!("more than {MAX_RECIPIENTS} recipients"));
                }
                let a =
                    Address::parse(value).map_err(|e: AddressError| format!("recipient: {e}"))?;
                self.recipients.push(Recipient::new(a));
                self.rcpt_seen.clear();
            }
            "client-address" => self.client_address = text,
            "client-hostname" => self.client_hostname = text,
            "client-helo" => self.client_helo = text,
            "sasl-username" => self.sasl_username = text,
            "upstream-queue-id" => self.upstream_queue_id = text,
            "auth-results" => self.auth_results = text,
            "attempts" => self.attempts = value.parse().map_err(|_| "bad attempts".to_string())?,
            "next-attempt" => self.next_attempt = Some(time(value)?),
            "eight-bit" => self.eight_bit = yes_no(key, value)?,
            "envid" => self.envid = text,
            "ret" => {
                self.ret =
                    Some(Ret::parse(value).ok_or_else(|| "ret must be FULL or HDRS".to_string())?)
            }
            "delay-warned" => {
                self.delay_warned = value.parse().map_err(|_| "bad delay-warned".to_string())?
            }
            "size" => self.size = Some(value.parse().map_err(|_| "bad size".to_string())?),
            _ => self.extra.push((key.to_owned(), value.to_owned())),
        }
        Ok(())
    }

    fn recipient_field(&mut self, key: &str, value: &str) -> Result<(), String> {
        let r = self
            .recipients
            .last_mut()
            .ok_or("indented field before any recipient")?;
        if !self.rcpt_seen.insert(key.to_owned()) {
            return Err(format!("recipient field `{key}` given twice"));
        }
        match key {
            "orcpt" => {
                if !value.contains(';') {
                    return Err("orcpt must be `type;address`".into());
                }
                r.orcpt = Some(value.to_owned())
            }
            "notify" => r.notify = Notify::parse(value).ok_or_else(|| "bad notify".to_string())?,
            "status" => {
                r.status = RcptStatus::parse(value).ok_or_else(|| "bad status".to_string())?
            }
            "diagnostic" => r.diagnostic = Some(value.to_owned()),
            "remote-mta" => r.remote_mta = Some(value.to_owned()),
            "category" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_lowercase()) {
                    return Err("category must be a lower-case word".into());
                }
                r.category = Some(value.to_owned())
            }
            "last-attempt" => {
                r.last_attempt =
                    Some(humantime::parse_rfc3339(value).map_err(|e| format!("{key}: {e}"))?)
            }
            "dsn-passed" => r.dsn_passed = yes_no(key, value)?,
            _ => r.extra.push((key.to_owned(), value.to_owned())),
        }
        Ok(())
    }

    fn finish(self) -> Result<(Envelope, u64), String> {
        let missing = |k: &str| format!("envelope has no `{k}` field");
        let size = self.size.ok_or_else(|| missing("size"))?;
        if self.recipients.is_empty() {
            return Err("envelope has no recipients".into());
        }
        let envelope = Envelope {
            queue_id: self.queue_id.ok_or_else(|| missing("queue-id"))?,
            arrival: self.arrival.ok_or_else(|| missing("arrival"))?,
            sender: self.sender.ok_or_else(|| missing("sender"))?,
            recipients: self.recipients,
            client_address: self.client_address,
            client_hostname: self.client_hostname,
            client_helo: self.client_helo,
            sasl_username: self.sasl_username,
            upstream_queue_id: self.upstream_queue_id,
            auth_results: self.auth_results,
            attempts: self.attempts,
            next_attempt: self.next_attempt,
            eight_bit: self.eight_bit,
            envid: self.envid,
            ret: self.ret,
            delay_warned: self.delay_warned,
            extra: self.extra,
        };
        Ok((envelope, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample() -> Job {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_451_504);
        let mut env = Envelope::new(
            QueueId::from_random([0x8f, 0x3a, 0x2c, 0x91, 0xd0, 0x4b, 0x7e, 0x65]),
            t,
            Sender::parse("alice@example.org").unwrap(),
        );
        env.client_address = Some("192.0.2.1".into());
        env.client_helo = Some("mail.example.org".into());
        let mut bob = Recipient::new(Address::parse("bob@example.net").unwrap());
        bob.notify = Notify::parse("FAILURE,DELAY").unwrap();
        bob.orcpt = Some("rfc822;bob@example.net".into());
        let mut carol = Recipient::new(Address::parse("carol@example.net").unwrap());
        carol.status = RcptStatus::Failed {
            code: status::NO_SUCH_MAILBOX,
        };
        carol.diagnostic = Some("smtp; 550 5.1.1 no such user\r\nfake: field".into());
        env.recipients = vec![bob, carol];
        Job {
            envelope: env,
            message: b"Subject: hi\n\nbody\n".to_vec(),
        }
    }

    const GOLDEN: &str = "postern-job 1\nqueue-id: 8F3A2C91D04B7E65\narrival: 2026-11-23T16:31:44Z\n\
sender: <alice@example.org>\nclient-address: 192.0.2.1\nclient-helo: mail.example.org\nattempts: 0\n\
recipient: <bob@example.net>\n  orcpt: rfc822;bob@example.net\n  notify: FAILURE,DELAY\n  status: pending\n\
recipient: <carol@example.net>\n  status: failed 5.1.1\n  diagnostic: smtp; 550 5.1.1 no such user  fake: field\n\
size: 18\n\nSubject: hi\n\nbody\nend\n";

    fn read_all(bytes: &[u8]) -> Result<Vec<Job>, JobError> {
        let mut r = JobReader::new(bytes, 1 << 20);
        let mut jobs = Vec::new();
        while let Some(j) = r.next_job()? {
            jobs.push(j);
        }
        Ok(jobs)
    }

    #[test]
    fn writes_the_golden_form_and_reads_it_back() {
        let job = sample();
        let bytes = job.to_bytes();
        assert_eq!(String::from_utf8_lossy(&bytes), GOLDEN);
        let back = read_all(&bytes).unwrap();
        let mut expect = job.clone();
        expect.envelope.recipients[1].diagnostic =
            Some("smtp; 550 5.1.1 no such user  fake: field".into());
        assert_eq!(back, vec![expect]);
    }

    #[test]
    fn several_jobs_on_one_stream() {
        let mut bytes = sample().to_bytes();
        bytes.extend(sample().to_bytes());
        assert_eq!(read_all(&bytes).unwrap().len(), 2);
        assert_eq!(read_all(b"").unwrap().len(), 0);
    }

    #[test]
    fn every_cut_is_detected() {
        let bytes = sample().to_bytes();
        for cut in 1..bytes.len() {
            let err = read_all(&bytes[..cut]).expect_err(&format!("cut at {cut}"));
            assert!(
                matches!(err, JobError::Truncated(_) | JobError::Malformed { .. }),
                "cut at {cut}: {err:?}"
            );
            // A cut stream never asks Postfix to bounce.
            if let JobError::Truncated(_) = err {
                assert_eq!(err.to_failure().exit, Sysexit::TempFail);
            }
        }
    }

    #[test]
    fn wrong_length_garbage_and_versions() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let short = good.replace("size: 18", "size: 17");
        assert!(matches!(
            read_all(short.as_bytes()),
            Err(JobError::BadTrailer)
        ));
        let long = good.replace("size: 18", "size: 19");
        assert!(matches!(
            read_all(long.as_bytes()),
            Err(JobError::BadTrailer | JobError::Truncated(_))
        ));
        assert!(matches!(
            read_all(b"From alice Mon\nSubject: x\n\n"),
            Err(JobError::NotAJob)
        ));
        assert!(matches!(
            read_all(b"\x00\xff\xfe garbage"),
            Err(JobError::NotAJob)
        ));
        let v2 = good.replace("postern-job 1", "postern-job 2");
        assert!(matches!(
            read_all(v2.as_bytes()),
            Err(JobError::UnknownVersion(_))
        ));
        let huge = good.replace("size: 18", "size: 99999999999");
        assert!(matches!(
            read_all(huge.as_bytes()),
            Err(JobError::MessageTooLarge { .. })
        ));
        let bad_rcpt = good.replace("<bob@example.net>", "<bob example.net>");
        assert!(matches!(
            read_all(bad_rcpt.as_bytes()),
            Err(JobError::Malformed { line: 8, .. })
        ));
        let no_rcpt = good
            .replace("recipient: <bob@example.net>\n  orcpt: rfc822;bob@example.net\n  notify: FAILURE,DELAY\n  status: pending\n", "")
            .replace("recipient: <carol@example.net>\n  status: failed 5.1.1\n  diagnostic: smtp; 550 5.1.1 no such user  fake: field\n", "");
        assert!(matches!(
            read_all(no_rcpt.as_bytes()),
            Err(JobError::Malformed { .. })
        ));
        let bad_status = good.replace("failed 5.1.1", "failed 4.1.1");
        assert!(matches!(
            read_all(bad_status.as_bytes()),
            Err(JobError::Malformed { .. })
        ));
        let cr = good.replace("attempts: 0", "attempts: 0\r");
        assert!(matches!(
            read_all(cr.as_bytes()),
            Err(JobError::Malformed { .. })
        ));
        let long_line = good.replace("attempts: 0", &format!("x-long: {}", "a".repeat(MAX_LINE)));
        assert!(matches!(
            read_all(long_line.as_bytes()),
            Err(JobError::Malformed { .. })
        ));
    }

    #[test]
    fn repeated_fields_and_long_first_line_are_corrupt() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let twice = good.replace("attempts: 0\n", "attempts: 0\nattempts: 3\n");
        assert!(matches!(
            read_all(twice.as_bytes()),
            Err(JobError::Malformed { .. })
        ));
        let sender2 = good.replace(
            "sender: <alice@example.org>\n",
            "sender: <alice@example.org>\nsender: <>\n",
        );
        assert!(matches!(
            read_all(sender2.as_bytes()),
            Err(JobError::Malformed { .. })
        ));
        let status2 = good.replace(
            "  status: pending\n",
            "  status: pending\n  status: delivered\n",
        );
        assert!(matches!(
            read_all(status2.as_bytes()),
            Err(JobError::Malformed { .. })
        ));
        let long = format!("postern-job {}\n", "1".repeat(100));
        assert!(matches!(
            read_all(long.as_bytes()),
            Err(JobError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn unknown_fields_are_kept() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let with = good.replace("attempts: 0\n", "attempts: 0\nscan-verdict: clean\n");
        let jobs = read_all(with.as_bytes()).unwrap();
        assert_eq!(
            jobs[0].envelope.extra,
            vec![("scan-verdict".into(), "clean".into())]
        );
        let again = String::from_utf8(jobs[0].to_bytes()).unwrap();
        assert!(again.contains("scan-verdict: clean\n"));
        let per_rcpt = good.replace(
            "  status: pending\n",
            "  status: pending\n  pgp-key: 0xABCD\n",
        );
        let jobs = read_all(per_rcpt.as_bytes()).unwrap();
        assert_eq!(
            jobs[0].envelope.recipients[0].extra,
            vec![("pgp-key".into(), "0xABCD".into())]
        );
        assert!(
            String::from_utf8(jobs[0].to_bytes())
                .unwrap()
                .contains("  status: pending\n  pgp-key: 0xABCD\n")
        );
    }

    /// Whatever a stage records, the next reader takes: the longest
    /// address, a relay's 20-line reply of 1,000 bytes a line as every
    /// recipient's diagnostic, and the most recipients, in one job.
    #[test]
    fn the_extremes_a_stage_can_write_read_back() {
        let mut job = sample();
        let reply: Vec<String> = (0..20)
            .map(|_| format!("450-4.2.0 {}", "\u{e9}".repeat(500)))
            .collect();
        let reply = format!("smtp; {}", reply.join("\r\n"));
        let local = "l".repeat(crate::mail::address::MAX_ADDRESS - 1 - 12);
        job.envelope.recipients = (0..MAX_RECIPIENTS)
            .map(|i| {
                let address = format!("{local}@{i:05}.xx.org");
                let mut r = Recipient::new(Address::parse(&address).unwrap());
                assert_eq!(r.address.as_str().len(), crate::mail::address::MAX_ADDRESS);
                r.orcpt = Some(format!("rfc822;{address}"));
                r.notify = Notify::parse("SUCCESS,FAILURE,DELAY").unwrap();
                r.settle(
                    RcptStatus::Deferred {
                        code: status::Status::parse("4.2.0").unwrap(),
                    },
                    Some(&reply),
                );
                r.remote_mta = Some(format!("dns; {}", "h".repeat(253)));
                r.category = Some("blocklist".into());
                r.last_attempt = Some(job.envelope.arrival);
                r.dsn_passed = true;
                r
            })
            .collect();
        job.envelope.envid = Some("e".repeat(100));
        job.envelope.ret = Some(Ret::Headers);
        job.envelope.delay_warned = u32::MAX;
        let bytes = job.to_bytes();
        let mut r = JobReader::new(bytes.as_slice(), 1 << 20);
        let back = r.next_job().expect("reads back").expect("a job");
        assert_eq!(back, job);
        let d = back.envelope.recipients[0].diagnostic.as_deref().unwrap();
        assert!(d.len() <= MAX_DIAGNOSTIC && d.starts_with("smtp; 450-4.2.0 \u{e9}"));
        // A value set without `settle`, longer than any line may be: cut
        // by the writer, still read back.
        let mut wild = sample();
        wild.envelope.recipients[0].diagnostic = Some("d".repeat(100_000));
        wild.envelope
            .extra
            .push(("x-long".into(), "v".repeat(100_000)));
        let back = read_all(&wild.to_bytes()).expect("cut lines read back");
        let d = back[0].envelope.recipients[0]
            .diagnostic
            .as_deref()
            .unwrap();
        assert!(d.len() < MAX_LINE && d.len() > MAX_LINE - 32);
    }

    /// A poor man's fuzzer (no nightly toolchain here for cargo-fuzz):
    /// thousands of mutated streams, from a fixed seed so a failure
    /// repeats. The reader must never panic, and any job it returns must
    /// be whole: written again, it reads back the same.
    #[test]
    fn mutated_streams_never_panic_or_yield_a_broken_job() {
        let mut rng = crate::testing::XorShift::new(0x9E37_79B9_7F4A_7C15);
        let mut next = move || rng.next();
        let good = sample().to_bytes();
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % bytes.len().max(1);
                match next() % 4 {
                    0 => bytes[at] ^= 1 << (next() % 8),
                    1 => bytes.truncate(at),
                    2 => bytes.insert(at, (next() % 256) as u8),
                    _ => {
                        bytes.remove(at.min(bytes.len().saturating_sub(1)));
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            if let Ok(jobs) = read_all(&bytes) {
                for job in jobs {
                    let again =
                        read_all(&job.to_bytes()).expect("a job read must write back readable");
                    assert_eq!(again, vec![job]);
                }
            }
        }
    }
}

//! SMTP delivery of one job to a relay (RFC 5321), with a result for each
//! recipient: RCPT replies are taken one by one, so one refused recipient
//! does not hold up the others.
//!
//! Each command must get the reply class it calls for (2xx to MAIL, RCPT
//! and the end of data, exactly 354 to DATA); 4xx defers, 5xx fails, and
//! any other reply is a protocol failure that defers (4.5.0): a relay that
//! says 354 after the final dot has not taken the message. Diagnostics are
//! cleaned and bounded when recorded (`Recipient::settle`).
//!
//! A connection that fails or drops before the final reply to DATA
//! leaves every recipient still undone deferred; one that drops after the
//! message was sent but before the reply may lead to a second delivery
//! later, which is the at-least-once promise of postern(7).
//!
//! The client is our own, on a plain `TcpStream` with TCP_NODELAY: a
//! general SMTP library (lettre was tried) writes the end-of-data marker as
//! a second small write on a Nagle socket, and the relay's delayed ACK then
//! held every small message for about 40 ms. Each command here is one
//! write, and the message with its terminator goes out through one buffer.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::classify::{self, Action, Category, Failure, NetworkKind};
use super::tls;
use crate::config::TlsLevel;
use crate::mail::job::{Job, RcptStatus, Recipient};
use crate::mail::status::{self, Status};
use crate::mail::text;

/// RFC 5321 section 4.5.3.1.5 allows reply lines of 512 octets; be
/// generous, but bounded.
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;
/// Output buffer for the message.
const DATA_BUFFER: usize = 64 * 1024;

/// A reply as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

/// Why no reply could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("reading the reply: {0}")]
    Io(io::Error),
    #[error("connection closed before a complete reply")]
    Closed,
    #[error("{0}")]
    Malformed(String),
}

/// Reads one reply (RFC 5321 section 4.2): lines `ddd-text` then a last
/// line `ddd text` or `ddd`, the same code on every line.
pub fn read_reply<R: BufRead>(input: &mut R) -> Result<ServerReply, ReplyError> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let mut raw = Vec::new();
        let n = io::Read::take(&mut *input, MAX_REPLY_LINE as u64 + 1)
            .read_until(b'\n', &mut raw)
            .map_err(ReplyError::Io)?;
        if n == 0 {
            return Err(ReplyError::Closed);
        }
        if raw.last() != Some(&b'\n') {
            return Err(if n > MAX_REPLY_LINE {
                ReplyError::Malformed(format!("reply line longer than {MAX_REPLY_LINE} bytes"))
            } else {
                ReplyError::Closed
            });
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let bytes = line.as_bytes();
        let valid = bytes.len() >= 3
            && bytes[..3].iter().all(u8::is_ascii_digit)
            && (b'2'..=b'5').contains(&bytes[0])
            && matches!(bytes.get(3), None | Some(b' ') | Some(b'-'));
        if !valid {
            return Err(ReplyError::Malformed(format!(
                "malformed reply line {:?}",
                text::bounded(line, 80)
            )));
        }
        let this: u16 = line[..3]
            .parse()
            .map_err(|_| ReplyError::Malformed("malformed reply code".into()))?;
        if *code.get_or_insert(this) != this {
            return Err(ReplyError::Malformed(format!(
                "reply lines disagree on the code ({} then {this})",
                code.unwrap_or(0)
            )));
        }
        lines.push(line.get(4..).unwrap_or("").to_owned());
        if bytes.get(3) != Some(&b'-') {
            return Ok(ServerReply { code: this, lines });
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::Malformed(format!(
                "reply longer than {MAX_REPLY_LINES} lines"
            )));
        }
    }
}

/// The reply a command must get to go on (RFC 5321 section 4.3.2): 2xx
/// for the greeting, EHLO, MAIL, RCPT and the end of data; exactly 354 for
/// DATA. Anything else is a failure of that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Completion,
    StartData,
    /// 2xx after the message (waited for with the data timeout).
    Final,
}

impl Want {
    fn accepts(self, code: u16) -> bool {
        match self {
            Want::Completion | Want::Final => (200..300).contains(&code),
            Want::StartData => code == 354,
        }
    }
}

/// A failed step, as RFC 3464 wants it in a DSN, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub permanent: bool,
    /// Enhanced status code, of the class the action calls for.
    pub code: Status,
    /// `smtp; 550 5.1.1 ...` or a local reason, bounded when recorded.
    pub diagnostic: String,
    /// The server's 4xx or 5xx reply code; 0 when there was no usable
    /// reply or the reply made no sense for the command.
    pub basic: u16,
    /// What kind of failure it was (`classify`).
    pub category: Category,
}

impl Reply {
    /// A 4xx or 5xx reply: the server's verdict, read by `classify` (a
    /// 5xx that says "try again later" defers).
    fn from_server(r: &ServerReply) -> Reply {
        let text = r.lines.join(" ");
        let verdict = classify::classify(&Failure::from_reply(r.code, &text));
        Reply {
            permanent: verdict.action == Action::Reject,
            code: verdict.status,
            diagnostic: format!("smtp; {} {text}", r.code),
            basic: r.code,
            category: verdict.category,
        }
    }

    /// A positive reply of the wrong kind (250 to DATA, 354 after the
    /// message): the server is broken or hostile, and nothing it said can
    /// be taken as delivery. Temporary: another attempt may find it sane.
    fn unexpected(stage: &str, r: &ServerReply) -> Reply {
        let mut reply = Reply::network(
            NetworkKind::Protocol,
            format!(
                "{} {} (unexpected reply to {stage})",
                r.code,
                r.lines.join(" ")
            ),
        );
        reply.diagnostic = format!("smtp; {}", &reply.diagnostic["x-postern; ".len()..]);
        reply
    }

    /// No usable reply: connection refused, timeout, dropped, nonsense.
    pub fn network(kind: NetworkKind, reason: String) -> Reply {
        let verdict = classify::classify(&Failure::Network(kind));
        Reply {
            permanent: verdict.action == Action::Reject,
            code: verdict.status,
            diagnostic: format!("x-postern; {reason}"),
            basic: 0,
            category: verdict.category,
        }
    }

    /// An I/O error at some step, classified by its kind.
    pub fn io(e: &io::Error, reason: String) -> Reply {
        let kind = match e.kind() {
            io::ErrorKind::ConnectionRefused => NetworkKind::Refused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetworkKind::Timeout,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                NetworkKind::Unreachable
            }
            _ => NetworkKind::Closed,
        };
        Reply::network(kind, reason)
    }

    /// No conversation took place: the host could not be reached.
    pub fn is_unreached(&self) -> bool {
        self.basic == 0 && self.category == Category::Network
    }

    /// A reason of our own with its status code and category; permanent
    /// if the code is.
    pub fn local(code: Status, category: Category, reason: String) -> Reply {
        Reply {
            permanent: code.class() == 5,
            code,
            diagnostic: format!("x-postern; {reason}"),
            basic: 0,
            category,
        }
    }
}

/// What one attempt did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
    /// The reply or reason that ended a transaction early, if one did
    /// (for the log: only its code is shown unless addresses may be).
    pub problem: Option<(Status, String)>,
    /// The hosts that took part, as `name[addr]:port`, and the TLS used.
    pub peers: Vec<String>,
}

impl Attempt {
    /// Counts what `group`'s recipients came to.
    pub fn count(&mut self, job: &Job, group: &[usize]) {
        for &i in group {
            match job.envelope.recipients[i].status {
                RcptStatus::Delivered => self.delivered += 1,
                RcptStatus::Failed { .. } => self.failed += 1,
                _ => self.deferred += 1,
            }
        }
    }
}

/// Records `reply` as the result of every recipient of `group` that has
/// none yet in this attempt.
pub fn settle_all(
    job: &mut Job,
    group: &[usize],
    reply: &Reply,
    remote: Option<&str>,
    now: SystemTime,
) {
    for &i in group {
        let r = &mut job.envelope.recipients[i];
        if !r.status.is_done() {
            set_failure(r, reply);
            r.remote_mta = remote.map(|n| format!("dns; {n}"));
            r.last_attempt = Some(now);
        }
    }
}

fn set_failure(r: &mut Recipient, reply: &Reply) {
    let status = if reply.permanent {
        RcptStatus::Failed { code: reply.code }
    } else {
        RcptStatus::Deferred { code: reply.code }
    };
    r.settle(status, Some(&reply.diagnostic));
    r.category = Some(reply.category.as_str().to_owned());
}

/// A host to try: the name it is known by (for TLS and a DSN's
/// Remote-MTA field) and one of its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub addr: SocketAddr,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.parse::<IpAddr>().is_ok() {
            write!(f, "[{}]:{}", self.addr.ip(), self.addr.port())
        } else {
            write!(f, "{}[{}]:{}", self.name, self.addr.ip(), self.addr.port())
        }
    }
}

/// Per-step limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The TCP connection.
    pub connect: Duration,
    /// The greeting, each command's reply, the TLS handshake.
    pub command: Duration,
    /// Each write of the message, and the reply after it.
    pub data: Duration,
}

/// How sessions go: the same for every peer of a destination.
#[derive(Debug, Clone)]
pub struct Spec {
    pub helo: String,
    pub timeouts: Timeouts,
    pub tls: TlsLevel,
    /// The client for `tls`; `None` with [`TlsLevel::None`].
    pub tls_client: Option<Arc<ClientConfig>>,
}

/// The TLS a session ran with, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsUsed {
    None,
    /// Encrypted, certificate not judged.
    Encrypted,
    /// Encrypted, certificate verified for the host's name.
    Verified,
}

impl std::fmt::Display for TlsUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsUsed::None => "none",
            TlsUsed::Encrypted => "encrypted",
            TlsUsed::Verified => "verified",
        })
    }
}

/// How a session at one peer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every recipient of the group has its result for this attempt;
    /// with the failure that ended the transaction early, if one did.
    Settled(TlsUsed, Option<Reply>),
    /// No recipient got an answer of its own and the failure was
    /// temporary: another peer may do better. `plaintext` says the TLS
    /// handshake failed where TLS was optional (try again without it).
    TryNext { reply: Reply, plaintext: bool },
}

/// The end of an attempt: every wait is the shorter of the step's
/// timeout and what is left of the attempt's deadline.
#[derive(Debug, Clone, Copy)]
struct Clock {
    end: Instant,
}

impl Clock {
    fn wait(&self, step: Duration) -> io::Result<Duration> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the attempt's deadline passed",
            ));
        }
        Ok(left.min(step))
    }
}

/// Resolves `host:port` within `wait` with the system's resolver (the
/// relay's name). getaddrinfo(3) has no timeout of its own, so a name is
/// looked up on a thread that is left behind if it hangs (the process
/// ends soon after); an address literal, the usual relay, needs no lookup
/// and no thread.
pub fn resolve(host: &str, port: u16, wait: Duration) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })?;
    rx.recv_timeout(wait).unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {}s", wait.as_secs()),
        ))
    })
}

/// The connection under a session: TCP, then TLS over it after STARTTLS.
enum Wire {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
        }
    }
}

/// Writes through the session's wire, each write bounded by the clock,
/// so that a server reading slowly cannot hold the message past the
/// deadline.
struct Timed<'a> {
    wire: &'a mut Wire,
    socket: &'a TcpStream,
    clock: Clock,
    step: Duration,
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wait = self.clock.wait(self.step)?;
        self.socket.set_write_timeout(Some(wait))?;
        self.socket.set_read_timeout(Some(wait))?;
        self.wire.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wire.flush()
    }
}

/// An open SMTP session after EHLO (or HELO).
struct Session {
    io: BufReader<Wire>,
    /// The TCP socket under `io` (a second handle), for its timeouts.
    socket: TcpStream,
    clock: Clock,
    timeouts: Timeouts,
    /// EHLO keywords, upper case (RFC 5321 section 4.1.1.1), and their
    /// parameters.
    extensions: Vec<(String, String)>,
    tls: TlsUsed,
}

/// Why a session could not be opened.
struct NoSession {
    reply: Reply,
    /// The TLS handshake failed (the server may do better in plain text).
    handshake: bool,
}

impl From<Reply> for NoSession {
    fn from(reply: Reply) -> NoSession {
        NoSession {
            reply,
            handshake: false,
        }
    }
}

impl Session {
    fn timed(&mut self, step: Duration) -> Timed<'_> {
        Timed {
            wire: self.io.get_mut(),
            socket: &self.socket,
            clock: self.clock,
            step,
        }
    }

    fn open(peer: &Peer, spec: &Spec, clock: Clock) -> Result<Session, NoSession> {
        let local = |what: &str, e: &io::Error| Reply::io(e, format!("{what} {peer}: {e}"));
        let stream = clock
            .wait(spec.timeouts.connect)
            .and_then(|wait| TcpStream::connect_timeout(&peer.addr, wait))
            .map_err(|e| local("cannot connect to", &e))?;
        let socket = stream
            .set_nodelay(true)
            .and_then(|()| stream.try_clone())
            .map_err(|e| local("cannot set up the connection to", &e))?;
        let mut session = Session {
            io: BufReader::new(Wire::Plain(stream)),
            socket,
            clock,
            timeouts: spec.timeouts,
            extensions: Vec::new(),
            tls: TlsUsed::None,
        };
        session
            .expect(None, "greeting", Want::Completion)
            .map_err(soft)?;
        session.hello(&spec.helo)?;
        let Some(client) = &spec.tls_client else {
            return Ok(session);
        };
        if !session.supports("STARTTLS") {
            if spec.tls == TlsLevel::May {
                return Ok(session);
            }
            return Err(Reply::local(
                status::TLS_FAILURE,
                Category::Tls,
                format!("TLS is required but {peer} does not offer STARTTLS"),
            )
            .into());
        }
        session
            .expect(Some("STARTTLS\r\n"), "STARTTLS", Want::Completion)
            .map_err(soft)?;
        session
            .start_tls(peer, client.clone(), spec.tls)
            .map_err(|e| NoSession {
                reply: Reply::local(
                    status::TLS_FAILURE,
                    Category::Tls,
                    format!("TLS handshake with {peer} failed: {e}"),
                ),
                handshake: true,
            })?;
        // RFC 3207 section 4.2: forget what was said before TLS.
        session.hello(&spec.helo)?;
        Ok(session)
    }

    /// EHLO, or HELO if the server does not know EHLO; keeps the
    /// extensions offered.
    fn hello(&mut self, helo: &str) -> Result<(), Reply> {
        let ehlo = format!("EHLO {helo}\r\n");
        match self.expect(Some(&ehlo), "EHLO", Want::Completion) {
            Ok(reply) => {
                self.extensions = reply
                    .lines
                    .iter()
                    .skip(1)
                    .filter_map(|l| {
                        let mut words = l.splitn(2, ' ');
                        let keyword = words.next()?.to_ascii_uppercase();
                        Some((keyword, words.next().unwrap_or("").trim().to_owned()))
                    })
                    .collect();
                Ok(())
            }
            Err(r) if r.basic >= 500 => {
                self.extensions.clear();
                let helo = format!("HELO {helo}\r\n");
                self.expect(Some(&helo), "HELO", Want::Completion)
                    .map(drop)
                    .map_err(soft)
            }
            Err(r) => Err(soft(r)),
        }
    }

    /// The TLS handshake over the session's TCP connection.
    fn start_tls(
        &mut self,
        peer: &Peer,
        client: Arc<ClientConfig>,
        level: TlsLevel,
    ) -> io::Result<()> {
        // Bytes the server sent after its 220 would be read as if they had
        // come through TLS (the STARTTLS injection of CVE-2011-0411).
        if !self.io.buffer().is_empty() {
            return Err(io::Error::other(
                "the server sent data after its reply to STARTTLS",
            ));
        }
        let name = tls::server_name(&peer.name)
            .or_else(|| tls::server_name(&peer.addr.ip().to_string()))
            .ok_or_else(|| io::Error::other("no name to check the certificate against"))?;
        let mut conn = ClientConnection::new(client, name).map_err(io::Error::other)?;
        let wait = self.clock.wait(self.timeouts.command)?;
        self.socket.set_read_timeout(Some(wait))?;
        self.socket.set_write_timeout(Some(wait))?;
        let mut tcp = self.socket.try_clone()?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        let wire = std::mem::replace(self.io.get_mut(), Wire::Plain(tcp.try_clone()?));
        let Wire::Plain(stream) = wire else {
            return Err(io::Error::other("TLS is already on"));
        };
        *self.io.get_mut() = Wire::Tls(Box::new(StreamOwned::new(conn, stream)));
        self.tls = if level == TlsLevel::Verify {
            TlsUsed::Verified
        } else {
            TlsUsed::Encrypted
        };
        Ok(())
    }

    fn supports(&self, keyword: &str) -> bool {
        self.extensions.iter().any(|(k, _)| k == keyword)
    }

    /// The SIZE the server announced, if it gave one (0: no limit).
    fn size_limit(&self) -> Option<u64> {
        self.extensions
            .iter()
            .find(|(k, _)| k == "SIZE")
            .and_then(|(_, v)| v.parse().ok())
            .filter(|&n| n > 0)
    }

    /// Sends `command` (if any) and reads the reply. The reply `want`s is
    /// `Ok`; a 4xx or 5xx is an `Err` with the server's words; any other
    /// reply, or none, an `Err` of our own.
    fn expect(
        &mut self,
        command: Option<&str>,
        stage: &str,
        want: Want,
    ) -> Result<ServerReply, Reply> {
        let step = if want == Want::Final {
            self.timeouts.data
        } else {
            self.timeouts.command
        };
        let fail = |e: io::Error| Reply::io(&e, format!("{stage}: {e}"));
        if let Some(c) = command {
            let mut out = self.timed(step);
            out.write_all(c.as_bytes())
                .and_then(|()| out.flush())
                .map_err(fail)?;
        }
        let wait = self.clock.wait(step).map_err(fail)?;
        self.socket.set_read_timeout(Some(wait)).map_err(fail)?;
        let reply = read_reply(&mut self.io).map_err(|e| bad_reply(stage, e))?;
        if want.accepts(reply.code) {
            Ok(reply)
        } else if reply.code >= 400 {
            Err(Reply::from_server(&reply))
        } else {
            Err(Reply::unexpected(stage, &reply))
        }
    }

    /// Sends the message, dot-stuffed with CRLF line endings, and the
    /// terminator, in one buffered stream; returns the final reply.
    fn data(&mut self, msg: &[u8]) -> Result<ServerReply, Reply> {
        let step = self.timeouts.data;
        let mut out = BufWriter::with_capacity(DATA_BUFFER, self.timed(step));
        write_data(&mut out, msg)
            .and_then(|()| out.flush())
            .map_err(|e| Reply::io(&e, format!("sending the message: {e}")))?;
        drop(out);
        self.expect(None, "end of DATA", Want::Final)
    }

    /// Ends the session without waiting for the reply: the outcome is
    /// already known, and every second spent here is a second in which a
    /// killed deliverer would lose what the server accepted.
    fn quit(mut self) {
        let step = self.timeouts.command;
        let mut out = self.timed(step);
        let _ = out.write_all(b"QUIT\r\n").and_then(|()| out.flush());
        if let Wire::Tls(s) = self.io.get_mut() {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

/// A reply that could not be read: the connection ended (or timed out)
/// inside it, or it was no SMTP reply at all.
fn bad_reply(stage: &str, e: ReplyError) -> Reply {
    let reason = format!("{stage}: {e}");
    match e {
        ReplyError::Io(io) => Reply::io(&io, reason),
        ReplyError::Closed => Reply::network(NetworkKind::Closed, reason),
        ReplyError::Malformed(_) => Reply::network(NetworkKind::Protocol, reason),
    }
}

/// A refused greeting or EHLO is not a verdict on the message: like
/// Postfix (smtp_skip_5xx_greeting), it is a temporary failure.
fn soft(mut r: Reply) -> Reply {
    if r.permanent {
        r.permanent = false;
        r.code = status::BAD_CONNECTION;
    }
    r
}

/// xtext (RFC 3461 section 4): `+` and `=`, and bytes outside `!`..`~`,
/// as `+HH`.
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// One SMTP session at `peer` for the recipients `group` of `job` (all
/// undone): each gets its result, or none if the outcome is `TryNext`.
pub fn deliver_at(
    peer: &Peer,
    spec: &Spec,
    end: Instant,
    job: &mut Job,
    group: &[usize],
    now: SystemTime,
) -> Outcome {
    let mut session = match Session::open(peer, spec, Clock { end }) {
        Ok(s) => s,
        Err(no) => {
            return Outcome::TryNext {
                plaintext: no.handshake && spec.tls == TlsLevel::May,
                reply: no.reply,
            };
        }
    };
    let tls = session.tls;
    let mut answered = Vec::new();
    let result = transaction(&mut session, job, group, &mut answered);
    let remote = Some(format!("dns; {}", peer.name));
    for &i in group {
        let r = &mut job.envelope.recipients[i];
        r.remote_mta = remote.clone();
        r.last_attempt = Some(now);
    }
    match result {
        Ok(()) => {
            session.quit();
            Outcome::Settled(tls, None)
        }
        Err(reply) if answered.is_empty() && !reply.permanent => Outcome::TryNext {
            reply,
            plaintext: false,
        },
        Err(reply) => {
            // Every recipient without an answer of its own shares the fate
            // of the transaction (`answered` is in order, as `group` is).
            for &i in group {
                if answered.binary_search(&i).is_err() {
                    set_failure(&mut job.envelope.recipients[i], &reply);
                }
            }
            Outcome::Settled(tls, Some(reply))
        }
    }
}

/// One SMTP transaction. Each RCPT reply is recorded on its recipient at
/// once (accepted recipients are marked delivered only after the final
/// reply to DATA); `answered` collects the recipients that got an answer
/// of their own. An `Err` is what ended the transaction for the rest.
fn transaction(
    session: &mut Session,
    job: &mut Job,
    group: &[usize],
    answered: &mut Vec<usize>,
) -> Result<(), Reply> {
    let size = job.message.len() as u64;
    if let Some(limit) = session.size_limit().filter(|&l| size > l) {
        return Err(Reply::local(
            status::TOO_BIG,
            Category::Size,
            format!("message size {size} exceeds the server's limit {limit}"),
        ));
    }
    let mut params = String::new();
    if session.supports("SIZE") {
        params.push_str(&format!(" SIZE={}", job.message.len()));
    }
    if job.envelope.eight_bit && session.supports("8BITMIME") {
        params.push_str(" BODY=8BITMIME");
    }
    let utf8 = job.envelope.sender.address().is_some_and(|a| a.is_utf8())
        || group
            .iter()
            .any(|&i| job.envelope.recipients[i].address.is_utf8());
    if utf8 && session.supports("SMTPUTF8") {
        params.push_str(" SMTPUTF8");
    }
    let dsn = session.supports("DSN");
    if dsn {
        if let Some(ret) = job.envelope.ret {
            params.push_str(&format!(" RET={ret}"));
        }
        if let Some(envid) = &job.envelope.envid {
            params.push_str(&format!(" ENVID={}", xtext(envid)));
        }
    }
    let mail = format!("MAIL FROM:{}{params}\r\n", job.envelope.sender);
    session.expect(Some(&mail), "MAIL FROM", Want::Completion)?;
    let mut accepted = Vec::new();
    for &i in group {
        let r = &mut job.envelope.recipients[i];
        let mut rcpt = format!("RCPT TO:<{}>", r.address);
        if dsn {
            if !r.notify.is_unset() {
                rcpt.push_str(&format!(" NOTIFY={}", r.notify));
            }
            let orcpt = r.orcpt.as_deref().filter(|o| o.is_ascii());
            if let Some((kind, addr)) = orcpt.and_then(|o| o.split_once(';')) {
                rcpt.push_str(&format!(" ORCPT={kind};{}", xtext(addr)));
            }
        }
        rcpt.push_str("\r\n");
        match session.expect(Some(&rcpt), "RCPT TO", Want::Completion) {
            Ok(_) => accepted.push(i),
            // The server's own answer for this recipient.
            Err(reply) if reply.basic != 0 => {
                set_failure(r, &reply);
                answered.push(i);
            }
            Err(reply) => return Err(reply),
        }
    }
    if accepted.is_empty() {
        return Ok(());
    }
    session.expect(Some("DATA\r\n"), "DATA", Want::StartData)?;
    session.data(&job.message)?;
    for &i in &accepted {
        let r = &mut job.envelope.recipients[i];
        r.settle(RcptStatus::Delivered, None);
        r.dsn_passed = dsn;
        answered.push(i);
    }
    Ok(())
}

/// Writes a message for DATA (RFC 5321 sections 2.3.8 and 4.5.2): a bare
/// LF or a bare CR becomes CRLF (a client must send CR and LF only
/// together, as a line ending), a line starting with `.` gets another, and
/// `CRLF . CRLF` ends it. A last line without a line ending gets one.
fn write_data<W: Write>(out: &mut W, msg: &[u8]) -> io::Result<()> {
    let mut at_line_start = true;
    let mut start = 0;
    let mut i = 0;
    while i < msg.len() {
        match msg[i] {
            b'\r' if msg.get(i + 1) == Some(&b'\n') => {
                i += 2;
                at_line_start = true;
                continue;
            }
            b'\r' | b'\n' => {
                out.write_all(&msg[start..i])?;
                out.write_all(b"\r\n")?;
                start = i + 1;
                at_line_start = true;
            }
            b'.' if at_line_start => {
                out.write_all(&msg[start..i])?;
                out.write_all(b".")?;
                start = i;
                at_line_start = false;
            }
            _ => at_line_start = false,
        }
        i += 1;
    }
    out.write_all(&msg[start..])?;
    if msg.is_empty() || at_line_start {
        out.write_all(b".\r\n")
    } else {
        out.write_all(b"\r\n.\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_data(&mut out, msg).unwrap();
        out
    }

    #[test]
    fn data_is_crlf_and_dot_stuffed_once() {
        assert_eq!(data(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(data(b"a\r\nb\r\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(data(b"no newline at end"), b"no newline at end\r\n.\r\n");
        assert_eq!(
            data(b".leading\n..two\nmid.dle\n.\n"),
            b"..leading\r\n...two\r\nmid.dle\r\n..\r\n.\r\n"
        );
        // A bare CR is a line ending on the wire, never sent alone.
        assert_eq!(data(b"a\r.b\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(data(b"a\rb"), b"a\r\nb\r\n.\r\n");
        assert_eq!(data(b"a\r"), b"a\r\n.\r\n");
        assert_eq!(data(b"a\n\r\n"), b"a\r\n\r\n.\r\n");
        assert_eq!(data(b""), b".\r\n");
    }

    fn reply(text: &str) -> Result<ServerReply, String> {
        read_reply(&mut text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn replies_single_and_multi_line() {
        assert_eq!(
            reply("250 ok\r\n"),
            Ok(ServerReply {
                code: 250,
                lines: vec!["ok".into()]
            })
        );
        assert_eq!(reply("220\r\n").map(|r| r.code), Ok(220));
        let ehlo = reply("250-mx\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n").unwrap();
        assert_eq!(ehlo.lines, ["mx", "8BITMIME", "SMTPUTF8"]);
        let r = Reply::from_server(&reply("550 5.1.1 <b@x>: no such user\r\n").unwrap());
        assert_eq!((r.permanent, r.code), (true, status::NO_SUCH_MAILBOX));
        assert_eq!(r.diagnostic, "smtp; 550 5.1.1 <b@x>: no such user");
        let r = Reply::from_server(&reply("451 try later\n").unwrap());
        assert_eq!((r.permanent, r.code), (false, status::TRANSIENT));
        // An enhanced code of the wrong class takes the class of the
        // action (classify): its subject and detail still say what it is.
        let r = Reply::from_server(&reply("550 4.1.1 odd\r\n").unwrap());
        assert_eq!((r.permanent, r.code), (true, status::NO_SUCH_MAILBOX));
        // A 5xx that asks to try again later defers.
        let r = Reply::from_server(&reply("550 5.2.2 mailbox full\r\n").unwrap());
        assert!(!r.permanent);
        assert_eq!(
            (r.code.to_string(), r.category),
            ("4.2.2".into(), Category::Full)
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            "",
            "250",
            "250-more\r\n",
            "hello\r\n",
            "25 short\r\n",
            "650 bad class\r\n",
            "250x ok\r\n",
            "250-a\r\n251 b\r\n",
        ] {
            assert!(reply(bad).is_err(), "{bad:?}");
        }
        let long = format!("250 {}\r\n", "x".repeat(MAX_REPLY_LINE));
        assert!(reply(&long).unwrap_err().contains("longer"));
        let many = "250-x\r\n".repeat(MAX_REPLY_LINES + 1) + "250 end\r\n";
        assert!(reply(&many).unwrap_err().contains("lines"));
    }
}

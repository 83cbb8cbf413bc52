//! A client for clamd, ClamAV's scanning daemon (issue 12, rule 2): a
//! message is streamed with `INSTREAM` and clamd answers whether a
//! signature matched. The protocol is clamd(8), "COMMANDS": each command
//! is `z`-prefixed and NUL-terminated, `INSTREAM` data goes in chunks each
//! prefixed by its length as a 4-byte big-endian number, a zero-length
//! chunk ends it, and the reply is `stream: OK`, `stream: NAME FOUND` or
//! `... ERROR`.
//!
//! One connection is kept across scans in clamd's `IDSESSION` mode, where
//! every reply is prefixed by its request number (`2: stream: OK`). When
//! clamd has closed the kept connection (after its `ReadTimeout` of
//! idleness it sends `COMMAND READ TIMED OUT` and closes), the next
//! request opens a new one. A scan is sent a second time only when the kept
//! connection turned out to be dead and clamd gave no reply at all to the
//! first attempt; a fresh connection's failure is always the caller's.
//!
//! Every socket operation has a timeout, and a reply is read up to a
//! deadline and at most [`MAX_REPLY`] bytes, so a hostile or stuck peer
//! costs bounded time and memory.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The longest reply postern reads from clamd: a signature name and its
/// request number fit many times over.
pub const MAX_REPLY: usize = 4096;

/// Where clamd listens: its `TCPSocket`/`TCPAddr` or its `LocalSocket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "clamd endpoint {0:?} is neither IP:PORT (127.0.0.1:3310), an absolute socket path (/run/clamav/clamd.ctl) nor unix:/PATH"
)]
pub struct EndpointError(pub String);

impl FromStr for Endpoint {
    type Err = EndpointError;

    /// `127.0.0.1:3310`, `[::1]:3310`, `/run/clamav/clamd.ctl` or
    /// `unix:/run/clamav/clamd.ctl`. Host names are not resolved: clamd
    /// runs next to the scanner.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if s.starts_with("unix:") {
            return Err(EndpointError(s.to_string()));
        }
        s.parse::<SocketAddr>()
            .map(Endpoint::Tcp)
            .map_err(|_| EndpointError(s.to_string()))
    }
}

/// What clamd found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The name of the signature that matched, as clamd reports it (its
    /// own databases' names, or `NAME.UNOFFICIAL` for a local database).
    Found(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error(
        "cannot connect to clamd at {endpoint}: {source}; is clamd running and is the endpoint its TCPSocket or LocalSocket?"
    )]
    Connect {
        endpoint: Endpoint,
        source: io::Error,
    },
    #[error("clamd at {endpoint} did not answer within {timeout:?}")]
    Timeout {
        endpoint: Endpoint,
        timeout: Duration,
    },
    #[error("connection to clamd at {endpoint} failed: {source}")]
    Io {
        endpoint: Endpoint,
        source: io::Error,
    },
    #[error("clamd at {endpoint} closed the connection without a reply")]
    Closed { endpoint: Endpoint },
    #[error("clamd at {endpoint} answered with an error: {message}")]
    Clamd { endpoint: Endpoint, message: String },
    #[error("clamd at {endpoint} sent a reply postern cannot read: {reply}")]
    BadReply { endpoint: Endpoint, reply: String },
    #[error(
        "message of {size} bytes is over clamd's StreamMaxLength of {max} bytes; not sent to clamd"
    )]
    TooLarge { size: u64, max: u64 },
}

/// A reply as [`parse_reply`] reads it, before the endpoint is known.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Verdict(Verdict),
    Pong,
    Error(String),
}

/// Reads one clamd reply (without its NUL). In a session (`id` given) the
/// reply must carry that request number; `Err` holds what was wrong.
pub fn parse_reply(raw: &[u8], id: Option<u64>) -> Result<Reply, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
    let body = match id {
        None => text,
        Some(id) => {
            let (n, rest) = text
                .split_once(": ")
                .ok_or_else(|| format!("no request number (expected {id})"))?;
            if n != id.to_string() {
                return Err(format!("request number {n:?}, expected {id}"));
            }
            rest
        }
    };
    if body == "PONG" {
        return Ok(Reply::Pong);
    }
    if let Some(message) = body.strip_suffix(" ERROR") {
        return Ok(Reply::Error(message.to_string()));
    }
    let Some(result) = body.strip_prefix("stream: ") else {
        return Err("neither stream:, PONG nor ERROR".to_string());
    };
    if result == "OK" {
        return Ok(Reply::Verdict(Verdict::Clean));
    }
    match result.strip_suffix(" FOUND") {
        Some(name) if !name.is_empty() && !name.contains(char::is_control) => {
            Ok(Reply::Verdict(Verdict::Found(name.to_string())))
        }
        _ => Err("neither OK, NAME FOUND nor ERROR".to_string()),
    }
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn set_timeouts(&self, read: Duration, write: Duration) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(read))?;
                s.set_write_timeout(Some(write))
            }
            Conn::Unix(s) => {
                s.set_read_timeout(Some(read))?;
                s.set_write_timeout(Some(write))
            }
        }
    }

    /// Whether clamd has closed the connection or sent something nobody
    /// asked for (`COMMAND READ TIMED OUT`): either way it is not usable.
    fn is_stale(&self) -> bool {
        // Any byte read here was unasked for, so reading (not peeking) is
        // fine: the connection is dropped either way.
        let mut byte = [0u8; 1];
        let nonblocking = |c: &Conn, on: bool| match c {
            Conn::Tcp(s) => s.set_nonblocking(on),
            Conn::Unix(s) => s.set_nonblocking(on),
        };
        if nonblocking(self, true).is_err() {
            return true;
        }
        let read = match self {
            Conn::Tcp(s) => (&*s).read(&mut byte),
            Conn::Unix(s) => (&*s).read(&mut byte),
        };
        let restored = nonblocking(self, false);
        !matches!(read, Err(e) if e.kind() == io::ErrorKind::WouldBlock) || restored.is_err()
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

/// A session with one clamd, kept open across scans.
pub struct Clamd {
    endpoint: Endpoint,
    timeout: Duration,
    max_stream: u64,
    chunk: usize,
    session: Option<Session>,
}

struct Session {
    conn: Conn,
    /// The number of the last request sent in this session.
    last_id: u64,
}

/// How one request on one connection went wrong.
enum Failure {
    /// Nothing came back: the connection was dead before or while the
    /// request was sent. Retried once when the connection was a kept one.
    NoReply(ClamdError),
    Other(ClamdError),
}

impl Failure {
    fn into_error(self) -> ClamdError {
        match self {
            Failure::NoReply(e) | Failure::Other(e) => e,
        }
    }
}

/// A request sent and not yet answered ([`Clamd::send`]).
pub struct Sent {
    session: Session,
    /// Its request number in the session.
    id: u64,
    /// How the writing went.
    result: io::Result<()>,
    /// Sent on a kept connection (which may have died meanwhile).
    reused: bool,
}

impl fmt::Debug for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sent")
            .field("id", &self.id)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

enum Request<'a> {
    Ping,
    Instream(&'a [u8]),
}

impl Clamd {
    /// `timeout` bounds connecting, every write, and the wait for each
    /// reply (which includes clamd's scan); `max_stream` is clamd's
    /// `StreamMaxLength`, above which a message is refused unsent;
    /// `chunk` is the size of each `INSTREAM` chunk.
    pub fn new(endpoint: Endpoint, timeout: Duration, max_stream: u64, chunk: usize) -> Clamd {
        Clamd {
            endpoint,
            timeout,
            max_stream,
            chunk: chunk.max(1),
            session: None,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Streams `data` (a whole message) to clamd and returns its verdict.
    pub fn scan(&mut self, data: &[u8]) -> Result<Verdict, ClamdError> {
        let sent = self.send(data)?;
        self.receive(sent, data)
    }

    /// The first half of [`Clamd::scan`]: streams `data` to clamd, which
    /// scans it while the caller does other work, and returns without
    /// waiting for the verdict; [`Clamd::receive`] reads it. `data` must
    /// be given to both (it is sent again, once, when a kept connection
    /// turns out to have died).
    pub fn send(&mut self, data: &[u8]) -> Result<Sent, ClamdError> {
        let size = data.len() as u64;
        if size > self.max_stream {
            return Err(ClamdError::TooLarge {
                size,
                max: self.max_stream,
            });
        }
        let (session, reused) = self.session()?;
        Ok(self.send_on(session, reused, &Request::Instream(data)))
    }

    /// The verdict of what [`Clamd::send`] sent.
    pub fn receive(&mut self, sent: Sent, data: &[u8]) -> Result<Verdict, ClamdError> {
        let reused = sent.reused;
        let reply = match self.finish(sent) {
            Ok(reply) => reply,
            Err(Failure::NoReply(_)) if reused => {
                let session = self.open()?;
                let again = self.send_on(session, false, &Request::Instream(data));
                self.finish(again).map_err(Failure::into_error)?
            }
            Err(f) => return Err(f.into_error()),
        };
        match reply {
            Reply::Verdict(v) => Ok(v),
            Reply::Pong => Err(self.bad_reply("PONG to INSTREAM")),
            Reply::Error(message) => Err(ClamdError::Clamd {
                endpoint: self.endpoint.clone(),
                message,
            }),
        }
    }

    /// `PING`: clamd is there and answers `PONG`.
    pub fn ping(&mut self) -> Result<(), ClamdError> {
        match self.request(Request::Ping)? {
            Reply::Pong => Ok(()),
            Reply::Verdict(_) => Err(self.bad_reply("a scan result to PING")),
            Reply::Error(message) => Err(ClamdError::Clamd {
                endpoint: self.endpoint.clone(),
                message,
            }),
        }
    }

    fn bad_reply(&self, what: &str) -> ClamdError {
        ClamdError::BadReply {
            endpoint: self.endpoint.clone(),
            reply: what.to_string(),
        }
    }

    fn request(&mut self, request: Request<'_>) -> Result<Reply, ClamdError> {
        let (session, reused) = self.session()?;
        let sent = self.send_on(session, reused, &request);
        match self.finish(sent) {
            Ok(reply) => Ok(reply),
            Err(Failure::NoReply(_)) if reused => {
                let session = self.open()?;
                let again = self.send_on(session, false, &request);
                self.finish(again).map_err(Failure::into_error)
            }
            Err(f) => Err(f.into_error()),
        }
    }

    /// The kept session if it is still open (and `true`), else a new one.
    fn session(&mut self) -> Result<(Session, bool), ClamdError> {
        match self.session.take() {
            Some(s) if !s.conn.is_stale() => Ok((s, true)),
            _ => Ok((self.open()?, false)),
        }
    }

    fn open(&self) -> Result<Session, ClamdError> {
        let connect_error = |source| ClamdError::Connect {
            endpoint: self.endpoint.clone(),
            source,
        };
        let conn = match &self.endpoint {
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, self.timeout).map_err(connect_error)?;
                // Chunk headers are small writes; do not wait for acks.
                s.set_nodelay(true).map_err(connect_error)?;
                Conn::Tcp(s)
            }
            Endpoint::Unix(path) => Conn::Unix(UnixStream::connect(path).map_err(connect_error)?),
        };
        conn.set_timeouts(self.timeout, self.timeout)
            .map_err(connect_error)?;
        let mut session = Session { conn, last_id: 0 };
        session
            .conn
            .write_all(b"zIDSESSION\0")
            .map_err(|e| self.io_error(e))?;
        Ok(session)
    }

    fn io_error(&self, source: io::Error) -> ClamdError {
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClamdError::Timeout {
                endpoint: self.endpoint.clone(),
                timeout: self.timeout,
            },
            _ => ClamdError::Io {
                endpoint: self.endpoint.clone(),
                source,
            },
        }
    }

    /// Sends one request on `session`; [`Clamd::finish`] reads its reply.
    fn send_on(&self, mut session: Session, reused: bool, request: &Request<'_>) -> Sent {
        let id = session.last_id + 1;
        session.last_id = id;
        let result = match request {
            Request::Ping => session.conn.write_all(b"zPING\0"),
            Request::Instream(data) => write_instream(&mut session.conn, data, self.chunk),
        };
        Sent {
            session,
            id,
            result,
            reused,
        }
    }

    /// Reads the reply to what [`Clamd::send_on`] sent; the session is
    /// kept for the next request only when this one went right.
    fn finish(&mut self, sent: Sent) -> Result<Reply, Failure> {
        let Sent {
            mut session,
            id,
            result: sent,
            ..
        } = sent;
        // clamd may answer before reading everything (a size limit) and
        // close; its reply is then still worth reading. A write that timed
        // out is not followed by a second wait.
        let sent = match sent {
            Err(e) if !is_dead(&e) => return Err(Failure::Other(self.io_error(e))),
            sent => sent,
        };
        let reply = read_reply(&mut session.conn, self.timeout);
        let raw = match (sent, reply) {
            (_, Ok(raw)) => raw,
            (Err(e), Err(ReadError::Closed | ReadError::Io(_))) => {
                return Err(Failure::NoReply(self.io_error(e)));
            }
            (Err(e), _) => return Err(Failure::Other(self.io_error(e))),
            (Ok(()), Err(ReadError::Closed)) => {
                return Err(Failure::NoReply(ClamdError::Closed {
                    endpoint: self.endpoint.clone(),
                }));
            }
            (Ok(()), Err(ReadError::Io(e))) if is_dead(&e) => {
                return Err(Failure::NoReply(self.io_error(e)));
            }
            (Ok(()), Err(ReadError::Io(e))) => return Err(Failure::Other(self.io_error(e))),
            (Ok(()), Err(ReadError::Timeout)) => {
                return Err(Failure::Other(ClamdError::Timeout {
                    endpoint: self.endpoint.clone(),
                    timeout: self.timeout,
                }));
            }
            (Ok(()), Err(ReadError::TooLong(head))) => {
                return Err(Failure::Other(ClamdError::BadReply {
                    endpoint: self.endpoint.clone(),
                    reply: format!(
                        "over {MAX_REPLY} bytes without an end, starting {}",
                        printable(&head)
                    ),
                }));
            }
        };
        let reply = parse_reply(&raw, Some(id)).map_err(|why| {
            Failure::Other(ClamdError::BadReply {
                endpoint: self.endpoint.clone(),
                reply: format!("{} ({why})", printable(&raw)),
            })
        })?;
        // clamd ends a session after an ERROR; start afresh next time.
        if !matches!(reply, Reply::Error(_)) {
            self.session = Some(session);
        }
        Ok(reply)
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        if let Some(mut s) = self.session.take() {
            // Best effort: clamd closes an abandoned session by itself.
            let _ = s.conn.write_all(b"zEND\0");
        }
    }
}

fn is_dead(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

fn write_instream(conn: &mut Conn, data: &[u8], chunk: usize) -> io::Result<()> {
    // Header and chunk go out in one write, so a small chunk size does
    // not double the number of segments.
    let mut frame = Vec::with_capacity(4 + chunk);
    conn.write_all(b"zINSTREAM\0")?;
    for piece in data.chunks(chunk) {
        frame.clear();
        // chunk <= data.len() <= max_stream; clamd's limit is far below 4 GiB.
        let len = u32::try_from(piece.len())
            .map_err(|_| io::Error::other("INSTREAM chunk over 4 GiB"))?;
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(piece);
        conn.write_all(&frame)?;
    }
    conn.write_all(&[0, 0, 0, 0])?;
    conn.flush()
}

enum ReadError {
    Timeout,
    Closed,
    TooLong(Vec<u8>),
    Io(io::Error),
}

/// Reads up to the reply's NUL (or, for clamd's own timeout notice, a
/// newline) before `timeout` has passed in all and within [`MAX_REPLY`].
fn read_reply(conn: &mut Conn, timeout: Duration) -> Result<Vec<u8>, ReadError> {
    let deadline = Instant::now() + timeout;
    let mut reply = Vec::with_capacity(64);
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        let set = match conn {
            Conn::Tcp(s) => s.set_read_timeout(Some(left)),
            Conn::Unix(s) => s.set_read_timeout(Some(left)),
        };
        set.map_err(ReadError::Io)?;
        // Never read past one reply: at most what still fits.
        let room = (MAX_REPLY + 1 - reply.len()).min(buf.len());
        let n = match conn.read(&mut buf[..room]) {
            Ok(0) if reply.is_empty() => return Err(ReadError::Closed),
            Ok(0) => return Ok(reply),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Timeout);
            }
            Err(e) if reply.is_empty() => return Err(ReadError::Io(e)),
            Err(_) => return Ok(reply),
        };
        reply.extend_from_slice(&buf[..n]);
        if let Some(end) = memchr::memchr2(0, b'\n', &reply) {
            reply.truncate(end);
            return Ok(reply);
        }
        if reply.len() > MAX_REPLY {
            reply.truncate(80);
            return Err(ReadError::TooLong(reply));
        }
    }
}

/// A reply shown in an error: control characters escaped, at most 200
/// characters.
fn printable(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out: String = text
        .chars()
        .take(200)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_bad_ones_say_why() {
        assert_eq!(
            "127.0.0.1:3310".parse(),
            Ok(Endpoint::Tcp("127.0.0.1:3310".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:3310".parse(),
            Ok(Endpoint::Tcp("[::1]:3310".parse().unwrap()))
        );
        assert_eq!(
            "/run/clamav/clamd.ctl".parse(),
            Ok(Endpoint::Unix("/run/clamav/clamd.ctl".into()))
        );
        assert_eq!(
            "unix:/run/clamav/clamd.ctl".parse(),
            Ok(Endpoint::Unix("/run/clamav/clamd.ctl".into()))
        );
        for bad in [
            "",
            "localhost:3310",
            "127.0.0.1",
            "unix:relative",
            "clamd.ctl",
            "127.0.0.1:99999",
        ] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(err.to_string().contains("IP:PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn replies_parse_with_and_without_request_numbers() {
        assert_eq!(
            parse_reply(b"stream: OK", None),
            Ok(Reply::Verdict(Verdict::Clean))
        );
        assert_eq!(
            parse_reply(b"3: stream: Eicar-Signature FOUND", Some(3)),
            Ok(Reply::Verdict(Verdict::Found("Eicar-Signature".into())))
        );
        assert_eq!(parse_reply(b"1: PONG", Some(1)), Ok(Reply::Pong));
        assert_eq!(
            parse_reply(b"5: INSTREAM size limit exceeded. ERROR", Some(5)),
            Ok(Reply::Error("INSTREAM size limit exceeded.".into()))
        );
        for (bad, id) in [
            (&b"2: stream: OK"[..], Some(3)),
            (b"stream: OK", Some(1)),
            (b"1: stream: FOUND", Some(1)),
            (b"1: stream: maybe", Some(1)),
            (b"1: hello", Some(1)),
            (b"COMMAND READ TIMED OUT", Some(1)),
            (b"\xff\xfe", None),
        ] {
            assert!(parse_reply(bad, id).is_err(), "{}", printable(bad));
        }
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable(b"a\x01b\n"), "a\\u{1}b\\n");
        assert_eq!(printable(&[b'x'; 300]).chars().count(), 201);
    }
}

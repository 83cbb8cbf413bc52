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

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::mail::job::{Job, RcptStatus, Recipient};
use crate::mail::status::{self, Status};
use crate::mail::text;

/// RFC 5321 section 4.5.3.1.5 allows reply lines of 512 octets; be
/// generous, but bounded.
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;
/// Output buffer for the message.
const DATA_BUFFER: usize = 64 * 1024;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub helo: String,
    /// Longest wait for the connection, the greeting and each reply or
    /// write.
    pub timeout: Duration,
    /// Longest a whole attempt may take, name lookup to the final reply:
    /// kept below pipe(8)'s `command_time_limit`, so that the deliverer
    /// is never killed between the relay's 250 and recording it.
    pub deadline: Duration,
}

impl Relay {
    pub fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A reply as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

/// Reads one reply (RFC 5321 section 4.2): lines `ddd-text` then a last
/// line `ddd text` or `ddd`, the same code on every line.
pub fn read_reply<R: BufRead>(input: &mut R) -> Result<ServerReply, String> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let mut raw = Vec::new();
        let n = io::Read::take(&mut *input, MAX_REPLY_LINE as u64 + 1)
            .read_until(b'\n', &mut raw)
            .map_err(|e| format!("reading the reply: {e}"))?;
        if n == 0 {
            return Err("connection closed before a complete reply".into());
        }
        if raw.last() != Some(&b'\n') {
            return Err(if n > MAX_REPLY_LINE {
                format!("reply line longer than {MAX_REPLY_LINE} bytes")
            } else {
                "connection closed inside a reply line".into()
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
            return Err(format!(
                "malformed reply line {:?}",
                text::bounded(line, 80)
            ));
        }
        let this: u16 = line[..3]
            .parse()
            .map_err(|_| "malformed reply code".to_string())?;
        if *code.get_or_insert(this) != this {
            return Err(format!(
                "reply lines disagree on the code ({} then {this})",
                code.unwrap_or(0)
            ));
        }
        lines.push(line.get(4..).unwrap_or("").to_owned());
        if bytes.get(3) != Some(&b'-') {
            return Ok(ServerReply { code: this, lines });
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(format!("reply longer than {MAX_REPLY_LINES} lines"));
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
}

impl Want {
    fn accepts(self, code: u16) -> bool {
        match self {
            Want::Completion => (200..300).contains(&code),
            Want::StartData => code == 354,
        }
    }
}

/// A failed step, as RFC 3464 wants it in a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    permanent: bool,
    /// Enhanced status code: from the reply text, else the class default.
    code: Status,
    /// `smtp; 550 5.1.1 ...` or a local reason, bounded when recorded.
    diagnostic: String,
    /// The server's 4xx or 5xx reply code; 0 when there was no usable
    /// reply or the reply made no sense for the command.
    basic: u16,
}

impl Reply {
    /// A 4xx or 5xx reply: the server's verdict.
    fn from_server(r: &ServerReply) -> Reply {
        let permanent = r.code >= 500;
        let class = if permanent { 5 } else { 4 };
        let text = r.lines.join(" ");
        let first = text.split_whitespace().next().unwrap_or("");
        let code = Status::parse_class(first, class).unwrap_or(Status::undefined(class));
        Reply {
            permanent,
            code,
            diagnostic: format!("smtp; {} {text}", r.code),
            basic: r.code,
        }
    }

    /// A positive reply of the wrong kind (250 to DATA, 354 after the
    /// message): the server is broken or hostile, and nothing it said can
    /// be taken as delivery. Temporary: another attempt may find it sane.
    fn unexpected(stage: &str, r: &ServerReply) -> Reply {
        Reply {
            permanent: false,
            code: status::PROTOCOL,
            diagnostic: format!(
                "smtp; {} {} (unexpected reply to {stage})",
                r.code,
                r.lines.join(" ")
            ),
            basic: 0,
        }
    }

    /// No usable reply (connection refused, timeout, dropped, nonsense).
    fn local(reason: String) -> Reply {
        Reply {
            permanent: false,
            code: status::BAD_CONNECTION,
            diagnostic: format!("x-postern; {reason}"),
            basic: 0,
        }
    }
}

/// What one attempt did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
    /// The reply or reason that ended the transaction early, if one did
    /// (for the log: only its code is shown unless addresses may be).
    pub problem: Option<(Status, String)>,
}

/// Tries every undone recipient of `job` once and records the outcome in
/// each recipient's status.
pub fn deliver(relay: &Relay, job: &mut Job) -> Attempt {
    let undone: Vec<usize> = (0..job.envelope.recipients.len())
        .filter(|&i| !job.envelope.recipients[i].status.is_done())
        .collect();
    let mut attempt = Attempt::default();
    if undone.is_empty() {
        return attempt;
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let result = transaction(relay, job, &undone, &mut accepted, &mut refused);
    let recipients = &mut job.envelope.recipients;
    match result {
        Ok(()) => {
            for &i in &accepted {
                recipients[i].settle(RcptStatus::Delivered, None);
            }
        }
        Err(reply) => {
            // Every recipient without its own RCPT reply shares the fate
            // of the transaction (`refused` is in order, as `undone` is).
            for &i in &undone {
                if refused.binary_search(&i).is_err() {
                    set_failure(&mut recipients[i], &reply);
                }
            }
            attempt.problem = Some((reply.code, text::bounded(&reply.diagnostic, 200)));
        }
    }
    for &i in &undone {
        match recipients[i].status {
            RcptStatus::Delivered => attempt.delivered += 1,
            RcptStatus::Failed { .. } => attempt.failed += 1,
            _ => attempt.deferred += 1,
        }
    }
    attempt
}

fn set_failure(r: &mut Recipient, reply: &Reply) {
    let status = if reply.permanent {
        RcptStatus::Failed { code: reply.code }
    } else {
        RcptStatus::Deferred { code: reply.code }
    };
    r.settle(status, Some(&reply.diagnostic));
}

/// The end of an attempt: every wait is the shorter of the per-step
/// timeout and what is left of the attempt's deadline.
#[derive(Debug, Clone, Copy)]
struct Clock {
    step: Duration,
    end: Instant,
}

impl Clock {
    fn wait(&self) -> io::Result<Duration> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the attempt's deadline (relay.deadline) passed",
            ));
        }
        Ok(left.min(self.step))
    }
}

/// Resolves `host:port` within `wait`. getaddrinfo(3) has no timeout of
/// its own, so a name is looked up on a thread that is left behind if it
/// hangs (the process ends soon after); an address literal, the usual
/// relay, needs no lookup and no thread.
fn resolve(host: &str, port: u16, wait: Duration) -> io::Result<Vec<SocketAddr>> {
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

/// A stream whose every write waits at most what the clock allows, so
/// that a relay reading slowly cannot hold the message past the deadline.
struct Timed<'a> {
    stream: &'a TcpStream,
    clock: Clock,
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.clock.wait()?))?;
        (&*self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.stream).flush()
    }
}

/// An open SMTP session after EHLO (or HELO).
struct Session {
    input: BufReader<TcpStream>,
    output: TcpStream,
    clock: Clock,
    /// EHLO keywords, upper case (RFC 5321 section 4.1.1.1).
    extensions: Vec<String>,
}

impl Session {
    /// The output side, every write bounded by the attempt's clock.
    fn timed(&self) -> Timed<'_> {
        Timed {
            stream: &self.output,
            clock: self.clock,
        }
    }

    fn open(relay: &Relay, clock: Clock) -> Result<Session, Reply> {
        let label = relay.label();
        let local =
            |what: &str, e: &dyn std::fmt::Display| Reply::local(format!("{what} {label}: {e}"));
        let addrs = clock
            .wait()
            .and_then(|wait| resolve(&relay.host, relay.port, wait))
            .map_err(|e| local("cannot resolve", &e))?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut stream = None;
        for addr in addrs {
            match clock
                .wait()
                .and_then(|wait| TcpStream::connect_timeout(&addr, wait))
            {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| local("cannot connect to", &last))?;
        let setup = |s: &TcpStream| {
            s.set_nodelay(true)?;
            s.try_clone()
        };
        let output = setup(&stream).map_err(|e| local("cannot set up the connection to", &e))?;
        let mut session = Session {
            input: BufReader::new(stream),
            output,
            clock,
            extensions: Vec::new(),
        };
        // A refused greeting or EHLO is not a verdict on the message: like
        // Postfix (smtp_skip_5xx_greeting), it is a temporary failure.
        let soft = |mut r: Reply| {
            if r.permanent {
                r.permanent = false;
                r.code = status::BAD_CONNECTION;
            }
            r
        };
        session
            .expect(None, "greeting", Want::Completion)
            .map_err(soft)?;
        let ehlo = format!("EHLO {}\r\n", relay.helo);
        match session.expect(Some(&ehlo), "EHLO", Want::Completion) {
            Ok(reply) => {
                session.extensions = reply
                    .lines
                    .iter()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_ascii_uppercase)
                    .collect();
            }
            Err(r) if r.basic >= 500 => {
                let helo = format!("HELO {}\r\n", relay.helo);
                session
                    .expect(Some(&helo), "HELO", Want::Completion)
                    .map_err(soft)?;
            }
            Err(r) => return Err(soft(r)),
        }
        Ok(session)
    }

    fn supports(&self, keyword: &str) -> bool {
        self.extensions.iter().any(|e| e == keyword)
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
        let fail = |e: io::Error| Reply::local(format!("{stage}: {e}"));
        if let Some(c) = command {
            self.timed().write_all(c.as_bytes()).map_err(fail)?;
        }
        let wait = self.clock.wait().map_err(fail)?;
        self.output.set_read_timeout(Some(wait)).map_err(fail)?;
        let reply =
            read_reply(&mut self.input).map_err(|e| Reply::local(format!("{stage}: {e}")))?;
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
        let mut out = BufWriter::with_capacity(DATA_BUFFER, self.timed());
        write_data(&mut out, msg)
            .and_then(|()| out.flush())
            .map_err(|e| Reply::local(format!("sending the message: {e}")))?;
        drop(out);
        self.expect(None, "end of DATA", Want::Completion)
    }

    /// Ends the session without waiting for the reply: the outcome is
    /// already known, and every second spent here is a second in which a
    /// killed deliverer would lose what the relay accepted.
    fn quit(self) {
        let _ = self.timed().write_all(b"QUIT\r\n");
    }
}

/// One SMTP transaction. RCPT refusals are recorded on the recipients
/// directly (their indices in `refused`); an `Err` is what ended the
/// transaction for all the rest.
fn transaction(
    relay: &Relay,
    job: &mut Job,
    undone: &[usize],
    accepted: &mut Vec<usize>,
    refused: &mut Vec<usize>,
) -> Result<(), Reply> {
    let clock = Clock {
        step: relay.timeout,
        end: Instant::now() + relay.deadline,
    };
    let mut session = Session::open(relay, clock)?;
    let mut params = String::new();
    if job.envelope.eight_bit && session.supports("8BITMIME") {
        params.push_str(" BODY=8BITMIME");
    }
    let utf8 = job.envelope.sender.address().is_some_and(|a| a.is_utf8())
        || undone
            .iter()
            .any(|&i| job.envelope.recipients[i].address.is_utf8());
    if utf8 && session.supports("SMTPUTF8") {
        params.push_str(" SMTPUTF8");
    }
    let mail = format!("MAIL FROM:{}{params}\r\n", job.envelope.sender);
    session.expect(Some(&mail), "MAIL FROM", Want::Completion)?;
    for &i in undone {
        let r = &mut job.envelope.recipients[i];
        let rcpt = format!("RCPT TO:<{}>\r\n", r.address);
        match session.expect(Some(&rcpt), "RCPT TO", Want::Completion) {
            Ok(_) => accepted.push(i),
            // The server's own answer for this recipient.
            Err(reply) if reply.basic != 0 => {
                set_failure(r, &reply);
                refused.push(i);
            }
            Err(reply) => return Err(reply),
        }
    }
    if accepted.is_empty() {
        session.quit();
        return Ok(());
    }
    session.expect(Some("DATA\r\n"), "DATA", Want::StartData)?;
    session.data(&job.message)?;
    session.quit();
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
        read_reply(&mut text.as_bytes())
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
        // An enhanced code of the wrong class is not believed.
        assert_eq!(
            Reply::from_server(&reply("550 4.1.1 odd\r\n").unwrap()).code,
            status::PERMANENT
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

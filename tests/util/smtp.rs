//! An SMTP server for tests (RFC 5321 subset) that can be told to refuse
//! chosen recipients, greylist, drop the connection mid-transaction, fail
//! DATA, offer STARTTLS (rustls, with a certificate from `util::tls`) and
//! extensions, and records every message it accepts with the commands
//! that brought it.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// RCPT address (without brackets) → the reply line to give it.
    pub rcpt_replies: HashMap<String, String>,
    /// Reply `421 ...` and close when this RCPT (1-based) arrives.
    pub drop_at_rcpt: Option<usize>,
    /// Reply to the end of DATA (default `250 2.0.0 Ok`).
    pub data_reply: Option<String>,
    /// Greeting (default `220 sink ESMTP`).
    pub greeting: Option<String>,
    /// Reply to MAIL FROM (default `250 2.1.0 Ok`).
    pub mail_reply: Option<String>,
    /// Reply to the DATA command (default `354 ...`); anything else means
    /// no message follows.
    pub data_start_reply: Option<String>,
    /// Wait this long before the reply to the end of DATA.
    pub data_delay: Option<Duration>,
    /// Offer STARTTLS with this server configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Offer STARTTLS, answer 220, then send bytes that are no handshake.
    pub broken_tls: bool,
    /// More EHLO keywords (`DSN`, `SIZE 1000`).
    pub extensions: Vec<String>,
    /// Recipients refused with `450 4.2.0 greylisted` the first time each
    /// is seen (by this server), accepted after.
    pub greylist: HashSet<String>,
    /// Close the connection half-way through the message.
    pub drop_in_data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// The MAIL and RCPT commands as sent, parameters included.
    pub commands: Vec<String>,
    /// The message came over TLS.
    pub tls: bool,
    /// The message as sent, dot-unstuffed, with CRLF line endings, without
    /// the final CRLF before the dot.
    pub data: Vec<u8>,
}

pub struct Server {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<Received>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(script: Script) -> Server {
        Server::start_on(0, script)
    }

    /// Listens on 127.0.0.1:`port` (0 = any free port).
    pub fn start_on(port: u16, script: Script) -> Server {
        Server::start_at("127.0.0.1", port, script)
    }

    /// Listens on `ip`:`port` (any loopback address: 127.0.0.2 ... let
    /// several "MX hosts" share one port).
    pub fn start_at(ip: &str, port: u16, script: Script) -> Server {
        let listener = TcpListener::bind((ip, port)).expect("bind test SMTP server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, c) = (messages.clone(), stop.clone(), connections.clone());
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        let (m, script, seen) = (m.clone(), script.clone(), seen.clone());
                        std::thread::spawn(move || {
                            let _ = session(stream, &script, &m, &seen);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            port,
            messages,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.messages.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The connection: TCP, then TLS after STARTTLS.
trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

fn session(
    stream: TcpStream,
    script: &Script,
    messages: &Mutex<Vec<Received>>,
    seen: &Mutex<HashSet<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nonblocking(false)?;
    // Replies are written in pieces: without this, Nagle's algorithm and
    // the client's delayed ACK hold each one back ~40 ms.
    stream.set_nodelay(true)?;
    let mut io: BufReader<Box<dyn Io>> = BufReader::new(Box::new(stream.try_clone()?));
    let greeting = script
        .greeting
        .clone()
        .unwrap_or_else(|| "220 sink ESMTP".into());
    write!(io.get_mut(), "{greeting}\r\n")?;
    if !greeting.starts_with('2') {
        return Ok(());
    }
    let mut from = String::new();
    let mut rcpts: Vec<String> = Vec::new();
    let mut commands: Vec<String> = Vec::new();
    let mut rcpt_count = 0;
    let mut tls = false;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let out = io.get_mut();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut words: Vec<String> = vec![
                "sink".into(),
                "8BITMIME".into(),
                "SMTPUTF8".into(),
                "PIPELINING".into(),
            ];
            if (script.tls.is_some() || script.broken_tls) && !tls {
                words.push("STARTTLS".into());
            }
            words.extend(script.extensions.iter().cloned());
            let last = words.len() - 1;
            let mut reply = String::new();
            for (i, w) in words.iter().enumerate() {
                reply.push_str(&format!("250{}{w}\r\n", if i == last { ' ' } else { '-' }));
            }
            out.write_all(reply.as_bytes())?;
        } else if upper == "STARTTLS" && !tls && (script.tls.is_some() || script.broken_tls) {
            write!(out, "220 2.0.0 Ready to start TLS\r\n")?;
            if script.broken_tls {
                out.write_all(b"this is not a TLS record\r\n")?;
                return Ok(());
            }
            let config = script.tls.clone().expect("tls config");
            let conn = rustls::ServerConnection::new(config).expect("server connection");
            let tcp = stream.try_clone()?;
            io = BufReader::new(Box::new(rustls::StreamOwned::new(conn, tcp)));
            tls = true;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].split(' ').next().unwrap_or("").to_string();
            rcpts.clear();
            commands = vec![cmd.clone()];
            rcpt_count = 0;
            let reply = script.mail_reply.as_deref().unwrap_or("250 2.1.0 Ok");
            write!(out, "{reply}\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            rcpt_count += 1;
            commands.push(cmd.clone());
            let addr = cmd[8..]
                .split(' ')
                .next()
                .unwrap_or("")
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
            if script.drop_at_rcpt == Some(rcpt_count) {
                write!(out, "421 4.3.2 Service shutting down, closing channel\r\n")?;
                return Ok(());
            }
            if script.greylist.contains(&addr) && seen.lock().expect("lock").insert(addr.clone()) {
                write!(
                    out,
                    "450 4.2.0 <{addr}>: Recipient address rejected: Greylisted, try again later\r\n"
                )?;
                continue;
            }
            match script.rcpt_replies.get(&addr) {
                Some(reply) => write!(out, "{reply}\r\n")?,
                None => {
                    rcpts.push(addr);
                    write!(out, "250 2.1.5 Ok\r\n")?;
                }
            }
        } else if upper == "DATA" {
            if rcpts.is_empty() {
                write!(out, "554 5.5.1 Error: no valid recipients\r\n")?;
                continue;
            }
            let start = script
                .data_start_reply
                .as_deref()
                .unwrap_or("354 End data with <CR><LF>.<CR><LF>");
            write!(out, "{start}\r\n")?;
            if !start.starts_with("354") {
                continue;
            }
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if io.read_until(b'\n', &mut l)? == 0 {
                    return Ok(());
                }
                if l == b".\r\n" {
                    break;
                }
                let l = if l.starts_with(b"..") {
                    &l[1..]
                } else {
                    &l[..]
                };
                data.extend_from_slice(l);
                if script.drop_in_data && data.len() > 10 {
                    return Ok(());
                }
            }
            if data.ends_with(b"\r\n") {
                data.truncate(data.len() - 2);
            }
            if let Some(wait) = script.data_delay {
                std::thread::sleep(wait);
            }
            let reply = script
                .data_reply
                .clone()
                .unwrap_or_else(|| "250 2.0.0 Ok: queued".into());
            if reply.starts_with('2') {
                messages.lock().expect("lock").push(Received {
                    mail_from: from.clone(),
                    rcpts: rcpts.clone(),
                    commands: commands.clone(),
                    tls,
                    data,
                });
            }
            write!(io.get_mut(), "{reply}\r\n")?;
        } else if upper == "QUIT" {
            write!(out, "221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            write!(out, "250 2.0.0 Ok\r\n")?;
        } else {
            write!(out, "502 5.5.2 Error: command not recognized\r\n")?;
        }
        io.get_mut().flush()?;
    }
}

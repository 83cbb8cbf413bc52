//! An SMTP server for tests (RFC 5321 subset) that can be told to refuse
//! chosen recipients, drop the connection mid-transaction, or fail DATA,
//! and records every message it accepts.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// The message as sent, dot-unstuffed, with CRLF line endings, without
    /// the final CRLF before the dot.
    pub data: Vec<u8>,
}

pub struct Server {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(script: Script) -> Server {
        Server::start_on(0, script)
    }

    /// Listens on 127.0.0.1:`port` (0 = any free port).
    pub fn start_on(port: u16, script: Script) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind test SMTP server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (messages.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (m, script) = (m.clone(), script.clone());
                        std::thread::spawn(move || {
                            let _ = session(stream, &script, &m);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            port,
            messages,
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

fn session(
    stream: TcpStream,
    script: &Script,
    messages: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nonblocking(false)?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let greeting = script
        .greeting
        .clone()
        .unwrap_or_else(|| "220 sink ESMTP".into());
    write!(out, "{greeting}\r\n")?;
    if !greeting.starts_with('2') {
        return Ok(());
    }
    let mut from = String::new();
    let mut rcpts: Vec<String> = Vec::new();
    let mut rcpt_count = 0;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write!(
                out,
                "250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
            )?;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].to_string();
            rcpts.clear();
            rcpt_count = 0;
            let reply = script.mail_reply.as_deref().unwrap_or("250 2.1.0 Ok");
            write!(out, "{reply}\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            rcpt_count += 1;
            let addr = cmd[8..]
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
            if script.drop_at_rcpt == Some(rcpt_count) {
                write!(out, "421 4.3.2 Service shutting down, closing channel\r\n")?;
                return Ok(());
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
                if input.read_until(b'\n', &mut l)? == 0 {
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
                    data,
                });
            }
            write!(out, "{reply}\r\n")?;
        } else if upper == "QUIT" {
            write!(out, "221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            write!(out, "250 2.0.0 Ok\r\n")?;
        } else {
            write!(out, "502 5.5.2 Error: command not recognized\r\n")?;
        }
    }
}

//! Logging under the privacy rules of postern(7): a line carries queue ids,
//! sizes, timings and status codes, never an address, subject or body
//! unless the operator sets `log_addresses = true`.
//!
//! Lines go to syslog (facility mail, RFC 3164 framing on `/dev/log`), to
//! stderr, or to a file. Logging never fails or blocks a delivery: a full
//! or missing syslog socket, or an unwritable file, loses the line, not the
//! mail.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::SystemTime;

use crate::config::{Config, LogTarget};
use crate::mail::text;

const SYSLOG_SOCKET: &str = "/dev/log";
/// Facility mail (2) times 8, plus the severity.
const FACILITY_MAIL: u8 = 2 << 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Info = 6,
}

enum Sink {
    Syslog(UnixDatagram),
    Stderr,
    File(File),
    Discard,
}

pub struct Log {
    ident: &'static str,
    pid: u32,
    sink: Sink,
    show_addresses: bool,
}

impl Log {
    /// Opens the log the configuration asks for; falls back, never fails.
    pub fn open(ident: &'static str, config: &Config) -> Log {
        let sink = match config.log {
            LogTarget::Syslog => syslog().unwrap_or(Sink::Discard),
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::File => config
                .log_file
                .as_ref()
                .and_then(|p| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o640)
                        .open(p)
                        .ok()
                })
                .map_or(Sink::Discard, Sink::File),
            LogTarget::None => Sink::Discard,
            // stderr of a pipe(8) command becomes bounce text: only a
            // terminal gets log lines there.
            LogTarget::Auto => syslog().unwrap_or(if std::io::stderr().is_terminal() {
                Sink::Stderr
            } else {
                Sink::Discard
            }),
        };
        Log {
            ident,
            pid: std::process::id(),
            sink,
            show_addresses: config.log_addresses,
        }
    }

    /// A log that writes nothing (tests, and tools run before config loads).
    pub fn discard(ident: &'static str) -> Log {
        Log {
            ident,
            pid: std::process::id(),
            sink: Sink::Discard,
            show_addresses: false,
        }
    }

    pub fn info(&self, args: fmt::Arguments<'_>) {
        self.write(Severity::Info, args);
    }

    pub fn warning(&self, args: fmt::Arguments<'_>) {
        self.write(Severity::Warning, args);
    }

    pub fn error(&self, args: fmt::Arguments<'_>) {
        self.write(Severity::Error, args);
    }

    /// Whether addresses and remote reply texts may appear in log lines.
    pub fn shows_addresses(&self) -> bool {
        self.show_addresses
    }

    fn write(&self, severity: Severity, args: fmt::Arguments<'_>) {
        let line = args.to_string();
        let text = text::clean(&line);
        let label = match severity {
            Severity::Error => "error: ",
            Severity::Warning => "warning: ",
            Severity::Info => "",
        };
        match &self.sink {
            Sink::Syslog(sock) => {
                let pri = FACILITY_MAIL | severity as u8;
                let line = format!("<{pri}>{}[{}]: {label}{text}", self.ident, self.pid);
                let _ = sock.send(line.as_bytes());
            }
            Sink::Stderr => {
                let line = format!("{}[{}]: {label}{text}\n", self.ident, self.pid);
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Sink::File(f) => {
                let stamp = humantime::format_rfc3339_millis(SystemTime::now());
                let line = format!("{stamp} {}[{}]: {label}{text}\n", self.ident, self.pid);
                let _ = (&*f).write_all(line.as_bytes());
            }
            Sink::Discard => {}
        }
    }
}

fn syslog() -> Option<Sink> {
    syslog_at(Path::new(SYSLOG_SOCKET))
}

/// A syslog sink on the datagram socket `path`: non-blocking, so that a
/// syslog daemon that stops reading costs log lines, not deliveries.
fn syslog_at(path: &Path) -> Option<Sink> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(path).ok()?;
    sock.set_nonblocking(true).ok()?;
    Some(Sink::Syslog(sock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sink_writes_one_line_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postern.log");
        let config = Config {
            log: LogTarget::File,
            log_file: Some(path.clone()),
            ..Config::default()
        };
        let log = Log::open("postern-test", &config);
        log.info(format_args!("ABC: status=sent\nforged line"));
        log.warning(format_args!("second"));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("postern-test[")
                && lines[0].ends_with("ABC: status=sent forged line")
        );
        assert!(lines[1].ends_with("warning: second"));
        assert!(!log.shows_addresses());
    }

    #[test]
    fn unwritable_file_and_missing_syslog_fall_back_to_discarding() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/postern.log");
        let mut config = Config {
            log: LogTarget::File,
            log_file: Some(missing.clone()),
            ..Config::default()
        };
        let log = Log::open("t", &config);
        assert!(matches!(log.sink, Sink::Discard));
        log.info(format_args!("lost, harmlessly"));
        assert!(!missing.exists() && !dir.path().join("no").exists());

        // No syslog socket: lines are dropped, the tool goes on.
        let no_socket = dir.path().join("log");
        assert!(syslog_at(&no_socket).is_none());
        // A path that is not a socket is no syslog either.
        std::fs::write(&no_socket, b"").unwrap();
        assert!(syslog_at(&no_socket).is_none());
        config.log = LogTarget::Syslog;
        let log = Log::open("t", &config);
        if !Path::new(SYSLOG_SOCKET).exists() {
            assert!(matches!(log.sink, Sink::Discard));
        }
        log.info(format_args!("lost or sent, harmlessly"));
    }

    /// A syslog daemon that stops reading: its socket's queue fills, and
    /// every further line is dropped at once instead of blocking the
    /// delivery. The lines that fit arrive whole, one per datagram.
    #[test]
    fn a_full_syslog_socket_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let sink = syslog_at(&path).expect("a socket to log to");
        let log = Log {
            ident: "postern-test",
            pid: 42,
            sink,
            show_addresses: false,
        };
        let (done, finished) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            // Far more than any socket queue holds (max_dgram_qlen, buffers).
            for i in 0..20_000 {
                log.warning(format_args!("line {i}"));
            }
            let _ = done.send(());
        });
        assert!(
            finished
                .recv_timeout(std::time::Duration::from_secs(20))
                .is_ok(),
            "logging to a full syslog socket blocked"
        );
        writer.join().unwrap();
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<20>postern-test[42]: warning: line 0");
    }
}

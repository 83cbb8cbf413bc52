//! End to end through a real Postfix: a message goes in by SMTP to a
//! private Postfix instance whose public smtpd has postern as its content
//! filter (the entries of contrib/postfix/master.cf and main.cf, the script
//! contrib/postfix/postern-filter), comes back through the reinjection
//! listener, and leaves Postfix for smtp-sink, which stores each message
//! as a file. tests/fixtures/postfix.sh builds and stops the instance.
//!
//! These tests need root: the fixture starts Postfix and creates the
//! system user `postern` that pipe(8) runs the filter as. As any other
//! user each test fails and says so (`make test` runs as root); Postfix
//! missing is a failure too (`make deps` installs it). Neither is a skip.
//!
//! Each test has its own instance in its own directory under /tmp, on its
//! own ports, and stops it when it ends, also when it panics. One instance
//! runs at a time. Set POSTERN_KEEP_TEST_DIR=1 to keep the directories.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[path = "../lib/tests/gpg/mod.rs"]
mod gpg;
#[path = "util/pgp.rs"]
mod pgp;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/postfix.sh");
const RECEIVER: &str = env!("CARGO_BIN_EXE_postern-receiver");
const DELIVERER: &str = env!("CARGO_BIN_EXE_postern-deliverer");

/// One Postfix at a time: several at once would fight over two cores and
/// make the time limits below meaningless.
static SERIAL: Mutex<()> = Mutex::new(());

const SENDER: &str = "alice@example.org";
const RECIPIENT: &str = "bob@example.com";

struct Postfix {
    dir: PathBuf,
    ports: HashMap<String, String>,
    tmp: Option<tempfile::TempDir>,
    _serial: MutexGuard<'static, ()>,
}

impl Postfix {
    /// Starts an instance for `test`; fails the test when not root.
    fn start(test: &str) -> Postfix {
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        assert!(
            root,
            "{test}: needs root to start a private Postfix and create the user postern; \
             run the tests as root (make test does)"
        );
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tmp = tempfile::Builder::new()
            .prefix(&format!("postern-{test}-"))
            .tempdir_in("/tmp")
            .expect("a temporary directory under /tmp");
        let dir = tmp.path().to_path_buf();
        let mut pf = Postfix {
            dir,
            ports: HashMap::new(),
            tmp: Some(tmp),
            _serial: serial,
        };
        let bindir = Path::new(RECEIVER).parent().expect("binary directory");
        assert_eq!(Path::new(DELIVERER).parent(), Some(bindir));
        let out = bounded(
            Command::new("bash")
                .arg(FIXTURE)
                .arg("start")
                .arg(&pf.dir)
                .env("POSTERN_BINDIR", bindir),
            120,
        );
        assert!(
            out.status.success(),
            "postfix.sh start failed:\n{}",
            pf.describe(&out)
        );
        let ports = std::fs::read_to_string(pf.dir.join("ports")).expect("ports file");
        pf.ports = ports
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pf
    }

    fn port(&self, name: &str) -> u16 {
        self.ports[name].parse().expect("a port number")
    }

    /// Runs a fixture subcommand for this instance and insists it succeeds.
    fn fixture(&self, args: &[&str]) -> Output {
        let out = bounded(
            Command::new("bash")
                .arg(FIXTURE)
                .arg(args[0])
                .arg(&self.dir)
                .args(&args[1..]),
            180,
        );
        assert!(
            out.status.success(),
            "postfix.sh {args:?} failed:\n{}",
            self.describe(&out)
        );
        out
    }

    fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/maillog")).unwrap_or_default()
    }

    /// The lines in which pipe(8) reports what the postern filter did.
    /// Sends a message from SENDER into the filtered listener and waits
    /// until the postern service has a result for it; returns the results.
    fn send_through_filter(&self, to: &[&str], data: &[u8]) -> Vec<String> {
        smtp_send(
            self.port("FILTERED_PORT"),
            "client.example.org",
            SENDER,
            to,
            data,
        );
        self.wait_for("the postern service to finish", 30, || {
            !self.filter_results().is_empty()
        });
        self.filter_results()
    }

    fn filter_results(&self) -> Vec<String> {
        self.maillog()
            .lines()
            .filter(|l| l.contains(" relay=postern,"))
            .map(String::from)
            .collect()
    }

    fn queue(&self) -> String {
        let out = bounded(
            Command::new("postqueue")
                .arg("-c")
                .arg(self.dir.join("etc"))
                .arg("-p"),
            30,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn queue_is_empty(&self) -> bool {
        self.queue().starts_with("Mail queue is empty")
    }

    fn sink(&self) -> Vec<SinkMessage> {
        let mut files = Vec::new();
        collect_files(&self.dir.join("sink"), &mut files);
        files.sort();
        files.iter().map(|f| SinkMessage::parse(f)).collect()
    }

    fn spool_files(&self, queue: &str) -> Vec<PathBuf> {
        let mut files = Vec::new();
        collect_files(&self.dir.join("spool").join(queue), &mut files);
        files
    }

    /// Polls `done` every 100 ms; panics with the logs after `secs`.
    fn wait_for(&self, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            if Instant::now() > deadline {
                panic!(
                    "timed out after {secs}s waiting for {what}\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `count` messages are at the sink and Postfix's queue is empty.
    fn wait_for_sink(&self, count: usize, secs: u64) -> Vec<SinkMessage> {
        let mut files = Vec::new();
        self.wait_for(
            &format!("{count} message(s) at the sink and an empty queue"),
            secs,
            || {
                files.clear();
                collect_files(&self.dir.join("sink"), &mut files);
                files.len() >= count && self.queue_is_empty()
            },
        );
        let messages = self.sink();
        assert_eq!(
            messages.len(),
            count,
            "more messages at the sink than expected\n{}",
            self.diagnostics()
        );
        messages
    }

    fn diagnostics(&self) -> String {
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(25)..].join("\n")
        };
        format!(
            "--- maillog (end) ---\n{}\n--- postern.log (end) ---\n{}\n--- postqueue -p ---\n{}--- instance: {} ---",
            tail(self.maillog()),
            tail(std::fs::read_to_string(self.dir.join("log/postern.log")).unwrap_or_default()),
            self.queue(),
            self.dir.display()
        )
    }

    fn describe(&self, out: &Output) -> String {
        format!(
            "status {}\nstdout: {}\nstderr: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.diagnostics()
        )
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = bounded(
            Command::new("bash").arg(FIXTURE).arg("stop").arg(&self.dir),
            90,
        );
        if std::env::var_os("POSTERN_KEEP_TEST_DIR").is_some()
            && let Some(tmp) = self.tmp.take()
        {
            let kept = tmp.keep();
            let _ = writeln!(std::io::stderr(), "kept {}", kept.display());
        }
    }
}

/// Runs a command under timeout(1), so that no test can hang on it.
fn bounded(command: &mut Command, secs: u64) -> Output {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let mut wrapped = Command::new("timeout");
    wrapped
        .arg("--kill-after=5")
        .arg(secs.to_string())
        .arg(program)
        .args(args);
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    wrapped.output().expect("timeout(1) runs")
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A message as smtp-sink stored it: its own lines X-Client-Addr,
/// X-Client-Proto, X-Helo-Args, X-Mail-Args, X-Rcpt-Args and a three-line
/// `Received:`, then the message as received with LF line ends, then one
/// empty line of its own.
struct SinkMessage {
    path: PathBuf,
    mail_from: String,
    rcpt_to: Vec<String>,
    /// The message bytes, LF line ends, as the sink received them.
    message: Vec<u8>,
}

impl SinkMessage {
    fn parse(path: &Path) -> SinkMessage {
        let bytes = std::fs::read(path).expect("sink file");
        let mut lines = bytes.split_inclusive(|&b| b == b'\n');
        let mut consumed = 0;
        let mut next = |consumed: &mut usize| {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("{} ends inside smtp-sink's lines", path.display()));
            *consumed += line.len();
            String::from_utf8_lossy(line).trim_end().to_string()
        };
        let mut mail_from = String::new();
        let mut rcpt_to = Vec::new();
        loop {
            let line = next(&mut consumed);
            if let Some(v) = line.strip_prefix("X-Mail-Args: ") {
                mail_from = v.split(' ').next().unwrap_or("").to_string();
            } else if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
                rcpt_to.push(v.split(' ').next().unwrap_or("").to_string());
            } else if line.starts_with("Received: ") {
                // smtp-sink's own three-line Received: ends its part.
                let by = next(&mut consumed);
                assert!(
                    by.contains("(smtp-sink)"),
                    "{}: unexpected {by:?}",
                    path.display()
                );
                next(&mut consumed);
                break;
            } else {
                assert!(
                    line.starts_with("X-"),
                    "{}: unexpected {line:?}",
                    path.display()
                );
            }
        }
        let rest = &bytes[consumed..];
        let message = rest.strip_suffix(b"\n").unwrap_or(rest).to_vec();
        SinkMessage {
            path: path.to_path_buf(),
            mail_from,
            rcpt_to,
            message,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.message).into_owned()
    }
}

/// Splits a message into its header fields (each with its continuation
/// lines) and its body.
fn header_fields(message: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut rest = message;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        match fields.last_mut() {
            Some(field) if line[0] == b' ' || line[0] == b'\t' => field.extend_from_slice(line),
            _ => fields.push(line.to_vec()),
        }
        rest = &rest[end..];
    }
    (fields, rest.to_vec())
}

fn is_received(field: &[u8]) -> bool {
    field.len() >= 9 && field[..9].eq_ignore_ascii_case(b"received:")
}

/// The message without its `Received:` header fields: the trace headers
/// that Postfix (twice: the public smtpd and the reinjection smtpd) and
/// postern-receiver add. Nothing else is taken out.
fn without_received(message: &[u8]) -> Vec<u8> {
    let (fields, body) = header_fields(message);
    let mut out: Vec<u8> = fields
        .into_iter()
        .filter(|f| !is_received(f))
        .flatten()
        .collect();
    out.extend_from_slice(&body);
    out
}

fn received_fields(message: &[u8]) -> Vec<String> {
    let (fields, _) = header_fields(message);
    fields
        .iter()
        .filter(|f| is_received(f))
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A small SMTP client: one transaction, each reply checked.
/// `data` has CRLF line ends and ends with CRLF; it is dot-stuffed here.
fn smtp_send(port: u16, helo: &str, from: &str, to: &[&str], data: &[u8]) {
    assert!(data.ends_with(b"\r\n"));
    let mut smtp = Smtp::connect(port);
    smtp.reply("220", "connect");
    smtp.command(&format!("EHLO {helo}"), "250");
    smtp.command(&format!("MAIL FROM:<{from}>"), "250");
    for rcpt in to {
        smtp.command(&format!("RCPT TO:<{rcpt}>"), "250");
    }
    smtp.command("DATA", "354");
    let mut stuffed = Vec::with_capacity(data.len() + 64);
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    stuffed.extend_from_slice(b".\r\n");
    smtp.stream.write_all(&stuffed).expect("send the message");
    smtp.reply("250", "end of data");
    smtp.command("QUIT", "221");
}

struct Smtp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(port: u16) -> Smtp {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Postfix");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().expect("clone the socket"));
        Smtp { stream, reader }
    }

    fn command(&mut self, line: &str, code: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("send a command");
        self.reply(code, line);
    }

    fn reply(&mut self, code: &str, after: &str) {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("an SMTP reply");
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        assert!(
            all.starts_with(code),
            "after {after}: expected {code}, got {all:?}"
        );
    }
}

/// A message that is easy to damage: dot lines, a bare "." line, trailing
/// white space, a folded header, 8-bit UTF-8, an mbox "From " line, empty
/// lines, a line of 990 characters.
fn tricky_message(marker: &str) -> Vec<u8> {
    let long = "x".repeat(990);
    let text = format!(
        "From: Alice <{SENDER}>\r\n\
         To: Bob <{RECIPIENT}>\r\n\
         Subject: postern test {marker}\r\n\
         Message-ID: <{marker}@example.org>\r\n\
         Date: Sun, 23 Nov 2025 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         X-Folded: first part\r\n\
         \tsecond part\r\n\
         \r\n\
         Hello Bob, body marker {marker}.\r\n\
         .\r\n\
         ..\r\n\
         .leading dot\r\n\
         From the mbox point of view this line is special\r\n\
         trailing white space   \r\n\
         tab\there\r\n\
         \r\n\
         \r\n\
         Grüße, naïve café ☕\r\n\
         {long}\r\n\
         last line\r\n"
    );
    text.into_bytes()
}

/// The message as it must come out at the sink once the Received: fields are removed.
fn assert_same_message(sent: &[u8], got: &SinkMessage, pf: &Postfix) {
    let expected = crlf_to_lf(sent);
    let actual = without_received(&got.message);
    assert!(
        actual == expected,
        "message changed on its way ({}):\n--- sent (LF) ---\n{}\n--- at the sink, Received: removed ---\n{}\n{}",
        got.path.display(),
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(&actual),
        pf.diagnostics()
    );
}

fn assert_through_postern(got: &SinkMessage) {
    let received = received_fields(&got.message);
    assert!(
        received.iter().any(|r| r.contains("(postern-receiver)")),
        "no Received: from postern-receiver in {}:\n{}",
        got.path.display(),
        received.join("")
    );
}

#[test]
fn message_arrives_unchanged_apart_from_received() {
    let pf = Postfix::start("unchanged");
    let marker = "m-unchanged-8c1f";
    let sent = tricky_message(marker);
    smtp_send(
        pf.port("FILTERED_PORT"),
        "client.example.org",
        SENDER,
        &[RECIPIENT],
        &sent,
    );

    let got = pf.wait_for_sink(1, 30);
    let got = &got[0];
    assert_eq!(got.mail_from, format!("<{SENDER}>"));
    assert_eq!(got.rcpt_to, vec![format!("<{RECIPIENT}>")]);
    assert_same_message(&sent, got, &pf);
    // Postfix's smtpd, postern-receiver, Postfix's reinjection smtpd.
    let received = received_fields(&got.message);
    assert_eq!(
        received.len(),
        3,
        "Received: fields:\n{}",
        received.join("")
    );
    assert_through_postern(got);

    let results = pf.filter_results();
    assert_eq!(results.len(), 1, "{results:#?}");
    assert!(results[0].contains("status=sent"), "{results:#?}");
    assert!(
        pf.spool_files("deferred").is_empty(),
        "a message delivered at once must not touch the spool"
    );

    // Privacy: postern's log has no addresses, subject or body (log_addresses is off).
    let log = std::fs::read_to_string(pf.dir.join("log/postern.log")).unwrap_or_default();
    for secret in [SENDER, RECIPIENT, marker, "Bob"] {
        assert!(
            !log.contains(secret),
            "postern.log contains {secret:?}:\n{log}"
        );
    }
}

#[test]
fn two_hundred_messages_from_smtp_source_all_arrive() {
    let pf = Postfix::start("smtp-source");
    let port = pf.port("FILTERED_PORT");
    let out = bounded(
        Command::new("smtp-source")
            .args(["-s", "4", "-m", "200", "-l", "4096"])
            .args(["-f", SENDER, "-t", RECIPIENT])
            .arg(format!("127.0.0.1:{port}")),
        120,
    );
    assert!(
        out.status.success(),
        "smtp-source failed:\n{}",
        pf.describe(&out)
    );

    let messages = pf.wait_for_sink(200, 60);
    for m in &messages {
        assert_through_postern(m);
    }
    let results = pf.filter_results();
    assert_eq!(results.len(), 200, "pipe(8) results of the postern service");
    assert!(
        results.iter().all(|l| l.contains("status=sent")),
        "{:#?}",
        results.iter().find(|l| !l.contains("status=sent"))
    );
    assert!(pf.spool_files("deferred").is_empty());
}

#[test]
fn filter_exit_75_keeps_the_message_in_postfix() {
    let pf = Postfix::start("tempfail");
    pf.fixture(&["filter", "stub", "75", "4.3.0 test stub: try again later"]);
    let sent = tricky_message("m-tempfail-41d2");
    let results = pf.send_through_filter(&[RECIPIENT], &sent);
    assert!(
        results[0].contains("dsn=4.3.0, status=deferred"),
        "{results:#?}"
    );
    let queue = pf.queue();
    assert!(
        queue.contains(RECIPIENT) && queue.contains("test stub: try again later"),
        "postqueue -p:\n{queue}"
    );
    assert!(
        pf.sink().is_empty(),
        "nothing may reach the sink while the filter defers"
    );

    // Postfix still holds the whole message: with the real filter back, a
    // flush delivers it, unchanged.
    pf.fixture(&["filter", "real"]);
    let out = bounded(
        Command::new("postqueue")
            .arg("-c")
            .arg(pf.dir.join("etc"))
            .arg("-f"),
        30,
    );
    assert!(out.status.success(), "postqueue -f: {}", pf.describe(&out));
    let got = pf.wait_for_sink(1, 30);
    assert_same_message(&sent, &got[0], &pf);
}

#[test]
fn relay_down_spools_and_run_queue_delivers_later() {
    let pf = Postfix::start("relay-down");
    pf.fixture(&["relay-down"]);
    let marker = "m-spooled-93ab";
    let sent = tricky_message(marker);
    let results = pf.send_through_filter(&[RECIPIENT], &sent);
    assert!(
        results[0].contains("status=sent"),
        "postern must take the message into its spool: {results:#?}"
    );
    let deferred = pf.spool_files("deferred");
    assert_eq!(
        deferred.len(),
        1,
        "spool/deferred: {deferred:?}\n{}",
        pf.diagnostics()
    );
    assert!(
        pf.queue_is_empty(),
        "Postfix no longer holds it:\n{}",
        pf.queue()
    );
    assert!(pf.sink().is_empty());
    // Nothing in the spool tells who wrote to whom, or what.
    let sealed = std::fs::read(&deferred[0]).unwrap();
    for secret in [SENDER, RECIPIENT, marker, "Grüße"] {
        assert!(
            !contains(&sealed, secret.as_bytes()),
            "the spool file shows {secret:?}"
        );
    }

    pf.fixture(&["relay-up"]);
    pf.fixture(&["run-queue", "--flush"]);
    let got = pf.wait_for_sink(1, 30);
    assert_same_message(&sent, &got[0], &pf);
    assert_through_postern(&got[0]);
    assert!(
        pf.spool_files("deferred").is_empty(),
        "delivered jobs leave the spool"
    );
}

#[test]
fn message_over_postern_size_limit_is_bounced_with_5_3_4() {
    let pf = Postfix::start("too-large");
    // Postfix takes up to 10240000 bytes (contrib/postfix/main.cf); postern less.
    pf.fixture(&["set", "message_size_limit = 100000"]);
    let mut big = tricky_message("m-large-77e0");
    for _ in 0..2000 {
        big.extend_from_slice(format!("{}\r\n", "y".repeat(76)).as_bytes());
    }
    assert!(big.len() > 150_000);
    let results = pf.send_through_filter(&[RECIPIENT], &big);
    let line = &results[0];
    assert!(line.contains("dsn=5.3.4, status=bounced ("), "{line}");
    let text = line.split("status=bounced (").nth(1).unwrap_or("");
    assert!(
        !text.starts_with("Command died") && text.contains("100000"),
        "the bounce text must be postern-receiver's, naming the limit: {line}"
    );
    // The bounce goes back to the sender, through the sink.
    let got = pf.wait_for_sink(1, 30);
    assert_eq!(got[0].mail_from, "<>");
    assert_eq!(got[0].rcpt_to, vec![format!("<{SENDER}>")]);
    assert!(got[0].text().contains("5.3.4"), "{}", got[0].text());
}

#[test]
fn recipient_refused_by_the_relay_goes_to_postern_bounce_queue() {
    let pf = Postfix::start("rcpt-refused");
    let refused = pf.ports["REJECT_ADDRESS"].clone();
    let sent = tricky_message("m-refused-5b61");
    smtp_send(
        pf.port("FILTERED_PORT"),
        "client.example.org",
        SENDER,
        &[RECIPIENT, &refused],
        &sent,
    );

    let got = pf.wait_for_sink(1, 30);
    assert_eq!(got[0].rcpt_to, vec![format!("<{RECIPIENT}>")]);
    assert_same_message(&sent, &got[0], &pf);
    let results = pf.filter_results();
    assert!(
        results.iter().all(|l| l.contains("status=sent")),
        "{results:#?}"
    );
    pf.wait_for("a job in spool/bounce", 10, || {
        pf.spool_files("bounce").len() == 1
    });
    assert!(pf.spool_files("deferred").is_empty());
}

#[test]
fn hostile_helo_and_null_sender_pass_as_values() {
    let pf = Postfix::start("helo");
    // pipe(8) puts the client's HELO on postern-receiver's command line;
    // "--help" must stay the value of --client-helo.
    let sent = tricky_message("m-helo-0f3c");
    smtp_send(pf.port("FILTERED_PORT"), "--help", "", &[RECIPIENT], &sent);
    let got = pf.wait_for_sink(1, 30);
    assert_eq!(got[0].mail_from, "<>");
    assert_same_message(&sent, &got[0], &pf);
    assert_through_postern(&got[0]);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The pipe(8) lines for one recipient of the maildb transport.
fn maildb_results(pf: &Postfix, rcpt: &str) -> Vec<String> {
    let to = format!("to=<{rcpt}>");
    pf.maillog()
        .lines()
        .filter(|l| l.contains(" relay=maildb,") && l.contains(&to))
        .map(String::from)
        .collect()
}

#[test]
fn mailbox_domain_mail_is_sealed_into_encrypted_mailboxes() {
    let pf = Postfix::start("maildb");
    let domain = pf.ports["MAILDB_DOMAIN"].clone();
    let [bob, carol, nobody] = ["bob", "carol", "nobody"].map(|u| format!("{u}@{domain}"));
    let pass = pf.dir.join("maildb.pass").display().to_string();
    let owner = |user: &str, args: &[&str]| {
        let mut all = vec!["maildb", "-u", user, "--passphrase-file", &pass];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&pf.fixture(&all).stdout).into_owned()
    };
    for user in [&bob, &carol] {
        owner(user, &["init"]);
    }
    // A fresh mailbox takes some 60 KB; room for small messages only.
    pf.fixture(&["set-maildb", "quota = \"300K\""]);

    // The whole chain: smtpd -> postern filter -> reinjection -> maildb,
    // one pipe(8) run (and exit status) per recipient.
    let sent = tricky_message("m-maildb-5e1c");
    let results = pf.send_through_filter(&[&bob, &carol], &sent);
    assert!(results[0].contains("status=sent"), "{results:#?}");
    pf.wait_for("both mailboxes", 30, || {
        [&bob, &carol].iter().all(|r| {
            maildb_results(&pf, r)
                .iter()
                .any(|l| l.contains("status=sent"))
        })
    });
    for user in [&bob, &carol] {
        let list = owner(user, &["list"]);
        assert!(list.contains("m-maildb-5e1c"), "{user}: {list}");
        let shown = owner(user, &["show", "1"]);
        assert!(shown.contains(&format!("Delivered-To: {user}")), "{shown}");
        assert!(
            shown.contains(&format!("Return-Path: <{SENDER}>")),
            "{shown}"
        );
        assert!(shown.contains("Grüße"), "{shown}");
    }
    // Nothing readable was left on disk by the delivery.
    let mut files = Vec::new();
    collect_files(&pf.dir.join("mail"), &mut files);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !contains(&bytes, b"m-maildb-5e1c"),
            "{} shows the message",
            f.display()
        );
    }

    // No mailbox file for a listed user: 5.1.1, bounced to the sender.
    smtp_send(
        pf.port("BASELINE_PORT"),
        "client.example.org",
        SENDER,
        &[&nobody],
        &sent,
    );
    pf.wait_for("the bounce for nobody", 30, || {
        maildb_results(&pf, &nobody)
            .iter()
            .any(|l| l.contains("dsn=5.1.1, status=bounced"))
    });
    let got = pf.wait_for_sink(1, 30);
    assert_eq!(got[0].mail_from, "<>");
    assert!(got[0].text().contains("5.1.1"), "{}", got[0].text());
    // The bounce, for a stranger, shows no file names of this host.
    let mail_dir = pf.dir.join("mail").display().to_string();
    assert!(!got[0].text().contains(&mail_dir), "{}", got[0].text());

    // Over quota: 5.2.2, bounced; bob's mailbox takes the next small one.
    let mut big = tricky_message("m-maildb-big");
    for _ in 0..5000 {
        big.extend_from_slice(format!("{}\r\n", "q".repeat(76)).as_bytes());
    }
    smtp_send(
        pf.port("BASELINE_PORT"),
        "client.example.org",
        SENDER,
        &[&carol],
        &big,
    );
    pf.wait_for("the bounce for carol", 30, || {
        maildb_results(&pf, &carol)
            .iter()
            .any(|l| l.contains("dsn=5.2.2, status=bounced"))
    });
    let full = maildb_results(&pf, &carol)
        .into_iter()
        .find(|l| l.contains("dsn=5.2.2"));
    assert!(
        full.is_some_and(|l| l.contains("(mailbox full") && !l.contains("bytes")),
        "{}",
        pf.maillog()
    );

    // A mailbox that cannot be written to now (its delivery key gone):
    // deferred (4.x.x, exit 75), kept by Postfix, delivered after a fix.
    let key = pf.dir.join(format!("mail/{bob}.sqlite-pub"));
    let aside = pf.dir.join("bob-key-aside");
    std::fs::rename(&key, &aside).unwrap();
    smtp_send(
        pf.port("BASELINE_PORT"),
        "client.example.org",
        SENDER,
        &[&bob],
        &tricky_message("m-maildb-later"),
    );
    pf.wait_for("the deferral for bob", 30, || {
        maildb_results(&pf, &bob)
            .iter()
            .any(|l| l.contains("status=deferred"))
    });
    let deferred = maildb_results(&pf, &bob)
        .into_iter()
        .find(|l| l.contains("status=deferred"));
    assert!(deferred.is_some_and(|l| l.contains("dsn=4.")));
    assert!(pf.queue().contains(&bob), "postqueue -p:\n{}", pf.queue());
    std::fs::rename(&aside, &key).unwrap();
    pf.fixture(&["flush"]);
    pf.wait_for("bob's second message", 30, || {
        maildb_results(&pf, &bob)
            .iter()
            .filter(|l| l.contains("status=sent"))
            .count()
            == 2
    });
    let list = owner(&bob, &["list"]);
    assert!(list.contains("m-maildb-later"), "{list}");
}

#[test]
fn an_alias_forwards_with_srs_and_the_bounce_finds_the_sender() {
    let pf = Postfix::start("alias");
    pf.fixture(&["alias", "domain", "add", "--verified", "aliases.test"]);
    pf.fixture(&[
        "alias",
        "alias",
        "add",
        "team@aliases.test",
        "x@example.net",
        "y@example.org",
    ]);

    // To the alias: one copy for both targets, with an SRS sender.
    let sent = tricky_message("m-alias-7a21");
    let results = pf.send_through_filter(&["team@aliases.test"], &sent);
    assert!(results[0].contains("status=sent"), "{results:#?}");
    let got = pf.wait_for_sink(1, 30);
    assert_eq!(got[0].rcpt_to, ["<x@example.net>", "<y@example.org>"]);
    let srs = got[0]
        .mail_from
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    assert!(
        srs.starts_with("SRS0=") && srs.ends_with("=example.org=alice@srs.postern.test"),
        "{srs}"
    );
    let text = got[0].text();
    assert!(
        text.contains(
            "\nX-Original-To: team@aliases.test\nReceived: by postern.test (postern-rewriter)"
        ),
        "{text}"
    );
    // The body and every field of the sender's are as they were.
    let (_, body) = header_fields(&crlf_to_lf(&sent));
    assert!(got[0].message.ends_with(&body), "the body changed");

    // A bounce to the SRS address reaches the original sender.
    smtp_send(
        pf.port("FILTERED_PORT"),
        "mx.example.net",
        "",
        &[&srs],
        b"Subject: undeliverable\r\n\r\nsorry\r\n",
    );
    let got = pf.wait_for_sink(2, 30);
    let bounce = got
        .iter()
        .find(|m| m.text().contains("Subject: undeliverable"))
        .expect("the bounce at the sink");
    assert_eq!(bounce.rcpt_to, [format!("<{SENDER}>")]);
    assert_eq!(bounce.mail_from, "<>");

    // An alias that does not exist: Postfix bounces with postern's line.
    smtp_send(
        pf.port("FILTERED_PORT"),
        "client.example.org",
        SENDER,
        &["nobody@aliases.test"],
        &tricky_message("m-nobody"),
    );
    pf.wait_for("Postfix's bounce for nobody@aliases.test", 30, || {
        pf.maillog()
            .lines()
            .any(|l| l.contains("to=<nobody@aliases.test>") && l.contains("status=bounced"))
    });
    let line = pf
        .maillog()
        .lines()
        .find(|l| l.contains("to=<nobody@aliases.test>") && l.contains("status=bounced"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains("dsn=5.1.1") && line.contains("does not exist"),
        "{line}"
    );
}

/// A recipient Postfix's reinjection listener refuses (the fixture's
/// rejected@example.com): postern records it in bounce/, and the next
/// queue run has postern-bouncer tell the sender, from the null sender,
/// through Postfix to the sink; the other recipient is delivered once.
#[test]
fn a_recipient_the_relay_refuses_gets_the_sender_a_dsn() {
    let pf = Postfix::start("dsn");
    let marker = "m-refused-4c1e";
    let sent = tricky_message(marker);
    let results = pf.send_through_filter(&[RECIPIENT, "rejected@example.com"], &sent);
    assert!(
        results.iter().all(|r| r.contains("status=sent")),
        "postern takes both (one into bounce/): {results:#?}"
    );
    let got = pf.wait_for_sink(1, 30);
    assert_eq!(got[0].rcpt_to, [format!("<{RECIPIENT}>")]);
    assert_eq!(pf.spool_files("bounce").len(), 1, "{}", pf.diagnostics());
    pf.fixture(&["run-queue"]);
    let got = pf.wait_for_sink(2, 30);
    let dsn = got
        .iter()
        .find(|m| m.mail_from == "<>")
        .unwrap_or_else(|| panic!("no DSN at the sink:\n{}", pf.diagnostics()));
    assert_eq!(dsn.rcpt_to, [format!("<{SENDER}>")]);
    let text = dsn.text();
    for want in [
        "Auto-Submitted: auto-replied",
        "report-type=\"delivery-status\"",
        "Final-Recipient: rfc822; rejected@example.com",
        "Action: failed",
        "Status: 5.1.1",
        marker,
    ] {
        assert!(text.contains(want), "the DSN lacks {want:?}:\n{text}");
    }
    assert!(pf.spool_files("bounce").is_empty());
    assert!(pf.spool_files("deferred").is_empty());
    // A second run sends nothing more.
    pf.fixture(&["run-queue"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(pf.sink().len(), 2);
}

/// A recipient whose key is in the operator's keyring gets the message
/// encrypted, through the real Postfix, and gpg gives back the original
/// entity byte for byte; a recipient without a key gets it as it was.
#[test]
fn a_recipient_with_a_key_in_the_keyring_gets_it_encrypted() {
    let pf = Postfix::start("encrypt");
    let bob = gpg::GnupgHome::new();
    let key = bob.ed25519("Bob <bob@example.net>");
    let public = pf.dir.join("bob.asc");
    std::fs::write(&public, bob.export_armored(&[&key.fingerprint])).expect("key file");
    pf.fixture(&["gpg", "--import", public.to_str().expect("path")]);
    let sent = tricky_message("m-encrypt-51f0");
    let results = pf.send_through_filter(&["bob@example.net", "carol@example.org"], &sent);
    assert!(results[0].contains("status=sent"), "{results:#?}");
    let got = pf.wait_for_sink(2, 30);
    let (mut encrypted, mut plain) = (None, None);
    for m in &got {
        match m.rcpt_to.as_slice() {
            [r] if r == "<bob@example.net>" => encrypted = Some(m),
            [r] if r == "<carol@example.org>" => plain = Some(m),
            other => panic!("unexpected recipients {other:?}"),
        }
    }
    let (encrypted, plain) = (encrypted.expect("bob's copy"), plain.expect("carol's copy"));
    assert_same_message(&sent, plain, &pf);
    let text = encrypted.text();
    assert!(
        text.contains("Content-Type: multipart/encrypted;"),
        "{text}"
    );
    assert!(
        text.contains("Subject: postern test m-encrypt-51f0"),
        "{text}"
    );
    assert!(!text.contains("Hello Bob"), "{text}");
    let decrypted = bob
        .decrypt(&pgp::armored(&encrypted.message))
        .expect("bob decrypts it");
    assert_eq!(
        String::from_utf8_lossy(&decrypted),
        String::from_utf8_lossy(&pgp::entity(&crlf_to_lf(&sent)))
    );
    assert_eq!(decrypted, pgp::entity(&crlf_to_lf(&sent)), "byte for byte");
    let log = std::fs::read_to_string(pf.dir.join("log/postern.log")).unwrap_or_default();
    assert!(log.contains("encrypted for 1 recipient(s)"), "{log}");
    assert!(
        !log.contains("bob@example.net"),
        "no address in the log: {log}"
    );
}

/// Through the real Postfix and the fixture's private clamd: a message
/// with the EICAR test string is refused for its recipient by
/// postern-scanner (5.7.1, the signature named) and the sender gets a
/// notice with the headers only, never the virus; a clean message in the
/// same run arrives untouched.
#[test]
fn a_virus_is_refused_and_the_sender_told_without_it() {
    let pf = Postfix::start("virus");
    let eicar = concat!(
        r"X5O!P%@AP[4\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    );
    let sent = format!(
        "From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: m-virus-7e21\r\n\r\n{eicar}\r\n"
    );
    let results = pf.send_through_filter(&[RECIPIENT], sent.as_bytes());
    assert!(
        results.iter().all(|r| r.contains("status=sent")),
        "postern takes it (into bounce/): {results:#?}"
    );
    assert_eq!(pf.spool_files("bounce").len(), 1, "{}", pf.diagnostics());
    let clean = tricky_message("m-clean-7e22");
    pf.send_through_filter(&[RECIPIENT], &clean);
    let got = pf.wait_for_sink(1, 30);
    assert_same_message(&clean, &got[0], &pf);
    pf.fixture(&["run-queue"]);
    let got = pf.wait_for_sink(2, 30);
    let dsn = got
        .iter()
        .find(|m| m.mail_from == "<>")
        .unwrap_or_else(|| panic!("no DSN at the sink:\n{}", pf.diagnostics()));
    assert_eq!(dsn.rcpt_to, [format!("<{SENDER}>")]);
    let text = dsn.text();
    assert!(text.contains("Status: 5.7.1"), "{text}");
    assert!(
        text.contains("virus found: PosternTest.EICAR.UNOFFICIAL"),
        "{text}"
    );
    assert!(
        text.contains("m-virus-7e21"),
        "the headers are returned: {text}"
    );
    assert!(!text.contains("EICAR-STANDARD"), "the virus is not: {text}");
    let log = std::fs::read_to_string(pf.dir.join("log/postern.log")).unwrap_or_default();
    assert!(
        log.contains("virus found: PosternTest.EICAR.UNOFFICIAL"),
        "{log}"
    );
    assert!(!log.contains(RECIPIENT), "no address in the log: {log}");
}

/// postern-alias sync from a members file, run as the postern user with
/// the instance's configuration: the alias is made, the domain's admin is
/// told through the deliverer and the real Postfix (to the sink), and mail
/// to the new alias is forwarded to the member.
#[test]
fn team_sync_tells_the_admin_through_postfix() {
    let pf = Postfix::start("sync");
    pf.fixture(&["alias", "domain", "add", "--verified", "team.test"]);
    pf.fixture(&[
        "alias",
        "domain",
        "set",
        "team.test",
        "admins",
        "admin@example.net",
    ]);
    let members = pf.dir.join("members");
    std::fs::write(&members, "staff alice alice@example.org\n").expect("members file");
    pf.fixture(&[
        "set-sync",
        &format!("members_file = \"{}\"", members.display()),
    ]);
    pf.fixture(&["set-sync", "teams = { \"team.test\" = \"file:staff\" }"]);

    let out = pf.fixture(&["alias", "sync"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("team.test file:staff: 1 member(s), 1 created")
            && stdout.contains("1 admin(s) notified"),
        "{stdout}"
    );
    let got = pf.wait_for_sink(1, 30);
    assert_eq!(got[0].rcpt_to, ["<admin@example.net>"]);
    assert_eq!(got[0].mail_from, "<postmaster@postern.test>");
    let text = got[0].text();
    assert!(
        text.contains("Subject: Team addresses of team.test: 1 created"),
        "{text}"
    );
    assert!(
        text.contains("alice@team.test -> alice@example.org"),
        "{text}"
    );

    // The alias the sync made forwards like any other.
    let results = pf.send_through_filter(&["alice@team.test"], &tricky_message("m-sync-51d0"));
    assert!(results[0].contains("status=sent"), "{results:#?}");
    let got = pf.wait_for_sink(2, 30);
    assert!(
        got.iter()
            .any(|m| m.rcpt_to == ["<alice@example.org>"] && m.text().contains("m-sync-51d0")),
        "{:#?}",
        got.iter().map(|m| &m.rcpt_to).collect::<Vec<_>>()
    );
    // A second run: nothing new, nothing sent.
    pf.fixture(&["alias", "sync"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pf.sink().len(), 2);
}

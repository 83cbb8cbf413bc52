//! A small harness for black-box tests of the built binaries: run a tool
//! with stdin, arguments and environment in a temp dir, and read what it
//! did. Plus an SMTP server that can be told to fail, and DNS servers
//! (a private dnsmasq, and one that can be told to misbehave).

#![allow(dead_code)]

pub mod dns;
pub mod https;
pub mod launchpad;
pub mod pgp;
pub mod smtp;
pub mod tls;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const RECEIVER: &str = env!("CARGO_BIN_EXE_postern-receiver");
pub const DELIVERER: &str = env!("CARGO_BIN_EXE_postern-deliverer");
pub const MAILDB: &str = env!("CARGO_BIN_EXE_postern-maildb");
pub const REWRITER: &str = env!("CARGO_BIN_EXE_postern-rewriter");
pub const ALIAS: &str = env!("CARGO_BIN_EXE_postern-alias");
pub const ENCRYPTOR: &str = env!("CARGO_BIN_EXE_postern-encryptor");
pub const SCANNER: &str = env!("CARGO_BIN_EXE_postern-scanner");

/// The SRS secret of every test site, and its SRS domain.
pub const SRS_SECRET: &str = "test-srs-secret";
pub const SRS_DOMAIN: &str = "srs.test.example";

/// What a finished tool left behind.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// The one status line a failing tool prints.
    pub fn status_line(&self) -> &str {
        self.stderr.lines().next().unwrap_or("")
    }
}

/// Runs `bin args...` with `stdin` and the given environment.
pub fn run(bin: &str, args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_remove("POSTERN_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn tool");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    // Write from a thread so a tool that exits early cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for tool");
    let _ = writer.join();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temp directory with a spool, a key, a log file, an (empty) alias
/// store, an SRS secrets file and a config file pointing the deliverer at
/// `relay_port`.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Site {
    pub fn new(relay_port: u16) -> Site {
        Site::with_extra(relay_port, "")
    }

    pub fn with_extra(relay_port: u16, extra_top: &str) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("spool.key");
        std::fs::write(&key, [0x42u8; 32]).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
        let secrets = dir.path().join("srs.secrets");
        std::fs::write(&secrets, format!("{SRS_SECRET}\n")).expect("srs secrets");
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))
            .expect("chmod srs secrets");
        let config = dir.path().join("postern.toml");
        // Top-level keys go first; tables of `extra_top` go last, and
        // before them [relay] (tests append relay keys to the file).
        let (top, tables) = match extra_top.find("\n[") {
            _ if extra_top.starts_with('[') => ("", extra_top),
            Some(i) => extra_top.split_at(i + 1),
            None => (extra_top, ""),
        };
        let text = format!(
            "hostname = \"mx.test.example\"\nlog = \"file\"\nlog_file = \"{log}\"\n{top}\n\
             [aliases]\nstore = \"{store}\"\n\
             [srs]\ndomain = \"{SRS_DOMAIN}\"\nsecrets_file = \"{secrets}\"\n\
             [spool]\ndirectory = \"{spool}\"\nkey_file = \"{key}\"\n\
             [scanner]\nclamd = \"\"\n\
             [relay]\nport = {relay_port}\ntimeout = \"5s\"\n{tables}",
            log = dir.path().join("postern.log").display(),
            spool = dir.path().join("spool").display(),
            key = key.display(),
            store = dir.path().join("aliases.db").display(),
            secrets = secrets.display(),
        );
        std::fs::write(&config, text).expect("config");
        let site = Site { dir, config };
        let made = site.run(ALIAS, &["domain", "list"], b"");
        assert_eq!(
            made.code, 0,
            "postern-alias cannot make the store: {}",
            made.stderr
        );
        site
    }

    /// Sets `key = value` (as `line`) in `[table]` of the config file:
    /// replaces the key's line when the table has one, else adds it
    /// (making the table when it is not there yet).
    pub fn configure(&self, table: &str, line: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let header = format!("[{table}]\n");
        let key = line.split('=').next().unwrap_or("").trim();
        let text = match text.find(&header) {
            Some(i) => {
                let start = i + header.len();
                let end = text[start..]
                    .find("\n[")
                    .map_or(text.len(), |j| start + j + 1);
                let mut body: Vec<String> = text[start..end]
                    .lines()
                    .filter(|l| l.split('=').next().unwrap_or("").trim() != key)
                    .map(str::to_owned)
                    .collect();
                body.insert(0, line.to_owned());
                format!("{}{}\n{}", &text[..start], body.join("\n"), &text[end..])
            }
            None => format!("{text}\n{header}{line}\n"),
        };
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Runs postern-alias with `args`, which must succeed; its stdout.
    pub fn alias(&self, args: &[&str]) -> String {
        let out = self.run(ALIAS, args, b"");
        assert_eq!(out.code, 0, "postern-alias {args:?}: {}", out.stderr);
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env(&self) -> Vec<(&'static str, &Path)> {
        vec![("POSTERN_CONFIG", self.config.as_path())]
    }

    pub fn run(&self, bin: &str, args: &[&str], stdin: &[u8]) -> Output {
        run(bin, args, stdin, &self.env())
    }

    /// Files in a spool queue.
    pub fn queue(&self, name: &str) -> Vec<PathBuf> {
        match std::fs::read_dir(self.path().join("spool").join(name)) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("postern.log")).unwrap_or_default()
    }

    /// The jobs in a spool queue, unsealed with the site's key.
    pub fn spooled(&self, queue: &str) -> Vec<postern::mail::job::Job> {
        use postern::store::spool::{Entry, Queue, Spool};
        let q = Queue::named(queue).expect("a spool queue");
        let key = postern::store::seal::SealKey::from_bytes([0x42u8; 32]);
        let spool = Spool::open(&self.path().join("spool"), key).expect("open spool");
        let mut names = spool.list(q).expect("list spool");
        names.sort();
        if q == Queue::Sent {
            return names
                .into_iter()
                .flat_map(|(name, _)| spool.read_sent(&name).expect("read a sent/ segment"))
                .collect();
        }
        names
            .into_iter()
            .map(|(name, _)| {
                spool
                    .load(&Entry { queue: q, name })
                    .expect("load spooled job")
            })
            .collect()
    }

    /// receiver | deliverer, without the rewriter.
    pub fn chain(&self, sender: &str, rcpts: &[&str], msg: &[u8]) -> (Output, Output) {
        let mut args = vec!["-f", sender, "--"];
        args.extend_from_slice(rcpts);
        let r = self.run(RECEIVER, &args, msg);
        let d = self.run(DELIVERER, &[], &r.stdout);
        (r, d)
    }

    /// receiver | rewriter | deliverer, as the Postfix filter script runs
    /// them (the deliverer only when the rewriter wrote something).
    pub fn chain3(&self, sender: &str, rcpts: &[&str], msg: &[u8]) -> [Output; 3] {
        let mut args = vec!["-f", sender, "--"];
        args.extend_from_slice(rcpts);
        let r = self.run(RECEIVER, &args, msg);
        let w = self.run(REWRITER, &[], &r.stdout);
        let d = self.run(DELIVERER, &[], &w.stdout);
        [r, w, d]
    }
}

/// The jobs a tool wrote.
pub fn jobs(stdout: &[u8]) -> Vec<postern::mail::job::Job> {
    let mut reader = postern::mail::job::JobReader::new(stdout, 1 << 30);
    let mut out = Vec::new();
    while let Some(job) = reader.next_job().expect("a readable job stream") {
        out.push(job);
    }
    out
}

/// A loopback port that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A small RFC 5322 message with LF line endings.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\nSubject: {subject}\n\
         Message-ID: <{subject}@example.org>\n\n{body}\n"
    )
    .into_bytes()
}

/// Turns bare LF into CRLF, as the message appears on the wire.
pub fn crlf(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 20);
    let mut prev = 0u8;
    for &b in msg {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The message with postern's own `Received:` header (two lines) removed.
pub fn without_our_trace(data: &[u8]) -> Vec<u8> {
    let text = data;
    assert!(
        text.starts_with(b"Received: by "),
        "no postern trace header first"
    );
    let mut lines = 0;
    let mut pos = 0;
    while lines < 2 {
        pos += text[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("trace header lines")
            + 1;
        lines += 1;
    }
    text[pos..].to_vec()
}

/// A temp directory with a mailbox directory, a passphrase file (mode
/// 0600) and a config file pointing postern-maildb at them.
pub struct MailSite {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub passphrase_file: PathBuf,
}

impl MailSite {
    pub const PASSPHRASE: &'static str = "correct horse battery staple";

    pub fn new() -> MailSite {
        let dir = tempfile::tempdir().expect("tempdir");
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).expect("mail dir");
        let passphrase_file = dir.path().join("passphrase");
        std::fs::write(&passphrase_file, format!("{}\n", Self::PASSPHRASE)).expect("passphrase");
        std::fs::set_permissions(&passphrase_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod passphrase");
        let config = dir.path().join("postern.toml");
        let text = format!(
            "hostname = \"mx.test.example\"\nlog = \"file\"\nlog_file = \"{log}\"\n\
             [maildb]\ndirectory = \"{mail}\"\nlock_timeout = \"5s\"\n",
            log = dir.path().join("postern.log").display(),
            mail = mail.display(),
        );
        std::fs::write(&config, text).expect("config");
        MailSite {
            dir,
            config,
            passphrase_file,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The mailbox file of a plain user name (no characters to encode).
    pub fn mailbox(&self, user: &str) -> PathBuf {
        self.path().join("mail").join(format!("{user}.sqlite"))
    }

    /// Runs postern-maildb with the config, and `args` as given.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(
            MAILDB,
            args,
            stdin,
            &[("POSTERN_CONFIG", self.config.as_path())],
        )
    }

    /// Runs `postern-maildb -u USER --passphrase-file F args...`.
    pub fn owner(&self, user: &str, args: &[&str]) -> Output {
        let pw = self.passphrase_file.display().to_string();
        let mut all = vec!["-u", user, "--passphrase-file", pw.as_str()];
        all.extend_from_slice(args);
        self.run(&all, b"")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("postern.log")).unwrap_or_default()
    }
}

/// A golden file of tests/golden/.
pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `bytes` with the golden file `name`, or writes it when
/// POSTERN_BLESS is set (after a change that is meant to show there).
pub fn check_golden(name: &str, bytes: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("POSTERN_BLESS").is_some() {
        std::fs::write(&path, bytes).expect("write the golden file");
        return;
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); POSTERN_BLESS=1 writes it",
            path.display()
        )
    });
    assert!(
        golden == bytes,
        "{} differs from what is written now:\n--- golden ---\n{}\n--- now ---\n{}",
        path.display(),
        String::from_utf8_lossy(&golden),
        String::from_utf8_lossy(bytes)
    );
}

/// `mandoc -Tlint -Wwarning PAGE` must be silent. mandoc missing is a
/// failure, not a pass: `make deps` installs it.
pub fn assert_mandoc_clean(page: &Path) {
    let out = match Command::new("mandoc")
        .args(["-Tlint", "-Wwarning"])
        .arg(page)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "mandoc is not installed, so {} cannot be checked: run `make deps` \
             (as root) to install it",
            page.display()
        ),
        Err(e) => panic!("cannot run mandoc: {e}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "mandoc -Tlint -Wwarning {} ({}):\n{said}",
        page.display(),
        out.status
    );
}

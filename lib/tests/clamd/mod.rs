//! A private clamd for tests: its own clamd.conf, a one-signature
//! database made here (no freshclam, no internet), TCP on 127.0.0.1 at a
//! free port and a Unix socket in a temp dir. clamd runs in the
//! foreground as this test's child and is killed when the server is
//! dropped.
//!
//! Self-contained (std and tempfile only) so black-box tests can include it
//! with `#[path]`. A missing clamd, or one that does not answer `PING`,
//! panics with the reason and clamd's log, so no test passes without it.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's clamav-daemon (`make deps`).
pub const CLAMD: &str = "/usr/sbin/clamd";

/// The signature this database holds; clamd reports signatures from a
/// database that is not ClamAV's own with `.UNOFFICIAL` appended.
pub const SIGNATURE: &str = "PosternTest.EICAR";
pub const REPORTED: &str = "PosternTest.EICAR.UNOFFICIAL";

/// The server's `StreamMaxLength`.
pub const STREAM_MAX: u64 = 2 * 1024 * 1024;

/// The 68-byte EICAR test file, as published by EICAR.
pub fn eicar() -> Vec<u8> {
    let text = concat!(
        r"X5O!P%@AP[4\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    );
    assert_eq!(text.len(), 68);
    text.as_bytes().to_vec()
}

pub struct ClamdServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
}

impl ClamdServer {
    pub fn start() -> ClamdServer {
        ClamdServer::start_with("")
    }

    /// Starts clamd with `extra` clamd.conf lines after the usual ones.
    pub fn start_with(extra: &str) -> ClamdServer {
        assert!(
            Path::new(CLAMD).exists(),
            "{CLAMD} is missing: install clamav-daemon (make deps) to run the clamd tests"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        fs::create_dir(&db).expect("db dir");
        let hex: String = eicar().iter().map(|b| format!("{b:02x}")).collect();
        fs::write(
            db.join("postern-test.ndb"),
            format!("{SIGNATURE}:0:*:{hex}\n"),
        )
        .expect("ndb");
        let port = free_port();
        let conf = dir.path().join("clamd.conf");
        let d = dir.path().display();
        fs::write(
            &conf,
            format!(
                "DatabaseDirectory {d}/db\nTCPAddr 127.0.0.1\nTCPSocket {port}\n\
                 LocalSocket {d}/clamd.sock\nPidFile {d}/clamd.pid\nLogFile {d}/clamd.log\n\
                 Foreground yes\nStreamMaxLength {STREAM_MAX}\n{extra}\n"
            ),
        )
        .expect("clamd.conf");
        let out = fs::File::create(dir.path().join("clamd.out")).expect("clamd.out");
        let child = Command::new(CLAMD)
            .arg("--config-file")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clamd.out"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CLAMD}: {e}"));
        let mut server = ClamdServer {
            dir,
            child: Some(child),
            port,
        };
        server.wait_for_pong(Duration::from_secs(10));
        server
    }

    pub fn tcp(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("clamd.sock")
    }

    /// clamd's log and its standard output, for a failure message.
    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- clamd.log\n{}--- clamd stdout/stderr\n{}",
            read("clamd.log"),
            read("clamd.out")
        )
    }

    /// Kills clamd now (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_for_pong(&mut self, within: Duration) {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("clamd exited at start ({status}):\n{}", self.log());
            }
            if ping(self.port) {
                return;
            }
            if start.elapsed() > within {
                let log = self.log();
                self.kill();
                panic!("clamd did not answer PING within {within:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ClamdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = Vec::new();
    s.write_all(b"zPING\0").is_ok() && s.read_to_end(&mut reply).is_ok() && reply == b"PONG\0"
}

/// A port nothing listens on now (the kernel's choice, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

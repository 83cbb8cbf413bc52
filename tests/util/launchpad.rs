//! The fake Launchpad web service (tests/fixtures/launchpad.py) for
//! tests: one Python process per test, killed on drop. Used by
//! tests/sync.rs (through `util`) and lib/tests/launchpad.rs (by path).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct FakeLaunchpad {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl FakeLaunchpad {
    /// Starts the service with `state` (the format is at the top of
    /// launchpad.py).
    pub fn start(state: Value) -> FakeLaunchpad {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|d| d.join("tests/fixtures/launchpad.py"))
            .find(|p| p.exists())
            .expect("tests/fixtures/launchpad.py");
        let dir = tempfile::tempdir().expect("tempdir");
        let port_file = dir.path().join("port");
        write_state(dir.path(), &state);
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(state_path(dir.path()))
            .arg(&port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs tests/fixtures/launchpad.py");
        let start = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("launchpad.py exited: {status}");
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("launchpad.py wrote no port in 20s");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        FakeLaunchpad { child, dir, port }
    }

    /// Replaces the state (the service reads it again when it changes).
    pub fn set_state(&self, state: Value) {
        write_state(self.dir.path(), &state);
    }

    /// The service root, as `sync.launchpad_url` takes it.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/1.0", self.port)
    }

    /// Requests answered so far (GET /stats).
    pub fn requests(&self) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .write_all(b"GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("ask for stats");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read stats");
        let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        serde_json::from_str::<Value>(body).expect("JSON stats")["requests"]
            .as_u64()
            .expect("a request count")
    }
}

impl Drop for FakeLaunchpad {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn write_state(dir: &Path, state: &Value) {
    let tmp = dir.join("state.tmp");
    std::fs::write(&tmp, state.to_string()).expect("write state");
    std::fs::rename(&tmp, state_path(dir)).expect("rename state");
}

//! A local HTTPS server for policy and key fetches (MTA-STS, WKD): a
//! certificate made with `openssl` for the names a test gives, and
//! `/usr/bin/python3` running `http.server` behind `ssl`, answering by
//! the `Host` header from a fixed script. MTA-STS, for
//! `/.well-known/mta-sts.txt`:
//!
//! | host                       | answer                                           |
//! |----------------------------|--------------------------------------------------|
//! | `mta-sts.good.test`        | 200 `text/plain`, an enforce policy (LF)         |
//! | `mta-sts.crlf.test`        | 200 `text/plain; charset=utf-8`, CRLF, testing   |
//! | `mta-sts.missing.test`     | 404                                              |
//! | `mta-sts.redirect.test`    | 301 to `mta-sts.good.test`'s policy              |
//! | `mta-sts.slow.test`        | nothing for 5 s, then the good policy            |
//! | `mta-sts.dribble.test`     | headers at once, then one byte each 0.25 s       |
//! | `mta-sts.html.test`        | 200 `text/html`, the good policy                 |
//! | `mta-sts.huge.test`        | 200, `Content-Length` 10 MB, 10 MB of body       |
//! | `mta-sts.stream.test`      | 200, no length, 10 MB of body until closed      |
//! | `mta-sts.junk.test`        | 200 `text/plain`, not a policy                   |
//! | anything else              | 404                                              |
//!
//! WKD, for paths under `/.well-known/openpgpkey/` (the key, [`wkd_key`],
//! only for the hashed local part [`WKD_HASH`], 404 for others):
//!
//! | host                       | answer                                           |
//! |----------------------------|--------------------------------------------------|
//! | `openpgpkey.wkd.test`      | advanced path for `wkd.test`: the key            |
//! | `direct.test`              | direct path: the key (`openpgpkey.direct.test` 404s) |
//! | `openpgpkey.redirect.test` | 301 to `openpgpkey.wkd.test`'s key URL           |
//! | `openpgpkey.loop.test`     | 302 to itself, for ever                          |
//! | `openpgpkey.plain.test`    | 301 to `http://openpgpkey.wkd.test/...`          |
//! | `openpgpkey.slow.test`     | nothing for 5 s, then the key                    |
//! | `openpgpkey.huge.test`     | 200, `Content-Length` 10 MB, 10 MB of body       |
//! | `openpgpkey.stream.test`   | 200, no length, 10 MB of body until closed      |
//! | `openpgpkey.empty.test`    | 200, empty body                                  |
//! | `openpgpkey.err.test`      | 500                                              |
//! | anything else              | 404                                              |
//!
//! Every request is logged as `HOST PATH` to a file; a body that could not
//! be sent whole is logged as `aborted HOST after N` (else `sent HOST N`).
//!
//! The certificate is self-signed with `CA:FALSE` (an end-entity
//! certificate that is its own trust anchor): webpki refuses a `CA:TRUE`
//! certificate as the server's (CaUsedAsEndEntity), which is what
//! `openssl req -x509` makes by default.
//!
//! A test that needs openssl or python3 fails, with the reason, when it is
//! missing: it never passes without having run.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PYTHON: &str = "/usr/bin/python3";
pub const OPENSSL: &str = "openssl";

/// The server's script; argv: cert, key, log.
const SCRIPT: &str = r#"
import http.server, socketserver, ssl, sys, time

CERT, KEY, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
GOOD = b"version: STSv1\nmode: enforce\nmx: mx.good.test\nmx: *.backup.good.test\nmax_age: 86400\n"
CRLF = b"version: STSv1\r\nmode: testing\r\nmx: mx.crlf.test\r\nmax_age: 3600\r\n"
HUGE = 10 * 1024 * 1024
# Any bytes: the client does not parse keys. wkd_key() in Rust builds the same.
WKD_KEY = bytes((i * 7 + 3) % 256 for i in range(3000))
WKD_HASH = "iy9q119eutrkn8s1mk4r39qejnbu3n5q"  # of "Joe.Doe"
WKD = "/.well-known/openpgpkey/"

def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, ctype, body, length=True):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def big(self, host, length, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(HUGE))
        self.end_headers()
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < HUGE:
                self.wfile.write(chunk)
                sent += len(chunk)
            self.wfile.flush()
            log("sent %s %d" % (host, sent))
        except OSError:
            log("aborted %s after %d" % (host, sent))

    def redirect(self, status, location):
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def wkd(self, host):
        path = self.path.split("?")[0]
        advanced = WKD + host[len("openpgpkey."):] + "/hu/" + WKD_HASH
        good = "https://openpgpkey.wkd.test" + WKD + "wkd.test/hu/" + WKD_HASH + "?l=Joe.Doe"
        key = "application/octet-stream"
        if host == "openpgpkey.wkd.test" and path == advanced:
            self.answer(200, key, WKD_KEY)
        elif host == "direct.test" and path == WKD + "hu/" + WKD_HASH:
            self.answer(200, key, WKD_KEY)
        elif host == "openpgpkey.redirect.test":
            self.redirect(301, good)
        elif host == "openpgpkey.loop.test":
            self.redirect(302, "https://openpgpkey.loop.test" + self.path)
        elif host == "openpgpkey.plain.test":
            self.redirect(301, good.replace("https:", "http:"))
        elif host == "openpgpkey.slow.test":
            time.sleep(5)
            try:
                self.answer(200, key, WKD_KEY)
            except OSError:
                pass
        elif host == "openpgpkey.huge.test":
            self.big(host, True, key)
        elif host == "openpgpkey.stream.test":
            self.big(host, False, key)
        elif host == "openpgpkey.empty.test":
            self.answer(200, key, b"")
        elif host == "openpgpkey.err.test":
            self.answer(500, "text/plain", b"broken\n")
        else:
            self.answer(404, "text/plain", b"no such key\n")

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        log("%s %s" % (host, self.path))
        if self.path.startswith(WKD):
            return self.wkd(host)
        if self.path != "/.well-known/mta-sts.txt":
            return self.answer(404, "text/plain", b"not here\n")
        name = host[len("mta-sts."):] if host.startswith("mta-sts.") else ""
        if name == "good.test":
            self.answer(200, "text/plain", GOOD)
        elif name == "crlf.test":
            self.answer(200, "text/plain; charset=utf-8", CRLF)
        elif name == "redirect.test":
            self.send_response(301)
            self.send_header("Location", "https://mta-sts.good.test/.well-known/mta-sts.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif name == "slow.test":
            time.sleep(5)
            try:
                self.answer(200, "text/plain", GOOD)
            except OSError:
                pass
        elif name == "dribble.test":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            try:
                for b in GOOD:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.25)
            except OSError:
                pass
        elif name == "html.test":
            self.answer(200, "text/html", GOOD)
        elif name == "huge.test":
            self.big(host, True)
        elif name == "stream.test":
            self.big(host, False)
        elif name == "junk.test":
            self.answer(200, "text/plain", b"<html>hello</html>\n")
        else:
            self.answer(404, "text/plain", b"no such policy\n")

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
httpd = Server(("127.0.0.1", 0), Handler)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"#;

/// The key the server serves for [`WKD_HASH`] (the script's `WKD_KEY`).
pub fn wkd_key() -> Vec<u8> {
    (0..3000u32).map(|i| ((i * 7 + 3) % 256) as u8).collect()
}

/// The hashed local part the server has a key for: that of `Joe.Doe`.
pub const WKD_HASH: &str = "iy9q119eutrkn8s1mk4r39qejnbu3n5q";

/// A self-signed certificate (`CA:FALSE`) for `names` and its key, in `dir`.
pub fn certificate(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    let out = Command::new(OPENSSL)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-subj")
        .arg(format!("/CN={}", names[0]))
        .arg("-addext")
        .arg(format!("subjectAltName={}", san.join(",")))
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {OPENSSL} (install openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The scripted HTTPS server, stopped (by its own process handle) when
/// dropped.
pub struct PolicyServer {
    child: Child,
    pub port: u16,
    /// The server's certificate: the CA file a client trusts it by.
    pub cert: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PolicyServer {
    /// A server whose certificate names `names`.
    pub fn start(names: &[&str]) -> PolicyServer {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: install Debian's python3"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (cert, key) = certificate(dir.path(), names);
        let script = dir.path().join("server.py");
        std::fs::write(&script, SCRIPT).expect("write the server script");
        let log = dir.path().join("requests.log");
        std::fs::write(&log, "").expect("create the request log");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg(&cert)
            .arg(&key)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
        let stdout = child.stdout.take().expect("the server's stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = match (read, line.trim().parse::<u16>()) {
            (Ok(_), Ok(port)) => port,
            _ => {
                let _ = child.kill();
                let status = child.wait();
                panic!("the HTTPS test server did not start ({status:?}): {line:?}");
            }
        };
        PolicyServer {
            child,
            port,
            cert,
            log,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`, for `mta_sts.connect_to`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The log's lines so far.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Requests for `host` so far.
    pub fn requests_for(&self, host: &str) -> usize {
        let prefix = format!("{host} ");
        self.log().iter().filter(|l| l.starts_with(&prefix)).count()
    }

    /// Waits up to `within` for a log line starting with `prefix`.
    pub fn wait_for(&self, prefix: &str, within: Duration) -> Option<String> {
        let start = Instant::now();
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.starts_with(prefix)) {
                return Some(line);
            }
            if start.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

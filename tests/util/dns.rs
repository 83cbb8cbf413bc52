//! DNS servers for tests: a private `dnsmasq` serving given records on a
//! free loopback port, and a hostile server written here that answers
//! SERVFAIL, nothing, garbage, the wrong id, or a truncated or huge
//! answer.
//!
//! Std only (plus `tempfile`), with no use of the rest of `tests/util`,
//! so the library's own tests can include this file too
//! (`#[path = "../../tests/util/dns.rs"]` in `lib/tests/dns.rs`): one
//! fixture for both the black-box tests and the library-level ones.
//!
//! A test that needs dnsmasq fails, with the reason, when it is missing:
//! it never passes without having run.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Where Debian's `dnsmasq-base` puts the binary.
pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// Records for dnsmasq, as its configuration lines.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    lines: Vec<String>,
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    /// dnsmasq answers for `domain` and everything under it itself:
    /// NXDOMAIN for names it has no record of, never a forward upstream.
    pub fn local(mut self, domain: &str) -> Zone {
        self.lines.push(format!("local=/{domain}/"));
        self
    }

    /// One TXT record of one or more character-strings. A string longer
    /// than 255 octets is cut into several (a TXT character-string holds
    /// at most 255). dnsmasq reads configuration lines of about 1000
    /// octets at most: for a bigger answer, publish several records.
    pub fn txt(mut self, name: &str, strings: &[&str]) -> Zone {
        let mut line = format!("txt-record={name}");
        for s in strings {
            let bytes = s.as_bytes();
            for chunk in bytes.chunks(255) {
                line.push_str(",\"");
                for &b in chunk {
                    match b {
                        b'"' => line.push_str("\\\""),
                        b'\\' => line.push_str("\\\\"),
                        _ => line.push(b as char),
                    }
                }
                line.push('"');
            }
        }
        self.lines.push(line);
        self
    }

    pub fn mx(mut self, name: &str, host: &str, preference: u16) -> Zone {
        self.lines
            .push(format!("mx-host={name},{host},{preference}"));
        self
    }

    /// An A record (an IPv4 address) or AAAA record (IPv6).
    pub fn host(mut self, name: &str, ip: &str) -> Zone {
        self.lines.push(format!("host-record={name},{ip}"));
        self
    }

    /// TTL of the records above (dnsmasq's `local-ttl`; 0 when unset).
    pub fn ttl(mut self, seconds: u32) -> Zone {
        self.lines.push(format!("local-ttl={seconds}"));
        self
    }
}

/// A running private dnsmasq; stopped when dropped.
pub struct Dnsmasq {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq for `zone` on a free loopback port and waits until
    /// it answers. Panics (the test fails) when dnsmasq is not installed.
    pub fn start(zone: &Zone) -> Dnsmasq {
        // The port is free when chosen but may be taken before dnsmasq
        // binds it (another test's resolver): then another port is tried.
        let mut retries = 4;
        loop {
            match Dnsmasq::try_start(zone) {
                Ok(server) => return server,
                Err(why) if why.contains("in use") && retries > 0 => retries -= 1,
                Err(why) => panic!("{why}"),
            }
        }
    }

    fn try_start(zone: &Zone) -> Result<Dnsmasq, String> {
        let bin = dnsmasq_path();
        let dir = tempfile::tempdir().expect("temp dir for dnsmasq");
        let port = free_port();
        let log = dir.path().join("dnsmasq.log");
        let mut conf = String::new();
        let _ = writeln!(conf, "port={port}");
        conf.push_str(
            "listen-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n\
             log-queries\n",
        );
        let _ = writeln!(conf, "log-facility={}", log.display());
        // As root dnsmasq would become nobody, who cannot write the log in
        // our private temp dir.
        if is_root() {
            conf.push_str("user=root\n");
        }
        for line in &zone.lines {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf_path, conf).expect("write dnsmasq.conf");
        let child = Command::new(&bin)
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf_path.display()))
            .arg("--pid-file=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let mut server = Dnsmasq {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// `127.0.0.1:PORT`, as `dns.nameservers` takes it.
    pub fn nameserver(&self) -> String {
        self.addr.to_string()
    }

    /// How many queries of `kind` (`TXT`, `MX`) dnsmasq has logged.
    pub fn queries(&self, kind: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default();
        let tag = format!("query[{kind}]");
        log.lines().filter(|l| l.contains(&tag)).count()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "dnsmasq exited at start ({status}): {}",
                    err.trim()
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not listen on {} within 10 s",
                self.addr
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq_path() -> PathBuf {
    if Path::new(DNSMASQ).exists() {
        return PathBuf::from(DNSMASQ);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("dnsmasq"))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "dnsmasq is not installed ({DNSMASQ} not found): these tests need it; \
             install Debian's dnsmasq-base (make deps)"
        )
    })
}

fn is_root() -> bool {
    // The uid of this process, without a dependency: /proc/self is owned
    // by it.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A UDP socket and a TCP listener on the same loopback port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let Ok(udp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            return (udp, tcp);
        }
    }
    panic!("no free loopback port for a test DNS server");
}

/// A loopback port free for both UDP and TCP at the time of asking (it
/// may be taken before it is used: callers retry).
pub fn free_port() -> u16 {
    let (udp, _tcp) = bind_pair();
    udp.local_addr().expect("UDP address").port()
}

// ---------------------------------------------------------------------------
// A hostile (or simply scripted) DNS server.

/// How the scripted server answers every query.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answers from these records: NXDOMAIN for a name it has none of,
    /// NODATA for a type it has none of. Over UDP, an answer longer than
    /// 512 octets is sent truncated (TC) so the client asks again over TCP.
    Records(Records),
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// Never answers.
    Silent,
    /// The query's id, then bytes that are no DNS message.
    Garbage,
    /// A correct answer under another id (a spoofing attempt).
    WrongId,
    /// An empty answer with the TC bit, over UDP and TCP alike.
    Truncated,
    /// Over UDP truncated; over TCP an answer of about 60 KiB of TXT
    /// records, the i-th `{prefix}{i}:x{i}@example.net` and commas.
    Huge { prefix: String },
}

/// Records the scripted server knows, by lower-cased name.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// TTL of every record.
    pub ttl: u32,
    txt: Vec<(String, Vec<Vec<u8>>)>,
    mx: Vec<(String, u16, String)>,
}

impl Records {
    pub fn new(ttl: u32) -> Records {
        Records {
            ttl,
            ..Records::default()
        }
    }

    /// One TXT record made of these character-strings (each ≤ 255 octets).
    pub fn txt(mut self, name: &str, strings: &[&[u8]]) -> Records {
        self.txt.push((
            name.to_ascii_lowercase(),
            strings.iter().map(|s| s.to_vec()).collect(),
        ));
        self
    }

    pub fn mx(mut self, name: &str, preference: u16, host: &str) -> Records {
        self.mx
            .push((name.to_ascii_lowercase(), preference, host.to_owned()));
        self
    }

    fn knows(&self, name: &str) -> bool {
        self.txt.iter().any(|(n, _)| n == name) || self.mx.iter().any(|(n, _, _)| n == name)
    }
}

const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;

/// A scripted DNS server on a loopback port (UDP and TCP); stopped when
/// dropped. Counts the queries it receives.
pub struct FakeDns {
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeDns {
    pub fn start(behaviour: Behaviour) -> FakeDns {
        // Bound here and kept: a port found free and let go can be taken
        // by another test's socket (a resolver's source port) meanwhile.
        let (udp, tcp) = bind_pair();
        let port = tcp.local_addr().expect("TCP address").port();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("UDP timeout");
        tcp.set_nonblocking(true).expect("TCP non-blocking");
        let behaviour = Arc::new(Mutex::new(behaviour));
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (b, q, s) = (behaviour.clone(), queries.clone(), stop.clone());
            threads.push(thread::spawn(move || serve_udp(udp, b, q, s)));
        }
        {
            let (b, q, s) = (behaviour.clone(), queries.clone(), stop.clone());
            threads.push(thread::spawn(move || serve_tcp(tcp, b, q, s)));
        }
        FakeDns {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            behaviour,
            queries,
            stop,
            threads,
        }
    }

    pub fn nameserver(&self) -> String {
        self.addr.to_string()
    }

    /// Queries received so far (UDP and TCP).
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// Answers differently from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap_or_else(|e| e.into_inner()) = behaviour;
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_udp(
    socket: UdpSocket,
    behaviour: Arc<Mutex<Behaviour>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((len, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        let b = behaviour.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(reply) = respond(&buf[..len], &b, false) {
            let _ = socket.send_to(&reply, peer);
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    behaviour: Arc<Mutex<Behaviour>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut conns = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (b, q, s) = (behaviour.clone(), queries.clone(), stop.clone());
                conns.push(thread::spawn(move || serve_conn(stream, b, q, s)));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

fn serve_conn(
    mut stream: TcpStream,
    behaviour: Arc<Mutex<Behaviour>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        // RFC 1035 section 4.2.2: each message behind a 2-octet length.
        while pending.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
            if pending.len() < 2 + len {
                break;
            }
            let query: Vec<u8> = pending.drain(..2 + len).skip(2).collect();
            queries.fetch_add(1, Ordering::SeqCst);
            let b = behaviour.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(reply) = respond(&query, &b, true) {
                let Ok(len) = u16::try_from(reply.len()) else {
                    return;
                };
                let mut framed = len.to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                if stream.write_all(&framed).is_err() {
                    return;
                }
            }
        }
    }
}

/// The query's id, its question section (raw) and the name and type asked.
struct Question<'a> {
    id: u16,
    rd: bool,
    raw: &'a [u8],
    name: String,
    qtype: u16,
}

fn question(query: &[u8]) -> Option<Question<'_>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = query.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let end = i + 4;
    query.get(i..end)?;
    Some(Question {
        id: u16::from_be_bytes([query[0], query[1]]),
        rd: query[2] & 0x01 != 0,
        raw: &query[12..end],
        name: labels.join("."),
        qtype,
    })
}

fn header(id: u16, rd: bool, tc: bool, rcode: u8, answers: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(12);
    h.extend_from_slice(&id.to_be_bytes());
    // QR, opcode 0, AA, TC, RD as asked; RA, rcode.
    h.push(0x84 | if tc { 0x02 } else { 0 } | u8::from(rd));
    h.push(0x80 | (rcode & 0x0f));
    h.extend_from_slice(&1u16.to_be_bytes());
    h.extend_from_slice(&answers.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// An answer record whose name points at the question (offset 12).
fn record(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

fn txt_rdata(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut r = Vec::new();
    for s in strings {
        r.push(s.len().min(255) as u8);
        r.extend_from_slice(&s[..s.len().min(255)]);
    }
    r
}

fn name_wire(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

fn respond(query: &[u8], behaviour: &Behaviour, tcp: bool) -> Option<Vec<u8>> {
    let q = question(query)?;
    let simple = |rcode: u8, tc: bool| {
        let mut m = header(q.id, q.rd, tc, rcode, 0);
        m.extend_from_slice(q.raw);
        m
    };
    match behaviour {
        Behaviour::Silent => None,
        Behaviour::ServFail => Some(simple(2, false)),
        Behaviour::Refused => Some(simple(5, false)),
        Behaviour::Truncated => Some(simple(0, true)),
        Behaviour::Garbage => {
            // The right id, then a header claiming records that are not there.
            let mut m = q.id.to_be_bytes().to_vec();
            m.extend_from_slice(&[0x81, 0x80, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00]);
            m.extend_from_slice(b"\x03not\xff\xfe garbage \x00\x01");
            Some(m)
        }
        Behaviour::WrongId => {
            let mut m = simple(0, false);
            let wrong = q.id.wrapping_add(1).to_be_bytes();
            m[0] = wrong[0];
            m[1] = wrong[1];
            Some(m)
        }
        Behaviour::Huge { prefix } => {
            if !tcp {
                return Some(simple(0, true));
            }
            let mut body = Vec::new();
            let mut count = 0u16;
            while body.len() < 60 * 1024 {
                // Distinct records (a reader may fold equal ones), each
                // `PREFIXi:xi@example.net` padded with commas (empty entries).
                let mut string = format!("{prefix}{count}:x{count}@example.net");
                while string.len() < 250 {
                    string.push(',');
                }
                record(&mut body, TYPE_TXT, 300, &txt_rdata(&[string.into_bytes()]));
                count += 1;
            }
            let mut m = header(q.id, q.rd, false, 0, count);
            m.extend_from_slice(q.raw);
            m.extend_from_slice(&body);
            Some(m)
        }
        Behaviour::Records(records) => {
            let mut body = Vec::new();
            let mut count = 0u16;
            match q.qtype {
                TYPE_TXT => {
                    for (_, strings) in records.txt.iter().filter(|(n, _)| *n == q.name) {
                        record(&mut body, TYPE_TXT, records.ttl, &txt_rdata(strings));
                        count += 1;
                    }
                }
                TYPE_MX => {
                    for (_, pref, host) in records.mx.iter().filter(|(n, _, _)| *n == q.name) {
                        let mut rdata = pref.to_be_bytes().to_vec();
                        rdata.extend_from_slice(&name_wire(host));
                        record(&mut body, TYPE_MX, records.ttl, &rdata);
                        count += 1;
                    }
                }
                _ => {}
            }
            let rcode = if records.knows(&q.name) { 0 } else { 3 };
            let mut m = header(q.id, q.rd, false, rcode, count);
            m.extend_from_slice(q.raw);
            m.extend_from_slice(&body);
            if !tcp && m.len() > 512 {
                return Some(simple(0, true));
            }
            Some(m)
        }
    }
}

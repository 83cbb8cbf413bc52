//! A tiny HTTPS server for tests, over rustls with a certificate from
//! `util::tls`: every request gets the same answer (an MTA-STS policy,
//! say), or what a function of the host and path says (WKD keys).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server answers a request for (host, path): status and body.
pub type Route = dyn Fn(&str, &str) -> (u16, Vec<u8>) + Send + Sync;

pub struct Https {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    /// `HOST PATH` of every request, in order.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Https {
    /// Serves `body` as text/plain to every GET.
    pub fn start(config: Arc<rustls::ServerConfig>, body: &str) -> Https {
        let body = body.as_bytes().to_vec();
        Https::serve(
            config,
            Arc::new(move |_: &str, _: &str| (200, body.clone())),
        )
    }

    /// Answers each GET with what `route` gives for its host and path.
    pub fn serve(config: Arc<rustls::ServerConfig>, route: Arc<Route>) -> Https {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind HTTPS");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, r, l) = (stop.clone(), requests.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                r.fetch_add(1, Ordering::SeqCst);
                let _ = tcp.set_nonblocking(false);
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                let mut line = String::new();
                let (mut path, mut host) = (String::new(), String::new());
                while tls.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some(rest) = line.strip_prefix("GET ") {
                        path = rest.split_whitespace().next().unwrap_or("").to_owned();
                    } else if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("host")
                    {
                        host = value.trim().split(':').next().unwrap_or("").to_owned();
                    }
                    line.clear();
                }
                if let Ok(mut log) = l.lock() {
                    log.push(format!("{host} {path}"));
                }
                let (status, body) = route(&host, &path);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let out = tls.get_mut();
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
                out.conn.send_close_notify();
                let _ = out.flush();
            }
        });
        Https {
            port,
            requests,
            log,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

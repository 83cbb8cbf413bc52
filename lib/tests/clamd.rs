//! postern's clamd client against the real clamd (lib/tests/clamd/mod.rs
//! starts a private one) and against fake servers that misbehave.

#[path = "clamd/mod.rs"]
mod server;

use postern::scanner::clamd::{Clamd, ClamdError, Endpoint, Verdict};
use server::{ClamdServer, REPORTED, STREAM_MAX, eicar};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);

fn client(endpoint: &str) -> Clamd {
    Clamd::new(endpoint.parse().unwrap(), TIMEOUT, STREAM_MAX, 8192)
}

fn found() -> Verdict {
    Verdict::Found(REPORTED.to_string())
}

/// A plain-text message of about `size` bytes with nothing in it.
fn clean_message(size: usize) -> Vec<u8> {
    let mut m = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: minutes\r\n\
                  Message-ID: <1@example.org>\r\n\r\n"
        .to_vec();
    let mut n = 0;
    while m.len() < size {
        n += 1;
        m.extend_from_slice(
            format!("Line {n}: the meeting moved to Thursday, room 4.\r\n").as_bytes(),
        );
    }
    m
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn mime_with_attachment(name: &str, content_type: &str, data: &[u8]) -> Vec<u8> {
    format!(
        "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: the file\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
         --b1\r\nContent-Type: {content_type}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        base64(data)
    )
    .into_bytes()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A ZIP archive (APPNOTE 4.3) holding `data` as `name`, stored.
fn stored_zip(name: &str, data: &[u8]) -> Vec<u8> {
    let (crc, size, n) = (crc32(data), data.len() as u32, name.len() as u16);
    let mut z = Vec::new();
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time, date
    for v in [crc, size, size] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    for v in [crc, size, size] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes, external attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    z.extend_from_slice(name.as_bytes());
    let central_size = z.len() as u32 - central;
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&central_size.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

#[test]
fn eicar_is_found_over_tcp_and_unix_socket() {
    let server = ClamdServer::start();
    let mut tcp = client(&server.tcp());
    assert_eq!(tcp.scan(&eicar()).unwrap(), found());
    let mut unix = Clamd::new(Endpoint::Unix(server.socket()), TIMEOUT, STREAM_MAX, 8192);
    assert_eq!(unix.scan(&eicar()).unwrap(), found());
    unix.ping().unwrap();
    tcp.ping().unwrap();
}

#[test]
fn clean_message_is_clean() {
    let server = ClamdServer::start();
    let mut c = client(&server.tcp());
    let message = clean_message(10 * 1024);
    assert_eq!(c.scan(&message).unwrap(), Verdict::Clean);
    assert_eq!(c.scan(b"").unwrap(), Verdict::Clean);
}

#[test]
fn eicar_in_a_base64_mime_attachment_is_found() {
    let server = ClamdServer::start();
    let mut c = client(&server.tcp());
    let message = mime_with_attachment("eicar.com", "application/octet-stream", &eicar());
    // The EICAR bytes do not appear in the raw message: clamd decodes MIME.
    assert!(!message.windows(68).any(|w| w == eicar()));
    assert_eq!(c.scan(&message).unwrap(), found());
}

#[test]
fn eicar_in_a_zip_attachment_is_found() {
    let server = ClamdServer::start();
    let mut c = client(&server.tcp());
    let zip = stored_zip("eicar.com", &eicar());
    assert_eq!(c.scan(&zip).unwrap(), found());
    // Base64 hides the stored bytes; clamd decodes the mail, then opens the zip.
    let message = mime_with_attachment("report.zip", "application/zip", &zip);
    assert_eq!(c.scan(&message).unwrap(), found());
}

#[test]
fn eicar_split_across_chunks_is_found() {
    let server = ClamdServer::start();
    let mut c = Clamd::new(server.tcp().parse().unwrap(), TIMEOUT, STREAM_MAX, 16);
    let mut data = b"padding!".to_vec(); // EICAR starts mid-chunk and spans 5 chunks
    data.extend_from_slice(&eicar());
    assert_eq!(c.scan(&data).unwrap(), found());
}

/// 100 scans over one kept session, and 100 over a new connection each;
/// the two are interleaved so that other load on the machine weighs on
/// both alike. The times are printed, not asserted: on a shared 2-core
/// machine clamd's scan time swamps a loopback connect.
#[test]
fn a_session_serves_many_scans() {
    let server = ClamdServer::start();
    let mut session = client(&server.tcp());
    assert_eq!(session.scan(&eicar()).unwrap(), found());
    for (name, message) in [
        ("10 KB", clean_message(10 * 1024)),
        ("110 KB", clean_message(110 * 1024)),
    ] {
        let (mut kept, mut fresh) = (Duration::ZERO, Duration::ZERO);
        for i in 0..100 {
            let start = Instant::now();
            assert_eq!(session.scan(&message).unwrap(), Verdict::Clean, "scan {i}");
            kept += start.elapsed();
            let start = Instant::now();
            // A new client: a new connection and session.
            assert_eq!(
                client(&server.tcp()).scan(&message).unwrap(),
                Verdict::Clean,
                "scan {i}"
            );
            fresh += start.elapsed();
        }
        println!(
            "{name}: 100 scans over one session {kept:?} ({:.0}/s), over 100 connections {fresh:?} ({:.0}/s)",
            100.0 / kept.as_secs_f64(),
            100.0 / fresh.as_secs_f64()
        );
    }
    assert_eq!(session.scan(&eicar()).unwrap(), found());
}

#[test]
fn a_session_closed_by_clamd_is_reopened_once() {
    // clamd's ReadTimeout (not CommandReadTimeout or IdleTimeout) ends an
    // idle IDSESSION: it sends "COMMAND READ TIMED OUT\n" and closes.
    let server = ClamdServer::start_with("ReadTimeout 1");
    let mut c = client(&server.tcp());
    assert_eq!(c.scan(&eicar()).unwrap(), found());
    std::thread::sleep(Duration::from_millis(2500)); // clamd gives up on the idle session
    assert_eq!(c.scan(&eicar()).unwrap(), found());
    c.ping().unwrap();
}

#[test]
fn clamd_gone_is_a_connect_error_within_the_timeout() {
    let mut server = ClamdServer::start();
    let timeout = Duration::from_secs(1);
    let mut c = Clamd::new(server.tcp().parse().unwrap(), timeout, STREAM_MAX, 8192);
    assert_eq!(c.scan(&eicar()).unwrap(), found());
    server.kill();
    let start = Instant::now();
    let err = c.scan(&eicar()).unwrap_err();
    assert!(
        start.elapsed() <= timeout + Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, ClamdError::Connect { .. }), "{err:?}");
    println!("{err}");
}

/// A server at 127.0.0.1 that accepts one connection and hands it to `serve`.
fn fake_server(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    addr
}

#[test]
fn a_server_that_never_answers_times_out() {
    let addr = fake_server(|mut s| {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink); // reads everything, answers nothing
    });
    let timeout = Duration::from_millis(500);
    let mut c = Clamd::new(addr.parse().unwrap(), timeout, STREAM_MAX, 8192);
    let start = Instant::now();
    let err = c.scan(&eicar()).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, ClamdError::Timeout { .. }), "{err:?}");
    assert!(took >= timeout && took < timeout * 3, "{took:?}");
    println!("{err}");
}

#[test]
fn garbage_replies_are_errors() {
    let addr = fake_server(|mut s| {
        let _ = s.write_all(b"1: stream: perhaps\0");
        std::thread::sleep(Duration::from_secs(1));
    });
    let err = client(&addr).scan(&eicar()).unwrap_err();
    assert!(matches!(err, ClamdError::BadReply { .. }), "{err:?}");
    assert!(err.to_string().contains("perhaps"), "{err}");
    println!("{err}");
}

#[test]
fn megabytes_without_an_end_are_cut_off() {
    let addr = fake_server(|mut s| {
        let junk = vec![b'A'; 64 * 1024];
        for _ in 0..64 {
            if s.write_all(&junk).is_err() {
                return;
            }
        }
    });
    let err = client(&addr).scan(&eicar()).unwrap_err();
    assert!(matches!(err, ClamdError::BadReply { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("over 4096 bytes"), "{text}");
    assert!(text.len() < 400, "{text}");
    println!("{text}");
}

#[test]
fn a_message_over_max_stream_is_refused_unsent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = Endpoint::Tcp(listener.local_addr().unwrap());
    let mut c = Clamd::new(endpoint, TIMEOUT, 1000, 8192);
    let err = c.scan(&[b'x'; 1001]).unwrap_err();
    assert!(
        matches!(
            err,
            ClamdError::TooLarge {
                size: 1001,
                max: 1000
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "message of 1001 bytes is over clamd's StreamMaxLength of 1000 bytes; not sent to clamd"
    );
    assert!(listener.accept().is_err(), "the client connected");
}

#[test]
fn clamd_stream_max_length_exceeded_is_its_error() {
    let server = ClamdServer::start();
    // The client believes clamd takes more than it does.
    let mut c = Clamd::new(
        server.tcp().parse().unwrap(),
        TIMEOUT,
        4 * STREAM_MAX,
        65536,
    );
    let err = c.scan(&vec![b'a'; 3 * STREAM_MAX as usize]).unwrap_err();
    match &err {
        ClamdError::Clamd { message, .. } => assert_eq!(message, "INSTREAM size limit exceeded."),
        other => panic!("{other:?}\n{}", server.log()),
    }
    println!("{err}");
    // clamd ended that session; the next scan opens another.
    assert_eq!(c.scan(&eicar()).unwrap(), found());
}

/// Reads one `zINSTREAM` request: the command, the chunks, the end.
fn read_instream(s: &mut std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut command = [0u8; 10];
    s.read_exact(&mut command)?;
    assert_eq!(&command, b"zINSTREAM\0");
    let mut data = Vec::new();
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            return Ok(data);
        }
        let start = data.len();
        data.resize(start + len, 0);
        s.read_exact(&mut data[start..])?;
    }
}

/// A fake clamd that serves connections in turn: the first answers the
/// first scan and then closes on the second without a reply; later ones
/// answer every scan. Returns the address and the count of connections.
fn closing_server(first_closes: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let mut session = [0u8; 11];
            if s.read_exact(&mut session).is_err() {
                continue;
            }
            assert_eq!(&session, b"zIDSESSION\0");
            let mut id = 0;
            while read_instream(&mut s).is_ok() {
                id += 1;
                if n == 0 && (first_closes || id == 2) {
                    break; // dropped: closed without a reply
                }
                if s.write_all(format!("{id}: stream: OK\0").as_bytes())
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    (addr, accepted)
}

#[test]
fn a_kept_connection_closed_mid_request_is_retried_once_on_a_new_one() {
    let (addr, accepted) = closing_server(false);
    let mut c = client(&addr);
    assert_eq!(c.scan(b"one").unwrap(), Verdict::Clean);
    // The kept connection looks alive but closes without answering.
    assert_eq!(c.scan(b"two").unwrap(), Verdict::Clean);
    assert_eq!(c.scan(b"three").unwrap(), Verdict::Clean);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn a_new_connection_closed_without_a_reply_is_not_retried() {
    let (addr, accepted) = closing_server(true);
    let err = client(&addr).scan(b"one").unwrap_err();
    assert!(matches!(err, ClamdError::Closed { .. }), "{err:?}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    println!("{err}");
}

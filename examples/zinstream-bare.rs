//! The least a clamd client can do, for bench/scanner-bench.sh (build
//! with `cargo build --release --features bench --example zinstream-bare`):
//!
//!   zinstream-bare IP:PORT PATH...
//!       reads every file named (a directory stands for the files in it,
//!       in name order) into memory, then sends each to clamd as
//!       clamd(8) `zINSTREAM`: a new TCP connection per message, the
//!       command, 64 KiB chunks each after its length as a 4-byte
//!       big-endian number, a zero-length chunk, then the reply read up
//!       to its NUL. Prints messages per second on stdout and
//!       `scanned N, found F` on stderr.
//!
//! Std only and nothing but the protocol: no MIME walk, no session, no
//! retry, so it is the ceiling any clamd client on this machine can reach.
//! A reply other than `stream: OK` or `stream: NAME FOUND` is an error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The chunk size postern's scanner uses too.
const CHUNK: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(60);
/// Longest reply read: a signature name fits many times over.
const MAX_REPLY: usize = 4096;

fn files(paths: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let path = Path::new(p);
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{p}: {e}"))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            inside.sort();
            out.extend(inside);
        } else {
            out.push(path.to_path_buf());
        }
    }
    Ok(out)
}

/// One message through one connection; `Ok(true)` when clamd found something.
fn scan(addr: &SocketAddr, message: &[u8]) -> Result<bool, String> {
    let mut conn = TcpStream::connect_timeout(addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to clamd at {addr}: {e}"))?;
    conn.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(TIMEOUT)))
        .and_then(|()| conn.set_nodelay(true))
        .map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("clamd at {addr}: {e}");
    let mut frame = Vec::with_capacity(4 + CHUNK);
    frame.extend_from_slice(b"zINSTREAM\0");
    for piece in message.chunks(CHUNK) {
        frame.extend_from_slice(&(piece.len() as u32).to_be_bytes());
        frame.extend_from_slice(piece);
        conn.write_all(&frame).map_err(io)?;
        frame.clear();
    }
    frame.extend_from_slice(&0u32.to_be_bytes());
    conn.write_all(&frame).map_err(io)?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 512];
    loop {
        let n = conn.read(&mut byte).map_err(io)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&byte[..n]);
        if reply.contains(&0) || reply.len() > MAX_REPLY {
            break;
        }
    }
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    let text = String::from_utf8_lossy(&reply[..end]);
    match text.strip_prefix("stream: ") {
        Some("OK") => Ok(false),
        Some(r) if r.ends_with(" FOUND") => Ok(true),
        _ => Err(format!("clamd at {addr} answered {text:?}")),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let [addr, paths @ ..] = args else {
        return Err("usage: zinstream-bare IP:PORT FILE|DIR...".into());
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not IP:PORT"))?;
    let names = files(paths)?;
    if names.is_empty() {
        return Err("no messages given".into());
    }
    let messages = names
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("{}: {e}", f.display())))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let mut found = 0;
    for m in &messages {
        found += usize::from(scan(&addr, m)?);
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("zinstream-bare: scanned {}, found {found}", messages.len());
    println!("{:.0}", messages.len() as f64 / secs);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zinstream-bare: {e}");
            ExitCode::FAILURE
        }
    }
}

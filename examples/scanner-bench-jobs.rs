//! Messages and job streams for bench/scanner-bench.sh (build with
//! `cargo build --release --features bench --example scanner-bench-jobs`):
//!
//!   scanner-bench-jobs messages N DIR
//!       writes N messages DIR/000001.eml...: about 10 KB of text and one
//!       100 KiB attachment (a PDF-looking file, base64), clean. Every
//!       message and attachment differs from the others, so clamd's cache
//!       of clean files never answers for it;
//!   scanner-bench-jobs big FILE
//!       writes one message of about 25 MB in 500 MIME parts (text parts
//!       and base64 attachments taking turns), for the MIME walk;
//!   scanner-bench-jobs jobs PATH...
//!       writes one job (postern-job(5)) per message file on stdout (a
//!       directory stands for its files in name order): envelope sender
//!       alice@example.org, recipient user@example.com, client-address
//!       192.0.2.10 (mail.example.org), as the receiver would after
//!       Postfix handed the message over.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use postern::mail::address::{Address, Sender};
use postern::mail::job::{Envelope, Job, QueueId, Recipient};

const TEXT_SIZE: usize = 10 * 1024;
const ATTACHMENT_SIZE: usize = 100 * 1024;
const BIG_SIZE: usize = 25 * 1024 * 1024;
const BIG_PARTS: usize = 500;

/// Deterministic bytes that look random (xorshift64*), one stream per seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Base64 (RFC 2045: lines of 76 characters, LF).
fn base64(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for line in data.chunks(57) {
        for group in line.chunks(3) {
            let b = [
                group[0],
                *group.get(1).unwrap_or(&0),
                *group.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
                out.push(if i <= group.len() {
                    ALPHABET[(n >> shift) as usize & 63]
                } else {
                    b'='
                });
            }
        }
        out.push(b'\n');
    }
    out
}

/// About `size` bytes of plain text lines, numbered from `first`.
fn text(size: usize, first: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 80);
    let mut n = first;
    while out.len() < size {
        out.extend_from_slice(
            format!("{n:06} the quick brown fox jumps over the lazy dog; figures to follow.\n")
                .as_bytes(),
        );
        n += 1;
    }
    out
}

/// A file a PDF reader would start on: the header, a body that looks
/// compressed, the trailer.
fn pdf_like(size: usize, seed: u64) -> Vec<u8> {
    let mut out =
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 0 /Filter /FlateDecode >>\nstream\n"
            .to_vec();
    let tail = b"\nendstream\nendobj\n%%EOF\n";
    out.extend(noise(size.saturating_sub(out.len() + tail.len()), seed));
    out.extend_from_slice(tail);
    out
}

fn head(i: usize, subject: &str, boundary: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\nTo: <user@example.com>\nSubject: {subject}\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\nMessage-ID: <bench-{i}@example.org>\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n\
         This is a multi-part message in MIME format.\n"
    )
    .into_bytes()
}

fn text_part(out: &mut Vec<u8>, boundary: &str, body: &[u8]) {
    out.extend_from_slice(
        format!(
            "\n--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\
             Content-Transfer-Encoding: 7bit\n\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

fn attachment_part(out: &mut Vec<u8>, boundary: &str, name: &str, data: &[u8]) {
    out.extend_from_slice(
        format!(
            "\n--{boundary}\nContent-Type: application/pdf; name=\"{name}\"\n\
             Content-Transfer-Encoding: base64\n\
             Content-Disposition: attachment; filename=\"{name}\"\n\n"
        )
        .as_bytes(),
    );
    out.extend(base64(data));
}

/// Message `i` of the throughput runs.
fn message(i: usize) -> Vec<u8> {
    let boundary = format!("=_bench_{i}");
    let mut m = head(i, &format!("bench {i}"), &boundary);
    text_part(&mut m, &boundary, &text(TEXT_SIZE, i * 1000));
    attachment_part(
        &mut m,
        &boundary,
        &format!("statement-{i:06}.pdf"),
        &pdf_like(ATTACHMENT_SIZE, i as u64 + 1),
    );
    m.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    m
}

/// The 25 MB message of 500 parts.
fn big() -> Vec<u8> {
    let boundary = "=_bench_big";
    let mut m = head(0, "big", boundary);
    // Base64 grows data by 4/3 (and a newline per 76 characters).
    let per_part = BIG_SIZE / BIG_PARTS;
    for p in 0..BIG_PARTS {
        if p % 2 == 0 {
            text_part(&mut m, boundary, &text(per_part, p * 10_000));
        } else {
            let name = format!("part-{p:03}.pdf");
            attachment_part(
                &mut m,
                boundary,
                &name,
                &pdf_like(per_part * 57 / 77, p as u64),
            );
        }
    }
    m.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    m
}

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

fn jobs(paths: &[String]) -> Result<(), String> {
    let sender = Sender::parse("alice@example.org").map_err(|e| e.to_string())?;
    let rcpt = Address::parse("user@example.com").map_err(|e| e.to_string())?;
    let now = SystemTime::now();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (i, f) in files(paths)?.iter().enumerate() {
        let message = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let id = QueueId::parse(&format!("{:016X}", 0x5CA0_0000_0000u64 + i as u64))
            .ok_or("queue id")?;
        let mut envelope = Envelope::new(id, now, sender.clone());
        envelope.recipients.push(Recipient::new(rcpt.clone()));
        envelope.client_address = Some("192.0.2.10".into());
        envelope.client_hostname = Some("mail.example.org".into());
        envelope.client_helo = Some("mail.example.org".into());
        Job { envelope, message }
            .write_to(&mut out)
            .map_err(|e| format!("writing the job stream: {e}"))?;
    }
    out.flush()
        .map_err(|e| format!("writing the job stream: {e}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let write = |path: &Path, data: &[u8]| {
        std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))
    };
    match args {
        [cmd, n, dir] if cmd == "messages" => {
            let n: usize = n.parse().map_err(|_| format!("{n:?} is not a count"))?;
            let dir = Path::new(dir);
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for i in 1..=n {
                write(&dir.join(format!("{i:06}.eml")), &message(i))?;
            }
            Ok(())
        }
        [cmd, file] if cmd == "big" => write(Path::new(file), &big()),
        [cmd, paths @ ..] if cmd == "jobs" && !paths.is_empty() => jobs(paths),
        _ => Err("usage: scanner-bench-jobs messages N DIR | big FILE | jobs PATH...".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scanner-bench-jobs: {e}");
            ExitCode::FAILURE
        }
    }
}

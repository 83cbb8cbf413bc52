//! The encryption engines alone, for bench/encryptor-bench.sh (build with
//! `cargo build --release --features bench --example encryptor-bench`):
//!
//!   encryptor-bench gpgme HOME N
//!       encrypts a 10 KB message N times with gpgme to the one key in the
//!       GnuPG home HOME (gpgme runs a gpg process per operation);
//!   encryptor-bench rpgp KEYFILE N
//!       the same with postern's in-process engine (rPGP) to the key in
//!       KEYFILE (`gpg --export` output).
//!
//! Each prints the rate in messages per second on stdout. The key is
//! found once, before the clock starts, as postern-encryptor finds it
//! once per address.

use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use postern::encryptor::openpgp::{encrypt, parse_keys};

const SIZE: usize = 10 * 1024;

/// A 10 KB text message, as the other benches send.
fn message() -> Vec<u8> {
    let mut m =
        b"From: alice@example.org\r\nTo: bench@example.net\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < SIZE {
        m.extend_from_slice(b"0123456789 the quick brown fox jumps over the lazy dog 0123\r\n");
    }
    m.truncate(SIZE);
    m
}

fn gpgme_rate(home: &str, n: usize) -> Result<f64, String> {
    let e = |e: gpgme::Error| e.to_string();
    gpgme::init();
    let mut ctx = gpgme::Context::from_protocol(gpgme::Protocol::OpenPgp).map_err(e)?;
    ctx.set_engine_home_dir(home).map_err(e)?;
    ctx.set_armor(true);
    let keys: Vec<gpgme::Key> = ctx
        .find_keys(["<bench@example.net>"])
        .map_err(e)?
        .filter_map(Result::ok)
        .filter(|k| k.can_encrypt())
        .collect();
    let key = keys
        .first()
        .ok_or_else(|| format!("no key for bench@example.net in {home}"))?;
    let msg = message();
    let start = Instant::now();
    for _ in 0..n {
        let mut out = Vec::with_capacity(2 * SIZE);
        ctx.encrypt_with_flags(
            Some(key),
            &msg[..],
            &mut out,
            gpgme::EncryptFlags::ALWAYS_TRUST,
        )
        .map_err(e)?;
        check(&out)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn rpgp_rate(keyfile: &str, n: usize) -> Result<f64, String> {
    let bytes = std::fs::read(keyfile).map_err(|e| format!("{keyfile}: {e}"))?;
    let certs = parse_keys(&bytes).map_err(|e| format!("{keyfile}: {e}"))?;
    let cert = certs.first().ok_or_else(|| format!("{keyfile}: no key"))?;
    let msg = message();
    let start = Instant::now();
    for _ in 0..n {
        let mut out = Vec::with_capacity(2 * SIZE);
        encrypt(&msg, &[cert], SystemTime::now(), &mut out).map_err(|e| e.to_string())?;
        check(&out)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// An armored OpenPGP message, not the plaintext (gpg compresses before
/// it encrypts, so the size says nothing).
fn check(out: &[u8]) -> Result<(), String> {
    if out.starts_with(b"-----BEGIN PGP MESSAGE-----")
        && out.trim_ascii_end().ends_with(b"-----END PGP MESSAGE-----")
    {
        Ok(())
    } else {
        Err("the engine's output is not an armored OpenPGP message".into())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |s: &str| s.parse::<usize>().map_err(|_| format!("not a count: {s}"));
    let rate = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gpgme", home, count] => n(count).and_then(|c| gpgme_rate(home, c)),
        ["rpgp", keyfile, count] => n(count).and_then(|c| rpgp_rate(keyfile, c)),
        _ => Err("usage: encryptor-bench gpgme HOME N | rpgp KEYFILE N".into()),
    };
    match rate {
        Ok(r) => {
            println!("{r:.0}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("encryptor-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

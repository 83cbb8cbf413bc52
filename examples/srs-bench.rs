//! postern's SRS codec in process, for bench/srs-bench.sh (build with
//! `cargo build --release --features bench --example srs-bench`):
//!
//!   srs-bench [N]   forward N distinct senders into SRS0 and reverse each
//!                   result (secret checked, stamp checked), three runs;
//!                   prints the median in forward+reverse pairs per second.
//!
//! The same work srslib does per pair in bench/srs-peers.py: one HMAC to
//! sign, one to verify, one SRS0 address built and one parsed.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use postern::config::SrsConfig;
use postern::mail::address::Address;
use postern::rewriter::srs::{Srs, SrsSecrets};

const DEFAULT_N: usize = 200_000;
const RUNS: usize = 3;

fn main() -> ExitCode {
    let n = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => DEFAULT_N,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: srs-bench [N]");
            return ExitCode::from(64);
        }
    };
    let Some(secrets) = SrsSecrets::new(["benchmark secret, not a secret"]) else {
        eprintln!("srs-bench: no secret");
        return ExitCode::from(70);
    };
    let srs = match Srs::new(&SrsConfig::default(), "fwd.example.net", secrets) {
        Ok(srs) => srs,
        Err(e) => {
            eprintln!("srs-bench: {e}");
            return ExitCode::from(78);
        }
    };
    let senders: Vec<Address> = (0..n)
        .filter_map(|i| Address::parse(&format!("user{i}.name@mail{}.example.org", i % 97)).ok())
        .collect();
    let now = SystemTime::now();
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        for sender in &senders {
            let back = srs
                .forward(sender, now)
                .and_then(|srs0| srs.reverse(&srs0, now));
            match back {
                Ok(Some(back)) if back.as_str().len() == sender.as_str().len() => {}
                other => {
                    eprintln!("srs-bench: round trip failed: {other:?}");
                    return ExitCode::from(70);
                }
            }
        }
        let took = start.elapsed().max(Duration::from_nanos(1));
        rates.push(senders.len() as f64 / took.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!("{:.0}", rates[RUNS / 2]);
    ExitCode::SUCCESS
}

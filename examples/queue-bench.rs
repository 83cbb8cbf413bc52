//! The spool and the bouncer in numbers, for bench/queue-bench.sh (build
//! with `cargo build --release --features bench --example queue-bench`):
//!
//!   queue-bench fill SPOOL KEYFILE N SIZE due|later
//!       seals N one-recipient jobs of SIZE message bytes into SPOOL's
//!       deferred/, due now or in a day (the set-up of a queue run);
//!   queue-bench dsn N SIZE
//!       builds N failure notices (DSNs) for a SIZE-byte original in
//!       process, three runs; prints the median time per notice in µs.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use postern::bouncer::{Bouncer, Outcome};
use postern::config::Config;
use postern::log::Log;
use postern::mail::address::{Address, Sender};
use postern::mail::job::{Envelope, Job, QueueId, RcptStatus, Recipient};
use postern::mail::status;
use postern::store::seal::SealKey;
use postern::store::spool::{Queue, Spool};

fn job(i: usize, size: usize, now: SystemTime) -> Job {
    let mut env = Envelope::new(
        QueueId::parse(&format!("{:016X}", 0xB0B0_0000_0000u64 + i as u64)).expect("queue id"),
        now,
        Sender::parse("alice@example.org").expect("sender"),
    );
    env.recipients.push(Recipient::new(
        Address::parse("bob@example.net").expect("rcpt"),
    ));
    let head = format!(
        "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: bench {i}\r\n\
         Message-ID: <bench-{i}@example.org>\r\n\r\n"
    );
    let mut message = head.into_bytes();
    while message.len() < size {
        message
            .extend_from_slice(b"0123456789 the quick brown fox jumps over the lazy dog 0123\r\n");
    }
    message.truncate(size.max(message.len().min(size)));
    Job {
        envelope: env,
        message,
    }
}

fn fill(spool: &Path, key: &Path, n: usize, size: usize, due: bool) -> Result<(), String> {
    let key = SealKey::load(key).map_err(|e| e.to_string())?;
    let spool = Spool::open(spool, key).map_err(|e| e.to_string())?;
    let now = SystemTime::now();
    let when = if due {
        now - Duration::from_secs(1)
    } else {
        now + Duration::from_secs(86400)
    };
    for i in 0..n {
        let j = job(i, size, now);
        let name = format!("{}-{i:08x}", j.envelope.queue_id);
        spool
            .keep(Queue::Deferred, &name, &j, when)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn dsn(n: usize, size: usize) -> Result<(), String> {
    let config = Config::default();
    let log = Log::open("queue-bench", &config);
    let bouncer = Bouncer::open(&config, &log).map_err(|f| f.to_string())?;
    let now = SystemTime::now();
    let mut j = job(0, size, now);
    j.envelope.recipients[0].settle(
        RcptStatus::Failed {
            code: status::NO_SUCH_MAILBOX,
        },
        Some("smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown"),
    );
    let id = QueueId::parse("DSN0000000000000").expect("queue id");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            match bouncer.notify(&j, now, id.clone()) {
                Outcome::Notice(notice) => bytes += notice.message.len(),
                Outcome::Silent(s) => return Err(format!("no notice: {s:?}")),
            }
        }
        std::hint::black_box(bytes);
        runs.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    runs.sort_by(f64::total_cmp);
    println!("{:.1}", runs[1]);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("{s:?} is not a number"))
    };
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fill", spool, key, n, size, due @ ("due" | "later")] => num(n).and_then(|n| {
            num(size)
                .and_then(|size| fill(Path::new(spool), Path::new(key), n, size, *due == "due"))
        }),
        ["dsn", n, size] => num(n).and_then(|n| num(size).and_then(|size| dsn(n, size))),
        _ => Err("usage: queue-bench fill SPOOL KEY N SIZE due|later | dsn N SIZE".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("queue-bench: {e}");
            ExitCode::from(1)
        }
    }
}

//! Measurements for bench/maildb.sh (build with --release):
//!
//!   maildb-bench merge N SIZE DIR     seal N messages of SIZE bytes into the
//!       drop area of a new mailbox, then time the merge (one transaction);
//!       the same into an unencrypted twin (same schema, pragmas and code).
//!       Prints `merge <encrypted|plain> N SECONDS`.
//!   maildb-bench prepare N SIZE DIR  the preparation alone, plus an empty
//!       mailbox and the messages for bench/maildb-node.js (see [`prepare`]).
//!   maildb-bench merge-prepared KIND DIR  times the merge of a prepared
//!       `encrypted` or `plain` mailbox; prints `merge KIND N SECONDS`.
//!   maildb-bench search N QUERIES DIR  fill a new encrypted mailbox with N
//!       messages (about 1.5 KB of words each), then time QUERIES searches.
//!       Prints one `search MILLISECONDS HITS QUERY` line per search.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use postern::mailbox::{self, Mailbox, bench, drop_area};

const PASSPHRASE: &str = "benchmark passphrase, not a secret";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Deterministic words: xorshift64.
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A word from a vocabulary of `vocab`, the small ranks much more often
    /// (roughly Zipf: the rank is a product of two uniform draws).
    fn word(&mut self, vocab: u64) -> String {
        let rank = (self.next() % vocab) * (self.next() % vocab) / vocab;
        word_of(rank)
    }
}

fn word_of(rank: u64) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "nu", "pe", "ra", "so", "ti", "ve", "za", "do", "fu", "gi", "ho", "ju",
        "be",
    ];
    let mut n = rank + 16;
    let mut w = String::new();
    while n > 0 {
        w.push_str(SYLLABLES[(n % 16) as usize]);
        n /= 16;
    }
    w
}

fn message(words: &mut Words, i: usize, size: usize, vocab: u64) -> Vec<u8> {
    let mut text = format!(
        "From: {} <{}@example.org>\nTo: bob@example.net\nSubject: {} {} {}\n\
         Message-ID: <{i}@bench.example>\nDate: Mon, 23 Nov 2026 12:00:00 +0000\n\n",
        words.word(200),
        words.word(200),
        words.word(vocab),
        words.word(vocab),
        words.word(vocab)
    );
    while text.len() < size {
        text.push_str(&words.word(vocab));
        text.push(if words.next().is_multiple_of(12) {
            '\n'
        } else {
            ' '
        });
    }
    text.truncate(size);
    text.push('\n');
    text.into_bytes()
}

/// Makes, in DIR: `encrypted.sqlite` and `plain.sqlite`, each with N
/// sealed messages waiting in its drop area; `node.sqlite`, an empty
/// encrypted mailbox for bench/maildb-node.js to fill; `messages.bin`, the
/// same N messages (each a 4-byte little-endian length, then the bytes);
/// `pass`, the passphrase.
fn prepare(n: usize, size: usize, dir: &Path) -> Result<(), String> {
    let now = SystemTime::now();
    let mut all = Vec::with_capacity(n * (size + 8));
    let mut words = Words(0x9e37_79b9_7f4a_7c15);
    for i in 0..n {
        let m = message(&mut words, i, size, 20_000);
        all.extend_from_slice(&(m.len() as u32).to_le_bytes());
        all.extend_from_slice(&m);
    }
    std::fs::write(dir.join("messages.bin"), &all).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("pass"), PASSPHRASE).map_err(|e| e.to_string())?;
    for kind in ["encrypted", "plain", "node"] {
        let path = dir.join(format!("{kind}.sqlite"));
        let mb = match kind {
            "plain" => bench::create_unencrypted(&path, TIMEOUT, now),
            _ => Mailbox::create(&path, PASSPHRASE, TIMEOUT, now),
        }
        .map_err(|e| e.to_string())?;
        if mailbox::starts_plaintext(&path).map_err(|e| e.to_string())? != (kind == "plain") {
            return Err(format!("{kind}: the file is not what it should be"));
        }
        if kind != "node" {
            let mut words = Words(0x9e37_79b9_7f4a_7c15);
            let msgs = (0..n).map(|i| message(&mut words, i, size, 20_000));
            bench::drop_sealed(&mb, msgs, now).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Times the merge of what [`prepare`] left in `DIR/KIND.sqlite`.
fn merge_prepared(kind: &str, dir: &Path) -> Result<(), String> {
    let path = dir.join(format!("{kind}.sqlite"));
    let mut mb = match kind {
        "encrypted" => Mailbox::open_for_check(&path, PASSPHRASE, TIMEOUT),
        "plain" => bench::open_unencrypted(&path, TIMEOUT),
        _ => return Err(format!("no kind {kind}")),
    }
    .map_err(|e| e.to_string())?;
    let n = drop_area::waiting(&path).map_err(|e| e.to_string())?;
    if let Ok(sql) = std::env::var("MAILDB_BENCH_SQL") {
        bench::execute_batch(&mb, &sql).map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let report = drop_area::merge(&mut mb).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if report.merged != n || n == 0 {
        return Err(format!("{kind}: merged {} of {n}", report.merged));
    }
    println!("merge {kind} {n} {:.3}", took.as_secs_f64());
    Ok(())
}

fn merge(n: usize, size: usize, dir: &Path) -> Result<(), String> {
    prepare(n, size, dir)?;
    merge_prepared("encrypted", dir)?;
    merge_prepared("plain", dir)
}

fn search(n: usize, queries: usize, dir: &Path) -> Result<(), String> {
    let now = SystemTime::now();
    let path = dir.join("search.sqlite");
    let vocab = 50_000;
    {
        let mut mb = Mailbox::create(&path, PASSPHRASE, TIMEOUT, now).map_err(|e| e.to_string())?;
        let mut words = Words(0x2545_f491_4f6c_dd1d);
        let mut i = 0;
        while i < n {
            let batch = (n - i).min(10_000);
            let msgs = (i..i + batch).map(|k| message(&mut words, k, 1500, vocab));
            bench::insert_all(&mut mb, msgs, now).map_err(|e| e.to_string())?;
            i += batch;
        }
        mb.checkpoint().map_err(|e| e.to_string())?;
    }
    let mb = Mailbox::open(&path, PASSPHRASE, TIMEOUT, now).map_err(|e| e.to_string())?;
    let mut words = Words(0x1234_5678_9abc_def1);
    for q in 0..queries {
        // Mixed: one word, two words, a sender, a prefix.
        let query = match q % 4 {
            0 => words.word(vocab),
            1 => format!("{} {}", words.word(2000), words.word(2000)),
            2 => format!("from:{} {}", words.word(200), words.word(vocab)),
            _ => format!("{}*", &words.word(vocab)[..4]),
        };
        let started = Instant::now();
        let hits = mailbox::search(&mb, &query, None, None).map_err(|e| e.to_string())?;
        let took = started.elapsed();
        println!(
            "search {:.3} {} {query}",
            took.as_secs_f64() * 1000.0,
            hits.len()
        );
        // The same, the 50 best only (search --limit 50).
        let started = Instant::now();
        let best = mailbox::search(&mb, &query, None, Some(50)).map_err(|e| e.to_string())?;
        let took = started.elapsed();
        println!(
            "limit50 {:.3} {} {query}",
            took.as_secs_f64() * 1000.0,
            best.len()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    let result = match (args.get(1).map(String::as_str), num(2), num(3), args.get(4)) {
        (Some("merge"), Some(n), Some(size), Some(dir)) => merge(n, size, Path::new(dir)),
        (Some("prepare"), Some(n), Some(size), Some(dir)) => prepare(n, size, Path::new(dir)),
        (Some("merge-prepared"), _, _, _) if args.len() == 4 => {
            merge_prepared(&args[2], Path::new(&args[3]))
        }
        (Some("search"), Some(n), Some(q), Some(dir)) => search(n, q, Path::new(dir)),
        _ => Err(
            "usage: maildb-bench merge N SIZE DIR | prepare N SIZE DIR | \
                  merge-prepared encrypted|plain DIR | search N QUERIES DIR"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("maildb-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

//! postern-rewriter against a large alias store, for bench/rewriter-bench.sh
//! (build with `cargo build --release --features bench --example rewriter-bench`):
//!
//!   rewriter-bench DIR [DOMAINS ALIASES_PER_DOMAIN LOOKUPS JOBS STREAM_JOBS]
//!
//! Makes in DIR (empty or new) an alias store of DOMAINS verified domains
//! (100) with ALIASES_PER_DOMAIN exact aliases each (10,000: 1,000,000 in
//! all, every other one with two address targets, the rest with one, all
//! off our domains), an SRS secrets file and DIR/postern.toml. Then:
//!   (a) alias lookup latency: LOOKUPS (200,000) calls of
//!       `Aliases::resolve`, one in ten for an unknown alias, each timed;
//!   (b) the stage in process: `Rewriter::rewrite` over JOBS (50,000)
//!       jobs, each from an outside sender to one random alias (so the
//!       sender is SRS-rewritten), three runs, the median; then the same
//!       with the rate-limit counters off (`inprocess_uncounted`), to
//!       show their share;
//!   (c) DIR/jobs: STREAM_JOBS (100,000) such jobs as a job stream, for
//!       timing the binary: postern-rewriter -c DIR/postern.toml < DIR/jobs.
//! Prints `name value unit` lines on stdout, progress on stderr.
//!
//! Rate limits are off in the config (0 = no limit) so that repeated runs
//! never hit them, but the rewriter still counts every message in the
//! store (one upsert per domain and per sender), as it does in service.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use postern::alias::lookup::Resolution;
use postern::alias::store::{AliasStore, DomainMode, NewAlias};
use postern::alias::{Action, Pattern, admin};
use postern::config::Config;
use postern::log::Log;
use postern::mail::address::{Address, Sender};
use postern::mail::job::{Envelope, Job, QueueId, Recipient};
use postern::rewriter::Rewriter;

const RUNS: usize = 3;
/// One in this many lookups is for an alias that does not exist.
const UNKNOWN_EVERY: usize = 10;

struct Sizes {
    domains: usize,
    per_domain: usize,
    lookups: usize,
    jobs: usize,
    stream_jobs: usize,
}

/// xorshift64*: a fixed seed, so every run asks for the same aliases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn domain(d: usize) -> String {
    format!("d{d}.bench.example")
}

fn alias(d: usize, a: usize) -> String {
    format!("alias{a}@{}", domain(d))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Option<Vec<usize>> = args.iter().skip(1).map(|a| a.parse().ok()).collect();
    let (dir, sizes) = match (args.first(), numbers.as_deref()) {
        (Some(dir), Some([])) => (
            PathBuf::from(dir),
            Sizes {
                domains: 100,
                per_domain: 10_000,
                lookups: 200_000,
                jobs: 50_000,
                stream_jobs: 100_000,
            },
        ),
        (Some(dir), Some(&[domains, per_domain, lookups, jobs, stream_jobs]))
            if domains > 0 && per_domain > 0 && lookups > 0 && jobs > 0 =>
        {
            (
                PathBuf::from(dir),
                Sizes {
                    domains,
                    per_domain,
                    lookups,
                    jobs,
                    stream_jobs,
                },
            )
        }
        _ => {
            eprintln!(
                "usage: rewriter-bench DIR [DOMAINS ALIASES_PER_DOMAIN LOOKUPS JOBS STREAM_JOBS]"
            );
            return ExitCode::from(64);
        }
    };
    match run(&dir, &sizes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rewriter-bench: {e}");
            ExitCode::from(70)
        }
    }
}

fn run(dir: &Path, sizes: &Sizes) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config_path = write_config(dir)?;
    let config = Config::from_file(&config_path).map_err(|e| e.to_string())?;
    let now = SystemTime::now();

    let total = sizes.domains * sizes.per_domain;
    eprintln!(
        "rewriter-bench: {total} aliases in {} domains",
        sizes.domains
    );
    let start = Instant::now();
    fill_store(&config.aliases.store, sizes, now)?;
    let setup = start.elapsed();
    let db_bytes = fs::metadata(&config.aliases.store).map_or(0, |m| m.len());
    println!("aliases {total} aliases");
    println!("store_setup {:.1} s", setup.as_secs_f64());
    println!("store_size {:.0} MB", db_bytes as f64 / 1e6);

    let log = Log::discard("bench");
    let mut rewriter = Rewriter::open(&config, &log).map_err(|e| e.to_string())?;

    // (a) lookups, each timed alone.
    let mut rng = Rng(0x5EED_0F_A11A5);
    let mut known = Vec::with_capacity(sizes.lookups);
    let mut unknown = Vec::with_capacity(sizes.lookups / UNKNOWN_EVERY + 1);
    for i in 0..sizes.lookups {
        let d = rng.below(sizes.domains);
        let a = rng.below(sizes.per_domain);
        // Unknown: a local part no alias has, in a domain of ours (5.1.1).
        let (text, unknown_one) = if i % UNKNOWN_EVERY == 0 {
            (format!("nobody{a}@{}", domain(d)), true)
        } else {
            (alias(d, a), false)
        };
        let address = Address::parse(&text).map_err(|e| format!("{text}: {e}"))?;
        let t = Instant::now();
        let resolution = rewriter.aliases().resolve(&address);
        let took = t.elapsed();
        match (resolution, unknown_one) {
            (Ok(Resolution::Forward { .. }), false) => known.push(took),
            (Ok(Resolution::Fail { .. }), true) => unknown.push(took),
            (other, _) => return Err(format!("{text}: unexpected resolution {other:?}")),
        }
    }
    for (name, mut times) in [("lookup", known), ("lookup_unknown", unknown)] {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!("{name}_count {} lookups", times.len());
        println!("{name}_p50 {:.1} us", us(at(0.50)));
        println!("{name}_p99 {:.1} us", us(at(0.99)));
        println!("{name}_max {:.1} us", us(at(1.0)));
    }

    // (b) the stage in process: recipients resolved (sender SRS-rewritten)
    // per second. Jobs are made before the clock starts. Then the same
    // without the rate-limit counters, to show what counting costs.
    let mut serial = 0;
    for (name, counting) in [
        ("inprocess_recipients", true),
        ("inprocess_uncounted", false),
    ] {
        rewriter.counting = counting;
        let mut rates = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let jobs: Vec<Job> = (0..sizes.jobs)
                .map(|i| make_job(&mut rng, sizes, serial + i, now))
                .collect::<Result<_, _>>()?;
            serial += sizes.jobs;
            let start = Instant::now();
            for job in jobs {
                let out = rewriter.rewrite(job, now).map_err(|e| e.to_string())?;
                check_forwarded(&out.jobs)?;
            }
            let took = start.elapsed().max(Duration::from_nanos(1));
            rates.push(sizes.jobs as f64 / took.as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!("{name} {:.0} recipients/s", rates[RUNS / 2]);
    }

    // (c) a job stream for the binary.
    let jobs_path = dir.join("jobs");
    let file = File::create(&jobs_path).map_err(|e| format!("{}: {e}", jobs_path.display()))?;
    let mut out = BufWriter::new(file);
    for i in 0..sizes.stream_jobs {
        make_job(&mut rng, sizes, serial + i, now)?
            .write_to(&mut out)
            .map_err(|e| format!("{}: {e}", jobs_path.display()))?;
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", jobs_path.display()))?;
    println!("stream_jobs {} jobs", sizes.stream_jobs);
    println!("jobs_file {} path", jobs_path.display());
    println!("config_file {} path", config_path.display());
    Ok(())
}

/// DIR/postern.toml and DIR/srs.secrets (0600).
fn write_config(dir: &Path) -> Result<PathBuf, String> {
    let secrets = dir.join("srs.secrets");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&secrets)
        .map_err(|e| format!("{}: {e}", secrets.display()))?;
    f.write_all(b"benchmark secret, not a secret\n")
        .map_err(|e| format!("{}: {e}", secrets.display()))?;
    let path = dir.join("postern.toml");
    let text = format!(
        "hostname = \"bench.postern.test\"\n\
         log = \"none\"\n\
         [aliases]\n\
         store = \"{}\"\n\
         [srs]\n\
         domain = \"srs.bench.example\"\n\
         secrets_file = \"{}\"\n\
         [rewriter]\n\
         messages_per_day_per_domain = 0\n\
         messages_per_day_per_sender = 0\n",
        dir.join("aliases.db").display(),
        secrets.display()
    );
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The domains, verified, and every alias, in one transaction.
fn fill_store(path: &Path, sizes: &Sizes, now: SystemTime) -> Result<(), String> {
    if path.exists() {
        return Err(format!(
            "{} exists; give an empty directory",
            path.display()
        ));
    }
    let mut store = AliasStore::open_or_create(path).map_err(|e| e.to_string())?;
    for d in 0..sizes.domains {
        admin::add_domain(&mut store, &domain(d), DomainMode::Store, true, now)
            .map_err(|e| e.to_string())?;
    }
    store
        .write(|tx| {
            for d in 0..sizes.domains {
                for a in 0..sizes.per_domain {
                    let mut targets = vec![format!("user{a}@t{}.example.net", d % 50)];
                    if a % 2 == 0 {
                        targets.push(format!("other{a}.d{d}@mail{}.example.com", a % 20));
                    }
                    let new = NewAlias {
                        domain: domain(d),
                        pattern: Pattern::Exact(format!("alias{a}")),
                        action: Action::Forward,
                        targets,
                        description: String::new(),
                    };
                    AliasStore::put_alias(tx, &new, now)?;
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
}

/// Job `i`: from an outside sender, to one random alias, a small message.
fn make_job(rng: &mut Rng, sizes: &Sizes, i: usize, now: SystemTime) -> Result<Job, String> {
    let sender_text = format!("sender{i}@mail{}.example.org", i % 97);
    let sender = Sender::parse(&sender_text).map_err(|e| format!("{sender_text}: {e}"))?;
    let rcpt_text = alias(rng.below(sizes.domains), rng.below(sizes.per_domain));
    let rcpt = Address::parse(&rcpt_text).map_err(|e| format!("{rcpt_text}: {e}"))?;
    let mut envelope = Envelope::new(QueueId::from_random((i as u64).to_be_bytes()), now, sender);
    envelope.recipients.push(Recipient::new(rcpt));
    let message = format!(
        "From: <{sender_text}>\r\nTo: <{rcpt_text}>\r\nSubject: bench {i}\r\n\
         Message-ID: <{i}@mail.example.org>\r\nDate: Sun, 23 Nov 2025 10:00:00 +0000\r\n\r\n\
         A short message to an alias.\r\n"
    );
    Ok(Job {
        envelope,
        message: message.into_bytes(),
    })
}

/// Every job must be forwarded with an SRS sender.
fn check_forwarded(jobs: &[Job]) -> Result<(), String> {
    match jobs {
        [job]
            if job
                .envelope
                .sender
                .address()
                .is_some_and(|a| a.as_str().starts_with("SRS0=")) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "expected one forwarded job with an SRS0 sender, got {:?}",
            jobs.iter()
                .map(|j| j.envelope.sender.to_string())
                .collect::<Vec<_>>()
        )),
    }
}

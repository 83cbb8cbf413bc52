//! postern-encryptor(1): jobs in, jobs out — mail to recipients with an
//! OpenPGP key encrypted to it as PGP/MIME, one job per distinct key set.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use postern::config::{Config, EncryptPolicy};
use postern::deliverer::job_size_limit;
use postern::encryptor::{Encryptor, Outcome};
use postern::exit::Failure;
use postern::log::Log;
use postern::mail::job::JobReader;
use postern::stage::{Stage, run_stream};
use postern_cli as common;

const TOOL: &str = "postern-encryptor";

/// Encrypt mail to recipients' OpenPGP keys (PGP/MIME) in a postern job stream.
#[derive(Parser)]
#[command(name = TOOL, version)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read the jobs and say what would happen to each recipient; write no jobs
    #[arg(long)]
    dry_run: bool,
    /// Read a bare message (not a job) with this envelope sender
    #[arg(short = 'f', value_name = "SENDER", allow_hyphen_values = true)]
    sender: Option<String>,
    /// Envelope recipients of a bare message, after "--"
    #[arg(value_name = "RCPT", last = true, requires = "sender")]
    recipients: Vec<String>,
}

fn main() -> ExitCode {
    common::main(TOOL, |cli: &Cli| cli.config.clone(), run)
}

fn run(cli: Cli, config: &Config, log: &Log) -> Result<(), Failure> {
    let mut encryptor = Encryptor::open(config, log)?;
    let now = SystemTime::now;
    let mut jobs = Vec::new();
    match cli.sender {
        Some(sender) => jobs.push(common::bare_message(
            config,
            TOOL,
            sender,
            cli.recipients,
            now(),
        )?),
        None if cli.dry_run => {
            let mut reader = JobReader::new(io::stdin().lock(), job_size_limit(config));
            while let Some(job) = reader.next_job()? {
                jobs.push(job);
            }
        }
        None => {
            return run_stream(
                &mut encryptor,
                io::stdin().lock(),
                io::stdout().lock(),
                job_size_limit(config),
                now,
            );
        }
    }
    let mut out = io::stdout().lock();
    for job in jobs {
        let qid = job.envelope.queue_id.clone();
        if cli.dry_run {
            let line = match encryptor.encrypt(job, now()) {
                Ok(_) => encryptor
                    .decisions
                    .iter()
                    .map(|d| format!("{qid}: <{}> {}\n", d.recipient, describe(&d.outcome)))
                    .collect::<String>(),
                Err(f) => format!("{qid}: the whole job: {f}\n"),
            };
            out.write_all(line.as_bytes()).map_err(write_failure)?;
        } else {
            for j in encryptor.process(job, now())? {
                j.write_to(&mut out).map_err(write_failure)?;
            }
        }
    }
    out.flush().map_err(write_failure)
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Passed => "passed as it came".into(),
        Outcome::Plain {
            policy: EncryptPolicy::IfKey,
        } => "not encrypted (policy if-key, no key found)".into(),
        Outcome::Plain { policy } => format!("not encrypted (policy {})", policy.as_str()),
        Outcome::Encrypted {
            source,
            fingerprints,
        } => format!(
            "encrypted to {} (from the {source})",
            fingerprints.join(", ")
        ),
        Outcome::Refused { reason } => format!("refused: 5.7.1 {reason}"),
    }
}

fn write_failure(e: io::Error) -> Failure {
    Failure::tempfail(format!("cannot write to standard output: {e}"))
}

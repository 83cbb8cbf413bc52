//! postern-encryptor(1): jobs in, jobs out — mail to recipients with an
//! OpenPGP key encrypted to it as PGP/MIME, one job per distinct key set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use postern::config::{Config, EncryptPolicy};
use postern::encryptor::{Encryptor, Outcome};
use postern::exit::Failure;
use postern::log::Log;
use postern::mail::job::Job;
use postern::receiver::Arrival;
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
    let bare = cli.sender.map(|sender| Arrival {
        sender,
        recipients: cli.recipients,
        ..Arrival::default()
    });
    let mut explain = |encryptor: &mut Encryptor<'_>, job: Job, now| {
        let qid = job.envelope.queue_id.clone();
        match encryptor.encrypt(job, now) {
            Ok(_) => encryptor
                .decisions
                .iter()
                .map(|d| format!("{qid}: <{}> {}\n", d.recipient, describe(&d.outcome)))
                .collect::<String>(),
            Err(f) => format!("{qid}: the whole job: {f}\n"),
        }
    };
    let explain: Option<common::Explain<'_, Encryptor<'_>>> = cli.dry_run.then_some(&mut explain);
    common::run_stage(config, TOOL, &mut encryptor, bare, explain)
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

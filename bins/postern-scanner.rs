//! postern-scanner(1): jobs in, jobs out -- viruses, executable
//! attachments, phishing and adult content, and the sending server's
//! SPF, DMARC and DNS blocklist standing, refused or tagged.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use postern::config::Config;
use postern::exit::Failure;
use postern::log::Log;
use postern::mail::job::Job;
use postern::receiver::Arrival;
use postern::scanner::{Scanner, Verdict};
use postern_cli as common;

const TOOL: &str = "postern-scanner";

/// Scan mail in a postern job stream: viruses, executables, phishing, adult content, sender checks.
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
    /// The SMTP client's IP address, for a bare message
    #[arg(long, value_name = "IP", requires = "sender")]
    client_address: Option<String>,
    /// The SMTP client's verified host name, for a bare message
    #[arg(long, value_name = "NAME", requires = "sender")]
    client_hostname: Option<String>,
    /// The name the SMTP client gave in HELO, for a bare message
    #[arg(long, value_name = "NAME", requires = "sender")]
    helo: Option<String>,
    /// Envelope recipients of a bare message, after "--"
    #[arg(value_name = "RCPT", last = true, requires = "sender")]
    recipients: Vec<String>,
}

fn main() -> ExitCode {
    common::main(TOOL, |cli: &Cli| cli.config.clone(), run)
}

fn run(cli: Cli, config: &Config, log: &Log) -> Result<(), Failure> {
    let mut scanner = Scanner::open(config, log)?;
    let bare = cli.sender.map(|sender| Arrival {
        sender,
        recipients: cli.recipients,
        client_address: cli.client_address,
        client_hostname: cli.client_hostname,
        client_helo: cli.helo,
        ..Arrival::default()
    });
    let mut explain = |scanner: &mut Scanner<'_>, job: Job, now| {
        let qid = job.envelope.queue_id.clone();
        match scanner.scan(job, now) {
            Ok(_) => {
                let mut text = String::new();
                if let Some(auth) = &scanner.auth_summary {
                    text.push_str(&format!("{qid}: sender checks: {auth}\n"));
                }
                for d in &scanner.decisions {
                    text.push_str(&format!(
                        "{qid}: <{}> {}\n",
                        d.recipient,
                        describe(&d.verdict)
                    ));
                }
                text
            }
            Err(f) => format!("{qid}: the whole job: {f}\n"),
        }
    };
    let explain: Option<common::Explain<'_, Scanner<'_>>> = cli.dry_run.then_some(&mut explain);
    common::run_stage(config, TOOL, &mut scanner, bare, explain)
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Settled => "settled before: passed as it was".into(),
        Verdict::Passed { tags } if tags.is_empty() => "passed".into(),
        Verdict::Passed { tags } => format!(
            "passed, tagged: {}",
            tags.iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Verdict::Refused { status, reason } => format!("refused: {status} {reason}"),
    }
}

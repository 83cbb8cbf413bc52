//! postern-rewriter(1): jobs in, jobs out — aliases resolved, the sender
//! rewritten with SRS for forwarded mail, bounces to SRS addresses
//! reversed; `explain` says where mail for an address goes.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use postern::config::Config;
use postern::deliverer::job_size_limit;
use postern::exit::Failure;
use postern::log::Log;
use postern::mail::job::JobReader;
use postern::rewriter::{self, Rewriter, explain};
use postern::stage::{Stage, run_stream};
use postern_cli as common;

const TOOL: &str = "postern-rewriter";

/// Resolve aliases and rewrite senders (SRS) in a postern job stream.
#[derive(Parser)]
#[command(name = TOOL, version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Read the jobs and say what would happen to each recipient; write no jobs, count nothing
    #[arg(long)]
    dry_run: bool,
    /// Read a bare message (not a job) with this envelope sender
    #[arg(short = 'f', value_name = "SENDER", allow_hyphen_values = true)]
    sender: Option<String>,
    /// Envelope recipients of a bare message, after "--"
    #[arg(value_name = "RCPT", last = true, requires = "sender")]
    recipients: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Say where mail for each ADDRESS goes, and why
    Explain {
        /// One JSON object per address, one per line
        #[arg(long)]
        json: bool,
        /// The addresses to explain
        #[arg(value_name = "ADDRESS", required = true)]
        addresses: Vec<String>,
    },
}

fn main() -> ExitCode {
    common::main(TOOL, |cli: &Cli| cli.config.clone(), run)
}

fn run(cli: Cli, config: &Config, log: &Log) -> Result<(), Failure> {
    let mut rewriter = Rewriter::open(config, log)?;
    if let Some(Command::Explain { json, addresses }) = cli.command {
        return explain_all(&mut rewriter, &addresses, json);
    }
    let now = SystemTime::now;
    if cli.dry_run {
        rewriter.counting = false;
        let mut out = io::stdout().lock();
        let mut jobs = Vec::new();
        match cli.sender {
            Some(sender) => jobs.push(common::bare_message(
                config,
                TOOL,
                sender,
                cli.recipients,
                now(),
            )?),
            None => {
                let mut reader = JobReader::new(io::stdin().lock(), job_size_limit(config));
                while let Some(job) = reader.next_job()? {
                    jobs.push(job);
                }
            }
        }
        for job in jobs {
            let qid = job.envelope.queue_id.clone();
            let line = match rewriter.rewrite(job, now()) {
                Ok(r) => r
                    .decisions
                    .iter()
                    .map(|d| {
                        format!(
                            "{qid}: <{}> {}\n",
                            d.recipient,
                            rewriter::describe(&d.outcome)
                        )
                    })
                    .collect::<String>(),
                Err(f) => format!("{qid}: the whole job: {f}\n"),
            };
            out.write_all(line.as_bytes()).map_err(write_failure)?;
        }
        return out.flush().map_err(write_failure);
    }
    match cli.sender {
        Some(sender) => {
            let job = common::bare_message(config, TOOL, sender, cli.recipients, now())?;
            let mut out = io::stdout().lock();
            for j in rewriter.process(job, now())? {
                j.write_to(&mut out).map_err(write_failure)?;
            }
            out.flush().map_err(write_failure)
        }
        None => run_stream(
            &mut rewriter,
            io::stdin().lock(),
            io::stdout().lock(),
            job_size_limit(config),
            now,
        ),
    }
}

fn explain_all(
    rewriter: &mut Rewriter<'_>,
    addresses: &[String],
    json: bool,
) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let mut worst = None;
    for a in addresses {
        let e = explain::explain(rewriter, a, SystemTime::now())?;
        let text = if json {
            e.to_json() + "\n"
        } else {
            e.to_text() + "\n"
        };
        out.write_all(text.as_bytes()).map_err(write_failure)?;
        if e.unusable {
            worst = Some(Failure::new(
                postern::exit::Sysexit::DataErr,
                postern::mail::status::BAD_ARGUMENTS,
                "an address given is not an address",
            ));
        }
    }
    out.flush().map_err(write_failure)?;
    worst.map_or(Ok(()), Err)
}

fn write_failure(e: io::Error) -> Failure {
    Failure::tempfail(format!("cannot write to standard output: {e}"))
}

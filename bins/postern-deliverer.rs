//! postern-deliverer(8): jobs in, SMTP to the relay out; what must wait
//! goes into the spool, sealed and fsync'ed, before the exit status says so.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use postern::config::Config;
use postern::deliverer::{Deliverer, job_size_limit};
use postern::exit::{Failure, ToFailure};
use postern::log::Log;
use postern::mail::job::{Job, JobReader};
use postern::receiver::{self, Arrival};

use postern_cli as common;

const TOOL: &str = "postern-deliverer";

/// Deliver postern jobs over SMTP to the relay, spooling what must wait.
#[derive(Parser)]
#[command(name = TOOL, version)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Retry the due jobs in the spool once, then exit
    #[arg(long, conflicts_with_all = ["sender", "recipients"])]
    run_queue: bool,
    /// With --run-queue: retry every deferred job now, due or not
    #[arg(long, requires = "run_queue")]
    flush: bool,
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
    let deliverer = Deliverer::new(config, log);
    let now = SystemTime::now();
    if cli.run_queue {
        let tried = deliverer.run_queue(now, cli.flush)?;
        log.info(format_args!("queue run: {tried} job(s) tried"));
        return Ok(());
    }
    // Read every job before sending anything: a stream cut short is
    // refused whole, never half-delivered.
    let jobs = match cli.sender {
        Some(sender) => vec![bare_message(config, sender, cli.recipients, now)?],
        None => read_jobs(config)?,
    };
    for job in jobs {
        deliverer.handle(job, now)?;
    }
    Ok(())
}

fn read_jobs(config: &Config) -> Result<Vec<Job>, Failure> {
    let mut reader = JobReader::new(io::stdin().lock(), job_size_limit(config));
    let mut jobs = Vec::new();
    while let Some(job) = reader.next_job().map_err(|e| e.to_failure())? {
        jobs.push(job);
    }
    Ok(jobs)
}

/// A bare RFC 5322 message, checked as postern-receiver(1) checks it.
fn bare_message(
    config: &Config,
    sender: String,
    recipients: Vec<String>,
    now: SystemTime,
) -> Result<Job, Failure> {
    let msg = common::read_message(config.message_size_limit)?;
    let arrival = Arrival {
        sender,
        recipients,
        ..Arrival::default()
    };
    let accepted = receiver::accept(config, TOOL, &arrival, &msg, now, common::new_queue_id()?)
        .map_err(|e| e.to_failure())?;
    let message = accepted.parts(&msg).concat();
    Ok(Job {
        envelope: accepted.envelope,
        message,
    })
}

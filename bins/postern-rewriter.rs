//! postern-rewriter(1): jobs in, jobs out — aliases resolved, the sender
//! rewritten with SRS for forwarded mail, bounces to SRS addresses
//! reversed; `explain` says where mail for an address goes.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use postern::config::Config;
use postern::exit::Failure;
use postern::log::Log;
use postern::mail::job::Job;
use postern::receiver::Arrival;
use postern::rewriter::{self, Rewriter, explain};
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
    rewriter.counting = !cli.dry_run;
    let bare = cli.sender.map(|sender| Arrival {
        sender,
        recipients: cli.recipients,
        ..Arrival::default()
    });
    let mut explain = |rewriter: &mut Rewriter<'_>, job: Job, now| {
        let qid = job.envelope.queue_id.clone();
        match rewriter.rewrite(job, now) {
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
        }
    };
    let explain: Option<common::Explain<'_, Rewriter<'_>>> = cli.dry_run.then_some(&mut explain);
    common::run_stage(config, TOOL, &mut rewriter, bare, explain)
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
        out.write_all(text.as_bytes())
            .map_err(common::stdout_failure)?;
        if e.unusable {
            worst = Some(Failure::new(
                postern::exit::Sysexit::DataErr,
                postern::mail::status::BAD_ARGUMENTS,
                "an address given is not an address",
            ));
        }
    }
    out.flush().map_err(common::stdout_failure)?;
    worst.map_or(Ok(()), Err)
}

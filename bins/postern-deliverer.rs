//! postern-deliverer(8): jobs in, SMTP to the relay out; what must wait
//! goes into the spool, sealed and fsync'ed, before the exit status says so.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use postern::config::Config;
use postern::deliverer::{Deliverer, daemon, job_size_limit};
use postern::exit::Failure;
use postern::log::Log;
use postern::stage::{Stage, run_stream};
use postern_cli as common;

const TOOL: &str = "postern-deliverer";

/// Deliver postern jobs over SMTP (relay or MX hosts), spooling what must wait.
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
    /// Run the queue until SIGTERM, waking when a job falls due
    #[arg(long, conflicts_with_all = ["run_queue", "sender", "recipients"])]
    daemon: bool,
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
    if cli.daemon {
        return daemon::run(cli.config.as_deref(), config.clone(), log);
    }
    let mut deliverer = Deliverer::open(config, log)?;
    if cli.run_queue {
        let run = deliverer.run_queue(&SystemTime::now, cli.flush)?;
        log.info(format_args!(
            "queue run: {} job(s) tried, {} recovered, {} notice(s), {} corrupt",
            run.tried, run.recovered, run.notices, run.corrupt
        ));
        return Ok(());
    }
    match cli.sender {
        Some(sender) => {
            let now = SystemTime::now();
            let job = common::bare_message(config, TOOL, sender, cli.recipients, now)?;
            deliverer.process(job, now).map(drop)
        }
        None => run_stream(
            &mut deliverer,
            io::stdin().lock(),
            io::sink(),
            job_size_limit(config),
            SystemTime::now,
        ),
    }
}

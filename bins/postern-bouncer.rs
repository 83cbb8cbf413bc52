//! postern-bouncer(8): jobs with failed, delayed or relayed recipients
//! in, delivery status notifications for their senders out, as jobs for
//! postern-deliverer(8); or, with --run-queue, the same for the spool's
//! bounce/ queue.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use postern::bouncer::Bouncer;
use postern::config::Config;
use postern::deliverer::job_size_limit;
use postern::exit::{Failure, ToFailure};
use postern::log::Log;
use postern::stage::run_stream;
use postern::store::seal::SealKey;
use postern::store::spool::Spool;
use postern_cli as common;

const TOOL: &str = "postern-bouncer";

/// Write delivery status notifications (RFC 3464) for failed and delayed recipients.
#[derive(Parser)]
#[command(name = TOOL, version)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Turn every entry of the spool's bounce/ queue into a notification in deferred/, then exit
    #[arg(long)]
    run_queue: bool,
}

fn main() -> ExitCode {
    common::main(TOOL, |cli: &Cli| cli.config.clone(), run)
}

fn run(cli: Cli, config: &Config, log: &Log) -> Result<(), Failure> {
    let mut bouncer = Bouncer::open(config, log)?;
    if !cli.run_queue {
        return run_stream(
            &mut bouncer,
            io::stdin().lock(),
            io::stdout().lock(),
            job_size_limit(config),
            SystemTime::now,
        );
    }
    let logged = |f: Failure| {
        log.error(format_args!("{f}"));
        f
    };
    let key = SealKey::load(&config.spool.key_file).map_err(|e| logged(e.to_failure()))?;
    let spool = Spool::open(&config.spool.directory, key).map_err(|e| logged(e.to_failure()))?;
    let Some(_lock) = spool.lock_runner().map_err(|e| logged(e.to_failure()))? else {
        log.info(format_args!(
            "another queue runner is active; nothing to do"
        ));
        return Ok(());
    };
    let report = bouncer.drain(&spool, SystemTime::now())?;
    log.info(format_args!(
        "bounce run: {} notification(s) queued, {} entries needed none, {} corrupt",
        report.notices, report.silent, report.corrupt
    ));
    Ok(())
}

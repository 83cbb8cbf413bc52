//! postern-receiver(1): a message on stdin and its envelope on the command
//! line (Postfix pipe(8) style) in, one job (postern-job(5)) out.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use postern::exit::{Failure, ToFailure};
use postern::log::Log;
use postern::mail::job::write_job;
use postern::receiver::{self, Arrival};

use postern_cli as common;

const TOOL: &str = "postern-receiver";

/// Validate a message from Postfix or procmail and write it as a postern job.
#[derive(Parser)]
#[command(name = TOOL, version)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Envelope sender; "" or "<>" is the null sender
    #[arg(short = 'f', value_name = "SENDER", allow_hyphen_values = true)]
    sender: String,
    /// Client IP address (Postfix ${client_address})
    #[arg(long, value_name = "ADDR", allow_hyphen_values = true)]
    client_address: Option<String>,
    /// Client host name (Postfix ${client_hostname})
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    client_hostname: Option<String>,
    /// Name the client gave in HELO/EHLO (Postfix ${client_helo})
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    client_helo: Option<String>,
    /// SASL login name of the client (Postfix ${sasl_username})
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    sasl_username: Option<String>,
    /// Queue id of the MTA that hands the message over (Postfix ${queue_id})
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    queue_id: Option<String>,
    /// Envelope recipients, after "--"
    #[arg(value_name = "RCPT", last = true)]
    recipients: Vec<String>,
}

fn main() -> ExitCode {
    common::main(TOOL, |cli: &Cli| cli.config.clone(), run)
}

fn run(cli: Cli, config: &postern::config::Config, log: &Log) -> Result<(), Failure> {
    let limit = config.message_size_limit;
    let msg = common::read_message(limit).map_err(|f| {
        log.warning(format_args!("rejected: {f}"));
        f
    })?;
    let arrival = Arrival {
        sender: cli.sender,
        recipients: cli.recipients,
        client_address: cli.client_address,
        client_hostname: cli.client_hostname,
        client_helo: cli.client_helo,
        sasl_username: cli.sasl_username,
        upstream_queue_id: cli.queue_id,
    };
    let now = SystemTime::now();
    let qid = common::new_queue_id()?;
    let accepted = receiver::accept(config, TOOL, &arrival, &msg, now, qid).map_err(|e| {
        let f = e.to_failure();
        // Refusal texts name what was wrong, never an address.
        log.warning(format_args!("rejected: {f}"));
        f
    })?;
    let env = &accepted.envelope;
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    write_job(&mut out, env, &accepted.parts(&msg))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::tempfail(format!("cannot write the job to standard output: {e}")))?;
    let upstream = env.upstream_queue_id.as_deref().unwrap_or("-");
    log.info(format_args!(
        "{}: upstream={upstream} size={} nrcpt={}{}",
        env.queue_id,
        accepted.size(&msg),
        env.recipients.len(),
        if accepted.repaired() {
            " header/body separator inserted"
        } else {
            ""
        }
    ));
    if log.shows_addresses() {
        let rcpts: Vec<String> = env
            .recipients
            .iter()
            .map(|r| format!("<{}>", r.address))
            .collect();
        log.info(format_args!(
            "{}: from={} to={}",
            env.queue_id,
            env.sender,
            rcpts.join(",")
        ));
    }
    Ok(())
}

//! What every postern binary does at its edge: parse the command line,
//! load the configuration, and turn a failure into an exit code and one
//! line on stderr.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::SystemTime;

use clap::Parser;
use postern::config::Config;
use postern::exit::{Failure, Sysexit, ToFailure};
use postern::log::Log;
use postern::mail::job::JobReader;
use postern::stage::{Stage, run_stream};

/// The whole life of a tool: parse the command line, load the
/// configuration named by `config_path`, open the log, run, exit.
pub fn main<C: Parser>(
    tool: &'static str,
    config_path: impl FnOnce(&C) -> Option<PathBuf>,
    run: impl FnOnce(C, &Config, &Log) -> Result<(), Failure>,
) -> ExitCode {
    let cli = match parse::<C>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let config = match config(&config_path(&cli)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let log = Log::open(tool, &config);
    finish(run(cli, &config, &log))
}

/// Parses the command line. Usage mistakes exit 78 (EX_CONFIG), which
/// Postfix's pipe(8) treats as a temporary local problem (4.3.5): a typo in
/// master.cf defers mail instead of bouncing it.
pub fn parse<C: Parser>() -> Result<C, ExitCode> {
    C::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                ExitCode::SUCCESS
            }
            _ => {
                let name = std::env::args().next().unwrap_or_default();
                fail(&Failure::config(format!(
                    "usage: {} (see {name} --help)",
                    usage_problem(&e)
                )))
            }
        }
    })
}

/// What is wrong with the command line, on one line, without quoting a
/// word the user gave unless it is an option's name: the status line goes
/// to the maillog, and a master.cf that forgets the `--` puts addresses
/// where options go.
fn usage_problem(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let option = || match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if is_option_name(arg) => Some(arg.clone()),
        _ => None,
    };
    match e.kind() {
        // clap's own first paragraph names only options here.
        ErrorKind::ArgumentConflict
        | ErrorKind::MissingRequiredArgument
        | ErrorKind::MissingSubcommand => {
            let text = e.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(|l| l.trim().trim_start_matches("error: "))
                .collect();
            first.join(" ")
        }
        ErrorKind::UnknownArgument => match option() {
            Some(arg) => format!("unknown option {arg}"),
            None => "an argument that is not an option, before `--` (recipients go after `--`)"
                .to_owned(),
        },
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::NoEquals => {
            match option() {
                Some(arg) => format!("invalid value for {arg}"),
                None => "an invalid value".to_owned(),
            }
        }
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues => match option() {
            Some(arg) => format!("wrong number of values for {arg}"),
            None => "an unexpected value".to_owned(),
        },
        _ => "the command line is not understood".to_owned(),
    }
}

/// An option as clap names it (`--config <FILE>`, `-f <SENDER>`), not a
/// value that happens to start with a hyphen.
fn is_option_name(arg: &str) -> bool {
    arg.starts_with('-')
        && arg.len() <= 40
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '<' | '>' | ' ' | '_'))
}

/// Loads `--config FILE`, else `$POSTERN_CONFIG`, else the default file.
pub fn config(path: &Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.as_deref()).map_err(|e| fail(&e.to_failure()))
}

/// Prints the status line and returns the exit code.
pub fn fail(f: &Failure) -> ExitCode {
    // One write, so that two stages sharing stderr cannot interleave. A
    // filter script running several stages on one stderr (postern-filter)
    // names each with POSTERN_STATUS_TAG, a short word put before the line,
    // so it can pass on the one line of the stage whose status it reports.
    let tag = std::env::var("POSTERN_STATUS_TAG")
        .ok()
        .filter(|t| (1..=8).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|t| format!("{t} "))
        .unwrap_or_default();
    let _ = std::io::stderr().write_all(format!("{tag}{f}\n").as_bytes());
    ExitCode::from(f.exit.code())
}

pub fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(Sysexit::Ok.code()),
        Err(f) => fail(&f),
    }
}

/// A fresh random queue id.
pub fn new_queue_id() -> Result<postern::mail::job::QueueId, Failure> {
    postern::mail::job::QueueId::fresh()
}

/// Reads a message from stdin up to `limit` bytes. An oversized message is
/// read to the end (so the MTA sees our status line, not a broken pipe)
/// and refused with its real size.
pub fn read_message(limit: u64) -> Result<Vec<u8>, Failure> {
    let mut stdin = io::stdin().lock();
    let mut msg = Vec::new();
    let read_err = |e: io::Error| Failure::tempfail(format!("cannot read the message: {e}"));
    (&mut stdin)
        .take(limit.saturating_add(1))
        .read_to_end(&mut msg)
        .map_err(read_err)?;
    if msg.len() as u64 > limit {
        let rest = io::copy(&mut stdin, &mut io::sink()).map_err(read_err)?;
        let size = msg.len() as u64 + rest;
        return Err(postern::mail::message::MessageError::TooLarge { size, limit }.to_failure());
    }
    Ok(msg)
}

/// A bare RFC 5322 message on stdin with its envelope on the command line
/// (`-f SENDER -- RCPT...`), checked as postern-receiver(1) checks it:
/// what every stage accepts besides a job stream.
pub fn bare_message(
    config: &Config,
    tool: &str,
    sender: String,
    recipients: Vec<String>,
    now: std::time::SystemTime,
) -> Result<postern::mail::job::Job, Failure> {
    let arrival = postern::receiver::Arrival {
        sender,
        recipients,
        ..Default::default()
    };
    bare_arrival(config, tool, &arrival, now)
}

/// [`bare_message`] with the rest of what an MTA would say (the client).
pub fn bare_arrival(
    config: &Config,
    tool: &str,
    arrival: &postern::receiver::Arrival,
    now: std::time::SystemTime,
) -> Result<postern::mail::job::Job, Failure> {
    let msg = read_message(config.message_size_limit)?;
    let accepted = postern::receiver::accept(config, tool, arrival, &msg, now, new_queue_id()?)?;
    let message = accepted.parts(&msg).concat();
    Ok(postern::mail::job::Job {
        envelope: accepted.envelope,
        message,
    })
}

/// What a dry run prints for one job, given the stage it ran through.
pub type Explain<'e, S> = &'e mut dyn FnMut(&mut S, postern::mail::job::Job, SystemTime) -> String;

/// The loop of a job-stream stage binary (postern-scanner, -rewriter,
/// -encryptor): the jobs on standard input, or one bare message when
/// `bare` is given, each through `stage`, the jobs out on standard
/// output; with `explain` (`--dry-run`), what it returns for each job is
/// printed instead, and no job is written.
pub fn run_stage<S: Stage>(
    config: &Config,
    tool: &str,
    stage: &mut S,
    bare: Option<postern::receiver::Arrival>,
    mut explain: Option<Explain<'_, S>>,
) -> Result<(), Failure> {
    let limit = postern::deliverer::job_size_limit(config);
    let mut jobs = Vec::new();
    match bare {
        Some(arrival) => jobs.push(bare_arrival(config, tool, &arrival, SystemTime::now())?),
        None if explain.is_some() => {
            let mut reader = JobReader::new(io::stdin().lock(), limit);
            while let Some(job) = reader.next_job()? {
                jobs.push(job);
            }
        }
        None => {
            return run_stream(
                stage,
                io::stdin().lock(),
                io::stdout().lock(),
                limit,
                SystemTime::now,
            );
        }
    }
    let mut out = io::stdout().lock();
    for job in jobs {
        match &mut explain {
            Some(explain) => {
                let text = explain(stage, job, SystemTime::now());
                out.write_all(text.as_bytes()).map_err(stdout_failure)?;
            }
            None => {
                for j in stage.process(job, SystemTime::now())? {
                    j.write_to(&mut out).map_err(stdout_failure)?;
                }
            }
        }
    }
    out.flush().map_err(stdout_failure)
}

/// Standard output could not be written (the next stage is gone).
pub fn stdout_failure(e: io::Error) -> Failure {
    Failure::tempfail(format!("cannot write to standard output: {e}"))
}

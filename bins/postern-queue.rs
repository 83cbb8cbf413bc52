//! postern-queue(8): the operator's view of the spool — list, show,
//! flush, hold, release, delete — as Postfix's mailq, postqueue and
//! postsuper. Each command parses its arguments and calls one operation
//! of `postern::deliverer::admin`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use postern::config::Config;
use postern::deliverer::admin::{self, AdminError, Outcome};
use postern::exit::{Failure, ToFailure};
use postern::log::Log;
use postern_cli as common;

const TOOL: &str = "postern-queue";

/// Look at postern's spool and act on its entries: list, show, flush, hold, release, delete.
#[derive(Parser)]
#[command(name = TOOL, version)]
struct Cli {
    /// Configuration file (default: $POSTERN_CONFIG, then /etc/postern/postern.toml)
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the entries of deferred/, hold/, active/, bounce/ and corrupt/
    List {
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
        /// Show senders and recipients
        #[arg(long)]
        show_addresses: bool,
    },
    /// Show the envelope of entry ID (never the message body)
    Show {
        #[arg(value_name = "ID")]
        id: String,
        /// Print a JSON object instead of text
        #[arg(long)]
        json: bool,
        /// Show addresses, diagnostics and client details
        #[arg(long)]
        show_addresses: bool,
        /// Show the message's header section too (needs --show-addresses)
        #[arg(long, requires = "show_addresses")]
        headers: bool,
    },
    /// Make deferred entries due now (every one without an ID)
    Flush {
        #[arg(value_name = "ID")]
        ids: Vec<String>,
    },
    /// Move deferred entries to hold/, where no queue run tries them
    Hold {
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
    /// Move held entries back to deferred/, due now
    Release {
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
    /// Remove entries from deferred/, hold/ or corrupt/
    Delete {
        /// First queue a bounce telling the sender (failed, 5.0.0)
        #[arg(long)]
        bounce: bool,
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = match common::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let config = match common::config(&cli.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let log = Log::open(TOOL, &config);
    match run(cli.command, &config, &log) {
        // One line for each ID that failed; the first one's exit status.
        Ok(failed) => {
            for e in &failed {
                common::fail(&e.to_failure());
            }
            failed.first().map_or(ExitCode::SUCCESS, |e| {
                ExitCode::from(e.to_failure().exit.code())
            })
        }
        Err(f) => common::fail(&f),
    }
}

/// Runs a command; `Ok` holds the IDs it could not act on.
fn run(command: Command, config: &Config, log: &Log) -> Result<Vec<AdminError>, Failure> {
    let spool = admin::open(config)?;
    let now = SystemTime::now();
    let missing = |ids: &[String]| Outcome {
        done: Vec::new(),
        failed: ids
            .iter()
            .map(|id| AdminError::NotFound {
                id: id.clone(),
                wanted: "the spool (there is none yet)",
            })
            .collect(),
    };
    let (outcome, verb) = match (command, &spool) {
        (
            Command::List {
                json,
                show_addresses,
            },
            _,
        ) => {
            let entries = match &spool {
                Some(s) => admin::list(s)?,
                None => Vec::new(),
            };
            let out = if json {
                admin::list_json(&entries, now, show_addresses).to_string() + "\n"
            } else {
                admin::table(&entries, now, show_addresses)
            };
            write(&out)?;
            return Ok(Vec::new());
        }
        (
            Command::Show {
                id,
                json,
                show_addresses,
                headers,
            },
            _,
        ) => {
            let Some(s) = &spool else {
                return Ok(missing(&[id]).failed);
            };
            let shown = admin::show(s, &id).map_err(|e| e.to_failure())?;
            let out = if json {
                admin::show_json(&shown, now, show_addresses, headers).to_string() + "\n"
            } else {
                admin::show_text(&shown, now, show_addresses, headers)
            };
            write(&out)?;
            return Ok(Vec::new());
        }
        (Command::Flush { ids }, None) => (missing(&ids), "flushed"),
        (Command::Flush { ids }, Some(s)) => {
            let o = admin::flush(s, &ids, now)?;
            write(&format!(
                "{} entr{} due now; the next queue run sends {}\n",
                o.done.len(),
                if o.done.len() == 1 { "y" } else { "ies" },
                if o.done.len() == 1 { "it" } else { "them" }
            ))?;
            (o, "flushed")
        }
        (Command::Hold { ids } | Command::Release { ids } | Command::Delete { ids, .. }, None) => {
            (missing(&ids), "")
        }
        (Command::Hold { ids }, Some(s)) => (say(admin::hold(s, &ids))?, "held"),
        (Command::Release { ids }, Some(s)) => (say(admin::release(s, &ids, now))?, "released"),
        (Command::Delete { ids, bounce }, Some(s)) => (
            say(admin::delete(s, &ids, bounce, now))?,
            if bounce {
                "deleted with a bounce"
            } else {
                "deleted"
            },
        ),
    };
    // Spool file names only: they tell nothing of the message.
    for (id, word) in &outcome.done {
        if !word.starts_with("already") && !word.starts_with("not ") {
            log.info(format_args!("{id}: {verb} by the operator"));
        }
    }
    Ok(outcome.failed)
}

/// One line per ID acted on: `ID: held`.
fn say(o: Outcome) -> Result<Outcome, Failure> {
    let text: String = o
        .done
        .iter()
        .map(|(id, word)| format!("{id}: {word}\n"))
        .collect();
    write(&text)?;
    Ok(o)
}

fn write(text: &str) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::tempfail(format!("cannot write to standard output: {e}")))
}

//! `postern-deliverer --daemon`: the queue run of `--run-queue`, again and
//! again. It sleeps until the next job falls due or `queue_run_delay`
//! passes, whichever comes first. SIGTERM (or SIGINT) lets the job in hand
//! finish and ends the daemon; SIGHUP reads the configuration again
//! between runs (a file that no longer loads is reported and the old one
//! kept).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::Deliverer;
use crate::config::Config;
use crate::exit::Failure;
use crate::log::Log;
use crate::store::spool::Queue;

/// How often a sleeping daemon looks at its signal flags.
const TICK: Duration = Duration::from_millis(200);

/// Runs the queue until SIGTERM. `config_path` is what `--config` named
/// (re-read on SIGHUP); `config` is its first reading.
pub fn run(config_path: Option<&Path>, config: Config, log: &Log) -> Result<(), Failure> {
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (signal, flag) in [(SIGTERM, &term), (SIGINT, &term), (SIGHUP, &hup)] {
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| Failure::tempfail(format!("cannot handle signal {signal}: {e}")))?;
    }
    log.info(format_args!("queue daemon started"));
    let mut config = config;
    // The configuration that last opened: what a bad reload falls back to.
    let mut good: Option<Config> = None;
    loop {
        let mut deliverer = match Deliverer::open(&config, log) {
            Ok(d) => d,
            Err(f) => match good.take() {
                // Deliverer::open has logged why.
                Some(previous) => {
                    log.error(format_args!("SIGHUP: keeping the configuration in use"));
                    config = previous;
                    continue;
                }
                None => return Err(f),
            },
        };
        good = None;
        deliverer.watch(term.clone());
        loop {
            match deliverer.run_queue(&SystemTime::now, false) {
                Ok(run) if run.tried + run.recovered + run.notices > 0 => log.info(format_args!(
                    "queue run: {} job(s) tried, {} recovered, {} notice(s), {} corrupt",
                    run.tried, run.recovered, run.notices, run.corrupt
                )),
                Ok(_) => {}
                // A run that failed is tried again at the next wake.
                Err(f) => log.error(format_args!("queue run: {f}")),
            }
            // At least a second: a job that stays due (its file cannot be
            // read, another runner holds the lock) must not make a spin.
            let wake = deliverer
                .next_wake(SystemTime::now(), config.queue.queue_run_delay)
                .max(Duration::from_secs(1));
            sleep(wake, &term, &hup);
            if term.load(Ordering::SeqCst) {
                log.info(format_args!("queue daemon stopped (SIGTERM or SIGINT)"));
                return Ok(());
            }
            if hup.swap(false, Ordering::SeqCst) {
                break;
            }
        }
        drop(deliverer);
        match Config::load(config_path) {
            Ok(c) => {
                log.info(format_args!("configuration read again (SIGHUP)"));
                good = Some(std::mem::replace(&mut config, c));
            }
            Err(e) => log.error(format_args!(
                "SIGHUP: {e}; keeping the configuration in use"
            )),
        }
    }
}

/// Sleeps `wait`, or less if a flag is raised.
fn sleep(wait: Duration, term: &AtomicBool, hup: &AtomicBool) {
    let mut left = wait;
    while !left.is_zero() && !term.load(Ordering::SeqCst) && !hup.load(Ordering::SeqCst) {
        let step = left.min(TICK);
        std::thread::sleep(step);
        left = left.saturating_sub(step);
    }
}

impl Deliverer<'_> {
    /// How long to sleep: until the first job in `deferred/` falls due,
    /// at most `most`. Unknown (the spool cannot be read) means `most`.
    pub fn next_wake(&self, now: SystemTime, most: Duration) -> Duration {
        let Ok(spool) = self.spool() else { return most };
        let first = spool
            .list(Queue::Deferred)
            .ok()
            .and_then(|l| l.into_iter().map(|(_, due)| due).min());
        match first {
            Some(due) => due.duration_since(now).unwrap_or_default().min(most),
            None => most,
        }
    }
}

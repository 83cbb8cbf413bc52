//! postern-deliverer(8) as a library operation: try a job over SMTP,
//! then settle what is left — deferred recipients into the spool with a
//! retry time, failed ones into the bounce queue — and (`queue`) the
//! queue run that retries spooled jobs.
//!
//! Nothing is reported done until it is delivered or its spool file is
//! fsync'ed. The decisions live in `plan`, apart from the I/O, so the
//! schedule can be tested without a spool or a network.

pub mod mta_sts;
pub mod plan;
pub mod queue;
pub mod smtp;

use std::cell::OnceCell;
use std::path::Path;
use std::time::{Instant, SystemTime};

use crate::config::Config;
use crate::exit::{Failure, ToFailure};
use crate::log::Log;
use crate::mail::job::Job;
use crate::stage::Stage;
use crate::store::seal::SealKey;
use crate::store::spool::{self, Entry, Queue, Spool, SpoolError};
use plan::Plan;
use smtp::Relay;

/// A job read from a pipe may have grown past the message size limit in
/// earlier stages (headers, encryption): allow for it.
pub fn job_size_limit(config: &Config) -> u64 {
    config
        .message_size_limit
        .saturating_mul(2)
        .saturating_add(1 << 20)
}

/// Where a job ended up, for the log and the exit status.
#[derive(Debug, Default)]
pub struct Settled {
    pub deferred: Option<Entry>,
    pub bounced: Option<Entry>,
}

/// Writes a plan into the spool under fresh names (pipe mode: no spool
/// file exists for the job yet). If the bounce part cannot be written,
/// the deferred part just written is taken back, so the caller can hand
/// the whole message back to Postfix (exit 75) without leaving a
/// duplicate.
pub fn commit(spool: &Spool, plan: &Plan, now: SystemTime) -> Result<Settled, SpoolError> {
    let mut settled = Settled::default();
    if let Some(job) = &plan.defer {
        let when = job.envelope.next_attempt.unwrap_or(now);
        settled.deferred = Some(spool.enqueue(Queue::Deferred, job, when)?);
    }
    if let Some(job) = &plan.bounce {
        match spool.enqueue(Queue::Bounce, job, now) {
            Ok(e) => settled.bounced = Some(e),
            Err(e) => {
                if let Some(d) = &settled.deferred {
                    let _ = spool.remove(d);
                }
                return Err(e);
            }
        }
    }
    Ok(settled)
}

/// The deliverer stage: its configuration, its log, the relay, the spool
/// key (loaded and checked before the first attempt), and the spool,
/// opened only when a job must wait (the fast path never writes to it).
pub struct Deliverer<'a> {
    config: &'a Config,
    log: &'a Log,
    relay: Relay,
    key: SealKey,
    spool: OnceCell<Spool>,
}

impl<'a> Deliverer<'a> {
    /// Loads the spool key and checks it against the spool, so that a
    /// missing or wrong key defers the message before anything is sent
    /// (not after some recipients were delivered).
    pub fn open(config: &'a Config, log: &'a Log) -> Result<Deliverer<'a>, Failure> {
        let fail = |f: Failure| {
            log.error(format_args!("{f}"));
            f
        };
        let key = SealKey::load(&config.spool.key_file).map_err(|e| fail(e.to_failure()))?;
        spool::check_key(&config.spool.directory, &key).map_err(|e| fail(e.to_failure()))?;
        let relay = Relay {
            host: config.relay.host.clone(),
            port: config.relay.port,
            helo: config.helo_name().to_owned(),
            timeout: config.relay.timeout,
            deadline: config.relay.deadline,
        };
        Ok(Deliverer {
            config,
            log,
            relay,
            key,
            spool: OnceCell::new(),
        })
    }

    fn spool(&self) -> Result<&Spool, Failure> {
        if let Some(spool) = self.spool.get() {
            return Ok(spool);
        }
        let dir: &Path = &self.config.spool.directory;
        let spool = Spool::open(dir, self.key.clone()).map_err(|e| {
            self.log.error(format_args!("{e}"));
            e.to_failure()
        })?;
        Ok(self.spool.get_or_init(|| spool))
    }

    /// Tries every undone recipient once, counts the attempt and logs it.
    fn attempt(&self, job: &mut Job) {
        let started = Instant::now();
        let attempt = smtp::deliver(&self.relay, job);
        job.envelope.attempts = job.envelope.attempts.saturating_add(1);
        let qid = &job.envelope.queue_id;
        self.log.info(format_args!(
            "{qid}: relay={} size={} attempt={} delivered={} deferred={} failed={} delay={:.3}s",
            self.relay.label(),
            job.message.len(),
            job.envelope.attempts,
            attempt.delivered,
            attempt.deferred,
            attempt.failed,
            started.elapsed().as_secs_f64()
        ));
        if let Some((code, diagnostic)) = &attempt.problem {
            // A relay's words may quote an address: shown only on request.
            if self.log.shows_addresses() {
                self.log
                    .info(format_args!("{qid}: dsn={code} ({diagnostic})"));
            } else {
                self.log.info(format_args!("{qid}: dsn={code}"));
            }
        }
        if self.log.shows_addresses() {
            for r in &job.envelope.recipients {
                self.log.info(format_args!(
                    "{qid}: to=<{}> status={}",
                    r.address, r.status
                ));
            }
        }
    }

    /// Tries a job and settles it. `Err` means it could be neither
    /// delivered nor spooled: the caller must not report success.
    pub fn handle(&self, mut job: Job, now: SystemTime) -> Result<(), Failure> {
        self.attempt(&mut job);
        let qid = job.envelope.queue_id.clone();
        let plan = plan::plan(job, now, &self.config.queue);
        if plan.defer.is_none() && plan.bounce.is_none() {
            return Ok(());
        }
        let settled = commit(self.spool()?, &plan, now).map_err(|e| {
            self.log.error(format_args!("{qid}: cannot spool: {e}"));
            e.to_failure()
        })?;
        self.log_settled(&plan, &settled, now);
        Ok(())
    }

    fn log_settled(&self, plan: &Plan, settled: &Settled, now: SystemTime) {
        if let (Some(e), Some(job)) = (&settled.deferred, &plan.defer) {
            let wait = job
                .envelope
                .next_attempt
                .and_then(|t| t.duration_since(now).ok())
                .unwrap_or_default();
            self.log.info(format_args!(
                "{}: deferred as {}, next attempt in {}s",
                job.envelope.queue_id,
                e.name,
                wait.as_secs()
            ));
        }
        if let (Some(e), Some(job)) = (&settled.bounced, &plan.bounce) {
            self.log.info(format_args!(
                "{}: failed recipients queued for bounce as {}",
                job.envelope.queue_id, e.name
            ));
        }
    }
}

impl Stage for Deliverer<'_> {
    /// The deliverer ends the chain: every job is delivered, spooled or
    /// queued for bounce, and nothing is passed on.
    fn process(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure> {
        self.handle(job, now)?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::seal::SealKey;
    use plan::tests::{deferred, failed, job};

    #[test]
    fn commit_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SealKey::from_bytes([1; 32])).unwrap();
        let j = job(&[deferred(), failed()]);
        let now = j.envelope.arrival;
        let p = plan::plan(j, now, &crate::config::QueueConfig::default());
        // Make bounce/ unwritable by replacing it with a file.
        std::fs::remove_dir(dir.path().join("bounce")).unwrap();
        std::fs::write(dir.path().join("bounce"), b"").unwrap();
        assert!(commit(&spool, &p, now).is_err());
        assert!(
            spool.list(Queue::Deferred).unwrap().is_empty(),
            "deferred part must be taken back"
        );
        std::fs::remove_file(dir.path().join("bounce")).unwrap();
        std::fs::create_dir(dir.path().join("bounce")).unwrap();
        let s = commit(&spool, &p, now).unwrap();
        assert!(s.deferred.is_some() && s.bounced.is_some());
    }
}

//! The deliverer's operations: try a job, then settle what is left —
//! deferred recipients into the spool with a retry time, failed ones into
//! the bounce queue — and the queue run that retries spooled jobs.
//!
//! Nothing is reported done until it is delivered or its spool file is
//! fsync'ed. Deciding (`plan`) is kept apart from doing (`commit`), so the
//! schedule can be tested without a spool or a network.

pub mod smtp;

use std::cell::OnceCell;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Config, QueueConfig};
use crate::exit::{Failure, ToFailure};
use crate::log::Log;
use crate::mail::job::{Job, RcptStatus};
use crate::mail::status;
use crate::store::seal::SealKey;
use crate::store::spool::{Entry, Queue, Spool, SpoolError};
use smtp::Relay;

/// A job read from a pipe may have grown past the message size limit in
/// earlier stages (headers, encryption): allow for it.
pub fn job_size_limit(config: &Config) -> u64 {
    config
        .message_size_limit
        .saturating_mul(2)
        .saturating_add(1 << 20)
}

/// What to do with a job after an attempt.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Recipients to try again, with `next_attempt` set.
    pub defer: Option<Job>,
    /// Recipients the bouncer must report: failed ones, and delivered
    /// ones that asked for NOTIFY=SUCCESS.
    pub bounce: Option<Job>,
}

/// Postfix's schedule: the wait doubles from the minimal to the maximal
/// backoff time.
pub fn backoff(attempts: u32, q: &QueueConfig) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    q.minimal_backoff_time
        .saturating_mul(1 << doublings)
        .min(q.maximal_backoff_time)
}

/// Decides where the recipients of an attempted job go. Recipients
/// deferred past `maximal_queue_lifetime` fail with 5.4.7.
pub fn plan(mut job: Job, now: SystemTime, q: &QueueConfig) -> Plan {
    let age = now.duration_since(job.envelope.arrival).unwrap_or_default();
    if age >= q.maximal_queue_lifetime {
        for r in &mut job.envelope.recipients {
            if !r.status.is_done() {
                r.status = RcptStatus::Failed {
                    code: status::EXPIRED,
                };
                let last = r.diagnostic.take().unwrap_or_default();
                r.diagnostic = Some(format!(
                    "x-postern; delivery time expired; last problem: {last}"
                ));
            }
        }
    }
    let needs_bounce = |s: &RcptStatus, notify_success: bool| {
        matches!(s, RcptStatus::Failed { .. }) || (*s == RcptStatus::Delivered && notify_success)
    };
    let any_undone = job.envelope.recipients.iter().any(|r| !r.status.is_done());
    let any_bounce = job
        .envelope
        .recipients
        .iter()
        .any(|r| needs_bounce(&r.status, r.notify.success));
    let split = |job: &Job, keep: &dyn Fn(&crate::mail::job::Recipient) -> bool| {
        let mut part = job.clone();
        part.envelope.recipients.retain(|r| keep(r));
        part
    };
    let mut plan = Plan::default();
    if any_bounce {
        let mut b = split(&job, &|r| needs_bounce(&r.status, r.notify.success));
        b.envelope.next_attempt = None;
        plan.bounce = Some(b);
    }
    if any_undone {
        job.envelope.recipients.retain(|r| !r.status.is_done());
        job.envelope.next_attempt = Some(now + backoff(job.envelope.attempts, q));
        plan.defer = Some(job);
    }
    plan
}

/// Where a job ended up, for the log and the exit status.
#[derive(Debug, Default)]
pub struct Settled {
    pub deferred: Option<Entry>,
    pub bounced: Option<Entry>,
}

/// Writes a plan into the spool. If the bounce part cannot be written,
/// the deferred part just written is taken back, so the caller can hand the
/// whole message back to Postfix (exit 75) without leaving a duplicate.
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

/// The deliverer: configuration, log, and a spool opened only when a job
/// must wait (the fast path never touches the spool or its key).
pub struct Deliverer<'a> {
    config: &'a Config,
    log: &'a Log,
    relay: Relay,
    spool: OnceCell<Spool>,
}

impl<'a> Deliverer<'a> {
    pub fn new(config: &'a Config, log: &'a Log) -> Deliverer<'a> {
        let relay = Relay {
            host: config.relay.host.clone(),
            port: config.relay.port,
            helo: config.helo_name().to_owned(),
            timeout: config.relay.timeout,
        };
        Deliverer {
            config,
            log,
            relay,
            spool: OnceCell::new(),
        }
    }

    fn spool(&self) -> Result<&Spool, Failure> {
        if let Some(spool) = self.spool.get() {
            return Ok(spool);
        }
        let open = || {
            let key = SealKey::load(&self.config.spool.key_file)?;
            Spool::open(
                &self.config.spool.directory,
                key,
                job_size_limit(self.config),
            )
        };
        let spool = open().map_err(|e: SpoolError| {
            self.log.error(format_args!("{e}"));
            e.to_failure()
        })?;
        Ok(self.spool.get_or_init(|| spool))
    }

    /// Tries a job and settles it. `Err` means it could be neither
    /// delivered nor spooled: the caller must not report success.
    pub fn handle(&self, mut job: Job, now: SystemTime) -> Result<(), Failure> {
        let started = Instant::now();
        let attempt = smtp::deliver(&self.relay, &mut job);
        job.envelope.attempts = job.envelope.attempts.saturating_add(1);
        let qid = job.envelope.queue_id.clone();
        let size = job.message.len();
        self.log.info(format_args!(
            "{qid}: relay={} size={size} attempt={} delivered={} deferred={} failed={} delay={:.3}s",
            self.relay.label(),
            job.envelope.attempts,
            attempt.delivered,
            attempt.deferred,
            attempt.failed,
            started.elapsed().as_secs_f64()
        ));
        if let Some((code, diagnostic)) = &attempt.problem {
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
        let plan = plan(job, now, &self.config.queue);
        if plan.defer.is_none() && plan.bounce.is_none() {
            return Ok(());
        }
        let settled = commit(self.spool()?, &plan, now).map_err(|e| {
            self.log.error(format_args!("{qid}: cannot spool: {e}"));
            e.to_failure()
        })?;
        if let (Some(e), Some(job)) = (&settled.deferred, &plan.defer) {
            let wait = job
                .envelope
                .next_attempt
                .and_then(|t| t.duration_since(now).ok())
                .unwrap_or_default();
            self.log.info(format_args!(
                "{qid}: deferred as {}, next attempt in {}s",
                e.name,
                wait.as_secs()
            ));
        }
        if let Some(e) = &settled.bounced {
            self.log.info(format_args!(
                "{qid}: failed recipients queued for bounce as {}",
                e.name
            ));
        }
        Ok(())
    }

    /// One pass over the deferred queue: every due job (all with `flush`)
    /// is claimed, tried once and settled. Files that do not open go to
    /// `corrupt/`. Returns how many jobs were tried.
    pub fn run_queue(&self, now: SystemTime, flush: bool) -> Result<usize, Failure> {
        let spool = self.spool()?;
        let Some(lock) = spool.lock_runner().map_err(|e| e.to_failure())? else {
            self.log.info(format_args!(
                "another queue runner is active; nothing to do"
            ));
            return Ok(0);
        };
        let recovered = spool.recover(&lock, now).map_err(|e| e.to_failure())?;
        if recovered > 0 {
            self.log.warning(format_args!(
                "{recovered} job(s) left in active/ by an earlier run put back"
            ));
        }
        let mut tried = 0;
        for entry in spool.due(now, flush).map_err(|e| e.to_failure())? {
            let Some(active) = spool
                .move_to(&entry, Queue::Active)
                .map_err(|e| e.to_failure())?
            else {
                continue;
            };
            let job = match spool.load(&active) {
                Ok(job) => job,
                Err(e) => {
                    self.log.error(format_args!(
                        "spool file {} moved to corrupt/: {e}",
                        active.name
                    ));
                    spool
                        .move_to(&active, Queue::Corrupt)
                        .map_err(|e| e.to_failure())?;
                    continue;
                }
            };
            tried += 1;
            if let Err(f) = self.handle(job, now) {
                // The job as it was stays for the next run.
                let _ = spool.move_to(&active, Queue::Deferred);
                return Err(f);
            }
            spool.remove(&active).map_err(|e| e.to_failure())?;
        }
        Ok(tried)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::address::{Address, Sender};
    use crate::mail::job::{Envelope, Notify, QueueId, Recipient};

    fn job(statuses: &[RcptStatus]) -> Job {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut env = Envelope::new(QueueId::parse("Q1").unwrap(), t0, Sender::Null);
        for (i, s) in statuses.iter().enumerate() {
            let mut r = Recipient::new(Address::parse(&format!("r{i}@example.net")).unwrap());
            r.status = s.clone();
            env.recipients.push(r);
        }
        env.attempts = 1;
        Job {
            envelope: env,
            message: b"Subject: x\n\n".to_vec(),
        }
    }

    fn deferred() -> RcptStatus {
        RcptStatus::Deferred {
            code: status::BAD_CONNECTION,
        }
    }

    fn failed() -> RcptStatus {
        RcptStatus::Failed {
            code: status::NO_SUCH_MAILBOX,
        }
    }

    #[test]
    fn schedule_doubles_up_to_the_maximum() {
        let q = QueueConfig::default();
        assert_eq!(backoff(1, &q), Duration::from_secs(300));
        assert_eq!(backoff(2, &q), Duration::from_secs(600));
        assert_eq!(backoff(4, &q), Duration::from_secs(2400));
        assert_eq!(backoff(5, &q), Duration::from_secs(4000));
        assert_eq!(backoff(u32::MAX, &q), Duration::from_secs(4000));
    }

    #[test]
    fn all_delivered_needs_no_spool() {
        let j = job(&[RcptStatus::Delivered, RcptStatus::Delivered]);
        let now = j.envelope.arrival;
        assert_eq!(plan(j, now, &QueueConfig::default()), Plan::default());
    }

    #[test]
    fn mixed_results_split_into_defer_and_bounce() {
        let mut j = job(&[RcptStatus::Delivered, deferred(), failed()]);
        j.envelope.recipients[0].notify = Notify::parse("SUCCESS").unwrap();
        let now = j.envelope.arrival + Duration::from_secs(10);
        let p = plan(j, now, &QueueConfig::default());
        let d = p.defer.unwrap();
        assert_eq!(d.envelope.recipients.len(), 1);
        assert_eq!(d.envelope.recipients[0].address.as_str(), "r1@example.net");
        assert_eq!(
            d.envelope.next_attempt,
            Some(now + Duration::from_secs(300))
        );
        let b = p.bounce.unwrap();
        let names: Vec<&str> = b
            .envelope
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(names, ["r0@example.net", "r2@example.net"]);
    }

    #[test]
    fn expired_jobs_fail_with_5_4_7() {
        let j = job(&[deferred()]);
        let now = j.envelope.arrival + Duration::from_secs(5 * 86400);
        let p = plan(j, now, &QueueConfig::default());
        assert!(p.defer.is_none());
        let b = p.bounce.unwrap();
        assert_eq!(
            b.envelope.recipients[0].status,
            RcptStatus::Failed {
                code: status::EXPIRED
            }
        );
    }

    #[test]
    fn commit_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SealKey::from_bytes([1; 32]), 1 << 20).unwrap();
        let j = job(&[deferred(), failed()]);
        let now = j.envelope.arrival;
        let p = plan(j, now, &QueueConfig::default());
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

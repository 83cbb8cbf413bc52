//! postern-deliverer(8) as a library operation: try a job over SMTP,
//! then settle what is left — deferred recipients into the spool with a
//! retry time, failed ones into the bounce queue — and (`queue`) the
//! queue run that retries spooled jobs.
//!
//! Nothing is reported done until it is delivered or its spool file is
//! fsync'ed. The decisions live apart from the I/O: `route` (where each
//! recipient goes), `classify` (what a failure means), `plan` (the
//! schedule, expiry, delay warnings). `send` tries one destination's
//! hosts over `smtp` sessions (with `tls` and `mta_sts`); `retention`
//! keeps redacted copies; `daemon` and `admin` are the queue daemon and
//! postern-queue(8).

pub mod admin;
pub mod classify;
pub mod daemon;
pub mod mta_sts;
pub mod plan;
pub mod queue;
pub mod retention;
pub mod route;
mod send;
pub mod smtp;
pub mod tls;

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::alias::store::AliasStore;
use crate::config::{Config, TlsLevel};
use crate::dns::DnsClient;
use crate::exit::{Failure, ToFailure};
use crate::log::Log;
use crate::mail::job::{Job, RcptStatus};
use crate::mail::status;
use crate::stage::Stage;
use crate::store::seal::SealKey;
use crate::store::spool::{self, Entry, Queue, Spool, SpoolError};
use classify::Category;
use mta_sts::MtaSts;
use plan::Plan;
use route::Routes;
use smtp::{Attempt, Reply};
use tls::TlsClients;

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
    pub warned: Option<Entry>,
}

/// Writes a plan into the spool under fresh names (pipe mode: no spool
/// file exists for the job yet). If a later part cannot be written, the
/// parts already written are taken back, so the caller can hand the
/// whole message back to Postfix (exit 75) without leaving a duplicate.
pub fn commit(spool: &Spool, plan: &Plan, now: SystemTime) -> Result<Settled, SpoolError> {
    let mut settled = Settled::default();
    let parts = [
        (&plan.defer, Queue::Deferred),
        (&plan.bounce, Queue::Bounce),
        (&plan.warn, Queue::Bounce),
    ];
    for (i, (part, queue)) in parts.into_iter().enumerate() {
        let Some(job) = part else { continue };
        let when = match queue {
            Queue::Deferred => job.envelope.next_attempt.unwrap_or(now),
            _ => now,
        };
        match spool.enqueue(queue, job, when) {
            Ok(e) => match i {
                0 => settled.deferred = Some(e),
                1 => settled.bounced = Some(e),
                _ => settled.warned = Some(e),
            },
            Err(e) => {
                for written in [&settled.deferred, &settled.bounced].into_iter().flatten() {
                    let _ = spool.remove(written);
                }
                return Err(e);
            }
        }
    }
    Ok(settled)
}

/// The deliverer stage: its configuration, its log, where each domain
/// goes, the TLS clients, the DNS client (made when first needed), the
/// spool key (loaded and checked before the first attempt), and the
/// spool, opened when a job must wait or a redacted copy is kept.
pub struct Deliverer<'a> {
    config: &'a Config,
    log: &'a Log,
    routes: Routes,
    tls: OnceCell<TlsClients>,
    dns: OnceCell<DnsClient>,
    /// MTA-STS policies, made at the first MX destination.
    mta_sts: OnceCell<RefCell<MtaSts>>,
    key: SealKey,
    spool: OnceCell<Spool>,
    /// Set by a signal: finish the job in hand, start no other.
    stop: Option<Arc<AtomicBool>>,
    /// The alias store, for per-domain retention (`None`: there is none).
    store: OnceCell<Option<RefCell<AliasStore>>>,
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
        let routes = Routes::new(&config.deliverer);
        // The TLS clients are made now when a destination will need them
        // (a bad CA file is a configuration error before anything is
        // sent), else at the first session that asks for TLS.
        let tls = OnceCell::new();
        if config.relay.tls != TlsLevel::None || !routes.relay_only() {
            let ca = config.deliverer.tls_ca_file.as_deref();
            let clients = TlsClients::new(ca).map_err(|e| fail(Failure::config(e.to_string())))?;
            let _ = tls.set(clients);
        }
        Ok(Deliverer {
            config,
            log,
            routes,
            tls,
            dns: OnceCell::new(),
            mta_sts: OnceCell::new(),
            key,
            spool: OnceCell::new(),
            stop: None,
            store: OnceCell::new(),
        })
    }

    /// Makes queue runs stop between jobs once `stop` is set (SIGTERM in
    /// the daemon).
    pub fn watch(&mut self, stop: Arc<AtomicBool>) {
        self.stop = Some(stop);
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
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

    /// The DNS client, made at the first MX lookup (a relay-only
    /// deliverer never reads resolv.conf).
    fn dns(&self) -> Result<&DnsClient, Reply> {
        if let Some(d) = self.dns.get() {
            return Ok(d);
        }
        let client = DnsClient::new(&self.config.dns)
            .map_err(|e| Reply::local(status::MISCONFIGURED, Category::Other, e.to_string()))?;
        Ok(self.dns.get_or_init(|| client))
    }

    /// Tries every undone recipient once, destination by destination,
    /// counts the attempt and logs it.
    fn attempt(&self, job: &mut Job) {
        let started = Instant::now();
        let now = SystemTime::now();
        let mut attempt = Attempt::default();
        let mut delivered_now = Vec::new();
        for (dest, group) in route::groups(&self.routes, job) {
            self.send(&dest, job, &group, now, &mut attempt);
            attempt.count(job, &group);
            delivered_now.extend(
                group
                    .iter()
                    .filter(|&&i| job.envelope.recipients[i].status == RcptStatus::Delivered),
            );
        }
        self.save_mta_sts();
        job.envelope.attempts = job.envelope.attempts.saturating_add(1);
        let qid = &job.envelope.queue_id;
        let via = if attempt.peers.is_empty() {
            "none".to_owned()
        } else {
            attempt.peers.join(",")
        };
        self.log.info(format_args!(
            "{qid}: relay={via} size={} attempt={} delivered={} deferred={} failed={} delay={:.3}s",
            job.message.len(),
            job.envelope.attempts,
            attempt.delivered,
            attempt.deferred,
            attempt.failed,
            started.elapsed().as_secs_f64()
        ));
        if let Some((code, diagnostic)) = &attempt.problem {
            // A server's words may quote an address: shown only on request.
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
        if !delivered_now.is_empty() {
            self.keep_sent(job, &delivered_now, now);
        }
    }

    /// Keeps a redacted copy of what was just delivered in `sent/`, for
    /// the retention time (see `retention`). A copy that cannot be
    /// written is logged; the delivery stands.
    fn keep_sent(&self, job: &Job, delivered: &[usize], now: SystemTime) {
        let first = &job.envelope.recipients[delivered[0]];
        let domain = first
            .orcpt
            .as_deref()
            .and_then(|o| o.split_once(';'))
            .and_then(|(_, a)| a.rsplit_once('@'))
            .map_or(first.address.domain(), |(_, d)| d);
        let keep = self.retention_for(domain);
        if keep.is_zero() {
            return;
        }
        let mut copy = Job {
            envelope: job.envelope.clone(),
            message: retention::redact(&job.message),
        };
        copy.envelope.recipients = delivered
            .iter()
            .map(|&i| job.envelope.recipients[i].clone())
            .collect();
        copy.envelope.next_attempt = None;
        let name = retention::segment_name(now, keep);
        let kept = self
            .spool()
            .map_err(|f| f.to_string())
            .and_then(|s| s.append_sent(&name, &copy).map_err(|e| e.to_string()));
        if let Err(e) = kept {
            self.log.warning(format_args!(
                "{}: no redacted copy kept: {e}",
                job.envelope.queue_id
            ));
        }
    }

    /// How long a redacted copy for `domain` is kept: the alias store's
    /// `sent_retention_days` for the domain, else `queue.retention_time`.
    fn retention_for(&self, domain: &str) -> Duration {
        let default = self.config.queue.retention_time;
        let store = self.store.get_or_init(|| {
            let path = &self.config.aliases.store;
            path.exists()
                .then(|| AliasStore::open(path).ok())
                .flatten()
                .map(RefCell::new)
        });
        let (Some(store), Some(key)) = (store, crate::alias::domain_key(domain)) else {
            return default;
        };
        match store.borrow().setting(&key, "sent_retention_days") {
            Ok(days) if !days.is_empty() => days.parse().map_or(default, retention::days),
            _ => default,
        }
    }
}

impl<'a> Deliverer<'a> {
    /// Tries a job and settles it. `Err` means it could be neither
    /// delivered nor spooled: the caller must not report success.
    pub fn handle(&self, mut job: Job, now: SystemTime) -> Result<(), Failure> {
        self.attempt(&mut job);
        let qid = job.envelope.queue_id.clone();
        let warn_after = self.config.bouncer.delay_warning_time;
        let plan = plan::plan(job, now, &self.config.queue, warn_after);
        if plan.defer.is_none() && plan.bounce.is_none() && plan.warn.is_none() {
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
        if let (Some(e), Some(job)) = (&settled.warned, &plan.warn) {
            self.log.info(format_args!(
                "{}: delay warning queued as {}",
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
    use std::time::Duration;

    #[test]
    fn commit_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SealKey::from_bytes([1; 32])).unwrap();
        let j = job(&[deferred(), failed()]);
        let now = j.envelope.arrival;
        let p = plan::plan(
            j,
            now,
            &crate::config::QueueConfig::default(),
            Duration::ZERO,
        );
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

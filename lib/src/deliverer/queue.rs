//! The queue run (`postern-deliverer --run-queue`): every due job in
//! `deferred/` is claimed into `active/`, tried once and settled.
//!
//! Settling is crash-safe without duplicates. After the attempt, the
//! concluded job (every recipient's new status, the next attempt) replaces
//! the claimed file in `active/`: from then on a delivered recipient is
//! never sent again. Then the job is split (`plan::split`, which depends
//! on the concluded job alone): the bounce part is written as
//! `bounce/NAME-bN` (N: the attempt count), the rest as `deferred/NAME`,
//! and the `active/` file is removed. A runner killed anywhere in between
//! leaves the `active/` file; the next run settles it again, and since
//! the names are the same, what it writes replaces what the killed run
//! wrote: no second bounce entry, no second deferred copy.

use std::time::SystemTime;

use super::{Deliverer, plan};
use crate::bouncer::Bouncer;
use crate::exit::{Failure, ToFailure};
use crate::mail::job::Job;
use crate::store::spool::{Entry, Queue, Spool, SpoolError};

/// What a queue run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueueRun {
    /// Jobs tried.
    pub tried: usize,
    /// Jobs a killed run left in `active/`, settled now.
    pub recovered: usize,
    /// Files moved to `corrupt/`.
    pub corrupt: usize,
    /// Files that could not be read, left where they were.
    pub unreadable: usize,
    /// Delivery status notifications the bouncer queued.
    pub notices: usize,
}

/// The name of the bounce entry of a job's `attempts`-th attempt.
fn bounce_name(entry: &Entry, attempts: u32) -> String {
    format!("{}-b{attempts}", entry.name)
}

/// The name of a job's delay warning (one per job).
fn warning_name(entry: &Entry) -> String {
    format!("{}-w", entry.name)
}

/// Writes the split of a concluded job and drops its `active/` file;
/// returns the split, for the log. Each step can be repeated: see the
/// module documentation.
fn settle(
    spool: &Spool,
    active: &Entry,
    job: &Job,
    now: SystemTime,
) -> Result<plan::Plan, SpoolError> {
    let split = plan::split(job);
    if let Some(b) = &split.bounce {
        spool.put(
            Queue::Bounce,
            &bounce_name(active, job.envelope.attempts),
            b,
            now,
        )?;
    }
    if let Some(w) = &split.warn {
        spool.put(Queue::Bounce, &warning_name(active), w, now)?;
    }
    if let Some(d) = &split.defer {
        let when = d.envelope.next_attempt.unwrap_or(now);
        spool.put(Queue::Deferred, &active.name, d, when)?;
    }
    spool.remove(active)?;
    Ok(split)
}

impl Deliverer<'_> {
    /// One pass over the spool: first what a killed run left in
    /// `active/`, then every due job in `deferred/` (all with `flush`).
    /// `clock` is asked for the time before each job. A file that fails
    /// authentication or holds no job goes to `corrupt/`; one that cannot
    /// be read stays, is logged, and makes the run fail (75) at its end.
    pub fn run_queue(
        &self,
        clock: &dyn Fn() -> SystemTime,
        flush: bool,
    ) -> Result<QueueRun, Failure> {
        let spool = self.spool()?;
        let Some(_lock) = spool.lock_runner()? else {
            self.log.info(format_args!(
                "another queue runner is active; nothing to do"
            ));
            return Ok(QueueRun::default());
        };
        let mut run = QueueRun::default();
        let mut first_problem = None;
        for (name, _) in spool.list(Queue::Active)? {
            let active = Entry {
                queue: Queue::Active,
                name,
            };
            // An unreadable file stays in active/ for the next run: put
            // back into deferred/ it would be attempted again instead of
            // settled, and its failed recipients reported twice.
            let Some(job) = self.load(spool, &active, false, &mut run, &mut first_problem)? else {
                continue;
            };
            settle(spool, &active, &job, clock()).map_err(|e| self.cannot_spool(&job, e))?;
            run.recovered += 1;
        }
        if run.recovered > 0 {
            self.log.warning(format_args!(
                "{} job(s) left in active/ by an earlier run settled",
                run.recovered
            ));
        }
        spool.remove_stale_tmp(clock())?;
        let purged = spool.purge_sent(clock())?;
        if purged > 0 {
            self.log.info(format_args!(
                "{purged} segment(s) of redacted copies purged from sent/"
            ));
        }
        // The bouncer's notices go out in the same run: drained before
        // the due jobs, and again after them for what this run failed.
        let bouncer = Bouncer::open(self.config, self.log);
        let mut later: Option<Failure> = None;
        let mut drain = |run: &mut QueueRun| -> usize {
            let report = match &bouncer {
                Ok(b) => b.drain(spool, clock()),
                Err(f) => Err(f.clone()),
            };
            match report {
                Ok(r) => {
                    run.notices += r.notices;
                    r.notices
                }
                Err(f) => {
                    later.get_or_insert(f);
                    0
                }
            }
        };
        drain(&mut run);
        self.deliver_due(spool, clock, flush, &mut run, &mut first_problem)?;
        if drain(&mut run) > 0 {
            self.deliver_due(spool, clock, false, &mut run, &mut first_problem)?;
        }
        if let Some(e) = first_problem {
            return Err(Failure::tempfail(format!(
                "{} spool file(s) could not be read and were left in place; first: {e}",
                run.unreadable
            )));
        }
        match later {
            None => Ok(run),
            Some(f) => Err(f),
        }
    }

    /// Claims, tries and settles every due job in `deferred/` (all of
    /// them with `flush`).
    fn deliver_due(
        &self,
        spool: &Spool,
        clock: &dyn Fn() -> SystemTime,
        flush: bool,
        run: &mut QueueRun,
        first_problem: &mut Option<SpoolError>,
    ) -> Result<(), Failure> {
        for entry in spool.due(clock(), flush)? {
            if self.stopping() {
                break;
            }
            let Some(active) = spool.claim(&entry)? else {
                continue;
            };
            let Some(mut job) = self.load(spool, &active, true, run, first_problem)? else {
                continue;
            };
            run.tried += 1;
            self.attempt(&mut job);
            let now = clock();
            let warn_after = self.config.bouncer.delay_warning_time;
            plan::conclude(&mut job, now, &self.config.queue, warn_after);
            if plan::split(&job) == plan::Plan::default() {
                // Every recipient delivered and nothing to report: the
                // removal is the commit point.
                spool
                    .remove(&active)
                    .map_err(|e| self.cannot_spool(&job, e))?;
                continue;
            }
            // The commit point of the attempt (see the module doc).
            if let Err(e) = spool.put(Queue::Active, &active.name, &job, now) {
                // The old state stays: recipients delivered just now may be
                // sent again (at least once, never lost).
                let _ = spool.move_to(&active, Queue::Deferred);
                return Err(self.cannot_spool(&job, e));
            }
            let split =
                settle(spool, &active, &job, now).map_err(|e| self.cannot_spool(&job, e))?;
            self.log_split(&active, &job, &split);
        }
        Ok(())
    }

    /// Loads a claimed file. `Ok(None)` when it was set aside: moved to
    /// `corrupt/` (bad file), or left — put back into `deferred/`, keeping
    /// its due time, if `put_back` — when it could not be read.
    fn load(
        &self,
        spool: &Spool,
        active: &Entry,
        put_back: bool,
        run: &mut QueueRun,
        first_problem: &mut Option<SpoolError>,
    ) -> Result<Option<Job>, Failure> {
        match spool.load(active) {
            Ok(job) => Ok(Some(job)),
            Err(e) if e.is_corrupt_file() => {
                self.log.error(format_args!("{e}; moved to corrupt/"));
                spool.move_to(active, Queue::Corrupt)?;
                run.corrupt += 1;
                Ok(None)
            }
            Err(e) => {
                self.log.error(format_args!("{e}; left in place"));
                if put_back {
                    let _ = spool.move_to(active, Queue::Deferred);
                }
                run.unreadable += 1;
                first_problem.get_or_insert(e);
                Ok(None)
            }
        }
    }

    fn cannot_spool(&self, job: &Job, e: SpoolError) -> Failure {
        self.log
            .error(format_args!("{}: cannot spool: {e}", job.envelope.queue_id));
        e.to_failure()
    }

    fn log_split(&self, active: &Entry, job: &Job, split: &plan::Plan) {
        let qid = &job.envelope.queue_id;
        if split.defer.is_some() {
            self.log.info(format_args!(
                "{qid}: deferred as {}, attempt {}",
                active.name, job.envelope.attempts
            ));
        }
        if split.bounce.is_some() {
            self.log.info(format_args!(
                "{qid}: failed recipients queued for bounce as {}",
                bounce_name(active, job.envelope.attempts)
            ));
        }
        if split.warn.is_some() {
            self.log.info(format_args!(
                "{qid}: delay warning queued as {}",
                warning_name(active)
            ));
        }
    }
}

//! The deliverer's decisions, apart from its I/O: the retry schedule,
//! when a recipient has waited too long, and which recipients of an
//! attempted job go to the bouncer and which wait for another attempt.
//!
//! An attempted job is first *concluded* — expired recipients failed,
//! the next attempt set — and then *split*. The split depends on the
//! concluded job alone, so a queue runner can record the concluded job,
//! crash, and split it again after the restart with the same result.

use std::time::{Duration, SystemTime};

use crate::config::QueueConfig;
use crate::mail::job::{Job, RcptStatus, Recipient};
use crate::mail::status;

/// What to do with a job after an attempt.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Recipients to try again, with `next_attempt` set.
    pub defer: Option<Job>,
    /// Recipients the bouncer must report: failed ones, and delivered
    /// ones that asked for NOTIFY=SUCCESS.
    pub bounce: Option<Job>,
    /// A delay warning: the recipients still waiting, for the bouncer,
    /// once per message.
    pub warn: Option<Job>,
}

/// Postfix's schedule: the wait doubles from the minimal to the maximal
/// backoff time.
pub fn backoff(attempts: u32, q: &QueueConfig) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    q.minimal_backoff_time
        .saturating_mul(1 << doublings)
        .min(q.maximal_backoff_time)
}

/// Concludes an attempted job: recipients still undone past
/// `maximal_queue_lifetime` fail with 5.4.7, and if any are left undone
/// the next attempt is set by the schedule. A job waiting longer than
/// `warn_after` (0: never) is marked for its one delay warning.
pub fn conclude(job: &mut Job, now: SystemTime, q: &QueueConfig, warn_after: Duration) {
    let age = now.duration_since(job.envelope.arrival).unwrap_or_default();
    if age >= q.maximal_queue_lifetime {
        for r in &mut job.envelope.recipients {
            if !r.status.is_done() {
                let last = r.diagnostic.take().unwrap_or_default();
                let why = format!("x-postern; delivery time expired; last problem: {last}");
                r.settle(
                    RcptStatus::Failed {
                        code: status::EXPIRED,
                    },
                    Some(&why),
                );
            }
        }
    }
    let waiting = job.envelope.undone().next().is_some();
    job.envelope.next_attempt = waiting.then(|| now + backoff(job.envelope.attempts, q));
    if waiting
        && job.envelope.delay_warned == 0
        && !warn_after.is_zero()
        && age >= warn_after
        && job.envelope.undone().any(wants_delay_notice)
    {
        job.envelope.delay_warned = job.envelope.attempts.max(1);
    }
}

/// NOTIFY unset (the default: failure and delay) or with DELAY.
fn wants_delay_notice(r: &Recipient) -> bool {
    r.notify.is_unset() || r.notify.delay
}

/// Failed recipients, and delivered ones that asked for NOTIFY=SUCCESS
/// from a next hop that could not take the request on (no DSN offered).
fn needs_bounce(r: &Recipient) -> bool {
    matches!(r.status, RcptStatus::Failed { .. })
        || (r.status == RcptStatus::Delivered && r.notify.success && !r.dsn_passed)
}

/// Splits a concluded job into what the bouncer reports and what waits.
/// A job that was never attempted (claimed, then left by a crash) splits
/// into itself, due at its old next attempt.
pub fn split(job: &Job) -> Plan {
    let part = |keep: &dyn Fn(&Recipient) -> bool| {
        job.envelope.recipients.iter().any(keep).then(|| {
            let mut part = job.clone();
            part.envelope.recipients.retain(|r| keep(r));
            part
        })
    };
    let mut bounce = part(&needs_bounce);
    if let Some(b) = &mut bounce {
        b.envelope.next_attempt = None;
    }
    // The warning belongs to the attempt that marked it, so a split
    // repeated after a crash makes it again under the same name, and a
    // later attempt never does.
    let warned_now =
        job.envelope.delay_warned != 0 && job.envelope.delay_warned == job.envelope.attempts.max(1);
    let warn = if warned_now {
        part(&|r: &Recipient| !r.status.is_done() && wants_delay_notice(r))
    } else {
        None
    };
    Plan {
        defer: part(&|r: &Recipient| !r.status.is_done()),
        bounce,
        warn,
    }
}

/// [`conclude`] then [`split`].
pub fn plan(mut job: Job, now: SystemTime, q: &QueueConfig, warn_after: Duration) -> Plan {
    conclude(&mut job, now, q, warn_after);
    split(&job)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mail::address::{Address, Sender};
    use crate::mail::job::{Envelope, Notify, QueueId};

    pub(crate) fn job(statuses: &[RcptStatus]) -> Job {
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

    const NO_WARN: Duration = Duration::ZERO;

    pub(crate) fn deferred() -> RcptStatus {
        RcptStatus::Deferred {
            code: status::BAD_CONNECTION,
        }
    }

    pub(crate) fn failed() -> RcptStatus {
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
        assert_eq!(
            plan(j, now, &QueueConfig::default(), NO_WARN),
            Plan::default()
        );
    }

    #[test]
    fn mixed_results_split_into_defer_and_bounce() {
        let mut j = job(&[RcptStatus::Delivered, deferred(), failed()]);
        j.envelope.recipients[0].notify = Notify::parse("SUCCESS").unwrap();
        let now = j.envelope.arrival + Duration::from_secs(10);
        let p = plan(j, now, &QueueConfig::default(), NO_WARN);
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
        assert_eq!(b.envelope.next_attempt, None);
    }

    #[test]
    fn expired_jobs_fail_with_5_4_7_and_a_bounded_diagnostic() {
        let mut j = job(&[deferred()]);
        j.envelope.recipients[0].diagnostic = Some("x".repeat(2000));
        let now = j.envelope.arrival + Duration::from_secs(5 * 86400);
        let p = plan(j, now, &QueueConfig::default(), NO_WARN);
        assert!(p.defer.is_none());
        let b = p.bounce.unwrap();
        let r = &b.envelope.recipients[0];
        assert_eq!(
            r.status,
            RcptStatus::Failed {
                code: status::EXPIRED
            }
        );
        let d = r.diagnostic.as_deref().unwrap();
        assert!(d.starts_with("x-postern; delivery time expired"));
        assert!(d.len() <= crate::mail::job::MAX_DIAGNOSTIC);
    }

    #[test]
    fn a_concluded_job_splits_the_same_every_time() {
        let mut j = job(&[RcptStatus::Delivered, deferred(), failed()]);
        let now = j.envelope.arrival + Duration::from_secs(10);
        conclude(&mut j, now, &QueueConfig::default(), NO_WARN);
        let first = split(&j);
        assert_eq!(split(&j), first);
        // The deferred part, split again (a crash after it was written),
        // is itself: no bounce, the same next attempt.
        let again = split(first.defer.as_ref().unwrap());
        assert_eq!(again.bounce, None);
        assert_eq!(again.defer, first.defer);
    }

    #[test]
    fn one_delay_warning_per_message_at_the_attempt_past_the_time() {
        let q = QueueConfig::default();
        let four_hours = Duration::from_secs(4 * 3600);
        let mut j = job(&[deferred(), deferred(), RcptStatus::Delivered]);
        j.envelope.recipients[1].notify = Notify::parse("FAILURE").unwrap();
        let t0 = j.envelope.arrival;
        // Too early: no warning.
        let p = plan(j.clone(), t0 + Duration::from_secs(3600), &q, four_hours);
        assert_eq!(p.warn, None);
        // Past the time: a warning naming only who asked for it (NOTIFY
        // unset means FAILURE,DELAY), and the job remembers it.
        j.envelope.attempts = 6;
        let mut concluded = j.clone();
        conclude(&mut concluded, t0 + four_hours, &q, four_hours);
        assert_eq!(concluded.envelope.delay_warned, 6);
        let first = split(&concluded);
        let w = first.warn.as_ref().expect("a warning");
        assert_eq!(w.envelope.recipients.len(), 1);
        assert_eq!(w.envelope.recipients[0].address.as_str(), "r0@example.net");
        // Split again (after a crash): the same warning.
        assert_eq!(split(&concluded).warn, first.warn);
        // The next attempt warns no more.
        let mut next = first.defer.clone().unwrap();
        next.envelope.attempts = 7;
        conclude(&mut next, t0 + 2 * four_hours, &q, four_hours);
        assert_eq!(next.envelope.delay_warned, 6);
        assert_eq!(split(&next).warn, None);
        // Warnings off.
        let p = plan(j, t0 + 10 * four_hours, &q, NO_WARN);
        assert_eq!(p.warn, None);
    }
}

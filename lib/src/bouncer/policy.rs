//! Who is told what: the bouncer's decisions, apart from its I/O.
//!
//! Per recipient, DSN NOTIFY (RFC 3461 section 4.1) says which notices
//! its sender wants; unset means the default, FAILURE and DELAY. Per
//! message, no notice at all goes where it could start a loop: to the
//! null sender (RFC 5321 section 4.5.5), to a MAILER-DAEMON or postmaster
//! sender, about a message that is itself a report (RFC 3464 section 2:
//! never a DSN about a DSN), or about one marked `Auto-Submitted:` (RFC
//! 3834 section 2). The notice postern writes has the null sender, so it
//! can never be answered in turn.

use std::fmt;

use super::original::Facts;
use crate::mail::address::{Address, Sender};
use crate::mail::job::{Job, RcptStatus, Recipient};

/// The Action of a recipient in a notice (RFC 3464 section 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// It failed for good.
    Failed,
    /// It waits, and is still being tried.
    Delayed,
    /// It was handed to the next mail system, which does not report
    /// delivery itself (NOTIFY=SUCCESS). postern never makes the final
    /// delivery into a mailbox, so it never says `delivered`: it can only
    /// vouch for the hand-over.
    Relayed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Relayed => "relayed",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a bounce entry gets no notice at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Silence {
    /// The sender is the null sender `<>`: a bounce, which is never
    /// answered.
    NullSender,
    /// The sender is MAILER-DAEMON or postmaster (in any case, at any
    /// domain): another mail system's bounce or report.
    DaemonSender,
    /// The message is itself a delivery or disposition report.
    Report,
    /// The message says `Auto-Submitted:` with a value other than `no`.
    AutoSubmitted,
    /// No recipient asked for a notice of what happened to it.
    NotRequested,
    /// The sender is an SRS address of ours that does not verify
    /// (forged, damaged, or expired): it cannot be told where to go.
    UnverifiableSrs(String),
}

impl fmt::Display for Silence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Silence::NullSender => f.write_str("the sender is <>"),
            Silence::DaemonSender => f.write_str("the sender is MAILER-DAEMON or postmaster"),
            Silence::Report => f.write_str("the message is itself a report"),
            Silence::AutoSubmitted => f.write_str("the message is Auto-Submitted"),
            Silence::NotRequested => f.write_str("no recipient asked for one (NOTIFY)"),
            Silence::UnverifiableSrs(why) => write!(f, "the SRS sender does not verify: {why}"),
        }
    }
}

/// The notice a recipient's NOTIFY asks for, given where it stands.
pub fn action(r: &Recipient) -> Option<Action> {
    let n = &r.notify;
    let default = n.is_unset();
    match r.status {
        RcptStatus::Failed { .. } if default || n.failure => Some(Action::Failed),
        RcptStatus::Deferred { .. } if default || n.delay => Some(Action::Delayed),
        // A next hop that took NOTIFY and ORCPT reports success itself.
        RcptStatus::Delivered if n.success && !r.dsn_passed => Some(Action::Relayed),
        _ => None,
    }
}

/// MAILER-DAEMON or postmaster, in any case, at any domain (a quoted
/// local part counts as its content).
pub fn is_daemon(a: &Address) -> bool {
    let local = a.local_part();
    let local = local
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(local);
    local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
}

/// Whether mail from `sender` may be answered at all.
pub fn answerable(sender: &Sender) -> Result<&Address, Silence> {
    match sender {
        Sender::Null => Err(Silence::NullSender),
        Sender::Mailbox(a) if is_daemon(a) => Err(Silence::DaemonSender),
        Sender::Mailbox(a) => Ok(a),
    }
}

/// The recipients of `job` to report, each with its action, in the
/// order of the job; or why there is no notice. `facts` are those of
/// the job's message ([`Facts::of`]).
pub fn decide(job: &Job, facts: &Facts) -> Result<Vec<(usize, Action)>, Silence> {
    answerable(&job.envelope.sender)?;
    if facts.is_report {
        return Err(Silence::Report);
    }
    if facts.auto_submitted {
        return Err(Silence::AutoSubmitted);
    }
    let notices: Vec<(usize, Action)> = job
        .envelope
        .recipients
        .iter()
        .enumerate()
        .filter_map(|(i, r)| action(r).map(|a| (i, a)))
        .collect();
    if notices.is_empty() {
        return Err(Silence::NotRequested);
    }
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::job::{Envelope, Notify, QueueId};
    use crate::mail::status;
    use std::time::SystemTime;

    fn failed() -> RcptStatus {
        RcptStatus::Failed {
            code: status::NO_SUCH_MAILBOX,
        }
    }

    fn deferred() -> RcptStatus {
        RcptStatus::Deferred {
            code: status::BAD_CONNECTION,
        }
    }

    fn rcpt(status: RcptStatus, notify: &str, passed: bool) -> Recipient {
        let mut r = Recipient::new(Address::parse("r@example.net").unwrap());
        r.status = status;
        if !notify.is_empty() {
            r.notify = Notify::parse(notify).unwrap();
        }
        r.dsn_passed = passed;
        r
    }

    /// The whole table: status x NOTIFY x dsn-passed.
    #[test]
    fn notify_table() {
        use Action::*;
        let rows: &[(RcptStatus, &str, bool, Option<Action>)] = &[
            (failed(), "", false, Some(Failed)),
            (failed(), "FAILURE", false, Some(Failed)),
            (failed(), "FAILURE,DELAY", false, Some(Failed)),
            (failed(), "SUCCESS,FAILURE,DELAY", false, Some(Failed)),
            (failed(), "DELAY", false, None),
            (failed(), "SUCCESS", false, None),
            (failed(), "NEVER", false, None),
            (deferred(), "", false, Some(Delayed)),
            (deferred(), "DELAY", false, Some(Delayed)),
            (deferred(), "FAILURE,DELAY", false, Some(Delayed)),
            (deferred(), "FAILURE", false, None),
            (deferred(), "SUCCESS", false, None),
            (deferred(), "NEVER", false, None),
            (RcptStatus::Delivered, "", false, None),
            (RcptStatus::Delivered, "FAILURE,DELAY", false, None),
            (RcptStatus::Delivered, "SUCCESS", false, Some(Relayed)),
            (
                RcptStatus::Delivered,
                "SUCCESS,FAILURE",
                false,
                Some(Relayed),
            ),
            (RcptStatus::Delivered, "SUCCESS", true, None),
            (RcptStatus::Delivered, "NEVER", false, None),
            (RcptStatus::Pending, "", false, None),
            (RcptStatus::Pending, "SUCCESS,FAILURE,DELAY", false, None),
        ];
        for (status, notify, passed, want) in rows {
            let r = rcpt(status.clone(), notify, *passed);
            assert_eq!(
                action(&r),
                *want,
                "{status} NOTIFY={notify:?} passed={passed}"
            );
        }
    }

    fn job(sender: &str, rcpts: Vec<Recipient>) -> Job {
        let mut env = Envelope::new(
            QueueId::parse("Q1").unwrap(),
            SystemTime::UNIX_EPOCH,
            Sender::parse(sender).unwrap(),
        );
        env.recipients = rcpts;
        Job {
            envelope: env,
            message: b"Subject: x\n\n".to_vec(),
        }
    }

    #[test]
    fn loops_are_never_answered() {
        let one = || vec![rcpt(failed(), "", false)];
        let none = Facts::default();
        assert_eq!(decide(&job("", one()), &none), Err(Silence::NullSender));
        for daemon in [
            "MAILER-DAEMON@example.org",
            "mailer-daemon@x.example",
            "Postmaster@example.org",
            "POSTMASTER@sub.example.net",
            "\"mailer-daemon\"@example.org",
        ] {
            assert_eq!(
                decide(&job(daemon, one()), &none),
                Err(Silence::DaemonSender),
                "{daemon}"
            );
        }
        let report = Facts {
            is_report: true,
            ..Facts::default()
        };
        assert_eq!(
            decide(&job("a@example.org", one()), &report),
            Err(Silence::Report)
        );
        let auto = Facts {
            auto_submitted: true,
            ..Facts::default()
        };
        assert_eq!(
            decide(&job("a@example.org", one()), &auto),
            Err(Silence::AutoSubmitted)
        );
        // Near misses are answered.
        for sender in ["mailer-daemon-x@example.org", "postmasters@example.org"] {
            assert!(decide(&job(sender, one()), &none).is_ok(), "{sender}");
        }
    }

    #[test]
    fn one_notice_lists_every_recipient_that_asked() {
        let j = job(
            "a@example.org",
            vec![
                rcpt(failed(), "NEVER", false),
                rcpt(failed(), "", false),
                rcpt(RcptStatus::Delivered, "SUCCESS", false),
                rcpt(RcptStatus::Delivered, "", false),
            ],
        );
        assert_eq!(
            decide(&j, &Facts::default()),
            Ok(vec![(1, Action::Failed), (2, Action::Relayed)])
        );
        let quiet = job("a@example.org", vec![rcpt(failed(), "NEVER", false)]);
        assert_eq!(
            decide(&quiet, &Facts::default()),
            Err(Silence::NotRequested)
        );
    }
}

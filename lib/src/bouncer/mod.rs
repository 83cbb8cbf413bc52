//! postern-bouncer(8) as a library operation: a job with failed, delayed
//! or relayed recipients in, a delivery status notification (RFC 3464)
//! for its sender out, as a new job with the null sender for the
//! deliverer; and (`drain`) the same for every entry of the spool's
//! `bounce/` queue.
//!
//! `policy` decides who is told (NOTIFY, loops), `original` reads the
//! message's headers and picks what is returned, `dsn` writes the
//! notification; this module does the I/O around them: the SRS secrets,
//! the spool, the log.

pub mod dsn;
pub mod original;
pub mod policy;

use std::time::SystemTime;

use crate::config::Config;
use crate::exit::{Failure, ToFailure};
use crate::log::Log;
use crate::mail::address::{Address, Sender};
use crate::mail::job::{Envelope, Job, Notify, QueueId, Recipient, Ret};
use crate::rewriter::srs::{Srs, SrsConfigError};
use crate::stage::Stage;
use crate::store::spool::{Entry, Queue, Spool, SpoolError};
use policy::{Action, Silence};

/// What [`Bouncer::notify`] made of a job.
#[derive(Debug)]
pub enum Outcome {
    /// A notification job for the deliverer.
    Notice(Box<Job>),
    /// No notification, and why.
    Silent(Silence),
}

/// What a [`Bouncer::drain`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Notifications put into `deferred/`.
    pub notices: usize,
    /// Bounce entries that needed none (see [`Silence`]).
    pub silent: usize,
    /// Files moved to `corrupt/`.
    pub corrupt: usize,
    /// Files that could not be read, left where they were.
    pub unreadable: usize,
}

/// The name of the notification made from bounce entry `name` in
/// `deferred/`: a run that dies between writing it and removing the
/// entry writes the same file again, not a second notice.
pub fn notice_name(name: &str) -> String {
    format!("{name}-dsn")
}

/// The bouncer stage: its configuration, its log, and the SRS codec when
/// `[srs]` is set up (its secrets file exists).
pub struct Bouncer<'a> {
    config: &'a Config,
    log: &'a Log,
    srs: Option<Srs>,
}

impl<'a> Bouncer<'a> {
    /// Loads the SRS secrets, if there is a secrets file: without one,
    /// no sender is taken for an SRS address of ours. A secrets file that
    /// exists but cannot be used (mode, owner, content) is an error, as it
    /// is for postern-rewriter(1): a sender rewritten with it could not
    /// be told otherwise.
    pub fn open(config: &'a Config, log: &'a Log) -> Result<Bouncer<'a>, Failure> {
        let srs = match Srs::from_config(config) {
            Ok(srs) => Some(srs),
            Err(SrsConfigError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => {
                let f = e.to_failure();
                log.error(format_args!("{f}"));
                return Err(f);
            }
        };
        Ok(Bouncer { config, log, srs })
    }

    /// Whom to tell about mail from `sender`: the sender itself, or, for
    /// an SRS address in our SRS domain, the address it stands for
    /// (reversed here, as postern-rewriter(1) would reverse a bounce sent
    /// to it). One that does not verify is never written to.
    fn notice_recipient(&self, sender: &Address, now: SystemTime) -> Result<Address, Silence> {
        let Some(srs) = &self.srs else {
            return Ok(sender.clone());
        };
        let domain = sender.domain();
        let ours = domain.eq_ignore_ascii_case(srs.domain())
            || idna::domain_to_ascii(domain).is_ok_and(|d| d.eq_ignore_ascii_case(srs.domain()));
        if !ours {
            return Ok(sender.clone());
        }
        match srs.reverse(sender, now) {
            Ok(Some(original)) => {
                // The original may itself be a daemon: no notice then either.
                if policy::is_daemon(&original) {
                    return Err(Silence::DaemonSender);
                }
                Ok(original)
            }
            Ok(None) => Ok(sender.clone()),
            Err(e) => Err(Silence::UnverifiableSrs(e.to_string())),
        }
    }

    /// The notification for `job` at `now` under the queue id `id`, or
    /// why there is none. Decides and composes; no I/O.
    pub fn notify(&self, job: &Job, now: SystemTime, id: QueueId) -> Outcome {
        let facts = original::Facts::of(&job.message);
        let picked = match policy::decide(job, &facts) {
            Ok(p) => p,
            Err(s) => return Outcome::Silent(s),
        };
        let Some(sender) = job.envelope.sender.address() else {
            return Outcome::Silent(Silence::NullSender);
        };
        let to = match self.notice_recipient(sender, now) {
            Ok(to) => to,
            Err(s) => return Outcome::Silent(s),
        };
        let recipients: Vec<(&Recipient, Action)> = picked
            .iter()
            .map(|&(i, a)| (&job.envelope.recipients[i], a))
            .collect();
        // The whole message only with a failure, and only if asked for
        // (RFC 3461 section 4.3); headers for delays and relays.
        let full = job.envelope.ret == Some(Ret::Full)
            && recipients.iter().any(|(_, a)| *a == Action::Failed);
        let returned =
            original::returned(&job.message, full, self.config.bouncer.return_size_limit);
        let notice = dsn::Notice {
            hostname: &self.config.hostname,
            reporting_mta: self.config.helo_name(),
            to: &to,
            queue_id: &job.envelope.queue_id,
            notice_id: &id,
            envid: job.envelope.envid.as_deref(),
            arrival: job.envelope.arrival,
            date: now,
            retry_until: job.envelope.arrival + self.config.queue.maximal_queue_lifetime,
            recipients,
            original: returned,
        };
        let message = dsn::compose(&notice);
        let mut envelope = Envelope::new(id, now, Sender::Null);
        let mut r = Recipient::new(to.clone());
        r.notify = Notify {
            never: true,
            ..Notify::default()
        };
        envelope.recipients.push(r);
        envelope.next_attempt = Some(now);
        envelope.eight_bit = !message.is_ascii();
        Outcome::Notice(Box::new(Job { envelope, message }))
    }

    /// [`Bouncer::notify`] under a fresh queue id, logged.
    pub fn handle(&self, job: &Job, now: SystemTime) -> Result<Option<Job>, Failure> {
        let outcome = self.notify(job, now, QueueId::fresh()?);
        self.log_outcome(job, &outcome);
        Ok(match outcome {
            Outcome::Notice(j) => Some(*j),
            Outcome::Silent(_) => None,
        })
    }

    /// One line per job: queue ids, counts and actions, or why nothing
    /// was sent; addresses only with `log_addresses`.
    fn log_outcome(&self, job: &Job, outcome: &Outcome) {
        let qid = &job.envelope.queue_id;
        match outcome {
            Outcome::Notice(n) => {
                let count = |a: Action| {
                    job.envelope
                        .recipients
                        .iter()
                        .filter(|r| policy::action(r) == Some(a))
                        .count()
                };
                let to = if self.log.shows_addresses() {
                    format!(" to=<{}>", n.envelope.recipients[0].address)
                } else {
                    String::new()
                };
                self.log.info(format_args!(
                    "{qid}: sender notification {}: failed={} delayed={} relayed={} size={}{to}",
                    n.envelope.queue_id,
                    count(Action::Failed),
                    count(Action::Delayed),
                    count(Action::Relayed),
                    n.message.len(),
                ));
            }
            Outcome::Silent(why) => {
                self.log.info(format_args!(
                    "{qid}: no sender notification: {why} ({} recipient(s))",
                    job.envelope.recipients.len()
                ));
            }
        }
    }

    /// Turns every entry of `spool`'s `bounce/` into a notification in
    /// `deferred/`, due at `now`, named after the entry
    /// ([`notice_name`]), then removes the entry. A file that fails
    /// authentication or holds no job goes to `corrupt/`; one that cannot
    /// be read stays, is logged, and makes the drain fail (75) once the
    /// others are done. The caller holds the runner lock
    /// ([`Spool::lock_runner`]): a queue runner calls this under its own.
    pub fn drain(&self, spool: &Spool, now: SystemTime) -> Result<DrainReport, Failure> {
        let mut report = DrainReport::default();
        let mut first_problem: Option<SpoolError> = None;
        let mut names: Vec<String> = spool
            .list(Queue::Bounce)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.sort();
        for name in names {
            let entry = Entry {
                queue: Queue::Bounce,
                name,
            };
            let job = match spool.load(&entry) {
                Ok(job) => job,
                Err(e) if e.is_corrupt_file() => {
                    self.log.error(format_args!("{e}; moved to corrupt/"));
                    spool.move_to(&entry, Queue::Corrupt)?;
                    report.corrupt += 1;
                    continue;
                }
                Err(e) => {
                    self.log.error(format_args!("{e}; left in place"));
                    report.unreadable += 1;
                    first_problem.get_or_insert(e);
                    continue;
                }
            };
            match self.handle(&job, now)? {
                Some(notice) => {
                    let name = notice_name(&entry.name);
                    spool
                        .put(Queue::Deferred, &name, &notice, now)
                        .map_err(|e| self.cannot_spool(&job, e))?;
                    report.notices += 1;
                }
                None => report.silent += 1,
            }
            spool
                .remove(&entry)
                .map_err(|e| self.cannot_spool(&job, e))?;
        }
        match first_problem {
            None => Ok(report),
            Some(e) => Err(Failure::tempfail(format!(
                "{} bounce file(s) could not be read and were left in place; first: {e}",
                report.unreadable
            ))),
        }
    }

    fn cannot_spool(&self, job: &Job, e: SpoolError) -> Failure {
        self.log
            .error(format_args!("{}: cannot spool: {e}", job.envelope.queue_id));
        e.to_failure()
    }
}

impl Stage for Bouncer<'_> {
    /// One job in, its notification (if any) out.
    fn process(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure> {
        Ok(self.handle(&job, now)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::job::RcptStatus;
    use crate::mail::status;
    use crate::rewriter::srs::SrsSecrets;
    use mailparse::MailHeaderMap;
    use std::time::Duration;

    /// 2026-11-23T16:31:44Z.
    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_451_504)
    }

    fn config() -> Config {
        let mut c = Config {
            hostname: "mx.test.example".into(),
            ..Default::default()
        };
        c.srs.domain = "srs.test.example".into();
        c
    }

    fn bouncer<'a>(config: &'a Config, log: &'a Log, srs: bool) -> Bouncer<'a> {
        let srs = srs.then(|| {
            Srs::new(
                &config.srs,
                config.srs_domain(),
                SrsSecrets::new(["test-srs-secret"]).unwrap(),
            )
            .unwrap()
        });
        Bouncer { config, log, srs }
    }

    fn id() -> QueueId {
        QueueId::parse("DSN0123456789ABC").unwrap()
    }

    pub(crate) fn job(sender: &str, message: &[u8]) -> Job {
        let mut env = Envelope::new(
            QueueId::parse("8F3A2C91D04B7E65").unwrap(),
            t0(),
            Sender::parse(sender).unwrap(),
        );
        let mut carol = Recipient::new(Address::parse("carol@example.net").unwrap());
        carol.settle(
            RcptStatus::Failed {
                code: status::NO_SUCH_MAILBOX,
            },
            Some("smtp; 550 5.1.1 <carol@example.net>: no such user"),
        );
        carol.orcpt = Some("rfc822;info@example.com".into());
        carol.remote_mta = Some("dns; relay.example.net".into());
        carol.last_attempt = Some(t0() + Duration::from_secs(60));
        env.recipients.push(carol);
        Job {
            envelope: env,
            message: message.to_vec(),
        }
    }

    fn notice(b: &Bouncer<'_>, j: &Job) -> Job {
        match b.notify(j, t0() + Duration::from_secs(120), id()) {
            Outcome::Notice(n) => *n,
            Outcome::Silent(s) => panic!("silent: {s}"),
        }
    }

    /// Parses a notification and returns its three parts' content types
    /// and bodies, checking the envelope and top-level headers.
    fn parts(n: &Job) -> Vec<(String, Vec<u8>)> {
        assert_eq!(n.envelope.sender, Sender::Null);
        assert_eq!(n.envelope.recipients.len(), 1);
        assert!(n.envelope.recipients[0].notify.never);
        let m = mailparse::parse_mail(&n.message).expect("parses");
        assert_eq!(m.ctype.mimetype, "multipart/report");
        assert_eq!(m.ctype.params["report-type"], "delivery-status");
        assert_eq!(
            m.headers.get_first_value("Auto-Submitted").as_deref(),
            Some("auto-replied")
        );
        assert_eq!(
            m.headers.get_first_value("From").as_deref(),
            Some("\"Mail Delivery System\" <MAILER-DAEMON@mx.test.example>")
        );
        assert!(m.headers.get_first_value("Message-ID").is_some());
        assert!(m.headers.get_first_value("Date").is_some());
        assert_eq!(
            m.headers.get_first_value("MIME-Version").as_deref(),
            Some("1.0")
        );
        for line in n.message.split(|&b| b == b'\n') {
            assert!(line.len() <= 999, "a line of {} octets", line.len());
        }
        assert!(
            !n.message.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "a bare LF"
        );
        m.subparts
            .iter()
            .map(|p| (p.ctype.mimetype.clone(), p.get_body_raw().unwrap()))
            .collect()
    }

    #[test]
    fn a_failure_notice_has_every_part_and_field() {
        let c = config();
        let log = Log::discard("test");
        let b = bouncer(&c, &log, false);
        let mut j = job(
            "alice@example.org",
            b"Subject: hi\nFrom: alice@example.org\n\nbody\n",
        );
        j.envelope.envid = Some("ENV-1".into());
        let n = notice(&b, &j);
        assert_eq!(
            n.envelope.recipients[0].address.as_str(),
            "alice@example.org"
        );
        let m = mailparse::parse_mail(&n.message).unwrap();
        assert_eq!(
            m.headers.get_first_value("Subject").as_deref(),
            Some("Undelivered Mail Returned to Sender")
        );
        assert_eq!(
            m.headers.get_first_value("To").as_deref(),
            Some("<alice@example.org>")
        );
        let p = parts(&n);
        let types: Vec<&str> = p.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "text/plain",
                "message/delivery-status",
                "text/rfc822-headers"
            ]
        );
        let text = String::from_utf8(p[0].1.clone()).unwrap();
        assert!(text.contains("could not be delivered"), "{text}");
        assert!(text.contains("<carol@example.net>: 5.1.1"), "{text}");
        let ds = String::from_utf8(p[1].1.clone()).unwrap();
        for f in [
            "Reporting-MTA: dns; mx.test.example\r\n",
            "X-Postern-Queue-ID: 8F3A2C91D04B7E65\r\n",
            "Original-Envelope-Id: ENV-1\r\n",
            "Arrival-Date: Mon, 23 Nov 2026 16:31:44 +0000\r\n",
            "\r\n\r\nOriginal-Recipient: rfc822;info@example.com\r\n",
            "Final-Recipient: rfc822; carol@example.net\r\n",
            "Action: failed\r\n",
            "Status: 5.1.1\r\n",
            "Remote-MTA: dns; relay.example.net\r\n",
            "Diagnostic-Code: smtp; 550 5.1.1 <carol@example.net>: no such user\r\n",
            "Last-Attempt-Date: Mon, 23 Nov 2026 16:32:44 +0000\r\n",
        ] {
            assert!(ds.contains(f), "{f:?} missing in\n{ds}");
        }
        assert!(!ds.contains("Will-Retry-Until"));
        assert_eq!(p[2].1, b"Subject: hi\r\nFrom: alice@example.org\r\n");
    }

    #[test]
    fn delays_and_relays_return_headers_even_with_ret_full() {
        let c = config();
        let log = Log::discard("test");
        let b = bouncer(&c, &log, false);
        let mut j = job("alice@example.org", b"Subject: hi\n\nbody\n");
        j.envelope.ret = Some(Ret::Full);
        let r = &mut j.envelope.recipients[0];
        r.settle(
            RcptStatus::Deferred {
                code: status::BAD_CONNECTION,
            },
            Some("x-postern; connection refused"),
        );
        let mut dave = Recipient::new(Address::parse("dave@example.net").unwrap());
        dave.status = RcptStatus::Delivered;
        dave.notify = Notify::parse("SUCCESS").unwrap();
        j.envelope.recipients.push(dave);
        let n = notice(&b, &j);
        let m = mailparse::parse_mail(&n.message).unwrap();
        assert_eq!(
            m.headers.get_first_value("Subject").as_deref(),
            Some("Delayed Mail (still being retried)")
        );
        let p = parts(&n);
        assert_eq!(p[2].0, "text/rfc822-headers");
        let ds = String::from_utf8(p[1].1.clone()).unwrap();
        assert!(ds.contains("Action: delayed\r\nStatus: 4.4.2\r\n"), "{ds}");
        assert!(ds.contains("Diagnostic-Code: x-postern; connection refused\r\n"));
        // Arrival plus the default maximal_queue_lifetime of 5 days.
        assert!(
            ds.contains("Will-Retry-Until: Sat, 28 Nov 2026 16:31:44 +0000\r\n"),
            "{ds}"
        );
        assert!(
            ds.contains(
                "Final-Recipient: rfc822; dave@example.net\r\nAction: relayed\r\nStatus: 2.0.0\r\n"
            ),
            "{ds}"
        );
        let text = String::from_utf8(p[0].1.clone()).unwrap();
        assert!(text.contains("keeps trying until"), "{text}");
        assert!(text.contains("handed on to the next mail system"), "{text}");
    }

    #[test]
    fn ret_full_over_the_limit_returns_headers_and_says_so() {
        let mut c = config();
        c.bouncer.return_size_limit = 100;
        let log = Log::discard("test");
        let b = bouncer(&c, &log, false);
        let mut j = job(
            "alice@example.org",
            &[b"Subject: big\n\n".as_slice(), &[b'x'; 200]].concat(),
        );
        j.envelope.ret = Some(Ret::Full);
        let n = notice(&b, &j);
        let p = parts(&n);
        assert_eq!(
            p[2],
            (
                "text/rfc822-headers".to_string(),
                b"Subject: big\r\n".to_vec()
            )
        );
        let text = String::from_utf8(p[0].1.clone()).unwrap();
        assert!(text.contains("too large to be returned whole"), "{text}");
        assert!(text.contains("the limit is 100 bytes"), "{text}");
    }

    #[test]
    fn malformed_originals_still_give_a_clean_notice() {
        let c = config();
        let log = Log::discard("test");
        let b = bouncer(&c, &log, false);
        // No separator: the header lines before the first body line.
        let n = notice(
            &b,
            &job(
                "alice@example.org",
                b"Subject: x\nTo: y@z.example\nbody at once\n",
            ),
        );
        assert_eq!(parts(&n)[2].1, b"Subject: x\r\nTo: y@z.example\r\n");
        // Not even a header: an empty headers part.
        let n = notice(&b, &job("alice@example.org", b"just text\n"));
        assert!(parts(&n)[2].1.is_empty());
        // 8-bit headers, UTF-8 or not: returned as they are, 8bit.
        let raw = b"Subject: caf\xc3\xa9 \xe9\xff\nFrom: a@b.example\n\nbody\n";
        let n = notice(&b, &job("alice@example.org", raw));
        assert!(n.envelope.eight_bit);
        assert_eq!(
            parts(&n)[2].1,
            b"Subject: caf\xc3\xa9 \xe9\xff\r\nFrom: a@b.example\r\n"
        );
        let text = String::from_utf8_lossy(&n.message);
        assert!(text.contains("Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered Message Headers\r\nContent-Transfer-Encoding: 8bit\r\n"), "{text}");
        // A UTF-8 recipient: xtext in the report, as it is in the text.
        let mut j = job("alice@example.org", b"Subject: x\n\n");
        j.envelope.recipients[0].address = Address::parse("j\u{f6}rg@example.net").unwrap();
        let n = notice(&b, &j);
        let p = parts(&n);
        let ds = String::from_utf8(p[1].1.clone()).unwrap();
        assert!(
            ds.contains("Final-Recipient: utf-8; j\\x{F6}rg@example.net\r\n"),
            "{ds}"
        );
    }

    #[test]
    fn srs_senders_are_reversed_and_forged_ones_get_nothing() {
        let c = config();
        let log = Log::discard("test");
        let b = bouncer(&c, &log, true);
        let srs = b.srs.as_ref().unwrap();
        let carol = Address::parse("carol@sender.example").unwrap();
        let rewritten = srs.forward(&carol, t0()).unwrap();
        let n = notice(&b, &job(rewritten.as_str(), b"Subject: x\n\n"));
        assert_eq!(n.envelope.recipients[0].address, carol);
        let m = mailparse::parse_mail(&n.message).unwrap();
        assert_eq!(
            m.headers.get_first_value("To").as_deref(),
            Some("<carol@sender.example>")
        );
        // Forged: a good shape, a wrong hash.
        let forged = "SRS0=abcd=AA=sender.example=carol@srs.test.example";
        assert!(matches!(
            b.notify(&job(forged, b"Subject: x\n\n"), t0(), id()),
            Outcome::Silent(Silence::UnverifiableSrs(_))
        ));
        // Expired: signed long ago.
        let old = srs
            .forward(&carol, t0() - Duration::from_secs(60 * 86400))
            .unwrap();
        assert!(matches!(
            b.notify(&job(old.as_str(), b"Subject: x\n\n"), t0(), id()),
            Outcome::Silent(Silence::UnverifiableSrs(_))
        ));
        // A plain user of the SRS domain, and a foreign SRS address: as they are.
        for sender in [
            "bob@srs.test.example",
            "SRS0=abcd=AA=x.example=y@other.example",
        ] {
            let n = notice(&b, &job(sender, b"Subject: x\n\n"));
            assert_eq!(n.envelope.recipients[0].address.as_str(), sender);
        }
        // Without the secrets the SRS domain is not ours to check.
        let plain = bouncer(&c, &log, false);
        let n = notice(&plain, &job(forged, b"Subject: x\n\n"));
        assert_eq!(n.envelope.recipients[0].address.as_str(), forged);
        // An SRS address that stands for a daemon: silence.
        let daemon = srs
            .forward(&Address::parse("MAILER-DAEMON@x.example").unwrap(), t0())
            .unwrap();
        assert!(matches!(
            b.notify(&job(daemon.as_str(), b"Subject: x\n\n"), t0(), id()),
            Outcome::Silent(Silence::DaemonSender)
        ));
    }

    #[test]
    fn notices_are_never_about_notices() {
        let c = config();
        let log = Log::discard("test");
        let b = bouncer(&c, &log, false);
        let first = notice(&b, &job("alice@example.org", b"Subject: x\n\n"));
        // The notice itself failing: null sender, and a report.
        let mut again = first.clone();
        again.envelope.recipients[0].notify = Notify::default();
        again.envelope.recipients[0].settle(
            RcptStatus::Failed {
                code: status::NO_SUCH_MAILBOX,
            },
            None,
        );
        assert!(matches!(
            b.notify(&again, t0(), id()),
            Outcome::Silent(Silence::NullSender)
        ));
        again.envelope.sender = Sender::parse("someone@example.org").unwrap();
        assert!(matches!(
            b.notify(&again, t0(), id()),
            Outcome::Silent(Silence::Report)
        ));
    }

    /// A 50 MB original with RET=FULL: the notice carries its headers,
    /// says why, and stays small.
    #[test]
    fn a_50_mb_original_is_returned_as_its_headers() {
        let c = config();
        let log = Log::discard("test");
        let b = bouncer(&c, &log, false);
        let mut message = b"Subject: huge\nFrom: alice@example.org\n\n".to_vec();
        message.resize(50 << 20, b'x');
        let mut j = job("alice@example.org", &message);
        j.envelope.ret = Some(Ret::Full);
        let n = notice(&b, &j);
        assert!(n.message.len() < 10_000, "{} bytes", n.message.len());
        let p = parts(&n);
        assert_eq!(p[2].0, "text/rfc822-headers");
        assert_eq!(p[2].1, b"Subject: huge\r\nFrom: alice@example.org\r\n");
        let text = String::from_utf8(p[0].1.clone()).unwrap();
        assert!(text.contains("too large to be returned whole"), "{text}");
    }
}

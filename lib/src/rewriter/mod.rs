//! postern-rewriter(1) as a library operation: aliases resolved for every
//! recipient in one of our domains, SRS for the envelope sender of mail
//! forwarded off them (and reversed for bounces coming back), the trace
//! headers, and rate limits.
//!
//! One job in, at most two out: the copy for forwarded targets carries the
//! SRS sender, the other (recipients passed on as they were, local
//! mailboxes, reversed bounces) the sender as it came. A recipient that
//! must wait (DNS failed, a domain not verified, a rate limit) defers the
//! whole job: nothing of it has been delivered yet, so Postfix retrying it
//! sends nothing twice.

pub mod explain;
pub mod headers;
pub mod limits;
pub mod srs;

use std::time::{Duration, SystemTime};

use crate::alias::lookup::{Aliases, Resolution, ResolveError, Step};
use crate::alias::records::DnsRecords;
use crate::alias::store::AliasStore;
use crate::alias::{Target, TxtSource, domain_key};
use crate::config::Config;
use crate::dns::DnsClient;
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::log::Log;
use crate::mail::address::{Address, Sender};
use crate::mail::job::{Job, RcptStatus, Recipient};
use crate::mail::status::{self, Status};
use crate::stage::Stage;
use srs::Srs;

/// What happened to one recipient, for the log and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The recipient as it came.
    pub recipient: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not one of ours, or already settled: passed on as it was.
    Passed,
    /// An SRS address reversed to the original sender (a bounce).
    Reversed(String),
    Forwarded {
        targets: Vec<String>,
        steps: Vec<Step>,
    },
    Dropped {
        steps: Vec<Step>,
    },
    Failed {
        status: Status,
        reason: String,
    },
}

/// The jobs a rewrite gives and what it decided.
#[derive(Debug, Default)]
pub struct Rewritten {
    pub jobs: Vec<Job>,
    pub decisions: Vec<Decision>,
}

/// The rewriter stage with its handles: the alias sources, the SRS
/// secrets, the counters.
pub struct Rewriter<'a> {
    config: &'a Config,
    log: &'a Log,
    aliases: Aliases,
    srs: Srs,
    /// The key sender counters are hashed under (from the store).
    sender_key: Option<[u8; 32]>,
    /// Count messages against the rate limits (off for `--dry-run`).
    pub counting: bool,
}

impl<'a> Rewriter<'a> {
    /// Opens the alias store (it must exist unless `aliases.dns_domains`
    /// serves every domain), loads the SRS secrets, and sets up DNS.
    pub fn open(config: &'a Config, log: &'a Log) -> Result<Rewriter<'a>, Failure> {
        let fail = |f: Failure| {
            log.error(format_args!("{f}"));
            f
        };
        let path = &config.aliases.store;
        let mut store = match AliasStore::open(path) {
            Ok(s) => Some(s),
            Err(crate::alias::store::StoreError::Missing { .. })
                if !config.aliases.dns_domains.is_empty() =>
            {
                None
            }
            Err(e) => return Err(fail(e.to_failure())),
        };
        let sender_key = match &mut store {
            Some(s) => Some(
                s.secret("sender-counters")
                    .map_err(|e| fail(e.to_failure()))?,
            ),
            None => None,
        };
        let srs = Srs::from_config(config).map_err(|e| fail(e.to_failure()))?;
        let txt = txt_source(config).map_err(fail)?;
        let aliases = Aliases::new(
            store,
            txt,
            &config.aliases.dns_domains,
            config.aliases.max_targets,
        );
        Ok(Rewriter {
            config,
            log,
            aliases,
            srs,
            sender_key,
            counting: true,
        })
    }

    pub fn aliases(&mut self) -> &mut Aliases {
        &mut self.aliases
    }

    pub fn srs(&self) -> &Srs {
        &self.srs
    }

    /// Rewrites one job. `Err`: the job as a whole must wait (4.x.x) or is
    /// refused for every recipient (5.x.x); nothing of it was passed on.
    pub fn rewrite(&mut self, job: Job, now: SystemTime) -> Result<Rewritten, Failure> {
        let Job {
            mut envelope,
            message,
        } = job;
        self.aliases
            .begin_job()
            .map_err(|e| self.logged(e.to_failure()))?;
        let mut decisions = Vec::with_capacity(envelope.recipients.len());
        let mut forwarded: Vec<Recipient> = Vec::new();
        let mut kept: Vec<Recipient> = Vec::new();
        let mut failed: Vec<Recipient> = Vec::new();
        let mut wait: Option<(Status, String)> = None;
        let mut our_domains: Vec<String> = Vec::new();
        let mut forwarded_from: Vec<String> = Vec::new();
        let mut kept_from: Vec<String> = Vec::new();
        let rewrites_sender = match envelope.sender.address() {
            Some(a) => self.srs.rewrites(a) && !self.is_ours(a)?,
            None => false,
        };
        for r in std::mem::take(&mut envelope.recipients) {
            let original = r.address.as_str().to_owned();
            if r.status != RcptStatus::Pending {
                decisions.push(Decision {
                    recipient: original,
                    outcome: Outcome::Passed,
                });
                kept.push(r);
                continue;
            }
            match self.srs.reverse(&r.address, now) {
                Ok(Some(sender)) => {
                    decisions.push(Decision {
                        recipient: original.clone(),
                        outcome: Outcome::Reversed(sender.as_str().to_owned()),
                    });
                    kept.push(derived(&r, sender));
                    kept_from.push(original);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    refuse(&mut decisions, &mut failed, r, e.status(), e.to_string());
                    continue;
                }
            }
            let resolution = match self.aliases.resolve(&r.address) {
                Ok(res) => res,
                Err(ResolveError::Dns(e)) => {
                    wait.get_or_insert((status::DNS_FAILURE, e.to_string()));
                    continue;
                }
                Err(ResolveError::Store(e)) => return Err(self.logged(e.to_failure())),
            };
            if !matches!(resolution, Resolution::NotOurs)
                && let Some(d) = domain_key(r.address.domain())
                && !our_domains.contains(&d)
            {
                our_domains.push(d);
            }
            match resolution {
                Resolution::NotOurs => {
                    decisions.push(Decision {
                        recipient: original,
                        outcome: Outcome::Passed,
                    });
                    kept.push(r);
                }
                Resolution::Forward { targets, steps } => {
                    let mut shown = Vec::with_capacity(targets.len());
                    for t in targets {
                        shown.push(t.to_string());
                        match t {
                            Target::Address(a) if rewrites_sender && !self.is_ours(&a)? => {
                                forwarded.push(derived(&r, a));
                                push_once(&mut forwarded_from, &original);
                            }
                            Target::Address(a) | Target::Mailbox(a) => {
                                kept.push(derived(&r, a));
                                push_once(&mut kept_from, &original);
                            }
                            // `Aliases::resolve` fails a recipient with a
                            // webhook target; none reach here.
                            Target::Url(_) => {}
                        }
                    }
                    decisions.push(Decision {
                        recipient: original,
                        outcome: Outcome::Forwarded {
                            targets: shown,
                            steps,
                        },
                    });
                }
                Resolution::Drop { steps } => {
                    decisions.push(Decision {
                        recipient: original,
                        outcome: Outcome::Dropped { steps },
                    });
                }
                Resolution::Fail { status, reason, .. } if status.is_transient() => {
                    wait.get_or_insert((status, reason.clone()));
                    decisions.push(Decision {
                        recipient: original,
                        outcome: Outcome::Failed { status, reason },
                    });
                }
                Resolution::Fail { status, reason, .. } => {
                    refuse(&mut decisions, &mut failed, r, status, reason);
                }
            }
        }
        let qid = envelope.queue_id.clone();
        if wait.is_none()
            && failed.is_empty()
            && forwarded.is_empty()
            && decisions.iter().all(|d| d.outcome == Outcome::Passed)
        {
            // Nothing of ours: the job goes on as it came, not copied and
            // not stamped (mail leaving through postern is not touched).
            envelope.recipients = kept;
            self.log_decisions(&qid, &decisions, 1);
            return Ok(Rewritten {
                jobs: vec![Job { envelope, message }],
                decisions,
            });
        }
        if let Some((status, reason)) = wait {
            return Err(self.logged(Failure::new(Sysexit::TempFail, status, reason)));
        }
        if self.counting
            && let Some(over) = self.count(&our_domains, &envelope.sender, now)?
        {
            return Err(self.logged(Failure::new(
                Sysexit::TempFail,
                status::RATE_LIMITED,
                format!(
                    "over the limit of {} messages a day for this {}; try again later",
                    over.limit, over.what
                ),
            )));
        }
        if forwarded.is_empty() && kept.is_empty() {
            if let Some(first) = failed.first() {
                // Every recipient refused: Postfix bounces the message with
                // this line (pipe(8) gives one status to all of them).
                let status = match &first.status {
                    RcptStatus::Failed { code } => *code,
                    _ => status::PERMANENT,
                };
                let exit = if status == status::NO_SUCH_MAILBOX {
                    Sysexit::NoUser
                } else {
                    Sysexit::Unavailable
                };
                let reason = first.diagnostic.clone().unwrap_or_default();
                self.log.info(format_args!("{qid}: refused dsn={status}"));
                return Err(Failure::new(exit, status, reason));
            }
            self.log.info(format_args!("{qid}: dropped by its aliases"));
            return Ok(Rewritten {
                jobs: Vec::new(),
                decisions,
            });
        }
        // Refused recipients ride with the others and reach the bounce
        // queue through the deliverer.
        kept.extend(failed);
        let mut jobs = Vec::with_capacity(2);
        let hostname = self.config.hostname.clone();
        let stamp = |recipients: Vec<Recipient>, from: &[String], sender: Sender| {
            let mut env = envelope.clone();
            env.recipients = recipients;
            env.sender = sender;
            // Only one alias's own address is shown to its targets: with
            // several, each would learn the others'.
            let original = (from.len() == 1).then(|| from[0].as_str());
            let lines = headers::trace(&message, original, &hostname, qid.as_str(), now);
            Job {
                envelope: env,
                message: headers::prepend(&lines, &message),
            }
        };
        if !forwarded.is_empty() {
            let sender = match self.srs.rewrite_sender(&envelope.sender, now) {
                Ok(s) => s,
                Err(e) => {
                    // Forwarding with the sender as it came fails SPF at
                    // worst; refusing the mail would lose it.
                    self.log
                        .warning(format_args!("{qid}: sender not rewritten: {e}"));
                    envelope.sender.clone()
                }
            };
            jobs.push(stamp(forwarded, &forwarded_from, sender));
        }
        if !kept.is_empty() {
            jobs.push(stamp(kept, &kept_from, envelope.sender.clone()));
        }
        self.log_decisions(&qid, &decisions, jobs.len());
        Ok(Rewritten { jobs, decisions })
    }

    fn is_ours(&mut self, a: &Address) -> Result<bool, Failure> {
        self.aliases
            .is_ours(a.domain())
            .map_err(|e| self.logged(e.to_failure()))
    }

    fn logged(&self, f: Failure) -> Failure {
        self.log.error(format_args!("{f}"));
        f
    }

    /// Counts the message against the limits of its domains and sender.
    fn count(
        &mut self,
        domains: &[String],
        sender: &Sender,
        now: SystemTime,
    ) -> Result<Option<limits::Over>, Failure> {
        let Some(key) = self.sender_key else {
            return Ok(None);
        };
        let day = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs() as i64
            / 86_400;
        let default = self.config.rewriter.messages_per_day_per_domain;
        let Some(store) = self.aliases.store() else {
            return Ok(None);
        };
        let mut with_limits = Vec::with_capacity(domains.len());
        for d in domains {
            let own = store
                .setting(d, "messages_per_day")
                .map_err(|e| e.to_failure())?;
            with_limits.push((d.clone(), own.parse().unwrap_or(default)));
        }
        let sender_key = sender
            .address()
            .map(|a| limits::sender_key(&key, a.as_str()));
        let per_sender = self.config.rewriter.messages_per_day_per_sender;
        limits::count(
            store,
            day,
            &with_limits,
            sender_key.as_deref().map(|k| (k, per_sender)),
        )
        .map_err(|e| self.logged(e.to_failure()))
    }

    fn log_decisions(&self, qid: &crate::mail::job::QueueId, decisions: &[Decision], jobs: usize) {
        let mut counts = [0usize; 5];
        for d in decisions {
            counts[match d.outcome {
                Outcome::Passed => 0,
                Outcome::Reversed(_) => 1,
                Outcome::Forwarded { .. } => 2,
                Outcome::Dropped { .. } => 3,
                Outcome::Failed { .. } => 4,
            }] += 1;
        }
        self.log.info(format_args!(
            "{qid}: passed={} reversed={} forwarded={} dropped={} refused={} jobs={}",
            counts[0], counts[1], counts[2], counts[3], counts[4], jobs
        ));
        if self.log.shows_addresses() {
            for d in decisions {
                self.log.info(format_args!(
                    "{qid}: to=<{}> {}",
                    d.recipient,
                    describe(&d.outcome)
                ));
            }
        }
    }
}

impl Stage for Rewriter<'_> {
    fn process(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure> {
        self.rewrite(job, now).map(|r| r.jobs)
    }
}

/// The TXT record source. A bad key file is a configuration error now;
/// the DNS client itself is made at the first lookup, so a rewriter whose
/// domains are all in the store never reads resolv.conf or starts a
/// runtime (one process per message in the pipe form).
fn txt_source(config: &Config) -> Result<Box<dyn TxtSource>, Failure> {
    if let Some(path) = &config.aliases.txt_key_file {
        crate::alias::txt::TxtKey::load(path).map_err(|e| e.to_failure())?;
    }
    Ok(Box::new(LazyDns {
        aliases: config.aliases.clone(),
        dns: config.dns.clone(),
        records: None,
    }))
}

struct LazyDns {
    aliases: crate::config::AliasesConfig,
    dns: crate::config::DnsConfig,
    records: Option<DnsRecords<DnsClient>>,
}

impl TxtSource for LazyDns {
    fn published(
        &mut self,
        domain: &str,
    ) -> Result<Option<std::sync::Arc<crate::alias::Published>>, crate::alias::LookupError> {
        if self.records.is_none() {
            let setup = |reason: String| crate::alias::LookupError {
                domain: domain.to_owned(),
                reason,
            };
            let client = DnsClient::new(&self.dns).map_err(|e| setup(e.to_string()))?;
            let records = DnsRecords::from_config(client, &self.aliases, &self.dns)
                .map_err(|e| setup(e.to_string()))?;
            self.records = Some(records);
        }
        match &mut self.records {
            Some(r) => r.published(domain),
            None => Ok(None),
        }
    }
}

/// A recipient made from `from` for `address`: its ORCPT (the address the
/// sender used) and NOTIFY carried over, so a DSN names what they wrote.
fn derived(from: &Recipient, address: Address) -> Recipient {
    let mut r = Recipient::new(address);
    r.orcpt = Some(
        from.orcpt
            .clone()
            .unwrap_or_else(|| format!("rfc822;{}", from.address)),
    );
    r.notify = from.notify;
    r
}

/// Records a refused recipient: its decision, and the recipient settled
/// as failed (it rides with the others to the bounce queue).
fn refuse(
    decisions: &mut Vec<Decision>,
    failed: &mut Vec<Recipient>,
    mut r: Recipient,
    code: Status,
    reason: String,
) {
    r.settle(RcptStatus::Failed { code }, Some(&reason));
    decisions.push(Decision {
        recipient: r.address.as_str().to_owned(),
        outcome: Outcome::Failed {
            status: code,
            reason,
        },
    });
    failed.push(r);
}

fn push_once(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

/// One line for a decision (with addresses: only for `--dry-run` and
/// `log_addresses`).
pub fn describe(o: &Outcome) -> String {
    let via = |steps: &[Step]| {
        steps
            .iter()
            .map(|s| format!("{} ({})", s.address, s.rule.origin))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match o {
        Outcome::Passed => "passed unchanged".into(),
        Outcome::Reversed(to) => format!("SRS reversed to <{to}>"),
        Outcome::Forwarded { targets, steps } => {
            format!("forwarded to {} via {}", targets.join(", "), via(steps))
        }
        Outcome::Dropped { steps } => format!("dropped via {}", via(steps)),
        Outcome::Failed { status, reason } => format!("refused {status} {reason}"),
    }
}

//! postern-scanner(1) as a library operation: content protection that
//! looks at attachments' types and at the sending server, not at what
//! people write. It runs right after the receiver.
//!
//! One job in, one job out per distinct set of tags (recipients whose
//! domains want different tags get different copies; most jobs stay
//! one). A recipient a rule refuses is settled here, `failed 5.7.x`, and
//! rides with the first copy: the deliverer files it for the bouncer,
//! which tells the sender. The job as a whole waits (75, 4.7.1) only when
//! it is greylisted, or when clamd cannot be asked and `clamd_failure` is
//! `defer`; nothing of it has been passed on then.
//!
//! Mail from this host (no client address, or a loopback one) is local
//! submission: greylisting, blocklists and SPF/DMARC are skipped for it.
//!
//! Order, for each pending recipient: the deny lists (refused), the allow
//! lists (the sender checks are skipped), greylisting, DNS blocklists,
//! SPF and DMARC, then the content rules of the recipient's domain:
//! viruses (clamd), executable attachments, phishing, adult content.
//! Each check runs at most once per message, and a content rule only if
//! a recipient's domain has it on (`has_*_protection` in the alias store).

pub mod adult;
pub mod attachments;
pub mod clamd;
pub mod dnsbl;
pub mod greylist;
pub mod headers;
pub mod lists;
pub mod phishing;
pub mod sender;

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::alias::domain_key;
use crate::alias::store::{AliasStore, StoreError};
use crate::config::{ClamdFailure, Config, DmarcAction, ScanAction};
use crate::dns::DnsClient;
use crate::exit::{Failure, Sysexit, ToFailure};
use crate::log::Log;
use crate::mail::job::{Envelope, Job, QueueId, RcptStatus, Recipient, Ret};
use crate::mail::status::{self, Status};
use crate::stage::Stage;
use headers::Edit;

/// Size of the chunks a message is streamed to clamd in.
const CLAMD_CHUNK: usize = 64 * 1024;
/// Tags of one kind written at most into one message.
const MAX_TAGS: usize = 5;

/// What happened to one recipient, for the log and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub recipient: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Settled before the scanner (passed on as it was).
    Settled,
    /// Passed on; with these tags (`(field, value)`), if any.
    Passed { tags: Vec<(String, String)> },
    /// Refused: the recipient is failed with this status and reason.
    Refused { status: Status, reason: String },
}

/// The rules of one recipient's domain.
#[derive(Debug, Default)]
struct Rules {
    virus: bool,
    executable: Option<ScanAction>,
    phishing: Option<ScanAction>,
    adult: Option<ScanAction>,
    allow: lists::List,
    deny: lists::List,
}

/// One pending recipient while its job is scanned.
struct Pending {
    /// Index into the envelope's recipients.
    index: usize,
    domain: String,
    rules: Rc<Rules>,
    /// On an allow list: the sender checks are skipped.
    allowed: bool,
    refused: Option<(Status, String)>,
    edit: Edit,
}

impl Pending {
    fn open(&self) -> bool {
        self.refused.is_none()
    }

    /// Open and not allowed: the sender checks apply.
    fn checked(&self) -> bool {
        self.open() && !self.allowed
    }

    fn refuse(&mut self, status: Status, reason: String) {
        if self.refused.is_none() {
            self.refused = Some((status, reason));
        }
    }

    fn tag(&mut self, name: &str, value: String) {
        let same = self.edit.add.iter().filter(|(n, _)| n == name).count();
        if same < MAX_TAGS && !self.edit.add.iter().any(|(n, v)| n == name && *v == value) {
            self.edit.add.push((name.to_owned(), value));
        }
    }
}

/// The scanner with its handles, opened once and kept across jobs.
pub struct Scanner<'a> {
    config: &'a Config,
    log: &'a Log,
    store: Option<AliasStore>,
    clamd: Option<clamd::Clamd>,
    /// Made at the first message from another host (mail submitted here
    /// never reads resolv.conf).
    sender: Option<sender::SenderChecks>,
    /// The same, for the blocklists.
    dns: Option<DnsClient>,
    dnsbl: dnsbl::Dnsbl,
    allow: lists::List,
    deny: lists::List,
    greylist: Option<greylist::Greylist>,
    adult: adult::AdultRules,
    limits: attachments::Limits,
    /// The decisions of the last job.
    pub decisions: Vec<Decision>,
    /// The last job's sender checks, results only (`spf=pass ...`).
    pub auth_summary: Option<String>,
}

impl<'a> Scanner<'a> {
    pub fn open(config: &'a Config, log: &'a Log) -> Result<Scanner<'a>, Failure> {
        let fail = |f: Failure| {
            log.error(format_args!("{f}"));
            f
        };
        let sc = &config.scanner;
        let mut store = match AliasStore::open(&config.aliases.store) {
            Ok(s) => Some(s),
            Err(StoreError::Missing { .. }) => None,
            Err(e) => return Err(fail(e.to_failure())),
        };
        let clamd = match sc.clamd.trim() {
            "" => None,
            text => {
                let endpoint = text
                    .parse::<clamd::Endpoint>()
                    .map_err(|e| fail(Failure::config(format!("scanner.{e}"))))?;
                Some(clamd::Clamd::new(
                    endpoint,
                    sc.clamd_timeout,
                    sc.clamd_max_stream,
                    CLAMD_CHUNK,
                ))
            }
        };
        let dnsbl = dnsbl::Dnsbl::parse(&sc.dnsbl_zones)
            .map_err(|e| fail(Failure::config(format!("scanner.dnsbl_zones: {e}"))))?;
        let list = |name: &str, entries: &[String]| {
            lists::List::parse(entries)
                .map_err(|e| fail(Failure::config(format!("scanner.{name}: {e}"))))
        };
        let allow = list("allow", &sc.allow)?;
        let deny = list("deny", &sc.deny)?;
        let greylist = if sc.greylist {
            // The hashes that stand for triples are keyed with a secret of
            // the alias store, kept apart from the greylisting database.
            let key = match &mut store {
                Some(s) => s.secret("greylist").map_err(|e| fail(e.to_failure()))?,
                None => {
                    return Err(fail(Failure::config(format!(
                        "scanner.greylist needs the alias store {} (its secret keys the greylisting hashes); create it with postern-alias",
                        config.aliases.store.display()
                    ))));
                }
            };
            Some(
                greylist::Greylist::open(
                    &sc.greylist_db,
                    key,
                    sc.greylist_delay,
                    sc.greylist_expiry,
                )
                .map_err(|e| fail(Failure::config(format!("scanner.greylist_db: {e}"))))?,
            )
        } else {
            None
        };
        let adult = adult::AdultRules::new(&sc.adult_words, &sc.adult_senders)
            .map_err(|e| fail(Failure::config(format!("scanner.adult_words: {e}"))))?;
        Ok(Scanner {
            config,
            log,
            store,
            clamd,
            sender: None,
            dns: None,
            dnsbl,
            allow,
            deny,
            greylist,
            adult,
            limits: attachments::Limits::default(),
            decisions: Vec::new(),
            auth_summary: None,
        })
    }

    /// Scans one job. `Err`: the job as a whole must wait (or the store
    /// failed); nothing of it was passed on.
    pub fn scan(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure> {
        self.decisions.clear();
        self.auth_summary = None;
        if let Some(s) = &mut self.store {
            s.begin_job().map_err(|e| e.to_failure())?;
        }
        let qid = job.envelope.queue_id.clone();
        let Job {
            mut envelope,
            message,
        } = job;
        let mut pending = self.pending(&envelope.recipients)?;
        if pending.is_empty() {
            self.decisions = envelope
                .recipients
                .iter()
                .map(|r| decision(r, Verdict::Settled))
                .collect();
            return Ok(vec![Job { envelope, message }]);
        }
        let ip = envelope
            .client_address
            .as_deref()
            .and_then(|a| a.trim().parse::<IpAddr>().ok());
        // Mail from this host (no client, or loopback) is local
        // submission: greylisting, blocklists and SPF/DMARC say nothing of it.
        let remote = ip.is_some_and(|ip| !ip.is_loopback());
        let mail_from = envelope
            .sender
            .address()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let client = lists::Client {
            ip,
            hostname: envelope.client_hostname.as_deref(),
            sender: Some(mail_from.as_str()).filter(|s| !s.is_empty()),
        };

        // The lists.
        let denied = self.deny.matches(&client);
        let allowed = self.allow.matches(&client);
        for p in &mut pending {
            if denied.is_some() || p.rules.deny.matches(&client).is_some() {
                p.refuse(
                    status::REFUSED,
                    "the sending client or the sender is on the recipient's deny list".into(),
                );
            } else if allowed.is_some() || p.rules.allow.matches(&client).is_some() {
                p.allowed = true;
            }
        }

        // Greylisting: the job waits while a triple is new.
        if let (Some(g), Some(ip), true) = (&mut self.greylist, ip, remote) {
            let rcpts: Vec<&str> = pending
                .iter()
                .filter(|p| p.checked())
                .map(|p| envelope.recipients[p.index].address.as_str())
                .collect();
            if !rcpts.is_empty() {
                match g.check(ip, &mail_from, &rcpts, now) {
                    Ok(greylist::GreyVerdict::Pass) => {}
                    Ok(greylist::GreyVerdict::Wait { remaining }) => {
                        let f = Failure::new(
                            Sysexit::TempFail,
                            status::NOT_AUTHORIZED,
                            match minutes(remaining) {
                                1 => "greylisted, try again in 1 minute".to_owned(),
                                m => format!("greylisted, try again in {m} minutes"),
                            },
                        );
                        self.log.info(format_args!("{qid}: {f}"));
                        return Err(f);
                    }
                    Err(e) => self.log.error(format_args!(
                        "{qid}: greylisting skipped, its database failed: {e}"
                    )),
                }
            }
        }

        if remote && pending.iter().any(Pending::open) {
            self.open_dns()?;
        }

        // The message goes to clamd now, and clamd scans it while the
        // sender checks ask DNS and the other rules walk it; its verdict
        // is read after them.
        let clamd_sent = match &mut self.clamd {
            Some(clamd) if pending.iter().any(|p| p.open() && p.rules.virus) => {
                Some(clamd.send(&message))
            }
            _ => None,
        };
        let mut auth_field = None;

        // DNS blocklists of the client address.
        if let (Some(dns), Some(ip), true) = (&self.dns, ip, remote)
            && pending.iter().any(Pending::checked)
        {
            let outcome = self.dnsbl.check(dns, ip);
            for (zone, why) in &outcome.errors {
                self.log
                    .warning(format_args!("{qid}: DNS blocklist {zone} not asked: {why}"));
            }
            if let Some(listing) = outcome.listed.first() {
                self.log.info(format_args!(
                    "{qid}: client listed in {} ({})",
                    listing.zone, listing.answer
                ));
                for p in pending.iter_mut().filter(|p| p.checked()) {
                    match self.config.scanner.dnsbl_action {
                        ScanAction::Reject => p.refuse(
                            status::REFUSED,
                            format!("the sending client is listed in {}", listing.zone),
                        ),
                        ScanAction::Tag => p.tag(
                            "X-Postern-Sender",
                            format!("client listed in {}", listing.zone),
                        ),
                    }
                }
            }
        }

        // SPF, DKIM and DMARC.
        if let (Some(checks), true) = (&self.sender, remote)
            && pending.iter().any(Pending::open)
        {
            let sc = &self.config.scanner;
            let auth = checks.check(
                &sender::Input {
                    client_ip: ip,
                    helo: envelope.client_helo.as_deref(),
                    mail_from: &mail_from,
                    message: &message,
                    hostname: &self.config.hostname,
                },
                sc.spf,
                sc.dmarc,
            );
            let header = auth.header_value(&self.config.hostname, "");
            auth_field = Some(("Authentication-Results".to_owned(), header.clone()));
            let summary = auth.summary();
            let spf_failed = auth
                .spf
                .as_ref()
                .is_some_and(|s| s.result == sender::SpfResult::Fail);
            let dmarc = auth
                .dmarc
                .as_ref()
                .filter(|d| d.result == sender::DmarcResult::Fail)
                .map(|d| d.policy);
            for p in pending.iter_mut().filter(|p| p.open()) {
                p.tag("Authentication-Results", header.clone());
                if p.allowed {
                    continue;
                }
                if spf_failed {
                    match sc.spf_fail_action {
                        ScanAction::Reject => p.refuse(
                            status::SPF_FAILED,
                            "the sender's domain does not allow the sending client (SPF fail)"
                                .into(),
                        ),
                        ScanAction::Tag => p.tag("X-Postern-Sender", "spf fail".into()),
                    }
                }
                match (dmarc, sc.dmarc_action) {
                    (None, _) | (Some(sender::DmarcPolicy::None), _) => {}
                    (Some(sender::DmarcPolicy::Reject), DmarcAction::Policy) => p.refuse(
                        status::DMARC_FAILED,
                        "the From domain's DMARC policy rejects this message (DMARC fail)".into(),
                    ),
                    (Some(policy), _) => p.tag(
                        "X-Postern-Sender",
                        format!("dmarc fail (policy {})", policy.as_str()),
                    ),
                }
            }
            envelope.auth_results = Some(summary.clone());
            self.auth_summary = Some(summary);
        }

        // The other content rules, each at most once, while clamd scans.
        let wants = |f: fn(&Rules) -> bool| pending.iter().any(|p| p.open() && f(&p.rules));
        let executable =
            wants(|r| r.executable.is_some()).then(|| attachments::scan(&message, &self.limits));
        let phishing = wants(|r| r.phishing.is_some()).then(|| {
            let mut ours: Vec<String> = pending
                .iter()
                .filter(|p| p.open())
                .map(|p| p.domain.clone())
                .collect();
            ours.sort();
            ours.dedup();
            phishing::scan(
                &message,
                &phishing::Context {
                    our_domains: &ours,
                    protected_names: &self.config.scanner.protected_names,
                },
            )
        });
        let adult = if wants(|r| r.adult.is_some()) {
            self.adult.check(&message, &mail_from)
        } else {
            None
        };
        let virus = match (clamd_sent, &mut self.clamd) {
            (Some(Ok(sent)), Some(clamd)) => Some(clamd.receive(sent, &message)),
            (Some(Err(e)), _) => Some(Err(e)),
            _ => None,
        };

        // Viruses.
        let mut headers_only = false;
        if let Some(verdict) = virus {
            match verdict {
                Ok(clamd::Verdict::Clean) => {}
                Ok(clamd::Verdict::Found(signature)) => {
                    let signature = crate::mail::text::bounded(&signature, 100);
                    self.log
                        .info(format_args!("{qid}: virus found: {signature}"));
                    headers_only = true;
                    for p in pending.iter_mut().filter(|p| p.open() && p.rules.virus) {
                        p.refuse(status::REFUSED, format!("virus found: {signature}"));
                    }
                }
                Err(clamd::ClamdError::TooLarge { size, max }) => {
                    self.log.warning(format_args!(
                        "{qid}: not scanned for viruses: {size} bytes is over scanner.clamd_max_stream ({max})"
                    ));
                    for p in pending.iter_mut().filter(|p| p.open() && p.rules.virus) {
                        p.tag(
                            "X-Postern-Virus-Scan",
                            "not scanned: larger than the virus scanner takes".into(),
                        );
                    }
                }
                Err(e) => match self.config.scanner.clamd_failure {
                    ClamdFailure::Defer => {
                        let f = Failure::new(
                            Sysexit::TempFail,
                            status::NOT_AUTHORIZED,
                            format!("the virus scanner is not available: {e}"),
                        );
                        self.log.error(format_args!("{qid}: {f}"));
                        return Err(f);
                    }
                    ClamdFailure::Pass => {
                        self.log.error(format_args!(
                            "{qid}: passed without a virus scan (scanner.clamd_failure = pass): {e}"
                        ));
                        for p in pending.iter_mut().filter(|p| p.open() && p.rules.virus) {
                            p.tag(
                                "X-Postern-Virus-Scan",
                                "not scanned: the virus scanner was not available".into(),
                            );
                        }
                    }
                },
            }
        }

        // Executable attachments.
        if let Some(scan) = executable {
            let findings: Vec<&attachments::Finding> = scan
                .findings
                .iter()
                .filter(|f| {
                    self.config.scanner.encrypted_archives
                        || f.reason != attachments::Reason::EncryptedArchive
                })
                .collect();
            if let Some(first) = findings.first() {
                self.log.info(format_args!(
                    "{qid}: {} executable attachment finding(s)",
                    findings.len()
                ));
                for p in pending.iter_mut().filter(|p| p.open()) {
                    match p.rules.executable {
                        None => {}
                        Some(ScanAction::Reject) => {
                            headers_only = true;
                            p.refuse(
                                status::REFUSED,
                                format!("executable content refused: {}", first.describe()),
                            );
                        }
                        Some(ScanAction::Tag) => {
                            for f in &findings {
                                p.tag("X-Postern-Executable", f.describe());
                            }
                        }
                    }
                }
            }
        }

        // Phishing.
        if let Some(found) = phishing
            && let Some(first) = found.first()
        {
            self.log
                .info(format_args!("{qid}: {} phishing sign(s)", found.len()));
            let prefix = &self.config.scanner.phishing_subject_prefix;
            for p in pending.iter_mut().filter(|p| p.open()) {
                match p.rules.phishing {
                    None => {}
                    Some(ScanAction::Reject) => p.refuse(
                        status::REFUSED,
                        format!("phishing refused: {}", first.describe()),
                    ),
                    Some(ScanAction::Tag) => {
                        for f in &found {
                            p.tag("X-Postern-Phishing", f.describe());
                        }
                        if !prefix.is_empty() {
                            p.edit.subject_prefix = Some(prefix.clone());
                        }
                    }
                }
            }
        }

        // Adult content.
        if let Some(found) = adult {
            self.log
                .info(format_args!("{qid}: adult content: {}", found.describe()));
            for p in pending.iter_mut().filter(|p| p.open()) {
                match p.rules.adult {
                    None => {}
                    Some(ScanAction::Reject) => p.refuse(
                        status::REFUSED,
                        format!("adult content refused: {}", found.describe()),
                    ),
                    Some(ScanAction::Tag) => p.tag("X-Postern-Adult", found.describe()),
                }
            }
        }

        if headers_only {
            // A notice must not carry the malware back.
            envelope.ret = Some(Ret::Headers);
        }
        let fallback = Edit {
            add: auth_field.into_iter().collect(),
            subject_prefix: None,
        };
        Ok(self.split(&qid, envelope, &message, pending, fallback))
    }

    /// Makes the DNS clients the sender checks and the blocklists need.
    fn open_dns(&mut self) -> Result<(), Failure> {
        let sc = &self.config.scanner;
        let setup = |e: crate::dns::DnsSetupError| {
            let f = Failure::config(format!("scanner: DNS: {e}"));
            self.log.error(format_args!("{f}"));
            f
        };
        if self.sender.is_none() && (sc.spf || sc.dmarc) {
            self.sender =
                Some(sender::SenderChecks::new(&self.config.dns, sc.auth_timeout).map_err(setup)?);
        }
        if self.dns.is_none() && !self.dnsbl.is_empty() {
            self.dns = Some(DnsClient::new(&self.config.dns).map_err(setup)?);
        }
        Ok(())
    }

    /// The pending recipients with their domains' rules.
    fn pending(&mut self, recipients: &[Recipient]) -> Result<Vec<Pending>, Failure> {
        let mut by_domain: HashMap<String, Rc<Rules>> = HashMap::new();
        let mut out = Vec::new();
        for (index, r) in recipients.iter().enumerate() {
            if r.status != RcptStatus::Pending {
                continue;
            }
            let domain =
                domain_key(r.address.domain()).unwrap_or_else(|| r.address.domain().to_lowercase());
            let rules = match by_domain.get(&domain) {
                Some(rules) => rules.clone(),
                None => {
                    let rules = Rc::new(self.rules(&domain)?);
                    by_domain.insert(domain.clone(), rules.clone());
                    rules
                }
            };
            out.push(Pending {
                index,
                domain,
                rules,
                allowed: false,
                refused: None,
                edit: Edit::default(),
            });
        }
        Ok(out)
    }

    /// A domain's rules: its settings in the alias store over the
    /// configuration's.
    fn rules(&self, domain: &str) -> Result<Rules, Failure> {
        let sc = &self.config.scanner;
        let Some(store) = &self.store else {
            return Ok(Rules {
                virus: true,
                executable: Some(sc.executable_action),
                phishing: Some(sc.phishing_action),
                adult: Some(sc.adult_action),
                ..Rules::default()
            });
        };
        let get = |key: &str| store.setting(domain, key).map_err(|e| e.to_failure());
        let on = |key: &str| get(key).map(|v| v != "false");
        let action = |key: &str, default: ScanAction| {
            get(key).map(|v| ScanAction::parse(&v).unwrap_or(default))
        };
        // A list the store holds was checked when it was set; one that no
        // longer parses (a newer build's form) is the operator's to fix.
        let list = |key: &str| {
            get(key).and_then(|v| {
                lists::List::parse_str(&v).map_err(|e| {
                    Failure::config(format!("alias store setting {key} of a domain: {e}"))
                })
            })
        };
        Ok(Rules {
            virus: on("has_virus_protection")?,
            executable: on("has_executable_protection")?
                .then(|| action("executable_action", sc.executable_action))
                .transpose()?,
            phishing: on("has_phishing_protection")?
                .then(|| action("phishing_action", sc.phishing_action))
                .transpose()?,
            adult: on("has_adult_content_protection")?
                .then(|| action("adult_action", sc.adult_action))
                .transpose()?,
            allow: list("allow_list")?,
            deny: list("deny_list")?,
        })
    }

    /// Settles the refused recipients and writes one job per distinct
    /// edit; settled recipients ride with the first.
    fn split(
        &mut self,
        qid: &QueueId,
        mut envelope: Envelope,
        message: &[u8],
        pending: Vec<Pending>,
        fallback: Edit,
    ) -> Vec<Job> {
        let sc = &self.config.scanner;
        // Sender checks not made: off, or local submission, or every
        // recipient refused before them.
        let auth_skipped = if sc.spf || sc.dmarc { "skipped" } else { "off" };
        let mut recipients: Vec<Option<Recipient>> = std::mem::take(&mut envelope.recipients)
            .into_iter()
            .map(Some)
            .collect();
        let mut groups: Vec<(Edit, Vec<Recipient>)> = Vec::new();
        let mut settled: Vec<Recipient> = Vec::new();
        let (mut passed, mut tagged, mut refused) = (0, 0, 0);
        for p in pending {
            let Some(mut r) = recipients[p.index].take() else {
                continue;
            };
            match p.refused {
                Some((code, reason)) => {
                    refused += 1;
                    r.settle(RcptStatus::Failed { code }, Some(&reason));
                    self.decisions.push(decision(
                        &r,
                        Verdict::Refused {
                            status: code,
                            reason,
                        },
                    ));
                    settled.push(r);
                }
                None => {
                    let tags: Vec<(String, String)> = p
                        .edit
                        .add
                        .iter()
                        .filter(|(n, _)| n.starts_with(headers::TAG_PREFIX))
                        .cloned()
                        .collect();
                    if tags.is_empty() {
                        passed += 1;
                    } else {
                        tagged += 1;
                    }
                    self.decisions.push(decision(&r, Verdict::Passed { tags }));
                    match groups.iter_mut().find(|(e, _)| *e == p.edit) {
                        Some((_, members)) => members.push(r),
                        None => groups.push((p.edit, vec![r])),
                    }
                }
            }
        }
        let before = recipients.into_iter().flatten().collect::<Vec<_>>();
        for r in &before {
            self.decisions.push(decision(r, Verdict::Settled));
        }
        settled.extend(before);
        if groups.is_empty() {
            // Every recipient refused: the copy the bouncer quotes keeps
            // the sender checks' results.
            groups.push((fallback, Vec::new()));
        }
        let authserv_id = &self.config.hostname;
        let mut jobs = Vec::with_capacity(groups.len());
        for (i, (edit, members)) in groups.into_iter().enumerate() {
            // The envelope is small: its recipients were taken out.
            let mut env = envelope.clone();
            env.recipients = members;
            if i == 0 {
                env.recipients.append(&mut settled);
            }
            jobs.push(Job {
                envelope: env,
                message: headers::apply(message, authserv_id, &edit),
            });
        }
        self.log.info(format_args!(
            "{qid}: scanned: passed={passed} tagged={tagged} refused={refused} auth={} jobs={}",
            self.auth_summary.as_deref().unwrap_or(auth_skipped),
            jobs.len()
        ));
        jobs
    }
}

impl Stage for Scanner<'_> {
    fn process(&mut self, job: Job, now: SystemTime) -> Result<Vec<Job>, Failure> {
        self.scan(job, now)
    }
}

fn decision(r: &Recipient, verdict: Verdict) -> Decision {
    Decision {
        recipient: r.address.as_str().to_owned(),
        verdict,
    }
}

/// How long greylisting asks a sender to wait, as a reply says it.
pub fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

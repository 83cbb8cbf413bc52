//! One `postern-alias sync` run: for each domain of `[sync] teams`, read
//! its team from the directory, plan, and write the plan, the problems
//! and the admins' notification in one transaction; then hand the
//! notifications on (the outbox: a notification written but not sent,
//! because the run died or the mail system refused, goes out with the
//! next run).

use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::launchpad::Launchpad;
use super::members_file::MembersFile;
use super::notify::{self, Mailer, Notice};
use super::plan::{self, Change, Counts, Inputs, Plan};
use super::state;
use super::{Directory, SourceError, Team, TeamRef};
use crate::alias::domain_key;
use crate::alias::store::AliasStore;
use crate::config::Config;
use crate::exit::{Failure, Sysexit};
use crate::log::Log;
use crate::mail::status;
use crate::store::durable;

/// What the command line asks of a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print the plan; change nothing, send nothing.
    pub dry_run: bool,
    /// Apply a plan that disables more than `sync.max_disable` aliases.
    pub force: bool,
    /// Only these domains (empty: every domain of `[sync] teams`).
    pub domains: Vec<String>,
}

/// How a domain's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "reason")]
pub enum Outcome {
    /// The plan was written (or, in a dry run, would be).
    Synced,
    /// Not synced: not in the alias store, or not verified.
    Skipped(String),
    /// The team could not be read; nothing changed.
    Failed(String),
    /// The plan disables more than `sync.max_disable`; nothing changed.
    Refused(String),
}

/// What a run did in one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub team: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub changes: Vec<Change>,
    pub unchanged: usize,
    /// Every problem of this run.
    pub problems: Vec<String>,
    /// Those not reported before (what the notification lists).
    pub new_problems: Vec<String>,
    pub members: usize,
    pub requests: u64,
    /// Admins a notification was written for (0: none was).
    pub notified: usize,
    #[serde(skip)]
    exit: Option<Sysexit>,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub domains: Vec<DomainReport>,
    /// Notifications handed on.
    pub sent: usize,
    /// Notifications kept in the outbox for the next run, with why.
    pub unsent: Vec<String>,
}

impl Report {
    /// The exit status of the run: the worst of its domains and its
    /// notifications (75 for a temporary failure, 69 for an answer that
    /// will not change by waiting, 65 for a refused plan).
    pub fn failure(&self) -> Option<Failure> {
        let failed: Vec<&DomainReport> = self.domains.iter().filter(|d| d.exit.is_some()).collect();
        if let Some(worst) = failed
            .iter()
            .filter_map(|d| d.exit)
            .max_by_key(|e| match e {
                Sysexit::TempFail => 1,
                _ => 2,
            })
        {
            let names: Vec<&str> = failed.iter().map(|d| d.domain.as_str()).collect();
            return Some(Failure::new(
                worst,
                status::TRANSIENT,
                format!("sync failed for {}", names.join(", ")),
            ));
        }
        (!self.unsent.is_empty()).then(|| {
            Failure::tempfail(format!(
                "{} notification(s) kept for the next run: {}",
                self.unsent.len(),
                self.unsent[0]
            ))
        })
    }
}

/// The directories the run reads, each opened at its first team.
struct Directories<'c> {
    config: &'c Config,
    launchpad: Option<Launchpad>,
    file: Option<MembersFile>,
}

impl Directories<'_> {
    fn team(&mut self, team: &TeamRef) -> Result<Result<Team, SourceError>, Failure> {
        Ok(match team {
            TeamRef::Launchpad(name) => match &mut self.launchpad {
                Some(lp) => lp.team(name),
                slot @ None => slot
                    .insert(
                        Launchpad::new(&self.config.sync)
                            .map_err(|e| Failure::config(e.to_string()))?,
                    )
                    .team(name),
            },
            TeamRef::File(name) => self
                .file
                .get_or_insert_with(|| MembersFile::open(&self.config.sync.members_file))
                .team(name),
        })
    }
}

/// The domains of `[sync] teams` (or those of `only`), in key form.
pub fn teams(config: &Config, only: &[String]) -> Result<Vec<(String, TeamRef)>, Failure> {
    let mut out = Vec::new();
    for (domain, team) in &config.sync.teams {
        let key = domain_key(domain)
            .ok_or_else(|| Failure::config(format!("sync.teams: {domain:?} is not a domain")))?;
        let team = TeamRef::parse(team)
            .map_err(|e| Failure::config(format!("sync.teams.{domain}: {e}")))?;
        out.push((key, team));
    }
    let keys: Vec<String> = only
        .iter()
        .map(|w| domain_key(w).unwrap_or_else(|| w.clone()))
        .collect();
    for (want, key) in only.iter().zip(&keys) {
        if !out.iter().any(|(d, _)| d == key) {
            return Err(Failure::new(
                Sysexit::DataErr,
                status::BAD_ARGUMENTS,
                format!(
                    "{} is not in [sync] teams",
                    crate::mail::text::bounded(want, 100)
                ),
            ));
        }
    }
    if !only.is_empty() {
        out.retain(|(d, _)| keys.contains(d));
    }
    Ok(out)
}

/// Runs the sync: every domain, then the outbox.
pub fn run(
    store: &mut AliasStore,
    config: &Config,
    log: &Log,
    options: &Options,
    now: SystemTime,
) -> Result<Report, Failure> {
    let teams = teams(config, &options.domains)?;
    if teams.is_empty() && options.domains.is_empty() {
        return Err(Failure::config(
            "no [sync] teams configured (see postern.toml(5), [sync])",
        ));
    }
    // Two runs at once (a cron run outlasting its hour) would each read
    // the team and could both send the same notice: one at a time.
    let _lock = if options.dry_run {
        None
    } else {
        Some(lock(store.path())?)
    };
    let mut dirs = Directories {
        config,
        launchpad: None,
        file: None,
    };
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    for (domain, team) in teams {
        let started = Instant::now();
        let r = sync_domain(store, config, &mut dirs, options, &domain, &team, now)?;
        log_domain(log, &r, started);
        report.domains.push(r);
    }
    if !options.dry_run {
        let mut mailer = Mailer::new(config, log);
        for out in store.read(state::outbox)? {
            match mailer.send(&out, now) {
                Ok(()) => {
                    state::remove_outgoing(store, out.id)?;
                    report.sent += 1;
                }
                Err(f) => {
                    log.error(format_args!(
                        "sync {}: notification kept for the next run: {f}",
                        out.domain
                    ));
                    report.unsent.push(format!("{}: {f}", out.domain));
                }
            }
        }
    }
    Ok(report)
}

/// Takes `STORE.sync-lock` beside the store, or says another run has it.
fn lock(store: &std::path::Path) -> Result<std::fs::File, Failure> {
    let mut name = store.as_os_str().to_owned();
    name.push(".sync-lock");
    let path = std::path::PathBuf::from(name);
    durable::try_lock(&path)
        .map_err(|e| Failure::tempfail(format!("sync lock {}: {e}", path.display())))?
        .ok_or_else(|| {
            Failure::tempfail(format!(
                "another postern-alias sync is running (it holds {})",
                path.display()
            ))
        })
}

fn sync_domain(
    store: &mut AliasStore,
    config: &Config,
    dirs: &mut Directories<'_>,
    options: &Options,
    domain: &str,
    team: &TeamRef,
    now: SystemTime,
) -> Result<DomainReport, Failure> {
    let mut r = DomainReport {
        domain: domain.to_owned(),
        team: team.to_string(),
        outcome: Outcome::Synced,
        changes: Vec::new(),
        unchanged: 0,
        problems: Vec::new(),
        new_problems: Vec::new(),
        members: 0,
        requests: 0,
        notified: 0,
        exit: None,
    };
    match store.domain(domain)? {
        None => {
            r.outcome = Outcome::Skipped("not in the alias store".into());
            return Ok(r);
        }
        Some(d) if d.verified.is_none() => {
            r.outcome = Outcome::Skipped("not verified (postern-alias domain verify)".into());
            return Ok(r);
        }
        Some(_) => {}
    }
    let listing = dirs.team(team)?;
    let admins: Vec<String> = store
        .setting(domain, "admins")?
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let team_name = team.to_string();
    let id = format!(
        "sync.{}.{}",
        now.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        durable::random_hex(8)
            .map_err(|e| Failure::tempfail(format!("no randomness for a Message-ID: {e}")))?
    );
    let max_disable = config.sync.max_disable;
    let write = |tx: &rusqlite::Transaction<'_>, r: &mut DomainReport| -> rusqlite::Result<()> {
        let current = state::current(tx, domain)?;
        let (plan, failure) = match &listing {
            Ok(listing) => {
                r.members = listing.members.len();
                r.requests = listing.requests;
                let plan = plan::plan(&Inputs {
                    domain,
                    team: listing,
                    registry: &current.registry,
                    synced: &current.synced,
                    hand_made: &current.hand_made,
                });
                let disables = plan.disables();
                if max_disable > 0 && disables > max_disable && !options.force {
                    let why = format!(
                        "the run would disable {disables} aliases, more than sync.max_disable \
                         ({max_disable}); nothing changed (postern-alias sync --force {domain} \
                         if that is right)"
                    );
                    r.outcome = Outcome::Refused(why.clone());
                    r.exit = Some(Sysexit::DataErr);
                    (plan, Some(why))
                } else {
                    (plan, None)
                }
            }
            Err(e) => {
                r.outcome = Outcome::Failed(e.to_string());
                r.exit = Some(if e.is_temporary() {
                    Sysexit::TempFail
                } else {
                    Sysexit::Unavailable
                });
                (Plan::default(), Some(e.to_string()))
            }
        };
        let failed = failure.is_some();
        r.problems = if failed {
            vec![failure_problem(&listing, &r.outcome)]
        } else {
            plan.problems.clone()
        };
        r.unchanged = plan.unchanged;
        r.changes = if failed { Vec::new() } else { plan.changes };
        if options.dry_run {
            r.new_problems = r
                .problems
                .iter()
                .filter(|p| !current.reported.contains(*p))
                .cloned()
                .collect();
            return Ok(());
        }
        if !failed {
            state::apply(tx, domain, &team_name, &r.changes, now)?;
        }
        r.new_problems =
            state::record_problems(tx, domain, &r.problems, &current.reported, failed, now)?;
        let news: Vec<&Change> = r.changes.iter().filter(|c| c.is_news()).collect();
        if admins.is_empty() || (news.is_empty() && r.new_problems.is_empty()) {
            return Ok(());
        }
        let message = notify::compose(&Notice {
            domain,
            team: &team_name,
            changes: &news,
            problems: &r.new_problems,
            failure: failure.as_deref(),
            from: &notify::from_address(config),
            to: &admins,
            hostname: &config.hostname,
            date: now,
            id: &id,
        });
        state::put_outgoing(tx, domain, &admins, &message, now)?;
        r.notified = admins.len();
        Ok(())
    };
    if options.dry_run {
        store.read(|c| {
            // A read transaction, so the plan sees one state of the file.
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Deferred)?;
            write(&tx, &mut r)
        })?;
    } else {
        store.write(|tx| write(tx, &mut r))?;
    }
    Ok(r)
}

/// The problem a failed run records: the kind of failure, not its
/// details (a page number, a timeout), so it is told once while it lasts.
fn failure_problem(listing: &Result<Team, SourceError>, outcome: &Outcome) -> String {
    match (listing, outcome) {
        (Err(e), _) => format!("the team could not be read ({})", e.kind()),
        (_, Outcome::Refused(_)) => {
            "a run was refused: it would disable more aliases than sync.max_disable".into()
        }
        _ => "the sync failed".into(),
    }
}

/// One line per domain: counts only (no usernames, no addresses).
fn log_domain(log: &Log, r: &DomainReport, started: Instant) {
    let n = Counts::of(&r.changes);
    let took = started.elapsed().as_millis();
    match &r.outcome {
        Outcome::Synced => log.info(format_args!(
            "sync {} {}: members={} created={} changed={} disabled={} enabled={} unchanged={} \
             problems={} new_problems={} requests={} notified={} ms={took}",
            r.domain,
            r.team,
            r.members,
            n.created,
            n.changed,
            n.disabled,
            n.enabled,
            r.unchanged,
            r.problems.len(),
            r.new_problems.len(),
            r.requests,
            r.notified,
        )),
        Outcome::Skipped(why) => log.warning(format_args!("sync {}: skipped: {why}", r.domain)),
        Outcome::Failed(why) | Outcome::Refused(why) => log.error(format_args!(
            "sync {} {}: nothing changed: {why}",
            r.domain, r.team
        )),
    }
}

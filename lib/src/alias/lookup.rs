//! Alias resolution with its sources open: the store, the TXT records,
//! the list of DNS-only domains. One recipient in, a `Resolution` out,
//! with the steps taken (for `postern-rewriter explain` and the log).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::resolve::{self, Chosen, LocalPart};
use super::store::{AliasStore, DomainMode, StoreError};
use super::{Action, LookupError, Published, Rule, Target, TxtSource, compile_pattern, domain_key};
use crate::mail::address::Address;
use crate::mail::status::{self, Status};

/// Most regexes kept compiled from TXT records (they change rarely; the
/// bound keeps a flood of domains from growing memory without end).
const MAX_TXT_REGEXES: usize = 4096;

/// One rule applied on the way to the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The address the rule matched (lower-cased domain).
    pub address: String,
    pub rule: Rule,
}

/// Where mail for one recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Not one of our domains: passed on unchanged.
    NotOurs,
    /// To these targets (at least one).
    Forward {
        targets: Vec<Target>,
        steps: Vec<Step>,
    },
    /// Accepted and dropped (`!name`).
    Drop { steps: Vec<Step> },
    /// Refused: `status` says for now (4.x.x) or for good (5.x.x); `reason`
    /// names no address but the recipient's own alias.
    Fail {
        status: Status,
        reason: String,
        steps: Vec<Step>,
    },
}

/// Why a resolution could not be made at all: the caller defers.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dns(#[from] LookupError),
}

/// How a domain is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    NotOurs,
    Unverified,
    Store,
    StoreAndTxt,
    TxtOnly,
}

/// The alias sources, kept open across jobs.
pub struct Aliases {
    store: Option<AliasStore>,
    txt: Box<dyn TxtSource>,
    dns_domains: HashSet<String>,
    max_targets: usize,
    txt_regexes: HashMap<String, Arc<regex::Regex>>,
}

impl Aliases {
    pub fn new(
        store: Option<AliasStore>,
        txt: Box<dyn TxtSource>,
        dns_domains: &[String],
        max_targets: usize,
    ) -> Aliases {
        Aliases {
            store,
            txt,
            dns_domains: dns_domains.iter().filter_map(|d| domain_key(d)).collect(),
            max_targets,
            txt_regexes: HashMap::new(),
        }
    }

    pub fn store(&mut self) -> Option<&mut AliasStore> {
        self.store.as_mut()
    }

    /// True when `domain` is one of ours (in the store or DNS-only).
    pub fn is_ours(&mut self, domain: &str) -> Result<bool, StoreError> {
        let Some(key) = domain_key(domain) else {
            return Ok(false);
        };
        Ok(self.served(&key)? != Served::NotOurs)
    }

    fn served(&mut self, key: &str) -> Result<Served, StoreError> {
        if let Some(store) = &mut self.store
            && let Some(d) = store.domain_cached(key)?
        {
            return Ok(match (d.verified, d.mode) {
                (None, _) => Served::Unverified,
                (Some(_), DomainMode::Store) => Served::Store,
                (Some(_), DomainMode::Dns) => Served::StoreAndTxt,
            });
        }
        Ok(if self.dns_domains.contains(key) {
            Served::TxtOnly
        } else {
            Served::NotOurs
        })
    }

    /// The TXT records `domain` publishes, when it is served from them
    /// (for `explain`: their count, port and unusable entries).
    pub fn published(&mut self, domain: &str) -> Result<Option<Arc<Published>>, ResolveError> {
        let Some(key) = domain_key(domain) else {
            return Ok(None);
        };
        match self.served(&key)? {
            Served::StoreAndTxt | Served::TxtOnly => Ok(self.txt.published(&key)?),
            _ => Ok(None),
        }
    }

    /// Called before each job: sees changes another process made.
    pub fn begin_job(&mut self) -> Result<(), StoreError> {
        match &mut self.store {
            Some(s) => s.begin_job(),
            None => Ok(()),
        }
    }

    /// Resolves `address`: its alias, and one more level for targets in
    /// our domains (with a loop check).
    pub fn resolve(&mut self, address: &Address) -> Result<Resolution, ResolveError> {
        let first = self.resolve_one(address)?;
        let Resolution::Forward { targets, mut steps } = first else {
            return Ok(first);
        };
        let original = address.as_str().to_ascii_lowercase();
        let mut out: Vec<Target> = Vec::new();
        let mut looped = false;
        for target in targets {
            let nested = match &target {
                Target::Address(a) if a.as_str().eq_ignore_ascii_case(&original) => {
                    looped = true;
                    continue;
                }
                Target::Address(a) => self.resolve_one(a)?,
                _ => Resolution::NotOurs,
            };
            match nested {
                Resolution::NotOurs => push_unique(&mut out, target),
                Resolution::Forward {
                    targets: more,
                    steps: s,
                } => {
                    steps.extend(s);
                    for t in more {
                        match &t {
                            Target::Address(a) if a.as_str().eq_ignore_ascii_case(&original) => {
                                looped = true;
                            }
                            _ => push_unique(&mut out, t),
                        }
                    }
                }
                Resolution::Drop { steps: s } => steps.extend(s),
                Resolution::Fail {
                    status,
                    reason,
                    steps: s,
                } => {
                    steps.extend(s);
                    return Ok(Resolution::Fail {
                        status,
                        reason: format!("a target of this alias: {reason}"),
                        steps,
                    });
                }
            }
        }
        if out.is_empty() {
            return Ok(if looped {
                Resolution::Fail {
                    status: status::LOOP,
                    reason: "this alias forwards only to itself".into(),
                    steps,
                }
            } else {
                Resolution::Drop { steps }
            });
        }
        if out.len() > self.max_targets {
            return Ok(Resolution::Fail {
                status: status::MISCONFIGURED,
                reason: format!(
                    "this alias expands to {} targets, more than aliases.max_targets ({})",
                    out.len(),
                    self.max_targets
                ),
                steps,
            });
        }
        if out.iter().any(|t| matches!(t, Target::Url(_))) {
            return Ok(Resolution::Fail {
                status: status::NOT_CAPABLE,
                reason: "webhook targets are not supported by this version".into(),
                steps,
            });
        }
        Ok(Resolution::Forward {
            targets: out,
            steps,
        })
    }

    /// One level: the rule for `address` and its targets.
    fn resolve_one(&mut self, address: &Address) -> Result<Resolution, ResolveError> {
        let Some(domain) = domain_key(address.domain()) else {
            return Ok(Resolution::NotOurs);
        };
        let served = self.served(&domain)?;
        let steps = Vec::new();
        match served {
            Served::NotOurs => return Ok(Resolution::NotOurs),
            Served::Unverified => {
                return Ok(Resolution::Fail {
                    status: status::NOT_AUTHORIZED,
                    reason: format!("domain {domain} is not verified yet"),
                    steps,
                });
            }
            _ => {}
        }
        let local_raw = address.as_str().rsplit_once('@').map_or("", |(l, _)| l);
        let local = LocalPart::new(local_raw);
        let mut problems = Vec::new();
        let published: Option<Arc<Published>> = match served {
            Served::StoreAndTxt | Served::TxtOnly => self.txt.published(&domain)?,
            _ => None,
        };
        if let Some(p) = &published {
            problems.extend(p.problems.iter().cloned());
        }
        let chosen = self.choose(&domain, &local, published.as_deref(), &mut problems)?;
        let key_address = format!("{}@{domain}", local.full);
        let Some(chosen) = chosen else {
            return Ok(if problems.is_empty() {
                Resolution::Fail {
                    status: status::NO_SUCH_MAILBOX,
                    reason: format!("<{}> does not exist", address.as_str()),
                    steps,
                }
            } else {
                Resolution::Fail {
                    status: status::MISCONFIGURED,
                    reason: format!(
                        "the aliases of {domain} have errors ({}); no usable rule matches",
                        problems.join("; ")
                    ),
                    steps,
                }
            });
        };
        let steps = vec![Step {
            address: key_address,
            rule: chosen.rule.clone(),
        }];
        Ok(match chosen.rule.action {
            Action::Drop => Resolution::Drop { steps },
            Action::Defer => Resolution::Fail {
                status: status::MAILBOX_DISABLED.with_class(4),
                reason: "mailbox disabled for now".into(),
                steps,
            },
            Action::Refuse => Resolution::Fail {
                status: status::MAILBOX_DISABLED,
                reason: "mailbox disabled".into(),
                steps,
            },
            Action::Forward => match resolve::expand(&chosen, local.tag.as_deref()) {
                Ok(targets) if !targets.is_empty() => Resolution::Forward { targets, steps },
                Ok(_) => Resolution::Fail {
                    status: status::MISCONFIGURED,
                    reason: "the alias has no targets".into(),
                    steps,
                },
                Err(e) => Resolution::Fail {
                    status: status::MISCONFIGURED,
                    reason: format!("the alias cannot be expanded: {e}"),
                    steps,
                },
            },
        })
    }

    fn choose(
        &mut self,
        domain: &str,
        local: &LocalPart,
        published: Option<&Published>,
        problems: &mut Vec<String>,
    ) -> Result<Option<Chosen>, StoreError> {
        // Exact: each form, the store then TXT.
        let mut exact: Vec<Rule> = Vec::new();
        for form in local.forms() {
            if let Some(store) = &self.store
                && let Some(row) = store.exact(domain, form)?
            {
                exact.push(row.rule());
                break;
            }
            if let Some(rule) = published.and_then(|p| {
                p.rules
                    .iter()
                    .find(|r| matches!(&r.pattern, super::Pattern::Exact(n) if n == form))
            }) {
                exact.push(rule.clone());
                break;
            }
        }
        if let Some(rule) = exact.first() {
            return Ok(resolve::choose(local, [rule], &[], []));
        }
        let store_patterns = match &mut self.store {
            Some(store) => Some(store.patterns(domain, problems)?),
            None => None,
        };
        let mut txt_regexes: Vec<(Rule, regex::Regex)> = Vec::new();
        let mut txt_catch_all: Option<&Rule> = None;
        for rule in published.map(|p| p.rules.as_slice()).unwrap_or_default() {
            match &rule.pattern {
                super::Pattern::Regex(src) => match self.txt_regex(src) {
                    Ok(re) => txt_regexes.push((rule.clone(), (*re).clone())),
                    Err(e) => problems.push(e),
                },
                super::Pattern::CatchAll if txt_catch_all.is_none() => txt_catch_all = Some(rule),
                _ => {}
            }
        }
        let mut regexes: Vec<&(Rule, regex::Regex)> = Vec::new();
        if let Some(p) = &store_patterns {
            regexes.extend(p.regexes.iter());
        }
        regexes.extend(txt_regexes.iter());
        let catch_alls = store_patterns
            .as_ref()
            .and_then(|p| p.catch_all.as_ref())
            .into_iter()
            .chain(txt_catch_all);
        Ok(resolve::choose(local, [], &regexes, catch_alls))
    }

    fn txt_regex(&mut self, src: &str) -> Result<Arc<regex::Regex>, String> {
        if let Some(re) = self.txt_regexes.get(src) {
            return Ok(re.clone());
        }
        let re = Arc::new(compile_pattern(src)?);
        if self.txt_regexes.len() >= MAX_TXT_REGEXES {
            self.txt_regexes.clear();
        }
        self.txt_regexes.insert(src.to_owned(), re.clone());
        Ok(re)
    }
}

fn push_unique(out: &mut Vec<Target>, t: Target) {
    if !out.iter().any(|have| resolve::same_target(have, &t)) {
        out.push(t);
    }
}

/// A `TxtSource` for a rewriter with no DNS-served domains: never asked.
pub struct NoTxt;

impl TxtSource for NoTxt {
    fn published(&mut self, _domain: &str) -> Result<Option<Arc<Published>>, LookupError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alias::store::NewAlias;
    use crate::alias::{Origin, Pattern};
    use std::time::SystemTime;

    /// TXT records given in the test, or a failing DNS.
    struct FakeTxt(Option<Published>, bool);

    impl TxtSource for FakeTxt {
        fn published(&mut self, domain: &str) -> Result<Option<Arc<Published>>, LookupError> {
            if self.1 {
                return Err(LookupError {
                    domain: domain.into(),
                    reason: "timed out".into(),
                });
            }
            Ok(self.0.clone().map(Arc::new))
        }
    }

    fn txt_rule(pattern: Pattern, action: Action, targets: &[&str]) -> Rule {
        Rule {
            pattern,
            action,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            origin: Origin::Txt {
                entry: "test".into(),
            },
        }
    }

    fn setup(txt: FakeTxt) -> (tempfile::TempDir, Aliases) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = AliasStore::open_or_create(&dir.path().join("a.db")).unwrap();
        let now = SystemTime::now();
        for (d, mode) in [
            ("example.com", DomainMode::Store),
            ("mixed.org", DomainMode::Dns),
        ] {
            store.add_domain(d, mode, "t", now).unwrap();
            store.set_verified(d, now).unwrap();
        }
        store
            .add_domain("new.example", DomainMode::Store, "t", now)
            .unwrap();
        let add = |p: Pattern, targets: &[&str]| NewAlias {
            domain: "example.com".into(),
            pattern: p,
            action: Action::Forward,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            description: String::new(),
        };
        let rows = [
            add(
                Pattern::Exact("info".into()),
                &["a@x.org", "team@example.com"],
            ),
            add(
                Pattern::Exact("team".into()),
                &["b@y.org", "c@z.org", "a@x.org"],
            ),
            add(Pattern::Exact("self".into()), &["self@example.com"]),
            add(
                Pattern::Exact("many".into()),
                &["team@example.com", "d@x.org", "e@x.org"],
            ),
            add(Pattern::Exact("hook".into()), &["https://hooks.example/in"]),
            add(
                Pattern::Exact("box".into()),
                &["maildb:box@mail.example.com"],
            ),
            add(Pattern::Regex("^sales-(.+)$".into()), &["sales+$1@x.org"]),
        ];
        store
            .write(|tx| {
                for r in &rows {
                    AliasStore::put_alias(tx, r, now)?;
                }
                Ok(())
            })
            .unwrap();
        let dns = vec!["dnsonly.net".to_string()];
        (dir, Aliases::new(Some(store), Box::new(txt), &dns, 4))
    }

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    fn targets(r: &Resolution) -> Vec<String> {
        match r {
            Resolution::Forward { targets, .. } => targets.iter().map(|t| t.to_string()).collect(),
            other => panic!("not forwarded: {other:?}"),
        }
    }

    fn failure(r: &Resolution) -> String {
        match r {
            Resolution::Fail { status, .. } => status.to_string(),
            other => panic!("not failed: {other:?}"),
        }
    }

    #[test]
    fn store_aliases_one_level_deep_folded() {
        let (_d, mut a) = setup(FakeTxt(None, false));
        let r = a.resolve(&addr("Info@EXAMPLE.com")).unwrap();
        assert_eq!(targets(&r), ["a@x.org", "b@y.org", "c@z.org"]);
        let r = a.resolve(&addr("info+news@example.com")).unwrap();
        assert_eq!(targets(&r)[0], "a+news@x.org");
        assert_eq!(
            targets(&a.resolve(&addr("sales-eu@example.com")).unwrap()),
            ["sales+eu@x.org"]
        );
        assert_eq!(
            failure(&a.resolve(&addr("nobody@example.com")).unwrap()),
            "5.1.1"
        );
        assert_eq!(
            failure(&a.resolve(&addr("self@example.com")).unwrap()),
            "5.4.6"
        );
        assert_eq!(
            failure(&a.resolve(&addr("many@example.com")).unwrap()),
            "4.3.5"
        );
        assert_eq!(
            failure(&a.resolve(&addr("hook@example.com")).unwrap()),
            "5.3.3"
        );
        assert_eq!(
            failure(&a.resolve(&addr("x@new.example")).unwrap()),
            "4.7.1"
        );
        assert_eq!(
            targets(&a.resolve(&addr("box@example.com")).unwrap()),
            ["maildb:box@mail.example.com"]
        );
        assert_eq!(
            a.resolve(&addr("x@elsewhere.org")).unwrap(),
            Resolution::NotOurs
        );
        assert_eq!(
            a.resolve(&addr("x@[127.0.0.1]")).unwrap(),
            Resolution::NotOurs
        );
    }

    #[test]
    fn txt_rules_come_after_the_store_and_dns_failures_are_errors() {
        let published = Published {
            rules: vec![
                txt_rule(
                    Pattern::Exact("info".into()),
                    Action::Forward,
                    &["txt@x.org"],
                ),
                txt_rule(Pattern::Exact("gone".into()), Action::Refuse, &[]),
                txt_rule(Pattern::Exact("later".into()), Action::Defer, &[]),
                txt_rule(Pattern::Exact("quiet".into()), Action::Drop, &[]),
                txt_rule(
                    Pattern::Regex("^(.+)-x$".into()),
                    Action::Forward,
                    &["$1@x.org"],
                ),
                txt_rule(Pattern::CatchAll, Action::Forward, &["all@x.org"]),
            ],
            port: None,
            problems: vec![],
        };
        let (_d, mut a) = setup(FakeTxt(Some(published.clone()), false));
        assert_eq!(
            targets(&a.resolve(&addr("info@dnsonly.net")).unwrap()),
            ["txt@x.org"]
        );
        assert_eq!(
            targets(&a.resolve(&addr("bob-x@dnsonly.net")).unwrap()),
            ["bob@x.org"]
        );
        assert_eq!(
            targets(&a.resolve(&addr("zzz@dnsonly.net")).unwrap()),
            ["all@x.org"]
        );
        assert_eq!(
            failure(&a.resolve(&addr("gone@dnsonly.net")).unwrap()),
            "5.2.1"
        );
        assert_eq!(
            failure(&a.resolve(&addr("later@dnsonly.net")).unwrap()),
            "4.2.1"
        );
        assert!(matches!(
            a.resolve(&addr("quiet@mixed.org")).unwrap(),
            Resolution::Drop { .. }
        ));
        // A store-only domain never asks DNS.
        assert_eq!(
            failure(&a.resolve(&addr("zzz@example.com")).unwrap()),
            "5.1.1"
        );
        let broken = Published {
            problems: vec!["bad regex".into()],
            rules: vec![],
            port: None,
        };
        let (_d, mut a) = setup(FakeTxt(Some(broken), false));
        assert_eq!(
            failure(&a.resolve(&addr("x@dnsonly.net")).unwrap()),
            "4.3.5"
        );
        let (_d, mut a) = setup(FakeTxt(None, true));
        assert!(matches!(
            a.resolve(&addr("x@dnsonly.net")),
            Err(ResolveError::Dns(_))
        ));
        assert_eq!(
            targets(&a.resolve(&addr("info@example.com")).unwrap()).len(),
            3
        );
    }
}

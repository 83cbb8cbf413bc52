//! postern-alias(8)'s operations on the store, each a function the binary
//! calls after parsing its arguments: domains and their verification,
//! aliases, virtual(5) import and export. Every change is one
//! transaction; every check is made before it starts.

use std::time::{Duration, SystemTime};

use super::store::{AliasRow, AliasStore, Domain, DomainMode, NewAlias, StoreError};
use super::{Action, Pattern, Target, compile_pattern, domain_key, virtual_file};
use crate::mail::text;

/// The TXT record a domain publishes to prove it is ours.
pub const VERIFICATION_PREFIX: &str = "postern-site-verification=";

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

/// A domain as given on the command line, in key form.
pub fn domain_arg(name: &str) -> Result<String, StoreError> {
    domain_key(name)
        .filter(|d| d.contains('.') || d == "localhost")
        .ok_or_else(|| invalid(format!("{} is not a domain name", text::clean(name))))
}

/// Adds a domain with a fresh verification token. `verified`: the
/// operator vouches for it (no DNS check).
pub fn add_domain(
    store: &mut AliasStore,
    name: &str,
    mode: DomainMode,
    verified: bool,
    now: SystemTime,
) -> Result<Domain, StoreError> {
    let name = domain_arg(name)?;
    let mut token = [0u8; 16];
    getrandom::fill(&mut token).map_err(|e| invalid(format!("no randomness for a token: {e}")))?;
    let mut d = store.add_domain(&name, mode, &text::hex(&token), now)?;
    if verified {
        store.set_verified(&name, now)?;
        d = store.domain(&name)?.unwrap_or(d);
    }
    Ok(d)
}

/// The record to publish for `domain`.
pub fn verification_record(d: &Domain) -> String {
    format!("{VERIFICATION_PREFIX}{}", d.token)
}

/// Marks `domain` verified when one of `published` (the
/// `postern-site-verification=` tokens of its TXT records) is its token;
/// says whether it is.
pub fn verify_domain(
    store: &mut AliasStore,
    name: &str,
    published: &[String],
    now: SystemTime,
) -> Result<bool, StoreError> {
    let name = domain_arg(name)?;
    let d = store
        .domain(&name)?
        .ok_or_else(|| StoreError::NoDomain(name.clone()))?;
    if published.iter().any(|t| t.trim() == d.token) {
        if d.verified.is_none() {
            store.set_verified(&name, now)?;
        }
        return Ok(true);
    }
    Ok(false)
}

/// `name@domain`, `*@domain` (catch-all) or `/regex/@domain`, with `!`,
/// `!!` or `!!!` in front for the drop, defer and refuse modes.
pub fn alias_arg(spec: &str) -> Result<(String, Pattern, Action), StoreError> {
    let bangs = spec.chars().take_while(|&c| c == '!').count();
    let action = match bangs {
        0 => Action::Forward,
        1 => Action::Drop,
        2 => Action::Defer,
        3 => Action::Refuse,
        _ => return Err(invalid("at most three ! before an alias")),
    };
    let rest = &spec[bangs..];
    let (local, domain) = rest
        .rsplit_once('@')
        .ok_or_else(|| invalid("an alias is NAME@DOMAIN, *@DOMAIN or /REGEX/@DOMAIN"))?;
    let domain = domain_arg(domain)?;
    let pattern = if local == "*" {
        Pattern::CatchAll
    } else if local.len() >= 2 && local.starts_with('/') && local.ends_with('/') {
        let src = &local[1..local.len() - 1];
        compile_pattern(src).map_err(invalid)?;
        Pattern::Regex(src.to_owned())
    } else if local.is_empty()
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '@'))
    {
        return Err(invalid(
            "an alias name is empty or holds a space, comma or @",
        ));
    } else {
        Pattern::Exact(local.to_lowercase())
    };
    Ok((domain, pattern, action))
}

/// Limits on what one `alias add` may create.
#[derive(Debug, Clone, Copy)]
pub struct AliasLimits {
    pub max_targets: usize,
    pub max_new_per_day: u32,
}

/// Adds or replaces an alias. A new alias counts against the domain's
/// daily cap; targets are checked (a forwarding alias needs at least one,
/// the `!` modes none).
pub fn add_alias(
    store: &mut AliasStore,
    spec: &str,
    targets: &[String],
    description: &str,
    limits: AliasLimits,
    now: SystemTime,
) -> Result<(AliasRow, bool), StoreError> {
    let (domain, pattern, action) = alias_arg(spec)?;
    store
        .domain(&domain)?
        .ok_or_else(|| StoreError::NoDomain(domain.clone()))?;
    let targets = check_targets(&pattern, action, targets, limits.max_targets)?;
    if description.chars().any(char::is_control) || description.len() > 512 {
        return Err(invalid("a description is one line of at most 512 octets"));
    }
    let new = NewAlias {
        domain: domain.clone(),
        pattern: pattern.clone(),
        action,
        targets,
        description: description.to_owned(),
    };
    let exists = store.find_alias(&domain, &pattern)?.is_some();
    if !exists {
        let day_start = unix(now) / 86_400 * 86_400;
        let made = store.created_since(&domain, day_start)?;
        if made >= u64::from(limits.max_new_per_day) {
            return Err(invalid(format!(
                "{domain} already has {made} aliases made today, the most aliases.max_new_aliases_per_day allows"
            )));
        }
    }
    store.write(|tx| AliasStore::put_alias(tx, &new, now))?;
    let row = store
        .find_alias(&domain, &pattern)?
        .ok_or_else(|| invalid("the alias vanished while it was written"))?;
    Ok((row, !exists))
}

fn check_targets(
    pattern: &Pattern,
    action: Action,
    targets: &[String],
    max: usize,
) -> Result<Vec<String>, StoreError> {
    if action != Action::Forward {
        if !targets.is_empty() {
            return Err(invalid("an alias with ! takes no targets"));
        }
        return Ok(Vec::new());
    }
    if targets.is_empty() {
        return Err(invalid("a forwarding alias needs at least one target"));
    }
    if targets.len() > max {
        return Err(invalid(format!(
            "{} targets, more than aliases.max_targets ({max})",
            targets.len()
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for t in targets {
        // A regex alias's targets may hold $1..: checked with a stand-in.
        let check = if matches!(pattern, Pattern::Regex(_)) {
            t.replace('$', "x")
        } else {
            t.clone()
        };
        Target::parse(&check).map_err(|e| invalid(e.to_string()))?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The alias a spec names, or an error saying there is none.
pub fn find(store: &AliasStore, spec: &str) -> Result<AliasRow, StoreError> {
    let (domain, pattern, _) = alias_arg(spec)?;
    store
        .find_alias(&domain, &pattern)?
        .ok_or_else(|| invalid(format!("no alias {}", text::clean(spec))))
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// Imports a virtual(5) file: every line checked first (syntax, domains
/// in the store), then all of it in one transaction. Running it twice
/// changes nothing the second time.
pub fn import(
    store: &mut AliasStore,
    text_in: &str,
    file: &str,
    max_targets: usize,
    now: SystemTime,
) -> Result<Imported, StoreError> {
    let entries =
        virtual_file::parse(text_in, file, max_targets).map_err(|e| invalid(e.to_string()))?;
    let mut plan = Vec::with_capacity(entries.len());
    for e in &entries {
        if store.domain(&e.alias.domain)?.is_none() {
            return Err(invalid(format!(
                "{file} line {}: domain {} is not in the alias store (postern-alias domain add)",
                e.line, e.alias.domain
            )));
        }
        let old = store.find_alias(&e.alias.domain, &e.alias.pattern)?;
        plan.push((e, old));
    }
    let mut report = Imported::default();
    store.write(|tx| {
        for (e, old) in &plan {
            match old {
                Some(o) if o.targets == e.alias.targets && o.action == e.alias.action => {
                    report.unchanged += 1;
                    continue;
                }
                Some(_) => report.changed += 1,
                None => report.added += 1,
            }
            AliasStore::put_alias(tx, &e.alias, now)?;
        }
        Ok(())
    })?;
    Ok(report)
}

/// The store (or one domain of it) as a virtual(5) file; returns the
/// text and how many aliases could only be written as comments.
pub fn export(store: &AliasStore, domain: Option<&str>) -> Result<(String, usize), StoreError> {
    let domain = domain.map(domain_arg).transpose()?;
    let rows = store.aliases(domain.as_deref())?;
    let mut out = String::from("# postern-alias export (virtual(5) format)\n");
    let skipped = virtual_file::write(&rows, &mut out);
    Ok((out, skipped))
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, AliasStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = AliasStore::open_or_create(&dir.path().join("a.db")).unwrap();
        add_domain(
            &mut s,
            "Example.COM.",
            DomainMode::Store,
            false,
            SystemTime::now(),
        )
        .unwrap();
        (dir, s)
    }

    const LIMITS: AliasLimits = AliasLimits {
        max_targets: 3,
        max_new_per_day: 3,
    };

    #[test]
    fn verification_needs_the_exact_record() {
        let (_d, mut s) = setup();
        let d = s.domain("example.com").unwrap().unwrap();
        assert!(d.verified.is_none());
        let rec = verification_record(&d);
        assert!(rec.starts_with("postern-site-verification=") && rec.len() == 26 + 32);
        let now = SystemTime::now();
        assert!(!verify_domain(&mut s, "example.com", &["nope".into()], now).unwrap());
        assert!(
            verify_domain(
                &mut s,
                "EXAMPLE.com",
                &["other".into(), d.token.clone()],
                now
            )
            .unwrap()
        );
        assert!(s.domain("example.com").unwrap().unwrap().verified.is_some());
    }

    #[test]
    fn alias_specs() {
        assert_eq!(alias_arg("!!!Old@example.com").unwrap().2, Action::Refuse);
        assert_eq!(alias_arg("*@example.com").unwrap().1, Pattern::CatchAll);
        assert_eq!(
            alias_arg("/^a(.*)$/@example.com").unwrap().1,
            Pattern::Regex("^a(.*)$".into())
        );
        for bad in [
            "nodomain",
            "a b@example.com",
            "!!!!x@example.com",
            "/(/@example.com",
            "x@-bad-",
            "@example.com",
        ] {
            assert!(alias_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_checks_targets_and_the_daily_cap() {
        let (_d, mut s) = setup();
        let now = SystemTime::now();
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(add_alias(&mut s, "a@example.com", &[], "", LIMITS, now).is_err());
        assert!(add_alias(&mut s, "a@example.com", &t(&["x"]), "", LIMITS, now).is_err());
        assert!(
            add_alias(
                &mut s,
                "a@example.com",
                &t(&["1@x.org", "2@x.org", "3@x.org", "4@x.org"]),
                "",
                LIMITS,
                now
            )
            .is_err()
        );
        assert!(add_alias(&mut s, "!a@example.com", &t(&["1@x.org"]), "", LIMITS, now).is_err());
        assert!(add_alias(&mut s, "a@nowhere.org", &t(&["1@x.org"]), "", LIMITS, now).is_err());
        let (row, new) = add_alias(
            &mut s,
            "A@example.com",
            &t(&["1@x.org", "1@X.org"]),
            "first",
            LIMITS,
            now,
        )
        .unwrap();
        assert!(new);
        assert_eq!(row.targets, ["1@x.org"]);
        let (_, new) =
            add_alias(&mut s, "a@example.com", &t(&["2@x.org"]), "", LIMITS, now).unwrap();
        assert!(!new, "a replacement is not a new alias");
        add_alias(
            &mut s,
            "/^r-(.*)$/@example.com",
            &t(&["$1@x.org"]),
            "",
            LIMITS,
            now,
        )
        .unwrap();
        add_alias(&mut s, "!!!gone@example.com", &[], "", LIMITS, now).unwrap();
        let err =
            add_alias(&mut s, "b@example.com", &t(&["1@x.org"]), "", LIMITS, now).unwrap_err();
        assert!(err.to_string().contains("today"), "{err}");
        // Replacing stays possible at the cap.
        add_alias(&mut s, "a@example.com", &t(&["3@x.org"]), "", LIMITS, now).unwrap();
    }

    #[test]
    fn import_is_all_or_nothing_and_idempotent() {
        let (_d, mut s) = setup();
        let now = SystemTime::now();
        let good = "a@example.com x@y.org\n@example.com all@y.org\n";
        assert_eq!(
            import(&mut s, good, "v", 10, now).unwrap(),
            Imported {
                added: 2,
                changed: 0,
                unchanged: 0
            }
        );
        assert_eq!(
            import(&mut s, good, "v", 10, now).unwrap(),
            Imported {
                added: 0,
                changed: 0,
                unchanged: 2
            }
        );
        let bad = "b@example.com x@y.org\nc@other.org x@y.org\n";
        let err = import(&mut s, bad, "v", 10, now).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("other.org"), "{err}");
        assert!(
            s.find_alias("example.com", &Pattern::Exact("b".into()))
                .unwrap()
                .is_none()
        );
        let (text, skipped) = export(&s, None).unwrap();
        assert_eq!(skipped, 0);
        assert!(
            text.contains("a@example.com x@y.org\n@example.com all@y.org\n"),
            "{text}"
        );
        // The export reads back as the same aliases.
        assert_eq!(
            import(&mut s, &text, "export", 10, now).unwrap().unchanged,
            2
        );
    }
}

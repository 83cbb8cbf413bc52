//! The alias rules (postern-rewriter(1), "RESOLUTION"), as decisions
//! without I/O: which rule a local part matches, and the targets it
//! expands to.
//!
//! Order: an exact alias before a regex before the catch-all; at each
//! level the whole local part first, then the part before its `+tag`;
//! and at each of those the store before the domain's TXT records (the
//! caller hands the candidates in that order).

use super::{Rule, Target};
use crate::mail::address::{Address, MAX_ADDRESS};

/// A local part as rules see it: lower-cased, and split at its first `+`
/// (`bob+lists` is tried as itself, then as `bob`, keeping `+lists`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPart {
    pub full: String,
    /// The part before the first `+`, when there is a tag.
    pub base: Option<String>,
    /// The tag without its `+`.
    pub tag: Option<String>,
}

impl LocalPart {
    pub fn new(local: &str) -> LocalPart {
        let full = local.to_lowercase();
        // A quoted local part is taken whole: its `+` is not a delimiter.
        let split = (!full.starts_with('"'))
            .then(|| full.split_once('+'))
            .flatten()
            .filter(|(base, _)| !base.is_empty());
        match split {
            Some((base, tag)) => LocalPart {
                base: Some(base.to_owned()),
                tag: Some(tag.to_owned()),
                full: full.clone(),
            },
            None => LocalPart {
                full,
                base: None,
                tag: None,
            },
        }
    }

    /// The forms to try, most specific first.
    pub fn forms(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.full.as_str()).chain(self.base.as_deref())
    }
}

/// The rule chosen for a local part, with what its regex captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub rule: Rule,
    /// `$0`..`$9` of a regex rule (`None`: the group did not take part).
    pub captures: Vec<Option<String>>,
}

/// Picks the rule for `local`: exact rules (already looked up for each
/// form, in order), then the regexes, then the catch-alls.
pub fn choose<'a>(
    local: &LocalPart,
    exact: impl IntoIterator<Item = &'a Rule>,
    regexes: &[&'a (Rule, regex::Regex)],
    catch_alls: impl IntoIterator<Item = &'a Rule>,
) -> Option<Chosen> {
    if let Some(rule) = exact.into_iter().next() {
        return Some(Chosen {
            rule: rule.clone(),
            captures: Vec::new(),
        });
    }
    for form in local.forms() {
        for (rule, re) in regexes {
            if let Some(c) = re.captures(form) {
                return Some(Chosen {
                    rule: rule.clone(),
                    captures: c
                        .iter()
                        .take(10)
                        .map(|m| m.map(|m| m.as_str().to_owned()))
                        .collect(),
                });
            }
        }
    }
    catch_alls.into_iter().next().map(|rule| Chosen {
        rule: rule.clone(),
        captures: Vec::new(),
    })
}

/// The targets of a chosen forwarding rule: `$N` replaced by what the
/// regex captured, each parsed, the `+tag` carried to address targets,
/// duplicates folded (compared without regard to case). The error is one
/// line for the log and `explain`, naming the rule's fault, not the mail.
pub fn expand(chosen: &Chosen, tag: Option<&str>) -> Result<Vec<Target>, String> {
    let mut out: Vec<Target> = Vec::with_capacity(chosen.rule.targets.len());
    for template in &chosen.rule.targets {
        let text = substitute(template, &chosen.captures)?;
        let target = Target::parse(&text).map_err(|e| e.to_string())?;
        let target = match (target, tag) {
            (Target::Address(a), Some(tag)) => Target::Address(with_tag(&a, tag)),
            (t, _) => t,
        };
        if !out.iter().any(|have| same_target(have, &target)) {
            out.push(target);
        }
    }
    Ok(out)
}

/// True when two targets are the same place (addresses compared without
/// regard to case: no MTA postern forwards to tells them apart by case,
/// and two copies of one message are worse than the rare exception).
pub fn same_target(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Address(x), Target::Address(y)) | (Target::Mailbox(x), Target::Mailbox(y)) => {
            x.as_str().eq_ignore_ascii_case(y.as_str())
        }
        (Target::Url(x), Target::Url(y)) => x == y,
        _ => false,
    }
}

/// `$1`..`$9` or `${1}`..`${9}` (and `$0`, the whole match) replaced;
/// `$$` is a dollar.
/// A captured `@` would move the mail to another domain: refused.
fn substitute(template: &str, captures: &[Option<String>]) -> Result<String, String> {
    if !template.contains('$') {
        return Ok(template.to_owned());
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some(d @ '0'..='9') => {
                chars.next();
                push_capture(&mut out, captures, d)?;
            }
            // `${1}`, as Forward Email's records may write it.
            Some('{') => {
                let mut look = chars.clone();
                look.next();
                match (look.next(), look.next()) {
                    (Some(d @ '0'..='9'), Some('}')) => {
                        chars = look;
                        push_capture(&mut out, captures, d)?;
                    }
                    _ => out.push('$'),
                }
            }
            _ => out.push('$'),
        }
    }
    Ok(out)
}

fn push_capture(out: &mut String, captures: &[Option<String>], digit: char) -> Result<(), String> {
    let n = digit as usize - '0' as usize;
    let captured = captures.get(n).cloned().flatten().unwrap_or_default();
    if captured.contains('@') {
        return Err(format!(
            "${n} captured an @, which would change the target's domain"
        ));
    }
    out.push_str(&captured);
    Ok(())
}

/// `bob@x.org` with tag `lists` is `bob+lists@x.org`; a quoted local part,
/// or one that would grow past the path limit, is left as it is.
fn with_tag(a: &Address, tag: &str) -> Address {
    let s = a.as_str();
    let Some((local, domain)) = s.rsplit_once('@') else {
        return a.clone();
    };
    if local.starts_with('"') || tag.is_empty() || s.len() + tag.len() + 1 > MAX_ADDRESS {
        return a.clone();
    }
    Address::parse(&format!("{local}+{tag}@{domain}")).unwrap_or_else(|_| a.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alias::{Action, Origin, Pattern, compile_pattern};

    fn rule(pattern: Pattern, targets: &[&str]) -> Rule {
        Rule {
            pattern,
            action: Action::Forward,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            origin: Origin::Store { id: 1 },
        }
    }

    #[test]
    fn plus_addressing_splits_once() {
        let l = LocalPart::new("Bob+Lists+x");
        assert_eq!(l.full, "bob+lists+x");
        assert_eq!(l.base.as_deref(), Some("bob"));
        assert_eq!(l.tag.as_deref(), Some("lists+x"));
        assert_eq!(LocalPart::new("+x").base, None);
        assert_eq!(LocalPart::new("\"a+b\"").base, None);
    }

    #[test]
    fn exact_beats_regex_beats_catch_all() {
        let exact = rule(Pattern::Exact("info".into()), &["e@x.org"]);
        let re = (
            rule(Pattern::Regex("^in(.*)$".into()), &["r$1@x.org"]),
            compile_pattern("^in(.*)$").unwrap(),
        );
        let all = rule(Pattern::CatchAll, &["c@x.org"]);
        let l = LocalPart::new("info");
        let c = choose(&l, [&exact], &[&re], [&all]).unwrap();
        assert_eq!(c.rule, exact);
        let c = choose(&l, [], &[&re], [&all]).unwrap();
        assert_eq!(
            expand(&c, None).unwrap(),
            [Target::parse("rfo@x.org").unwrap()]
        );
        let c = choose(&LocalPart::new("sales"), [], &[&re], [&all]).unwrap();
        assert_eq!(c.rule, all);
        assert!(choose(&LocalPart::new("sales"), [], &[&re], []).is_none());
        // Case does not matter to a regex rule.
        let c = choose(&LocalPart::new("INFO"), [], &[&re], []).unwrap();
        assert_eq!(c.captures[1].as_deref(), Some("fo"));
    }

    #[test]
    fn tags_are_carried_to_address_targets_and_duplicates_fold() {
        let r = rule(
            Pattern::Exact("bob".into()),
            &[
                "b@x.org",
                "B@X.org",
                "maildb:box@here.example",
                "\"q a\"@x.org",
            ],
        );
        let c = Chosen {
            rule: r,
            captures: vec![],
        };
        let t = expand(&c, Some("lists")).unwrap();
        assert_eq!(
            t.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            ["b+lists@x.org", "maildb:box@here.example", "\"q a\"@x.org"]
        );
    }

    #[test]
    fn substitution_cannot_change_the_domain() {
        let r = rule(Pattern::Regex("(.*)".into()), &["$1@x.org"]);
        let c = Chosen {
            rule: r.clone(),
            captures: vec![Some("a@evil.org".into()), Some("a@evil.org".into())],
        };
        assert!(expand(&c, None).unwrap_err().contains('@'));
        let c = Chosen {
            rule: r,
            captures: vec![Some("a".into())],
        };
        // $1 did not take part: empty, and so no local part: refused.
        assert!(expand(&c, None).is_err());
        let c = Chosen {
            rule: rule(Pattern::Regex("(.)(.)".into()), &["${2}-$1@x.org"]),
            captures: vec![Some("ab".into()), Some("a".into()), Some("b".into())],
        };
        assert_eq!(expand(&c, None).unwrap()[0].to_string(), "b-a@x.org");
        let r = rule(Pattern::Regex("x".into()), &["a$$b@x.org", "c$@x.org"]);
        let c = Chosen {
            rule: r,
            captures: vec![],
        };
        assert_eq!(
            expand(&c, None)
                .unwrap()
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>(),
            ["a$b@x.org", "c$@x.org"]
        );
    }
}

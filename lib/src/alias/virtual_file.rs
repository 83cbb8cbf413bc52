//! virtual(5) alias files, the format Postfix administrators already
//! keep (`virtual_alias_maps = hash:/etc/postfix/virtual`), read by
//! `postern-alias import` and written by `postern-alias export`.
//!
//! Lines are `PATTERN RESULT, RESULT...`; `#` comments and blank lines
//! are skipped; a line starting with white space continues the one before
//! (Postfix's table syntax, postmap(1)). PATTERN is `user@domain` or
//! `@domain` (a catch-all); a bare `user` depends on `$myorigin`, which
//! postern does not know, so it is refused. Each RESULT is an address, a
//! `maildb:ADDRESS` mailbox or an http(s) URL. One bad line and nothing
//! is imported: the error names the line.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::store::{AliasRow, NewAlias, pattern_label};
use super::{Action, Pattern, Target, domain_key};

/// Longest line of a virtual file (a logical line, continuations joined).
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file} line {line}: {message}")]
pub struct VirtualError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// One alias of a file and the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub alias: NewAlias,
}

/// Parses a whole file; `file` names it in errors.
pub fn parse(text: &str, file: &str, max_targets: usize) -> Result<Vec<Entry>, VirtualError> {
    let err = |line, message: String| VirtualError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            match logical.last_mut() {
                Some((_, l)) => {
                    l.push(' ');
                    l.push_str(trimmed);
                }
                None => return Err(err(n, "continuation line with nothing to continue".into())),
            }
        } else {
            logical.push((n, trimmed.to_owned()));
        }
        if logical.last().is_some_and(|(_, l)| l.len() > MAX_LINE) {
            return Err(err(n, format!("line is longer than {MAX_LINE} octets")));
        }
    }
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut out = Vec::with_capacity(logical.len());
    for (n, line) in logical {
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(err(n, "control character".into()));
        }
        let (pattern, rest) = line
            .split_once([' ', '\t'])
            .ok_or_else(|| err(n, "a pattern without a result".into()))?;
        let (local, domain) = pattern.rsplit_once('@').ok_or_else(|| {
            err(
                n,
                "pattern has no @domain (a bare user depends on $myorigin)".into(),
            )
        })?;
        let domain = domain_key(domain)
            .ok_or_else(|| err(n, "pattern domain is not a domain name".into()))?;
        let pattern = if local.is_empty() {
            Pattern::CatchAll
        } else {
            let local = local.to_lowercase();
            if local
                .chars()
                .any(|c| c.is_whitespace() || c == ',' || c == '"')
            {
                return Err(err(
                    n,
                    "pattern local part holds a space, comma or quote".into(),
                ));
            }
            Pattern::Exact(local)
        };
        let mut targets: Vec<String> = Vec::new();
        for t in rest.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
            Target::parse(t).map_err(|e| err(n, e.to_string()))?;
            if !targets.iter().any(|have| have.eq_ignore_ascii_case(t)) {
                targets.push(t.to_owned());
            }
        }
        if targets.is_empty() {
            return Err(err(n, "a pattern without a result".into()));
        }
        if targets.len() > max_targets {
            return Err(err(
                n,
                format!(
                    "{} targets, more than aliases.max_targets ({max_targets})",
                    targets.len()
                ),
            ));
        }
        let key = (domain.clone(), pattern_label(&pattern));
        if let Some(first) = seen.insert(key, n) {
            return Err(err(n, format!("the same pattern as line {first}")));
        }
        out.push(Entry {
            line: n,
            alias: NewAlias {
                domain,
                pattern,
                action: Action::Forward,
                targets,
                description: String::new(),
            },
        });
    }
    Ok(out)
}

/// Writes aliases in virtual(5) form. What the format cannot say (regex
/// aliases, `!` modes, disabled aliases) is written as a comment naming
/// the alias, so the file stays a faithful list; the count of those is
/// returned.
pub fn write(rows: &[AliasRow], out: &mut String) -> usize {
    let mut skipped = 0;
    for r in rows {
        let pattern = match &r.pattern {
            Pattern::Exact(n) => format!("{n}@{}", r.domain),
            Pattern::CatchAll => format!("@{}", r.domain),
            Pattern::Regex(_) => String::new(),
        };
        if pattern.is_empty() || r.action != Action::Forward || !r.enabled {
            skipped += 1;
            let _ = writeln!(
                out,
                "# not expressible in virtual(5): {} ({}{})",
                r.label(),
                super::store::action_str(r.action),
                if r.enabled { "" } else { ", disabled" }
            );
            continue;
        }
        let _ = writeln!(out, "{pattern} {}", r.targets.join(", "));
    }
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_postfix_admins_write() {
        let text = "# aliases\n\
                    info@Example.COM  alice@x.org, bob@y.org\n\
                    sales@example.com alice@x.org\n\
                    \tcarol@z.org\n\
                    \n\
                    @example.net catchall@x.org maildb:box@example.net https://hook.example/in\n";
        let e = parse(text, "virtual", 10).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].alias.pattern, Pattern::Exact("info".into()));
        assert_eq!(e[0].alias.domain, "example.com");
        assert_eq!(e[1].alias.targets, ["alice@x.org", "carol@z.org"]);
        assert_eq!(e[1].line, 3);
        assert_eq!(e[2].alias.pattern, Pattern::CatchAll);
        assert_eq!(e[2].alias.targets.len(), 3);
    }

    #[test]
    fn bad_lines_are_named() {
        let line_of = |text: &str| parse(text, "v", 2).unwrap_err().line;
        assert_eq!(line_of("a@b.org x@y.org\nbob x@y.org\n"), 2);
        assert_eq!(line_of("a@b.org\n"), 1);
        assert_eq!(line_of("a@b.org not-an-address\n"), 1);
        assert_eq!(line_of("# c\n  x@y.org\n"), 2);
        assert_eq!(line_of("a@b.org x@y.org\nA@B.org z@y.org\n"), 2);
        assert_eq!(line_of("a@b.org x@y.org, y@y.org, z@y.org\n"), 1);
        assert_eq!(line_of("a@b..org x@y.org\n"), 1);
        assert_eq!(line_of("a@b.org x@y.org\r\nq@b.org maildb:nobody\n"), 2);
        let e = parse("a@b.org x@y.org\nb\"c@b.org x@y.org\n", "v", 2).unwrap_err();
        assert!(e.to_string().starts_with("v line 2: "), "{e}");
    }

    #[test]
    fn idn_domains_in_one_form() {
        let e = parse("info@Bücher.example x@y.org\n", "v", 10).unwrap();
        assert_eq!(e[0].alias.domain, "xn--bcher-kva.example");
    }
}

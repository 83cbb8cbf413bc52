//! `postern-rewriter explain ADDRESS`: where mail for an address goes and
//! why — the domain's source, each rule applied (store row or TXT entry),
//! the targets or the refusal. An administrator's first debugging tool,
//! so it runs the same code as the stage, with nothing counted or sent.

use std::time::SystemTime;

use serde::Serialize;

use super::Rewriter;
use crate::alias::domain_key;
use crate::alias::lookup::{Resolution, ResolveError};
use crate::alias::store::DomainMode;
use crate::exit::{Failure, ToFailure};
use crate::mail::address::Address;

/// What `explain` found for one address.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub address: String,
    /// The input is not an address at all.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unusable: bool,
    /// How its domain is served.
    pub domain: String,
    /// `forward`, `drop`, `refuse`, `defer`, `reverse` (SRS) or `pass`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Each rule applied: the address it matched and where it was found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleApplied>,
    /// The domain's TXT records, when it is served from them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txt: Option<TxtRecords>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TxtRecords {
    /// Usable entries.
    pub rules: usize,
    /// `forward-email-port=`, when published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Entries that cannot be used, each with its reason.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleApplied {
    pub address: String,
    pub source: String,
}

pub fn explain(
    rewriter: &mut Rewriter<'_>,
    input: &str,
    now: SystemTime,
) -> Result<Explanation, Failure> {
    let mut e = Explanation {
        address: input.to_owned(),
        unusable: false,
        domain: String::new(),
        result: "pass",
        status: None,
        reason: None,
        targets: Vec::new(),
        rules: Vec::new(),
        txt: None,
    };
    let address = match Address::parse(input) {
        Ok(a) => a,
        Err(err) => {
            e.unusable = true;
            e.result = "refuse";
            e.reason = Some(err.to_string());
            return Ok(e);
        }
    };
    e.domain = domain_source(rewriter, &address)?;
    // A DNS failure shows in the result below.
    if let Ok(Some(p)) = rewriter.aliases().published(address.domain()) {
        e.txt = Some(TxtRecords {
            rules: p.rules.len(),
            port: p.port,
            problems: p.problems.clone(),
        });
    }
    match rewriter.srs().reverse(&address, now) {
        Ok(Some(original)) => {
            e.result = "reverse";
            e.targets.push(original.as_str().to_owned());
            e.reason =
                Some("an SRS address of ours: bounces to it go to the original sender".into());
            return Ok(e);
        }
        Ok(None) => {}
        Err(err) => {
            e.result = "refuse";
            e.status = Some(err.status().to_string());
            e.reason = Some(err.to_string());
            return Ok(e);
        }
    }
    let resolution = match rewriter.aliases().resolve(&address) {
        Ok(r) => r,
        Err(ResolveError::Dns(err)) => {
            e.result = "defer";
            e.status = Some(crate::mail::status::DNS_FAILURE.to_string());
            e.reason = Some(err.to_string());
            return Ok(e);
        }
        Err(ResolveError::Store(err)) => return Err(err.to_failure()),
    };
    let steps = match resolution {
        Resolution::NotOurs => {
            e.reason = Some("not one of our domains: passed on unchanged".into());
            Vec::new()
        }
        Resolution::Forward { targets, steps } => {
            e.result = "forward";
            e.targets = targets.iter().map(|t| t.to_string()).collect();
            steps
        }
        Resolution::Drop { steps } => {
            e.result = "drop";
            e.reason = Some("accepted and dropped quietly".into());
            steps
        }
        Resolution::Fail {
            status,
            reason,
            steps,
        } => {
            e.result = if status.is_transient() {
                "defer"
            } else {
                "refuse"
            };
            e.status = Some(status.to_string());
            e.reason = Some(reason);
            steps
        }
    };
    e.rules = steps
        .iter()
        .map(|s| RuleApplied {
            address: s.address.clone(),
            source: format!(
                "{} ({})",
                s.rule.origin,
                crate::alias::store::pattern_label(&s.rule.pattern)
            ),
        })
        .collect();
    Ok(e)
}

/// One phrase for where a domain's aliases come from.
fn domain_source(rewriter: &mut Rewriter<'_>, address: &Address) -> Result<String, Failure> {
    let Some(key) = domain_key(address.domain()) else {
        return Ok(format!("{} (not a domain name)", address.domain()));
    };
    if let Some(store) = rewriter.aliases().store()
        && let Some(d) = store.domain(&key).map_err(|e| e.to_failure())?
    {
        let verified = if d.verified.is_some() {
            "verified"
        } else {
            "NOT verified: mail waits (4.7.1)"
        };
        let source = match d.mode {
            DomainMode::Store => "the alias store",
            DomainMode::Dns => "the alias store, then its DNS TXT records",
        };
        return Ok(format!("{key}: {source}; {verified}"));
    }
    if rewriter
        .config
        .aliases
        .dns_domains
        .iter()
        .any(|d| domain_key(d).as_deref() == Some(&key))
    {
        return Ok(format!("{key}: its DNS TXT records (aliases.dns_domains)"));
    }
    Ok(format!("{key}: not one of ours"))
}

impl Explanation {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        let mut out = format!("address: {}\n", self.address);
        if !self.domain.is_empty() {
            out.push_str(&format!("domain:  {}\n", self.domain));
        }
        let result = match (self.result, &self.status, &self.reason) {
            ("forward", _, _) => format!("forwarded to {}", self.targets.join(", ")),
            ("reverse", _, _) => format!("SRS reversed to <{}>", self.targets.join(", ")),
            (r, Some(s), Some(why)) => format!("{r} {s} {why}"),
            (r, None, Some(why)) => format!("{r}: {why}"),
            (r, _, None) => r.to_owned(),
        };
        if let Some(t) = &self.txt {
            out.push_str(&format!("txt:     {} usable entries", t.rules));
            if let Some(port) = t.port {
                out.push_str(&format!(", port {port}"));
            }
            out.push('\n');
            for p in &t.problems {
                out.push_str(&format!("         unusable: {p}\n"));
            }
        }
        out.push_str(&format!("result:  {result}\n"));
        for (i, r) in self.rules.iter().enumerate() {
            let label = if i == 0 { "rule:   " } else { "        " };
            out.push_str(&format!("{label} {} <- {}\n", r.address, r.source));
        }
        out
    }
}

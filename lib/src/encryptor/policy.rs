//! The encryptor's decisions, without I/O: which policy and key sources
//! apply to a recipient, and how recipients are grouped into jobs.
//!
//! Settings, most specific first: the alias the recipient came through
//! (`postern-alias key policy`), then that alias's domain
//! (`postern-alias domain set DOMAIN encrypt|wkd`), then the
//! configuration (`encryptor.policy`, `wkd.enabled`).

use std::collections::BTreeMap;

use crate::alias::store::{AliasCrypto, parse_policy};
use crate::config::EncryptPolicy;

/// What applies to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applies {
    pub policy: EncryptPolicy,
    pub wkd: bool,
}

/// `alias`: the alias's own settings; `domain_encrypt`, `domain_wkd`:
/// the domain's settings as stored (empty: not set).
pub fn applies(
    alias: Option<&AliasCrypto>,
    domain_encrypt: &str,
    domain_wkd: &str,
    default_policy: EncryptPolicy,
    default_wkd: bool,
) -> Applies {
    let policy = alias
        .and_then(|a| a.encrypt)
        .or_else(|| parse_policy(domain_encrypt))
        .unwrap_or(default_policy);
    let wkd = alias.and_then(|a| a.wkd).unwrap_or(match domain_wkd {
        "true" => true,
        "false" => false,
        _ => default_wkd,
    });
    Applies { policy, wkd }
}

/// Groups recipient indexes by the set of key fingerprints each one is
/// encrypted to (sorted, so equal sets compare equal); the empty set is
/// the group that goes out as it came. Groups come in the order their
/// first recipient does.
pub fn group(sets: &[Vec<String>]) -> Vec<(Vec<String>, Vec<usize>)> {
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut members: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, set) in sets.iter().enumerate() {
        let mut key = set.clone();
        key.sort();
        key.dedup();
        if !members.contains_key(&key) {
            order.push(key.clone());
        }
        members.entry(key).or_default().push(i);
    }
    order
        .into_iter()
        .map(|k| {
            let m = members.remove(&k).unwrap_or_default();
            (k, m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_setting_wins() {
        let alias = AliasCrypto {
            encrypt: Some(EncryptPolicy::Require),
            wkd: Some(false),
            ..Default::default()
        };
        let a = applies(Some(&alias), "never", "true", EncryptPolicy::IfKey, true);
        assert_eq!(
            a,
            Applies {
                policy: EncryptPolicy::Require,
                wkd: false
            }
        );
        let a = applies(
            Some(&AliasCrypto::default()),
            "never",
            "false",
            EncryptPolicy::IfKey,
            true,
        );
        assert_eq!((a.policy, a.wkd), (EncryptPolicy::Never, false));
        let a = applies(None, "", "", EncryptPolicy::Require, true);
        assert_eq!((a.policy, a.wkd), (EncryptPolicy::Require, true));
        let a = applies(None, "garbage", "garbage", EncryptPolicy::IfKey, false);
        assert_eq!((a.policy, a.wkd), (EncryptPolicy::IfKey, false));
    }

    #[test]
    fn recipients_group_by_key_set() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let sets = vec![s(&["B", "A"]), s(&[]), s(&["A", "B"]), s(&["C"]), s(&[])];
        let g = group(&sets);
        assert_eq!(
            g,
            vec![
                (s(&["A", "B"]), vec![0, 2]),
                (s(&[]), vec![1, 4]),
                (s(&["C"]), vec![3]),
            ]
        );
        assert!(group(&[]).is_empty());
    }
}

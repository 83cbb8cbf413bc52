//! Rate limits: messages a day to each of our domains and from each
//! envelope sender (4.7.0 when over). Counters sit behind `Counters`, so
//! several MX hosts can later share one backend (Redis); the embedded one
//! is the alias store, whose single-statement upsert keeps concurrent
//! rewriters exact.
//!
//! A sender is counted under a keyed hash of its address, never the
//! address: the counters must not become a list of who wrote here.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::alias::store::{AliasStore, StoreError};
use crate::mail::text;

/// Where counts are kept.
pub trait Counters {
    /// Adds `n` to each key's count for `day`, all at once, and returns
    /// the new counts in the same order.
    fn add(&mut self, keys: &[&str], day: i64, n: u64) -> Result<Vec<u64>, StoreError>;
    /// Forgets days before `day`.
    fn forget_before(&mut self, day: i64) -> Result<(), StoreError>;
}

impl Counters for AliasStore {
    fn add(&mut self, keys: &[&str], day: i64, n: u64) -> Result<Vec<u64>, StoreError> {
        self.count_all(keys, day, n)
    }

    fn forget_before(&mut self, day: i64) -> Result<(), StoreError> {
        self.prune_counters(day).map(|_| ())
    }
}

/// One limit a message went over, for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Over {
    /// `domain example.com` or `sender` (never the sender's address).
    pub what: String,
    pub limit: u64,
}

/// The key a sender is counted under.
pub fn sender_key(secret: &[u8; 32], sender: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(sender.to_ascii_lowercase().as_bytes());
    format!("sender:{}", text::hex(&mac.finalize().into_bytes()[..16]))
}

/// Counts one message for each of `domains` (with its limit, 0: none)
/// and for the sender key (with its limit), and says which limit it went
/// over first, if any. Every counter is bumped either way: a sender that
/// keeps trying stays over.
pub fn count(
    counters: &mut dyn Counters,
    day: i64,
    domains: &[(String, u64)],
    sender: Option<(&str, u64)>,
) -> Result<Option<Over>, StoreError> {
    let domain_keys: Vec<String> = domains.iter().map(|(d, _)| format!("domain:{d}")).collect();
    let mut keys: Vec<&str> = domain_keys.iter().map(String::as_str).collect();
    let mut limits: Vec<(String, u64)> = domains
        .iter()
        .map(|(d, limit)| (format!("domain {d}"), *limit))
        .collect();
    if let Some((key, limit)) = sender {
        keys.push(key);
        limits.push(("sender".into(), limit));
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let counts = counters.add(&keys, day, 1)?;
    // The first message of the day to a domain clears yesterday's counts
    // (not a sender's first: every new sender would scan the table).
    let first_of_day = counts[..domains.len()].contains(&1);
    let over = counts
        .iter()
        .zip(limits)
        .find(|(n, (_, limit))| *limit > 0 && **n > *limit)
        .map(|(_, (what, limit))| Over { what, limit });
    // Yesterday's counters go with the first message of a new day.
    if first_of_day {
        counters.forget_before(day)?;
    }
    Ok(over)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_per_day_and_name_no_sender() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = AliasStore::open_or_create(&dir.path().join("a.db")).unwrap();
        let key = sender_key(&[7; 32], "Alice@Example.org");
        assert_eq!(key, sender_key(&[7; 32], "alice@example.org"));
        assert!(!key.contains("alice"));
        let domains = [("example.com".to_string(), 2)];
        for _ in 0..2 {
            assert_eq!(
                count(&mut store, 10, &domains, Some((&key, 5))).unwrap(),
                None
            );
        }
        let over = count(&mut store, 10, &domains, Some((&key, 5)))
            .unwrap()
            .unwrap();
        assert_eq!(over.what, "domain example.com");
        // A new day starts again, and forgets the old one.
        assert_eq!(
            count(&mut store, 11, &domains, Some((&key, 5))).unwrap(),
            None
        );
        assert_eq!(store.count("domain:example.com", 10, 0).unwrap(), 0);
        let over = (0..5)
            .map(|_| count(&mut store, 11, &[], Some((&key, 5))).unwrap())
            .last()
            .unwrap()
            .unwrap();
        assert_eq!(over.what, "sender");
    }
}

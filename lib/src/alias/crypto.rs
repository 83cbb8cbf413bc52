//! `postern-alias key`: the OpenPGP key and the encryption settings of
//! an exact alias (postern-encryptor(1) reads them). A key is checked
//! when it is set — one public key, usable for encryption now, with a
//! user ID that names a target of the alias unless the operator says it
//! is for every target — so a bad key is refused at the prompt, not
//! discovered when mail arrives.

use std::time::SystemTime;

use super::Pattern;
use super::admin::find;
use super::store::{AliasCrypto, AliasKey, AliasRow, AliasStore, StoreError, parse_policy};
use crate::encryptor::openpgp;

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

/// An exact alias, the only kind a key or policy can be attached to.
fn exact(store: &AliasStore, spec: &str) -> Result<AliasRow, StoreError> {
    let row = find(store, spec)?;
    if !matches!(row.pattern, Pattern::Exact(_)) {
        return Err(invalid(format!(
            "{} is a pattern: keys and policies go on exact aliases",
            row.label()
        )));
    }
    Ok(row)
}

/// What a key set on an alias is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub alias: String,
    pub fingerprint: String,
    pub user_ids: Vec<String>,
    /// The targets the key is used for.
    pub targets: Vec<String>,
    pub any_user_id: bool,
}

/// Checks `bytes` (armored or binary) and attaches the key to `spec`.
pub fn set_key(
    store: &mut AliasStore,
    spec: &str,
    bytes: &[u8],
    any_user_id: bool,
    now: SystemTime,
) -> Result<KeyInfo, StoreError> {
    let row = exact(store, spec)?;
    let mut certs = openpgp::parse_keys(bytes).map_err(|e| invalid(e.to_string()))?;
    let cert = match certs.len() {
        1 => certs.remove(0),
        0 => return Err(invalid("the file holds no OpenPGP public key")),
        n => return Err(invalid(format!("the file holds {n} keys: give one"))),
    };
    cert.check(now).map_err(|e| invalid(e.to_string()))?;
    let emails = cert.emails();
    let targets: Vec<String> = row
        .targets
        .iter()
        .filter(|t| any_user_id || emails.iter().any(|e| e.eq_ignore_ascii_case(t)))
        .cloned()
        .collect();
    if targets.is_empty() {
        return Err(invalid(format!(
            "no user ID of key {} names a target of {} ({}); --any-user-id uses it for every target",
            cert.fingerprint(),
            row.label(),
            row.targets.join(", ")
        )));
    }
    let mut crypto = store.alias_crypto_by_id(row.id)?;
    crypto.key = Some(AliasKey {
        key: cert.to_bytes(),
        fingerprint: cert.fingerprint(),
        any_user_id,
    });
    store.set_alias_crypto(row.id, &crypto, now)?;
    Ok(KeyInfo {
        alias: row.label(),
        fingerprint: cert.fingerprint(),
        user_ids: emails,
        targets,
        any_user_id,
    })
}

/// Takes the key off `spec` (its policy stays).
pub fn remove_key(
    store: &mut AliasStore,
    spec: &str,
    now: SystemTime,
) -> Result<String, StoreError> {
    let row = exact(store, spec)?;
    let mut crypto = store.alias_crypto_by_id(row.id)?;
    if crypto.key.take().is_none() {
        return Err(invalid(format!("{} has no key", row.label())));
    }
    store.set_alias_crypto(row.id, &crypto, now)?;
    Ok(row.label())
}

/// Sets the policy (`if-key`, `require`, `never`, or `default` for the
/// domain's) and WKD (`on`, `off`, `default`) of `spec`; `None` leaves
/// one as it is.
pub fn set_policy(
    store: &mut AliasStore,
    spec: &str,
    encrypt: Option<&str>,
    wkd: Option<&str>,
    now: SystemTime,
) -> Result<(AliasRow, AliasCrypto), StoreError> {
    let row = exact(store, spec)?;
    let mut crypto = store.alias_crypto_by_id(row.id)?;
    if let Some(e) = encrypt {
        crypto.encrypt =
            match e.to_ascii_lowercase().as_str() {
                "default" => None,
                p => Some(parse_policy(p).ok_or_else(|| {
                    invalid("--encrypt must be if-key, require, never or default")
                })?),
            };
    }
    if let Some(w) = wkd {
        crypto.wkd = match w.to_ascii_lowercase().as_str() {
            "default" => None,
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => return Err(invalid("--wkd must be on, off or default")),
        };
    }
    store.set_alias_crypto(row.id, &crypto, now)?;
    Ok((row, crypto))
}

/// The alias `spec` and its encryption settings, with the key parsed.
pub fn show(
    store: &AliasStore,
    spec: &str,
) -> Result<(AliasRow, AliasCrypto, Option<openpgp::Cert>), StoreError> {
    let row = exact(store, spec)?;
    let crypto = store.alias_crypto_by_id(row.id)?;
    let cert = match &crypto.key {
        Some(k) => openpgp::parse_keys(&k.key)
            .map_err(|e| invalid(format!("the stored key of {}: {e}", row.label())))?
            .into_iter()
            .next(),
        None => None,
    };
    Ok((row, crypto, cert))
}

//! The operator's keyring through gpgme, against a real GnuPG home: exact
//! address matches only, disabled and revoked keys left out, answers kept
//! until the keyring changes, and a keyring that is not there refused.

#[path = "gpg/mod.rs"]
mod gpg;

use std::time::Duration;

use postern::config::EncryptorConfig;
use postern::encryptor::keyring::{Keyring, KeyringError};

fn config(home: &std::path::Path) -> EncryptorConfig {
    EncryptorConfig {
        keyring: home.to_path_buf(),
        keyring_timeout: Duration::from_secs(20),
        ..EncryptorConfig::default()
    }
}

#[test]
fn only_usable_keys_naming_exactly_the_address_are_found() {
    let home = gpg::GnupgHome::new();
    let bob = home.ed25519("Bob <bob@example.net>");
    let rob = home.ed25519("Rob <rob@example.net>");
    let off = home.ed25519("Off <off@example.net>");
    let gone = home.ed25519("Gone <gone@example.net>");
    home.revoke(&gone);
    home.run(
        &["--command-fd", "0", "--edit-key", &off.fingerprint],
        b"disable\nsave\n",
    );
    let mut ring = Keyring::open(&config(home.path()))
        .expect("opens")
        .expect("a keyring");
    let found = ring.lookup("bob@example.net").expect("lookup").clone();
    assert_eq!(found.fingerprints, [bob.fingerprint.as_str()]);
    let certs = postern::encryptor::openpgp::parse_keys(&found.export).expect("the export parses");
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].fingerprint(), bob.fingerprint);
    // Not a substring, not a disabled or revoked key.
    for addr in [
        "ob@example.net",
        "off@example.net",
        "gone@example.net",
        "nobody@example.net",
    ] {
        let f = ring.lookup(addr).expect("lookup");
        assert!(f.fingerprints.is_empty(), "{addr}: {:?}", f.fingerprints);
        assert!(f.export.is_empty());
    }
    assert_eq!(
        ring.lookup("rob@example.net").expect("lookup").fingerprints,
        [rob.fingerprint.as_str()]
    );
    // Kept: a key imported later is seen once the keyring file changes.
    assert!(
        ring.lookup("new@example.net")
            .expect("lookup")
            .fingerprints
            .is_empty()
    );
    let other = gpg::GnupgHome::new();
    let new = other.ed25519("New <new@example.net>");
    home.import(&other.export(&[&new.fingerprint]));
    assert_eq!(
        ring.lookup("new@example.net").expect("lookup").fingerprints,
        [new.fingerprint.as_str()]
    );
}

#[test]
fn a_keyring_that_is_not_there_or_not_usable_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    assert!(matches!(
        Keyring::open(&config(&missing)),
        Err(KeyringError::Missing(_))
    ));
    assert!(matches!(
        Keyring::open(&EncryptorConfig {
            keyring: "".into(),
            ..EncryptorConfig::default()
        }),
        Ok(None)
    ));
    let home = gpg::GnupgHome::new();
    let mut c = config(home.path());
    c.gpg = dir.path().join("no-such-gpg");
    let mut ring = Keyring::open(&c).expect("opens").expect("a keyring");
    let e = ring.lookup("bob@example.net").expect_err("no gpg to run");
    assert!(matches!(e, KeyringError::Start { .. }), "{e}");
}

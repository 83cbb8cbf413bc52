//! postern's OpenPGP keys and messages against the real gpg 2.2: keys made
//! and exported by gpg parse and check as gpg would judge them, and what
//! `encrypt` writes, gpg decrypts byte for byte.

mod gpg;

use std::time::{Duration, Instant, SystemTime};

use gpg::GnupgHome;
use postern::encryptor::openpgp::{
    Cert, EncryptError, KeyError, KeyProblem, NoEncryptionKey, encrypt, parse_keys,
};

fn one(bytes: &[u8]) -> Cert {
    let mut certs = parse_keys(bytes).expect("gpg's export parses");
    assert_eq!(certs.len(), 1);
    certs.remove(0)
}

fn encrypted(plaintext: &[u8], to: &[&Cert]) -> Vec<u8> {
    let mut out = Vec::new();
    encrypt(plaintext, to, SystemTime::now(), &mut out).expect("encrypt");
    out
}

/// Plaintexts a mail can be: 8-bit, NUL, mixed line ends, a line longer
/// than any limit, nothing at all, and a few MB.
fn plaintexts() -> Vec<(&'static str, Vec<u8>)> {
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let mixed = b"CRLF\r\nLF\nCR\rCRLF again\r\n\r\n\n.\r\nend without newline".to_vec();
    let long_line: Vec<u8> = b"x".repeat(200_000);
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        ("8-bit and NUL", all_bytes),
        ("CRLF and LF", mixed),
        ("a 200 KB line", long_line),
        ("empty", Vec::new()),
        ("3 MB", big),
    ]
}

#[test]
fn gpg_decrypts_what_we_encrypt_to_cv25519_rsa_and_both() {
    let alice_home = GnupgHome::new();
    let bob_home = GnupgHome::new();
    let alice_key = alice_home.ed25519("Alice <alice@example.org>");
    let bob_key = bob_home.rsa3072("Bob <bob@example.org>");
    let alice = one(&alice_home.export(&[&alice_key.fingerprint]));
    let bob = one(&bob_home.export(&[&bob_key.fingerprint]));
    let now = SystemTime::now();
    assert_eq!(
        alice.encryption_key_fingerprint(now).unwrap(),
        alice_key.subkeys[0]
    );
    assert_eq!(
        bob.encryption_key_fingerprint(now).unwrap(),
        bob_key.subkeys[0]
    );

    for (what, plaintext) in plaintexts() {
        let to_alice = encrypted(&plaintext, &[&alice]);
        assert_eq!(
            alice_home.decrypt(&to_alice).unwrap(),
            plaintext,
            "cv25519: {what}"
        );
        let to_bob = encrypted(&plaintext, &[&bob]);
        assert_eq!(bob_home.decrypt(&to_bob).unwrap(), plaintext, "RSA: {what}");
        let to_both = encrypted(&plaintext, &[&alice, &bob]);
        assert_eq!(
            alice_home.decrypt(&to_both).unwrap(),
            plaintext,
            "both, Alice: {what}"
        );
        assert_eq!(
            bob_home.decrypt(&to_both).unwrap(),
            plaintext,
            "both, Bob: {what}"
        );
    }
    // Neither can read what was only for the other.
    let to_bob = encrypted(b"for Bob only", &[&bob]);
    assert!(alice_home.decrypt(&to_bob).is_err());
}

#[test]
fn messages_are_seipd_v1_with_one_pkesk_v3_per_key() {
    let home = GnupgHome::new();
    let a = home.ed25519("A <a@example.org>");
    let b = home.rsa3072("B <b@example.org>");
    let certs = parse_keys(&home.export(&[&a.fingerprint, &b.fingerprint])).unwrap();
    let to: Vec<&Cert> = certs.iter().collect();
    let message = encrypted(&b"x".repeat(100_000), &to);

    let text = String::from_utf8(message.clone()).expect("armor is text");
    assert!(text.starts_with("-----BEGIN PGP MESSAGE-----\n"));
    assert!(text.ends_with("\n-----END PGP MESSAGE-----\n"));
    assert!(!text.contains('\r'));

    let packets = home.list_packets(&message);
    let pkesks: Vec<&str> = packets
        .lines()
        .filter(|l| l.starts_with(":pubkey enc packet:"))
        .collect();
    assert_eq!(pkesks.len(), 2, "{packets}");
    assert!(pkesks.iter().all(|l| l.contains("version 3")), "{packets}");
    for sub in [&a.subkeys[0], &b.subkeys[0]] {
        let keyid = &sub[sub.len() - 16..];
        assert!(packets.contains(keyid), "no PKESK for {keyid}: {packets}");
    }
    assert!(packets.contains(":encrypted data packet:"), "{packets}");
    assert!(packets.contains("mdc_method: 2"), "{packets}");
    assert!(!packets.contains("aead"), "{packets}");

    // Decrypted, gpg tells the cipher and that nothing was compressed.
    let out = home.try_run(
        &[
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--verbose",
            "--list-packets",
        ],
        &message,
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AES256"), "{stderr}");
    assert!(listing.contains(":literal data packet:"), "{listing}");
    assert!(listing.contains("mode b"), "{listing}");
    assert!(!listing.contains(":compressed packet:"), "{listing}");
}

#[test]
fn a_revoked_key_is_refused() {
    let home = GnupgHome::new();
    let key = home.ed25519("A <a@example.org>");
    assert_eq!(
        one(&home.export(&[&key.fingerprint])).check(SystemTime::now()),
        Ok(())
    );
    home.revoke(&key);
    let cert = one(&home.export(&[&key.fingerprint]));
    let problem = KeyProblem::Revoked {
        fingerprint: key.fingerprint.clone(),
    };
    assert_eq!(cert.check(SystemTime::now()), Err(problem.clone()));
    assert_eq!(
        problem.to_string(),
        format!("the key {} is revoked", key.fingerprint)
    );
    let refused = encrypt(b"x", &[&cert], SystemTime::now(), &mut Vec::new());
    assert!(
        matches!(refused, Err(EncryptError::Key(KeyProblem::Revoked { .. }))),
        "{refused:?}"
    );
    // A revoked key keeps its user IDs: the store can still say whose it is.
    assert_eq!(cert.emails(), ["a@example.org"]);
}

#[test]
fn an_expired_key_is_refused() {
    let home = GnupgHome::new();
    let key = home.expired("A <a@example.org>");
    let cert = one(&home.export(&[&key.fingerprint]));
    let problem = cert.check(SystemTime::now()).unwrap_err();
    let KeyProblem::Expired { fingerprint, on } = &problem else {
        panic!("not Expired: {problem:?}");
    };
    assert_eq!(fingerprint, &key.fingerprint);
    let ago = SystemTime::now().duration_since(*on).unwrap();
    assert!(ago > Duration::from_secs(300 * 86_400), "{problem}");
    assert!(
        problem
            .to_string()
            .starts_with(&format!("the key {} expired on 20", key.fingerprint)),
        "{problem}"
    );
    // A year and a half ago, it was good.
    let then = SystemTime::now() - Duration::from_secs(550 * 86_400);
    assert_eq!(cert.check(then), Ok(()));
    let refused = encrypt(b"x", &[&cert], SystemTime::now(), &mut Vec::new());
    assert!(matches!(
        refused,
        Err(EncryptError::Key(KeyProblem::Expired { .. }))
    ));
}

#[test]
fn a_key_whose_encryption_subkey_expired_is_refused() {
    let home = GnupgHome::new();
    let key = home.expired_encryption_subkey("A <a@example.org>");
    assert_eq!(key.subkeys.len(), 1);
    let cert = one(&home.export(&[&key.fingerprint]));
    let problem = cert.check(SystemTime::now()).unwrap_err();
    let KeyProblem::NoEncryptionKey {
        fingerprint,
        why: NoEncryptionKey::Expired { .. },
    } = &problem
    else {
        panic!("not an expired subkey: {problem:?}");
    };
    assert_eq!(fingerprint, &key.fingerprint);
    assert!(
        problem
            .to_string()
            .contains("its encryption subkey expired on"),
        "{problem}"
    );
    assert!(encrypt(b"x", &[&cert], SystemTime::now(), &mut Vec::new()).is_err());
    // gpg agrees: it has no key to encrypt to.
    let out = home.try_run(&["--encrypt", "--recipient", &key.fingerprint], b"x");
    assert!(!out.status.success());
}

#[test]
fn a_sign_only_key_is_refused() {
    let home = GnupgHome::new();
    let key = home.sign_only("A <a@example.org>");
    let cert = one(&home.export(&[&key.fingerprint]));
    assert_eq!(
        cert.check(SystemTime::now()),
        Err(KeyProblem::NoEncryptionKey {
            fingerprint: key.fingerprint.clone(),
            why: NoEncryptionKey::NoneFlagged,
        })
    );
    assert!(matches!(
        encrypt(b"x", &[&cert], SystemTime::now(), &mut Vec::new()),
        Err(EncryptError::Key(KeyProblem::NoEncryptionKey { .. }))
    ));
}

#[test]
fn emails_lists_the_user_id_address_lower_cased() {
    let home = GnupgHome::new();
    let key = home.ed25519("Alice Example <Alice@Example.ORG>");
    home.run(
        &[
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-add-uid",
            &key.fingerprint,
            "alice.second@EXAMPLE.net",
        ],
        b"",
    );
    home.run(
        &[
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-add-uid",
            &key.fingerprint,
            "Old <old@example.org>",
        ],
        b"",
    );
    home.run(
        &[
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-revoke-uid",
            &key.fingerprint,
            "Old <old@example.org>",
        ],
        b"",
    );
    let cert = one(&home.export(&[&key.fingerprint]));
    assert_eq!(
        cert.emails(),
        ["alice@example.org", "alice.second@example.net"]
    );
}

#[test]
fn binary_and_armored_exports_are_the_same_key() {
    let home = GnupgHome::new();
    let key = home.ed25519("A <a@example.org>");
    let binary = one(&home.export(&[&key.fingerprint]));
    let armored = one(&home.export_armored(&[&key.fingerprint]));
    assert_eq!(binary.fingerprint(), key.fingerprint);
    assert_eq!(armored.fingerprint(), key.fingerprint);
    assert_eq!(binary.to_bytes(), armored.to_bytes());
    // What we store and show, gpg imports as the same key.
    let other = GnupgHome::new();
    other.import(binary.to_armored().as_bytes());
    assert_eq!(other.key(&key.fingerprint).fingerprint, key.fingerprint);
    assert_eq!(binary.to_bytes(), home.export(&[&key.fingerprint]));
}

#[test]
fn two_keys_concatenated_are_two_certs() {
    let home = GnupgHome::new();
    let a = home.ed25519("A <a@example.org>");
    let b = home.ed25519("B <b@example.org>");
    for bytes in [
        home.export(&[&a.fingerprint, &b.fingerprint]),
        home.export_armored(&[&a.fingerprint, &b.fingerprint]),
        [
            home.export_armored(&[&a.fingerprint]),
            home.export_armored(&[&b.fingerprint]),
        ]
        .concat(),
        [
            home.export(&[&a.fingerprint]),
            home.export(&[&b.fingerprint]),
        ]
        .concat(),
    ] {
        let certs = parse_keys(&bytes).unwrap();
        let mut fingerprints: Vec<String> = certs.iter().map(Cert::fingerprint).collect();
        fingerprints.sort();
        let mut expected = vec![a.fingerprint.clone(), b.fingerprint.clone()];
        expected.sort();
        assert_eq!(fingerprints, expected);
    }
}

#[test]
fn a_secret_key_export_is_refused() {
    let home = GnupgHome::new();
    let key = home.ed25519("A <a@example.org>");
    let secret = home.export_secret(&key.fingerprint);
    assert_eq!(
        parse_keys(&secret).unwrap_err(),
        KeyError::SecretKey {
            fingerprint: key.fingerprint.clone()
        }
    );
    let message = parse_keys(&secret).unwrap_err().to_string();
    assert!(message.contains("secret key"), "{message}");
    assert!(!message.contains("a@example.org"), "{message}");
}

#[test]
fn garbage_is_refused_with_a_clear_error() {
    for (what, bytes) in [
        ("text", b"This is not a key.\n".to_vec()),
        ("binary", vec![0x99, 0x00, 0x05, 0x04, 0x00, 0xff, 0xff]),
        ("HTML", b"<html><body>404 Not Found</body></html>".to_vec()),
    ] {
        let error = parse_keys(&bytes).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("not an OpenPGP public key"),
            "{what}: {message}"
        );
        assert!(!message.contains('\n'), "{what}: {message}");
    }
    assert_eq!(parse_keys(b"").unwrap_err(), KeyError::Empty);
}

/// `cargo test --release -p postern --test openpgp -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run in release with --nocapture"]
fn rate_of_10_kb_messages_to_cv25519() {
    let home = GnupgHome::new();
    let key = home.ed25519("A <a@example.org>");
    let cert = one(&home.export(&[&key.fingerprint]));
    let plaintext: Vec<u8> = (0..10 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::with_capacity(20 * 1024);
    let now = SystemTime::now();
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(3) {
        out.clear();
        encrypt(&plaintext, &[&cert], now, &mut out).unwrap();
        n += 1;
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    println!("{rate:.0} encryptions/s of 10 KB to cv25519 ({n} in 3 s)");
    assert_eq!(home.decrypt(&out).unwrap(), plaintext);
}

/// Peak RSS of a 25 MB encryption (to a sink), from /proc/self/status.
#[test]
#[ignore = "a measurement: run alone in release with --nocapture"]
fn memory_of_a_25_mb_message() {
    let home = GnupgHome::new();
    let key = home.ed25519("A <a@example.org>");
    let cert = one(&home.export(&[&key.fingerprint]));
    let plaintext: Vec<u8> = (0..25 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let before = peak_rss_kb();
    encrypt(
        &plaintext,
        &[&cert],
        SystemTime::now(),
        &mut std::io::sink(),
    )
    .unwrap();
    let after = peak_rss_kb();
    println!(
        "peak RSS {before} kB with the 25 MB plaintext, {after} kB after encrypting it (+{} kB)",
        after - before
    );
}

fn peak_rss_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

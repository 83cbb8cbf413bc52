//! postern-encryptor, black-box: messages encrypted to keys from the
//! operator's GnuPG keyring, an alias and WKD, decrypted by the real gpg
//! and compared byte for byte with the original MIME entity; one job per
//! key set; policies; messages already encrypted left alone; bad keys,
//! a hanging gpg and malformed input refused with the right status.

mod util;

#[path = "../lib/tests/gpg/mod.rs"]
mod gpg;

use std::sync::Arc;

use gpg::{GnupgHome, Key};
use postern::mail::job::{Job, RcptStatus};
use util::pgp::{armored, entity};
use util::smtp::{Script, Server};
use util::{ALIAS, DELIVERER, ENCRYPTOR, RECEIVER, REWRITER, Site, jobs};

/// A site whose operator keyring is `ring`; WKD off unless a test turns
/// it on.
fn site(relay_port: u16, ring: &GnupgHome) -> Site {
    let site = Site::new(relay_port);
    site.configure(
        "encryptor",
        &format!("keyring = \"{}\"", ring.path().display()),
    );
    site.configure("wkd", "enabled = false");
    site
}

/// A recipient's own home with a key for `address`, whose public key is
/// in the operator's keyring `ring`.
fn recipient(ring: &GnupgHome, address: &str, rsa: bool) -> (GnupgHome, Key) {
    let home = GnupgHome::new();
    let uid = format!("Test Person <{address}>");
    let key = if rsa {
        home.rsa3072(&uid)
    } else {
        home.ed25519(&uid)
    };
    ring.import(&home.export(&[&key.fingerprint]));
    (home, key)
}

/// receiver | encryptor for a bare message; the encryptor's output.
fn encrypt(site: &Site, rcpts: &[&str], msg: &[u8]) -> util::Output {
    let mut args = vec!["-f", "sender@example.org", "--"];
    args.extend_from_slice(rcpts);
    let r = site.run(RECEIVER, &args, msg);
    assert_eq!(r.code, 0, "receiver: {}", r.stderr);
    site.run(ENCRYPTOR, &[], &r.stdout)
}

/// A message with what breaks naive encryptors: nested multiparts, an
/// attachment, 8-bit and non-UTF-8 text, a 2,000-byte line, folded MIME
/// fields.
fn hard_message() -> Vec<u8> {
    let mut m = b"From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: plans\n\
MIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"outer\"\n\n\
preamble\n--outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n\
--inner\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n\
caf\xe9 cr\xe8me \xfc\n"
        .to_vec();
    m.extend_from_slice(&[b'x'; 2000]);
    m.extend_from_slice(
        b"\n--inner\nContent-Type: text/html; charset=utf-8\n\n<p>caf\xc3\xa9</p>\n--inner--\n\
--outer\nContent-Type: application/octet-stream; name=\"data.bin\"\n\
Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"data.bin\"\n\n\
AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n--outer--\nepilogue\n",
    );
    m
}

#[test]
fn a_keyring_key_encrypts_and_gpg_gives_back_the_entity_byte_for_byte() {
    let ring = GnupgHome::new();
    let (bob, _) = recipient(&ring, "bob@example.net", false);
    let (carol, _) = recipient(&ring, "carol@example.net", true);
    let site = site(util::closed_port(), &ring);
    let msg = hard_message();
    for (home, rcpt) in [(&bob, "bob@example.net"), (&carol, "carol@example.net")] {
        let out = encrypt(&site, &[rcpt], &msg);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let js = jobs(&out.stdout);
        assert_eq!(js.len(), 1);
        let m = &js[0].message;
        let text = String::from_utf8_lossy(m);
        assert!(m.is_ascii(), "the encrypted message is 7-bit");
        assert!(!js[0].envelope.eight_bit);
        assert!(text.contains("Subject: plans\n"), "{text}");
        assert!(
            text.contains(
                "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";"
            ),
            "{text}"
        );
        assert!(text.contains("\nVersion: 1\n"));
        // Outside the armor (whose base64 may spell anything by chance).
        let outside = text
            .split("-----BEGIN PGP MESSAGE-----")
            .next()
            .unwrap_or_default()
            .to_owned()
            + text
                .split("-----END PGP MESSAGE-----")
                .nth(1)
                .unwrap_or_default();
        assert!(!outside.contains("caf"), "no plaintext outside: {text}");
        let plain = home.decrypt(&armored(m)).expect("gpg decrypts it");
        assert_eq!(
            String::from_utf8_lossy(&plain),
            String::from_utf8_lossy(&entity(&msg))
        );
        assert_eq!(plain, entity(&msg), "byte for byte");
    }
    // CRLF messages stay CRLF, armor included.
    let out = encrypt(&site, &["bob@example.net"], &util::crlf(&msg));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = &jobs(&out.stdout)[0].message;
    assert!(
        !m.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "only CRLF"
    );
    let plain = bob.decrypt(&armored(m)).expect("gpg decrypts it");
    assert_eq!(plain, entity(&util::crlf(&msg)));
    assert!(
        site.log()
            .contains("encrypted for 1 recipient(s) to 1 key(s)")
    );
    assert!(
        !site.log().contains("bob@"),
        "no address in the log: {}",
        site.log()
    );
}

#[test]
fn recipients_with_different_keys_get_one_job_each() {
    let ring = GnupgHome::new();
    let (bob, bob_key) = recipient(&ring, "bob@example.net", false);
    let (carol, _) = recipient(&ring, "carol@example.net", false);
    let site = site(util::closed_port(), &ring);
    let msg = util::message("split", "three ways");
    let out = encrypt(
        &site,
        &[
            "bob@example.net",
            "dave@example.net",
            "carol@example.net",
            "Bob@Example.NET",
        ],
        &msg,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let js = jobs(&out.stdout);
    assert_eq!(js.len(), 3, "bob (twice), carol, and dave without a key");
    let rcpts = |j: &Job| {
        j.envelope
            .recipients
            .iter()
            .map(|r| r.address.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(rcpts(&js[0]), ["bob@example.net", "Bob@Example.NET"]);
    assert_eq!(rcpts(&js[1]), ["carol@example.net"]);
    assert_eq!(rcpts(&js[2]), ["dave@example.net"]);
    assert!(
        js.iter()
            .all(|j| j.envelope.queue_id == js[0].envelope.queue_id)
    );
    assert!(bob.decrypt(&armored(&js[0].message)).is_ok());
    assert!(
        carol.decrypt(&armored(&js[0].message)).is_err(),
        "carol cannot read bob's copy"
    );
    assert!(carol.decrypt(&armored(&js[1].message)).is_ok());
    assert!(String::from_utf8_lossy(&js[2].message).contains("three ways"));
    let dry = {
        let mut args = vec!["--dry-run", "-f", "s@example.org", "--"];
        args.extend(["bob@example.net", "dave@example.net"]);
        site.run(ENCRYPTOR, &args, &msg)
    };
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains(&format!(
            "<bob@example.net> encrypted to {} (from the keyring)",
            bob_key.fingerprint
        )),
        "{text}"
    );
    assert!(text.contains("<dave@example.net> not encrypted"), "{text}");
}

#[test]
fn messages_already_encrypted_pass_as_they_are() {
    let ring = GnupgHome::new();
    let (_bob, _) = recipient(&ring, "bob@example.net", false);
    let site = site(util::closed_port(), &ring);
    let bodies: [&[u8]; 3] = [
        b"Subject: a\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\n\n--b\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--b--\n",
        b"Subject: b\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQA=\n",
        b"Subject: c\n\n-----BEGIN PGP MESSAGE-----\n\nhF4DAAAAAAAAAAASAQdA\n-----END PGP MESSAGE-----\n",
    ];
    for body in bodies {
        let r = site.run(
            RECEIVER,
            &["-f", "s@example.org", "--", "bob@example.net"],
            body,
        );
        let out = site.run(ENCRYPTOR, &[], &r.stdout);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, r.stdout, "the job passes unchanged");
    }
    assert_eq!(
        site.log().matches("already encrypted").count(),
        3,
        "{}",
        site.log()
    );
}

#[test]
fn require_refuses_a_recipient_without_a_key_and_never_sends_plain() {
    let ring = GnupgHome::new();
    let (bob, _) = recipient(&ring, "bob@dest.example", false);
    let relay = Server::start(Script::default());
    let site = site(relay.port, &ring);
    site.alias(&["domain", "add", "--verified", "example.com"]);
    site.alias(&["alias", "add", "bob@example.com", "bob@dest.example"]);
    site.alias(&["alias", "add", "dave@example.com", "dave@dest.example"]);
    site.alias(&["key", "policy", "--encrypt", "require", "bob@example.com"]);
    site.alias(&["key", "policy", "--encrypt", "require", "dave@example.com"]);
    let msg = util::message("required", "secret body");
    let r = site.run(
        RECEIVER,
        &[
            "-f",
            "s@example.org",
            "--",
            "bob@example.com",
            "dave+x@example.com",
        ],
        &msg,
    );
    let w = site.run(REWRITER, &[], &r.stdout);
    assert_eq!(w.code, 0, "{}", w.stderr);
    let e = site.run(ENCRYPTOR, &[], &w.stdout);
    assert_eq!(e.code, 0, "{}", e.stderr);
    let js = jobs(&e.stdout);
    assert_eq!(js.len(), 1, "bob's encrypted copy, dave refused in it");
    let dave = js[0]
        .envelope
        .recipients
        .iter()
        .find(|r| r.address.as_str().starts_with("dave"))
        .unwrap_or_else(|| panic!("dave is in the job: {:?}", js[0].envelope.recipients));
    assert!(
        matches!(dave.status, RcptStatus::Failed { code } if code.to_string() == "5.7.1"),
        "{:?}",
        dave.status
    );
    assert!(
        dave.diagnostic
            .as_deref()
            .unwrap_or("")
            .contains("no OpenPGP key")
    );
    let d = site.run(DELIVERER, &[], &e.stdout);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let got = relay.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].rcpts,
        ["bob@dest.example"],
        "dave gets nothing in plain text"
    );
    let data = String::from_utf8_lossy(&got[0].data).replace("\r\n", "\n");
    assert!(!data.contains("secret body"));
    let plain = bob
        .decrypt(&armored(data.as_bytes()))
        .expect("bob reads it");
    assert!(String::from_utf8_lossy(&plain).contains("secret body"));
    assert_eq!(
        site.queue("bounce").len(),
        1,
        "dave's refusal waits for the bouncer"
    );
    // `never` on the domain: bob's mail goes plain even with his key.
    site.alias(&["key", "policy", "--encrypt", "default", "bob@example.com"]);
    site.alias(&["domain", "set", "example.com", "encrypt", "never"]);
    let r = site.run(
        RECEIVER,
        &["-f", "s@example.org", "--", "bob@example.com"],
        &msg,
    );
    let w = site.run(REWRITER, &[], &r.stdout);
    let e = site.run(ENCRYPTOR, &[], &w.stdout);
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert!(String::from_utf8_lossy(&jobs(&e.stdout)[0].message).contains("secret body"));
}

#[test]
fn a_key_on_an_alias_is_checked_when_set_and_used_first() {
    let ring = GnupgHome::new();
    let site = site(util::closed_port(), &ring);
    site.alias(&["domain", "add", "--verified", "example.com"]);
    site.alias(&[
        "alias",
        "add",
        "bob@example.com",
        "bob@dest.example",
        "eve@dest.example",
    ]);
    site.alias(&["alias", "add", "/^x-.*$/@example.com", "x@dest.example"]);
    let bob = GnupgHome::new();
    let bob_key = bob.ed25519("Bob <bob@dest.example>");
    let other = bob.ed25519("Someone <someone@else.example>");
    let dir = site.path();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write key file");
        p.display().to_string()
    };
    let good = write("bob.asc", &bob.export_armored(&[&bob_key.fingerprint]));
    let wrong = write("other.asc", &bob.export(&[&other.fingerprint]));
    let both = write(
        "both.gpg",
        &bob.export(&[&bob_key.fingerprint, &other.fingerprint]),
    );
    let secret = write("secret.gpg", &bob.export_secret(&bob_key.fingerprint));
    let garbage = write(
        "garbage",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n",
    );
    let refused = |args: &[&str], says: &str| {
        let out = site.run(ALIAS, args, b"");
        assert_eq!(out.code, 65, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    };
    refused(
        &["key", "set", "bob@example.com", &wrong],
        "no user ID of key",
    );
    refused(&["key", "set", "bob@example.com", &both], "holds 2 keys");
    refused(&["key", "set", "bob@example.com", &secret], "");
    refused(&["key", "set", "bob@example.com", &garbage], "");
    refused(&["key", "set", "x-1@example.com", &good], "no alias");
    refused(&["key", "set", "/^x-.*$/@example.com", &good], "pattern");
    refused(
        &["key", "policy", "--encrypt", "always", "bob@example.com"],
        "--encrypt",
    );
    let set = site.alias(&["key", "set", "bob@example.com", &good]);
    assert!(
        set.contains(&bob_key.fingerprint) && set.contains("bob@dest.example"),
        "{set}"
    );
    let show = site.alias(&["--json", "key", "show", "bob@example.com"]);
    let v: serde_json::Value = serde_json::from_str(&show).expect("JSON");
    assert_eq!(v["fingerprint"], bob_key.fingerprint.as_str());
    assert_eq!(v["user_ids"][0], "bob@dest.example");
    assert!(site.alias(&["key", "list"]).contains("bob@example.com"));
    let armor = site.alias(&["key", "show", "--armor", "bob@example.com"]);
    assert!(
        armor.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{armor}"
    );

    // The key is used for bob, whom it names, and not for eve.
    let msg = util::message("via alias", "alias key body");
    let r = site.run(
        RECEIVER,
        &["-f", "s@example.org", "--", "bob@example.com"],
        &msg,
    );
    let w = site.run(REWRITER, &[], &r.stdout);
    let e = site.run(ENCRYPTOR, &[], &w.stdout);
    assert_eq!(e.code, 0, "{}", e.stderr);
    let js = jobs(&e.stdout);
    assert_eq!(js.len(), 2);
    assert_eq!(
        js[0].envelope.recipients[0].address.as_str(),
        "bob@dest.example"
    );
    let plain = bob.decrypt(&armored(&js[0].message)).expect("bob reads it");
    assert!(String::from_utf8_lossy(&plain).contains("alias key body"));
    assert_eq!(
        js[1].envelope.recipients[0].address.as_str(),
        "eve@dest.example"
    );
    assert!(String::from_utf8_lossy(&js[1].message).contains("alias key body"));
    // --any-user-id: for every target.
    site.alias(&["key", "set", "--any-user-id", "bob@example.com", &good]);
    let e = site.run(ENCRYPTOR, &[], &w.stdout);
    assert_eq!(jobs(&e.stdout).len(), 1);
    site.alias(&["key", "remove", "bob@example.com"]);
    let e = site.run(ENCRYPTOR, &[], &w.stdout);
    assert!(String::from_utf8_lossy(&jobs(&e.stdout)[0].message).contains("alias key body"));
}

#[test]
fn expired_revoked_and_sign_only_keys_are_not_used() {
    let ring = GnupgHome::new();
    let home = GnupgHome::new();
    let expired = home.expired("E <expired@example.net>");
    let sub = home.expired_encryption_subkey("S <subkey@example.net>");
    let sign = home.sign_only("O <signonly@example.net>");
    let revoked = home.ed25519("R <revoked@example.net>");
    home.revoke(&revoked);
    for k in [&expired, &sub, &sign, &revoked] {
        ring.import(&home.export(&[&k.fingerprint]));
    }
    let site = site(util::closed_port(), &ring);
    for rcpt in [
        "expired@example.net",
        "subkey@example.net",
        "signonly@example.net",
        "revoked@example.net",
    ] {
        let out = encrypt(&site, &[rcpt], &util::message("bad key", "plain"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let m = &jobs(&out.stdout)[0].message;
        assert!(
            String::from_utf8_lossy(m).contains("plain"),
            "{rcpt} went plain"
        );
    }
    // And on an alias, each is refused with the reason.
    site.alias(&["domain", "add", "--verified", "example.com"]);
    for (k, says) in [
        (&expired, "expired"),
        (&revoked, "revoked"),
        (&sign, "encrypt"),
    ] {
        let target = home.key(&k.fingerprint);
        let _ = target;
        site.alias(&["alias", "add", "a@example.com", "expired@example.net"]);
        let path = site.path().join("k.gpg");
        std::fs::write(&path, home.export(&[&k.fingerprint])).expect("key file");
        let out = site.run(
            ALIAS,
            &[
                "key",
                "set",
                "--any-user-id",
                "a@example.com",
                path.to_str().expect("path"),
            ],
            b"",
        );
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(out.stderr.contains(says), "{says}: {}", out.stderr);
    }
}

#[test]
fn wkd_keys_are_fetched_once_and_cached() {
    let ring = GnupgHome::new();
    let bob = GnupgHome::new();
    let key = bob.ed25519("Bob <Bob.Web@wkd.example>");
    let exported = bob.export(&[&key.fingerprint]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, tls_key) = util::tls::self_signed(dir.path(), "openpgpkey.wkd.example");
    let hash = postern::encryptor::wkd::hashed_local_part;
    let mallory = bob.ed25519("Mallory <mallory@elsewhere.example>");
    let served = [
        (hash("bob.web"), exported.clone()),
        // Not a key: left out with a warning, the message goes plain.
        (hash("junk"), b"<html>not a key</html>".to_vec()),
        // A key for someone else: WKD keys must name the address.
        (hash("other"), bob.export(&[&mallory.fingerprint])),
    ];
    let https = util::https::Https::serve(
        util::tls::server_config(&cert, &tls_key),
        Arc::new(move |host: &str, path: &str| {
            let found = served.iter().find(|(h, _)| {
                host == "openpgpkey.wkd.example"
                    && path.starts_with(&format!("/.well-known/openpgpkey/wkd.example/hu/{h}"))
            });
            match found {
                Some((_, key)) => (200, key.clone()),
                None => (404, b"no".to_vec()),
            }
        }),
    );
    let site = site(util::closed_port(), &ring);
    site.configure("wkd", "enabled = true");
    site.configure("wkd", &format!("ca_file = \"{}\"", cert.display()));
    site.configure("wkd", &format!("connect_to = \"127.0.0.1:{}\"", https.port));
    site.configure("wkd", "allow_private_addresses = true");
    let msg = util::message("wkd", "found on the web");
    for _ in 0..2 {
        let out = encrypt(&site, &["bob.web@wkd.example"], &msg);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let m = &jobs(&out.stdout)[0].message;
        let plain = bob.decrypt(&armored(m)).expect("bob reads it");
        assert!(String::from_utf8_lossy(&plain).contains("found on the web"));
    }
    let log = https.log.lock().expect("log").clone();
    assert_eq!(
        log.len(),
        1,
        "the second run used the cache: {log:?}\n{}",
        site.log()
    );
    assert!(site.path().join("spool").join("encryptor.cache").exists());
    let cache = std::fs::read(site.path().join("spool").join("encryptor.cache")).expect("cache");
    assert!(
        !cache.windows(7).any(|w| w == b"bob.web"),
        "the cache is sealed"
    );
    // No key there: plain (if-key), remembered too.
    for _ in 0..2 {
        let out = encrypt(&site, &["nobody@wkd.example"], &msg);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            String::from_utf8_lossy(&jobs(&out.stdout)[0].message).contains("found on the web")
        );
    }
    let n = https.log.lock().expect("log").len();
    assert!((2..=3).contains(&n), "advanced then direct, once: {n}");
    https.log.lock().expect("log").clear();
    for rcpt in ["junk@wkd.example", "other@wkd.example"] {
        let out = encrypt(&site, &[rcpt], &msg);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let m = &jobs(&out.stdout)[0].message;
        assert!(
            String::from_utf8_lossy(m).contains("found on the web"),
            "{rcpt} went plain"
        );
    }
    assert!(
        site.log().contains("warning: a key from the wkd: "),
        "{}",
        site.log()
    );
    // A server that is not there, under `require`: the job waits.
    site.configure("wkd", "timeout = \"1s\"");
    site.configure("encryptor", "policy = \"require\"");
    drop(https);
    let out = encrypt(&site, &["carol@down.example"], &msg);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.starts_with("4.7.1 "), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn protected_headers_hide_the_subject() {
    let ring = GnupgHome::new();
    let (bob, _) = recipient(&ring, "bob@example.net", false);
    let site = site(util::closed_port(), &ring);
    site.configure("encryptor", "protected_headers = true");
    let out = encrypt(
        &site,
        &["bob@example.net"],
        &util::message("the real subject", "body"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = &jobs(&out.stdout)[0].message;
    let text = String::from_utf8_lossy(m);
    assert!(
        text.contains("\nSubject: ...\n") && !text.contains("Subject: the real"),
        "{text}"
    );
    let plain = String::from_utf8(bob.decrypt(&armored(m)).expect("decrypts")).expect("UTF-8");
    assert!(
        plain.starts_with("From: Alice <alice@example.org>\n"),
        "{plain}"
    );
    assert!(plain.contains("Subject: the real subject\n"), "{plain}");
    assert!(plain.contains("protected-headers=\"v1\""), "{plain}");
}

#[test]
fn a_missing_keyring_a_hanging_gpg_and_bad_input_are_refused_clearly() {
    let ring = GnupgHome::new();
    let site = site(util::closed_port(), &ring);
    let job = site
        .run(
            RECEIVER,
            &["-f", "s@example.org", "--", "b@example.net"],
            &util::message("x", "y"),
        )
        .stdout;
    // A truncated stream: 75, nothing written.
    let out = site.run(ENCRYPTOR, &[], &job[..job.len() - 10]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    // The keyring is not there: 78 with the fix in the line.
    site.configure("encryptor", "keyring = \"/nonexistent/gnupg\"");
    let out = site.run(ENCRYPTOR, &[], &job);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("/nonexistent/gnupg"), "{}", out.stderr);
    // Answers kept from an earlier run need no gpg at all: with the cache
    // warm, a gpg that hangs is never started for that recipient.
    site.configure(
        "encryptor",
        &format!("keyring = \"{}\"", ring.path().display()),
    );
    let out = site.run(ENCRYPTOR, &[], &job);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let hang = site.path().join("gpg-hangs");
    std::fs::write(&hang, "#!/bin/sh\nexec sleep 30\n").expect("script");
    std::fs::set_permissions(&hang, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    site.configure(
        "encryptor",
        &format!("keyring = \"{}\"", ring.path().display()),
    );
    site.configure("encryptor", &format!("gpg = \"{}\"", hang.display()));
    site.configure("encryptor", "keyring_timeout = \"1s\"");
    let out = site.run(ENCRYPTOR, &[], &job);
    assert_eq!(out.code, 0, "the cached answer: {}", out.stderr);
    // A gpg that hangs, for a recipient not asked before: the job waits,
    // within the time limit.
    let other = site
        .run(
            RECEIVER,
            &["-f", "s@example.org", "--", "c@example.net"],
            &util::message("x", "y"),
        )
        .stdout;
    let started = std::time::Instant::now();
    let out = site.run(ENCRYPTOR, &[], &other);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stderr.contains("did not answer within"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_encryptor_setting_is_a_configuration_error() {
    let ring = GnupgHome::new();
    for (table, line, says) in [
        (
            "encryptor",
            "policy = \"sometimes\"",
            "unknown variant `sometimes`",
        ),
        ("encryptor", "keyring_timeout = \"0s\"", "keyring_timeout"),
        ("wkd", "connect_to = \"localhost\"", "wkd.connect_to"),
        ("wkd", "max_size = 0", "wkd.max_size"),
        ("wkd", "surprise = 1", "surprise"),
    ] {
        let site = site(util::closed_port(), &ring);
        site.configure(table, line);
        let out = site.run(ENCRYPTOR, &[], b"");
        assert_eq!(out.code, 78, "{line}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("4.3.5 ") && out.stderr.contains(says),
            "{line}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    }
}

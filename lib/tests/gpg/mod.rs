//! A throw-away GnuPG home for tests that check postern's OpenPGP output
//! against the real gpg (2.2): keys made, exported, revoked and expired
//! the way an operator would, and messages decrypted by gpg itself.
//!
//! Self-contained (std and tempfile only) so black-box tests can include it
//! with `#[path]`. Every gpg call runs with `--batch --homedir DIR`; a
//! missing or failing gpg panics with the reason, so no test passes
//! without it. The gpg-agent gpg starts for its secret keys is stopped
//! with `gpgconf --kill all` for this home only, when the home is dropped.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The gpg this suite is written against; `gpg` on PATH if it is not there.
const GPG: &str = "/usr/bin/gpg";

pub struct GnupgHome {
    dir: tempfile::TempDir,
    gpg: PathBuf,
}

/// A key made in a [`GnupgHome`]: its fingerprint and its subkeys'.
#[derive(Debug, Clone)]
pub struct Key {
    pub fingerprint: String,
    pub subkeys: Vec<String>,
}

impl GnupgHome {
    /// A new empty home (mode 0700, as gpg wants it).
    pub fn new() -> GnupgHome {
        let gpg = if Path::new(GPG).exists() {
            PathBuf::from(GPG)
        } else {
            PathBuf::from("gpg")
        };
        match Command::new(&gpg).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "{} --version failed: {}; this test needs GnuPG 2.2 (make deps)",
                gpg.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "cannot run {}: {e}; this test needs GnuPG 2.2 (make deps)",
                gpg.display()
            ),
        }
        let dir = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir()
            .expect("a temporary GNUPGHOME");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .expect("GNUPGHOME mode 0700");
        GnupgHome { dir, gpg }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs gpg with `args` and `stdin`; the output whatever the status.
    pub fn try_run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(&self.gpg)
            .arg("--batch")
            .arg("--homedir")
            .arg(self.path())
            .args(["--no-tty", "--no-auto-key-locate", "--no-auto-key-retrieve"])
            .args(args)
            .env("GNUPGHOME", self.path())
            .env_remove("GPG_AGENT_INFO")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.gpg.display()));
        let mut input = child.stdin.take().expect("gpg's stdin");
        // A writer thread: gpg may fill its stdout before reading all of stdin.
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let out = child.wait_with_output().expect("gpg's output");
        let _ = writer.join();
        out
    }

    /// Runs gpg; panics with its stderr if it fails.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.try_run(args, stdin);
        assert!(
            out.status.success(),
            "gpg {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs gpg with an empty passphrase given in loopback (no pinentry),
    /// and optionally with a faked clock.
    fn run_keyop(&self, faked_time: Option<SystemTime>, args: &[&str]) {
        let mut all: Vec<String> = ["--passphrase", "", "--pinentry-mode", "loopback"]
            .map(String::from)
            .to_vec();
        if let Some(t) = faked_time {
            all.push("--faked-system-time".into());
            all.push(unix(t).to_string());
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.run(&all, b"");
    }

    /// A key for `uid` as `gpg --quick-gen-key UID ALGO sign,cert 1y`, then
    /// an encryption subkey `SUBALGO encr 1y`, made at `at` (now if None).
    fn generate(&self, uid: &str, algo: &str, sub: Option<&str>, at: Option<SystemTime>) -> Key {
        self.run_keyop(at, &["--quick-gen-key", uid, algo, "sign,cert", "1y"]);
        let fingerprint = self.key(uid).fingerprint;
        if let Some(sub) = sub {
            self.run_keyop(at, &["--quick-add-key", &fingerprint, sub, "encr", "1y"]);
        }
        self.key(&fingerprint)
    }

    /// ed25519 sign/cert primary with a cv25519 encryption subkey, as gpg
    /// 2.2 makes them.
    pub fn ed25519(&self, uid: &str) -> Key {
        self.generate(uid, "ed25519", Some("cv25519"), None)
    }

    /// RSA-3072 sign/cert primary with an RSA-3072 encryption subkey.
    pub fn rsa3072(&self, uid: &str) -> Key {
        self.generate(uid, "rsa3072", Some("rsa3072"), None)
    }

    /// An ed25519 key with only a signing subkey: nothing to encrypt to.
    pub fn sign_only(&self, uid: &str) -> Key {
        let key = self.generate(uid, "ed25519", None, None);
        self.run_keyop(
            None,
            &["--quick-add-key", &key.fingerprint, "ed25519", "sign", "1y"],
        );
        self.key(&key.fingerprint)
    }

    /// An ed25519/cv25519 key made two years ago with a one-year expiry:
    /// expired a year ago.
    pub fn expired(&self, uid: &str) -> Key {
        let two_years_ago = SystemTime::now() - Duration::from_secs(2 * 366 * 86_400);
        self.generate(uid, "ed25519", Some("cv25519"), Some(two_years_ago))
    }

    /// A valid ed25519 key made 30 days ago whose only encryption subkey,
    /// added 20 days ago, expired a day later.
    pub fn expired_encryption_subkey(&self, uid: &str) -> Key {
        let days_ago = |d: u64| SystemTime::now() - Duration::from_secs(d * 86_400);
        let key = self.generate(uid, "ed25519", None, Some(days_ago(30)));
        self.run_keyop(
            Some(days_ago(20)),
            &["--quick-add-key", &key.fingerprint, "cv25519", "encr", "1d"],
        );
        self.key(&key.fingerprint)
    }

    /// Revokes the key with the certificate gpg wrote when it made it
    /// (`openpgp-revocs.d/FPR.rev`, its armor line disarmed with a ':').
    pub fn revoke(&self, key: &Key) {
        let path = self
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", key.fingerprint));
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("revocation certificate {}: {e}", path.display()));
        let armed = text.replace(":-----BEGIN PGP", "-----BEGIN PGP");
        self.run(&["--import"], armed.as_bytes());
    }

    /// The key with this fingerprint or user ID, read from
    /// `--list-keys --with-colons`.
    pub fn key(&self, id: &str) -> Key {
        let out = self.run(
            &[
                "--with-colons",
                "--with-subkey-fingerprint",
                "--list-keys",
                id,
            ],
            b"",
        );
        let text = String::from_utf8_lossy(&out);
        let mut fingerprint = None;
        let mut subkeys = Vec::new();
        let mut record = "";
        for line in text.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            match fields[0] {
                "pub" | "sub" => record = fields[0],
                "fpr" if fields.len() > 9 => match record {
                    "pub" if fingerprint.is_none() => fingerprint = Some(fields[9].to_string()),
                    "sub" => subkeys.push(fields[9].to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
        Key {
            fingerprint: fingerprint.unwrap_or_else(|| panic!("no key {id} in gpg's listing")),
            subkeys,
        }
    }

    /// `gpg --export` of these keys, binary.
    pub fn export(&self, fingerprints: &[&str]) -> Vec<u8> {
        let mut args = vec!["--export"];
        args.extend(fingerprints);
        self.run(&args, b"")
    }

    /// `gpg --armor --export` of these keys.
    pub fn export_armored(&self, fingerprints: &[&str]) -> Vec<u8> {
        let mut args = vec!["--armor", "--export"];
        args.extend(fingerprints);
        self.run(&args, b"")
    }

    /// `gpg --export-secret-keys`, binary (the passphrase is empty).
    pub fn export_secret(&self, fingerprint: &str) -> Vec<u8> {
        let out = self.try_run(
            &[
                "--passphrase",
                "",
                "--pinentry-mode",
                "loopback",
                "--export-secret-keys",
                fingerprint,
            ],
            b"",
        );
        assert!(
            out.status.success(),
            "gpg --export-secret-keys failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Imports keys (public or secret) into this home.
    pub fn import(&self, keys: &[u8]) {
        self.run(
            &[
                "--passphrase",
                "",
                "--pinentry-mode",
                "loopback",
                "--import",
            ],
            keys,
        );
    }

    /// `gpg --decrypt` of `message`: the plaintext, or gpg's stderr.
    pub fn decrypt(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let dir = self.path();
        let input = dir.join("message.asc");
        let output = dir.join("message.out");
        fs::write(&input, message).expect("write the message for gpg");
        let _ = fs::remove_file(&output);
        let out = self.try_run(
            &[
                "--passphrase",
                "",
                "--pinentry-mode",
                "loopback",
                "--output",
                output.to_str().expect("a UTF-8 temp path"),
                "--decrypt",
                input.to_str().expect("a UTF-8 temp path"),
            ],
            b"",
        );
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        fs::read(&output).map_err(|e| format!("gpg wrote no plaintext: {e}"))
    }

    /// `gpg --list-packets` of `message` (without decrypting: no secret
    /// key is asked for), as text.
    pub fn list_packets(&self, message: &[u8]) -> String {
        let out = self.try_run(&["--list-only", "--list-packets"], message);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        // Stops the agent (and any dirmngr) of this home only.
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

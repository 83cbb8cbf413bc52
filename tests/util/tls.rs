//! Certificates for tests, made with openssl(1): a private certificate
//! authority and host certificates it signs, or self-signed ones; and the
//! rustls server configuration the test SMTP server offers with them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` making a new P-256 key into `key` and, with `-x509` in
/// `how`, a certificate (else a request) for `subject` into `out`.
fn req(dir: &Path, how: &[&str], key: &str, out: &str, subject: &str) {
    let mut args = vec!["req"];
    args.extend_from_slice(how);
    args.extend_from_slice(&[
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ]);
    args.extend_from_slice(&["-keyout", key, "-out", out, "-subj", subject]);
    openssl(dir, &args);
}

/// A certificate authority in `dir`: `ca.pem` is what a client trusts.
pub struct Ca {
    pub dir: PathBuf,
}

impl Ca {
    pub fn new(dir: &Path) -> Ca {
        let how = [
            "-x509",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ];
        req(dir, &how, "ca.key", "ca.pem", "/CN=postern test CA");
        Ca {
            dir: dir.to_owned(),
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for `name` signed by this CA: (cert, key) paths.
    pub fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        let [cert, key, csr, ext] = ["pem", "key", "csr", "ext"].map(|x| format!("{name}.{x}"));
        req(&self.dir, &[], &key, &csr, &format!("/CN={name}"));
        std::fs::write(
            self.dir.join(&ext),
            format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("ext file");
        let sign = [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ];
        openssl(&self.dir, &sign);
        (self.dir.join(cert), self.dir.join(key))
    }
}

/// A self-signed certificate for `name` in `dir`: (cert, key) paths. Not
/// a CA certificate: rustls refuses one of those as a server's.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("self-{name}.pem"), format!("self-{name}.key"));
    let san = format!("subjectAltName=DNS:{name}");
    let how = [
        "-x509",
        "-days",
        "2",
        "-addext",
        &san,
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ];
    req(dir, &how, &key, &cert, &format!("/CN={name}"));
    (dir.join(cert), dir.join(key))
}

/// A rustls server configuration presenting `cert` with `key`.
pub fn server_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("cert file")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(key).expect("key file");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    Arc::new(config)
}

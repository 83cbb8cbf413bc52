//! TLS for SMTP (STARTTLS, RFC 3207) with rustls: the two client set-ups
//! the deliverer needs, made once and kept across jobs.
//!
//! - *Verified*: the server's certificate must chain to a trusted root
//!   (the Mozilla roots of `webpki-roots`, plus the operator's CA file if
//!   one is configured) and name the host we meant to reach. Used for
//!   `tls = "verify"` and for domains whose MTA-STS policy says `enforce`.
//! - *Opportunistic*: encryption against a passive listener, without a
//!   judgement on the certificate (RFC 7435; Postfix's level `may` and
//!   `encrypt` do the same). Most MX hosts present certificates that do
//!   not name them; refusing those would send the mail in plain text
//!   instead, which is worse. The handshake's own signatures are still
//!   checked, so the peer holds the key of the certificate it sent.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TlsLevel;

/// Why TLS could not be set up: a configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("tls_ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configurations, made once per process.
#[derive(Debug, Clone)]
pub struct TlsClients {
    verified: Arc<ClientConfig>,
    opportunistic: Arc<ClientConfig>,
}

impl TlsClients {
    /// `ca_file`: PEM certificates trusted besides the Mozilla roots.
    pub fn new(ca_file: Option<&Path>) -> Result<TlsClients, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            let fail = |reason: String| TlsSetupError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(e.to_string()))?;
            if certs.is_empty() {
                return Err(fail("holds no certificate".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| fail(e.to_string()))?;
            }
        }
        let verified = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let opportunistic = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth();
        Ok(TlsClients {
            verified: Arc::new(verified),
            opportunistic: Arc::new(opportunistic),
        })
    }

    /// The configuration for `level`; `None` when no TLS is wanted.
    pub fn for_level(&self, level: TlsLevel) -> Option<Arc<ClientConfig>> {
        match level {
            TlsLevel::None => None,
            TlsLevel::May | TlsLevel::Encrypt => Some(self.opportunistic.clone()),
            TlsLevel::Verify => Some(self.verified.clone()),
        }
    }
}

/// `name` as TLS wants it for SNI and the certificate check.
pub fn server_name(name: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(name.trim_end_matches('.').to_owned()).ok()
}

/// Accepts any certificate, but checks the handshake signatures made
/// with its key (see the module documentation).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Makes sure one crypto provider is the process default, for code
/// (ureq) that asks rustls for it.
pub fn install_default_provider() {
    let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let e = TlsClients::new(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().starts_with("tls_ca_file /nonexistent/ca.pem"));
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = TlsClients::new(Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn levels_pick_their_configuration() {
        let t = TlsClients::new(None).unwrap();
        assert!(t.for_level(TlsLevel::None).is_none());
        assert!(Arc::ptr_eq(
            &t.for_level(TlsLevel::Verify).unwrap(),
            &t.verified
        ));
        assert!(Arc::ptr_eq(
            &t.for_level(TlsLevel::May).unwrap(),
            &t.opportunistic
        ));
        assert!(server_name("mx.example.net.").is_some());
        assert!(server_name("bad name").is_none());
    }
}

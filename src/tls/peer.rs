//! What the gateway keeps of a client certificate that passed verification: the facts an
//! agency is recognised by (agencies.yaml, docs/security.md).

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A verified client certificate of the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    /// `sha256:` and the hex SHA-256 of the DER certificate.
    pub fingerprint: String,
    /// The subject, written as RFC 4514 (e.g. `CN=杭州市知识产权局,O=...`).
    pub subject: String,
    /// The subject alternative names of type URI.
    pub uris: Vec<String>,
    /// When it expires (unix ms).
    pub not_after_ms: i64,
}

impl PeerCertificate {
    /// Reads the facts of a DER certificate; None if it does not parse (rustls verified it, so
    /// that does not happen).
    pub fn from_der(der: &[u8]) -> Option<PeerCertificate> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let uris = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::URI(u) => Some(u.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(PeerCertificate {
            fingerprint: format!("sha256:{}", hex::encode(Sha256::digest(der))),
            subject: cert.subject().to_string(),
            uris,
            not_after_ms: cert.validity().not_after.timestamp().saturating_mul(1000),
        })
    }
}

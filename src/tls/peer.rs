//! What the gateway keeps of a client certificate that passed verification: the facts an
//! agency is recognised by (agencies.yaml, docs/security.md).

use std::any::Any;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
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
        })
    }
}

/// actix-web's `on_connect` hook: keeps the client certificate, if any, with the connection,
/// where `HttpRequest::conn_data` finds it.
pub fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    let Some(tls) = connection.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>() else {
        return;
    };
    let (_, session) = tls.get_ref();
    if let Some(peer) = session.peer_certificates().and_then(|c| c.first()).and_then(|c| PeerCertificate::from_der(c)) {
        data.insert(peer);
    }
}

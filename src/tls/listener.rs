//! The listener's rustls configuration, built once around parts that can be swapped: new
//! certificates, CAs and CRLs apply to the next handshake, and connections already open keep
//! what they agreed on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use super::material::{Material, provider};
use crate::config::settings::Tls;

/// The live TLS parts of a listener.
#[derive(Clone, Debug)]
pub struct Listener {
    key: Arc<ArcSwap<CertifiedKey>>,
    clients: Arc<ArcSwap<Option<Arc<dyn ClientCertVerifier>>>>,
}

impl Listener {
    /// The rustls configuration of a listener that starts with `material`: TLS 1.2 and 1.3,
    /// HTTP/1.1.
    pub fn new(material: Material) -> Result<(Listener, ServerConfig), String> {
        let live = Listener {
            key: Arc::new(ArcSwap::new(material.key)),
            clients: Arc::new(ArcSwap::new(Arc::new(material.clients))),
        };
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(Arc::new(SwappedVerifier(live.clients.clone())))
            .with_cert_resolver(Arc::new(SwappedKey(live.key.clone())));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((live, config))
    }

    /// Uses `material` from the next handshake on.
    pub fn apply(&self, material: Material) {
        self.key.store(material.key);
        self.clients.store(Arc::new(material.clients));
    }

    /// Reads the files again and applies them; on a problem the current ones stay.
    pub fn reload(&self, tls: &Tls, dir: &Path) -> Result<(), String> {
        let material = Material::load(tls, dir)?;
        self.apply(material);
        Ok(())
    }
}

/// Checks the files of `tls` every `watch_every` and reloads when one changed, until TLS is
/// no longer configured. `current` gives the settings in force (they change with a reload).
pub async fn watch(listener: Listener, current: impl Fn() -> (Option<Tls>, PathBuf)) {
    let mut seen: Option<Vec<Option<SystemTime>>> = None;
    loop {
        let (tls, dir) = current();
        let Some(tls) = tls else { return };
        let stamps: Vec<Option<SystemTime>> =
            Material::files(&tls, &dir).iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect();
        if seen.as_ref().is_some_and(|s| *s != stamps) {
            match listener.reload(&tls, &dir) {
                Ok(()) => tracing::info!("TLS files changed: reloaded"),
                Err(e) => tracing::warn!(error = %e, "TLS files changed but do not load; the previous ones stay"),
            }
        }
        seen = Some(stamps);
        tokio::time::sleep(tls.watch_every).await;
    }
}

#[derive(Debug)]
struct SwappedKey(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for SwappedKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The client verifier in force, or none (no certificate is asked for).
#[derive(Debug)]
struct SwappedVerifier(Arc<ArcSwap<Option<Arc<dyn ClientCertVerifier>>>>);

impl SwappedVerifier {
    fn current(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        self.0.load().as_ref().clone()
    }

    /// The verifier in force, for a client that sent a certificate anyway.
    fn required(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        self.current().ok_or_else(|| rustls::Error::General("client certificates are not accepted".into()))
    }
}

impl ClientCertVerifier for SwappedVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current().is_some()
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a client sends the certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.required()?.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.required()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.required()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

//! The files TLS is made of, read and checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;

use crate::config::settings::Tls;

/// The server's certified key, and the verifier of client certificates (none: not asked).
#[derive(Clone, Debug)]
pub struct Material {
    pub key: Arc<CertifiedKey>,
    pub clients: Option<Arc<dyn ClientCertVerifier>>,
}

/// The crypto provider every TLS part of the gateway uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl Material {
    /// Reads the files `tls` names, relative to `dir`. The error names the file and the problem.
    pub fn load(tls: &Tls, dir: &Path) -> Result<Material, String> {
        let provider = provider();
        let cert_path = dir.join(&tls.cert);
        let chain = certificates(&cert_path)?;
        let key_path = dir.join(&tls.key);
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| format!("tls.key: {}: not a PEM private key ({e})", key_path.display()))?;
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
            format!("tls.key: {} does not go with the certificate {} ({e})", key_path.display(), cert_path.display())
        })?;
        let clients = if tls.client_ca.is_empty() {
            if !tls.crls.is_empty() {
                return Err("tls.crls: revocation lists need tls.client_ca".into());
            }
            None
        } else {
            Some(client_verifier(tls, dir, provider)?)
        };
        Ok(Material { key: Arc::new(key), clients })
    }

    /// Every file the material is read from, for watching.
    pub fn files(tls: &Tls, dir: &Path) -> Vec<PathBuf> {
        [&tls.cert, &tls.key].into_iter().chain(&tls.client_ca).chain(&tls.crls).map(|p| dir.join(p)).collect()
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: cannot read PEM certificates ({e})", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in the file", path.display()));
    }
    Ok(chain)
}

fn client_verifier(
    tls: &Tls,
    dir: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for ca in &tls.client_ca {
        let path = dir.join(ca);
        for cert in certificates(&path)? {
            roots
                .add(cert)
                .map_err(|e| format!("tls.client_ca: {}: not a usable CA certificate ({e})", path.display()))?;
        }
    }
    let mut crls = Vec::new();
    for crl in &tls.crls {
        let path = dir.join(crl);
        let bytes = std::fs::read(&path).map_err(|e| format!("tls.crls: {}: {e}", path.display()))?;
        let der = if bytes.starts_with(b"-----BEGIN") {
            CertificateRevocationListDer::from_pem_slice(&bytes)
                .map_err(|e| format!("tls.crls: {}: not a PEM revocation list ({e})", path.display()))?
        } else {
            CertificateRevocationListDer::from(bytes)
        };
        crls.push(der);
    }
    // Token-only agencies connect without a certificate: whether one is needed is decided per
    // agency, after the handshake (docs/security.md).
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("tls.client_ca / tls.crls: {e}"))
}

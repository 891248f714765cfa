//! Signed checkpoints: the head of the chain (sequence and hash), signed with Ed25519. Anyone
//! holding the public key can check them; only the gateway's key can make them.

use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A signed statement: the chain had `hash` at record `seq` at time `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    /// The first 16 hex digits of SHA-256 over the public key.
    pub key_id: String,
    /// Ed25519, hex.
    pub signature: String,
}

fn message(seq: i64, hash: &str, at: &str) -> String {
    format!("xietong audit checkpoint\n{seq}\n{hash}\n{at}")
}

fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The gateway's signing key.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// Reads a PKCS#8 PEM Ed25519 private key (as `xietong audit key` writes).
    pub fn load(path: &Path) -> Result<Signer, String> {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| format!("{}: not a PKCS#8 PEM Ed25519 private key ({e})", path.display()))?;
        Ok(Signer { key })
    }

    /// A new random key.
    pub fn generate() -> Signer {
        Signer { key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()) }
    }

    /// The private key (PKCS#8 PEM) and the public key (SPKI PEM).
    pub fn to_pem(&self) -> Result<(String, String), String> {
        let private = self.key.to_pkcs8_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        let public = self.key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        Ok((private.to_string(), public))
    }

    pub fn sign(&self, seq: i64, hash: &str, at: &str) -> Checkpoint {
        let signature = self.key.sign(message(seq, hash, at).as_bytes());
        Checkpoint {
            seq,
            hash: hash.to_string(),
            at: at.to_string(),
            key_id: key_id(&self.key.verifying_key()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    pub fn verifier(&self) -> Verifier {
        Verifier { key: self.key.verifying_key() }
    }
}

/// Checks checkpoints against a public key.
#[derive(Clone, Debug)]
pub struct Verifier {
    key: VerifyingKey,
}

impl Verifier {
    /// Reads an SPKI PEM public key, or takes the public half of a PKCS#8 private key.
    pub fn load(path: &Path) -> Result<Verifier, String> {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Ok(key) = VerifyingKey::from_public_key_pem(&pem) {
            return Ok(Verifier { key });
        }
        Signer::load(path).map(|s| s.verifier())
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key)
    }

    /// Whether `c` was signed by this key.
    pub fn check(&self, c: &Checkpoint) -> bool {
        let Ok(bytes) = hex::decode(&c.signature) else { return false };
        let Ok(signature) = Signature::from_slice(&bytes) else { return false };
        c.key_id == self.key_id() && self.key.verify(message(c.seq, &c.hash, &c.at).as_bytes(), &signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_with_its_key_only() {
        let signer = Signer::generate();
        let c = signer.sign(42, "ab", "2026-12-03T08:00:00.000+08:00");
        assert!(signer.verifier().check(&c));
        assert!(!Signer::generate().verifier().check(&c), "another key");
        let forged = Checkpoint { seq: 43, ..c.clone() };
        assert!(!signer.verifier().check(&forged), "another head");
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::generate();
        let (private, public) = signer.to_pem().unwrap();
        std::fs::write(dir.path().join("k.pem"), private).unwrap();
        std::fs::write(dir.path().join("k.pub"), public).unwrap();
        let c = Signer::load(&dir.path().join("k.pem")).unwrap().sign(1, "x", "t");
        assert!(Verifier::load(&dir.path().join("k.pub")).unwrap().check(&c));
        assert!(Verifier::load(&dir.path().join("k.pem")).unwrap().check(&c));
    }
}

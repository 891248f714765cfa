//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): `webhook-signature` is
//! `v1,` and the base64 HMAC-SHA256, keyed by the secret, of `{webhook-id}.{webhook-timestamp}.{body}`.
//! Secrets are written `whsec_` + base64. During a rotation an endpoint has two secrets and each
//! message carries both signatures, space-separated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// The key of a `whsec_…` secret.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(PREFIX).ok_or("a webhook secret is written whsec_ and base64")?;
    let key = STANDARD.decode(encoded).map_err(|_| "a webhook secret is written whsec_ and base64".to_string())?;
    if key.len() < 16 {
        return Err("a webhook secret needs at least 16 bytes (24 recommended)".into());
    }
    Ok(key)
}

/// A fresh secret: 24 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` header: one `v1,…` signature per key.
pub fn sign(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_published_test_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(&[key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_official_crate_verifies_both_signatures_of_a_rotation() {
        let (old, new) = (new_secret(), new_secret());
        let keys = [decode_secret(&new).unwrap(), decode_secret(&old).unwrap()];
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"specversion":"1.0","id":"x"}"#;
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_x".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", sign(&keys, "msg_x", now, body).parse().unwrap());
        for secret in [&old, &new] {
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(body, &headers)
                .expect("verified by the official crate");
        }
        let other = standardwebhooks::Webhook::new(&new_secret()).unwrap();
        assert!(other.verify(body, &headers).is_err());
    }

    #[test]
    fn refuses_malformed_secrets() {
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_secret("whsec_!!!").is_err());
        assert!(decode_secret("whsec_YWJj").is_err(), "too short");
    }
}

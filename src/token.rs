//! Bearer tokens: generated at random, configured and compared only as SHA-256 hashes, so a
//! token is never stored, logged or printed by the gateway after `xietong token new` shows it
//! once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The SHA-256 of a token. Tokens carry 256 bits of entropy, so an unsalted fast hash is the
/// right tool (as for GitHub's and Stripe's API keys): a preimage search is hopeless and
/// comparison is a hash-map lookup.
pub type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The form written in `agencies.yaml`: `sha256:` and 64 lower-case hex digits.
pub fn format_hash(hash: &TokenHash) -> String {
    format!("sha256:{}", hex::encode(hash))
}

pub fn parse_hash(text: &str) -> Result<TokenHash, String> {
    let hex_part = text
        .strip_prefix("sha256:")
        .ok_or("a token hash is written sha256:<64 hex digits>; `xietong token new` prints one")?;
    let bytes = hex::decode(hex_part).map_err(|_| "a token hash is written sha256:<64 hex digits>".to_string())?;
    bytes.try_into().map_err(|_| "a token hash is written sha256:<64 hex digits>".to_string())
}

/// A fresh token: `xt_` and 32 random bytes in URL-safe base64.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("xt_{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_and_tokens_are_fresh() {
        let t = generate();
        assert!(t.starts_with("xt_") && t.len() == 46, "{t}");
        assert_ne!(generate(), t);
        let h = hash(&t);
        assert_eq!(parse_hash(&format_hash(&h)), Ok(h));
        assert!(parse_hash("md5:00").is_err());
        assert!(parse_hash("sha256:abcd").is_err());
    }
}

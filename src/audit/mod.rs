//! The audit log: an append-only, tamper-evident record of what the gateway did (docs/security.md).
//!
//! Every accept, refusal, webhook outcome, replay, reload and admin action appends a record of
//! metadata only: ids, agencies, types, codes, hashes, never content or secret values. Each
//! record is chained to the one before it: its hash covers the previous record's hash and its
//! own canonical JSON, so editing, removing or reordering a record breaks every link after it.
//! Checkpoints sign the head of the chain with Ed25519, so a chain rebuilt by someone
//! without the key does not verify either.

pub mod checkpoint;
pub mod checkpointer;
pub mod verify;

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The hash of the chain: SHA-256 by default, SM3 (GM/T 0004-2012) by configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Sha256,
    Sm3,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sm3 => "sm3",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "sha256" => Some(Algorithm::Sha256),
            "sm3" => Some(Algorithm::Sm3),
            _ => None,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Sha256 => {
                hex::encode(parts.iter().fold(sha2::Sha256::new(), |h, p| h.chain_update(p)).finalize())
            }
            Algorithm::Sm3 => hex::encode(parts.iter().fold(sm3::Sm3::new(), |h, p| h.chain_update(p)).finalize()),
        }
    }
}

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, in metadata only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// accepted, duplicate, conflict, refused, delivered, dead, gone, replayed, reloaded,
    /// reload_refused, admin
    pub action: String,
    /// Who acted: the sending agency, the operator, or `gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    /// A refusal code, an HTTP status, an admin endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// JSON pointers, counts, ids: never content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Entry {
    pub fn new(action: &str) -> Entry {
        Entry { action: action.to_string(), ..Entry::default() }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Entry {
        self.actor = Some(actor.into());
        self
    }

    pub fn message(mut self, id: impl Into<String>) -> Entry {
        self.message_id = Some(id.into());
        self
    }

    pub fn code(mut self, code: impl Into<String>) -> Entry {
        self.code = Some(code.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Entry {
        self.detail = Some(detail.into());
        self
    }
}

/// A record as stored: its place, time and algorithm, and the entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: i64,
    pub at: String,
    pub alg: Algorithm,
    #[serde(flatten)]
    pub entry: Entry,
}

impl Record {
    /// The canonical JSON the hash covers (fields in a fixed order, no whitespace).
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The hash of a record following `prev`.
pub fn link(alg: Algorithm, prev: &str, canonical: &str) -> String {
    alg.digest(&[prev.as_bytes(), b"\n", canonical.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // The standard test vectors for "abc" (FIPS 180-2; GM/T 0004-2012 appendix A).
        assert_eq!(
            Algorithm::Sha256.digest(&[b"a", b"bc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Algorithm::Sm3.digest(&[b"abc"]),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn a_record_is_canonical_and_carries_no_empty_fields() {
        let r = Record {
            seq: 7,
            at: "2026-12-03T08:00:00.000+08:00".into(),
            alg: Algorithm::Sm3,
            entry: Entry::new("refused").actor("ip_office:330100").code("state_secret"),
        };
        assert_eq!(
            r.canonical(),
            r#"{"seq":7,"at":"2026-12-03T08:00:00.000+08:00","alg":"sm3","action":"refused","actor":"ip_office:330100","code":"state_secret"}"#
        );
        assert_ne!(link(Algorithm::Sha256, GENESIS, &r.canonical()), link(Algorithm::Sm3, GENESIS, &r.canonical()));
    }
}

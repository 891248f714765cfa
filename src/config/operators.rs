//! `operators.yaml`: who may call the admin endpoints (`/v1/admin/...`) and sign in to the
//! console: a name, a role and token hashes per operator, like agencies. A `viewer` reads
//! everything the operators may see; an `operator` also acts (reloads, replays, pauses, applies
//! rule changes).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::ConfigError;
use crate::normalize::SpecError;
use crate::token::{self, TokenHash};

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorsFile {
    #[serde(default)]
    operators: Vec<OperatorSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorSpec {
    name: Spanned<String>,
    /// `operator` (the default) or `viewer`.
    #[serde(default)]
    role: Option<Spanned<String>>,
    #[serde(default)]
    tokens: Vec<Spanned<String>>,
    /// Client certificates that sign the operator in (over mutual TLS): `sha256:HEX` (the
    /// certificate's fingerprint) or its subject as RFC 4514 (`CN=...,O=...`).
    #[serde(default)]
    certificates: Vec<Spanned<String>>,
}

/// What an operator may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything the operators may see.
    Viewer,
    /// Also acts: reloads, replays, pauses, applies rule changes.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

#[derive(Debug, Default)]
pub struct Operators {
    by_token: HashMap<TokenHash, String>,
    roles: HashMap<String, Role>,
    /// Operators by certificate fingerprint (`sha256:HEX`) or subject.
    by_certificate: HashMap<String, String>,
}

impl Operators {
    /// A missing file means no operator: the admin endpoints refuse everyone.
    pub fn load(path: &Path, errors: &mut Vec<ConfigError>) -> Operators {
        let mut out = Operators::default();
        let Some(file) = super::files::read_yaml::<OperatorsFile>(path, true, errors) else { return out };
        for op in file.operators {
            let role = match op.role.as_ref().map(|r| r.value.as_str()) {
                None | Some("operator") => Role::Operator,
                Some("viewer") => Role::Viewer,
                Some(other) => {
                    let at = op.role.as_ref().map_or(op.name.referenced, |r| r.referenced);
                    errors.push(ConfigError::from_spec(
                        path,
                        SpecError::at(&at, format!("role `{other}`: operator or viewer")),
                    ));
                    Role::Viewer
                }
            };
            out.roles.insert(op.name.value.clone(), role);
            for t in &op.tokens {
                match token::parse_hash(&t.value) {
                    Ok(h) => {
                        if out.by_token.insert(h, op.name.value.clone()).is_some() {
                            errors.push(ConfigError::from_spec(
                                path,
                                SpecError::at(&t.referenced, "this token hash is listed twice"),
                            ));
                        }
                    }
                    Err(e) => errors.push(ConfigError::from_spec(path, SpecError::at(&t.referenced, e))),
                }
            }
            for c in &op.certificates {
                let value = c.value.trim();
                let fingerprint = value.strip_prefix("sha256:");
                let problem = if value.is_empty() {
                    Some("a certificate: `sha256:HEX` (its fingerprint) or its subject (`CN=...`)".to_string())
                } else if fingerprint.is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit())) {
                    Some("a fingerprint is `sha256:` and 64 hex digits".to_string())
                } else if fingerprint.is_none() && !value.contains('=') {
                    Some(format!("`{value}`: a subject is written as RFC 4514 (`CN=...,O=...`)"))
                } else if out.by_certificate.insert(normalised(value), op.name.value.clone()).is_some() {
                    Some("this certificate is listed twice".to_string())
                } else {
                    None
                };
                if let Some(message) = problem {
                    errors.push(ConfigError::from_spec(path, SpecError::at(&c.referenced, message)));
                }
            }
        }
        out
    }

    /// The operator a client certificate belongs to.
    pub fn by_certificate(&self, peer: &crate::tls::PeerCertificate) -> Option<&str> {
        self.by_certificate
            .get(&peer.fingerprint)
            .or_else(|| self.by_certificate.get(&peer.subject))
            .map(String::as_str)
    }

    /// The certificates operators are named by (fingerprints and subjects).
    pub fn certificates(&self) -> impl Iterator<Item = &str> {
        self.by_certificate.keys().map(String::as_str)
    }

    /// The operator a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&str> {
        self.by_token.get(&token::hash(token)).map(String::as_str)
    }

    /// An operator's role (a name not configured has none).
    pub fn role(&self, name: &str) -> Option<Role> {
        self.roles.get(name).copied()
    }

    pub fn hashes(&self) -> impl Iterator<Item = &TokenHash> {
        self.by_token.keys()
    }

    pub fn len(&self) -> usize {
        self.by_token.values().collect::<std::collections::HashSet<_>>().len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// A fingerprint in lower case (as the gateway writes them); a subject as written.
fn normalised(value: &str) -> String {
    if value.starts_with("sha256:") { value.to_ascii_lowercase() } else { value.to_string() }
}

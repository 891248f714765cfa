//! `operators.yaml`: who may call the admin endpoints (`/v1/admin/...`): a name and token hashes
//! per operator, like agencies.

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
    #[serde(default)]
    tokens: Vec<Spanned<String>>,
}

#[derive(Debug, Default)]
pub struct Operators {
    by_token: HashMap<TokenHash, String>,
}

impl Operators {
    /// A missing file means no operator: the admin endpoints refuse everyone.
    pub fn load(path: &Path, errors: &mut Vec<ConfigError>) -> Operators {
        let mut out = Operators::default();
        let Some(file) = super::files::read_yaml::<OperatorsFile>(path, true, errors) else { return out };
        for op in file.operators {
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
        }
        out
    }

    /// The operator a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&str> {
        self.by_token.get(&token::hash(token)).map(String::as_str)
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

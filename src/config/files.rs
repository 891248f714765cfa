//! The files of the configuration directory: their names, how a YAML file is read (problems
//! with their positions), and secrets kept outside the files (`env:NAME`, `file:PATH`).

use std::path::Path;

use super::error::ConfigError;
use crate::normalize::SpecError;

pub const SETTINGS_FILE: &str = "xietong.yaml";
pub const AGENCIES_FILE: &str = "agencies.yaml";
pub const SOURCES_DIR: &str = "sources";
pub const DIVISIONS_FILE: &str = "divisions.csv";
pub const REGIONS_FILE: &str = "regions.yaml";
pub const RULES_FILE: &str = "rules.yaml";
pub const RULES_DIR: &str = "rules";
pub const OPERATORS_FILE: &str = "operators.yaml";
pub const PERMISSIONS_FILE: &str = "permissions.yaml";
pub const SUBSCRIPTIONS_FILE: &str = "subscriptions.yaml";
pub const THREADS_FILE: &str = "threads.yaml";

/// The version of a configuration file's text: the hex SHA-256 of it.
pub fn version(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Reads a YAML file of the configuration. `None` when it is missing (an error unless
/// `optional`) or has problems (recorded in `errors`, with positions); an empty file is
/// `T::default()`.
pub fn read_yaml<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    optional: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            errors.push(ConfigError::new(path, format!("cannot read: {e}")));
            return None;
        }
    };
    match serde_saphyr::from_str::<Option<T>>(&text) {
        Ok(value) => Some(value.unwrap_or_default()),
        Err(e) => {
            errors.push(ConfigError::from_spec(path, SpecError::from_yaml(&e)));
            None
        }
    }
}

/// A secret kept outside the configuration: `env:NAME` (an environment variable) or
/// `file:PATH` (a file, relative to `dir`, trimmed). None: `value` is the secret itself.
pub fn reference(value: &str, dir: &Path) -> Option<Result<String, String>> {
    if let Some(var) = value.strip_prefix("env:") {
        Some(std::env::var(var).map_err(|_| format!("the environment variable {var} is not set")))
    } else {
        value.strip_prefix("file:").map(|file| {
            let at = dir.join(file);
            std::fs::read_to_string(&at).map(|s| s.trim().to_string()).map_err(|e| format!("{}: {e}", at.display()))
        })
    }
}

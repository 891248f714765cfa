//! Rule changes: a draft of `rules.yaml` checked against the rest of the configuration and its
//! routing tests without touching the files, and applied (written, reloaded here and announced
//! to the other instances, kept in the store's history, audited) or rolled back. The console's
//! routing page and `/v1/admin/rules` both call these.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::reload::ReloadError;
use super::state::Gateway;
use crate::audit::Entry;
use crate::config::files::RULES_FILE;
use crate::config::{Config, ConfigError};
use crate::store::{NewRuleChange, RuleChange, StoreError};

/// A problem of a draft, at its file, line and column (1-based).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// The file, relative to the configuration directory (`rules.yaml`, or `rules.test.yaml` for
    /// a routing test the draft fails).
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl Finding {
    /// Where it is: `file:line:column`, or as much of it as is known.
    pub fn at(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }
}

/// Why a draft was not applied.
#[derive(Debug)]
pub enum RulesError {
    /// The draft does not check, or fails a routing test.
    Invalid(Vec<Finding>),
    /// `rules.yaml` changed since the draft was made from it.
    Stale {
        current: String,
    },
    /// The draft is what is in force.
    Unchanged,
    /// The configuration directory cannot be written (a ConfigMap): the checked file is for the
    /// deployment's own change process.
    ReadOnly(String),
    /// No such change (to roll back).
    NoSuchChange(i64),
    Store(StoreError),
}

impl From<StoreError> for RulesError {
    fn from(e: StoreError) -> Self {
        RulesError::Store(e)
    }
}

/// A change applied.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Applied {
    /// Its id in the history.
    pub change: i64,
    /// SHA-256 of `rules.yaml` now (the `base` of the next draft).
    pub version: String,
    pub rules: usize,
}

pub use crate::config::files::version;

/// The `rules.yaml` of `dir` as it is on disk (empty when there is none).
pub fn current_rules(dir: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(dir.join(RULES_FILE)) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

impl Gateway {
    /// The configuration as it would be with `text` as `rules.yaml`: every file of the directory
    /// as it is, the routing tests of `rules.test.yaml` run against it.
    pub fn check_rules(&self, text: &str) -> Result<Arc<Config>, Vec<Finding>> {
        let dir = self.runtime().config.dir.clone();
        let key = format!("{}:{}", dir.display(), version(text));
        if let Some((k, config)) = self.drafts.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && *k == key
        {
            return Ok(config.clone());
        }
        let config = Arc::new(check(&dir, text)?);
        *self.drafts.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, config.clone()));
        Ok(config)
    }

    /// Applies `text` as `rules.yaml`: checked, written atomically, reloaded on this instance and
    /// announced to the others, kept in the history and audited. `base` is the version the draft
    /// was made from: a draft of an older version is refused rather than undoing a change it
    /// never saw.
    pub async fn apply_rules(
        &self,
        text: &str,
        base: Option<&str>,
        by: &str,
        note: Option<String>,
        reverts: Option<i64>,
    ) -> Result<Applied, RulesError> {
        let _one_at_a_time = self.rule_changes.lock().await;
        let dir = self.runtime().config.dir.clone();
        let before = current_rules(&dir).map_err(|e| RulesError::ReadOnly(format!("cannot read {RULES_FILE}: {e}")))?;
        if base.is_some_and(|b| b != version(&before)) {
            return Err(RulesError::Stale { current: version(&before) });
        }
        if text == before {
            return Err(RulesError::Unchanged);
        }
        let config = self.check_rules(text).map_err(RulesError::Invalid)?;
        let staged = stage(&dir, text).map_err(|e| RulesError::ReadOnly(e.to_string()))?;
        let change = NewRuleChange { by: by.into(), reverts, note, before: before.clone(), after: text.into() };
        let id = self.store.record_rule_change(change).await?;
        staged.persist(dir.join(RULES_FILE)).map_err(|e| RulesError::ReadOnly(e.error.to_string()))?;
        match self.reload(by).await {
            Ok(_) => {}
            Err(e) => {
                // Checked a moment ago: only another file changing in between gets here.
                if let Ok(back) = stage(&dir, &before) {
                    let _ = back.persist(dir.join(RULES_FILE));
                }
                return Err(match e {
                    ReloadError::Invalid(errors) => RulesError::Invalid(findings(&dir, errors.0)),
                    ReloadError::Store(e) => RulesError::Store(e),
                });
            }
        }
        let detail = match reverts {
            Some(r) => format!("change {id} rolls back change {r}: {} → {}", short(&before), short(text)),
            None => format!("change {id}: {} → {}", short(&before), short(text)),
        };
        if let Err(e) = self.store.audit(Entry::new("rules_changed").actor(by).detail(detail)).await {
            tracing::warn!(error = %e, "could not record the rule change in the audit log");
        }
        tracing::info!(change = id, by, "rules changed");
        Ok(Applied { change: id, version: version(text), rules: config.router.rules().len() })
    }

    /// Puts back `rules.yaml` as it was before change `id`.
    pub async fn roll_back_rules(&self, id: i64, by: &str) -> Result<Applied, RulesError> {
        let change: RuleChange = self.store.rule_change(id).await?.ok_or(RulesError::NoSuchChange(id))?;
        self.apply_rules(&change.before, None, by, Some(format!("rollback of change {id}")), Some(id)).await
    }
}

fn short(text: &str) -> String {
    version(text)[..12].to_string()
}

/// Writes `text` beside `rules.yaml` in a temporary file (renamed over it to apply): what
/// fails here when the directory is read-only.
fn stage(dir: &Path, text: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new().prefix(".rules.yaml.").tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    Ok(file)
}

/// Checks `text` as `rules.yaml` of `dir` in a scratch directory that links every other entry of
/// `dir`.
fn check(dir: &Path, text: &str) -> Result<Config, Vec<Finding>> {
    let scratch = tempfile::Builder::new().prefix("xietong-draft.").tempdir().map_err(|e| io_finding(&e))?;
    let entries = std::fs::read_dir(dir).map_err(|e| io_finding(&e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_finding(&e))?;
        if entry.file_name() == RULES_FILE {
            continue;
        }
        let target: PathBuf = std::fs::canonicalize(entry.path()).map_err(|e| io_finding(&e))?;
        std::os::unix::fs::symlink(target, scratch.path().join(entry.file_name())).map_err(|e| io_finding(&e))?;
    }
    std::fs::write(scratch.path().join(RULES_FILE), text).map_err(|e| io_finding(&e))?;
    crate::pipeline::rule_tests::load(scratch.path()).map_err(|errors| findings(scratch.path(), errors.0))
}

fn io_finding(e: &std::io::Error) -> Vec<Finding> {
    vec![Finding { file: String::new(), line: None, column: None, message: format!("cannot check the draft: {e}") }]
}

/// Errors with their files named relative to `dir`.
pub fn findings(dir: &Path, errors: Vec<ConfigError>) -> Vec<Finding> {
    errors
        .into_iter()
        .map(|e| Finding {
            file: e.file.strip_prefix(dir).unwrap_or(&e.file).display().to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        })
        .collect()
}

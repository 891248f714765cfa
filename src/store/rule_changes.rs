//! Rule changes made from the console or `POST /v1/admin/rules`: who changed `rules.yaml`, when,
//! from what to what. The history the console shows (with its diff) and what a rollback goes
//! back to; every instance sharing the store reads the same history.

use async_trait::async_trait;
use serde::Serialize;

use super::error::StoreError;

#[async_trait]
pub trait RuleChanges: Send + Sync {
    /// Keeps a change; returns its id (1, 2, ... in the order they were made).
    async fn record_rule_change(&self, change: NewRuleChange) -> Result<i64, StoreError>;

    /// The latest changes, newest first.
    async fn rule_changes(&self, limit: usize) -> Result<Vec<RuleChange>, StoreError>;

    /// One change.
    async fn rule_change(&self, id: i64) -> Result<Option<RuleChange>, StoreError>;
}

/// A change to record.
#[derive(Clone, Debug)]
pub struct NewRuleChange {
    /// `operator:NAME`.
    pub by: String,
    /// The change this one rolls back, if it is a rollback.
    pub reverts: Option<i64>,
    pub note: Option<String>,
    /// `rules.yaml` before and after.
    pub before: String,
    pub after: String,
}

/// A change to `rules.yaml`, as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleChange {
    pub id: i64,
    /// When it was applied (RFC 3339).
    pub at: String,
    pub by: String,
    /// The change it rolled back, if it is a rollback.
    pub reverts: Option<i64>,
    pub note: Option<String>,
    pub before: String,
    pub after: String,
}

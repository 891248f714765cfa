//! The audit chain as the store keeps it. Accepts, refusals, webhook outcomes and replays are
//! appended by the store itself, in the transaction of what they record; everything else
//! (reloads, admin actions, denials) through [`AuditLog::audit`].

use async_trait::async_trait;

use super::error::StoreError;
use crate::audit::Entry;
use crate::audit::checkpoint::{Checkpoint, Verifier};
use crate::audit::verify::{Check, Report, Stored};

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends a record to the audit chain.
    async fn audit(&self, entry: Entry) -> Result<(), StoreError>;

    /// The audit chain's last record: sequence and hash.
    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError>;

    /// Up to `limit` records after sequence `after`, in order (`xietong audit verify`).
    async fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<Stored>, StoreError>;

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;

    async fn add_audit_checkpoint(&self, checkpoint: Checkpoint) -> Result<(), StoreError>;
}

/// Verifies the whole chain of `log` and its checkpoints (with `verifier`, when given), reading
/// the records in pages.
pub async fn verify(log: &dyn AuditLog, verifier: Option<&Verifier>) -> Result<Report, StoreError> {
    const PAGE: usize = 1000;
    let checkpoints = log.audit_checkpoints().await?;
    let mut check = Check::new(&checkpoints, verifier);
    let mut after = 0;
    loop {
        let page = match log.audit_records(after, PAGE).await {
            Ok(page) => page,
            Err(e) => {
                check.record(Err(e.to_string()));
                break;
            }
        };
        let full = page.len() == PAGE;
        after = page.last().map_or(after, |s| s.seq);
        if !page.into_iter().all(|s| check.record(Ok(s))) || !full {
            break;
        }
    }
    Ok(check.finish())
}

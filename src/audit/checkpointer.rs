//! The checkpointer: signs the head of the audit chain every `audit.checkpoint_every`, when the
//! configuration names a signing key and records were appended since the last checkpoint.

use std::path::Path;
use std::sync::Arc;

use super::checkpoint::{Checkpoint, Signer};
use crate::clock::{Clock, format_ms};
use crate::config::Current;
use crate::store::{AuditLog, StoreError};

/// Signs checkpoints until the store is closed.
pub async fn run(store: Arc<dyn AuditLog>, clock: Arc<dyn Clock>, config: Current) {
    loop {
        let current = config();
        let audit = current.settings.audit.clone();
        tokio::time::sleep(audit.checkpoint_every).await;
        let Some(key) = audit.signing_key.as_ref().map(|k| current.dir.join(k)) else { continue };
        match checkpoint(store.as_ref(), clock.now_ms(), &key).await {
            Ok(Some(c)) => tracing::debug!(seq = c.seq, "audit checkpoint signed"),
            Ok(None) => {}
            Err(StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "cannot sign an audit checkpoint now"),
        }
    }
}

/// Signs the chain's head at `now_ms` with the key in `key`, unless it is signed already.
async fn checkpoint(store: &dyn AuditLog, now_ms: i64, key: &Path) -> Result<Option<Checkpoint>, StoreError> {
    let signer = Signer::load(key).map_err(StoreError::Unavailable)?;
    let Some((seq, hash)) = store.audit_head().await? else { return Ok(None) };
    let last = store.audit_checkpoints().await?.last().map_or(0, |c| c.seq);
    if seq <= last {
        return Ok(None);
    }
    let c = signer.sign(seq, &hash, &format_ms(now_ms));
    store.add_audit_checkpoint(c.clone()).await?;
    Ok(Some(c))
}

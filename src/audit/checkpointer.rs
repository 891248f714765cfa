//! The checkpointer: signs the head of the audit chain from time to time.

use std::path::Path;
use std::sync::Arc;

use super::checkpoint::{Checkpoint, Signer};
use crate::clock::{Clock, format_ms};
use crate::config::Current;
use crate::store::{AuditLog, StoreError};

/// Signs the chain's head every `audit.checkpoint_every`, when the configuration names a
/// signing key and records were appended since the last checkpoint.
pub struct Checkpointer {
    store: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
    config: Current,
}

impl Checkpointer {
    pub fn new(store: Arc<dyn AuditLog>, clock: Arc<dyn Clock>, config: Current) -> Checkpointer {
        Checkpointer { store, clock, config }
    }

    /// Signs checkpoints until the store is closed.
    pub async fn run(self) {
        loop {
            let config = (self.config)();
            let audit = config.settings.audit.clone();
            tokio::time::sleep(audit.checkpoint_every).await;
            let Some(key) = audit.signing_key.as_ref().map(|k| config.dir.join(k)) else { continue };
            match self.checkpoint(&key).await {
                Ok(Some(c)) => tracing::debug!(seq = c.seq, "audit checkpoint signed"),
                Ok(None) => {}
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "cannot sign an audit checkpoint now"),
            }
        }
    }

    async fn checkpoint(&self, key: &Path) -> Result<Option<Checkpoint>, StoreError> {
        let signer = Signer::load(key).map_err(StoreError::Unavailable)?;
        let Some((seq, hash)) = self.store.audit_head().await? else { return Ok(None) };
        let last = self.store.audit_checkpoints().await?.last().map_or(0, |c| c.seq);
        if seq <= last {
            return Ok(None);
        }
        let c = signer.sign(seq, &hash, &format_ms(self.clock.now_ms()));
        self.store.add_audit_checkpoint(c.clone()).await?;
        Ok(Some(c))
    }
}

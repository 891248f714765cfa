//! The store as a running service: readiness, the reloads other instances announce, closing.

use async_trait::async_trait;
use tokio::sync::watch;

use super::error::StoreError;

#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Whether the store can commit now.
    async fn ready(&self) -> Result<(), StoreError>;

    /// Tells the other instances that share this store to load their configuration again.
    async fn announce_reload(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Changes when another instance announced a reload (None: a store of one instance).
    fn reloads(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// Commits what is queued and stops. Later calls fail with `Closed`.
    async fn close(&self);
}

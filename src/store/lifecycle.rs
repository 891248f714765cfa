//! The store as a running service: readiness, the reloads other instances announce, closing.

use async_trait::async_trait;
use tokio::sync::watch;

use super::error::StoreError;

/// This process, by host and process id.
pub fn this_process() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "xietong".into());
    format!("{host}-{}", std::process::id())
}

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

    /// The instances that share this store and were alive in the last 30 seconds, by name (the
    /// embedded store: this process alone).
    async fn instances(&self) -> Result<Vec<String>, StoreError> {
        Ok(vec![this_process()])
    }

    /// Commits what is queued and stops. Later calls fail with `Closed`.
    async fn close(&self);
}

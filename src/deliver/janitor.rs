//! The retention janitor: deletes feed entries (and finished webhook attempts) past
//! `delivery.retention`, every `delivery.purge_every`.

use std::sync::Arc;

use crate::clock::{Clock, format_ms};
use crate::config::Current;
use crate::store::{Feeds, StoreError};

/// Purges every `purge_every` until the store is closed.
pub async fn run(store: Arc<dyn Feeds>, clock: Arc<dyn Clock>, config: Current) {
    loop {
        let delivery = config().settings.delivery.clone();
        tokio::time::sleep(delivery.purge_every).await;
        let retention = i64::try_from(delivery.retention.as_millis()).unwrap_or(i64::MAX);
        let before = format_ms(clock.now_ms().saturating_sub(retention));
        match store.purge(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "purged feed entries past the retention"),
            Err(StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "could not purge feed entries"),
        }
    }
}

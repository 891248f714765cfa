//! The watcher: learns of commits by any instance and of reloads announced by others, and
//! brings the configured subscriptions back when Redis lost the gateway's data.

use std::sync::Weak;
use std::time::Duration;

use super::connection::Conn;
use super::store::RedisStore;
use crate::store::StoreError;

/// How long a watcher's blocking read waits before it looks again.
const WATCH_BLOCK: Duration = Duration::from_millis(1000);

impl RedisStore {
    /// Called by the watcher when the data was lost: the subscriptions from the configuration
    /// come back, and this instance's view of the audit chain is read again.
    async fn recover(&self) -> Result<(), StoreError> {
        self.chain.forget_head().await;
        let rows = self.configured.lock().ok().and_then(|c| c.clone());
        if let Some(rows) = rows {
            super::subscriptions::sync_config(self, rows).await?;
        }
        tracing::warn!(prefix = %self.settings.prefix, "redis lost the gateway's data; the configured subscriptions were created again");
        Ok(())
    }
}

/// Learns of commits by any instance (a blocking read of the log stream on a connection of its
/// own) and tells this instance's feeds and workers; notices when Redis lost the gateway's
/// data. Reconnects with a growing pause while Redis is away; ends with the store.
pub async fn watch(store: Weak<RedisStore>) {
    let mut last: String;
    let mut pause = Duration::from_millis(100);
    let mut reloads: Option<i64> = None;
    let mut looked = std::time::Instant::now();
    loop {
        let Some((settings, log)) = store.upgrade().map(|s| (s.settings.clone(), s.keys.key("log"))) else { return };
        let mut conn = match Conn::open(&settings).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "redis watcher: cannot connect; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        // From now on; whatever was committed while the watcher was away is announced at once.
        last = "$".into();
        let Some(s) = store.upgrade() else { return };
        if let Ok(true) = s.mark_epoch().await
            && let Err(e) = s.recover().await
        {
            tracing::warn!(error = %e, "redis watcher: could not restore the subscriptions");
        }
        s.notify.send_modify(|n| *n += 1);
        if reloads.is_none() {
            reloads = s.reload_generation().await.ok();
        }
        let block = WATCH_BLOCK.min(settings.timeout / 2).as_millis() as u64;
        drop(s);
        loop {
            let read: Result<Option<redis::streams::StreamReadReply>, _> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(block)
                .arg("STREAMS")
                .arg(&log)
                .arg(&last)
                .query_async(&mut conn)
                .await;
            let Some(s) = store.upgrade() else { return };
            // Reloads announced by other instances, looked for about once a second.
            if looked.elapsed() >= WATCH_BLOCK {
                looked = std::time::Instant::now();
                if let Err(e) = s.heartbeat().await {
                    tracing::debug!(error = %e, "redis watcher: could not say this instance is alive");
                }
                if let Some(seen) = reloads.as_mut()
                    && s.follow_reloads(seen).await.is_err()
                {
                    break;
                }
            }
            match read {
                Ok(Some(reply)) => {
                    if let Some(id) = reply.keys.iter().flat_map(|k| k.ids.last()).next_back() {
                        last = id.id.clone();
                        s.notify.send_modify(|n| *n += 1);
                    }
                }
                Ok(None) => {
                    // A quiet second: see whether Redis lost the data (restarted empty).
                    match s.mark_epoch().await {
                        Ok(true) => {
                            last = "$".into();
                            if let Err(e) = s.recover().await {
                                tracing::warn!(error = %e, "redis watcher: could not restore the subscriptions");
                            }
                            s.notify.send_modify(|n| *n += 1);
                        }
                        Ok(false) => {}
                        Err(_) => break,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "redis watcher: lost the connection");
                    break;
                }
            }
        }
    }
}

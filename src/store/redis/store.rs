//! The Redis store itself: its connection, keys, clock and the instance's own state (the
//! reloads it follows, its consumer name), and its lifecycle.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redis::AsyncCommands;
use tokio::sync::watch;

use super::chain::Chain;
use super::connection::Conn;
use super::values::unavailable;
use crate::clock::{Clock, format_ms};
use crate::config::settings::RedisSettings;
use crate::store::{Lifecycle, StoreError, SubscriptionRow};

/// Key names under one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    /// `{prefix}:`
    pub(super) base: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys { base: format!("{{{prefix}}}:") }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }
}

pub struct RedisStore {
    pub(super) conn: Conn,
    pub(super) keys: Keys,
    pub(super) settings: RedisSettings,
    pub(super) commits: watch::Receiver<u64>,
    pub(super) notify: watch::Sender<u64>,
    /// The writes that append to the audit chain, committed in groups.
    pub(super) chain: Arc<Chain>,
    /// The configured subscriptions, brought back if Redis loses its data.
    pub(super) configured: Arc<Mutex<Option<Vec<SubscriptionRow>>>>,
    pub(super) watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Bumped when another instance announced a reload.
    pub(super) reloads: watch::Sender<u64>,
    /// The reload generation this instance announced last (not to reload for its own).
    pub(super) own_reload: tokio::sync::Mutex<i64>,
    /// This instance's name in the delivery queues' consumer groups.
    pub(super) consumer: String,
    /// Received times and audit records are stamped by this clock.
    pub(super) clock: Arc<dyn Clock>,
}

impl RedisStore {
    pub(super) fn conn(&self) -> Conn {
        self.conn.clone()
    }

    pub(super) async fn check_waitaof(&self) -> Result<(), StoreError> {
        let info: redis::Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg("WAITAOF")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let known =
            matches!(&info, redis::Value::Array(items) if items.iter().any(|i| !matches!(i, redis::Value::Nil)));
        if known {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "store.redis.wait asks for WAITAOF, which this Redis server lacks (it needs Redis 7.2 or later)".into(),
            ))
        }
    }

    /// Marks the data as this gateway's: when the mark is gone, Redis lost its data (restarted
    /// without persistence), and the configured subscriptions are made again.
    pub(super) async fn mark_epoch(&self) -> Result<bool, StoreError> {
        let set: bool = redis::cmd("SET")
            .arg(self.keys.key("epoch"))
            .arg(self.clock.now_ms())
            .arg("NX")
            .query_async::<Option<String>>(&mut self.conn())
            .await
            .map_err(unavailable)?
            .is_some();
        Ok(set)
    }

    /// The reload generation in Redis.
    pub(super) async fn reload_generation(&self) -> Result<i64, StoreError> {
        let g: Option<i64> = self.conn().get(self.keys.key("reload")).await.map_err(unavailable)?;
        Ok(g.unwrap_or(0))
    }

    /// Tells this instance to reload when another instance announced a reload since `seen`.
    pub(super) async fn follow_reloads(&self, seen: &mut i64) -> Result<(), StoreError> {
        let own = self.own_reload.lock().await;
        let now = self.reload_generation().await?;
        if now != *seen {
            *seen = now;
            if now != *own {
                self.reloads.send_modify(|n| *n += 1);
            }
        }
        Ok(())
    }

    /// Waits, when configured, until Redis has the last write on disk (and on replicas).
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        let Some(wait) = &self.settings.wait else { return Ok(()) };
        let (local, replicas): (i64, i64) = redis::cmd("WAITAOF")
            .arg(u8::from(wait.local))
            .arg(wait.replicas)
            .arg(wait.timeout.as_millis() as u64)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        if (wait.local && local < 1) || replicas < i64::from(wait.replicas) {
            return Err(StoreError::Unavailable(format!(
                "WAITAOF: the write reached {local} local AOF and {replicas} replica(s) within {:?}",
                wait.timeout
            )));
        }
        Ok(())
    }

    /// Now by the store's clock, as its timestamps are written (RFC 3339, Beijing time).
    pub(super) fn now(&self) -> String {
        format_ms(self.clock.now_ms())
    }
}

#[async_trait]
impl Lifecycle for RedisStore {
    async fn ready(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await.map_err(unavailable)?;
        Ok(())
    }

    async fn announce_reload(&self) -> Result<(), StoreError> {
        // Held while announcing, so the watcher cannot take this instance's own for another's.
        let mut own = self.own_reload.lock().await;
        *own = self.conn().incr(self.keys.key("reload"), 1).await.map_err(unavailable)?;
        Ok(())
    }

    fn reloads(&self) -> Option<watch::Receiver<u64>> {
        Some(self.reloads.subscribe())
    }

    async fn instances(&self) -> Result<Vec<String>, StoreError> {
        let seen: std::collections::HashMap<String, i64> =
            self.conn().hgetall(self.keys.key("instances")).await.map_err(unavailable)?;
        let now = self.clock.now_ms();
        let mut alive: Vec<String> =
            seen.into_iter().filter(|(_, at)| now - at < INSTANCE_ALIVE_MS).map(|(name, _)| name).collect();
        alive.sort();
        Ok(alive)
    }

    async fn close(&self) {
        if let Some(w) = self.watcher.lock().ok().and_then(|mut w| w.take()) {
            w.abort();
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.lock().ok().and_then(|mut w| w.take()) {
            w.abort();
        }
    }
}

/// An instance that has not said it is alive for this long is not counted among the instances.
const INSTANCE_ALIVE_MS: i64 = 30_000;

impl RedisStore {
    /// Says this instance is alive (the watcher, about once a second); forgets instances silent
    /// for a day.
    pub(super) async fn heartbeat(&self) -> Result<(), StoreError> {
        let key = self.keys.key("instances");
        let now = self.clock.now_ms();
        let mut conn = self.conn();
        let _: () = conn.hset(&key, &self.consumer, now).await.map_err(unavailable)?;
        if rand::random::<u8>() == 0 {
            let seen: std::collections::HashMap<String, i64> = conn.hgetall(&key).await.map_err(unavailable)?;
            let gone: Vec<String> = seen.into_iter().filter(|(_, at)| now - at > 86_400_000).map(|(n, _)| n).collect();
            if !gone.is_empty() {
                let _: () = conn.hdel(&key, gone).await.map_err(unavailable)?;
            }
        }
        Ok(())
    }
}

/// A name for this instance in the consumer groups: its host, process and a random part (a
/// restarted process is a new consumer; what the old one held is reclaimed after its lease).
pub(super) fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "xietong".into());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

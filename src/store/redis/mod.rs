//! The shared store: Redis (single server or Cluster, plain or TLS), so several gateway
//! instances act as one (docs/deploy.md).
//!
//! Every write is one Lua script, so it is atomic: a message, its feed entries and its audit
//! record are all there or none is. `accept` returns once Redis has run the script and, when
//! `wait` is configured, once `WAITAOF` reports the write on disk (and on replicas).
//!
//! Layout (the keys of messages, feeds, threads and the audit chain start with the hash tag
//! `{prefix}`, so they are in one Cluster slot and a script's keys are always together):
//! - `seq`: the last feed position; `log`: a stream of committed messages (id `seq-1`), which
//!   instances block on to learn of each other's commits; `feed:RECIPIENT`: a stream per
//!   recipient, its copies; `m:ID`: a message; `native`: sender and native id → message id.
//! - `subs`, `sub:ID`: subscriptions (owner, spec, cursor, disabled); `att:next`: the last
//!   webhook attempt id. Each webhook subscription's attempts are in its own delivery queue, a
//!   stream with a consumer group under a hash tag of its own (`queue`): the delivery load
//!   spreads over a Cluster's shards.
//! - `tm`, `th:ID`, `o:N`: threads, their messages and obligations (`o:due` by deadline);
//!   `rf:DAY`: the reply figures per day (`scripts::FIGURES`).
//! - `audit`: the chain, a stream; `audit:head`; `audit:cp`: signed checkpoints.

mod audit;
mod chain;
mod connection;
mod counts;
mod feeds;
mod messages;
mod queue;
mod reply_figures;
mod rule_changes;
mod scripts;
mod sessions;
mod store;
mod subscriptions;
mod threads;
mod values;
mod watch;
mod webhooks;

use std::sync::{Arc, Mutex};

use tokio::sync::watch as signal;

pub use connection::Conn;
pub use store::{Keys, RedisStore};

use crate::audit::Algorithm;
use crate::clock::Clock;
use crate::config::settings::RedisSettings;
use crate::store::StoreError;

impl RedisStore {
    /// Connects and starts the watcher that learns of other instances' commits. Fails when
    /// Redis cannot be reached, or lacks `WAITAOF` while `wait` asks for it.
    pub async fn open(
        settings: &RedisSettings,
        alg: Algorithm,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<RedisStore>, StoreError> {
        let store = Arc::new(Self::connect(settings, alg, clock).await?);
        if store.settings.wait.is_some() {
            store.check_waitaof().await?;
        }
        store.mark_epoch().await?;
        store.fill_reply_figures().await?;
        let watcher = tokio::spawn(watch::watch(Arc::downgrade(&store)));
        if let Ok(mut w) = store.watcher.lock() {
            *w = Some(watcher);
        }
        Ok(store)
    }

    /// Connects, to read only (`xietong audit verify`): no watcher, nothing marked.
    pub async fn open_read_only(
        settings: &RedisSettings,
        alg: Algorithm,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<RedisStore>, StoreError> {
        Ok(Arc::new(Self::connect(settings, alg, clock).await?))
    }

    async fn connect(
        settings: &RedisSettings,
        alg: Algorithm,
        clock: Arc<dyn Clock>,
    ) -> Result<RedisStore, StoreError> {
        let conn = Conn::open(settings).await?;
        let keys = Keys::new(&settings.prefix);
        let (notify, commits) = signal::channel(0u64);
        let chain = chain::Chain::new(conn.clone(), &keys.base, alg, clock.clone());
        Ok(RedisStore {
            conn,
            keys,
            settings: settings.clone(),
            commits,
            notify,
            chain,
            configured: Arc::new(Mutex::new(None)),
            watcher: Mutex::new(None),
            reloads: signal::channel(0).0,
            own_reload: tokio::sync::Mutex::new(0),
            consumer: store::consumer_name(),
            clock,
        })
    }
}

/// Glob patterns that match every key of a gateway with this prefix (`SCAN MATCH`, `KEYS`): its
/// own and its delivery queues'.
pub fn key_patterns(prefix: &str) -> [String; 2] {
    [format!("{{{prefix}}}:*"), format!("{{{prefix}:q:*}}:*")]
}

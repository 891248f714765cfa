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
//! - `tm`, `th:ID`, `o:N`: threads, their messages and obligations (`o:due` by deadline).
//! - `audit`: the chain, a stream; `audit:head`; `audit:cp`: signed checkpoints.

mod audit;
mod chain;
mod connection;
mod messages;
mod queue;
mod scripts;
mod threads;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use tokio::sync::watch;

pub use connection::Conn;

use super::{
    Accepted, Attempt, AttemptOutcome, DeadLetter, DueObligation, FeedPage, LogEntry, NewAttempt, NewMessage,
    ObligationRow, Refusal, StepOutcome, Store, StoreError, SubscriptionRow, ThreadQuery, ThreadRow, ThreadStep, Trace,
};
use crate::audit::Algorithm;
use crate::config::settings::RedisSettings;

/// A hash as Redis returns it.
type Fields = HashMap<String, String>;

fn field(f: &Fields, name: &str) -> Option<String> {
    f.get(name).filter(|v| !v.is_empty()).cloned()
}

fn number(f: &Fields, name: &str) -> i64 {
    f.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn now() -> String {
    chrono::Utc::now()
        .with_timezone(&crate::normalize::convert::beijing())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// Key names under one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    /// `{prefix}:`
    base: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys { base: format!("{{{prefix}}}:") }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }
}

pub struct RedisStore {
    conn: Conn,
    keys: Keys,
    settings: RedisSettings,
    commits: watch::Receiver<u64>,
    notify: watch::Sender<u64>,
    /// The writes that append to the audit chain, committed in groups.
    chain: Arc<chain::Chain>,
    /// The configured subscriptions, brought back if Redis loses its data.
    configured: Arc<Mutex<Option<Vec<SubscriptionRow>>>>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Bumped when another instance announced a reload.
    reloads: watch::Sender<u64>,
    /// The reload generation this instance announced last (not to reload for its own).
    own_reload: tokio::sync::Mutex<i64>,
    /// This instance's name in the delivery queues' consumer groups.
    consumer: String,
}

impl RedisStore {
    /// Connects and starts the watcher that learns of other instances' commits. Fails when
    /// Redis cannot be reached, or lacks `WAITAOF` while `wait` asks for it.
    pub async fn open(settings: &RedisSettings, alg: Algorithm) -> Result<Arc<RedisStore>, StoreError> {
        let conn = Conn::open(settings).await?;
        let keys = Keys::new(&settings.prefix);
        let (notify, commits) = watch::channel(0u64);
        let chain = chain::Chain::new(conn.clone(), &keys.base, alg);
        let store = Arc::new(RedisStore {
            conn,
            keys,
            settings: settings.clone(),
            commits,
            notify,
            chain,
            configured: Arc::new(Mutex::new(None)),
            watcher: Mutex::new(None),
            reloads: watch::channel(0).0,
            own_reload: tokio::sync::Mutex::new(0),
            consumer: consumer_name(),
        });
        if store.settings.wait.is_some() {
            store.check_waitaof().await?;
        }
        store.mark_epoch().await?;
        let watcher = tokio::spawn(connection::watch(Arc::downgrade(&store)));
        if let Ok(mut w) = store.watcher.lock() {
            *w = Some(watcher);
        }
        Ok(store)
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// A webhook subscription's delivery queue.
    fn queue(&self, subscription: &str) -> queue::Queue {
        queue::Queue::new(&self.settings.prefix, subscription)
    }

    async fn check_waitaof(&self) -> Result<(), StoreError> {
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
    async fn mark_epoch(&self) -> Result<bool, StoreError> {
        let set: bool = redis::cmd("SET")
            .arg(self.keys.key("epoch"))
            .arg(chrono::Utc::now().timestamp_millis())
            .arg("NX")
            .query_async::<Option<String>>(&mut self.conn())
            .await
            .map_err(unavailable)?
            .is_some();
        Ok(set)
    }

    /// Called by the watcher when the data was lost: the subscriptions from the configuration
    /// come back, and this instance's view of the audit chain is read again.
    async fn recover(&self) -> Result<(), StoreError> {
        self.chain.forget_head().await;
        let rows = self.configured.lock().ok().and_then(|c| c.clone());
        if let Some(rows) = rows {
            webhooks::sync_config(self, rows).await?;
        }
        tracing::warn!(prefix = %self.settings.prefix, "redis lost the gateway's data; the configured subscriptions were created again");
        Ok(())
    }

    /// The reload generation in Redis.
    async fn reload_generation(&self) -> Result<i64, StoreError> {
        let g: Option<i64> = self.conn().get(self.keys.key("reload")).await.map_err(unavailable)?;
        Ok(g.unwrap_or(0))
    }

    /// Tells this instance to reload when another instance announced a reload since `seen`.
    async fn follow_reloads(&self, seen: &mut i64) -> Result<(), StoreError> {
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
    async fn durable(&self) -> Result<(), StoreError> {
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

    /// Appends one record to the audit chain.
    async fn audit_entry(&self, entry: crate::audit::Entry) -> Result<(), StoreError> {
        self.with_audit(&scripts::AUDIT, Some(entry), Vec::new(), |_| Some(())).await
    }

    /// Runs `script` with the audit record of `entry` appended (when there is one) and `args`
    /// after the audit arguments, in a group commit with the instance's other writes.
    async fn with_audit<T>(
        &self,
        script: &'static redis::Script,
        entry: Option<crate::audit::Entry>,
        args: Vec<Vec<u8>>,
        answer: impl Fn(redis::Value) -> Option<T>,
    ) -> Result<T, StoreError> {
        let value = self.chain.write(script, entry, args).await?;
        answer(value).ok_or_else(|| StoreError::Unavailable("redis: an unexpected answer".into()))
    }
}

/// Glob patterns that match every key of a gateway with this prefix (`SCAN MATCH`, `KEYS`): its
/// own and its delivery queues'.
pub fn key_patterns(prefix: &str) -> [String; 2] {
    [format!("{{{prefix}}}:*"), format!("{{{prefix}:q:*}}:*")]
}

/// A name for this instance in the consumer groups: its host, process and a random part (a
/// restarted process is a new consumer; what the old one held is reclaimed after its lease).
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "xietong".into());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

fn value_str(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn accept(&self, message: NewMessage) -> Result<Accepted, StoreError> {
        let accepted = messages::accept(self, message).await?;
        if matches!(accepted, Accepted::Created(_)) {
            self.durable().await?;
            self.notify.send_modify(|n| *n += 1);
        }
        Ok(accepted)
    }

    async fn record_refusal(&self, refusal: Refusal) -> Result<(), StoreError> {
        self.audit(messages::refusal_entry(&refusal)).await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await.map_err(unavailable)?;
        Ok(())
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    async fn feed(&self, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError> {
        messages::feed(self, recipient, after, limit).await
    }

    async fn head(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = self.conn().get(self.keys.key("seq")).await.map_err(unavailable)?;
        Ok(seq.unwrap_or(0))
    }

    async fn purge(&self, before: String) -> Result<usize, StoreError> {
        messages::purge(self, &before).await
    }

    async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, StoreError> {
        webhooks::subscriptions(self).await
    }

    async fn create_subscription(&self, row: SubscriptionRow) -> Result<(), StoreError> {
        match webhooks::create_subscription(self, &row).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!("a subscription `{}` exists", row.id))),
        }
    }

    async fn sync_config_subscriptions(&self, rows: Vec<SubscriptionRow>) -> Result<(), StoreError> {
        if let Ok(mut c) = self.configured.lock() {
            *c = Some(rows.clone());
        }
        webhooks::sync_config(self, rows).await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        webhooks::delete_subscription(self, id).await
    }

    async fn update_subscription(
        &self,
        id: &str,
        spec: Option<String>,
        disabled: Option<Option<String>>,
    ) -> Result<bool, StoreError> {
        webhooks::update_subscription(self, id, spec, disabled).await
    }

    async fn acknowledge(&self, id: &str, cursor: i64) -> Result<bool, StoreError> {
        let n: i64 = scripts::ACKNOWLEDGE
            .key(self.keys.key("seq"))
            .arg(&self.keys.base)
            .arg("")
            .arg("")
            .arg("")
            .arg("")
            .arg(id)
            .arg(cursor)
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(n == 1)
    }

    async fn enqueue(&self, subscription: &str, entries: Vec<NewAttempt>, through: i64) -> Result<(), StoreError> {
        webhooks::enqueue(self, subscription, entries, through).await
    }

    async fn lease(
        &self,
        subscription: &str,
        max: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Attempt>, StoreError> {
        webhooks::lease(self, subscription, max, now_ms, lease_ms).await
    }

    async fn complete(&self, attempt: &Attempt, outcome: AttemptOutcome) -> Result<(), StoreError> {
        webhooks::complete(self, attempt, outcome).await
    }

    async fn dead_letters(&self, subscription: Option<String>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        webhooks::dead_letters(self, subscription.as_deref(), limit).await
    }

    async fn replay(&self, attempt: i64, by: &str) -> Result<bool, StoreError> {
        webhooks::replay(self, attempt, by).await
    }

    async fn audit(&self, entry: crate::audit::Entry) -> Result<(), StoreError> {
        self.audit_entry(entry).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        audit::head(self).await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<crate::audit::checkpoint::Checkpoint>, StoreError> {
        audit::checkpoints(self).await
    }

    async fn add_audit_checkpoint(&self, checkpoint: crate::audit::checkpoint::Checkpoint) -> Result<(), StoreError> {
        audit::add_checkpoint(self, &checkpoint).await
    }

    async fn trace(&self, message_id: &str) -> Result<Option<Trace>, StoreError> {
        messages::trace(self, message_id).await
    }

    async fn thread_backlog(&self, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        threads::backlog(self, limit).await
    }

    async fn apply_thread_steps(&self, steps: Vec<ThreadStep>) -> Result<Vec<StepOutcome>, StoreError> {
        threads::apply_all(self, steps).await
    }

    async fn sender_of(&self, link: &str, reader: &str) -> Result<Option<String>, StoreError> {
        Ok(threads::referenced(self, link, i64::MAX, reader).await?.map(|(_, sender)| sender))
    }

    async fn message(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let (event, native): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.key(&format!("m:{id}")))
            .arg("event")
            .arg("native")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(event.zip(native))
    }

    async fn due_obligations(&self, now_ms: i64, limit: usize) -> Result<Vec<DueObligation>, StoreError> {
        threads::due(self, now_ms, limit).await
    }

    async fn unescalated(&self, types: Vec<String>) -> Result<Vec<(i64, String, String)>, StoreError> {
        threads::unescalated(self, &types).await
    }

    async fn mark_overdue(&self, obligation: i64) -> Result<bool, StoreError> {
        let n: i64 = scripts::MARK_OVERDUE
            .key(self.keys.key("seq"))
            .arg(&self.keys.base)
            .arg("")
            .arg("")
            .arg("")
            .arg("")
            .arg(obligation)
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(n == 1)
    }

    async fn threads(&self, query: ThreadQuery) -> Result<Vec<ThreadRow>, StoreError> {
        threads::threads(self, &query).await
    }

    async fn obligations(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ObligationRow>, StoreError> {
        threads::obligations(self, from_ms, to_ms).await
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

/// How long a watcher's blocking read waits before it looks again.
const WATCH_BLOCK: Duration = Duration::from_millis(1000);

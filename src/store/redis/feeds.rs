//! Feeds on Redis: a stream per recipient (`feed:RECIPIENT`, ids `seq-1`), and their retention.

use async_trait::async_trait;
use redis::AsyncCommands;
use tokio::sync::watch;

use super::store::RedisStore;
use super::subscriptions::subscriptions;
use super::values::{field, position, stream_fields, unavailable};
use crate::store::{FeedEntry, FeedPage, Feeds, StoreError};

#[async_trait]
impl Feeds for RedisStore {
    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    async fn feed(&self, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError> {
        feed(self, recipient, after, limit).await
    }

    async fn head(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = self.conn().get(self.keys.key("seq")).await.map_err(unavailable)?;
        Ok(seq.unwrap_or(0))
    }

    async fn purge(&self, before: String) -> Result<usize, StoreError> {
        purge(self, &before).await
    }
}

async fn feed(store: &RedisStore, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError> {
    let mut conn = store.conn();
    let reply: redis::streams::StreamRangeReply = conn
        .xrange_count(store.keys.key(&format!("feed:{recipient}")), format!("({}-1", after.max(0)), "+", limit)
        .await
        .map_err(unavailable)?;
    let entries = reply
        .ids
        .iter()
        .map(|e| {
            let f = stream_fields(&e.map);
            FeedEntry {
                cursor: position(&e.id),
                message_type: field(&f, "type").unwrap_or_default(),
                subject: field(&f, "subject"),
                event: f.get("event").cloned().unwrap_or_default(),
            }
        })
        .collect();
    let purged: Option<i64> = conn.get(store.keys.key("purged")).await.map_err(unavailable)?;
    Ok(FeedPage { entries, purged_through: purged.unwrap_or(0) })
}

/// Deletes the feed entries of messages received before `before` (RFC 3339) — but each
/// recipient's feed is kept from its oldest pending webhook attempt on — and the finished
/// attempts of those messages.
async fn purge(store: &RedisStore, before: &str) -> Result<usize, StoreError> {
    let before_ms = chrono::DateTime::parse_from_rfc3339(before)
        .map_err(|e| StoreError::Unavailable(format!("purge: `{before}` is not RFC 3339: {e}")))?
        .timestamp_millis();
    let k = |n: &str| store.keys.key(n);
    let mut conn = store.conn();
    let last: Vec<(String, f64)> = conn
        .zrevrangebyscore_limit_withscores(k("received"), format!("({before_ms}"), "-inf", 0, 1)
        .await
        .map_err(unavailable)?;
    let Some(through) = last.first().and_then(|(seq, _)| seq.parse::<i64>().ok()) else { return Ok(0) };
    // The oldest pending attempt of each owner's subscriptions holds its feed.
    let mut held: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let subscriptions = subscriptions(store).await?;
    for sub in &subscriptions {
        let oldest: Vec<(String, f64)> =
            conn.zrange_withscores(store.queue(&sub.id).key("pend"), 0, 0).await.map_err(unavailable)?;
        if let Some((_, seq)) = oldest.first() {
            let e = held.entry(sub.owner.clone()).or_insert(i64::MAX);
            *e = (*e).min(*seq as i64);
        }
    }
    let recipients: Vec<String> = conn.smembers(k("recipients")).await.map_err(unavailable)?;
    let mut gone = 0usize;
    for r in recipients {
        let keep_from = held.get(&r).copied().unwrap_or(i64::MAX).min(through + 1);
        let n: usize = redis::cmd("XTRIM")
            .arg(k(&format!("feed:{r}")))
            .arg("MINID")
            .arg(format!("{keep_from}-0"))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        gone += n;
    }
    // Finished attempts of purged entries, queue by queue.
    for sub in &subscriptions {
        let q = store.queue(&sub.id);
        let finished: Vec<(String, f64)> =
            conn.zrangebyscore_withscores(q.key("done"), "-inf", through).await.map_err(unavailable)?;
        for chunk in finished.chunks(500) {
            let mut p = redis::pipe();
            for (id, seq) in chunk {
                p.del(q.key(&format!("a:{id}")))
                    .hdel(q.key("att"), *seq as i64)
                    .zrem(q.key("done"), id)
                    .zrem(q.key("dead"), id);
            }
            let () = p.query_async(&mut conn).await.map_err(unavailable)?;
        }
    }
    // The log only from the thread worker's cursor on.
    let cursor: Option<i64> = conn.get(k("threads:cursor")).await.map_err(unavailable)?;
    let log_from = cursor.unwrap_or(0).min(through) + 1;
    let () = redis::pipe()
        .cmd("XTRIM")
        .arg(k("log"))
        .arg("MINID")
        .arg(format!("{log_from}-0"))
        .ignore()
        .zrembyscore(k("received"), "-inf", format!("({before_ms}"))
        .ignore()
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let purged: Option<i64> = conn.get(k("purged")).await.map_err(unavailable)?;
    if purged.unwrap_or(0) < through {
        let () = conn.set(k("purged"), through).await.map_err(unavailable)?;
    }
    Ok(gone)
}

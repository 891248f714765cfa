//! Subscriptions and webhook attempts on Redis. A subscription's record (owner, spec, cursor,
//! disabled) is with the gateway's other keys; its attempts are in its own delivery queue
//! (`queue`), in a slot of its own.
//!
//! An outcome, a replay or a gone endpoint is first appended to the audit chain and then applied
//! to the queue: after a crash between the two, the attempt is sent again and its outcome is
//! recorded twice, never missing from the audit chain.

use async_trait::async_trait;
use redis::AsyncCommands;

use super::scripts::{self, bulk, run};
use super::store::RedisStore;
use super::subscriptions::subscriptions;
use super::values::{Fields, field, number, unavailable};
use crate::store::{Attempt, AttemptOutcome, Backlog, DeadLetter, NewAttempt, StoreError, WebhookQueue, attempt_entry};

#[async_trait]
impl WebhookQueue for RedisStore {
    async fn enqueue(&self, subscription: &str, entries: Vec<NewAttempt>, through: i64) -> Result<(), StoreError> {
        enqueue(self, subscription, entries, through).await
    }

    async fn lease(
        &self,
        subscription: &str,
        max: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Attempt>, StoreError> {
        // A disabled subscription (its endpoint answered 410) is not sent to: its attempts wait
        // until its owner enables it again, as on the embedded store.
        let disabled: Option<String> =
            self.conn().hget(self.keys.key(&format!("sub:{subscription}")), "disabled").await.map_err(unavailable)?;
        if max == 0 || disabled.is_some_and(|d| !d.is_empty()) {
            return Ok(Vec::new());
        }
        self.queue(subscription).lease(self, max, now_ms, lease_ms).await
    }

    async fn complete(&self, attempt: &Attempt, outcome: AttemptOutcome) -> Result<(), StoreError> {
        complete(self, attempt, outcome).await
    }

    async fn dead_letters(&self, subscription: Option<String>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        dead_letters(self, subscription.as_deref(), limit).await
    }

    async fn replay(&self, attempt: i64, by: &str) -> Result<bool, StoreError> {
        replay(self, attempt, by).await
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        let mut conn = self.conn();
        let subs: Vec<String> = subscriptions(self).await?.into_iter().map(|s| s.id).collect();
        if subs.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        for s in &subs {
            let q = self.queue(s);
            p.zcard(q.key("pend")).zcard(q.key("dead")).zrange(q.key("pend"), 0, 0).hgetall(q.key("stat"));
        }
        let counts: Vec<(i64, i64, Vec<String>, Fields)> = p.query_async(&mut conn).await.map_err(unavailable)?;
        let mut out = Vec::new();
        for (s, (pending, dead, first, stat)) in subs.into_iter().zip(counts) {
            let oldest_pending = match first.first() {
                Some(a) => conn.hget(self.queue(&s).key(&format!("a:{a}")), "created_at").await.map_err(unavailable)?,
                None => None,
            };
            out.push(Backlog {
                subscription: s,
                pending,
                dead,
                oldest_pending,
                last_success_at: field(&stat, "last_success_at"),
                last_error: field(&stat, "last_error"),
                last_error_at: field(&stat, "last_error_at"),
            });
        }
        Ok(out)
    }
}

async fn enqueue(
    store: &RedisStore,
    subscription: &str,
    entries: Vec<NewAttempt>,
    through: i64,
) -> Result<(), StoreError> {
    let owner: Option<String> =
        store.conn().hget(store.keys.key(&format!("sub:{subscription}")), "owner").await.map_err(unavailable)?;
    let Some(owner) = owner else { return Ok(()) };
    store.queue(subscription).enqueue(store, &owner, &entries).await?;
    // The cursor moves after the attempts exist: after a crash between the two, the entries
    // are enqueued again and each still has one attempt.
    let _: i64 = run(store, &scripts::ACKNOWLEDGE, &[bulk(subscription), bulk(through.to_string())]).await?;
    Ok(())
}

async fn complete(store: &RedisStore, a: &Attempt, outcome: AttemptOutcome) -> Result<(), StoreError> {
    // The late outcome of an attempt that is no longer pending (another instance took it over
    // when its lease ended, and finished it) changes nothing, and is not recorded as if it had.
    // The queue's script checks the state again; this read comes first because the audit
    // record is appended outside the script and before it, so a crash between the two cannot
    // leave an outcome without its record.
    let state: Option<String> = store
        .conn()
        .hget(store.queue(&a.subscription).key(&format!("a:{}", a.id)), "state")
        .await
        .map_err(unavailable)?;
    if state.as_deref() != Some("pending") {
        return Ok(());
    }
    if let Some(entry) = a.outcome_entry(&outcome) {
        store.audit_entry(entry).await?;
    }
    let reason = match &outcome {
        AttemptOutcome::Gone { status } => format!("the endpoint answered {status} Gone at {}", store.now()),
        _ => String::new(),
    };
    let pending = store.queue(&a.subscription).complete(store, a.id, &outcome, &reason).await?;
    if pending && matches!(outcome, AttemptOutcome::Gone { .. }) {
        let _: i64 = run(store, &scripts::DISABLE, &[bulk(&a.subscription), bulk(&reason)]).await?;
    }
    Ok(())
}

/// The subscription whose dead letters hold attempt `id`.
async fn holder_of_dead(store: &RedisStore, id: i64) -> Result<Option<String>, StoreError> {
    let subs = subscriptions(store).await?;
    if subs.is_empty() {
        return Ok(None);
    }
    let mut p = redis::pipe();
    for s in &subs {
        p.zscore(store.queue(&s.id).key("dead"), id);
    }
    let scores: Vec<Option<f64>> = p.query_async(&mut store.conn()).await.map_err(unavailable)?;
    Ok(subs.into_iter().zip(scores).find(|(_, score)| score.is_some()).map(|(s, _)| s.id))
}

async fn replay(store: &RedisStore, id: i64, by: &str) -> Result<bool, StoreError> {
    let Some(sub) = holder_of_dead(store, id).await? else { return Ok(false) };
    let queue = store.queue(&sub);
    let a: Fields = store.conn().hgetall(queue.key(&format!("a:{id}"))).await.map_err(unavailable)?;
    if field(&a, "state").as_deref() != Some("dead") {
        return Ok(false);
    }
    let mut entry = attempt_entry("replayed", by, id, &sub, &field(&a, "mid").unwrap_or_default());
    entry.message_type = field(&a, "type");
    entry.recipient = field(&a, "owner");
    store.audit_entry(entry).await?;
    queue.replay(store, id).await
}

async fn dead_letters(
    store: &RedisStore,
    subscription: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut conn = store.conn();
    let subs: Vec<String> = subscriptions(store)
        .await?
        .into_iter()
        .map(|s| s.id)
        .filter(|id| subscription.is_none_or(|s| s == id))
        .collect();
    // The oldest `limit` of every queue, then the oldest `limit` of those.
    let mut p = redis::pipe();
    for s in &subs {
        p.zrange(store.queue(s).key("dead"), 0, limit as isize - 1);
    }
    let ids: Vec<Vec<i64>> =
        if subs.is_empty() { Vec::new() } else { p.query_async(&mut conn).await.map_err(unavailable)? };
    let mut all: Vec<(i64, &String)> =
        subs.iter().zip(ids).flat_map(|(s, ids)| ids.into_iter().map(move |id| (id, s))).collect();
    all.sort();
    all.truncate(limit);
    let mut p = redis::pipe();
    for (id, s) in &all {
        p.hgetall(store.queue(s).key(&format!("a:{id}")));
    }
    let rows: Vec<Fields> =
        if all.is_empty() { Vec::new() } else { p.query_async(&mut conn).await.map_err(unavailable)? };
    Ok(all
        .into_iter()
        .zip(rows)
        .filter(|(_, f)| field(f, "state").as_deref() == Some("dead"))
        .map(|((id, sub), f)| DeadLetter {
            id,
            subscription: sub.clone(),
            message_id: field(&f, "mid").unwrap_or_default(),
            webhook_id: field(&f, "wid").unwrap_or_default(),
            attempts: number(&f, "attempts") as u32,
            last_status: field(&f, "last_status").and_then(|s| s.parse().ok()),
            last_error: field(&f, "last_error"),
            last_response: field(&f, "last_response"),
            updated_at: field(&f, "updated_at").unwrap_or_default(),
        })
        .collect())
}

//! Subscriptions and webhook attempts on Redis. A subscription's record (owner, spec, cursor,
//! disabled) is with the gateway's other keys; its attempts are in its own delivery queue
//! (`queue`), in a slot of its own.
//!
//! An outcome, a replay or a gone endpoint is first appended to the audit chain and then applied
//! to the queue: after a crash between the two, the attempt is sent again and its outcome is
//! recorded twice, never missing from the audit chain.

use redis::AsyncCommands;

use super::{Fields, RedisStore, field, number, scripts, unavailable};
use crate::store::{Attempt, AttemptOutcome, DeadLetter, NewAttempt, StoreError, SubscriptionRow};

/// The start of an endpoint's answer kept with a dead letter.
pub const RESPONSE_KEPT: usize = 2048;

fn bulk(s: impl AsRef<str>) -> Vec<u8> {
    s.as_ref().as_bytes().to_vec()
}

/// Runs a script that keeps no audit record.
async fn run<T: redis::FromRedisValue>(
    store: &RedisStore,
    script: &redis::Script,
    args: &[Vec<u8>],
) -> Result<T, StoreError> {
    let mut invocation = script.key(store.keys.key("seq"));
    invocation.arg(&store.keys.base).arg("").arg("").arg("").arg("");
    for a in args {
        invocation.arg(a);
    }
    invocation.invoke_async(&mut store.conn()).await.map_err(unavailable)
}

pub async fn subscriptions(store: &RedisStore) -> Result<Vec<SubscriptionRow>, StoreError> {
    let mut conn = store.conn();
    let mut ids: Vec<String> = conn.smembers(store.keys.key("subs")).await.map_err(unavailable)?;
    ids.sort();
    let mut p = redis::pipe();
    for id in &ids {
        p.hgetall(store.keys.key(&format!("sub:{id}")));
    }
    let rows: Vec<Fields> =
        if ids.is_empty() { Vec::new() } else { p.query_async(&mut conn).await.map_err(unavailable)? };
    Ok(ids
        .into_iter()
        .zip(rows)
        .filter(|(_, f)| !f.is_empty())
        .map(|(id, f)| SubscriptionRow {
            id,
            owner: field(&f, "owner").unwrap_or_default(),
            spec: field(&f, "spec").unwrap_or_default(),
            cursor: number(&f, "cursor"),
            disabled: field(&f, "disabled"),
            source: field(&f, "source").unwrap_or_default(),
            created_at: field(&f, "created_at").unwrap_or_default(),
        })
        .collect())
}

pub async fn create_subscription(store: &RedisStore, s: &SubscriptionRow) -> Result<bool, StoreError> {
    let n: i64 = run(
        store,
        &scripts::CREATE_SUBSCRIPTION,
        &[
            bulk(&s.id),
            bulk(&s.owner),
            bulk(&s.spec),
            bulk(s.cursor.to_string()),
            bulk(s.disabled.as_deref().unwrap_or_default()),
            bulk(&s.source),
            bulk(&s.created_at),
        ],
    )
    .await?;
    // A new subscription starts with an empty queue, whatever an earlier one of its id left.
    if n == 1 {
        store.queue(&s.id).wipe(store).await?;
    }
    Ok(n == 1)
}

pub async fn delete_subscription(store: &RedisStore, id: &str) -> Result<bool, StoreError> {
    let n: i64 = run(store, &scripts::DELETE_SUBSCRIPTION, &[bulk(id)]).await?;
    store.queue(id).wipe(store).await?;
    Ok(n == 1)
}

/// Makes the config subscriptions exactly `rows` (API ones are kept).
pub async fn sync_config(store: &RedisStore, rows: Vec<SubscriptionRow>) -> Result<(), StoreError> {
    let existing = subscriptions(store).await?;
    for e in &existing {
        if e.source == "config" && !rows.iter().any(|r| r.id == e.id) {
            delete_subscription(store, &e.id).await?;
        }
    }
    for r in &rows {
        match existing.iter().find(|e| e.id == r.id) {
            // The owner changed: it is another subscription.
            Some(e) if e.owner != r.owner => {
                delete_subscription(store, &r.id).await?;
                create_subscription(store, r).await?;
            }
            Some(_) => {
                let () = store
                    .conn()
                    .hset_multiple(
                        store.keys.key(&format!("sub:{}", r.id)),
                        &[("spec", &r.spec), ("source", &"config".to_string())],
                    )
                    .await
                    .map_err(unavailable)?;
            }
            None => {
                create_subscription(store, r).await?;
            }
        }
    }
    Ok(())
}

pub async fn update_subscription(
    store: &RedisStore,
    id: &str,
    spec: Option<String>,
    disabled: Option<Option<String>>,
) -> Result<bool, StoreError> {
    let key = store.keys.key(&format!("sub:{id}"));
    let mut conn = store.conn();
    let exists: bool = conn.exists(&key).await.map_err(unavailable)?;
    if !exists {
        return Ok(false);
    }
    let mut p = redis::pipe();
    if let Some(spec) = spec {
        p.hset(&key, "spec", spec).ignore();
    }
    match disabled {
        Some(Some(why)) => {
            p.hset(&key, "disabled", why).ignore();
        }
        Some(None) => {
            p.hdel(&key, "disabled").ignore();
        }
        None => {}
    }
    let () = p.query_async(&mut conn).await.map_err(unavailable)?;
    Ok(true)
}

pub async fn enqueue(
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

pub async fn lease(
    store: &RedisStore,
    subscription: &str,
    max: usize,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Vec<Attempt>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    store.queue(subscription).lease(store, max, now_ms, lease_ms).await
}

pub async fn complete(store: &RedisStore, a: &Attempt, outcome: AttemptOutcome) -> Result<(), StoreError> {
    if let Some(entry) = a.outcome_entry(&outcome) {
        store.audit_entry(entry).await?;
    }
    let reason = match &outcome {
        AttemptOutcome::Gone { status } => format!("the endpoint answered {status} Gone at {}", super::now()),
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

pub async fn replay(store: &RedisStore, id: i64, by: &str) -> Result<bool, StoreError> {
    let Some(sub) = holder_of_dead(store, id).await? else { return Ok(false) };
    let queue = store.queue(&sub);
    let a: Fields = store.conn().hgetall(queue.key(&format!("a:{id}"))).await.map_err(unavailable)?;
    if field(&a, "state").as_deref() != Some("dead") {
        return Ok(false);
    }
    let mut entry = crate::store::attempt_entry("replayed", by, id, &sub, &field(&a, "mid").unwrap_or_default());
    entry.message_type = field(&a, "type");
    entry.recipient = field(&a, "owner");
    store.audit_entry(entry).await?;
    queue.replay(store, id).await
}

pub async fn dead_letters(
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

//! Subscriptions and webhook attempts on Redis.

use redis::AsyncCommands;

use super::{Fields, RedisStore, field, number, scripts, unavailable, value_str};
use crate::audit::Entry;
use crate::store::{Attempt, AttemptOutcome, DeadLetter, StoreError, SubscriptionRow};

/// The start of an endpoint's answer kept with a dead letter.
const RESPONSE_KEPT: usize = 2048;

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
    Ok(n == 1)
}

pub async fn delete_subscription(store: &RedisStore, id: &str) -> Result<bool, StoreError> {
    let n: i64 = run(store, &scripts::DELETE_SUBSCRIPTION, &[bulk(id)]).await?;
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
    entries: Vec<(i64, String)>,
    through: i64,
) -> Result<(), StoreError> {
    let mut args =
        vec![bulk(subscription), bulk(through.to_string()), bulk(super::now()), bulk(entries.len().to_string())];
    for (seq, thread) in entries {
        args.push(bulk(seq.to_string()));
        args.push(bulk(thread));
    }
    let _: i64 = run(store, &scripts::ENQUEUE, &args).await?;
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
    let rows: Vec<Vec<String>> = run(
        store,
        &scripts::LEASE,
        &[bulk(subscription), bulk(now_ms.to_string()), bulk((now_ms + lease_ms).to_string()), bulk(max.to_string())],
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.len() == 6)
        .map(|r| Attempt {
            id: r[0].parse().unwrap_or_default(),
            subscription: subscription.to_string(),
            message_seq: r[1].parse().unwrap_or_default(),
            message_id: r[2].clone(),
            webhook_id: r[3].clone(),
            attempts: r[4].parse().unwrap_or_default(),
            event: r[5].clone(),
        })
        .collect())
}

/// The audit record of what happened to attempt `id`, or None when it is gone.
async fn attempt_entry(
    store: &RedisStore,
    id: i64,
    action: &str,
    code: Option<String>,
    by: Option<&str>,
) -> Result<Option<Entry>, StoreError> {
    let mut conn = store.conn();
    let (sub, mid): (Option<String>, Option<String>) = redis::cmd("HMGET")
        .arg(store.keys.key(&format!("att:{id}")))
        .arg("sub")
        .arg("mid")
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let (Some(sub), Some(mid)) = (sub, mid) else { return Ok(None) };
    let message_type: Option<String> =
        conn.hget(store.keys.key(&format!("m:{mid}")), "type").await.map_err(unavailable)?;
    let owner: Option<String> = conn.hget(store.keys.key(&format!("sub:{sub}")), "owner").await.map_err(unavailable)?;
    let mut entry = Entry::new(action).actor(by.unwrap_or("gateway")).message(mid);
    entry.message_type = message_type;
    entry.recipient = owner;
    entry.code = code;
    entry.detail = Some(format!("subscription {sub}, attempt {id}"));
    Ok(Some(entry))
}

pub async fn complete(store: &RedisStore, id: i64, outcome: AttemptOutcome) -> Result<(), StoreError> {
    let now = super::now();
    let kept = |s: &Option<String>| s.as_ref().map(|s| s.chars().take(RESPONSE_KEPT).collect::<String>());
    let status_of = |s: Option<u16>| s.map(|s| s.to_string()).unwrap_or_default();
    // outcome, status, retry at, error, response, gone reason
    let (kind, status, at, error, response, reason) = match &outcome {
        AttemptOutcome::Delivered { status } => ("delivered", Some(*status), 0, String::new(), None, String::new()),
        AttemptOutcome::Retry { at_ms, status, error } => {
            ("retry", *status, *at_ms, error.clone(), None, String::new())
        }
        AttemptOutcome::Dead { status, error, response } => {
            ("dead", *status, 0, error.clone(), kept(response), String::new())
        }
        AttemptOutcome::Gone { status } => {
            ("gone", Some(*status), 0, String::new(), None, format!("the endpoint answered {status} Gone at {now}"))
        }
    };
    // The final outcome of each attempt is audited; retries are in the attempt's own record.
    let entry = match kind {
        "retry" => None,
        action => attempt_entry(store, id, action, status.map(|s| s.to_string()), None).await?,
    };
    let args = [
        bulk(id.to_string()),
        bulk(kind),
        bulk(status_of(status)),
        bulk(at.to_string()),
        bulk(error),
        bulk(response.unwrap_or_default()),
        bulk(&now),
        bulk(reason),
    ];
    store.with_audit(&scripts::COMPLETE, entry, args.to_vec(), |_| Some(())).await
}

pub async fn replay(store: &RedisStore, id: i64, by: &str) -> Result<bool, StoreError> {
    let Some(entry) = attempt_entry(store, id, "replayed", None, Some(by)).await? else { return Ok(false) };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let args = [bulk(id.to_string()), bulk(now_ms.to_string()), bulk(super::now())];
    store
        .with_audit(&scripts::REPLAY, Some(entry), args.to_vec(), |v| Some(value_str(&v).as_deref() == Some("yes")))
        .await
}

pub async fn dead_letters(
    store: &RedisStore,
    subscription: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut conn = store.conn();
    let mut out = Vec::new();
    let mut offset = 0isize;
    const PAGE: isize = 500;
    while out.len() < limit {
        let ids: Vec<String> =
            conn.zrange(store.keys.key("dead"), offset, offset + PAGE - 1).await.map_err(unavailable)?;
        if ids.is_empty() {
            break;
        }
        offset += ids.len() as isize;
        let mut p = redis::pipe();
        for id in &ids {
            p.hgetall(store.keys.key(&format!("att:{id}")));
        }
        let rows: Vec<Fields> = p.query_async(&mut conn).await.map_err(unavailable)?;
        for (id, f) in ids.iter().zip(rows) {
            let Some(sub) = field(&f, "sub") else { continue };
            if subscription.is_some_and(|s| s != sub) || field(&f, "state").as_deref() != Some("dead") {
                continue;
            }
            out.push(DeadLetter {
                id: id.parse().unwrap_or_default(),
                subscription: sub,
                message_id: field(&f, "mid").unwrap_or_default(),
                webhook_id: field(&f, "wid").unwrap_or_default(),
                attempts: number(&f, "attempts") as u32,
                last_status: field(&f, "last_status").and_then(|s| s.parse().ok()),
                last_error: field(&f, "last_error"),
                last_response: field(&f, "last_response"),
                updated_at: field(&f, "updated_at").unwrap_or_default(),
            });
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

//! Messages on Redis: accept (with the outbox and the audit record), feeds, retention, trace.

use redis::{AsyncCommands, Value};
use serde::{Deserialize, Serialize};

use super::{Fields, RedisStore, field, number, scripts, unavailable, value_str};
use crate::audit::Entry;
use crate::store::{
    Accepted, Addressee, FeedEntry, FeedPage, NewMessage, Receipt, Refusal, StoreError, Trace, TraceAttempt,
    TraceRecipient,
};

/// A recipient as the message keeps it (for receipts, the trace and the thread worker).
#[derive(Serialize, Deserialize)]
pub struct Recipient {
    pub id: String,
    pub role: String,
    pub rules: Vec<String>,
}

pub fn recipients(json: &str) -> Vec<Recipient> {
    serde_json::from_str(json).unwrap_or_default()
}

fn receipt(id: String, message_type: String, stripped: &str, recipients_json: &str) -> Receipt {
    let mut recipients: Vec<Addressee> =
        recipients(recipients_json).into_iter().map(|r| Addressee { id: r.id, role: r.role }).collect();
    recipients.sort_by(|a, b| a.id.cmp(&b.id));
    Receipt { id, message_type, stripped: serde_json::from_str(stripped).unwrap_or_default(), recipients }
}

fn entry(action: &str, m: &NewMessage, id: &str) -> Entry {
    let mut entry = Entry::new(action).actor(m.sender.as_str()).message(id);
    entry.message_type = Some(m.message_type.to_string());
    entry.body_sha256 = Some(m.body_sha256.clone());
    if action == "accepted" {
        let to: Vec<&str> = m.deliveries.iter().map(|d| d.recipient.as_str()).collect();
        entry.recipient = Some(to.join(" "));
    }
    entry
}

pub async fn accept(store: &RedisStore, m: NewMessage) -> Result<Accepted, StoreError> {
    let kept: Vec<Recipient> = m
        .deliveries
        .iter()
        .map(|d| Recipient { id: d.recipient.clone(), role: d.role.to_string(), rules: d.rules.clone() })
        .collect();
    let mut args: Vec<Vec<u8>> = [
        m.id.as_str(),
        m.sender.as_str(),
        m.native_id.as_str(),
        m.message_type,
        m.subject.as_deref().unwrap_or_default(),
        m.content_sha256.as_str(),
        &crate::clock::format_ms(m.received_ms),
        &m.received_ms.to_string(),
        &serde_json::to_string(&m.stripped).unwrap_or_else(|_| "[]".into()),
        m.event.as_str(),
        m.in_reply_to.as_deref().unwrap_or_default(),
        &serde_json::to_string(&kept).unwrap_or_else(|_| "[]".into()),
        &m.deliveries.len().to_string(),
    ]
    .iter()
    .map(|a| a.as_bytes().to_vec())
    .collect();
    for d in &m.deliveries {
        args.push(d.recipient.as_bytes().to_vec());
        // Empty: the message's event as it is (the script puts it in).
        args.push(d.event.as_deref().unwrap_or_default().as_bytes().to_vec());
    }
    let answer = store
        .with_audit(&scripts::ACCEPT, Some(entry("accepted", &m, &m.id)), args, |v| match v {
            Value::Array(items) => Some(items.iter().map(|i| value_str(i).unwrap_or_default()).collect::<Vec<_>>()),
            _ => None,
        })
        .await?;
    match answer.first().map(String::as_str) {
        Some("created") => Ok(Accepted::Created(receipt(
            m.id.clone(),
            m.message_type.to_string(),
            &serde_json::to_string(&m.stripped).unwrap_or_default(),
            &serde_json::to_string(&kept).unwrap_or_default(),
        ))),
        Some("earlier") if answer.len() == 6 => {
            let earlier = receipt(answer[1].clone(), answer[2].clone(), &answer[3], &answer[5]);
            let same = answer[4] == m.content_sha256;
            let action = if same { "duplicate" } else { "conflict" };
            store.audit_entry(entry(action, &m, &earlier.id)).await?;
            Ok(if same { Accepted::Duplicate(earlier) } else { Accepted::Conflict(earlier) })
        }
        _ => Err(StoreError::Unavailable(format!("redis: an unexpected answer to accept: {answer:?}"))),
    }
}

pub fn refusal_entry(r: &Refusal) -> Entry {
    let mut entry = Entry::new("refused").code(r.code);
    entry.actor = r.sender.map(|s| s.to_string());
    entry.body_sha256 = Some(r.body_sha256.clone());
    entry.detail = Some(r.pointers.clone()).filter(|p| !p.is_empty());
    entry
}

/// A stream entry's fields as a map.
pub fn stream_fields(map: &std::collections::HashMap<String, Value>) -> Fields {
    map.iter().map(|(k, v)| (k.clone(), value_str(v).unwrap_or_default())).collect()
}

/// The feed position of a stream id (`seq-1`).
pub fn position(id: &str) -> i64 {
    id.split('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

pub async fn feed(store: &RedisStore, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError> {
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
pub async fn purge(store: &RedisStore, before: &str) -> Result<usize, StoreError> {
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
    let subscriptions = super::webhooks::subscriptions(store).await?;
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

pub async fn trace(store: &RedisStore, id: &str) -> Result<Option<Trace>, StoreError> {
    let k = |n: &str| store.keys.key(n);
    let mut conn = store.conn();
    let m: Fields = conn.hgetall(k(&format!("m:{id}"))).await.map_err(unavailable)?;
    if m.is_empty() {
        return Ok(None);
    }
    let seq = number(&m, "seq");
    let mut recipients: Vec<TraceRecipient> = recipients(m.get("recipients").map_or("[]", String::as_str))
        .into_iter()
        .map(|r| TraceRecipient { id: r.id, role: r.role, rules: r.rules, webhooks: Vec::new() })
        .collect();
    recipients.sort_by(|a, b| a.id.cmp(&b.id));
    // The attempts of the recipients' webhook subscriptions.
    let mut found: Vec<(String, TraceAttempt)> = Vec::new();
    for sub in super::webhooks::subscriptions(store).await? {
        if !recipients.iter().any(|r| r.id == sub.owner) {
            continue;
        }
        let q = store.queue(&sub.id);
        let Some(a): Option<String> = conn.hget(q.key("att"), seq).await.map_err(unavailable)? else { continue };
        let f: Fields = conn.hgetall(q.key(&format!("a:{a}"))).await.map_err(unavailable)?;
        if f.is_empty() {
            continue;
        }
        let (owner, sub) = (sub.owner, sub.id);
        let state = field(&f, "state").unwrap_or_default();
        let pending = state == "pending";
        found.push((
            owner,
            TraceAttempt {
                subscription: sub,
                webhook_id: field(&f, "wid").unwrap_or_default(),
                attempts: number(&f, "attempts") as u32,
                last_status: field(&f, "last_status").and_then(|s| s.parse().ok()),
                last_error: field(&f, "last_error"),
                next_at: pending.then(|| number(&f, "next_at")),
                created_at: field(&f, "created_at").unwrap_or_default(),
                updated_at: field(&f, "updated_at").unwrap_or_default(),
                state,
            },
        ));
    }
    found.sort_by(|a, b| a.1.subscription.cmp(&b.1.subscription));
    for (owner, attempt) in found {
        if let Some(r) = recipients.iter_mut().find(|r| r.id == owner) {
            r.webhooks.push(attempt);
        }
    }
    Ok(Some(Trace {
        id: id.to_string(),
        sender: field(&m, "sender").unwrap_or_default(),
        message_type: field(&m, "type").unwrap_or_default(),
        subject: field(&m, "subject"),
        received_at: field(&m, "received_at").unwrap_or_default(),
        cursor: seq,
        recipients,
    }))
}

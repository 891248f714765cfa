//! Messages on Redis: accept (with the outbox and the audit record), feeds, retention, trace.

use async_trait::async_trait;
use redis::{AsyncCommands, Value};
use serde::{Deserialize, Serialize};

use super::counts;
use super::scripts;
use super::store::RedisStore;
use super::subscriptions::subscriptions;
use super::values::{Fields, field, number, unavailable, value_str};
use crate::store::{
    Accepted, Addressee, Linked, MessageQuery, MessageSummary, Messages, NewMessage, Receipt, Refusal, StoreError,
    Trace, TraceAttempt, TraceRecipient, removed_of,
};

#[async_trait]
impl Messages for RedisStore {
    async fn accept(&self, message: NewMessage) -> Result<Accepted, StoreError> {
        let accepted = accept(self, message).await?;
        // A resend finds the message written, but perhaps by an attempt whose wait failed: it
        // is acknowledged only once the disk (and replicas) have it too.
        if matches!(accepted, Accepted::Created(_) | Accepted::Duplicate(_)) {
            self.durable().await?;
        }
        if matches!(accepted, Accepted::Created(_)) {
            self.notify.send_modify(|n| *n += 1);
        }
        Ok(accepted)
    }

    async fn record_refusal(&self, refusal: Refusal) -> Result<(), StoreError> {
        self.audit_entry(refusal.audit_entry()).await?;
        let sender = refusal.sender.as_ref().map(ToString::to_string).unwrap_or_default();
        counts::bump(self, self.clock.now_ms(), "refused", "", &sender, refusal.code).await
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

    async fn linked(&self, link: &str, reader: &str) -> Result<Option<Linked>, StoreError> {
        referenced(self, link, i64::MAX, reader).await
    }

    async fn trace(&self, message_id: &str) -> Result<Option<Trace>, StoreError> {
        trace(self, message_id).await
    }

    async fn search(&self, query: MessageQuery) -> Result<Vec<MessageSummary>, StoreError> {
        search(self, &query).await
    }
}

/// How many index entries a search reads for each result it may keep.
const SEARCH_SCAN: usize = 20;

/// The matching messages, newest first: candidates from the most selective index given (the id,
/// `subj:CASE`, `snd:SENDER`, `typ:TYPE`, or `received` by time), each checked against the rest.
async fn search(store: &RedisStore, q: &MessageQuery) -> Result<Vec<MessageSummary>, StoreError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 5000);
    let mut conn = store.conn();
    let k = |n: &str| store.keys.key(n);
    let scan = (limit * SEARCH_SCAN) as isize;
    let candidates: Vec<String> = if let Some(id) = &q.id {
        let mut ids: Vec<String> = conn.zrevrange(k(&format!("nid:{id}")), 0, scan).await.map_err(unavailable)?;
        let exists: bool = conn.exists(k(&format!("m:{id}"))).await.map_err(unavailable)?;
        if exists {
            ids.insert(0, id.clone());
        }
        ids
    } else if let Some(index) = q
        .case
        .as_ref()
        .map(|c| format!("subj:{c}"))
        .or_else(|| q.sender.as_ref().map(|s| format!("snd:{s}")))
        .or_else(|| q.message_type.as_ref().map(|t| format!("typ:{t}")))
    {
        conn.zrevrange(k(&index), 0, scan).await.map_err(unavailable)?
    } else {
        let (min, max) = (q.from_ms.unwrap_or(i64::MIN), q.to_ms.map_or(i64::MAX, |t| t - 1));
        let mut seqs: Vec<String> =
            conn.zrevrangebyscore_limit(k("received"), max, min, 0, scan).await.map_err(unavailable)?;
        if let Some(before) = q.before {
            seqs.retain(|s| s.parse::<i64>().is_ok_and(|s| s < before));
        }
        if seqs.is_empty() {
            Vec::new()
        } else {
            let ids: Vec<Option<String>> =
                redis::cmd("HMGET").arg(k("mseq")).arg(&seqs).query_async(&mut conn).await.map_err(unavailable)?;
            ids.into_iter().flatten().collect()
        }
    };
    let mut out = Vec::new();
    for id in candidates {
        let m: Fields = conn.hgetall(k(&format!("m:{id}"))).await.map_err(unavailable)?;
        if m.is_empty() {
            continue;
        }
        let received_ms = number(&m, "received_ms");
        let keep = q.case.as_ref().is_none_or(|c| field(&m, "subject").as_ref() == Some(c))
            && q.sender.as_ref().is_none_or(|s| field(&m, "sender").as_ref() == Some(s))
            && q.message_type.as_ref().is_none_or(|t| field(&m, "type").as_ref() == Some(t))
            && q.from_ms.is_none_or(|f| received_ms >= f)
            && q.to_ms.is_none_or(|t| received_ms < t)
            && q.before.is_none_or(|b| number(&m, "seq") < b);
        if keep {
            out.push(MessageSummary {
                id: id.clone(),
                sender: field(&m, "sender").unwrap_or_default(),
                native_id: field(&m, "native").unwrap_or_default(),
                message_type: field(&m, "type").unwrap_or_default(),
                subject: field(&m, "subject").filter(|s| !s.is_empty()),
                received_at: field(&m, "received_at").unwrap_or_default(),
                cursor: number(&m, "seq"),
            });
            if out.len() == limit {
                break;
            }
        }
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.cursor));
    Ok(out)
}

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

async fn accept(store: &RedisStore, m: NewMessage) -> Result<Accepted, StoreError> {
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
        &serde_json::to_string(&m.rule_errors).unwrap_or_else(|_| "[]".into()),
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
        .with_audit(&scripts::ACCEPT, Some(m.audit_entry("accepted", &m.id)), args, |v| match v {
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
            store.audit_entry(m.audit_entry(action, &earlier.id)).await?;
            let (outcome, code) = if same { ("resent", "") } else { ("refused", "message_id_conflict") };
            counts::bump(store, m.received_ms, outcome, m.message_type, &m.sender, code).await?;
            Ok(if same { Accepted::Duplicate(earlier) } else { Accepted::Conflict(earlier) })
        }
        _ => Err(StoreError::Unavailable(format!("redis: an unexpected answer to accept: {answer:?}"))),
    }
}

async fn trace(store: &RedisStore, id: &str) -> Result<Option<Trace>, StoreError> {
    let k = |n: &str| store.keys.key(n);
    let mut conn = store.conn();
    let m: Fields = conn.hgetall(k(&format!("m:{id}"))).await.map_err(unavailable)?;
    if m.is_empty() {
        return Ok(None);
    }
    let seq = number(&m, "seq");
    let mut recipients: Vec<TraceRecipient> = recipients(m.get("recipients").map_or("[]", String::as_str))
        .into_iter()
        .map(|r| TraceRecipient { id: r.id, role: r.role, rules: r.rules, removed: Vec::new(), webhooks: Vec::new() })
        .collect();
    recipients.sort_by(|a, b| a.id.cmp(&b.id));
    // What each copy lacks: from the copy in the recipient's feed (its entry is `SEQ-1`).
    if !recipients.is_empty() {
        let entry = format!("{seq}-1");
        let mut p = redis::pipe();
        for r in &recipients {
            p.cmd("XRANGE").arg(k(&format!("feed:{}", r.id))).arg(&entry).arg(&entry);
        }
        let copies: Vec<redis::streams::StreamRangeReply> = p.query_async(&mut conn).await.map_err(unavailable)?;
        for (r, copy) in recipients.iter_mut().zip(copies) {
            let event = copy.ids.first().and_then(|e| e.get::<String>("event"));
            r.removed = event.as_deref().map(removed_of).unwrap_or_default();
        }
    }
    // The attempts of the recipients' webhook subscriptions.
    let mut found: Vec<(String, TraceAttempt)> = Vec::new();
    for sub in subscriptions(store).await? {
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
        rule_errors: m.get("rule_errors").and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default(),
    }))
}

/// The message a reference names, as `(id, sender)`: by the gateway's id or the sender's own
/// id, earlier than `seq`, preferring one that `reader` sent or received.
/// A message's sequence, sender, type, link and recipients, as `HMGET` answers.
type LinkFields = (Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>);

pub async fn referenced(store: &RedisStore, link: &str, seq: i64, reader: &str) -> Result<Option<Linked>, StoreError> {
    let mut conn = store.conn();
    let mut candidates: Vec<String> = conn
        .zrangebyscore(store.keys.key(&format!("nid:{link}")), "-inf", format!("({seq}"))
        .await
        .map_err(unavailable)?;
    candidates.push(link.to_string());
    let mut best: Option<(bool, i64, Linked)> = None;
    for id in candidates {
        let fields: LinkFields = redis::cmd("HMGET")
            .arg(store.keys.key(&format!("m:{id}")))
            .arg(&["seq", "sender", "type", "reply_to", "recipients"][..])
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let (Some(at), Some(sender), message_type, in_reply_to, kept) = fields else { continue };
        if at >= seq {
            continue;
        }
        let near = sender == reader || recipients(kept.as_deref().unwrap_or("[]")).iter().any(|r| r.id == reader);
        if best.as_ref().is_none_or(|(n, s, _)| (near, at) > (*n, *s)) {
            let linked = Linked {
                id,
                sender,
                message_type: message_type.unwrap_or_default(),
                in_reply_to: in_reply_to.filter(|r| !r.is_empty()),
            };
            best = Some((near, at, linked));
        }
    }
    Ok(best.map(|(_, _, linked)| linked))
}

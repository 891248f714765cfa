//! Messages: accept (with the outbox), refusals, and the trace of where a message went.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::SqliteStore;
use super::audit;
use super::counts;
use super::writer::Commit;
use crate::audit::Algorithm;
use crate::store::{
    Accepted, Addressee, Linked, MessageQuery, MessageSummary, Messages, NewMessage, Receipt, Refusal, StoreError,
    Trace, TraceAttempt, TraceRecipient, removed_of,
};

#[async_trait]
impl Messages for SqliteStore {
    async fn accept(&self, message: NewMessage) -> Result<Accepted, StoreError> {
        let (alg, now) = (self.audit, self.now());
        self.write(Commit::Messages, move |tx| accept(tx, alg, &message, &now)).await
    }

    async fn record_refusal(&self, refusal: Refusal) -> Result<(), StoreError> {
        let (alg, now, now_ms) = (self.audit, self.now(), self.clock.now_ms());
        self.write(Commit::Synced, move |tx| {
            let sender = refusal.sender.as_ref().map(ToString::to_string).unwrap_or_default();
            counts::bump(tx, now_ms, "refused", "", &sender, refusal.code)?;
            audit::append(tx, alg, refusal.audit_entry(), &now)
        })
        .await
    }

    async fn message(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let id = id.to_string();
        self.read(move |c| message(c, &id)).await
    }

    async fn linked(&self, link: &str, reader: &str) -> Result<Option<Linked>, StoreError> {
        let (link, reader) = (link.to_string(), reader.to_string());
        self.read(move |c| referenced(c, &link, i64::MAX, &reader)).await
    }

    async fn trace(&self, message_id: &str) -> Result<Option<Trace>, StoreError> {
        let id = message_id.to_string();
        self.read(move |c| trace(c, &id)).await
    }

    async fn search(&self, query: MessageQuery) -> Result<Vec<MessageSummary>, StoreError> {
        self.read(move |c| search(c, &query)).await
    }
}

/// The matching messages, newest first. Only the criteria given are in the statement, so SQLite
/// picks the index of the most selective one (`messages_by_*`, or the id's).
fn search(c: &Connection, q: &MessageQuery) -> rusqlite::Result<Vec<MessageSummary>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 5000) as i64;
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let text = |v: &str| rusqlite::types::Value::Text(v.to_string());
    if let Some(id) = &q.id {
        clauses.push("(id = ? OR native_id = ?)");
        values.extend([text(id), text(id)]);
    }
    for (clause, value) in [("subject = ?", &q.case), ("sender = ?", &q.sender), ("type = ?", &q.message_type)] {
        if let Some(v) = value {
            clauses.push(clause);
            values.push(text(v));
        }
    }
    for (clause, value) in [("received_ms >= ?", q.from_ms), ("received_ms < ?", q.to_ms), ("seq < ?", q.before)] {
        if let Some(v) = value {
            clauses.push(clause);
            values.push(rusqlite::types::Value::Integer(v));
        }
    }
    let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    values.push(rusqlite::types::Value::Integer(limit));
    c.prepare_cached(&format!(
        "SELECT id, sender, native_id, type, subject, received_at, seq FROM messages {filter} ORDER BY seq DESC LIMIT ?"
    ))?
    .query_map(rusqlite::params_from_iter(values), |r| {
        Ok(MessageSummary {
            id: r.get(0)?,
            sender: r.get(1)?,
            native_id: r.get(2)?,
            message_type: r.get(3)?,
            subject: r.get(4)?,
            received_at: r.get(5)?,
            cursor: r.get(6)?,
        })
    })?
    .collect()
}

fn accept(tx: &Savepoint<'_>, alg: Algorithm, m: &NewMessage, now: &str) -> rusqlite::Result<Accepted> {
    let sender = m.sender.clone();
    let earlier = tx
        .prepare_cached(
            "SELECT seq, id, type, stripped, content_sha256 FROM messages WHERE sender = ?1 AND native_id = ?2",
        )?
        .query_row(params![sender, m.native_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let audit = |action: &str, id: &str| audit::append(tx, alg, m.audit_entry(action, id), now);
    if let Some((seq, id, message_type, stripped, content)) = earlier {
        let recipients = tx
            .prepare_cached("SELECT recipient, role FROM deliveries WHERE message_seq = ?1 ORDER BY recipient")?
            .query_map([seq], |r| Ok(Addressee { id: r.get(0)?, role: r.get(1)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let receipt =
            Receipt { id, message_type, stripped: serde_json::from_str(&stripped).unwrap_or_default(), recipients };
        return if content == m.content_sha256 {
            counts::bump(tx, m.received_ms, "resent", m.message_type, &sender, "")?;
            audit("duplicate", &receipt.id)?;
            Ok(Accepted::Duplicate(receipt))
        } else {
            counts::bump(tx, m.received_ms, "refused", m.message_type, &sender, "message_id_conflict")?;
            audit("conflict", &receipt.id)?;
            Ok(Accepted::Conflict(receipt))
        };
    }
    let stripped = serde_json::to_string(&m.stripped).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT INTO messages (id, sender, native_id, type, subject, content_sha256, received_at, stripped, event, received_ms, in_reply_to, rule_errors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        m.id,
        sender,
        m.native_id,
        m.message_type,
        m.subject,
        m.content_sha256,
        crate::clock::format_ms(m.received_ms),
        stripped,
        m.event,
        m.received_ms,
        m.in_reply_to,
        (!m.rule_errors.is_empty()).then(|| serde_json::to_string(&m.rule_errors).unwrap_or_default())
    ])?;
    let seq = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (message_seq, recipient, role, rules, event) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for d in &m.deliveries {
        let rules = serde_json::to_string(&d.rules).unwrap_or_else(|_| "[]".into());
        insert.execute(params![seq, d.recipient, d.role, rules, d.event])?;
    }
    counts::bump(tx, m.received_ms, "accepted", m.message_type, &m.sender, "")?;
    audit("accepted", &m.id)?;
    let mut recipients: Vec<Addressee> =
        m.deliveries.iter().map(|d| Addressee { id: d.recipient.clone(), role: d.role.to_string() }).collect();
    recipients.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Accepted::Created(Receipt {
        id: m.id.clone(),
        message_type: m.message_type.to_string(),
        stripped: m.stripped.clone(),
        recipients,
    }))
}

fn trace(c: &Connection, id: &str) -> rusqlite::Result<Option<Trace>> {
    let Some((seq, sender, message_type, subject, received_at, rule_errors)) = c
        .prepare_cached("SELECT seq, sender, type, subject, received_at, rule_errors FROM messages WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, Option<String>>(5)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let mut recipients: Vec<TraceRecipient> = c
        .prepare_cached(
            "SELECT d.recipient, d.role, d.rules, coalesce(d.event, m.event) FROM deliveries d JOIN messages m ON m.seq = d.message_seq
             WHERE d.message_seq = ?1 ORDER BY d.recipient",
        )?
        .query_map([seq], |r| {
            Ok(TraceRecipient {
                id: r.get(0)?,
                role: r.get(1)?,
                rules: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                removed: removed_of(&r.get::<_, String>(3)?),
                webhooks: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut attempts = c.prepare_cached(
        "SELECT s.owner, a.subscription, a.webhook_id, a.state, a.attempts, a.last_status, a.last_error, a.next_at,
                a.created_at, a.updated_at
         FROM webhook_attempts a JOIN subscriptions s ON s.id = a.subscription
         WHERE a.message_seq = ?1 ORDER BY a.subscription",
    )?;
    let rows = attempts.query_map([seq], |r| {
        let state: String = r.get(3)?;
        let pending = state == "pending";
        Ok((
            r.get::<_, String>(0)?,
            TraceAttempt {
                subscription: r.get(1)?,
                webhook_id: r.get(2)?,
                state,
                attempts: r.get(4)?,
                last_status: r.get(5)?,
                last_error: r.get(6)?,
                next_at: if pending { r.get(7)? } else { None },
                created_at: r.get(8)?,
                updated_at: r.get(9)?,
            },
        ))
    })?;
    for row in rows {
        let (owner, attempt) = row?;
        if let Some(r) = recipients.iter_mut().find(|r| r.id == owner) {
            r.webhooks.push(attempt);
        }
    }
    let rule_errors = rule_errors.and_then(|e| serde_json::from_str(&e).ok()).unwrap_or_default();
    Ok(Some(Trace {
        id: id.to_string(),
        sender,
        message_type,
        subject,
        received_at,
        cursor: seq,
        recipients,
        rule_errors,
    }))
}

fn message(c: &Connection, id: &str) -> rusqlite::Result<Option<(String, String)>> {
    c.prepare_cached("SELECT event, native_id FROM messages WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The message a reference names: by the gateway's id or the sender's own id, earlier than
/// `seq`, preferring one that `reader` sent or received (native ids are unique per sender only).
pub fn referenced(c: &Connection, link: &str, seq: i64, reader: &str) -> rusqlite::Result<Option<Linked>> {
    c.prepare_cached(
        "SELECT m.id, m.sender, m.type, m.in_reply_to FROM messages m WHERE (m.native_id = ?1 OR m.id = ?1) AND m.seq < ?2
         ORDER BY (m.sender = ?3 OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_seq = m.seq AND d.recipient = ?3)) DESC,
                  m.seq DESC LIMIT 1",
    )?
    .query_row(params![link, seq, reader], |r| {
        Ok(Linked { id: r.get(0)?, sender: r.get(1)?, message_type: r.get(2)?, in_reply_to: r.get(3)? })
    })
    .optional()
}

//! Messages: accept (with the outbox), refusals, and the trace of where a message went.

use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::audit;
use crate::audit::{Algorithm, Entry};
use crate::store::{Accepted, Addressee, NewMessage, Receipt, Refusal, Trace, TraceAttempt, TraceRecipient};

pub fn accept(tx: &Savepoint<'_>, alg: Algorithm, m: &NewMessage, now: &str) -> rusqlite::Result<Accepted> {
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
    let audit = |action: &str, id: &str| {
        let mut entry = Entry::new(action).actor(sender.as_str()).message(id);
        entry.message_type = Some(m.message_type.to_string());
        entry.body_sha256 = Some(m.body_sha256.clone());
        if action == "accepted" {
            let to: Vec<&str> = m.deliveries.iter().map(|d| d.recipient.as_str()).collect();
            entry.recipient = Some(to.join(" "));
        }
        audit::append(tx, alg, entry, now)
    };
    if let Some((seq, id, message_type, stripped, content)) = earlier {
        let recipients = tx
            .prepare_cached("SELECT recipient, role FROM deliveries WHERE message_seq = ?1 ORDER BY recipient")?
            .query_map([seq], |r| Ok(Addressee { id: r.get(0)?, role: r.get(1)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let receipt =
            Receipt { id, message_type, stripped: serde_json::from_str(&stripped).unwrap_or_default(), recipients };
        return if content == m.content_sha256 {
            audit("duplicate", &receipt.id)?;
            Ok(Accepted::Duplicate(receipt))
        } else {
            audit("conflict", &receipt.id)?;
            Ok(Accepted::Conflict(receipt))
        };
    }
    let stripped = serde_json::to_string(&m.stripped).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT INTO messages (id, sender, native_id, type, subject, content_sha256, received_at, stripped, event, received_ms, in_reply_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
        m.in_reply_to
    ])?;
    let seq = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (message_seq, recipient, role, rules, event) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for d in &m.deliveries {
        let rules = serde_json::to_string(&d.rules).unwrap_or_else(|_| "[]".into());
        insert.execute(params![seq, d.recipient, d.role, rules, d.event])?;
    }
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

pub fn refuse(tx: &Savepoint<'_>, alg: Algorithm, r: &Refusal, now: &str) -> rusqlite::Result<()> {
    let mut entry = Entry::new("refused").code(r.code);
    entry.actor = r.sender.map(|s| s.to_string());
    entry.body_sha256 = Some(r.body_sha256.clone());
    entry.detail = Some(r.pointers.clone()).filter(|p| !p.is_empty());
    audit::append(tx, alg, entry, now)
}

pub fn trace(c: &Connection, id: &str) -> rusqlite::Result<Option<Trace>> {
    let Some((seq, sender, message_type, subject, received_at)) = c
        .prepare_cached("SELECT seq, sender, type, subject, received_at FROM messages WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?
    else {
        return Ok(None);
    };
    let mut recipients: Vec<TraceRecipient> = c
        .prepare_cached("SELECT recipient, role, rules FROM deliveries WHERE message_seq = ?1 ORDER BY recipient")?
        .query_map([seq], |r| {
            Ok(TraceRecipient {
                id: r.get(0)?,
                role: r.get(1)?,
                rules: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
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
    Ok(Some(Trace { id: id.to_string(), sender, message_type, subject, received_at, cursor: seq, recipients }))
}

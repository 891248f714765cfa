//! Threads and obligations: the conversation on a case, and the replies it is owed.

use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::ExecuteCached;
use crate::store::{
    DueObligation, Escalation, LogEntry, ObligationRow, StepOutcome, StepRole, ThreadMessageRow, ThreadQuery,
    ThreadRow, ThreadStep,
};

const CURSOR: &str = "threads_cursor";

pub fn backlog(c: &Connection, limit: usize) -> rusqlite::Result<Vec<LogEntry>> {
    let cursor: i64 =
        c.query_row("SELECT coalesce((SELECT value FROM meta WHERE key = ?1), 0)", [CURSOR], |r| r.get(0))?;
    let mut entries: Vec<LogEntry> = c
        .prepare_cached(
            "SELECT seq, id, type, sender, native_id, in_reply_to, subject, coalesce(received_ms, 0), event
             FROM messages WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?
        .query_map(params![cursor, limit as i64], |r| {
            Ok(LogEntry {
                seq: r.get(0)?,
                id: r.get(1)?,
                message_type: r.get(2)?,
                sender: r.get(3)?,
                native_id: r.get(4)?,
                in_reply_to: r.get(5)?,
                subject: r.get(6)?,
                received_ms: r.get(7)?,
                event: r.get(8)?,
                primaries: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut primaries = c.prepare_cached(
        "SELECT recipient FROM deliveries WHERE message_seq = ?1 AND role = 'primary' ORDER BY recipient",
    )?;
    for e in &mut entries {
        e.primaries = primaries.query_map([e.seq], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    }
    Ok(entries)
}

pub fn message(c: &Connection, id: &str) -> rusqlite::Result<Option<(String, String)>> {
    c.prepare_cached("SELECT event, native_id FROM messages WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

fn thread_of(tx: &Savepoint<'_>, message_id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT thread_id FROM thread_messages WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()
}

/// The message a reference names, as `(id, sender)`: by the gateway's id or the sender's own
/// id, earlier than `seq`, preferring one that `reader` sent or received (native ids are unique
/// per sender only).
pub fn referenced(c: &Connection, link: &str, seq: i64, reader: &str) -> rusqlite::Result<Option<(String, String)>> {
    c.prepare_cached(
        "SELECT m.id, m.sender FROM messages m WHERE (m.native_id = ?1 OR m.id = ?1) AND m.seq < ?2
         ORDER BY (m.sender = ?3 OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_seq = m.seq AND d.recipient = ?3)) DESC,
                  m.seq DESC LIMIT 1",
    )?
    .query_row(params![link, seq, reader], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// Applies `steps` in order and moves the worker's cursor past the last.
pub fn apply_all(tx: &Savepoint<'_>, steps: &[ThreadStep]) -> rusqlite::Result<Vec<StepOutcome>> {
    let outcomes = steps.iter().map(|step| apply(tx, step)).collect::<rusqlite::Result<_>>()?;
    if let Some(last) = steps.iter().map(|s| s.seq).max() {
        tx.execute_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            params![CURSOR, last],
        )?;
    }
    Ok(outcomes)
}

/// A message that neither asks, answers, reports progress nor refers to anything stands alone:
/// it opens no thread. When a later message refers to it, it becomes the root of one.
fn root_at(tx: &Savepoint<'_>, message_id: &str) -> rusqlite::Result<String> {
    tx.execute_cached(
        "INSERT INTO threads (id, case_number, opened_ms) SELECT id, subject, coalesce(received_ms, 0) FROM messages WHERE id = ?1",
        [message_id],
    )?;
    tx.execute_cached(
        "INSERT INTO thread_messages (thread_id, message_id, seq, kind, type, sender, at_ms)
         SELECT id, id, seq, CASE sender WHEN 'gateway' THEN 'notice' ELSE 'message' END, type, sender, coalesce(received_ms, 0)
         FROM messages WHERE id = ?1",
        [message_id],
    )?;
    Ok(message_id.to_string())
}

fn apply(tx: &Savepoint<'_>, step: &ThreadStep) -> rusqlite::Result<StepOutcome> {
    if let Some(thread) = thread_of(tx, &step.message_id)? {
        return Ok(StepOutcome { thread: Some(thread), ..StepOutcome::default() });
    }
    let target = match &step.link {
        Some(link) => referenced(tx, link, step.seq, &step.sender)?.map(|(id, _)| id),
        None => None,
    };
    let mut thread = match &target {
        Some(t) => Some(match thread_of(tx, t)? {
            Some(thread) => thread,
            None => root_at(tx, t)?,
        }),
        None => None,
    };
    // Progress on a case joins the case's latest thread.
    if thread.is_none()
        && matches!(step.role, StepRole::Progress)
        && let Some(case) = &step.subject
    {
        thread = tx
            .prepare_cached("SELECT id FROM threads WHERE case_number = ?1 ORDER BY opened_ms DESC LIMIT 1")?
            .query_row([case], |r| r.get(0))
            .optional()?;
    }
    let thread = match thread {
        Some(t) => t,
        None if matches!(step.role, StepRole::Other) => return Ok(StepOutcome::default()),
        None => {
            tx.execute_cached(
                "INSERT INTO threads (id, case_number, opened_ms) VALUES (?1, ?2, ?3)",
                params![step.message_id, step.subject, step.at_ms],
            )?;
            step.message_id.clone()
        }
    };
    let mut outcome = StepOutcome { thread: Some(thread.clone()), ..StepOutcome::default() };
    let kind = match &step.role {
        StepRole::Request { awaiting, deadline_ms } => {
            let mut open = tx.prepare_cached(
                "INSERT INTO obligations (thread_id, request_id, request_type, requester, awaiting, opened_ms, deadline_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open') ON CONFLICT (request_id, awaiting) DO NOTHING",
            )?;
            for a in awaiting {
                open.execute(params![
                    thread,
                    step.message_id,
                    step.message_type,
                    step.sender,
                    a,
                    step.at_ms,
                    deadline_ms
                ])?;
            }
            "request"
        }
        StepRole::Reply { answers, cannot_determine, escalates } => {
            // The request it answers: owed by the sender, of a type this reply answers, not yet
            // answered; the one it names first.
            let owed: Option<(i64, String, String, i64)> = tx
                .prepare_cached(
                    "SELECT id, request_id, request_type, deadline_ms FROM obligations
                     WHERE thread_id = ?1 AND awaiting = ?2 AND state != 'answered'
                       AND request_type IN (SELECT value FROM json_each(?3))
                     ORDER BY request_id = ?4 DESC, opened_ms LIMIT 1",
                )?
                .query_row(
                    params![
                        thread,
                        step.sender,
                        serde_json::to_string(answers).unwrap_or_default(),
                        target.clone().unwrap_or_default()
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            match owed {
                Some((id, request_id, request_type, deadline_ms)) => {
                    let result = if *cannot_determine { "cannot_determine" } else { "answered" };
                    tx.execute_cached(
                        "UPDATE obligations SET state = 'answered', answered_by = ?2, answered_ms = ?3, late = ?4, outcome = ?5 WHERE id = ?1",
                        params![id, step.message_id, step.at_ms, step.at_ms > deadline_ms, result],
                    )?;
                    if *cannot_determine && escalates.contains(&request_type) {
                        outcome.escalate =
                            Some(Escalation { obligation: id, request_id, replier: step.sender.clone() });
                    }
                }
                None => {
                    let why = match (&step.link, &target) {
                        (None, _) => "a reply that names no message it answers",
                        (Some(_), None) => "a reply to a message the gateway does not know",
                        (Some(_), Some(_)) => {
                            "a reply to a request that is already answered, or that did not ask the sender"
                        }
                    };
                    outcome.flag = Some(why.to_string());
                }
            }
            "reply"
        }
        StepRole::Progress => "progress",
        StepRole::Other if step.sender == "gateway" => "notice",
        StepRole::Other => "message",
    };
    tx.execute_cached(
        "INSERT INTO thread_messages (thread_id, message_id, seq, kind, type, sender, at_ms, flag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![thread, step.message_id, step.seq, kind, step.message_type, step.sender, step.at_ms, outcome.flag],
    )?;
    Ok(outcome)
}

pub fn due(c: &Connection, now_ms: i64, limit: usize) -> rusqlite::Result<Vec<DueObligation>> {
    c.prepare_cached(
        "SELECT o.id, o.thread_id, o.request_id, m.native_id, o.request_type, o.requester, o.awaiting, o.deadline_ms, t.case_number
         FROM obligations o JOIN messages m ON m.id = o.request_id JOIN threads t ON t.id = o.thread_id
         WHERE o.state = 'open' AND o.deadline_ms <= ?1 ORDER BY o.deadline_ms LIMIT ?2",
    )?
    .query_map(params![now_ms, limit as i64], |r| {
        Ok(DueObligation {
            id: r.get(0)?,
            thread: r.get(1)?,
            request_id: r.get(2)?,
            request_native_id: r.get(3)?,
            request_type: r.get(4)?,
            requester: r.get(5)?,
            awaiting: r.get(6)?,
            deadline_ms: r.get(7)?,
            case_number: r.get(8)?,
        })
    })?
    .collect()
}

pub fn unescalated(c: &Connection, types: &[String]) -> rusqlite::Result<Vec<(i64, String, String)>> {
    c.prepare_cached(
        "SELECT o.id, o.request_id, o.awaiting FROM obligations o
         WHERE o.outcome = 'cannot_determine' AND o.request_type IN (SELECT value FROM json_each(?1))
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.sender = o.awaiting AND m.native_id = 'escalation-' || o.id)
         ORDER BY o.id LIMIT 100",
    )?
    .query_map([serde_json::to_string(types).unwrap_or_default()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

pub fn mark_overdue(tx: &Savepoint<'_>, id: i64) -> rusqlite::Result<bool> {
    Ok(tx.execute_cached("UPDATE obligations SET state = 'overdue' WHERE id = ?1 AND state = 'open'", [id])? == 1)
}

fn obligation(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObligationRow> {
    Ok(ObligationRow {
        id: r.get(0)?,
        thread: r.get(1)?,
        request_id: r.get(2)?,
        request_type: r.get(3)?,
        requester: r.get(4)?,
        awaiting: r.get(5)?,
        opened_ms: r.get(6)?,
        deadline_ms: r.get(7)?,
        state: r.get(8)?,
        answered_by: r.get(9)?,
        answered_ms: r.get(10)?,
        late: r.get(11)?,
        outcome: r.get(12)?,
    })
}

const OBLIGATION_COLUMNS: &str = "id, thread_id, request_id, request_type, requester, awaiting, opened_ms, deadline_ms, state, answered_by, answered_ms, late, outcome";

pub fn obligations(c: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<Vec<ObligationRow>> {
    c.prepare_cached(&format!(
        "SELECT {OBLIGATION_COLUMNS} FROM obligations WHERE opened_ms >= ?1 AND opened_ms < ?2 ORDER BY id"
    ))?
    .query_map(params![from_ms, to_ms], obligation)?
    .collect()
}

pub fn threads(c: &Connection, q: &ThreadQuery) -> rusqlite::Result<Vec<ThreadRow>> {
    let ids: Vec<(String, Option<String>, i64)> = c
        .prepare_cached(
            "SELECT t.id, t.case_number, t.opened_ms FROM threads t
             WHERE (?1 IS NULL OR t.id = ?1)
               AND (?2 IS NULL OR EXISTS (SELECT 1 FROM obligations o WHERE o.thread_id = t.id AND (o.awaiting = ?2 OR o.requester = ?2))
                               OR EXISTS (SELECT 1 FROM thread_messages m WHERE m.thread_id = t.id AND m.sender = ?2))
               AND (?3 IS NULL OR t.opened_ms >= ?3) AND (?4 IS NULL OR t.opened_ms < ?4)
             ORDER BY t.opened_ms DESC LIMIT ?5",
        )?
        .query_map(params![q.id, q.agency, q.from_ms, q.to_ms, q.limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut messages = c.prepare_cached(
        "SELECT message_id, seq, kind, type, sender, at_ms, flag FROM thread_messages WHERE thread_id = ?1 ORDER BY seq",
    )?;
    let mut owed =
        c.prepare_cached(&format!("SELECT {OBLIGATION_COLUMNS} FROM obligations WHERE thread_id = ?1 ORDER BY id"))?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, case_number, opened_ms) in ids {
        let messages = messages
            .query_map([&id], |r| {
                Ok(ThreadMessageRow {
                    message_id: r.get(0)?,
                    seq: r.get(1)?,
                    kind: r.get(2)?,
                    message_type: r.get(3)?,
                    sender: r.get(4)?,
                    at_ms: r.get(5)?,
                    flag: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let obligations = owed.query_map([&id], obligation)?.collect::<rusqlite::Result<_>>()?;
        out.push(ThreadRow { id, case_number, opened_ms, messages, obligations });
    }
    Ok(out)
}

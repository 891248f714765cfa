//! Threads and obligations: the conversation on a case, and the replies it is owed.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::SqliteStore;
use super::messages::referenced;
use super::reply_figures::{self, Figure};
use super::writer::{Commit, ExecuteCached};
use crate::store::{
    DueObligation, LogEntry, ObligationRow, OwedQuery, ReplyFigures, StepOutcome, StepRole, StoreError,
    ThreadMessageRow, ThreadQuery, ThreadRow, ThreadStep, Threads,
};
use crate::threads::decide::{self, Placement};

#[async_trait]
impl Threads for SqliteStore {
    async fn thread_backlog(&self, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.read(move |c| backlog(c, limit)).await
    }

    async fn apply_thread_steps(&self, steps: Vec<ThreadStep>) -> Result<Vec<StepOutcome>, StoreError> {
        self.write(Commit::Synced, move |tx| apply_all(tx, &steps)).await
    }

    async fn due_obligations(&self, now_ms: i64, limit: usize) -> Result<Vec<DueObligation>, StoreError> {
        self.read(move |c| due(c, now_ms, limit)).await
    }

    async fn unescalated(&self, types: Vec<String>) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.read(move |c| unescalated(c, &types)).await
    }

    async fn mark_overdue(&self, obligation: i64) -> Result<bool, StoreError> {
        self.write(Commit::Synced, move |tx| mark_overdue(tx, obligation)).await
    }

    async fn threads(&self, query: ThreadQuery) -> Result<Vec<ThreadRow>, StoreError> {
        self.read(move |c| threads(c, &query)).await
    }

    async fn obligations(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ObligationRow>, StoreError> {
        self.read(move |c| obligations(c, from_ms, to_ms)).await
    }

    async fn reply_figures(&self, first_day: i64, end_day: i64, now_ms: i64) -> Result<Vec<ReplyFigures>, StoreError> {
        self.read(move |c| reply_figures::read(c, first_day, end_day, now_ms)).await
    }

    async fn owed(&self, query: OwedQuery) -> Result<Vec<ObligationRow>, StoreError> {
        self.read(move |c| owed(c, &query)).await
    }

    async fn thread_of(&self, message_id: &str) -> Result<Option<String>, StoreError> {
        let id = message_id.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT thread_id FROM thread_messages WHERE message_id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()
        })
        .await
    }
}

const CURSOR: &str = "threads_cursor";

fn backlog(c: &Connection, limit: usize) -> rusqlite::Result<Vec<LogEntry>> {
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

fn thread_of(tx: &Savepoint<'_>, message_id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT thread_id FROM thread_messages WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()
}

/// Applies `steps` in order and moves the worker's cursor past the last.
fn apply_all(tx: &Savepoint<'_>, steps: &[ThreadStep]) -> rusqlite::Result<Vec<StepOutcome>> {
    let outcomes = steps.iter().map(|step| apply(tx, step)).collect::<rusqlite::Result<_>>()?;
    if let Some(last) = steps.iter().map(|s| s.seq).max() {
        tx.execute_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            params![CURSOR, last],
        )?;
    }
    Ok(outcomes)
}

/// A message that stood alone becomes the root of a thread when a later one refers to it.
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
        Some(link) => referenced(tx, link, step.seq, &step.sender)?.map(|l| l.id),
        None => None,
    };
    let target_thread = match &target {
        Some(t) => thread_of(tx, t)?,
        None => None,
    };
    let thread = match decide::place(step, target.as_deref().map(|t| (t, target_thread.as_deref()))) {
        Placement::Join(thread) => thread,
        Placement::RootAt(message) => root_at(tx, &message)?,
        Placement::LatestOfCase(case) => match latest_of_case(tx, &case)? {
            Some(thread) => thread,
            None => open(tx, step)?,
        },
        Placement::Open => open(tx, step)?,
        Placement::Alone => return Ok(StepOutcome::default()),
    };
    let mut outcome = StepOutcome { thread: Some(thread.clone()), ..StepOutcome::default() };
    match &step.role {
        StepRole::Request { awaiting, deadline_ms } => {
            let mut open = tx.prepare_cached(
                "INSERT INTO obligations (thread_id, request_id, request_type, requester, awaiting, opened_ms, deadline_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open') ON CONFLICT (request_id, awaiting) DO NOTHING",
            )?;
            for a in awaiting {
                let opened = open.execute(params![
                    thread,
                    step.message_id,
                    step.message_type,
                    step.sender,
                    a,
                    step.at_ms,
                    deadline_ms
                ])?;
                if opened == 1 {
                    reply_figures::count(tx, a, step.at_ms, Figure::Received, 1)?;
                }
            }
        }
        StepRole::Reply { .. } => {
            let candidates = tx
                .prepare_cached(&format!(
                    "SELECT {OBLIGATION_COLUMNS} FROM obligations WHERE thread_id = ?1 AND awaiting = ?2 AND state != 'answered'"
                ))?
                .query_map(params![thread, step.sender], obligation)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            match decide::answer(step, target.as_deref(), &candidates) {
                Ok(answer) => {
                    tx.execute_cached(
                        "UPDATE obligations SET state = 'answered', answered_by = ?2, answered_ms = ?3, late = ?4, outcome = ?5 WHERE id = ?1",
                        params![answer.obligation, step.message_id, step.at_ms, answer.late, answer.outcome],
                    )?;
                    if let Some(o) = candidates.iter().find(|o| o.id == answer.obligation) {
                        reply_figures::answered(tx, o, step.at_ms, answer.late)?;
                    }
                    outcome.escalate = answer.escalate;
                }
                Err(flag) => outcome.flag = Some(flag),
            }
        }
        StepRole::Progress | StepRole::Other => {}
    }
    tx.execute_cached(
        "INSERT INTO thread_messages (thread_id, message_id, seq, kind, type, sender, at_ms, flag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![thread, step.message_id, step.seq, decide::kind(step), step.message_type, step.sender, step.at_ms, outcome.flag],
    )?;
    Ok(outcome)
}

/// Opens a thread whose id is the message's.
fn open(tx: &Savepoint<'_>, step: &ThreadStep) -> rusqlite::Result<String> {
    tx.execute_cached(
        "INSERT INTO threads (id, case_number, opened_ms) VALUES (?1, ?2, ?3)",
        params![step.message_id, step.subject, step.at_ms],
    )?;
    Ok(step.message_id.clone())
}

/// The latest thread of a case.
fn latest_of_case(tx: &Savepoint<'_>, case: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT id FROM threads WHERE case_number = ?1 ORDER BY opened_ms DESC LIMIT 1")?
        .query_row([case], |r| r.get(0))
        .optional()
}

fn due(c: &Connection, now_ms: i64, limit: usize) -> rusqlite::Result<Vec<DueObligation>> {
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

fn unescalated(c: &Connection, types: &[String]) -> rusqlite::Result<Vec<(i64, String, String)>> {
    c.prepare_cached(
        "SELECT o.id, o.request_id, o.awaiting FROM obligations o
         WHERE o.outcome = 'cannot_determine' AND o.request_type IN (SELECT value FROM json_each(?1))
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.sender = o.awaiting AND m.native_id = 'escalation-' || o.id)
         ORDER BY o.id LIMIT 100",
    )?
    .query_map([serde_json::to_string(types).unwrap_or_default()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

fn mark_overdue(tx: &Savepoint<'_>, id: i64) -> rusqlite::Result<bool> {
    let marked: Option<(String, i64)> = tx
        .prepare_cached(
            "UPDATE obligations SET state = 'overdue' WHERE id = ?1 AND state = 'open' RETURNING awaiting, opened_ms",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((agency, opened_ms)) = &marked {
        reply_figures::count(tx, agency, *opened_ms, Figure::Overdue, 1)?;
    }
    Ok(marked.is_some())
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

fn obligations(c: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<Vec<ObligationRow>> {
    c.prepare_cached(&format!(
        "SELECT {OBLIGATION_COLUMNS} FROM obligations WHERE opened_ms >= ?1 AND opened_ms < ?2 ORDER BY id"
    ))?
    .query_map(params![from_ms, to_ms], obligation)?
    .collect()
}

fn threads(c: &Connection, q: &ThreadQuery) -> rusqlite::Result<Vec<ThreadRow>> {
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

/// The obligations `q` names that are not answered, soonest deadline first: the partial index
/// of the unanswered ones walked in deadline order (one agency's, for one agency) until `limit`
/// are found, never a sort of them all.
fn owed(c: &Connection, q: &OwedQuery) -> rusqlite::Result<Vec<ObligationRow>> {
    let period = "state != 'answered' AND opened_ms >= ?1 AND opened_ms < ?2";
    match q.awaiting.as_deref() {
        Some([agency]) => c
            .prepare_cached(&format!(
                "SELECT {OBLIGATION_COLUMNS} FROM obligations INDEXED BY obligations_owed_by
                 WHERE {period} AND awaiting = ?3 ORDER BY deadline_ms, id LIMIT ?4"
            ))?
            .query_map(params![q.from_ms, q.to_ms, agency, q.limit as i64], obligation)?
            .collect(),
        agencies => {
            let agencies = agencies.map(|a| serde_json::to_string(a).unwrap_or_default());
            c.prepare_cached(&format!(
                "SELECT {OBLIGATION_COLUMNS} FROM obligations INDEXED BY obligations_owed
                 WHERE {period} AND (?3 IS NULL OR awaiting IN (SELECT value FROM json_each(?3)))
                 ORDER BY deadline_ms, id LIMIT ?4"
            ))?
            .query_map(params![q.from_ms, q.to_ms, agencies, q.limit as i64], obligation)?
            .collect()
        }
    }
}

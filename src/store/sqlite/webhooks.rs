//! Subscriptions and webhook attempts: creation from the feed, leases, outcomes, dead letters.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::SqliteStore;
use super::audit;
use super::writer::{Commit, ExecuteCached};
use crate::audit::Algorithm;
use crate::store::webhooks::RESPONSE_KEPT;
use crate::store::{
    Attempt, AttemptOutcome, Backlog, DeadLetter, NewAttempt, NextLease, StoreError, WebhookQueue, attempt_entry,
};

#[async_trait]
impl WebhookQueue for SqliteStore {
    async fn enqueue(&self, subscription: &str, entries: Vec<NewAttempt>, through: i64) -> Result<(), StoreError> {
        let (subscription, now) = (subscription.to_string(), self.now());
        self.write(Commit::Unsynced, move |tx| enqueue(tx, &subscription, &entries, through, &now)).await
    }

    async fn lease(
        &self,
        subscription: &str,
        max: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Attempt>, StoreError> {
        let subscription = subscription.to_string();
        self.write(Commit::Unsynced, move |tx| lease(tx, &subscription, max, now_ms, lease_ms)).await
    }

    async fn complete(&self, attempt: &Attempt, outcome: AttemptOutcome) -> Result<(), StoreError> {
        // What the outcome and its audit record need, without the event.
        let attempt = Attempt {
            subscription: attempt.subscription.clone(),
            recipient: attempt.recipient.clone(),
            message_id: attempt.message_id.clone(),
            message_type: attempt.message_type.clone(),
            webhook_id: attempt.webhook_id.clone(),
            event: String::new(),
            ..*attempt
        };
        let (alg, now) = (self.audit, self.now());
        self.write(Commit::Unsynced, move |tx| complete(tx, alg, &attempt, &outcome, &now)).await
    }

    async fn complete_all(&self, done: Vec<(Attempt, AttemptOutcome)>) -> Result<(), StoreError> {
        let (done, alg, now) = (without_events(done), self.audit, self.now());
        self.write(Commit::Unsynced, move |tx| complete_each(tx, alg, &done, &now)).await
    }

    async fn complete_and_lease(
        &self,
        done: Vec<(Attempt, AttemptOutcome)>,
        next: &NextLease,
    ) -> Result<Option<Vec<Attempt>>, StoreError> {
        let (done, alg, now, next) = (without_events(done), self.audit, self.now(), next.clone());
        self.write(Commit::Unsynced, move |tx| {
            complete_each(tx, alg, &done, &now)?;
            let current: Option<(String, Option<String>)> = tx
                .prepare_cached("SELECT spec, disabled FROM subscriptions WHERE id = ?1")?
                .query_row([&next.subscription], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if current.is_none_or(|(spec, disabled)| spec != next.spec || disabled.is_some()) {
                return Ok(Some(Vec::new()));
            }
            lease(tx, &next.subscription, next.max, next.now_ms, next.lease_ms).map(Some)
        })
        .await
    }

    async fn dead_letters(&self, subscription: Option<String>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.read(move |c| dead_letters(c, subscription.as_deref(), limit)).await
    }

    async fn replay(&self, attempt: i64, by: &str) -> Result<bool, StoreError> {
        let (alg, by, now_ms, now) = (self.audit, by.to_string(), self.clock.now_ms(), self.now());
        self.write(Commit::Synced, move |tx| replay(tx, alg, attempt, &by, now_ms, &now)).await
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT s.id, count(a.id) FILTER (WHERE a.state = 'pending'), count(a.id) FILTER (WHERE a.state = 'dead'),
                        min(a.created_at) FILTER (WHERE a.state = 'pending'), s.last_success_at, s.last_error, s.last_error_at
                 FROM subscriptions s LEFT JOIN webhook_attempts a ON a.subscription = s.id AND a.state != 'delivered'
                 GROUP BY s.id ORDER BY s.id",
            )?
            .query_map([], |r| {
                Ok(Backlog {
                    subscription: r.get(0)?,
                    pending: r.get(1)?,
                    dead: r.get(2)?,
                    oldest_pending: r.get(3)?,
                    last_success_at: r.get(4)?,
                    last_error: r.get(5)?,
                    last_error_at: r.get(6)?,
                })
            })?
            .collect()
        })
        .await
    }
}

fn enqueue(
    tx: &Savepoint<'_>,
    subscription: &str,
    entries: &[NewAttempt],
    through: i64,
    now: &str,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(ENQUEUE)?;
    for e in entries {
        insert.execute(params![subscription, e.seq, e.thread, now, e.message_id])?;
    }
    tx.execute_cached(
        "UPDATE subscriptions SET cursor = max(cursor, ?2) WHERE id = ?1",
        params![subscription, through],
    )?;
    Ok(())
}

fn lease(
    tx: &Savepoint<'_>,
    subscription: &str,
    max: usize,
    now_ms: i64,
    lease_ms: i64,
) -> rusqlite::Result<Vec<Attempt>> {
    let attempts: Vec<Attempt> = tx
        .prepare_cached(LEASE)?
        .query_map(params![subscription, now_ms, max as i64], |r| {
            Ok(Attempt {
                id: r.get(0)?,
                subscription: subscription.to_string(),
                message_seq: r.get(1)?,
                message_id: r.get(2)?,
                webhook_id: r.get(3)?,
                attempts: r.get(4)?,
                event: r.get(5)?,
                message_type: r.get(6)?,
                recipient: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut take = tx.prepare_cached("UPDATE webhook_attempts SET next_at = ?2, leased = 1 WHERE id = ?1")?;
    for a in &attempts {
        take.execute(params![a.id, now_ms + lease_ms])?;
    }
    Ok(attempts)
}

/// The outcomes without the events they carried: what their records need goes to the writer.
fn without_events(mut done: Vec<(Attempt, AttemptOutcome)>) -> Vec<(Attempt, AttemptOutcome)> {
    for (attempt, _) in &mut done {
        attempt.event = String::new();
    }
    done
}

/// [`complete`] for each outcome, in order.
fn complete_each(
    tx: &Savepoint<'_>,
    alg: Algorithm,
    done: &[(Attempt, AttemptOutcome)],
    now: &str,
) -> rusqlite::Result<()> {
    done.iter().try_for_each(|(attempt, outcome)| complete(tx, alg, attempt, outcome, now))
}

fn complete(
    tx: &Savepoint<'_>,
    alg: Algorithm,
    attempt: &Attempt,
    outcome: &AttemptOutcome,
    now: &str,
) -> rusqlite::Result<()> {
    let id = attempt.id;
    // The late outcome of an attempt that is no longer pending (another sender took it over
    // when its lease ended, and finished it) changes nothing.
    let found: Option<(String, String)> = tx
        .prepare_cached("SELECT state, thread FROM webhook_attempts WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some(("pending", thread)) = found.as_ref().map(|(state, thread)| (state.as_str(), thread)) else {
        return Ok(());
    };
    if let Some(entry) = attempt.outcome_entry(outcome) {
        audit::append(tx, alg, entry, now)?;
    }
    let kept = |s: &Option<String>| s.as_ref().map(|s| s.chars().take(RESPONSE_KEPT).collect::<String>());
    match outcome.failure() {
        None => tx.execute_cached(
            "UPDATE subscriptions SET last_success_at = ?2 WHERE id = ?1",
            params![attempt.subscription, now],
        )?,
        Some(failure) => tx.execute_cached(
            "UPDATE subscriptions SET last_error = ?2, last_error_at = ?3 WHERE id = ?1",
            params![attempt.subscription, failure, now],
        )?,
    };
    match outcome {
        AttemptOutcome::Delivered { status } => tx.execute_cached(
            "UPDATE webhook_attempts SET state = 'delivered', attempts = attempts + 1, leased = 0, last_status = ?2,
                    last_error = NULL, updated_at = ?3 WHERE id = ?1",
            params![id, status, now],
        )?,
        AttemptOutcome::Retry { at_ms, status, error } => tx.execute_cached(
            "UPDATE webhook_attempts SET attempts = attempts + 1, leased = 0, next_at = ?2, last_status = ?3, last_error = ?4,
                    updated_at = ?5 WHERE id = ?1",
            params![id, at_ms, status, error, now],
        )?,
        AttemptOutcome::Dead { status, error, response } => tx.execute_cached(
            "UPDATE webhook_attempts SET state = 'dead', attempts = attempts + 1, leased = 0, last_status = ?2, last_error = ?3,
                    last_response = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, status, error, kept(response), now],
        )?,
        AttemptOutcome::Gone { status } => {
            let (s, reason) = (&attempt.subscription, format!("the endpoint answered {status} Gone at {now}"));
            tx.execute_cached("UPDATE subscriptions SET disabled = ?2 WHERE id = ?1", params![s, reason])?;
            tx.execute_cached(
                "UPDATE webhook_attempts SET state = 'dead', leased = 0, last_error = ?2, updated_at = ?3
                 WHERE subscription = ?1 AND state = 'pending'",
                params![s, "the subscription is disabled: its endpoint is gone", now],
            )?;
            tx.execute_cached(
                "UPDATE webhook_attempts SET state = 'dead', attempts = attempts + 1, leased = 0, last_status = ?2, last_error = ?3,
                        updated_at = ?4 WHERE id = ?1",
                params![id, status, reason, now],
            )?
        }
    };
    // Finished: the thread's next attempt may go (a retried one stays its thread's head).
    if !matches!(outcome, AttemptOutcome::Retry { .. }) {
        promote_next(tx, &attempt.subscription, thread)?;
    }
    Ok(())
}

// The statements below run for every delivery, with other values bound each time. SQLite
// re-prepares a statement (parses and plans it anew, as costly as running it several times)
// whenever a bound value changes that its planner compared with a constant while planning;
// here that happens with `ORDER BY`, when it weighs the partial indexes and their conditions'
// constants. A `CAST` makes the value an expression, which the planner does not compare, and
// leaves the plan as it was; a unit test holds each statement to no re-preparation
// (docs/performance.md).

/// The due heads of a subscription's case threads, soonest first.
pub(super) const LEASE: &str =
    "SELECT a.id, a.message_seq, m.id, a.webhook_id, a.attempts, coalesce(d.event, m.event), m.type, s.owner
     FROM webhook_attempts a
     JOIN subscriptions s ON s.id = a.subscription
     JOIN messages m ON m.seq = a.message_seq
     JOIN deliveries d ON d.message_seq = a.message_seq AND d.recipient = s.owner
     WHERE a.subscription = CAST(?1 AS TEXT) AND a.state = 'pending' AND a.head = 1 AND a.next_at <= CAST(?2 AS INTEGER)
       AND s.disabled IS NULL
     ORDER BY a.next_at LIMIT CAST(?3 AS INTEGER)";

/// A new attempt: its thread's head unless an earlier one of the thread is pending (the
/// `attempts_pending` index answers that at once, however long the thread).
pub(super) const ENQUEUE: &str = "INSERT INTO webhook_attempts (subscription, message_seq, webhook_id, thread, state, next_at, created_at, updated_at, head)
     VALUES (?1, ?2, 'msg_' || ?5, ?3, 'pending', 0, ?4, ?4,
             NOT EXISTS (SELECT 1 FROM webhook_attempts b WHERE b.subscription = ?1 AND b.thread = ?3 AND b.state = 'pending'))
     ON CONFLICT (subscription, message_seq) DO NOTHING";

/// The oldest pending attempt of a case thread becomes its head (through `attempts_pending`).
pub(super) const PROMOTE_NEXT: &str = "UPDATE webhook_attempts SET head = 1
     WHERE id = (SELECT id FROM webhook_attempts WHERE subscription = CAST(?1 AS TEXT) AND thread = CAST(?2 AS TEXT)
                   AND state = 'pending' ORDER BY message_seq LIMIT 1) AND head = 0";

/// Makes the oldest pending attempt of a case thread its head, once the head before it is done.
fn promote_next(tx: &Savepoint<'_>, subscription: &str, thread: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(PROMOTE_NEXT)?.execute(params![subscription, thread])?;
    Ok(())
}

fn dead_letters(c: &Connection, subscription: Option<&str>, limit: usize) -> rusqlite::Result<Vec<DeadLetter>> {
    c.prepare_cached(
        "SELECT a.id, a.subscription, m.id, a.webhook_id, a.attempts, a.last_status, a.last_error, a.last_response, a.updated_at
         FROM webhook_attempts a JOIN messages m ON m.seq = a.message_seq
         WHERE a.state = 'dead' AND (?1 IS NULL OR a.subscription = ?1) ORDER BY a.id LIMIT ?2",
    )?
    .query_map(params![subscription, limit as i64], |r| {
        Ok(DeadLetter {
            id: r.get(0)?,
            subscription: r.get(1)?,
            message_id: r.get(2)?,
            webhook_id: r.get(3)?,
            attempts: r.get(4)?,
            last_status: r.get(5)?,
            last_error: r.get(6)?,
            last_response: r.get(7)?,
            updated_at: r.get(8)?,
        })
    })?
    .collect()
}

fn replay(tx: &Savepoint<'_>, alg: Algorithm, id: i64, by: &str, now_ms: i64, now: &str) -> rusqlite::Result<bool> {
    let n = tx.execute_cached(
        "UPDATE webhook_attempts SET state = 'pending', attempts = 0, leased = 0, next_at = ?2, updated_at = ?3
         WHERE id = ?1 AND state = 'dead'",
        params![id, now_ms, now],
    )?;
    if n != 1 {
        return Ok(false);
    }
    let (subscription, thread, message, message_type, owner): (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = tx
        .prepare_cached(
            "SELECT a.subscription, a.thread, m.id, m.type, s.owner FROM webhook_attempts a
             LEFT JOIN messages m ON m.seq = a.message_seq LEFT JOIN subscriptions s ON s.id = a.subscription
             WHERE a.id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    if let Some(message) = message {
        let mut entry = attempt_entry("replayed", by, id, &subscription, &message);
        entry.message_type = message_type;
        entry.recipient = owner;
        audit::append(tx, alg, entry, now)?;
    }
    // A replayed attempt may be older than its thread's head: the head is marked anew, the
    // thread's oldest pending attempt, the only one a lease may take.
    tx.execute_cached(
        "UPDATE webhook_attempts SET head = 0 WHERE subscription = ?1 AND thread = ?2 AND head = 1",
        params![subscription, thread],
    )?;
    promote_next(tx, &subscription, &thread)?;
    Ok(true)
}

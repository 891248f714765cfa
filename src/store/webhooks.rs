//! The webhook queue: attempts created from a subscription's feed, leased while being sent,
//! finished with an outcome (and its audit record), dead letters and their replay.

use async_trait::async_trait;
use serde::Serialize;

use super::error::StoreError;
use crate::audit::Entry;

/// The start of an endpoint's answer kept with a dead letter (characters).
pub const RESPONSE_KEPT: usize = 2048;

#[async_trait]
pub trait WebhookQueue: Send + Sync {
    /// Creates the attempts of a webhook subscription for the feed `entries` that its filter
    /// matched (an entry with an attempt already is skipped), then moves its cursor to `through`.
    async fn enqueue(&self, subscription: &str, entries: Vec<NewAttempt>, through: i64) -> Result<(), StoreError>;

    /// Leases up to `max` due attempts of a subscription until `now_ms + lease_ms`: the oldest
    /// unfinished attempt of each case thread only, so a thread reaches the endpoint in order.
    async fn lease(
        &self,
        subscription: &str,
        max: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Attempt>, StoreError>;

    /// Records how a leased attempt ended.
    async fn complete(&self, attempt: &Attempt, outcome: AttemptOutcome) -> Result<(), StoreError>;

    /// Records how each of several leased attempts ended, as [`WebhookQueue::complete`] would
    /// one by one, in the order given (the audit chain appends their records in that order).
    /// The embedded store commits them together; the default records them one after another.
    async fn complete_all(&self, done: Vec<(Attempt, AttemptOutcome)>) -> Result<(), StoreError> {
        for (attempt, outcome) in done {
            self.complete(&attempt, outcome).await?;
        }
        Ok(())
    }

    /// Records `done` as [`WebhookQueue::complete_all`] does, then leases as
    /// [`WebhookQueue::lease`] does for `next` — unless that subscription is no longer the one
    /// the caller sends for (its spec changed, it was disabled or deleted), when it leases
    /// nothing. `None` when the store does not lease in the same step: the caller leases itself.
    /// The embedded store does both in one writer job, so a delivery's turn makes one round
    /// trip to the writer instead of two.
    async fn complete_and_lease(
        &self,
        done: Vec<(Attempt, AttemptOutcome)>,
        _next: &NextLease,
    ) -> Result<Option<Vec<Attempt>>, StoreError> {
        self.complete_all(done).await.map(|()| None)
    }

    async fn dead_letters(&self, subscription: Option<String>, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Makes a dead attempt due again now (same webhook id); whether it was dead.
    async fn replay(&self, attempt: i64, by: &str) -> Result<bool, StoreError>;

    /// Every webhook subscription's backlog: its pending attempts, dead letters, and when the
    /// oldest pending one was created.
    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError>;
}

/// A webhook subscription's backlog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Backlog {
    pub subscription: String,
    /// Attempts not delivered yet (due, retrying or in flight).
    pub pending: i64,
    pub dead: i64,
    /// When the oldest pending attempt was created (RFC 3339), if any.
    pub oldest_pending: Option<String>,
    /// When an attempt last succeeded (RFC 3339).
    pub last_success_at: Option<String>,
    /// The last failure (`HTTP 503`, a connection error, ...) and when it was.
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

impl AttemptOutcome {
    /// What failed, in words; `None` when it was delivered.
    pub fn failure(&self) -> Option<String> {
        let said = |status: &Option<u16>, error: &str| match status {
            Some(s) if error.is_empty() => format!("HTTP {s}"),
            Some(s) if !error.contains(&s.to_string()) => format!("HTTP {s}: {error}"),
            _ => error.to_string(),
        };
        match self {
            AttemptOutcome::Delivered { .. } => None,
            AttemptOutcome::Retry { status, error, .. } | AttemptOutcome::Dead { status, error, .. } => {
                Some(said(status, error))
            }
            AttemptOutcome::Gone { status } => Some(format!("HTTP {status} Gone")),
        }
    }
}

/// A feed entry that a webhook subscription's filter matched: an attempt to create.
#[derive(Clone, Debug)]
pub struct NewAttempt {
    /// The feed position.
    pub seq: i64,
    /// The case thread (messages of one thread reach the endpoint in order).
    pub thread: String,
    pub message_id: String,
    pub message_type: String,
    /// The subscriber's copy of the event.
    pub event: String,
}

/// The lease that [`WebhookQueue::complete_and_lease`] takes after recording outcomes.
#[derive(Clone, Debug)]
pub struct NextLease {
    pub subscription: String,
    /// The subscription's spec as the caller knows it: another one leases nothing.
    pub spec: String,
    pub max: usize,
    pub now_ms: i64,
    pub lease_ms: i64,
}

/// A webhook attempt leased for sending.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub id: i64,
    pub subscription: String,
    /// The subscription's owner: the recipient.
    pub recipient: String,
    pub message_seq: i64,
    pub message_id: String,
    pub message_type: String,
    pub webhook_id: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The subscriber's copy of the event.
    pub event: String,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered {
        status: u16,
    },
    /// Try again at `at_ms` (unix ms).
    Retry {
        at_ms: i64,
        status: Option<u16>,
        error: String,
    },
    /// Given up: the schedule is exhausted, or the endpoint refused it (a 4xx other than 408,
    /// 410 and 429). `response` keeps the start of the endpoint's answer.
    Dead {
        status: Option<u16>,
        error: String,
        response: Option<String>,
    },
    /// The endpoint answered 410 Gone: the subscription is disabled and its attempts are dead.
    Gone {
        status: u16,
    },
}

/// The audit record of what happened to webhook attempt `id` of `subscription`, done by `by`
/// (`gateway`, or the operator of a replay); the caller adds the type, recipient and status it
/// knows.
pub fn attempt_entry(action: &str, by: &str, id: i64, subscription: &str, message_id: &str) -> Entry {
    let mut entry = Entry::new(action).actor(by).message(message_id);
    entry.detail = Some(format!("subscription {subscription}, attempt {id}"));
    entry
}

impl Attempt {
    /// The audit record of this attempt's outcome, when it is final (a retry is kept in the
    /// attempt's own record, not in the audit chain).
    pub fn outcome_entry(&self, outcome: &AttemptOutcome) -> Option<Entry> {
        let (action, status) = match outcome {
            AttemptOutcome::Delivered { status } => ("delivered", Some(*status)),
            AttemptOutcome::Dead { status, .. } => ("dead", *status),
            AttemptOutcome::Gone { status } => ("gone", Some(*status)),
            AttemptOutcome::Retry { .. } => return None,
        };
        let mut entry = attempt_entry(action, "gateway", self.id, &self.subscription, &self.message_id);
        entry.message_type = Some(self.message_type.clone()).filter(|t| !t.is_empty());
        entry.recipient = Some(self.recipient.clone()).filter(|r| !r.is_empty());
        entry.code = status.map(|s| s.to_string());
        Some(entry)
    }
}

/// An attempt the schedule gave up on, or the endpoint refused.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: i64,
    pub subscription: String,
    pub message_id: String,
    pub webhook_id: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_response: Option<String>,
    pub updated_at: String,
}

//! The durable store. One trait, so the embedded store (SQLite, the default) and the shared
//! store (Redis, for several instances) are interchangeable and tested by one suite.
//!
//! The promise behind `202 Accepted`: `accept` returns only once the message and its outbox
//! (every recipient's copy) are committed durably, so a crash or restart after it loses nothing.
//! Feeds read the outbox; webhook attempts are created from it and leased while being sent, so
//! every recipient gets every message at least once whatever crashes in between.

pub mod redis;
pub mod sqlite;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::watch;

use crate::model::AgencyId;

/// A message the pipeline accepted, to be committed.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: String,
    /// The sender: an agency id, or `gateway` for the gateway's own notices.
    pub sender: String,
    pub native_id: String,
    pub message_type: &'static str,
    pub subject: Option<String>,
    pub content_sha256: String,
    pub body_sha256: String,
    pub stripped: Vec<String>,
    /// The canonical CloudEvent, serialised.
    pub event: String,
    /// The outbox: every recipient with its own copy, committed with the message.
    pub deliveries: Vec<NewDelivery>,
    /// When the gateway received it (the gateway's clock), unix ms.
    pub received_ms: i64,
    /// The sender's reference to an earlier message (`inreplyto`).
    pub in_reply_to: Option<String>,
}

/// One recipient's copy of a message, in the outbox.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub recipient: String,
    pub role: &'static str,
    /// The rules that chose the recipient.
    pub rules: Vec<String>,
    /// The event as the recipient receives it, serialised; `None` when it is the message's
    /// event as it is (nothing above the recipient's clearance, not anonymised): the store then
    /// keeps the event once.
    pub event: Option<String>,
}

/// A recipient as the sender is told about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Addressee {
    pub id: String,
    pub role: String,
}

/// What a sender is told about a committed message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub id: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub stripped: Vec<String>,
    pub recipients: Vec<Addressee>,
}

/// The outcome of `accept`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Committed now.
    Created(Receipt),
    /// The sender sent this message (same sender, same native id, same content) before; the
    /// receipt is the first one's. Nothing new was created.
    Duplicate(Receipt),
    /// The sender used this native id before for a different message; nothing was created.
    Conflict(Receipt),
}

/// The audit record of a refused message: metadata only, never content.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub sender: Option<AgencyId>,
    pub body_sha256: String,
    pub code: &'static str,
    /// The pointers the refusal names (never values).
    pub pointers: String,
}

/// One entry of a recipient's feed: its copy of a message.
#[derive(Clone, Debug)]
pub struct FeedEntry {
    /// The position in the feed; the next read starts after it.
    pub cursor: i64,
    pub message_type: String,
    /// The case number: messages of one case form a thread.
    pub subject: Option<String>,
    pub event: String,
}

/// A page of a feed.
#[derive(Clone, Debug)]
pub struct FeedPage {
    pub entries: Vec<FeedEntry>,
    /// Entries at or below this cursor are past the retention and gone.
    pub purged_through: i64,
}

/// A subscription as stored; its `spec` (filter and target) is the delivery module's JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub id: String,
    /// The recipient whose feed it reads.
    pub owner: String,
    pub spec: String,
    /// Webhook: the feed position up to which attempts were created. Cursor subscriptions: the
    /// position acknowledged.
    pub cursor: i64,
    /// Why it is disabled (its endpoint answered 410 Gone), when it is.
    pub disabled: Option<String>,
    /// `config` (from subscriptions.yaml) or `api`.
    pub source: String,
    pub created_at: String,
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
pub fn attempt_entry(action: &str, by: &str, id: i64, subscription: &str, message_id: &str) -> crate::audit::Entry {
    let mut entry = crate::audit::Entry::new(action).actor(by).message(message_id);
    entry.detail = Some(format!("subscription {subscription}, attempt {id}"));
    entry
}

impl Attempt {
    /// The audit record of this attempt's outcome, when it is final (a retry is kept in the
    /// attempt's own record, not in the audit chain).
    pub fn outcome_entry(&self, outcome: &AttemptOutcome) -> Option<crate::audit::Entry> {
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
#[derive(Clone, Debug, Serialize)]
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

/// Where a message went: each recipient, and each webhook attempt.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub id: String,
    pub sender: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub subject: Option<String>,
    pub received_at: String,
    /// The feed position of the message.
    pub cursor: i64,
    pub recipients: Vec<TraceRecipient>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TraceRecipient {
    pub id: String,
    pub role: String,
    pub rules: Vec<String>,
    pub webhooks: Vec<TraceAttempt>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TraceAttempt {
    pub subscription: String,
    pub webhook_id: String,
    /// pending, delivered or dead.
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// Unix ms: when the next try is due (pending).
    pub next_at: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// A committed message, as the thread worker reads the log.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub seq: i64,
    pub id: String,
    pub message_type: String,
    pub sender: String,
    pub native_id: String,
    pub in_reply_to: Option<String>,
    pub subject: Option<String>,
    pub received_ms: i64,
    /// The canonical event.
    pub event: String,
    /// Its primary recipients.
    pub primaries: Vec<String>,
}

/// What a message is in its thread.
#[derive(Clone, Debug)]
pub enum StepRole {
    /// It asks `awaiting` for a reply by `deadline_ms`.
    Request { awaiting: Vec<String>, deadline_ms: i64 },
    /// It answers a request of one of the `answers` types; `cannot_determine` (无法认定) on a
    /// request of an `escalates` type escalates it.
    Reply { answers: Vec<String>, cannot_determine: bool, escalates: Vec<String> },
    /// It reports progress on its case (related-case notices): it joins the case's thread.
    Progress,
    /// Any other message: it joins the thread it refers to, if any.
    Other,
}

/// One message applied to the threads.
#[derive(Clone, Debug)]
pub struct ThreadStep {
    pub seq: i64,
    pub message_id: String,
    pub message_type: String,
    pub sender: String,
    pub subject: Option<String>,
    pub at_ms: i64,
    /// The sender's reference to an earlier message.
    pub link: Option<String>,
    pub role: StepRole,
}

/// What applying a step did.
#[derive(Clone, Debug, Default)]
pub struct StepOutcome {
    /// The thread the message is in; none for a message that stands alone.
    pub thread: Option<String>,
    pub flag: Option<String>,
    /// A 无法认定 reply to an escalating request: the request goes on up.
    pub escalate: Option<Escalation>,
}

#[derive(Clone, Debug)]
pub struct Escalation {
    /// The obligation answered with 无法认定.
    pub obligation: i64,
    pub request_id: String,
    /// The agency that could not determine.
    pub replier: String,
}

/// An obligation whose deadline passed with no reply.
#[derive(Clone, Debug)]
pub struct DueObligation {
    pub id: i64,
    pub thread: String,
    pub request_id: String,
    pub request_native_id: String,
    pub request_type: String,
    pub requester: String,
    pub awaiting: String,
    pub deadline_ms: i64,
    pub case_number: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ObligationRow {
    pub id: i64,
    pub thread: String,
    pub request_id: String,
    pub request_type: String,
    pub requester: String,
    pub awaiting: String,
    pub opened_ms: i64,
    pub deadline_ms: i64,
    /// open, overdue or answered.
    pub state: String,
    pub answered_by: Option<String>,
    pub answered_ms: Option<i64>,
    pub late: Option<bool>,
    /// answered, or cannot_determine.
    pub outcome: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ThreadMessageRow {
    pub message_id: String,
    pub seq: i64,
    /// request, reply, progress, notice or message.
    pub kind: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub sender: String,
    pub at_ms: i64,
    pub flag: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ThreadRow {
    pub id: String,
    pub case_number: Option<String>,
    pub opened_ms: i64,
    pub messages: Vec<ThreadMessageRow>,
    pub obligations: Vec<ObligationRow>,
}

/// Which threads to list.
#[derive(Clone, Debug, Default)]
pub struct ThreadQuery {
    pub id: Option<String>,
    /// Threads with an obligation involving this agency (asking or owing).
    pub agency: Option<String>,
    /// Opened at or after (unix ms).
    pub from_ms: Option<i64>,
    /// Opened before (unix ms).
    pub to_ms: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot commit now (locked, disk full, I/O error); the caller may retry.
    #[error("the store cannot commit: {0}")]
    Unavailable(String),
    /// The store has been shut down.
    #[error("the store is closed")]
    Closed,
    /// A write would break a uniqueness rule (an id that exists).
    #[error("{0}")]
    Conflict(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits `message` and its outbox unless its sender already sent the same native id.
    async fn accept(&self, message: NewMessage) -> Result<Accepted, StoreError>;

    /// Commits the audit record of a refused message.
    async fn record_refusal(&self, refusal: Refusal) -> Result<(), StoreError>;

    /// Whether the store can commit now.
    async fn ready(&self) -> Result<(), StoreError>;

    /// Changes whenever new messages are committed: feeds and workers wait on it.
    fn commits(&self) -> watch::Receiver<u64>;

    /// Up to `limit` entries of `recipient`'s feed after `after`, oldest first.
    async fn feed(&self, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError>;

    /// The newest feed position (0 when empty).
    async fn head(&self) -> Result<i64, StoreError>;

    /// Deletes feed entries (and finished webhook attempts) received before `before` (RFC 3339);
    /// returns how many entries went.
    async fn purge(&self, before: String) -> Result<usize, StoreError>;

    async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, StoreError>;

    /// Creates a subscription; `Conflict` if its id exists.
    async fn create_subscription(&self, row: SubscriptionRow) -> Result<(), StoreError>;

    /// Makes the config subscriptions exactly `rows`: new ones are created (from the head of
    /// their feed), changed specs updated, those no longer listed deleted. API ones are kept.
    async fn sync_config_subscriptions(&self, rows: Vec<SubscriptionRow>) -> Result<(), StoreError>;

    /// Deletes a subscription and its pending attempts; whether it existed.
    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError>;

    /// Sets a subscription's spec (e.g. rotated secrets) or its disabled state.
    async fn update_subscription(
        &self,
        id: &str,
        spec: Option<String>,
        disabled: Option<Option<String>>,
    ) -> Result<bool, StoreError>;

    /// Moves a cursor subscription's acknowledged position forward (never back).
    async fn acknowledge(&self, id: &str, cursor: i64) -> Result<bool, StoreError>;

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

    async fn dead_letters(&self, subscription: Option<String>, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Makes a dead attempt due again now (same webhook id); whether it was dead.
    async fn replay(&self, attempt: i64, by: &str) -> Result<bool, StoreError>;

    /// Appends a record to the audit chain (reloads, admin actions; the store records accepts,
    /// refusals, webhook outcomes and replays itself, in their own transactions).
    async fn audit(&self, entry: crate::audit::Entry) -> Result<(), StoreError>;

    /// The audit chain's last record: sequence and hash.
    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError>;

    async fn audit_checkpoints(&self) -> Result<Vec<crate::audit::checkpoint::Checkpoint>, StoreError>;

    async fn add_audit_checkpoint(&self, checkpoint: crate::audit::checkpoint::Checkpoint) -> Result<(), StoreError>;

    /// Where a message went.
    async fn trace(&self, message_id: &str) -> Result<Option<Trace>, StoreError>;

    /// The next committed messages the thread worker has not applied yet, oldest first.
    async fn thread_backlog(&self, limit: usize) -> Result<Vec<LogEntry>, StoreError>;

    /// Applies messages to the threads, in order, and moves the worker's cursor past them, in
    /// one transaction. Applying a message twice changes nothing.
    async fn apply_thread_steps(&self, steps: Vec<ThreadStep>) -> Result<Vec<StepOutcome>, StoreError>;

    /// The sender of the message `link` names (its id or its sender's own id), preferring one
    /// its author `reader` sent or received: whom a reply answers.
    async fn sender_of(&self, link: &str, reader: &str) -> Result<Option<String>, StoreError>;

    /// A committed message's canonical event and native id.
    async fn message(&self, id: &str) -> Result<Option<(String, String)>, StoreError>;

    /// Open obligations whose deadline is at or before `now_ms`.
    async fn due_obligations(&self, now_ms: i64, limit: usize) -> Result<Vec<DueObligation>, StoreError>;

    /// Obligations answered 无法认定 on a request of one of `types` whose escalation (a message
    /// from the replier with native id `escalation-{obligation}`) is not stored yet:
    /// `(obligation, request id, replier)`.
    async fn unescalated(&self, types: Vec<String>) -> Result<Vec<(i64, String, String)>, StoreError>;

    /// Marks an open obligation overdue; whether it was open.
    async fn mark_overdue(&self, obligation: i64) -> Result<bool, StoreError>;

    async fn threads(&self, query: ThreadQuery) -> Result<Vec<ThreadRow>, StoreError>;

    /// The obligations opened in `[from_ms, to_ms)`, for the statistics.
    async fn obligations(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ObligationRow>, StoreError>;

    /// Tells the other instances that share this store to load their configuration again.
    async fn announce_reload(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Changes when another instance announced a reload (None: a store of one instance).
    fn reloads(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// Commits what is queued and stops. Later calls fail with `Closed`.
    async fn close(&self);
}

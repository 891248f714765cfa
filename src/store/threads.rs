//! Threads and obligations: what the thread worker reads of the log, the steps it applies (the
//! decisions themselves are `threads::decide`, the same for every backend), and what operators
//! read.

use async_trait::async_trait;
use serde::Serialize;

use super::error::StoreError;

#[async_trait]
pub trait Threads: Send + Sync {
    /// The next committed messages the thread worker has not applied yet, oldest first.
    async fn thread_backlog(&self, limit: usize) -> Result<Vec<LogEntry>, StoreError>;

    /// Applies messages to the threads, in order, and moves the worker's cursor past them, in
    /// one transaction. Applying a message twice changes nothing.
    async fn apply_thread_steps(&self, steps: Vec<ThreadStep>) -> Result<Vec<StepOutcome>, StoreError>;

    /// Open obligations whose deadline is at or before `now_ms`.
    async fn due_obligations(&self, now_ms: i64, limit: usize) -> Result<Vec<DueObligation>, StoreError>;

    /// Obligations answered 无法认定 on a request of one of `types` whose escalation (a message
    /// from the replier with native id `escalation-{obligation}`) is not stored yet:
    /// `(obligation, request id, replier)`.
    async fn unescalated(&self, types: Vec<String>) -> Result<Vec<(i64, String, String)>, StoreError>;

    /// Marks an open obligation overdue; whether it was open.
    async fn mark_overdue(&self, obligation: i64) -> Result<bool, StoreError>;

    async fn threads(&self, query: ThreadQuery) -> Result<Vec<ThreadRow>, StoreError>;

    /// The obligations opened in `[from_ms, to_ms)`, for the statistics of a part of a day.
    async fn obligations(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ObligationRow>, StoreError>;

    /// Per agency, the reply figures of the obligations opened on the Beijing days
    /// `[first_day, end_day)` (`threads::stats::day`), read from the figures the store keeps as
    /// obligations open, fall overdue and are answered, never from the obligations themselves:
    /// `overdue` counts those marked overdue and those still open whose deadline is before
    /// `now_ms`.
    async fn reply_figures(&self, first_day: i64, end_day: i64, now_ms: i64) -> Result<Vec<ReplyFigures>, StoreError>;

    /// The obligations not answered yet that `query` names, soonest deadline first.
    async fn owed(&self, query: OwedQuery) -> Result<Vec<ObligationRow>, StoreError>;

    /// The thread a message is in, if any.
    async fn thread_of(&self, message_id: &str) -> Result<Option<String>, StoreError>;
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

#[derive(Clone, Debug, PartialEq, Eq)]
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

/// One agency's reply figures, as the store keeps them per day (see `Threads::reply_figures`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyFigures {
    pub agency: String,
    /// Obligations opened.
    pub received: u64,
    pub on_time: u64,
    pub late: u64,
    /// Not answered, and past the deadline.
    pub overdue: u64,
    /// The reply times in whole seconds (`threads::stats::reply_seconds`), each with how many
    /// replies took that long; ascending.
    pub reply_times: Vec<(i64, u64)>,
}

/// Which unanswered obligations to list.
#[derive(Clone, Debug, Default)]
pub struct OwedQuery {
    /// Opened at or after (unix ms).
    pub from_ms: i64,
    /// Opened before (unix ms).
    pub to_ms: i64,
    /// Only those these agencies owe (`None`: any agency).
    pub awaiting: Option<Vec<String>>,
    pub limit: usize,
}

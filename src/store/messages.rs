//! Messages: committing an accepted message with its outbox (every recipient's copy), the audit
//! records of accepts and refusals, and reading a message back (its event, whom it answers,
//! where it went).

use async_trait::async_trait;
use serde::Serialize;

use super::error::StoreError;
use crate::audit::Entry;

#[async_trait]
pub trait Messages: Send + Sync {
    /// Commits `message` and its outbox unless its sender already sent the same native id.
    /// Returns once the message is durable: this is the promise behind `202 Accepted`.
    async fn accept(&self, message: NewMessage) -> Result<Accepted, StoreError>;

    /// Commits the audit record of a refused message.
    async fn record_refusal(&self, refusal: Refusal) -> Result<(), StoreError>;

    /// A committed message's canonical event and native id.
    async fn message(&self, id: &str) -> Result<Option<(String, String)>, StoreError>;

    /// The message `link` names (its id or its sender's own id), preferring one its author
    /// `reader` sent or received (native ids are unique per sender only): what a reply answers.
    async fn linked(&self, link: &str, reader: &str) -> Result<Option<Linked>, StoreError>;

    /// Where a message went.
    async fn trace(&self, message_id: &str) -> Result<Option<Trace>, StoreError>;

    /// The messages that match `query`, newest first (by index: case number, sender, type,
    /// received time; never a scan of every message).
    async fn search(&self, query: MessageQuery) -> Result<Vec<MessageSummary>, StoreError>;
}

/// What to look for among the messages; every criterion given must hold.
#[derive(Clone, Debug, Default)]
pub struct MessageQuery {
    /// The gateway's id of a message, or its sender's own id.
    pub id: Option<String>,
    /// The case number (the event's `subject`).
    pub case: Option<String>,
    /// The sender: `KIND:DIVISION`, `hub:REGION` or `gateway`.
    pub sender: Option<String>,
    pub message_type: Option<String>,
    /// Received at or after (unix ms).
    pub from_ms: Option<i64>,
    /// Received before (unix ms).
    pub to_ms: Option<i64>,
    /// Committed before this feed position (the `cursor` of the last one of a previous page).
    pub before: Option<i64>,
    /// At most this many (1 to 5000, default 100).
    pub limit: Option<usize>,
}

/// A message as a search lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MessageSummary {
    pub id: String,
    pub sender: String,
    pub native_id: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub subject: Option<String>,
    pub received_at: String,
    /// Its position in the feeds.
    pub cursor: i64,
}

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
    /// The routing rules whose condition failed on it (`rule: why`), shown by its trace.
    pub rule_errors: Vec<String>,
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

/// A committed message as a link (`inreplyto`) finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    pub id: String,
    pub sender: String,
    pub message_type: String,
    /// What it links to in turn.
    pub in_reply_to: Option<String>,
}

/// A recipient as the sender is told about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Addressee {
    pub id: String,
    pub role: String,
}

/// What a sender is told about a committed message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    pub sender: Option<crate::model::Sender>,
    pub body_sha256: String,
    pub code: &'static str,
    /// The pointers the refusal names (never values).
    pub pointers: String,
}

impl NewMessage {
    /// The audit record of what `accept` did with this message: `accepted` (with its
    /// recipients), or `duplicate` / `conflict` naming the message `id` sent before.
    pub fn audit_entry(&self, action: &str, id: &str) -> Entry {
        let mut entry = Entry::new(action).actor(self.sender.as_str()).message(id);
        entry.message_type = Some(self.message_type.to_string());
        entry.body_sha256 = Some(self.body_sha256.clone());
        if action == "accepted" {
            let to: Vec<&str> = self.deliveries.iter().map(|d| d.recipient.as_str()).collect();
            entry.recipient = Some(to.join(" "));
        }
        entry
    }
}

impl Refusal {
    /// The audit record of the refusal: its code, the hash of the body and the pointers named.
    pub fn audit_entry(&self) -> Entry {
        let mut entry = Entry::new("refused").code(self.code);
        entry.actor = self.sender.as_ref().map(|s| s.to_string());
        entry.body_sha256 = Some(self.body_sha256.clone());
        entry.detail = Some(self.pointers.clone()).filter(|p| !p.is_empty());
        entry
    }
}

/// Where a message went: each recipient, and each webhook attempt.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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
    /// The routing rules whose condition failed on it, and why: they did not apply.
    pub rule_errors: Vec<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TraceRecipient {
    pub id: String,
    pub role: String,
    pub rules: Vec<String>,
    /// What its copy lacks, and why (`state_secret`, `above_clearance`, `personal_data`):
    /// pointers and reasons, never what.
    pub removed: Vec<Removed>,
    pub webhooks: Vec<TraceAttempt>,
}

/// Where something was removed from a copy, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Removed {
    pub pointer: String,
    pub reason: String,
}

/// The removals a copy of an event lists (its `data.redactions`).
pub fn removed_of(event: &str) -> Vec<Removed> {
    serde_json::from_str::<serde_json::Value>(event)
        .ok()
        .and_then(|e| e.pointer("/data/redactions").cloned())
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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

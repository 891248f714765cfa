//! The durable store. The embedded store (SQLite, the default) and the shared store (Redis, for
//! several instances) implement the same traits and are checked by one contract suite.
//!
//! The promise behind `202 Accepted`: [`Messages::accept`] returns only once the message and its
//! outbox (every recipient's copy) are committed durably, so a crash or restart after it loses
//! nothing. Feeds read the outbox; webhook attempts are created from it and leased while being
//! sent, so every recipient gets every message at least once whatever crashes in between.
//!
//! One trait per concern, each in its file with its data types: [`Messages`], [`Feeds`],
//! [`Subscriptions`], [`WebhookQueue`], [`AuditLog`], [`Threads`], [`Sessions`], [`Counts`], [`RuleChanges`], [`Lifecycle`]. [`Store`] is
//! their sum; a caller takes the part it uses (`&dyn Feeds`), and one store object keeps what
//! must commit together together (a message, its outbox and its audit record). [`open`] is the
//! only place that chooses the backend.

pub mod audit;
pub mod counts;
pub mod error;
pub mod feeds;
pub mod lifecycle;
pub mod messages;
pub mod redis;
pub mod rule_changes;
pub mod sessions;
pub mod sqlite;
pub mod subscriptions;
pub mod threads;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

pub use audit::AuditLog;
pub use counts::{Count, Counts};
pub use error::StoreError;
pub use feeds::{FeedEntry, FeedPage, Feeds};
pub use lifecycle::Lifecycle;
pub use messages::{
    Accepted, Addressee, Linked, MessageQuery, MessageSummary, Messages, NewDelivery, NewMessage, Receipt, Refusal,
    Removed, Trace, TraceAttempt, TraceRecipient, removed_of,
};
pub use rule_changes::{NewRuleChange, RuleChange, RuleChanges};
pub use sessions::{SessionRow, Sessions};
pub use subscriptions::{SubscriptionRow, Subscriptions};
pub use threads::{
    DueObligation, Escalation, LogEntry, ObligationRow, OwedQuery, ReplyFigures, StepOutcome, StepRole,
    ThreadMessageRow, ThreadQuery, ThreadRow, ThreadStep, Threads,
};
pub use webhooks::{Attempt, AttemptOutcome, Backlog, DeadLetter, NewAttempt, NextLease, WebhookQueue, attempt_entry};

use crate::clock::Clock;
use crate::config::settings::{Backend, Settings};
use crate::telemetry::StoreMetrics;

/// Everything a store does: the sum of its concerns.
pub trait Store:
    Messages
    + Feeds
    + Subscriptions
    + WebhookQueue
    + AuditLog
    + Threads
    + Sessions
    + Counts
    + RuleChanges
    + Lifecycle
    + 'static
{
}

impl<T> Store for T where
    T: Messages
        + Feeds
        + Subscriptions
        + WebhookQueue
        + AuditLog
        + Threads
        + Sessions
        + Counts
        + RuleChanges
        + Lifecycle
        + 'static
{
}

/// Opens the configured store: the embedded one in `settings.data_dir`, or Redis. Its
/// timestamps (received times, audit records, attempts) come from `clock`.
pub async fn open(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    metrics: StoreMetrics,
) -> Result<Arc<dyn Store>, StoreError> {
    let audit = settings.audit.hash;
    Ok(match settings.store.backend {
        Backend::Embedded => {
            let options = sqlite::Options {
                audit,
                batch_max: settings.store.batch_max,
                busy_timeout: Duration::from_millis(settings.store.busy_timeout_ms),
            };
            Arc::new(sqlite::SqliteStore::open(&settings.data_dir, options, metrics, clock)?)
        }
        Backend::Redis => redis::RedisStore::open(&settings.store.redis, audit, clock).await?,
    })
}

/// Opens the configured store to read it only (`xietong audit verify`, which may run beside a
/// gateway): the embedded store's file read-only, with no writer; Redis without the watchers of
/// a serving instance. Writes fail with [`StoreError::Closed`].
pub async fn open_read_only(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match settings.store.backend {
        Backend::Embedded => Arc::new(sqlite::SqliteStore::open_read_only(&settings.data_dir, clock)?),
        Backend::Redis => redis::RedisStore::open_read_only(&settings.store.redis, settings.audit.hash, clock).await?,
    })
}

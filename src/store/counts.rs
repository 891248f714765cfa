//! Counts of messages by hour, outcome, type, sender and refusal code, kept as messages commit
//! (in the same transaction on SQLite, the same script on Redis), so that the console's overview
//! never scans the messages.

use async_trait::async_trait;

use super::error::StoreError;

/// The hour a unix-ms time falls in (unix hours).
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(3_600_000)
}

#[async_trait]
pub trait Counts: Send + Sync {
    /// Every count from hour `from_hour` (unix hours) on.
    async fn counts(&self, from_hour: i64) -> Result<Vec<Count>, StoreError>;
}

/// How many messages of one kind an hour saw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Count {
    /// Unix hours.
    pub hour: i64,
    /// `accepted`, `resent` (a duplicate) or `refused`.
    pub outcome: String,
    /// The message type (empty for a refusal before the type was known).
    #[serde(rename = "type")]
    pub message_type: String,
    pub sender: String,
    /// The refusal code (empty unless refused).
    pub code: String,
    pub n: i64,
}

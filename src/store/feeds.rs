//! Feeds: each recipient's copies in commit order, read after a cursor; the signal of new
//! commits that readers and workers wait on; retention.

use async_trait::async_trait;
use tokio::sync::watch;

use super::error::StoreError;

#[async_trait]
pub trait Feeds: Send + Sync {
    /// Changes whenever new messages are committed: feeds and workers wait on it.
    fn commits(&self) -> watch::Receiver<u64>;

    /// Up to `limit` entries of `recipient`'s feed after `after`, oldest first.
    async fn feed(&self, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError>;

    /// The newest feed position (0 when empty).
    async fn head(&self) -> Result<i64, StoreError>;

    /// Deletes feed entries (and finished webhook attempts) received before `before` (RFC 3339);
    /// returns how many entries went.
    async fn purge(&self, before: String) -> Result<usize, StoreError>;
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

//! Feeds: each recipient's copies of messages, in commit order, and their retention.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Savepoint, params};
use tokio::sync::watch;

use super::SqliteStore;
use super::writer::{Commit, ExecuteCached};
use crate::store::{FeedEntry, FeedPage, Feeds, StoreError};

#[async_trait]
impl Feeds for SqliteStore {
    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    async fn feed(&self, recipient: &str, after: i64, limit: usize) -> Result<FeedPage, StoreError> {
        let recipient = recipient.to_string();
        self.read(move |c| page(c, &recipient, after, limit)).await
    }

    async fn head(&self) -> Result<i64, StoreError> {
        self.read(head).await
    }

    async fn purge(&self, before: String) -> Result<usize, StoreError> {
        self.write(Commit::Synced, move |tx| purge(tx, &before)).await
    }
}

const PURGED_THROUGH: &str = "purged_through";

fn page(c: &Connection, recipient: &str, after: i64, limit: usize) -> rusqlite::Result<FeedPage> {
    let entries = c
        .prepare_cached(
            "SELECT d.message_seq, m.type, m.subject, coalesce(d.event, m.event) FROM deliveries d JOIN messages m ON m.seq = d.message_seq
             WHERE d.recipient = ?1 AND d.message_seq > ?2 ORDER BY d.message_seq LIMIT ?3",
        )?
        .query_map(params![recipient, after, limit as i64], |r| {
            Ok(FeedEntry { cursor: r.get(0)?, message_type: r.get(1)?, subject: r.get(2)?, event: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(FeedPage { entries, purged_through: purged_through(c)? })
}

/// The newest feed position (0 when empty).
pub fn head(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT coalesce(max(seq), 0) FROM messages", [], |r| r.get(0))
}

fn purged_through(c: &Connection) -> rusqlite::Result<i64> {
    Ok(c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([PURGED_THROUGH], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Deletes the feed entries of messages received before `before`, except those with webhook
/// attempts still pending, and the finished attempts with them.
fn purge(tx: &Savepoint<'_>, before: &str) -> rusqlite::Result<usize> {
    let through: i64 =
        tx.query_row("SELECT coalesce(max(seq), 0) FROM messages WHERE received_at < ?1", [before], |r| r.get(0))?;
    if through == 0 {
        return Ok(0);
    }
    let gone = tx.execute_cached(
        "DELETE FROM deliveries WHERE message_seq <= ?1
         AND NOT EXISTS (SELECT 1 FROM webhook_attempts a WHERE a.message_seq = deliveries.message_seq AND a.state = 'pending')",
        [through],
    )?;
    tx.execute_cached("DELETE FROM webhook_attempts WHERE message_seq <= ?1 AND state != 'pending'", [through])?;
    tx.execute_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        params![PURGED_THROUGH, through],
    )?;
    Ok(gone)
}

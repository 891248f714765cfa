//! Counts by hour in the embedded store: bumped in the transaction that commits (or refuses) a
//! message.

use async_trait::async_trait;
use rusqlite::{Savepoint, params};

use super::SqliteStore;
use super::writer::ExecuteCached;
use crate::store::counts::hour_of;
use crate::store::{Count, Counts, StoreError};

/// Adds one to a count.
pub fn bump(
    tx: &Savepoint<'_>,
    ms: i64,
    outcome: &str,
    message_type: &str,
    sender: &str,
    code: &str,
) -> rusqlite::Result<()> {
    tx.execute_cached(
        "INSERT INTO counts (hour, outcome, type, sender, code, n) VALUES (?1, ?2, ?3, ?4, ?5, 1)
         ON CONFLICT (hour, outcome, type, sender, code) DO UPDATE SET n = n + 1",
        params![hour_of(ms), outcome, message_type, sender, code],
    )?;
    Ok(())
}

#[async_trait]
impl Counts for SqliteStore {
    async fn counts(&self, from_hour: i64) -> Result<Vec<Count>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT hour, outcome, type, sender, code, n FROM counts WHERE hour >= ?1 ORDER BY hour")?
                .query_map([from_hour], |r| {
                    Ok(Count {
                        hour: r.get(0)?,
                        outcome: r.get(1)?,
                        message_type: r.get(2)?,
                        sender: r.get(3)?,
                        code: r.get(4)?,
                        n: r.get(5)?,
                    })
                })?
                .collect()
        })
        .await
    }
}

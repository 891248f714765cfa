//! The audit chain in SQLite: appended inside the transaction of what it records, so a record
//! exists exactly when the change it describes was committed.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::SqliteStore;
use super::writer::{Commit, ExecuteCached};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::Stored;
use crate::audit::{Algorithm, Entry, GENESIS, Record, link};
use crate::store::{AuditLog, StoreError};

#[async_trait]
impl AuditLog for SqliteStore {
    async fn audit(&self, entry: Entry) -> Result<(), StoreError> {
        let (alg, now) = (self.audit, self.now());
        self.write(Commit::Synced, move |tx| append(tx, alg, entry, &now)).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.read(head).await
    }

    async fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<Stored>, StoreError> {
        self.read(move |c| records(c, after, limit)).await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.read(checkpoints).await
    }

    async fn add_audit_checkpoint(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        self.write(Commit::Synced, move |tx| add_checkpoint(tx, &checkpoint)).await
    }
}

/// Appends `entry` after the current head.
pub fn append(tx: &Savepoint<'_>, alg: Algorithm, entry: Entry, now: &str) -> rusqlite::Result<()> {
    let (seq, prev) = head(tx)?.map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h));
    let record = Record { seq, at: now.to_string(), alg, entry }.canonical();
    let hash = link(alg, &prev, &record);
    tx.prepare_cached("INSERT INTO audit (seq, record, prev, hash) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![seq, record, prev, hash])?;
    Ok(())
}

/// The last record's sequence and hash.
pub fn head(c: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    c.prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Records after `after`, in order, at most `limit`.
fn records(c: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<Stored>> {
    c.prepare_cached("SELECT seq, record, prev, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2")?
        .query_map(params![after, limit as i64], |r| {
            Ok(Stored { seq: r.get(0)?, record: r.get(1)?, prev: r.get(2)?, hash: r.get(3)? })
        })?
        .collect()
}

fn checkpoints(c: &Connection) -> rusqlite::Result<Vec<Checkpoint>> {
    c.prepare_cached("SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq")?
        .query_map([], |r| {
            Ok(Checkpoint { seq: r.get(0)?, hash: r.get(1)?, at: r.get(2)?, key_id: r.get(3)?, signature: r.get(4)? })
        })?
        .collect()
}

fn add_checkpoint(tx: &Savepoint<'_>, c: &Checkpoint) -> rusqlite::Result<()> {
    tx.execute_cached(
        "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![c.seq, c.hash, c.at, c.key_id, c.signature],
    )?;
    Ok(())
}

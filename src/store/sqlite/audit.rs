//! The audit chain in SQLite: appended inside the transaction of what it records, so a record
//! exists exactly when the change it describes was committed.

use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::ExecuteCached;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::Stored;
use crate::audit::{Algorithm, Entry, GENESIS, Record, link};

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
pub fn records(c: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<Stored>> {
    c.prepare_cached("SELECT seq, record, prev, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2")?
        .query_map(params![after, limit as i64], |r| {
            Ok(Stored { seq: r.get(0)?, record: r.get(1)?, prev: r.get(2)?, hash: r.get(3)? })
        })?
        .collect()
}

pub fn checkpoints(c: &Connection) -> rusqlite::Result<Vec<Checkpoint>> {
    c.prepare_cached("SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq")?
        .query_map([], |r| {
            Ok(Checkpoint { seq: r.get(0)?, hash: r.get(1)?, at: r.get(2)?, key_id: r.get(3)?, signature: r.get(4)? })
        })?
        .collect()
}

pub fn add_checkpoint(tx: &Savepoint<'_>, c: &Checkpoint) -> rusqlite::Result<()> {
    tx.execute_cached(
        "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![c.seq, c.hash, c.at, c.key_id, c.signature],
    )?;
    Ok(())
}

/// Reads the whole chain of the store file at `path`, read-only, in pages (for
/// `xietong audit verify`, which may run while the gateway does).
pub fn read_all(
    path: &std::path::Path,
) -> rusqlite::Result<(Vec<Checkpoint>, impl Iterator<Item = Result<Stored, String>>)> {
    let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let checkpoints = checkpoints(&c)?;
    let mut after = 0;
    let mut page = Vec::new().into_iter();
    let mut done = false;
    let iter = std::iter::from_fn(move || {
        loop {
            if let Some(s) = page.next() {
                let s: Stored = s;
                after = s.seq;
                return Some(Ok(s));
            }
            if done {
                return None;
            }
            match records(&c, after, 1000) {
                Ok(next) => {
                    done = next.len() < 1000;
                    page = next.into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e.to_string()));
                }
            }
        }
    });
    Ok((checkpoints, iter))
}

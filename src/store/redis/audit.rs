//! The audit chain on Redis: a stream (`audit`, ids `seq-1`), its head (`audit:head`, `"seq
//! hash"`) and the signed checkpoints (`audit:cp`). Records are appended by the scripts of what
//! they record (see `scripts`), so a record exists exactly when its change does; webhook
//! outcomes and replays, whose changes are in another slot, are appended just before
//! (`webhooks`).

use redis::AsyncCommands;

use super::messages::{position, stream_fields};
use super::{RedisStore, unavailable};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::Stored;
use crate::audit::{Algorithm, Entry, GENESIS, Record, link};
use crate::store::StoreError;

/// The head as the scripts compare it: `"seq hash"`, empty for an empty chain.
pub async fn head_string(store: &RedisStore) -> Result<String, StoreError> {
    let head: Option<String> = store.conn().get(store.keys.key("audit:head")).await.map_err(unavailable)?;
    Ok(head.unwrap_or_default())
}

/// The record that follows `head` (`"seq hash"` or empty): its sequence, canonical JSON and hash.
pub fn record(alg: Algorithm, head: &str, entry: Entry) -> (i64, String, String) {
    let (seq, prev) = match head.split_once(' ') {
        Some((seq, hash)) => (seq.parse::<i64>().unwrap_or(0) + 1, hash.to_string()),
        None => (1, GENESIS.to_string()),
    };
    let canonical = Record { seq, at: super::now(), alg, entry }.canonical();
    let hash = link(alg, &prev, &canonical);
    (seq, canonical, hash)
}

pub async fn head(store: &RedisStore) -> Result<Option<(i64, String)>, StoreError> {
    let head = head_string(store).await?;
    Ok(head.split_once(' ').and_then(|(seq, hash)| Some((seq.parse().ok()?, hash.to_string()))))
}

pub async fn checkpoints(store: &RedisStore) -> Result<Vec<Checkpoint>, StoreError> {
    let all: std::collections::HashMap<i64, String> =
        store.conn().hgetall(store.keys.key("audit:cp")).await.map_err(unavailable)?;
    let mut list: Vec<Checkpoint> = all.values().filter_map(|json| serde_json::from_str(json).ok()).collect();
    list.sort_by_key(|c| c.seq);
    Ok(list)
}

pub async fn add_checkpoint(store: &RedisStore, c: &Checkpoint) -> Result<(), StoreError> {
    let json = serde_json::to_string(c).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let _: bool = store.conn().hset_nx(store.keys.key("audit:cp"), c.seq, json).await.map_err(unavailable)?;
    Ok(())
}

/// Records after `after`, in order, at most `limit` (for `xietong audit verify`).
pub async fn records(store: &RedisStore, after: i64, limit: usize) -> Result<Vec<Stored>, StoreError> {
    let reply: redis::streams::StreamRangeReply = store
        .conn()
        .xrange_count(store.keys.key("audit"), format!("({after}-1"), "+", limit)
        .await
        .map_err(unavailable)?;
    Ok(reply
        .ids
        .iter()
        .map(|e| {
            let f = stream_fields(&e.map);
            let get = |n: &str| f.get(n).cloned().unwrap_or_default();
            Stored { seq: position(&e.id), record: get("record"), prev: get("prev"), hash: get("hash") }
        })
        .collect())
}

impl RedisStore {
    /// The whole chain, read in pages, and the checkpoints (for `xietong audit verify`).
    pub async fn audit_chain(&self) -> Result<(Vec<Checkpoint>, Vec<Stored>), StoreError> {
        let mut all = Vec::new();
        loop {
            let page = records(self, all.last().map_or(0, |s: &Stored| s.seq), 1000).await?;
            let done = page.len() < 1000;
            all.extend(page);
            if done {
                return Ok((checkpoints(self).await?, all));
            }
        }
    }
}

//! The audit chain on Redis: a stream (`audit`, ids `seq-1`), its head (`audit:head`, `"seq
//! hash"`) and the signed checkpoints (`audit:cp`). Records are appended by the scripts of what
//! they record (see `scripts`), so a record exists exactly when its change does; webhook
//! outcomes and replays, whose changes are in another slot, are appended just before
//! (`webhooks`).

use async_trait::async_trait;
use redis::AsyncCommands;

use super::scripts;
use super::store::RedisStore;
use super::values::{position, stream_fields, unavailable};
use crate::audit::Entry;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::Stored;
use crate::store::{AuditLog, StoreError};

#[async_trait]
impl AuditLog for RedisStore {
    async fn audit(&self, entry: Entry) -> Result<(), StoreError> {
        self.audit_entry(entry).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let head: Option<String> = self.conn().get(self.keys.key("audit:head")).await.map_err(unavailable)?;
        Ok(head.unwrap_or_default().split_once(' ').and_then(|(seq, hash)| Some((seq.parse().ok()?, hash.to_string()))))
    }

    async fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<Stored>, StoreError> {
        records(self, after, limit).await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        checkpoints(self).await
    }

    async fn add_audit_checkpoint(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        add_checkpoint(self, &checkpoint).await
    }
}

impl RedisStore {
    /// Appends one record to the audit chain.
    pub(super) async fn audit_entry(&self, entry: Entry) -> Result<(), StoreError> {
        self.with_audit(&scripts::AUDIT, Some(entry), Vec::new(), |_| Some(())).await
    }

    /// Runs `script` with the audit record of `entry` appended (when there is one) and `args`
    /// after the audit arguments, in a group commit with the instance's other writes.
    pub(super) async fn with_audit<T>(
        &self,
        script: &'static redis::Script,
        entry: Option<Entry>,
        args: Vec<Vec<u8>>,
        answer: impl Fn(redis::Value) -> Option<T>,
    ) -> Result<T, StoreError> {
        let value = self.chain.write(script, entry, args).await?;
        answer(value).ok_or_else(|| StoreError::Unavailable("redis: an unexpected answer".into()))
    }
}

async fn checkpoints(store: &RedisStore) -> Result<Vec<Checkpoint>, StoreError> {
    let all: std::collections::HashMap<i64, String> =
        store.conn().hgetall(store.keys.key("audit:cp")).await.map_err(unavailable)?;
    let mut list: Vec<Checkpoint> = all.values().filter_map(|json| serde_json::from_str(json).ok()).collect();
    list.sort_by_key(|c| c.seq);
    Ok(list)
}

async fn add_checkpoint(store: &RedisStore, c: &Checkpoint) -> Result<(), StoreError> {
    let json = serde_json::to_string(c).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let _: bool = store.conn().hset_nx(store.keys.key("audit:cp"), c.seq, json).await.map_err(unavailable)?;
    Ok(())
}

/// Records after `after`, in order, at most `limit` (for `xietong audit verify`).
async fn records(store: &RedisStore, after: i64, limit: usize) -> Result<Vec<Stored>, StoreError> {
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

//! Counts by hour on Redis: `counts:HOUR` (unix hours), one field per outcome, type, sender and
//! code (tab-separated), kept eight days. A commit bumps its count in the accept script; a resend,
//! a conflict and a refusal right after their audit record.

use async_trait::async_trait;

use super::store::RedisStore;
use super::values::unavailable;
use crate::store::counts::hour_of;
use crate::store::{Count, Counts, StoreError};

/// How long an hour's counts are kept.
pub const KEPT_SECONDS: i64 = 8 * 24 * 3600;

/// The field of a count in its hour's hash.
pub fn field(outcome: &str, message_type: &str, sender: &str, code: &str) -> String {
    format!("{outcome}\t{message_type}\t{sender}\t{code}")
}

/// Adds one to a count.
pub async fn bump(
    store: &RedisStore,
    ms: i64,
    outcome: &str,
    message_type: &str,
    sender: &str,
    code: &str,
) -> Result<(), StoreError> {
    let key = store.keys.key(&format!("counts:{}", hour_of(ms)));
    redis::pipe()
        .hincr(&key, field(outcome, message_type, sender, code), 1)
        .ignore()
        .expire(&key, KEPT_SECONDS)
        .ignore()
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(unavailable)
}

#[async_trait]
impl Counts for RedisStore {
    async fn counts(&self, from_hour: i64) -> Result<Vec<Count>, StoreError> {
        let to_hour = hour_of(self.clock.now_ms()) + 1;
        let from_hour = from_hour.max(to_hour - KEPT_SECONDS / 3600);
        let mut p = redis::pipe();
        for hour in from_hour..=to_hour {
            p.hgetall(self.keys.key(&format!("counts:{hour}")));
        }
        let hours: Vec<Vec<(String, i64)>> = p.query_async(&mut self.conn()).await.map_err(unavailable)?;
        let mut out = Vec::new();
        for (hour, fields) in (from_hour..=to_hour).zip(hours) {
            for (f, n) in fields {
                let mut parts = f.splitn(4, '\t');
                let mut next = || parts.next().unwrap_or_default().to_string();
                let (outcome, message_type, sender, code) = (next(), next(), next(), next());
                out.push(Count { hour, outcome, message_type, sender, code, n });
            }
        }
        Ok(out)
    }
}

//! The reply figures on Redis (layout in `scripts::FIGURES`): counted by the thread worker's
//! scripts as obligations open, fall overdue and are answered; those stored before the figures
//! were kept are counted once, when a gateway of this version opens the store.

use std::collections::BTreeMap;

use redis::AsyncCommands;

use super::scripts::{self, run};
use super::store::RedisStore;
use super::values::{Fields, number, unavailable};
use crate::store::{ReplyFigures, StoreError};
use crate::threads::stats::{day_start, with_times};

/// How many obligations one `FILL_REPLY_FIGURES` counts (Redis runs nothing else meanwhile).
const FILL_BATCH: usize = 2000;

impl RedisStore {
    /// Counts the obligations stored before the reply figures were kept, if any are left: those
    /// up to the last obligation id when the first gateway of this version opened the store.
    pub(super) async fn fill_reply_figures(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let last: Option<i64> = conn.get(self.keys.key("o:next")).await.map_err(unavailable)?;
        let _: bool = conn.set_nx(self.keys.key("rf:start"), last.unwrap_or(0)).await.map_err(unavailable)?;
        loop {
            let left: i64 = run(self, &scripts::FILL_REPLY_FIGURES, &[scripts::bulk(FILL_BATCH.to_string())]).await?;
            if left <= 0 {
                return Ok(());
            }
        }
    }
}

/// The figures of the Beijing days `[first, end)` at `now_ms`, by agency.
pub async fn read(store: &RedisStore, first: i64, end: i64, now_ms: i64) -> Result<Vec<ReplyFigures>, StoreError> {
    let mut conn = store.conn();
    let days: Vec<String> =
        conn.zrangebyscore(store.keys.key("rf:days"), first, format!("({end}")).await.map_err(unavailable)?;
    let mut by_agency: BTreeMap<String, (ReplyFigures, Vec<i64>)> = BTreeMap::new();
    for chunk in days.chunks(100) {
        let mut p = redis::pipe();
        for day in chunk {
            p.hgetall(store.keys.key(&format!("rf:{day}")));
        }
        let hashes: Vec<Vec<(String, String)>> = p.query_async(&mut conn).await.map_err(unavailable)?;
        for (key, value) in hashes.iter().flatten() {
            let Some((agency, figure)) = key.split_once('\n') else { continue };
            let (f, times) = match by_agency.get_mut(agency) {
                Some(entry) => entry,
                None => by_agency.entry(agency.to_string()).or_insert_with(|| {
                    (ReplyFigures { agency: agency.to_string(), ..ReplyFigures::default() }, Vec::new())
                }),
            };
            let n = || value.parse::<i64>().map_or(0, |n| u64::try_from(n).unwrap_or(0));
            match figure {
                "received" => f.received += n(),
                "on_time" => f.on_time += n(),
                "late" => f.late += n(),
                "overdue" => f.overdue += n(),
                "times" => times.extend(value.split_ascii_whitespace().filter_map(|s| s.parse::<i64>().ok())),
                _ => {}
            }
        }
    }
    // Deadlines passed since the thread worker's last round: open, not marked overdue yet.
    let due: Vec<String> =
        conn.zrangebyscore(store.keys.key("o:due"), "-inf", format!("({now_ms}")).await.map_err(unavailable)?;
    let (from_ms, to_ms) = (day_start(first), day_start(end));
    for chunk in due.chunks(1000) {
        let mut p = redis::pipe();
        for id in chunk {
            p.hgetall(store.keys.key(&format!("o:{id}")));
        }
        let rows: Vec<Fields> = p.query_async(&mut conn).await.map_err(unavailable)?;
        for o in rows {
            let opened = number(&o, "opened_ms");
            let agency = o.get("awaiting").map(String::as_str).unwrap_or_default();
            let unmarked = o.get("state").is_some_and(|s| s == "open") && (from_ms..to_ms).contains(&opened);
            if let Some((f, _)) = by_agency.get_mut(agency).filter(|_| unmarked) {
                f.overdue += 1;
            }
        }
    }
    Ok(by_agency.into_values().map(|(f, times)| with_times(f, times)).collect())
}

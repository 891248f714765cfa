//! Rule changes on Redis: `rulechange:ID` hashes, ids from `rulechange:seq`, listed newest first
//! by `rulechanges` (a sorted set scored by id).

use async_trait::async_trait;
use redis::AsyncCommands;

use super::store::RedisStore;
use super::values::{Fields, field, unavailable};
use crate::store::{NewRuleChange, RuleChange, RuleChanges, StoreError};

fn key(store: &RedisStore, id: i64) -> String {
    store.keys.key(&format!("rulechange:{id}"))
}

fn change(id: i64, f: &Fields) -> RuleChange {
    RuleChange {
        id,
        at: field(f, "at").unwrap_or_default(),
        by: field(f, "by").unwrap_or_default(),
        reverts: field(f, "reverts").and_then(|r| r.parse().ok()),
        note: field(f, "note"),
        before: field(f, "before").unwrap_or_default(),
        after: field(f, "after").unwrap_or_default(),
    }
}

#[async_trait]
impl RuleChanges for RedisStore {
    async fn record_rule_change(&self, c: NewRuleChange) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let id: i64 = conn.incr(self.keys.key("rulechange:seq"), 1).await.map_err(unavailable)?;
        let mut fields = vec![("at", self.now()), ("by", c.by), ("before", c.before), ("after", c.after)];
        if let Some(r) = c.reverts {
            fields.push(("reverts", r.to_string()));
        }
        if let Some(n) = c.note {
            fields.push(("note", n));
        }
        redis::pipe()
            .atomic()
            .hset_multiple(key(self, id), &fields)
            .ignore()
            .zadd(self.keys.key("rulechanges"), id, id)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(id)
    }

    async fn rule_changes(&self, limit: usize) -> Result<Vec<RuleChange>, StoreError> {
        let mut conn = self.conn();
        let stop = limit.max(1) as isize - 1;
        let ids: Vec<i64> = conn.zrevrange(self.keys.key("rulechanges"), 0, stop).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let f: Fields = conn.hgetall(key(self, id)).await.map_err(unavailable)?;
            if !f.is_empty() {
                out.push(change(id, &f));
            }
        }
        Ok(out)
    }

    async fn rule_change(&self, id: i64) -> Result<Option<RuleChange>, StoreError> {
        let f: Fields = self.conn().hgetall(key(self, id)).await.map_err(unavailable)?;
        Ok((!f.is_empty()).then(|| change(id, &f)))
    }
}

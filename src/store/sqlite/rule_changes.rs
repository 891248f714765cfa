//! Rule changes in the embedded store: the `rule_changes` table.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::writer::{Commit, ExecuteCached};
use crate::store::{NewRuleChange, RuleChange, RuleChanges, StoreError};

const COLUMNS: &str = "id, at, by, reverts, note, before, after";

fn row(r: &Row<'_>) -> rusqlite::Result<RuleChange> {
    Ok(RuleChange {
        id: r.get(0)?,
        at: r.get(1)?,
        by: r.get(2)?,
        reverts: r.get(3)?,
        note: r.get(4)?,
        before: r.get(5)?,
        after: r.get(6)?,
    })
}

#[async_trait]
impl RuleChanges for SqliteStore {
    async fn record_rule_change(&self, c: NewRuleChange) -> Result<i64, StoreError> {
        let at = self.now();
        self.write(Commit::Synced, move |tx| {
            tx.execute_cached(
                "INSERT INTO rule_changes (at, by, reverts, note, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![at, c.by, c.reverts, c.note, c.before, c.after],
            )?;
            Ok(tx.last_insert_rowid())
        })
        .await
    }

    async fn rule_changes(&self, limit: usize) -> Result<Vec<RuleChange>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM rule_changes ORDER BY id DESC LIMIT ?1"))?
                .query_map(params![limit as i64], row)?
                .collect()
        })
        .await
    }

    async fn rule_change(&self, id: i64) -> Result<Option<RuleChange>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM rule_changes WHERE id = ?1"))?
                .query_row(params![id], row)
                .optional()
        })
        .await
    }
}

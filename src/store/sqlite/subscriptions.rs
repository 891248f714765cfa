//! Subscriptions: creation (from the head of the feed), the configured ones kept in step with
//! subscriptions.yaml, changes, cursors.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Savepoint, params};

use super::SqliteStore;
use super::feeds::head;
use super::writer::{Commit, ExecuteCached};
use crate::store::{StoreError, SubscriptionRow, Subscriptions};

#[async_trait]
impl Subscriptions for SqliteStore {
    async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, StoreError> {
        self.read(subscriptions).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, owner, spec, cursor, disabled, source, created_at FROM subscriptions WHERE id = ?1",
            )?
            .query_row([id], row)
            .optional()
        })
        .await
    }

    async fn create_subscription(&self, row: SubscriptionRow) -> Result<(), StoreError> {
        let id = row.id.clone();
        match self.write(Commit::Synced, move |tx| create_subscription(tx, &row)).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!("a subscription `{id}` exists"))),
        }
    }

    async fn sync_config_subscriptions(&self, rows: Vec<SubscriptionRow>) -> Result<(), StoreError> {
        self.write(Commit::Synced, move |tx| sync_config(tx, &rows)).await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(Commit::Synced, move |tx| delete_subscription(tx, &id)).await
    }

    async fn update_subscription(
        &self,
        id: &str,
        spec: Option<String>,
        disabled: Option<Option<String>>,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(Commit::Synced, move |tx| update_subscription(tx, &id, spec.as_deref(), disabled)).await
    }

    async fn acknowledge(&self, id: &str, cursor: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(Commit::Synced, move |tx| acknowledge(tx, &id, cursor)).await
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        id: r.get(0)?,
        owner: r.get(1)?,
        spec: r.get(2)?,
        cursor: r.get(3)?,
        disabled: r.get(4)?,
        source: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn subscriptions(c: &Connection) -> rusqlite::Result<Vec<SubscriptionRow>> {
    c.prepare_cached("SELECT id, owner, spec, cursor, disabled, source, created_at FROM subscriptions ORDER BY id")?
        .query_map([], row)?
        .collect()
}

/// Whether it was created (false: the id exists). A new subscription starts at the head of
/// its feed unless the row names a cursor.
fn create_subscription(tx: &Savepoint<'_>, s: &SubscriptionRow) -> rusqlite::Result<bool> {
    let cursor = if s.cursor < 0 { head(tx)? } else { s.cursor };
    let n = tx.execute_cached(
        "INSERT INTO subscriptions (id, owner, spec, cursor, disabled, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO NOTHING",
        params![s.id, s.owner, s.spec, cursor, s.disabled, s.source, s.created_at],
    )?;
    Ok(n == 1)
}

fn sync_config(tx: &Savepoint<'_>, rows: &[SubscriptionRow]) -> rusqlite::Result<()> {
    let existing: Vec<(String, String, String)> = tx
        .prepare_cached("SELECT id, owner, source FROM subscriptions")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, _, source) in &existing {
        if source == "config" && !rows.iter().any(|r| &r.id == id) {
            delete_subscription(tx, id)?;
        }
    }
    for r in rows {
        match existing.iter().find(|(id, _, _)| id == &r.id) {
            // The owner changed: it is another subscription.
            Some((_, owner, _)) if owner != &r.owner => {
                delete_subscription(tx, &r.id)?;
                create_subscription(tx, r)?;
            }
            Some(_) => {
                tx.execute_cached(
                    "UPDATE subscriptions SET spec = ?2, source = 'config' WHERE id = ?1",
                    params![r.id, r.spec],
                )?;
            }
            None => {
                create_subscription(tx, r)?;
            }
        }
    }
    Ok(())
}

fn delete_subscription(tx: &Savepoint<'_>, id: &str) -> rusqlite::Result<bool> {
    tx.execute_cached("DELETE FROM webhook_attempts WHERE subscription = ?1 AND state = 'pending'", [id])?;
    Ok(tx.execute_cached("DELETE FROM subscriptions WHERE id = ?1", [id])? == 1)
}

fn update_subscription(
    tx: &Savepoint<'_>,
    id: &str,
    spec: Option<&str>,
    disabled: Option<Option<String>>,
) -> rusqlite::Result<bool> {
    let mut n = 0;
    if let Some(spec) = spec {
        n += tx.execute_cached("UPDATE subscriptions SET spec = ?2 WHERE id = ?1", params![id, spec])?;
    }
    if let Some(disabled) = disabled {
        n += tx.execute_cached("UPDATE subscriptions SET disabled = ?2 WHERE id = ?1", params![id, disabled])?;
    }
    Ok(n > 0)
}

fn acknowledge(tx: &Savepoint<'_>, id: &str, cursor: i64) -> rusqlite::Result<bool> {
    let n =
        tx.execute_cached("UPDATE subscriptions SET cursor = max(cursor, ?2) WHERE id = ?1", params![id, cursor])?;
    Ok(n == 1)
}

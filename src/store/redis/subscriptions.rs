//! Subscriptions on Redis: `subs` (their ids) and `sub:ID` (owner, spec, cursor, disabled,
//! source); a subscription's delivery queue is emptied when it is created or deleted.

use async_trait::async_trait;
use redis::AsyncCommands;

use super::scripts::{self, bulk, run};
use super::store::RedisStore;
use super::values::{Fields, field, number, unavailable};
use crate::store::{StoreError, SubscriptionRow, Subscriptions};

#[async_trait]
impl Subscriptions for RedisStore {
    async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, StoreError> {
        subscriptions(self).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRow>, StoreError> {
        let f: Fields = self.conn().hgetall(self.keys.key(&format!("sub:{id}"))).await.map_err(unavailable)?;
        Ok((!f.is_empty()).then(|| row(id.to_string(), &f)))
    }

    async fn create_subscription(&self, row: SubscriptionRow) -> Result<(), StoreError> {
        match create_subscription(self, &row).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!("a subscription `{}` exists", row.id))),
        }
    }

    async fn sync_config_subscriptions(&self, rows: Vec<SubscriptionRow>) -> Result<(), StoreError> {
        if let Ok(mut c) = self.configured.lock() {
            *c = Some(rows.clone());
        }
        sync_config(self, rows).await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        delete_subscription(self, id).await
    }

    async fn update_subscription(
        &self,
        id: &str,
        spec: Option<String>,
        disabled: Option<Option<String>>,
    ) -> Result<bool, StoreError> {
        update_subscription(self, id, spec, disabled).await
    }

    async fn acknowledge(&self, id: &str, cursor: i64) -> Result<bool, StoreError> {
        let n: i64 = run(self, &scripts::ACKNOWLEDGE, &[bulk(id), bulk(cursor.to_string())]).await?;
        Ok(n == 1)
    }
}

pub async fn subscriptions(store: &RedisStore) -> Result<Vec<SubscriptionRow>, StoreError> {
    let mut conn = store.conn();
    let mut ids: Vec<String> = conn.smembers(store.keys.key("subs")).await.map_err(unavailable)?;
    ids.sort();
    let mut p = redis::pipe();
    for id in &ids {
        p.hgetall(store.keys.key(&format!("sub:{id}")));
    }
    let rows: Vec<Fields> =
        if ids.is_empty() { Vec::new() } else { p.query_async(&mut conn).await.map_err(unavailable)? };
    Ok(ids.into_iter().zip(rows).filter(|(_, f)| !f.is_empty()).map(|(id, f)| row(id, &f)).collect())
}

async fn create_subscription(store: &RedisStore, s: &SubscriptionRow) -> Result<bool, StoreError> {
    let n: i64 = run(
        store,
        &scripts::CREATE_SUBSCRIPTION,
        &[
            bulk(&s.id),
            bulk(&s.owner),
            bulk(&s.spec),
            bulk(s.cursor.to_string()),
            bulk(s.disabled.as_deref().unwrap_or_default()),
            bulk(&s.source),
            bulk(&s.created_at),
        ],
    )
    .await?;
    // A new subscription starts with an empty queue, whatever an earlier one of its id left.
    if n == 1 {
        store.queue(&s.id).wipe(store).await?;
    }
    Ok(n == 1)
}

async fn delete_subscription(store: &RedisStore, id: &str) -> Result<bool, StoreError> {
    let n: i64 = run(store, &scripts::DELETE_SUBSCRIPTION, &[bulk(id)]).await?;
    store.queue(id).wipe(store).await?;
    Ok(n == 1)
}

/// Makes the config subscriptions exactly `rows` (API ones are kept).
pub async fn sync_config(store: &RedisStore, rows: Vec<SubscriptionRow>) -> Result<(), StoreError> {
    let existing = subscriptions(store).await?;
    for e in &existing {
        if e.source == "config" && !rows.iter().any(|r| r.id == e.id) {
            delete_subscription(store, &e.id).await?;
        }
    }
    for r in &rows {
        match existing.iter().find(|e| e.id == r.id) {
            // The owner changed: it is another subscription.
            Some(e) if e.owner != r.owner => {
                delete_subscription(store, &r.id).await?;
                create_subscription(store, r).await?;
            }
            Some(_) => {
                let () = store
                    .conn()
                    .hset_multiple(
                        store.keys.key(&format!("sub:{}", r.id)),
                        &[("spec", &r.spec), ("source", &"config".to_string())],
                    )
                    .await
                    .map_err(unavailable)?;
            }
            None => {
                create_subscription(store, r).await?;
            }
        }
    }
    Ok(())
}

async fn update_subscription(
    store: &RedisStore,
    id: &str,
    spec: Option<String>,
    disabled: Option<Option<String>>,
) -> Result<bool, StoreError> {
    let key = store.keys.key(&format!("sub:{id}"));
    let mut conn = store.conn();
    let exists: bool = conn.exists(&key).await.map_err(unavailable)?;
    if !exists {
        return Ok(false);
    }
    let mut p = redis::pipe();
    if let Some(spec) = spec {
        p.hset(&key, "spec", spec).ignore();
    }
    match disabled {
        Some(Some(why)) => {
            p.hset(&key, "disabled", why).ignore();
        }
        Some(None) => {
            p.hdel(&key, "disabled").ignore();
        }
        None => {}
    }
    let () = p.query_async(&mut conn).await.map_err(unavailable)?;
    Ok(true)
}

/// A subscription from its hash.
fn row(id: String, f: &Fields) -> SubscriptionRow {
    SubscriptionRow {
        id,
        owner: field(f, "owner").unwrap_or_default(),
        spec: field(f, "spec").unwrap_or_default(),
        cursor: number(f, "cursor"),
        disabled: field(f, "disabled"),
        source: field(f, "source").unwrap_or_default(),
        created_at: field(f, "created_at").unwrap_or_default(),
    }
}

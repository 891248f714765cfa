//! Console sessions on Redis: `session:ID_SHA256` (operator, role, csrf, expires), expiring with
//! the session, so every instance knows every session.

use async_trait::async_trait;
use redis::AsyncCommands;

use super::store::RedisStore;
use super::values::{Fields, field, number, unavailable};
use crate::store::{SessionRow, Sessions, StoreError};

fn key(store: &RedisStore, id: &str) -> String {
    store.keys.key(&format!("session:{id}"))
}

#[async_trait]
impl Sessions for RedisStore {
    async fn create_session(&self, s: SessionRow) -> Result<(), StoreError> {
        let k = key(self, &s.id_sha256);
        let fields = [
            ("operator", s.operator.clone()),
            ("role", s.role.clone()),
            ("csrf", s.csrf.clone()),
            ("expires", s.expires_ms.to_string()),
        ];
        redis::pipe()
            .atomic()
            .hset_multiple(&k, &fields)
            .ignore()
            .pexpire_at(&k, s.expires_ms)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    async fn session(&self, id_sha256: &str, now_ms: i64) -> Result<Option<SessionRow>, StoreError> {
        let f: Fields = self.conn().hgetall(key(self, id_sha256)).await.map_err(unavailable)?;
        let expires_ms = number(&f, "expires");
        if f.is_empty() || expires_ms < now_ms {
            return Ok(None);
        }
        Ok(Some(SessionRow {
            id_sha256: id_sha256.to_string(),
            operator: field(&f, "operator").unwrap_or_default(),
            role: field(&f, "role").unwrap_or_default(),
            csrf: field(&f, "csrf").unwrap_or_default(),
            expires_ms,
        }))
    }

    async fn touch_session(&self, id_sha256: &str, expires_ms: i64) -> Result<(), StoreError> {
        let k = key(self, id_sha256);
        redis::pipe()
            .atomic()
            .hset(&k, "expires", expires_ms.to_string())
            .ignore()
            .pexpire_at(&k, expires_ms)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    async fn end_session(&self, id_sha256: &str) -> Result<(), StoreError> {
        self.conn().del::<_, ()>(key(self, id_sha256)).await.map_err(unavailable)
    }
}

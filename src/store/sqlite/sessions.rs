//! Console sessions in the embedded store; expired ones are deleted as new ones are made.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::writer::{Commit, ExecuteCached};
use crate::store::{SessionRow, Sessions, StoreError};

#[async_trait]
impl Sessions for SqliteStore {
    async fn create_session(&self, s: SessionRow) -> Result<(), StoreError> {
        self.write(Commit::Synced, move |tx| {
            tx.execute_cached(
                "DELETE FROM sessions WHERE expires_ms < ?1",
                params![s.expires_ms - 7 * 24 * 3600 * 1000],
            )?;
            tx.execute_cached(
                "INSERT INTO sessions (id_sha256, operator, role, csrf, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.id_sha256, s.operator, s.role, s.csrf, s.expires_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id_sha256: &str, now_ms: i64) -> Result<Option<SessionRow>, StoreError> {
        let id = id_sha256.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id_sha256, operator, role, csrf, expires_ms FROM sessions WHERE id_sha256 = ?1 AND expires_ms >= ?2",
            )?
            .query_row(params![id, now_ms], |r| {
                Ok(SessionRow {
                    id_sha256: r.get(0)?,
                    operator: r.get(1)?,
                    role: r.get(2)?,
                    csrf: r.get(3)?,
                    expires_ms: r.get(4)?,
                })
            })
            .optional()
        })
        .await
    }

    async fn touch_session(&self, id_sha256: &str, expires_ms: i64) -> Result<(), StoreError> {
        let id = id_sha256.to_string();
        self.write(Commit::Synced, move |tx| {
            tx.execute_cached("UPDATE sessions SET expires_ms = ?2 WHERE id_sha256 = ?1", params![id, expires_ms])?;
            Ok(())
        })
        .await
    }

    async fn end_session(&self, id_sha256: &str) -> Result<(), StoreError> {
        let id = id_sha256.to_string();
        self.write(Commit::Synced, move |tx| {
            tx.execute_cached("DELETE FROM sessions WHERE id_sha256 = ?1", params![id])?;
            Ok(())
        })
        .await
    }
}

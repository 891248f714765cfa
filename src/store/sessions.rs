//! Console sessions: who signed in, with what role, the token that protects their forms
//! (CSRF), and until when. The store keeps only the SHA-256 of a session's id, so reading it
//! reveals no live session; every instance sharing the store knows every session.

use async_trait::async_trait;

use super::error::StoreError;

#[async_trait]
pub trait Sessions: Send + Sync {
    /// Keeps a new session.
    async fn create_session(&self, session: SessionRow) -> Result<(), StoreError>;

    /// The session whose id hashes to `id_sha256`, unless it expired before `now_ms`.
    async fn session(&self, id_sha256: &str, now_ms: i64) -> Result<Option<SessionRow>, StoreError>;

    /// Moves a session's expiry (sliding idle time).
    async fn touch_session(&self, id_sha256: &str, expires_ms: i64) -> Result<(), StoreError>;

    /// Ends a session (sign-out).
    async fn end_session(&self, id_sha256: &str) -> Result<(), StoreError>;
}

/// A console session as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 (hex) of the session id the cookie carries.
    pub id_sha256: String,
    pub operator: String,
    /// `viewer` or `operator`.
    pub role: String,
    /// The token every state-changing request must carry.
    pub csrf: String,
    /// Unix ms after which the session is over unless touched.
    pub expires_ms: i64,
}

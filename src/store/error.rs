//! How a store operation fails.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot commit now (locked, disk full, I/O error); the caller may retry.
    #[error("the store cannot commit: {0}")]
    Unavailable(String),
    /// The store has been shut down.
    #[error("the store is closed")]
    Closed,
    /// A write would break a uniqueness rule (an id that exists).
    #[error("{0}")]
    Conflict(String),
}

//! Subscriptions: a recipient's standing orders on its own feed, from `subscriptions.yaml`
//! (`config`) or the API (`api`), with their cursors.

use async_trait::async_trait;

use super::error::StoreError;

#[async_trait]
pub trait Subscriptions: Send + Sync {
    async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, StoreError>;

    /// One subscription, as it is now.
    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRow>, StoreError>;

    /// Creates a subscription; `Conflict` if its id exists.
    async fn create_subscription(&self, row: SubscriptionRow) -> Result<(), StoreError>;

    /// Makes the config subscriptions exactly `rows`: new ones are created (from the head of
    /// their feed), changed specs updated, those no longer listed deleted. API ones are kept.
    async fn sync_config_subscriptions(&self, rows: Vec<SubscriptionRow>) -> Result<(), StoreError>;

    /// Deletes a subscription and its pending attempts; whether it existed.
    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError>;

    /// Sets a subscription's spec (e.g. rotated secrets) or its disabled state.
    async fn update_subscription(
        &self,
        id: &str,
        spec: Option<String>,
        disabled: Option<Option<String>>,
    ) -> Result<bool, StoreError>;

    /// Moves a cursor subscription's acknowledged position forward (never back).
    async fn acknowledge(&self, id: &str, cursor: i64) -> Result<bool, StoreError>;
}

/// A subscription as stored; its `spec` (filter and target) is the delivery module's JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub id: String,
    /// The recipient whose feed it reads.
    pub owner: String,
    pub spec: String,
    /// Webhook: the feed position up to which attempts were created. Cursor subscriptions: the
    /// position acknowledged.
    pub cursor: i64,
    /// Why it is disabled (its endpoint answered 410 Gone), when it is.
    pub disabled: Option<String>,
    /// `config` (from subscriptions.yaml) or `api`.
    pub source: String,
    pub created_at: String,
}

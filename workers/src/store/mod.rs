//! The database's ports, one per use: `Models`, `TrainingPoints`, `LiveStates`, `Alerts` and
//! `Webhooks` (`ModelStore` is all of them). sea-orm already speaks both dialects, so there is one
//! implementation (`sql`, a file per table) that runs on SQLite (embedded default) and PostgreSQL;
//! the contract suite runs against both.

mod sql;

#[cfg(test)]
pub(crate) mod contract;

use async_trait::async_trait;

use crate::cause::Cause;
use crate::detector::{AlertOptions, DetectorParams};
use crate::domain::{Point, SeriesId, Version};
use crate::events::Scored;
use crate::live::LiveState;
use crate::model::TrainedModel;

pub use sql::SqlStore;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] Cause),
    #[error("stored data is corrupt: {0}")]
    Corrupt(#[source] Cause),
}

/// A model about to be stored; the store assigns its version.
#[derive(Debug, Clone)]
pub struct NewModel {
    pub series_id: SeriesId,
    pub detector: DetectorParams,
    pub alerts: AlertOptions,
    pub points_used: u32,
    pub created_at_ms: i64,
}

/// Which stored alerts to read: of one series or all, newest first or oldest first from a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertQuery {
    pub series: Option<SeriesId>,
    pub order: AlertOrder,
    /// Only alerts raised at or after this time (milliseconds since the epoch).
    pub since_ms: Option<i64>,
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlertOrder {
    /// Newest first, older than the cursor when given (paging back through history).
    NewestBefore(Option<uuid::Uuid>),
    /// Oldest first, newer than the cursor (replaying what a subscriber missed).
    OldestAfter(uuid::Uuid),
}

/// A registered webhook endpoint (Standard Webhooks): where alerts are POSTed, signed with
/// `secret` (`whsec_<base64 of the key>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    pub id: uuid::Uuid,
    pub url: String,
    pub secret: String,
    pub created_at_ms: i64,
}

/// One message to one endpoint and every attempt to deliver it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// The message id (UUIDv7), sent as `webhook-id` with every attempt.
    pub id: uuid::Uuid,
    pub webhook_id: uuid::Uuid,
    pub created_at_ms: i64,
    /// Whether an attempt was answered 2xx.
    pub delivered: bool,
    /// The JSON body.
    pub payload: String,
    pub attempts: Vec<Attempt>,
}

/// One delivery attempt: its HTTP status, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    pub at_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// The `model` table: versions of each series' model.
#[async_trait]
pub trait Models: Send + Sync + 'static {
    /// Stores a model as the series' next version (`v1` for a new series).
    async fn create_model(&self, model: NewModel) -> Result<TrainedModel, StoreError>;

    /// Stores a model as the series' next version together with its training points, in one
    /// transaction: when this returns, both are durable (the embedded deployment's `fit`).
    async fn create_model_with_points(
        &self,
        model: NewModel,
        points: &[Point],
    ) -> Result<TrainedModel, StoreError>;

    /// Whether the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// How many series have at least one model.
    async fn count_series(&self) -> Result<u64, StoreError>;

    /// Removes a model version (used when its training data could not be handed to the bus).
    async fn delete_model(&self, series: &SeriesId, version: Version) -> Result<(), StoreError>;

    /// The newest version of a series.
    async fn latest_model(&self, series: &SeriesId) -> Result<Option<TrainedModel>, StoreError>;

    /// Every version of each of `series` (for batched loading), by series then version.
    async fn models_for(&self, series: &[SeriesId]) -> Result<Vec<TrainedModel>, StoreError>;

    /// Series ids in order, after `after`, at most `limit` of them (cursor pagination).
    async fn list_series(
        &self,
        after: Option<&SeriesId>,
        limit: u64,
    ) -> Result<Vec<SeriesId>, StoreError>;
}

/// What each model version was trained on.
#[async_trait]
pub trait TrainingPoints: Send + Sync + 'static {
    /// Saves training points of a version, the first at position `first_seq` of its training
    /// set (0 for the whole set). Saving the same batch again adds nothing; returns how many rows
    /// were new.
    async fn save_training_points(
        &self,
        series: &SeriesId,
        version: Version,
        first_seq: u32,
        points: &[Point],
    ) -> Result<u64, StoreError>;

    /// The training points of each `(series, version)` in `keys`, in one round trip; keys
    /// without data are left out.
    async fn training_points_for(
        &self,
        keys: &[(SeriesId, Version)],
    ) -> Result<Vec<((SeriesId, Version), Vec<Point>)>, StoreError>;

    /// A version's training points in their original order.
    async fn training_points(
        &self,
        series: &SeriesId,
        version: Version,
    ) -> Result<Vec<Point>, StoreError>;
}

/// Checkpoints of each version's online learning state.
#[async_trait]
pub trait LiveStates: Send + Sync + 'static {
    /// Saves a checkpoint of a version's online state, unless a later one (more points seen) is
    /// already saved.
    async fn save_state(
        &self,
        series: &SeriesId,
        version: Version,
        state: &LiveState,
    ) -> Result<(), StoreError>;

    /// The latest checkpoint of a version's online state.
    async fn load_state(
        &self,
        series: &SeriesId,
        version: Version,
    ) -> Result<Option<LiveState>, StoreError>;
}

/// Every alert raised, once.
#[async_trait]
pub trait Alerts: Send + Sync + 'static {
    /// Stores an alert once: saving the same event again (a redelivery) adds nothing. Returns
    /// whether it was new.
    async fn save_alert(&self, alert: &Scored) -> Result<bool, StoreError>;

    /// Stored alerts as `query` asks.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Scored>, StoreError>;
}

/// Registered webhook endpoints and their deliveries.
#[async_trait]
pub trait Webhooks: Send + Sync + 'static {
    /// Registers a webhook endpoint.
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;

    /// Every registered endpoint, oldest first.
    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;

    /// Removes an endpoint and its delivery log; whether it existed.
    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<bool, StoreError>;

    /// Stores a new delivery unless one with its id is stored (a redelivered alert); whether it
    /// was new.
    async fn create_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError>;

    /// Stores a delivery as it is now (its attempts so far).
    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;

    /// Deliveries not delivered yet, oldest first, at most `limit` (to resume after a restart).
    async fn undelivered(&self, limit: u64) -> Result<Vec<Delivery>, StoreError>;

    /// An endpoint's deliveries, newest first, at most `limit`.
    async fn deliveries(
        &self,
        webhook: uuid::Uuid,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// One delivery.
    async fn delivery(&self, id: uuid::Uuid) -> Result<Option<Delivery>, StoreError>;
}

/// Everything the database keeps, as one connection to it serves it (`SqlStore`). A caller
/// that needs only part of it takes that port (`Arc<dyn Alerts>`, ...): an `Arc<dyn ModelStore>`
/// coerces to any of them.
pub trait ModelStore: Models + TrainingPoints + LiveStates + Alerts + Webhooks {}

impl<T: Models + TrainingPoints + LiveStates + Alerts + Webhooks> ModelStore for T {}

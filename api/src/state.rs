//! What the gateway's handlers share: the trainer and predictor (in-process or remote), and the
//! stores it reads directly for plots and health.

use std::sync::Arc;

use anomaly_workers::fanout::LiveFeed;
use anomaly_workers::metrics::MetricsStore;
use anomaly_workers::predictor::Scoring;
use anomaly_workers::store::ModelStore;
use anomaly_workers::trainer::Training;

#[derive(Clone)]
pub struct AppState {
    pub training: Arc<dyn Training>,
    pub scoring: Arc<dyn Scoring>,
    pub store: Arc<dyn ModelStore>,
    pub metrics: Arc<dyn MetricsStore>,
    /// Live predictions and anomalies (GraphQL subscriptions): one follower per topic, shared.
    pub feed: LiveFeed,
}

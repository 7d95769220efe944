//! What the gateway's handlers share: the process's settings, the trainer and predictor
//! (in-process or remote), and the stores it reads directly for plots and health. Behind one
//! `Arc`: axum clones the state for every request, so a clone is one reference count, not one per
//! service.

use std::ops::Deref;
use std::sync::Arc;

use anomaly_workers::fanout::LiveFeed;
use anomaly_workers::predictor::Scoring;
use anomaly_workers::stats::StatsStore;
use anomaly_workers::store::ModelStore;
use anomaly_workers::trainer::Training;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    /// The settings, parsed once at start: handlers read their limits here.
    pub config: Arc<Config>,
    pub training: Arc<dyn Training>,
    pub scoring: Arc<dyn Scoring>,
    pub store: Arc<dyn ModelStore>,
    pub stats: Arc<dyn StatsStore>,
    /// Live predictions and anomalies (GraphQL subscriptions): one follower per topic, shared.
    pub feed: LiveFeed,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

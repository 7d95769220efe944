//! A trained model as the rest of the platform sees it: what the trainer stores and announces on
//! the `models` topic, and what the predictor caches.

use serde::{Deserialize, Serialize};

use crate::detector::{AlertOptions, DetectorParams};
use crate::domain::{SeriesId, Version};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    pub series_id: SeriesId,
    pub version: Version,
    pub detector: DetectorParams,
    /// How verdicts become anomaly events.
    pub alerts: AlertOptions,
    pub points_used: u32,
    /// Unix time in milliseconds.
    pub created_at_ms: i64,
}

/// What the store keeps in a model's `parameters` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredParameters {
    pub detector: DetectorParams,
    #[serde(default)]
    pub alerts: AlertOptions,
}

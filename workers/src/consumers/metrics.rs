//! The metrics consumer's write: metrics, batches of predictions and heartbeats into the metrics
//! store.

use std::sync::Arc;

use async_trait::async_trait;

use super::{HandleError, Handler};
use crate::events::Event;
use crate::stats::StatsStore;

pub struct StatsWriter {
    metrics: Arc<dyn StatsStore>,
}

impl StatsWriter {
    pub fn new(metrics: Arc<dyn StatsStore>) -> Self {
        Self { metrics }
    }
}

#[async_trait]
impl Handler for StatsWriter {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let written = match event {
            Event::Metric(metric) => self.metrics.record(metric).await,
            Event::Inferences(batch) => self.metrics.record_inferences(batch).await,
            Event::Heartbeat(heartbeat) => self.metrics.record_heartbeat(heartbeat).await,
            other => {
                return Err(HandleError::Poison(format!(
                    "expected a metric or heartbeat, got {other:?}"
                )));
            }
        };
        written.map_err(|e| HandleError::Transient(crate::cause::Cause::new(e)))
    }
}

//! The training-data consumer's write: a model version's points into the database, idempotently.

use std::sync::Arc;

use async_trait::async_trait;

use super::{HandleError, Handler};
use crate::events::Event;
use crate::store::TrainingPoints;

pub struct TrainingDataWriter {
    store: Arc<dyn TrainingPoints>,
}

impl TrainingDataWriter {
    pub fn new(store: Arc<dyn TrainingPoints>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Handler for TrainingDataWriter {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Event::TrainingData(data) = event else {
            return Err(HandleError::Poison(format!(
                "expected training data, got {event:?}"
            )));
        };
        let inserted = self
            .store
            .save_training_points(&data.series_id, data.version, data.first_seq, &data.points)
            .await
            .map_err(|e| HandleError::Transient(crate::cause::Cause::new(e)))?;
        ::metrics::counter!("anomaly_training_points_written_total").increment(inserted);
        tracing::debug!(series = %data.series_id, version = %data.version, inserted, "training data stored");
        Ok(())
    }
}

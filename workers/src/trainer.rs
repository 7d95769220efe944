//! The trainer role: fits a detector on a series' training points, stores the model as the
//! series' next version, and announces it (the model for the predictors' caches, a metric for
//! health). Its training points become durable before `fit` answers, one of two ways: in the
//! distributed deployment they are published to Kafka (acknowledged by the brokers; the
//! training-data consumer writes them to the database), in the embedded one they are written in
//! the model's own transaction (an in-process queue is not durable).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bus::{BusError, EventBus};
use crate::detector::ModelSpec;
use crate::domain::{InvalidInput, SeriesId, TrainingSet, Version};
use crate::events::{Event, Metric, MetricKind, TrainingData, now_ms};
use crate::store::{ModelStore, NewModel, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitOutcome {
    pub series_id: SeriesId,
    pub version: Version,
    pub points_used: u32,
    pub detector: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A remote trainer could not be reached or answered nonsense.
    #[error("the trainer is unreachable: {0}")]
    Unreachable(#[source] crate::cause::Cause),
}

/// What the gateway needs from a trainer: an in-process `Trainer` in `serve`, an HTTP client in
/// the distributed deployment.
#[async_trait]
pub trait Training: Send + Sync + 'static {
    async fn fit(
        &self,
        series: SeriesId,
        training: TrainingSet,
        spec: ModelSpec,
    ) -> Result<FitOutcome, TrainError>;
}

pub struct Trainer {
    store: Arc<dyn ModelStore>,
    bus: Arc<dyn EventBus>,
    points: PointsGo,
}

/// Where a fit's training points go before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PointsGo {
    /// Onto the bus (durable when the bus is: Kafka).
    ToTheBus,
    /// Into the database with the model, in one transaction.
    WithTheModel,
}

impl Trainer {
    /// A trainer that publishes training points on `bus` (durable there: Kafka).
    pub fn new(store: Arc<dyn ModelStore>, bus: Arc<dyn EventBus>) -> Self {
        Self {
            store,
            bus,
            points: PointsGo::ToTheBus,
        }
    }

    /// A trainer that stores training points with the model in one transaction, for a bus that
    /// does not keep what it holds (the in-process one).
    pub fn storing_points(store: Arc<dyn ModelStore>, bus: Arc<dyn EventBus>) -> Self {
        Self {
            store,
            bus,
            points: PointsGo::WithTheModel,
        }
    }
}

/// Points per published training-data chunk: about 300 KB of JSON at most, well under Kafka's
/// default 1 MB message limit, so a fit as large as the body limit allows crosses any broker.
pub const POINTS_PER_CHUNK: usize = 5_000;

impl Trainer {
    /// Publishes `training` as chunks of `POINTS_PER_CHUNK`, each acknowledged before the next.
    async fn publish_points(
        &self,
        series: &SeriesId,
        version: Version,
        training: TrainingSet,
    ) -> Result<(), BusError> {
        let points = training.into_points();
        for (index, chunk) in points.chunks(POINTS_PER_CHUNK).enumerate() {
            let first_seq = u32::try_from(index * POINTS_PER_CHUNK).unwrap_or(u32::MAX);
            self.bus
                .publish(Event::TrainingData(TrainingData {
                    series_id: series.clone(),
                    version,
                    first_seq,
                    points: chunk.to_vec(),
                }))
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Training for Trainer {
    #[tracing::instrument(skip_all, fields(series = %series))]
    async fn fit(
        &self,
        series: SeriesId,
        training: TrainingSet,
        spec: ModelSpec,
    ) -> Result<FitOutcome, TrainError> {
        let started = Instant::now();
        let detector = spec.detector.fit(&training)?;
        let points_used = u32::try_from(training.len()).unwrap_or(u32::MAX);
        let new = NewModel {
            series_id: series.clone(),
            detector,
            alerts: spec.alerts,
            points_used,
            created_at_ms: now_ms(),
        };
        let model = match self.points {
            PointsGo::WithTheModel => {
                let model = self
                    .store
                    .create_model_with_points(new, training.points())
                    .await?;
                ::metrics::counter!("anomaly_training_points_written_total")
                    .increment(training.len() as u64);
                model
            }
            PointsGo::ToTheBus => {
                let model = self.store.create_model(new).await?;
                // `fit` answers only once all its training data is safe on the bus; without it
                // the version would be a model nobody can plot, so it is taken back (its number
                // is never reused, even if some chunks were published).
                if let Err(err) = self.publish_points(&series, model.version, training).await {
                    if let Err(undo) = self.store.delete_model(&series, model.version).await {
                        tracing::error!(error = %undo, version = %model.version, "could not remove a model whose training data was not published");
                    }
                    return Err(err.into());
                }
                model
            }
        };
        ::metrics::counter!("anomaly_fits_total").increment(1);
        let outcome = FitOutcome {
            series_id: series.clone(),
            version: model.version,
            points_used,
            detector: model.detector.name().to_owned(),
        };
        if let Err(err) = self.bus.publish(Event::Model(model)).await {
            // The model and its data are stored; predictors that miss the announcement load the
            // model from the database when they first need it.
            tracing::warn!(error = %err, "model announcement not published");
        }
        let metric = Event::Metric(Metric {
            id: Uuid::new_v4(),
            kind: MetricKind::Training,
            series_id: series,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            at_ms: now_ms(),
        });
        if let Err(err) = self.bus.emit(metric) {
            tracing::warn!(error = %err, "training metric dropped");
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;
    use crate::events::Topic;
    use crate::testing::{sqlite_store, training, zscore};

    const VALUES: [f64; 5] = [10.0, 11.0, 9.0, 10.0, 12.0];

    #[tokio::test]
    async fn a_fit_stores_the_next_version_with_its_points_and_announces_it() {
        let (store, _dir) = sqlite_store().await;
        let bus = Arc::new(MemoryBus::new(16));
        let mut models = bus.follow(Topic::Models).await.unwrap();
        let trainer = Trainer::storing_points(store.clone(), bus.clone());
        let series = SeriesId::parse("s").unwrap();

        let first = trainer
            .fit(series.clone(), training(&VALUES), zscore())
            .await
            .unwrap();
        let second = trainer
            .fit(series.clone(), training(&VALUES[..3]), zscore())
            .await
            .unwrap();

        assert_eq!((first.version, first.points_used), (Version::FIRST, 5));
        assert_eq!(
            (second.version, second.points_used),
            (Version::FIRST.next(), 3)
        );
        assert_eq!(second.detector, "zscore");
        let stored = store
            .training_points(&series, Version::FIRST)
            .await
            .unwrap();
        assert_eq!(stored, training(&VALUES).points());
        let announced = models.next().await.unwrap().expect("an announcement");
        assert!(
            matches!(&announced.event, Event::Model(m) if m.series_id == series && m.version == Version::FIRST),
            "{announced:?}"
        );
    }

    #[tokio::test]
    async fn a_fit_whose_points_the_bus_refuses_takes_its_version_back() {
        let (store, _dir) = sqlite_store().await;
        let bus = Arc::new(MemoryBus::new(16));
        bus.close();
        let trainer = Trainer::new(store.clone(), bus);
        let series = SeriesId::parse("s").unwrap();

        let refused = trainer
            .fit(series.clone(), training(&VALUES), zscore())
            .await;

        assert!(matches!(refused, Err(TrainError::Bus(_))), "{refused:?}");
        assert!(store.latest_model(&series).await.unwrap().is_none());
    }
}

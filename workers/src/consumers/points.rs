//! The predictors' share of `points`: every predictor joins one consumer group on it, so each
//! point is scored once, by the predictor holding its series' partition, exactly as a `/predict`
//! would score it (its prediction and alert events published the same way, an alert acknowledged
//! by the bus before the point is). A point that can never be scored (bad id or value, a series
//! without a model) is counted and skipped; a store or bus that is down is waited for.

use std::sync::Arc;

use async_trait::async_trait;

use super::{HandleError, Handler};
use crate::domain::{Point, SeriesId};
use crate::events::Event;
use crate::predictor::{PredictError, Scoring};

pub struct PointScorer {
    scoring: Arc<dyn Scoring>,
}

impl PointScorer {
    /// The consumer group every predictor joins on `points`: its members own the series.
    pub const GROUP: &'static str = "predictors";

    pub fn new(scoring: Arc<dyn Scoring>) -> Self {
        Self { scoring }
    }
}

fn refused(reason: String) -> HandleError {
    ::metrics::counter!("anomaly_points_total", "outcome" => "refused").increment(1);
    HandleError::Poison(reason)
}

#[async_trait]
impl Handler for PointScorer {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Event::Point(ingested) = event else {
            return Err(refused(format!("expected a point, got {event:?}")));
        };
        let series =
            SeriesId::parse(&ingested.series_id).map_err(|e| refused(format!("series_id: {e}")))?;
        let point = Point::parse(ingested.timestamp, ingested.value)
            .map_err(|e| refused(format!("{series}: {e}")))?;
        match self.scoring.predict(&series, point).await {
            Ok(_) => {
                ::metrics::counter!("anomaly_points_total", "outcome" => "scored").increment(1);
                Ok(())
            }
            Err(err @ PredictError::ModelNotFound(_)) => Err(refused(err.to_string())),
            Err(err) => Err(HandleError::Transient(err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{EventBus, MemoryBus};
    use crate::detector::ModelSpec;
    use crate::domain::TrainingSet;
    use crate::events::{IngestedPoint, Topic};
    use crate::predictor::Predictor;
    use crate::store::{ModelStore, SqlStore};
    use crate::trainer::{Trainer, Training};

    fn point(series: &str, timestamp: i64, value: f64) -> Event {
        Event::Point(IngestedPoint {
            series_id: series.into(),
            timestamp,
            value,
        })
    }

    #[tokio::test]
    async fn a_point_is_scored_as_a_predict_and_a_bad_one_is_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store: Arc<dyn ModelStore> = Arc::new(SqlStore::connect(&url).await.expect("store"));
        let bus = Arc::new(MemoryBus::new(1024));
        let mut anomalies = bus.follow(Topic::Anomalies).await.unwrap();
        let trainer = Trainer::storing_points(store.clone(), bus.clone());
        let series = SeriesId::parse("ingested").unwrap();
        let points = (0..100)
            .map(|i| Point::parse(1_700_000_000 + 60 * i, 10.0 + (i % 5) as f64).unwrap())
            .collect();
        trainer
            .fit(
                series.clone(),
                TrainingSet::parse(points).unwrap(),
                ModelSpec::default(),
            )
            .await
            .unwrap();
        let scorer = PointScorer::new(Arc::new(Predictor::new(store, bus.clone(), 100)));

        scorer
            .handle(&point("ingested", 1_700_100_000, 1e6))
            .await
            .unwrap();
        let alert = anomalies.next().await.unwrap().unwrap();
        let Event::Anomaly(scored) = alert.event else {
            panic!("{alert:?}")
        };
        assert_eq!(
            (scored.series_id.as_str(), scored.point.value),
            ("ingested", 1e6)
        );

        for bad in [
            point("no model", 1_700_100_060, 1.0),
            point("unknown_series", 1_700_100_060, 1.0),
            point("ingested", 1_700_100_060, f64::NAN),
        ] {
            let err = scorer.handle(&bad).await.unwrap_err();
            assert!(matches!(err, HandleError::Poison(_)), "{err}");
        }
    }
}

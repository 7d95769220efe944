//! The predictors' share of `points`: every predictor joins one consumer group on it, so each
//! point is scored once, by the predictor holding its series' partition, exactly as a `/predict`
//! would score it (its prediction and alert events published the same way, an alert acknowledged
//! by the bus before the point is). A point that can never be scored (bad id or value, a series
//! without a model) is counted and skipped; a store or bus that is down is waited for.
//!
//! The topic is also the predictors' log of learning: a predictor logs every point a `/predict`
//! taught an online model (`Predictor::logging_points`, marked `scored`). Such a point is not
//! scored again: its series' owner learns it only if its state does not hold it yet, which is
//! the case when the predictor that scored it died before checkpointing it. Offsets are
//! committed only after the learning of the points before them is saved (`Commit`), as Kafka
//! Streams flushes its state stores before it commits, so the next owner of a partition resumes
//! from a checkpoint plus the points logged since.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{Commit, HandleError, Handler, consume_committing};
use crate::bus::Subscription;
use crate::domain::{Point, SeriesId};
use crate::events::{Event, IngestedPoint};
use crate::predictor::{PredictError, Predictor, Scoring};

/// How long a predictor goes between commits of `points` while points flow: at most this much
/// of the log is replayed by the next owner of a partition.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);

pub struct PointScorer {
    scoring: Arc<dyn Scoring>,
    predictor: Arc<Predictor>,
}

impl PointScorer {
    /// The consumer group every predictor joins on `points`: its members own the series.
    pub const GROUP: &'static str = "predictors";

    /// Scores points through `scoring` (the predictor itself, or what wraps it) and replays
    /// logged ones into `predictor`.
    pub fn new(scoring: Arc<dyn Scoring>, predictor: Arc<Predictor>) -> Self {
        Self { scoring, predictor }
    }
}

/// Scores the points of `subscription` (a member of `PointScorer::GROUP`) until it ends or
/// `stop` fires, committing each step only once what it taught is saved.
pub async fn score_points(
    subscription: Box<dyn Subscription>,
    scorer: &PointScorer,
    stop: CancellationToken,
) {
    consume_committing("points", subscription, scorer, scorer, stop).await
}

fn refused(reason: String) -> HandleError {
    ::metrics::counter!("anomaly_points_total", "outcome" => "refused").increment(1);
    HandleError::Poison(reason)
}

#[async_trait]
impl Handler for PointScorer {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        match event {
            Event::Point(ingested) => self.take(ingested).await,
            // A predictor's learning log: each point is learnt in turn, unless held already (a
            // record handled again after a failure learns only what it did not).
            Event::Learnt(learnt) => {
                for ingested in &learnt.learnt {
                    match self.take(ingested).await {
                        Ok(()) | Err(HandleError::Poison(_)) => {}
                        Err(err) => return Err(err),
                    }
                }
                Ok(())
            }
            event => Err(refused(format!("expected a point, got {event:?}"))),
        }
    }
}

impl PointScorer {
    /// Scores a producer's point, or replays a logged one.
    async fn take(&self, ingested: &IngestedPoint) -> Result<(), HandleError> {
        let series =
            SeriesId::parse(&ingested.series_id).map_err(|e| refused(format!("series_id: {e}")))?;
        let point = Point::parse(ingested.timestamp, ingested.value)
            .map_err(|e| refused(format!("{series}: {e}")))?;
        let outcome = match &ingested.scored {
            Some(scored) => self
                .predictor
                .replay(&series, point, scored)
                .await
                .map(|learnt| if learnt { "replayed" } else { "logged" }),
            None => self.scoring.predict(&series, point).await.map(|_| "scored"),
        };
        match outcome {
            Ok(outcome) => {
                ::metrics::counter!("anomaly_points_total", "outcome" => outcome).increment(1);
                Ok(())
            }
            Err(err @ PredictError::ModelNotFound(_)) => Err(refused(err.to_string())),
            Err(err) => Err(HandleError::Transient(crate::cause::Cause::new(err))),
        }
    }
}

#[async_trait]
impl Commit for PointScorer {
    fn every(&self) -> Duration {
        COMMIT_EVERY
    }

    async fn prepare(&self) -> Result<(), String> {
        self.predictor
            .flush()
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{EventBus, MemoryBus};
    use crate::detector::ModelSpec;
    use crate::domain::TrainingSet;
    use crate::events::{IngestedPoint, ScoredBy, Topic};
    use crate::predictor::{Checkpoints, Predictor};
    use crate::store::{ModelStore, SqlStore};
    use crate::trainer::{Trainer, Training};

    fn point(series: &str, timestamp: i64, value: f64) -> Event {
        Event::Point(IngestedPoint {
            series_id: series.into(),
            timestamp,
            value,
            scored: None,
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
        let predictor = Arc::new(Predictor::new(store, bus.clone(), 100));
        let scorer = PointScorer::new(predictor.clone(), predictor);

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

    /// A store, a bus on librdkafka's mock cluster, and `series` fitted with the default detector
    /// (which learns online).
    struct OnMock {
        _dir: tempfile::TempDir,
        store: Arc<dyn ModelStore>,
        bus: Arc<dyn EventBus>,
        series: SeriesId,
        model: crate::model::TrainedModel,
    }

    impl OnMock {
        /// A predictor on this store and bus, caching 10 series.
        fn predictor(&self, checkpoints: Checkpoints) -> Predictor {
            Predictor::with_cache(self.store.clone(), self.bus.clone(), checkpoints, 10)
        }
    }

    async fn fitted_on_mock(series: &str) -> OnMock {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store: Arc<dyn ModelStore> = Arc::new(SqlStore::connect(&url).await.expect("store"));
        let bus: Arc<dyn EventBus> = Arc::new(crate::bus::mock_kafka().await);
        let series = SeriesId::parse(series).unwrap();
        let training = (0..100)
            .map(|i| Point::parse(1_700_000_000 + 60 * i, 10.0 + (i % 7) as f64).unwrap())
            .collect();
        Trainer::new(store.clone(), bus.clone())
            .fit(
                series.clone(),
                TrainingSet::parse(training).unwrap(),
                ModelSpec::default(),
            )
            .await
            .unwrap();
        let model = store.latest_model(&series).await.unwrap().unwrap();
        assert!(model.detector.is_online(), "the default detector learns");
        OnMock {
            _dir: dir,
            store,
            bus,
            series,
            model,
        }
    }

    /// A member of the predictors' group scoring and replaying into `predictor` until the token
    /// is cancelled (or the task aborted, as a crash would end it).
    async fn join(
        bus: &Arc<dyn EventBus>,
        predictor: &Arc<Predictor>,
    ) -> (tokio::task::JoinHandle<()>, CancellationToken) {
        let points = bus
            .join_group(Topic::Points, PointScorer::GROUP)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let scorer = PointScorer::new(predictor.clone(), predictor.clone());
        let member_stop = stop.clone();
        let member = tokio::spawn(async move { score_points(points, &scorer, member_stop).await });
        (member, stop)
    }

    /// Waits until the saved state of `series` has seen `seen` points, and returns it.
    async fn saved_once_it_has_seen(on: &OnMock, seen: u64) -> crate::live::LiveState {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let saved = on
                .store
                .load_state(&on.series, on.model.version)
                .await
                .unwrap();
            match saved {
                Some(state) if state.seen >= seen => return state,
                _ => assert!(
                    std::time::Instant::now() < deadline,
                    "the saved state never reached {seen} points: {:?}",
                    saved.map(|s| s.seen)
                ),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The state a fresh model of `on` ends in after learning `points`, all logged by `scorer`.
    fn learnt(on: &OnMock, points: &[Point], scorer: &str) -> crate::live::LiveState {
        let mut state = crate::live::LiveState::fresh(&on.model);
        for &point in points {
            state.observe(point);
        }
        state.learnt(scorer, points.len() as u64);
        state
    }

    fn taught(count: i64) -> Vec<Point> {
        (0..count)
            .map(|i| Point::parse(1_700_100_000 + 60 * i, 12.0 + (i % 5) as f64).unwrap())
            .collect()
    }

    /// A predictor that learnt points from `/predict` and died before checkpointing any: the
    /// next member of the group reads them from `points` and ends in the very state the dead
    /// one had, and learns none of them twice.
    #[tokio::test]
    async fn the_next_owner_replays_what_a_dead_predictor_learnt_since_its_checkpoint() {
        let on = fitted_on_mock("replayed").await;
        let never = Checkpoints::every(u64::MAX);
        let dead = on.predictor(never).logging_points(true);
        let taught = taught(30);
        for &point in &taught {
            dead.predict(&on.series, point).await.unwrap();
        }
        let scorer = dead.scorer_id().to_owned();
        drop(dead);
        let nothing = on.store.load_state(&on.series, on.model.version).await;
        assert_eq!(
            nothing.unwrap(),
            None,
            "the dead predictor checkpointed nothing"
        );

        let next = Arc::new(on.predictor(never));
        let (member, stop) = join(&on.bus, &next).await;
        // It commits only once the state the points taught is saved.
        assert_eq!(
            saved_once_it_has_seen(&on, 30).await,
            learnt(&on, &taught, &scorer)
        );

        // A point delivered again is not learnt twice.
        let again = ScoredBy {
            by: scorer,
            version: on.model.version,
            seq: 30,
        };
        assert!(!next.replay(&on.series, taught[29], &again).await.unwrap());
        stop.cancel();
        member.await.unwrap();
    }

    /// A predictor whose member committed (after saving) and then learnt more before it died:
    /// the next member resumes from the committed offset and replays exactly the tail.
    #[tokio::test]
    async fn the_next_owner_replays_the_tail_after_the_dead_members_last_commit() {
        let on = fitted_on_mock("tail").await;
        let never = Checkpoints::every(u64::MAX);
        let taught = taught(40);
        // The first member scores 20 points and commits them (its flush saves them first).
        let dead = Arc::new(on.predictor(never).logging_points(true));
        let (member, _never_stopped) = join(&on.bus, &dead).await;
        for &point in &taught[..20] {
            dead.predict(&on.series, point).await.unwrap();
        }
        saved_once_it_has_seen(&on, 20).await;
        // Then 20 more, and it dies without saving or committing them.
        member.abort();
        let _ = member.await;
        for &point in &taught[20..] {
            dead.predict(&on.series, point).await.unwrap();
        }
        let scorer = dead.scorer_id().to_owned();
        drop(dead);
        let saved = on.store.load_state(&on.series, on.model.version).await;
        assert_eq!(saved.unwrap().map(|s| s.seen), Some(20));

        let next = Arc::new(on.predictor(never));
        let (member, stop) = join(&on.bus, &next).await;
        assert_eq!(
            saved_once_it_has_seen(&on, 40).await,
            learnt(&on, &taught, &scorer)
        );
        stop.cancel();
        member.await.unwrap();
    }

    /// A stopping predictor scores nothing more (its last checkpoints must hold everything it
    /// learnt), and says so as a retryable failure.
    #[tokio::test]
    async fn a_stopping_predictor_refuses_new_predicts() {
        let on = fitted_on_mock("stopping").await;
        let predictor = on.predictor(Checkpoints::every(1));
        let point = taught(1)[0];
        predictor.predict(&on.series, point).await.unwrap();
        predictor.stop_scoring().await;
        let refused = predictor.predict(&on.series, point).await.unwrap_err();
        assert!(matches!(refused, PredictError::Unreachable(_)), "{refused}");
    }

    /// Two predictors number their points by their own states, so after a handover their
    /// numbers overlap: a survivor that served the dead one's series from an older checkpoint,
    /// saved and reloaded them, still learns the dead one's unsaved points.
    #[tokio::test]
    async fn a_survivors_own_points_do_not_hide_the_dead_ones() {
        let on = fitted_on_mock("forked").await;
        let never = Checkpoints::every(u64::MAX);
        let taught = taught(20);
        let dead = on.predictor(never).logging_points(true);
        for &point in &taught[..10] {
            dead.predict(&on.series, point).await.unwrap();
        }
        let dead_scorer = dead.scorer_id().to_owned();
        drop(dead);
        // The survivor serves the series from the fitted model (the dead one saved nothing),
        // checkpoints it with its own 10 points, and loads it again.
        let survivor = Arc::new(on.predictor(Checkpoints::every(1)).logging_points(true));
        for &point in &taught[10..] {
            survivor.predict(&on.series, point).await.unwrap();
        }
        survivor.release(|_| false);
        saved_once_it_has_seen(&on, 10).await;
        // Its member then reads the log: the dead one's 10 points are learnt, its own are not.
        let (member, stop) = join(&on.bus, &survivor).await;
        let state = saved_once_it_has_seen(&on, 20).await;
        assert_eq!(state.learnt_from.get(&dead_scorer), Some(&10));
        assert_eq!(
            state.learnt_from.get(survivor.scorer_id()),
            Some(&10),
            "{:?}",
            state.learnt_from
        );
        stop.cancel();
        member.await.unwrap();
    }
}

//! The predictor role: scores points against the newest model of their series and, for online
//! detectors, learns from them. Each series' live state sits in a bounded in-memory cache
//! (`model_cache`) behind its own lock (updates of one series are serialised), kept fresh from the
//! `models` topic, so a cached series costs no database query. Learning state is checkpointed
//! every `Checkpoints::every` points (but not more often than `Checkpoints::min_interval` per
//! series), when the series leaves the cache and on shutdown, and restored when a model is loaded
//! again. Live events are handed to the bus without waiting on it; inference metrics are tallied
//! and published as one batch per `METRICS_SPAN` (`tally`).

mod model_cache;
mod tally;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use ::metrics::Counter;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::{BusError, EventBus, Subscription};
use crate::detector::Verdict;
use crate::domain::{Point, SeriesId, Version};
use crate::events::{DetectorName, Event, IngestedPoint, Scored, ScoredBy, now_ms};
use crate::live::LiveState;
use crate::store::{ModelStore, StoreError};
use model_cache::{Departure, Live, ModelCache};
use tally::{Counted, InferenceTally};

/// How long a predictor tallies inference metrics before publishing them as one batch: what
/// `/healthcheck` may lag behind the predictions.
pub const METRICS_SPAN: std::time::Duration = std::time::Duration::from_millis(100);

/// When a series' online learning state is saved while it is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoints {
    /// Points learnt between two checkpoints of a series.
    pub every: u64,
    /// Least time between two checkpoints of a series: a hot series (thousands of points a
    /// second) is saved this often instead of every `every` points, which would spend more on
    /// serialising and writing its state than on scoring.
    pub min_interval: std::time::Duration,
}

impl Checkpoints {
    /// Every `every` points, however soon.
    pub fn every(every: u64) -> Self {
        Self {
            every,
            min_interval: std::time::Duration::ZERO,
        }
    }
}

/// Series a predictor keeps in memory by default (`MODEL_CACHE_MAX`): a few GB with the default
/// detector (README: memory per cached series).
pub const DEFAULT_MODEL_CACHE_MAX: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The id of the scored point's events (its cursor on `anomalies`).
    #[serde(default)]
    pub event_id: Uuid,
    pub series_id: SeriesId,
    pub model_version: Version,
    pub detector: DetectorName,
    pub point: Point,
    pub verdict: Verdict,
    /// Whether the point raised an anomaly event (the verdict after alert suppression).
    pub alert: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("no model is trained for series {0}")]
    ModelNotFound(SeriesId),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A remote predictor could not be reached or answered nonsense.
    #[error("the predictor is unreachable: {0}")]
    Unreachable(#[source] crate::cause::Cause),
    /// The point raised an alert the bus did not take: the answer is not given, so that no
    /// client holds an alert that may be lost.
    #[error("the alert could not be published: {0}")]
    Bus(#[from] crate::bus::BusError),
}

/// What the gateway needs from a predictor: an in-process `Predictor` in `serve`, an HTTP client
/// in the distributed deployment.
#[async_trait]
pub trait Scoring: Send + Sync + 'static {
    async fn predict(&self, series: &SeriesId, point: Point) -> Result<Prediction, PredictError>;
}

pub struct Predictor {
    store: Arc<dyn ModelStore>,
    bus: Arc<dyn EventBus>,
    cache: Arc<ModelCache>,
    checkpoints: Checkpoints,
    tally: Arc<InferenceTally>,
    /// This process as the scorer of the points it logs (unique per process, even where a
    /// restarted container gets its predecessor's host name and pid).
    scorer_id: String,
    /// Whether a predict of an online model is logged on `points` before it is answered.
    logs_points: bool,
    /// Set once the predictor stops scoring (`stop_scoring`); predicts in flight are counted so
    /// that stopping waits for them.
    stopping: std::sync::atomic::AtomicBool,
    in_flight: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Counts one predict in flight until dropped.
struct InFlight<'a>(&'a Predictor);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self
            .0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

impl Predictor {
    pub fn new(store: Arc<dyn ModelStore>, bus: Arc<dyn EventBus>, checkpoint_every: u64) -> Self {
        Self::with_cache(
            store,
            bus,
            Checkpoints::every(checkpoint_every),
            DEFAULT_MODEL_CACHE_MAX,
        )
    }

    /// A predictor keeping at most `cache_max` series in memory.
    pub fn with_cache(
        store: Arc<dyn ModelStore>,
        bus: Arc<dyn EventBus>,
        checkpoints: Checkpoints,
        cache_max: usize,
    ) -> Self {
        Self {
            store,
            bus,
            cache: Arc::new(ModelCache::new(cache_max)),
            checkpoints: Checkpoints {
                every: checkpoints.every.max(1),
                ..checkpoints
            },
            tally: Arc::new(InferenceTally::new(
                crate::heartbeat::instance_name(),
                METRICS_SPAN,
            )),
            scorer_id: format!(
                "{}-{:08x}",
                crate::heartbeat::instance_name(),
                Uuid::new_v4().as_u128() as u32
            ),
            logs_points: false,
            stopping: std::sync::atomic::AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// Stops scoring: every predict from now on answers that this predictor is stopping (a 503
    /// with `Retry-After` at the gateway), and this returns once the predicts in flight are done.
    /// A stopping predictor calls it before it saves its last checkpoints and only then closes its
    /// port, so no other predictor loads a series' checkpoint while this one still learns it.
    pub async fn stop_scoring(&self) {
        use std::sync::atomic::Ordering;
        self.stopping.store(true, Ordering::SeqCst);
        loop {
            let idle = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Logs every point a predict teaches an online model on `points` (marked as scored, keyed
    /// by series) and answers only once the bus holds it: the predictor that owns the series
    /// next replays from the log what this one learnt after its last checkpoint, so a SIGKILL
    /// loses no acknowledged learning. For a partitioned bus, with `score_points` committing.
    pub fn logging_points(mut self, logs: bool) -> Self {
        self.logs_points = logs;
        self
    }

    /// This process as the scorer of the points it logs.
    pub fn scorer_id(&self) -> &str {
        &self.scorer_id
    }

    async fn live_for(&self, series: &SeriesId) -> Result<Arc<Live>, PredictError> {
        if let Some((live, departure)) = self.cache.get(series) {
            self.see_off(departure);
            return Ok(live);
        }
        let model = self
            .store
            .latest_model(series)
            .await?
            .ok_or_else(|| PredictError::ModelNotFound(series.clone()))?;
        let state = match self.store.load_state(series, model.version).await? {
            Some(state) => state,
            None => LiveState::fresh(&model),
        };
        let (live, departure) = self.cache.offer(model, state);
        self.see_off(departure);
        Ok(live)
    }

    /// Saves the state of a series that left the cache, then lets the cache forget it.
    fn see_off(&self, departure: Option<Departure>) {
        let Some(departure) = departure else { return };
        let store = self.store.clone();
        let cache = self.cache.clone();
        tokio::spawn(async move {
            let live = &departure.live;
            let state = live.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match save(&*store, live, &state).await {
                Ok(()) => cache.departed(&departure),
                // It stays reachable as leaving: a later predict takes it back, shutdown saves it.
                Err(err) => {
                    tracing::warn!(error = %err, series = %live.model.series_id, "checkpoint of an evicted series failed")
                }
            }
        });
    }

    /// Applies model announcements to the cache until the subscription ends or `stop` fires.
    pub async fn follow_models(&self, mut models: Box<dyn Subscription>, stop: CancellationToken) {
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = models.next() => next,
            };
            match next {
                Ok(Some(delivery)) => {
                    if let Event::Model(model) = delivery.event {
                        tracing::debug!(series = %model.series_id, version = %model.version, "model cached");
                        let state = LiveState::fresh(&model);
                        let departure = self.cache.refresh(model, state);
                        self.see_off(departure);
                    }
                }
                Ok(None) => return,
                Err(BusError::Lagged(missed)) => {
                    // Missed announcements would leave stale models cached: checkpoint what
                    // was learnt and start over from the database.
                    tracing::warn!(missed, "model announcements missed; reloading models");
                    self.checkpoint_all().await;
                    self.cache.clear();
                }
                Err(err) => {
                    // A broker outage: models may change meanwhile, so start over from the
                    // database once announcements flow again.
                    tracing::warn!(error = %err, "model announcements interrupted; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                    self.checkpoint_all().await;
                    self.cache.clear();
                }
            }
        }
    }

    /// Lets go of the cached series `keep` refuses (a rebalance gave them to another predictor):
    /// online ones save their state first, so their new owner goes on from where they were.
    pub fn release(&self, keep: impl Fn(&SeriesId) -> bool) {
        for departure in self.cache.release(keep) {
            self.see_off(Some(departure));
        }
    }

    /// Saves the learning state of every cached online model that changed since its last
    /// written checkpoint, going on past failures: on shutdown.
    pub async fn checkpoint_all(&self) {
        for (live, state) in self.changed() {
            if let Err(err) = save(&*self.store, &live, &state).await {
                tracing::warn!(error = %err, series = %live.model.series_id, "checkpoint failed");
            }
        }
    }

    /// Saves the state of every cached online series that learnt since its last written
    /// checkpoint, and returns once all are written: what `score_points` does before it
    /// commits its offsets, so a committed offset never passes learning that is not saved.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let changed = self.changed();
        for (live, state) in &changed {
            save(&*self.store, live, state).await?;
        }
        Ok(changed.len())
    }

    /// The cached online series that learnt since their last written checkpoint, each with a
    /// copy of its state.
    fn changed(&self) -> Vec<(Arc<Live>, LiveState)> {
        self.cache
            .all()
            .into_iter()
            .filter(|live| live.model.detector.is_online())
            .filter_map(|live| {
                let saved = live.saved_seen.load(std::sync::atomic::Ordering::Acquire);
                let state = {
                    let state = live.state.lock().unwrap_or_else(|e| e.into_inner());
                    (state.seen > saved).then(|| state.clone())?
                };
                Some((live, state))
            })
            .collect()
    }

    /// Learns a point another predictor scored and logged (`IngestedPoint::scored`), unless the
    /// series' state already holds it: the points a dead predictor learnt after its last
    /// checkpoint. Publishes nothing (its events were published when it was scored). Returns
    /// whether the point was learnt.
    pub async fn replay(
        &self,
        series: &SeriesId,
        point: Point,
        scored: &ScoredBy,
    ) -> Result<bool, PredictError> {
        if scored.by == self.scorer_id {
            // This process learnt it when it scored it.
            return Ok(false);
        }
        let live = self.live_for(series).await?;
        if live.model.version != scored.version || !live.model.detector.is_online() {
            return Ok(false);
        }
        let mut state = live.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.holds(&scored.by, scored.seq) {
            return Ok(false);
        }
        state.observe(point);
        state.learnt(&scored.by, scored.seq);
        static REPLAYED: LazyLock<Counter> =
            LazyLock::new(|| ::metrics::counter!("anomaly_points_replayed_total"));
        REPLAYED.increment(1);
        Ok(true)
    }

    /// Writes a checkpoint in the background; an older one arriving late is ignored by the store.
    fn checkpoint(&self, live: Arc<Live>, state: LiveState) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(err) = save(&*store, &live, &state).await {
                let series = &live.model.series_id;
                tracing::warn!(error = %err, %series, "checkpoint failed; the next one retries");
            }
        });
    }

    /// Counts a prediction in the open span of metrics; the span's first prediction arranges its
    /// publication.
    fn tally(&self, series: &SeriesId, latency_ms: f64) {
        match self.tally.count(series, latency_ms) {
            Counted::Joined => {}
            Counted::Filled(batch) => self.emit(Event::Inferences(batch)),
            Counted::Opened => {
                let (tally, bus) = (self.tally.clone(), self.bus.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(tally.span()).await;
                    if let Some(batch) = tally.close()
                        && let Err(err) = bus.emit(Event::Inferences(batch))
                    {
                        dropped(&err);
                    }
                });
            }
        }
    }

    /// Publishes the metrics tallied so far: on shutdown, before the bus closes.
    pub fn publish_metrics(&self) {
        if let Some(batch) = self.tally.close() {
            self.emit(Event::Inferences(batch));
        }
    }

    fn emit(&self, event: Event) {
        if let Err(err) = self.bus.emit(event) {
            dropped(&err);
        }
    }
}

/// Counts a `predictions` or metrics event the bus refused (its queue full while the brokers are
/// away, say) in `anomaly_events_dropped_total`, and says so in the log at most every 10 s: at
/// thousands of predicts a second a line each would flood the log.
fn dropped(err: &BusError) {
    static LOGGED_AT_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    ::metrics::counter!("anomaly_events_dropped_total").increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let last = LOGGED_AT_SECS.load(std::sync::atomic::Ordering::Relaxed);
    if now >= last + 10
        && LOGGED_AT_SECS
            .compare_exchange(
                last,
                now,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
    {
        tracing::warn!(error = %err, "prediction events dropped (anomaly_events_dropped_total counts them; said at most every 10 s)");
    }
}

/// Saves `state` as the checkpoint of `live`'s series and records that it is written.
async fn save(store: &dyn ModelStore, live: &Live, state: &LiveState) -> Result<(), StoreError> {
    store
        .save_state(&live.model.series_id, live.model.version, state)
        .await?;
    live.saved(state.seen);
    Ok(())
}

#[async_trait]
impl Scoring for Predictor {
    async fn predict(&self, series: &SeriesId, point: Point) -> Result<Prediction, PredictError> {
        let started = Instant::now();
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _in_flight = InFlight(self);
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PredictError::Unreachable(crate::cause::Cause::message(
                "this predictor is stopping; another takes its series",
            )));
        }
        let live = self.live_for(series).await?;
        // The event id is taken and the events handed over under the series' lock, so a series'
        // events reach the bus in the order of their ids (a subscriber resuming from a cursor
        // relies on it).
        let (scored, checkpoint, alert_published, logged) = {
            let mut state = live.state.lock().unwrap_or_else(|e| e.into_inner());
            let observation = state.observe(point);
            // A series evicted while this point was on its way saves what it learns at once.
            let due = live.model.detector.is_online()
                && (live.evicted() || live.checkpoint_due(state.seen, &self.checkpoints));
            let scored = Arc::new(Scored {
                id: Uuid::now_v7(),
                series_id: series.clone(),
                model_version: live.model.version,
                detector: DetectorName::Borrowed(live.model.detector.name()),
                point,
                verdict: observation.verdict,
                alert: observation.alert,
                at_ms: now_ms(),
            });
            // An alert is answered only once the bus holds it (Kafka: the brokers acknowledged
            // it), so every alert a client was told of reaches the alert store.
            let alert_published = if scored.alert {
                Some(self.bus.emit_acknowledged(Event::Anomaly(scored.clone())))
            } else {
                None
            };
            self.emit(Event::Prediction(scored.clone()));
            // What an online model learnt is in the log before the answer (`logging_points`).
            let logged = (self.logs_points && live.model.detector.is_online()).then(|| {
                let seq = state.seen;
                state.learnt(&self.scorer_id, seq);
                self.bus.emit_acknowledged(Event::Point(IngestedPoint {
                    series_id: series.as_str().to_owned(),
                    timestamp: point.timestamp,
                    value: point.value,
                    scored: Some(ScoredBy {
                        by: self.scorer_id.clone(),
                        version: live.model.version,
                        seq,
                    }),
                }))
            });
            (scored, due.then(|| state.clone()), alert_published, logged)
        };
        if let Some(state) = checkpoint {
            self.checkpoint(live.clone(), state);
        }
        match (alert_published, logged) {
            (Some(alert), Some(point)) => {
                let (alert, point) = tokio::join!(alert?, point?);
                alert?;
                point?;
            }
            (Some(alert), None) => alert?.await?,
            (None, Some(point)) => point?.await?,
            (None, None) => {}
        }
        // Registered on first use (after the recorder is installed), not looked up per point.
        static PREDICTIONS: LazyLock<Counter> =
            LazyLock::new(|| ::metrics::counter!("anomaly_predictions_total"));
        static ANOMALIES: LazyLock<Counter> =
            LazyLock::new(|| ::metrics::counter!("anomaly_anomalies_total"));
        static ALERTS: LazyLock<Counter> =
            LazyLock::new(|| ::metrics::counter!("anomaly_alerts_total"));
        PREDICTIONS.increment(1);
        if scored.verdict.anomaly {
            ANOMALIES.increment(1);
        }
        if scored.alert {
            ALERTS.increment(1);
        }
        let prediction = Prediction {
            event_id: scored.id,
            series_id: series.clone(),
            model_version: scored.model_version,
            detector: scored.detector.clone(),
            point,
            verdict: scored.verdict,
            alert: scored.alert,
        };
        self.tally(series, started.elapsed().as_secs_f64() * 1000.0);
        Ok(prediction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;
    use crate::events::Topic;
    use crate::testing::{sqlite_store, training, zscore};
    use crate::trainer::{Trainer, Training};

    /// A predictor over a store holding one `zscore` model of series `s`, and the bus it emits on.
    async fn trained() -> (Predictor, Arc<MemoryBus>, tempfile::TempDir) {
        let (store, dir) = sqlite_store().await;
        let bus = Arc::new(MemoryBus::new(64));
        Trainer::storing_points(store.clone(), bus.clone())
            .fit(
                SeriesId::parse("s").unwrap(),
                training(&[10.0, 11.0, 9.0, 10.0, 12.0, 10.0]),
                zscore(),
            )
            .await
            .unwrap();
        (Predictor::new(store, bus.clone(), 100), bus, dir)
    }

    fn point(value: f64) -> Point {
        Point::parse(3_600, value).unwrap()
    }

    #[tokio::test]
    async fn a_point_near_the_training_data_is_normal_and_a_spike_raises_an_alert_event() {
        let (predictor, bus, _dir) = trained().await;
        let mut anomalies = bus.follow(Topic::Anomalies).await.unwrap();
        let series = SeriesId::parse("s").unwrap();

        let normal = predictor.predict(&series, point(10.5)).await.unwrap();
        let spike = predictor.predict(&series, point(1_000.0)).await.unwrap();

        assert!(!normal.verdict.anomaly && !normal.alert, "{normal:?}");
        assert!(spike.verdict.anomaly && spike.alert, "{spike:?}");
        assert_eq!(spike.model_version, Version::FIRST);
        let event = anomalies.next().await.unwrap().expect("the alert's event");
        assert!(
            matches!(&event.event, Event::Anomaly(a) if a.id == spike.event_id && a.point.value == 1_000.0),
            "{event:?}"
        );
    }

    #[tokio::test]
    async fn a_series_without_a_model_is_not_found() {
        let (predictor, _bus, _dir) = trained().await;
        let missing = predictor
            .predict(&SeriesId::parse("nobody").unwrap(), point(1.0))
            .await;
        assert!(
            matches!(missing, Err(PredictError::ModelNotFound(ref s)) if s.as_str() == "nobody"),
            "{missing:?}"
        );
    }
}

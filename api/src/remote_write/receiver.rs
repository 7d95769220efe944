//! What happens to remote-written samples: each selected series is tracked (bounded in number
//! and in how fast new ones are taken on), learns its first `warmup_points` as training data,
//! is fitted with the configured detector, then has every later sample scored as it arrives.
//! A series already trained (by an earlier run, another gateway or a user's own `fit`) is scored
//! from its first sample. Samples at or before a series' newest taken timestamp are skipped, so
//! a batch Prometheus sends again after a 5xx is taken once. One series' samples are taken in
//! order (its own lock); different series of one request are taken concurrently, so a remote
//! predictor's batching applies.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use metrics::Counter;
use std::time::{Duration, Instant};

use futures_util::stream::{self, TryStreamExt};

use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{Point, SeriesId, TrainingSet};
use anomaly_workers::predictor::{PredictError, Prediction, Scoring};
use anomaly_workers::trainer::{TrainError, Training};

use super::identity::{self, BadLabels};
use super::selector::Selector;
use super::wire::{Sample, TimeSeries, WriteRequest};
use crate::alertmanager::ALERT_LABELS;

/// The metric names anomaly writes back: never modelled themselves (a Prometheus that scrapes
/// anomaly's results and remote-writes everything would otherwise feed them back in).
pub const RESULT_METRICS: [&str; 5] = [
    "anomaly_score",
    "anomaly_expected",
    "anomaly_lower",
    "anomaly_upper",
    "anomaly_alert",
];

/// Series taken concurrently from one request.
const CONCURRENT_SERIES: usize = 64;
const SHARDS: usize = 16;

/// How the receiver models series and what it bounds (README: "With Prometheus").
#[derive(Debug, Clone)]
pub struct RemoteWriteSettings {
    /// Which series are modelled; the others are ignored.
    pub selector: Selector,
    /// The detector and alert options new series are fitted with.
    pub spec: ModelSpec,
    /// Samples a new series collects before it is fitted.
    pub warmup_points: usize,
    /// Most series tracked at once.
    pub max_series: usize,
    /// Most series newly taken on per minute (a burst of this many, refilled evenly).
    pub new_series_per_minute: u32,
    /// Most samples one request may carry.
    pub max_samples_per_request: usize,
    /// Most bytes a request body may decompress to.
    pub max_decoded_bytes: usize,
    /// A series not written for this long is forgotten (and its results no longer shown).
    pub series_ttl: Duration,
    /// Longest a request may take before it is answered 503 (Prometheus sends it again; what
    /// was taken is skipped then). Below `HTTP_REQUEST_TIMEOUT_SECS`, whose 408 Prometheus
    /// would not retry.
    pub timeout: Duration,
}

impl Default for RemoteWriteSettings {
    fn default() -> Self {
        Self {
            selector: Selector::all(),
            spec: ModelSpec::default(),
            warmup_points: 120,
            max_series: 10_000,
            new_series_per_minute: 1_000,
            max_samples_per_request: 100_000,
            max_decoded_bytes: 64 * 1024 * 1024,
            series_ttl: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A request the receiver could not take whole, and whether Prometheus should send it again.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Refused as it is (400: Prometheus drops it); valid series in it were still taken.
    #[error("{0}")]
    Bad(String),
    /// A backend is down (503: Prometheus sends it again; what was taken is skipped then).
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error(transparent)]
    Train(TrainError),
}

/// What one request did, by sample.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub scored: usize,
    pub warming: usize,
    /// At or before the series' newest taken sample (a resent batch), or not a number (a
    /// Prometheus staleness marker).
    pub skipped: usize,
    pub not_selected: usize,
    /// Of series past `max_series` or the per-minute bound on new series.
    pub over_limit: usize,
    /// Of series whose labels are not a valid series.
    pub invalid: usize,
}

/// The newest scored sample of a series: what the results show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub timestamp_ms: i64,
    pub value: f64,
    pub score: f64,
    pub expected: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub alert: bool,
}

/// A tracked series.
pub struct Tracked {
    pub id: SeriesId,
    /// Its metric name (`__name__`).
    pub metric: String,
    /// Its labels in name order, `__name__` included.
    pub labels: Vec<(String, String)>,
    /// The labels its alerts carry: its own but `__name__`, and `for`.
    alert_labels: Arc<[(String, String)]>,
    /// When it was last written, in seconds since the receiver started.
    last_written: AtomicI64,
    progress: tokio::sync::Mutex<Progress>,
    latest: Mutex<Option<Latest>>,
}

impl Tracked {
    pub fn latest(&self) -> Option<Latest> {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Progress {
    /// The newest timestamp taken, in milliseconds.
    newest_ms: Option<i64>,
    phase: Phase,
}

enum Phase {
    /// Not known yet whether a model exists: the first sample is scored to find out.
    Probing,
    /// Collecting training points.
    Warming(Vec<Point>),
    Scoring,
}

/// The tracked series and the bounds on taking new ones.
pub struct Receiver {
    training: Arc<dyn Training>,
    scoring: Arc<dyn Scoring>,
    settings: RemoteWriteSettings,
    shards: Vec<Shard>,
    hasher: RandomState,
    tracked: AtomicUsize,
    onboarding: Mutex<Onboarding>,
    started: Instant,
    /// Called with every scored sample (results pushed by remote write).
    on_scored: Option<Box<OnScored>>,
}

/// Tracked series by canonical label set (`identity::canonical`), one part of them.
type Shard = Mutex<HashMap<Box<[u8]>, Arc<Tracked>>>;

type OnScored = dyn Fn(&Arc<Tracked>, Latest) + Send + Sync;

/// A token bucket of new series: `per_minute` at most at once, refilled evenly.
struct Onboarding {
    tokens: f64,
    refilled: Instant,
}

impl Receiver {
    pub fn new(
        training: Arc<dyn Training>,
        scoring: Arc<dyn Scoring>,
        settings: RemoteWriteSettings,
    ) -> Self {
        Self {
            training,
            scoring,
            onboarding: Mutex::new(Onboarding {
                tokens: f64::from(settings.new_series_per_minute),
                refilled: Instant::now(),
            }),
            settings,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            tracked: AtomicUsize::new(0),
            started: Instant::now(),
            on_scored: None,
        }
    }

    /// Calls `f` with every scored sample.
    pub fn on_scored(mut self, f: impl Fn(&Arc<Tracked>, Latest) + Send + Sync + 'static) -> Self {
        self.on_scored = Some(Box::new(f));
        self
    }

    pub fn settings(&self) -> &RemoteWriteSettings {
        &self.settings
    }

    /// Takes a decoded request. A bad request is refused before anything is taken when it is
    /// bad as a whole (too many samples); a bad series in it is skipped and reported after the
    /// others were taken.
    pub async fn ingest(&self, request: WriteRequest) -> Result<Taken, IngestError> {
        let samples: usize = request.timeseries.iter().map(|s| s.samples.len()).sum();
        if samples > self.settings.max_samples_per_request {
            return Err(IngestError::Bad(format!(
                "the request carries {samples} samples, more than the {} allowed",
                self.settings.max_samples_per_request
            )));
        }
        let mut taken = Taken::default();
        let mut first_bad: Option<BadLabels> = None;
        let mut work = Vec::with_capacity(request.timeseries.len());
        let mut key = Vec::new();
        for series in request.timeseries {
            match self.find(&series, &mut key) {
                Ok(Some(tracked)) => work.push((tracked, series.samples)),
                Ok(None) => taken.not_selected += series.samples.len(),
                Err(Refused::OverLimit) => taken.over_limit += series.samples.len(),
                Err(Refused::Bad(bad)) => {
                    taken.invalid += series.samples.len();
                    first_bad.get_or_insert(bad);
                }
            }
        }
        let now = self.started.elapsed().as_secs() as i64;
        let per_series = stream::iter(work.into_iter().map(Ok::<_, IngestError>))
            .map_ok(|(tracked, samples)| async move {
                tracked.last_written.store(now, Ordering::Relaxed);
                self.take(&tracked, &samples).await
            })
            .try_buffer_unordered(CONCURRENT_SERIES)
            .try_fold(Taken::default(), |sum, one| async move {
                Ok(Taken {
                    scored: sum.scored + one.scored,
                    warming: sum.warming + one.warming,
                    skipped: sum.skipped + one.skipped,
                    ..sum
                })
            })
            .await?;
        taken.scored = per_series.scored;
        taken.warming = per_series.warming;
        taken.skipped = per_series.skipped;
        count(&taken);
        match first_bad {
            Some(bad) => Err(IngestError::Bad(format!(
                "{bad} ({} samples of such series dropped; the others were taken)",
                taken.invalid
            ))),
            None => Ok(taken),
        }
    }

    /// The tracked series of `series`, taken on now if it is selected and the bounds allow.
    fn find(
        &self,
        series: &TimeSeries,
        key: &mut Vec<u8>,
    ) -> Result<Option<Arc<Tracked>>, Refused> {
        identity::canonical(&series.labels, key).map_err(Refused::Bad)?;
        let shard = &self.shards[self.hasher.hash_one(&key[..]) as usize % SHARDS];
        if let Some(tracked) = shard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key[..])
        {
            return Ok(Some(tracked.clone()));
        }
        let labels = identity::labels_of(key).map_err(Refused::Bad)?;
        let label = |name: &str| {
            labels
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(metric) = label("__name__") else {
            return Err(Refused::Bad(BadLabels::NoName));
        };
        if RESULT_METRICS.contains(&metric) || !self.settings.selector.matches(label) {
            return Ok(None);
        }
        let metric = metric.to_owned();
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tracked) = shard.get(&key[..]) {
            return Ok(Some(tracked.clone()));
        }
        if self.tracked.load(Ordering::Relaxed) >= self.settings.max_series || !self.onboard() {
            return Err(Refused::OverLimit);
        }
        let alert_labels = labels
            .iter()
            .filter(|(name, _)| name != "__name__")
            .cloned()
            .chain([("for".to_owned(), metric.clone())])
            .collect();
        let tracked = Arc::new(Tracked {
            alert_labels,
            id: identity::series_id(&metric, key),
            metric,
            labels,
            last_written: AtomicI64::new(self.started.elapsed().as_secs() as i64),
            progress: tokio::sync::Mutex::new(Progress {
                newest_ms: None,
                phase: Phase::Probing,
            }),
            latest: Mutex::new(None),
        });
        shard.insert(key[..].into(), tracked.clone());
        self.tracked.fetch_add(1, Ordering::Relaxed);
        tracing::info!(series = %tracked.id, "remote-written series taken on");
        Ok(Some(tracked))
    }

    /// Spends a token of the per-minute bound on new series, if one is left.
    fn onboard(&self) -> bool {
        let mut bucket = self.onboarding.lock().unwrap_or_else(|e| e.into_inner());
        let per_minute = f64::from(self.settings.new_series_per_minute);
        let now = Instant::now();
        let refill = now.duration_since(bucket.refilled).as_secs_f64() * per_minute / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(per_minute);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one series' samples of a request, in order.
    async fn take(&self, tracked: &Arc<Tracked>, samples: &[Sample]) -> Result<Taken, IngestError> {
        let mut taken = Taken::default();
        let mut progress = tracked.progress.lock().await;
        for sample in samples {
            if !sample.value.is_finite()
                || progress
                    .newest_ms
                    .is_some_and(|newest| sample.timestamp <= newest)
            {
                taken.skipped += 1;
                continue;
            }
            let point = Point {
                timestamp: sample.timestamp.div_euclid(1000),
                value: sample.value,
            };
            match &mut progress.phase {
                Phase::Warming(points) => {
                    points.push(point);
                    if points.len() >= self.settings.warmup_points {
                        let points = std::mem::take(points);
                        match self.fit(tracked, points).await {
                            Ok(next) => progress.phase = next,
                            Err((points, err)) => {
                                progress.phase = Phase::Warming(points);
                                return Err(err);
                            }
                        }
                    }
                    taken.warming += 1;
                }
                Phase::Probing | Phase::Scoring => {
                    let scoring = self.scoring.predict(&tracked.id, point);
                    match ALERT_LABELS
                        .scope(tracked.alert_labels.clone(), scoring)
                        .await
                    {
                        Ok(prediction) => {
                            progress.phase = Phase::Scoring;
                            self.record(tracked, sample, &prediction);
                            taken.scored += 1;
                        }
                        Err(PredictError::ModelNotFound(_)) => {
                            progress.phase = Phase::Warming(vec![point]);
                            taken.warming += 1;
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            }
            progress.newest_ms = Some(sample.timestamp);
        }
        Ok(taken)
    }

    /// Fits a series on its warm-up points: the next phase. Points no model can be trained on
    /// (constant ones) keep it warming on the newer half; a trainer that is down leaves the
    /// points for the next sample to try again.
    async fn fit(
        &self,
        tracked: &Tracked,
        mut points: Vec<Point>,
    ) -> Result<Phase, (Vec<Point>, IngestError)> {
        // Points no model takes: warm on with the newer half.
        let warm_on = |mut points: Vec<Point>| {
            points.drain(..points.len() / 2);
            Phase::Warming(points)
        };
        let Ok(training) = TrainingSet::parse(points.clone()) else {
            return Ok(warm_on(points));
        };
        match self
            .training
            .fit(tracked.id.clone(), training, self.settings.spec.clone())
            .await
        {
            Ok(outcome) => {
                tracing::info!(series = %tracked.id, version = %outcome.version, points = outcome.points_used, "remote-written series fitted");
                metrics::counter!("anomaly_remote_write_fits_total").increment(1);
                Ok(Phase::Scoring)
            }
            Err(TrainError::Invalid(invalid)) => {
                tracing::debug!(series = %tracked.id, reason = %invalid.0, "warm-up points refused; warming on");
                Ok(warm_on(points))
            }
            Err(err) => {
                tracing::warn!(series = %tracked.id, error = %err, "fit of a remote-written series failed; retried with its next sample");
                // The sample that completed the warm-up is taken again when Prometheus resends.
                points.pop();
                Err((points, IngestError::Train(err)))
            }
        }
    }

    fn record(&self, tracked: &Arc<Tracked>, sample: &Sample, prediction: &Prediction) {
        let latest = Latest {
            timestamp_ms: sample.timestamp,
            value: sample.value,
            score: prediction.verdict.score,
            expected: prediction.verdict.expected,
            lower: prediction.verdict.lower,
            upper: prediction.verdict.upper,
            alert: prediction.alert,
        };
        *tracked.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(latest);
        if let Some(f) = &self.on_scored {
            f(tracked, latest);
        }
    }

    /// Every tracked series (for the results page).
    pub fn tracked(&self) -> Vec<Arc<Tracked>> {
        self.shards
            .iter()
            .flat_map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Forgets series not written for `series_ttl`; how many.
    pub fn forget_stale(&self) -> usize {
        let now = self.started.elapsed().as_secs() as i64;
        let ttl = self.settings.series_ttl.as_secs() as i64;
        let mut forgotten = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, tracked| {
                let keep = now - tracked.last_written.load(Ordering::Relaxed) < ttl;
                forgotten += usize::from(!keep);
                keep
            });
        }
        self.tracked.fetch_sub(forgotten, Ordering::Relaxed);
        forgotten
    }

    /// Series tracked now.
    pub fn len(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

enum Refused {
    OverLimit,
    Bad(BadLabels),
}

/// Counts a request's samples by outcome (the labelled counters registered once, not looked up
/// per request).
fn count(taken: &Taken) {
    static SAMPLES: LazyLock<[Counter; 6]> = LazyLock::new(|| {
        [
            "scored",
            "warming",
            "skipped",
            "not_selected",
            "over_limit",
            "invalid",
        ]
        .map(
            |outcome| metrics::counter!("anomaly_remote_write_samples_total", "outcome" => outcome),
        )
    });
    let by_outcome = [
        taken.scored,
        taken.warming,
        taken.skipped,
        taken.not_selected,
        taken.over_limit,
        taken.invalid,
    ];
    for (counter, n) in SAMPLES.iter().zip(by_outcome) {
        if n > 0 {
            counter.increment(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anomaly_workers::trainer::FitOutcome;
    use async_trait::async_trait;

    /// A predictor with no models and a trainer that refuses: every series stays warming.
    struct Nothing;

    #[async_trait]
    impl Scoring for Nothing {
        async fn predict(&self, series: &SeriesId, _: Point) -> Result<Prediction, PredictError> {
            Err(PredictError::ModelNotFound(series.clone()))
        }
    }

    #[async_trait]
    impl Training for Nothing {
        async fn fit(
            &self,
            _: SeriesId,
            _: TrainingSet,
            _: ModelSpec,
        ) -> Result<FitOutcome, TrainError> {
            Err(TrainError::Invalid(anomaly_workers::domain::InvalidInput(
                "refused".into(),
            )))
        }
    }

    fn request(name: &str, values: impl Iterator<Item = f64>) -> WriteRequest {
        use super::super::wire::Label;
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", name)],
                samples: values
                    .enumerate()
                    .map(|(i, value)| Sample {
                        value,
                        timestamp: 1000 * i as i64,
                    })
                    .collect(),
            }],
        }
    }

    async fn warming_points(receiver: &Receiver) -> usize {
        let tracked = receiver.tracked();
        let progress = tracked[0].progress.lock().await;
        match &progress.phase {
            Phase::Warming(points) => points.len(),
            _ => panic!("not warming"),
        }
    }

    /// A series that never fits (constant, or refused by the trainer) holds at most its
    /// warm-up's worth of points, however long it is written.
    #[tokio::test]
    async fn a_series_that_never_fits_holds_at_most_its_warm_up() {
        for values in [
            Box::new(std::iter::repeat_n(1.0, 10_000)) as Box<dyn Iterator<Item = f64>>,
            Box::new((0..10_000).map(|i| (i % 7) as f64)),
        ] {
            let settings = RemoteWriteSettings {
                warmup_points: 50,
                ..Default::default()
            };
            let receiver = Receiver::new(Arc::new(Nothing), Arc::new(Nothing), settings);
            let taken = receiver.ingest(request("flat", values)).await.unwrap();
            assert_eq!(taken.warming, 10_000);
            assert!(warming_points(&receiver).await < 50);
        }
    }
}

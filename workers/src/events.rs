//! The events that flow between roles, one topic each (`Topic`, below). Every event is keyed by its
//! series id (or role instance) so a series keeps its order on a partitioned bus.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::detector::Verdict;
use crate::domain::{Point, SeriesId, Version};
use crate::model::TrainedModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Metrics,
    TrainingData,
    Models,
    Anomalies,
    Predictions,
    Heartbeats,
    /// Points to score, written by any Kafka producer (`IngestedPoint`, plain JSON, keyed by
    /// series): the predictors share it as one consumer group, and a series belongs to the
    /// predictor holding its partition.
    Points,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::Metrics,
        Topic::TrainingData,
        Topic::Models,
        Topic::Anomalies,
        Topic::Predictions,
        Topic::Heartbeats,
        Topic::Points,
    ];

    /// The Kafka topic name.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Metrics => "metrics",
            Topic::TrainingData => "training-data",
            Topic::Models => "models",
            Topic::Anomalies => "anomalies",
            Topic::Predictions => "predictions",
            Topic::Heartbeats => "heartbeats",
            Topic::Points => "points",
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The roles that run workloads (and so send heartbeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Gateway,
    Trainer,
    Predictor,
    MetricsConsumer,
    TrainingDataConsumer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Gateway,
        Role::Trainer,
        Role::Predictor,
        Role::MetricsConsumer,
        Role::TrainingDataConsumer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Trainer => "trainer",
            Role::Predictor => "predictor",
            Role::MetricsConsumer => "metrics-consumer",
            Role::TrainingDataConsumer => "training-data-consumer",
        }
    }
}

/// Points a model version was trained on, for the training-data consumer to persist: the whole
/// set, or one chunk of it (a large fit is published in chunks, each well under the broker's
/// message limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    pub series_id: SeriesId,
    pub version: Version,
    /// The position of `points[0]` in the version's training set (0 for a whole set).
    #[serde(default)]
    pub first_seq: u32,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Training,
    Inference,
}

/// One timed operation (a fit; predictions are counted in `InferenceBatch`es); `id` lets a store
/// ignore a redelivered copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub id: Uuid,
    pub kind: MetricKind,
    pub series_id: SeriesId,
    pub latency_ms: f64,
    pub at_ms: i64,
}

/// A predictor's inference metrics over a short span (`Predictor`'s tally): one event for
/// thousands of predictions instead of one each. `id` lets a store ignore a redelivered copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceBatch {
    pub id: Uuid,
    /// The predictor instance that scored them (the partitioning key).
    pub source: String,
    /// When the span ended: the throughput minute every prediction of the batch is counted in.
    pub at_ms: i64,
    /// Predictions per series.
    pub uses: HashMap<SeriesId, u64>,
    /// Latencies of the span's newest predictions (at most `metrics::LATENCY_WINDOW`), in ms.
    pub latencies_ms: Vec<f64>,
}

impl InferenceBatch {
    /// Predictions counted in the batch.
    pub fn predictions(&self) -> u64 {
        self.uses.values().sum()
    }
}

/// A detector's kind: the static name when the predictor writes it (no copy per point), an owned
/// one when read back from a broker or a database.
pub type DetectorName = std::borrow::Cow<'static, str>;

/// A scored point, published on `predictions` (every one) and `anomalies` (anomalous ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The event's id and its cursor: a UUIDv7, so ids of one series grow in the order its points
    /// were scored (the predictor takes it under the series' lock) and sort as text.
    #[serde(default = "Uuid::now_v7")]
    pub id: Uuid,
    pub series_id: SeriesId,
    pub model_version: Version,
    pub detector: DetectorName,
    pub point: Point,
    pub verdict: Verdict,
    /// Whether the point raised an alert (always true on `anomalies`).
    #[serde(default)]
    pub alert: bool,
    pub at_ms: i64,
}

/// A role instance's sign of life with its system figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub role: Role,
    pub instance: String,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub load_avg: [f64; 3],
    pub at_ms: i64,
    /// A predictor's claim on series: where it answers and the partitions of `points` it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serves: Option<Serving>,
}

/// What a predictor announces so gateways route each series to it (see `Topic::Points`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serving {
    /// Where the predictor's internal routes answer (`ADVERTISED_URL`).
    pub url: String,
    /// The partitions of `points` this predictor's group member holds now.
    pub partitions: Vec<i32>,
    /// How many partitions `points` has.
    pub partition_count: i32,
}

/// A point to score, as any Kafka producer writes it on `points`: plain JSON (no envelope),
/// keyed by its series id. Checked when it is scored, as a `/predict` body is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestedPoint {
    pub series_id: String,
    pub timestamp: i64,
    pub value: f64,
    /// Set by the predictor that already scored the point (a `/predict`) and logged it here, so
    /// that whoever owns the series next learns it from the log if that predictor died before
    /// its learning was checkpointed. Such a point is never scored again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored: Option<ScoredBy>,
}

/// Points that predicts taught online models, logged on `points` as one record (keyed by the
/// first point's series; every point's series is on the record's partition): a predictor's
/// learning log groups the points scored while its previous record was on its way, so the
/// broker stores one record where it would store one per predict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearntPoints {
    /// In the order they were learnt; each carries `scored`.
    pub learnt: Vec<IngestedPoint>,
}

impl LearntPoints {
    /// The record's key: its first point's series.
    pub fn key(&self) -> &str {
        self.learnt.first().map_or("", |p| p.series_id.as_str())
    }
}

/// Who scored a logged point, and where it sits in its model version's learning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoredBy {
    /// The predictor process that scored it (`Predictor::scorer_id`).
    pub by: String,
    pub version: Version,
    /// How many points the version had learnt once it learnt this one.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    Metric(Metric),
    Inferences(InferenceBatch),
    TrainingData(TrainingData),
    Model(TrainedModel),
    /// One scored point shared by both topics' events and every in-process reader.
    Anomaly(Arc<Scored>),
    Prediction(Arc<Scored>),
    Heartbeat(Heartbeat),
    /// On the wire as the bare `IngestedPoint`, not in this envelope.
    Point(IngestedPoint),
    /// Points predicts taught, logged together (on the wire as the bare `LearntPoints`).
    Learnt(LearntPoints),
}

impl Event {
    pub fn topic(&self) -> Topic {
        match self {
            Event::Metric(_) | Event::Inferences(_) => Topic::Metrics,
            Event::TrainingData(_) => Topic::TrainingData,
            Event::Model(_) => Topic::Models,
            Event::Anomaly(_) => Topic::Anomalies,
            Event::Prediction(_) => Topic::Predictions,
            Event::Heartbeat(_) => Topic::Heartbeats,
            Event::Point(_) | Event::Learnt(_) => Topic::Points,
        }
    }

    /// The partitioning key: the series id, or the instance for heartbeats and inference batches.
    pub fn key(&self) -> &str {
        match self {
            Event::Metric(m) => m.series_id.as_str(),
            Event::Inferences(batch) => &batch.source,
            Event::TrainingData(t) => t.series_id.as_str(),
            Event::Model(m) => m.series_id.as_str(),
            Event::Anomaly(s) | Event::Prediction(s) => s.series_id.as_str(),
            Event::Heartbeat(h) => &h.instance,
            Event::Point(p) => &p.series_id,
            Event::Learnt(l) => l.key(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

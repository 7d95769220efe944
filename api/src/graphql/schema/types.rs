//! The schema's object and input types, and their conversions from the domain.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use serde::Serialize;

use anomaly_workers::detector::{AlertOptions, DetectorSpec};
use anomaly_workers::domain::{Point, SeriesId};
use anomaly_workers::events::{Heartbeat, Scored};
use anomaly_workers::model::TrainedModel;
use anomaly_workers::predictor::Prediction as Scoring;
use anomaly_workers::stats::StatsSnapshot;

use super::context::ContextExt;
use crate::error::ApiError;

/// A point of a series: Unix time in seconds and a finite value.
#[derive(Debug, Clone, Copy, SimpleObject)]
#[graphql(name = "Point")]
pub struct PointOut {
    pub timestamp: i64,
    pub value: f64,
}

impl From<Point> for PointOut {
    fn from(p: Point) -> Self {
        Self {
            timestamp: p.timestamp,
            value: p.value,
        }
    }
}

#[derive(Debug, Clone, Copy, InputObject)]
pub struct PointInput {
    pub timestamp: i64,
    pub value: f64,
}

impl PointInput {
    pub fn parse(self) -> Result<Point, ApiError> {
        Ok(Point::parse(self.timestamp, self.value)?)
    }
}

/// `DetectorKind`: one value per detector kind, from the detectors' registry (`ZSCORE` for
/// `zscore`).
macro_rules! detector_kind {
    ($($name:ident => $variant:ident $types:tt),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
        pub enum DetectorKind {
            $($variant,)*
        }

        impl DetectorKind {
            /// The kind's name, as `DetectorSpec` takes it.
            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($name),)*
                }
            }
        }
    };
}

anomaly_workers::for_each_detector!(detector_kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Above,
    Below,
    Both,
}

/// `DetectorInput`: the kind and the union of every kind's options, from the detectors' option
/// list. Its JSON is the REST `detector` field, so `DetectorSpec` parses both alike.
macro_rules! detector_input {
    ($($option:ident: $ty:ty),* $(,)?) => {
        /// A detector and its options; options left out take the documented defaults.
        #[derive(Debug, Clone, InputObject)]
        pub struct DetectorInput {
            pub kind: DetectorKind,
            $(pub $option: Option<$ty>,)*
        }

        impl DetectorInput {
            pub fn parse(self) -> Result<DetectorSpec, ApiError> {
                let mut fields = serde_json::Map::new();
                fields.insert("kind".into(), self.kind.name().into());
                $(
                    if let Some(value) = self.$option {
                        fields.insert(stringify!($option).into(), serde_json::json!(value));
                    }
                )*
                serde_json::from_value(serde_json::Value::Object(fields))
                    .map_err(|e| ApiError::bad_request(format!("detector: {e}")))
            }
        }
    };
}

anomaly_workers::for_each_detector_option!(detector_input);

/// How anomalies become alerts (see the README's detection section).
#[derive(Debug, Clone, Copy, InputObject)]
pub struct AlertsInput {
    pub rising_edge: Option<bool>,
    pub cooldown_secs: Option<u32>,
    pub quiet_points: Option<u32>,
}

impl AlertsInput {
    pub fn parse(self) -> AlertOptions {
        let defaults = AlertOptions::default();
        AlertOptions {
            rising_edge: self.rising_edge.unwrap_or(defaults.rising_edge),
            cooldown_secs: self.cooldown_secs.map_or(defaults.cooldown_secs, u64::from),
            quiet_points: self.quiet_points.map(u64::from),
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct FitResult {
    pub series_id: String,
    pub version: String,
    pub points_used: u32,
    pub detector: String,
}

/// A scored point as GraphQL shows it: the scored event as it came, shared, each field computed
/// only when selected (a subscription result sent to many subscribers copies no strings it was
/// not asked for).
#[derive(Debug, Clone)]
pub struct Prediction(Arc<Scored>);

/// A scored point: the verdict and its evidence.
#[Object]
impl Prediction {
    /// The scored point's event id: resume `anomalies` after it, or page the stored alerts from it.
    async fn cursor(&self) -> String {
        self.0.id.to_string()
    }

    async fn series_id(&self) -> &str {
        self.0.series_id.as_str()
    }

    async fn model_version(&self) -> String {
        self.0.model_version.to_string()
    }

    async fn detector(&self) -> &str {
        &self.0.detector
    }

    async fn timestamp(&self) -> i64 {
        self.0.point.timestamp
    }

    async fn value(&self) -> f64 {
        self.0.point.value
    }

    /// `score` > 1: the value lies outside the band on a watched side, or (`art`) its pattern
    /// is novel.
    async fn anomaly(&self) -> bool {
        self.0.verdict.anomaly
    }

    /// Whether the anomaly raised an alert (after rising-edge and cooldown suppression).
    async fn alert(&self) -> bool {
        self.0.alert
    }

    /// At most 1 is normal, above 1 anomalous.
    async fn score(&self) -> f64 {
        self.0.verdict.score
    }

    async fn expected(&self) -> f64 {
        self.0.verdict.expected
    }

    async fn lower(&self) -> Option<f64> {
        self.0.verdict.lower
    }

    async fn upper(&self) -> Option<f64> {
        self.0.verdict.upper
    }
}

/// A field of `Prediction`, as a prepared `predict` (`super::prepared`) renders it without
/// async-graphql's executor: every field of the type, read as its resolver above reads it (a
/// test compares the two answers byte for byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionField {
    Typename,
    Cursor,
    SeriesId,
    ModelVersion,
    Detector,
    Timestamp,
    Value,
    Anomaly,
    Alert,
    Score,
    Expected,
    Lower,
    Upper,
}

impl PredictionField {
    /// The field of that GraphQL name, if `Prediction` has it.
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "__typename" => Self::Typename,
            "cursor" => Self::Cursor,
            "seriesId" => Self::SeriesId,
            "modelVersion" => Self::ModelVersion,
            "detector" => Self::Detector,
            "timestamp" => Self::Timestamp,
            "value" => Self::Value,
            "anomaly" => Self::Anomaly,
            "alert" => Self::Alert,
            "score" => Self::Score,
            "expected" => Self::Expected,
            "lower" => Self::Lower,
            "upper" => Self::Upper,
            _ => return None,
        })
    }
}

impl Prediction {
    /// `field`'s value, as async-graphql's executor gives it.
    pub fn field(&self, field: PredictionField) -> async_graphql::Value {
        use async_graphql::{ScalarType, Value};
        let scored = &self.0;
        match field {
            PredictionField::Typename => Value::String("Prediction".to_owned()),
            PredictionField::Cursor => Value::String(scored.id.to_string()),
            PredictionField::SeriesId => Value::String(scored.series_id.as_str().to_owned()),
            PredictionField::ModelVersion => Value::String(scored.model_version.to_string()),
            PredictionField::Detector => Value::String(scored.detector.to_string()),
            PredictionField::Timestamp => scored.point.timestamp.to_value(),
            PredictionField::Value => scored.point.value.to_value(),
            PredictionField::Anomaly => Value::Boolean(scored.verdict.anomaly),
            PredictionField::Alert => Value::Boolean(scored.alert),
            PredictionField::Score => scored.verdict.score.to_value(),
            PredictionField::Expected => scored.verdict.expected.to_value(),
            PredictionField::Lower => scored.verdict.lower.map_or(Value::Null, |v| v.to_value()),
            PredictionField::Upper => scored.verdict.upper.map_or(Value::Null, |v| v.to_value()),
        }
    }
}

impl Prediction {
    /// The scored event it shows.
    #[cfg(test)]
    pub fn event(&self) -> &Scored {
        &self.0
    }
}

impl From<Scoring> for Prediction {
    fn from(p: Scoring) -> Self {
        Self(Arc::new(Scored {
            id: p.event_id,
            series_id: p.series_id,
            model_version: p.model_version,
            detector: p.detector,
            point: p.point,
            verdict: p.verdict,
            alert: p.alert,
            // When it was scored is not part of the GraphQL type.
            at_ms: 0,
        }))
    }
}

impl From<Arc<Scored>> for Prediction {
    fn from(event: Arc<Scored>) -> Self {
        Self(event)
    }
}

impl From<Scored> for Prediction {
    fn from(event: Scored) -> Self {
        Self(Arc::new(event))
    }
}

/// A series and its model versions.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Series {
    pub id: String,
    #[graphql(skip)]
    pub series: SeriesId,
    /// Its versions when the resolver already loaded them; otherwise the loader fetches them.
    #[graphql(skip)]
    pub loaded: Option<Vec<TrainedModel>>,
}

impl Series {
    pub fn new(series: SeriesId) -> Self {
        Self {
            id: series.to_string(),
            series,
            loaded: None,
        }
    }

    pub fn with_models(series: SeriesId, models: Vec<TrainedModel>) -> Self {
        Self {
            loaded: Some(models),
            ..Self::new(series)
        }
    }
}

pub(super) fn load_error(
    err: std::sync::Arc<anomaly_workers::store::StoreError>,
) -> async_graphql::Error {
    ApiError::from((*err).clone()).into_graphql()
}

#[ComplexObject]
impl Series {
    /// Every version, oldest first.
    async fn models(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Model>> {
        let models = match &self.loaded {
            Some(models) => models.clone(),
            None => ctx
                .models_loader()
                .load_one(self.series.clone())
                .await
                .map_err(load_error)?
                .unwrap_or_default(),
        };
        Ok(models.into_iter().map(Model).collect())
    }

    /// The newest version, the one `predict` uses.
    async fn latest(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Model>> {
        Ok(self.models(ctx).await?.pop())
    }
}

/// One model version of a series.
#[derive(Debug, Clone)]
pub struct Model(pub TrainedModel);

#[async_graphql::Object]
impl Model {
    async fn series_id(&self) -> String {
        self.0.series_id.to_string()
    }

    async fn version(&self) -> String {
        self.0.version.to_string()
    }

    async fn detector(&self) -> &str {
        self.0.detector.name()
    }

    async fn points_used(&self) -> u32 {
        self.0.points_used
    }

    /// When it was trained, in Unix milliseconds.
    async fn created_at_ms(&self) -> f64 {
        self.0.created_at_ms as f64
    }

    /// The points it was trained on, in time order, a page at a time: `first` points (at most
    /// 10000) after skipping `offset`. `pointsUsed` says how many there are.
    async fn training_data(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1000)] first: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> async_graphql::Result<Vec<PointOut>> {
        let max = super::guard::TRAINING_PAGE_MAX;
        let first = u64::try_from(first)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                ApiError::bad_request(format!("first must be between 0 and {max}")).into_graphql()
            })?;
        let offset = usize::try_from(offset)
            .map_err(|_| ApiError::bad_request("offset must not be negative").into_graphql())?;
        let loader = ctx.training_data_loader();
        let points = loader
            .load_one((self.0.series_id.clone(), self.0.version))
            .await
            .map_err(load_error)?
            .unwrap_or_default();
        Ok(points
            .into_iter()
            .skip(offset)
            .take(first as usize)
            .map(Into::into)
            .collect())
    }
}

#[derive(Debug, Clone, Copy, SimpleObject)]
pub struct Latency {
    pub avg_ms: f64,
    pub p95_ms: f64,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct SeriesUsage {
    pub series_id: String,
    pub predictions: u64,
}

/// A live role instance and its system figures.
#[derive(Debug, Clone, SimpleObject)]
pub struct Instance {
    pub role: String,
    pub instance: String,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub load_avg: Vec<f64>,
    pub last_seen_ms: f64,
}

impl From<Heartbeat> for Instance {
    fn from(h: Heartbeat) -> Self {
        Self {
            role: h.role.name().to_owned(),
            instance: h.instance,
            cpu_percent: h.cpu_percent,
            memory_percent: h.memory_percent,
            load_avg: h.load_avg.to_vec(),
            last_seen_ms: h.at_ms as f64,
        }
    }
}

/// Everything `/healthcheck` reports, typed.
#[derive(Debug, Clone, SimpleObject)]
pub struct Health {
    pub series_trained: u64,
    pub inference_latency: Latency,
    pub training_latency: Latency,
    pub trainings_per_minute: f64,
    pub predictions_per_minute: f64,
    /// The most used series, at most `HEALTH_TOP_SERIES` of them (of equally used ones, the
    /// smaller ids).
    pub model_usage: Vec<SeriesUsage>,
    pub instances: Vec<Instance>,
}

impl From<StatsSnapshot> for Health {
    fn from(s: StatsSnapshot) -> Self {
        Self {
            series_trained: s.series_trained,
            inference_latency: Latency {
                avg_ms: s.inference_latency.avg,
                p95_ms: s.inference_latency.p95,
            },
            training_latency: Latency {
                avg_ms: s.training_latency.avg,
                p95_ms: s.training_latency.p95,
            },
            trainings_per_minute: s.training_per_minute,
            predictions_per_minute: s.inference_per_minute,
            model_usage: s
                .model_usage
                .into_iter()
                .map(|(series_id, predictions)| SeriesUsage {
                    series_id,
                    predictions,
                })
                .collect(),
            instances: s.instances.into_iter().map(Into::into).collect(),
        }
    }
}

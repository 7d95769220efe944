//! The health statistics port (`StatsStore`): where the metrics consumer keeps latencies,
//! throughput, model usage and heartbeats, and where `/healthcheck` reads them. One trait, one
//! file per backend (`memory` for the embedded default, `redis` for the distributed deployment),
//! one contract suite.
//!
//! Three things were all called "metrics"; each now has its own name: these statistics
//! (`stats`, `StatsStore`), the events they are made from (the `metrics` topic: `Event::Metric`
//! and `Event::Inferences`, named as the deployment's topics and roles are), and the Prometheus
//! series at `/metrics` (the `metrics` crate, `api/src/prometheus.rs`).

pub mod latency;
mod memory;
mod redis;

#[cfg(test)]
mod contract;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;

use crate::events::{Heartbeat, InferenceBatch, Metric};

pub use self::redis::RedisStats;
pub use latency::LatencySummary;
pub use memory::MemoryStats;

/// How many recent latency samples each kind keeps: the window avg and p95 are computed over.
pub const LATENCY_WINDOW: usize = 1000;
/// How many minutes of throughput history are kept.
pub const THROUGHPUT_MINUTES: i64 = 60;
/// A role instance whose last heartbeat is older than this is no longer listed.
pub const HEARTBEAT_TTL_MS: i64 = 30_000;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("the metrics store is unavailable: {0}")]
    Unavailable(#[source] crate::cause::Cause),
}

/// Everything `/healthcheck` reports, as of one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSnapshot {
    pub series_trained: u64,
    pub training_latency: LatencySummary,
    pub inference_latency: LatencySummary,
    pub training_per_minute: f64,
    pub inference_per_minute: f64,
    /// The most used series (at most the `top_usage` asked for) and their predictions.
    pub model_usage: BTreeMap<String, u64>,
    /// Live instances (heartbeat within `HEARTBEAT_TTL_MS`), newest first per role.
    pub instances: Vec<Heartbeat>,
}

/// The order `instances` are listed in: by role, newest heartbeat first, then by name.
pub(crate) fn sort_instances(instances: &mut [Heartbeat]) {
    instances.sort_by(|a, b| {
        (a.role, std::cmp::Reverse(a.at_ms), &a.instance).cmp(&(
            b.role,
            std::cmp::Reverse(b.at_ms),
            &b.instance,
        ))
    });
}

#[async_trait]
pub trait StatsStore: Send + Sync + 'static {
    /// Records one timed operation. Recording the same metric id twice counts it once.
    async fn record(&self, metric: &Metric) -> Result<(), StatsError>;

    /// Records a batch of predictions: each series' uses, the batch's latencies and its count in
    /// the minute of `at_ms`. Recording the same batch id twice counts it once.
    async fn record_inferences(&self, batch: &InferenceBatch) -> Result<(), StatsError>;

    /// Records a role instance's heartbeat, replacing its previous one.
    async fn record_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), StatsError>;

    /// The figures as of `now_ms`, with the `top_usage` most used series (of equally used ones,
    /// the smaller ids): what it costs does not grow with the number of series used.
    async fn snapshot(&self, now_ms: i64, top_usage: usize) -> Result<StatsSnapshot, StatsError>;
}

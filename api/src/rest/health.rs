//! `GET /healthcheck`: the seed's shape (latencies, throughput, usage, system figures of trainer
//! and predictor), plus every live role instance. The route is public, so `model_usage` lists
//! only the `HEALTH_TOP_SERIES` most used series: its size does not grow with the series count.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use anomaly_workers::events::{Heartbeat, Role, now_ms};
use anomaly_workers::stats::LatencySummary;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
pub struct HealthAnswer {
    series_trained: u64,
    inference_latency_ms: LatencySummary,
    training_latency_ms: LatencySummary,
    throughput: Throughput,
    model_usage: BTreeMap<String, u64>,
    system_metrics: SystemMetrics,
    instances: Vec<Instance>,
}

#[derive(Serialize)]
struct Throughput {
    trainer: PerMinute,
    predictor: PerMinute,
}

#[derive(Serialize)]
struct PerMinute {
    avg_per_minute: f64,
}

/// The newest figures of each role; null until its first heartbeat arrives.
#[derive(Serialize)]
struct SystemMetrics {
    trainer: Option<Figures>,
    predictor: Option<Figures>,
}

#[derive(Serialize)]
struct Figures {
    cpu_percent: f64,
    memory_percent: f64,
    load_avg: [f64; 3],
}

#[derive(Serialize)]
struct Instance {
    role: Role,
    instance: String,
    cpu_percent: f64,
    memory_percent: f64,
    load_avg: [f64; 3],
    last_seen_ms: i64,
}

fn figures_of(instances: &[Heartbeat], role: Role) -> Option<Figures> {
    instances
        .iter()
        .filter(|h| h.role == role)
        .max_by_key(|h| h.at_ms)
        .map(|h| Figures {
            cpu_percent: round2(h.cpu_percent),
            memory_percent: round2(h.memory_percent),
            load_avg: h.load_avg.map(round2),
        })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round_latency(s: LatencySummary) -> LatencySummary {
    // Microsecond resolution: finer digits are noise, and zero would hide a real sub-ms figure.
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    LatencySummary {
        avg: r(s.avg),
        p95: r(s.p95),
    }
}

/// Series with a model, counted in the database (the metrics store only sees trainings since it
/// started); the metrics store's count when the database does not answer.
pub async fn series_trained(state: &AppState, counted_by_metrics: u64) -> u64 {
    match state.store.count_series().await {
        Ok(n) => n,
        Err(err) => {
            tracing::warn!(error = %err, "counting series in the database failed");
            counted_by_metrics
        }
    }
}

pub async fn healthcheck(State(state): State<AppState>) -> Result<Json<HealthAnswer>, ApiError> {
    let top = state.config.health_top_series;
    let snap = state.stats.snapshot(now_ms(), top).await?;
    Ok(Json(HealthAnswer {
        series_trained: series_trained(&state, snap.series_trained).await,
        inference_latency_ms: round_latency(snap.inference_latency),
        training_latency_ms: round_latency(snap.training_latency),
        throughput: Throughput {
            trainer: PerMinute {
                avg_per_minute: round2(snap.training_per_minute),
            },
            predictor: PerMinute {
                avg_per_minute: round2(snap.inference_per_minute),
            },
        },
        model_usage: snap.model_usage,
        system_metrics: SystemMetrics {
            trainer: figures_of(&snap.instances, Role::Trainer),
            predictor: figures_of(&snap.instances, Role::Predictor),
        },
        instances: snap
            .instances
            .iter()
            .map(|h| Instance {
                role: h.role,
                instance: h.instance.clone(),
                cpu_percent: round2(h.cpu_percent),
                memory_percent: round2(h.memory_percent),
                load_avg: h.load_avg.map(round2),
                last_seen_ms: h.at_ms,
            })
            .collect(),
    }))
}

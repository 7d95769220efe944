//! Liveness and readiness for orchestrators, on every role: `/livez` answers 200 while the
//! process serves at all; `/readyz` answers 200 when the backends the role needs answer (the
//! database, the metrics store), else 503 naming what is down. Both are public and cheap;
//! `/healthcheck` keeps the seed's shape and its figures.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use anomaly_workers::events::now_ms;
use anomaly_workers::stats::StatsStore;
use anomaly_workers::store::Models;

/// How long a backend may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type Probe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// One backend a role needs, and how to ask whether it answers.
#[derive(Clone)]
pub struct Check {
    /// The name `/readyz` reports it under.
    name: &'static str,
    /// What `/readyz` says when it does not answer.
    down: &'static str,
    probe: Probe,
}

impl Check {
    /// The database answers `SELECT 1`.
    pub fn database(store: Arc<dyn Models>) -> Self {
        Self {
            name: "database",
            down: "The database is unavailable",
            probe: Arc::new(move || {
                let store = store.clone();
                Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
            }),
        }
    }

    /// The metrics store answers a snapshot.
    pub fn metrics(metrics: Arc<dyn StatsStore>) -> Self {
        Self {
            name: "metrics_store",
            down: "The metrics store is unavailable",
            probe: Arc::new(move || {
                let metrics = metrics.clone();
                Box::pin(async move {
                    metrics
                        .snapshot(now_ms(), 0)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            }),
        }
    }
}

/// `/livez` and `/readyz` for a role that needs `checks`.
pub fn routes(checks: Vec<Check>) -> Router {
    Router::new()
        .route(crate::openapi::operation("/livez"), get(live))
        .route(crate::openapi::operation("/readyz"), get(ready))
        .with_state(Arc::new(checks))
}

async fn live() -> Response {
    Json(json!({ "status": "live" })).into_response()
}

async fn ready(State(checks): State<Arc<Vec<Check>>>) -> Response {
    let mut report = Map::new();
    let mut all_ready = true;
    for check in checks.iter() {
        let answer = match tokio::time::timeout(CHECK_TIMEOUT, (check.probe)()).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        };
        let status = match answer {
            Ok(()) => "ok",
            Err(cause) => {
                tracing::warn!(%cause, check = check.name, "not ready");
                all_ready = false;
                check.down
            }
        };
        report.insert(check.name.to_owned(), Value::from(status));
    }
    let (status, word) = if all_ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (status, Json(json!({ "status": word, "checks": report }))).into_response()
}

/// Whether a request is for a probe (public even with `API_TOKEN`).
pub fn is_probe(path: &str) -> bool {
    path == "/livez" || path == "/readyz"
}

//! Prometheus metrics: one recorder per process (the `metrics` crate's facade, rendered by
//! `metrics-exporter-prometheus` without its own HTTP server), served at `GET /metrics` by every
//! role that answers HTTP, and the request middleware that counts and times each route. The
//! domain counters (predictions, anomalies, fits, training points, the model cache, consumers)
//! are recorded where they happen, in `anomaly-workers`; README lists every name.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds of the request duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The process's recorder, installed on first use (every role and test process shares one).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".into()),
                &DURATION_BUCKETS,
            )
            .expect("static, non-empty buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness): this one still renders
        // what is recorded through it... only if it is the global one, so say so.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows none");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "anomaly_http_requests_total",
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        "anomaly_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route"
    );
    describe_counter!(
        "anomaly_graphql_operations_total",
        "GraphQL operations run, by type (query, mutation, subscription)"
    );
    describe_counter!(
        "anomaly_graphql_refused_total",
        "GraphQL requests refused before they ran, by code"
    );
    describe_gauge!(
        "anomaly_subscriptions_open",
        "GraphQL subscriptions open, by field"
    );
    describe_counter!(
        "anomaly_backend_unavailable_total",
        "Requests answered 503 because a backend or role was down, by backend"
    );
}

/// `GET /metrics`.
pub fn routes() -> Router {
    Router::new().route("/metrics", get(render))
}

async fn render() -> Response {
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// Middleware: counts and times every request by its route (the matched pattern, never the
/// raw path, so series ids do not become labels).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "anomaly_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "anomaly_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Whether a request is for the metrics (public, like the probes: scrapers carry no token).
pub fn is_metrics(path: &str) -> bool {
    path == "/metrics"
}

//! Prometheus metrics: one recorder per process (the `metrics` crate's facade, rendered by
//! `metrics-exporter-prometheus` without its own HTTP server), served at `GET /metrics` by every
//! role that answers HTTP, and the handles `routed` counts and times each route with. The
//! domain counters (predictions, anomalies, fits, training points, the model cache, consumers)
//! are recorded where they happen, in `anomaly-workers`; README lists every name.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds of the request duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

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
        // Histogram samples wait in a buffer until upkeep folds them into buckets: without it,
        // a process nobody scrapes would keep every request's sample.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
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

/// The method as a label: one of the standard ones, else `OTHER` (a client cannot mint label
/// values).
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    const LABELS: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    STANDARD
        .iter()
        .position(|m| m == method)
        .map_or("OTHER", |i| LABELS[i])
}

/// The request counter (per status) and duration histogram of one route pattern (never the raw
/// path, so series ids do not become labels) and method, registered once: a labelled key costs
/// allocations and hashing of every label when it is looked up per request.
pub(crate) struct RouteHandles {
    method: &'static str,
    route: String,
    duration: Histogram,
    /// Counters per status code, added as codes appear.
    counters: RwLock<HashMap<u16, Counter>>,
}

impl RouteHandles {
    pub(crate) fn of(route: &str, method: &Method) -> Arc<Self> {
        let method = method_label(method);
        type Table = RwLock<HashMap<String, HashMap<&'static str, Arc<RouteHandles>>>>;
        static TABLE: LazyLock<Table> = LazyLock::new(Default::default);
        let found = TABLE
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
            .and_then(|methods| methods.get(method).cloned());
        if let Some(found) = found {
            return found;
        }
        let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
        table
            .entry(route.to_owned())
            .or_default()
            .entry(method)
            .or_insert_with(|| {
                Arc::new(Self {
                    method,
                    route: route.to_owned(),
                    duration: metrics::histogram!(
                        "anomaly_http_request_duration_seconds",
                        "method" => method,
                        "route" => route.to_owned()
                    ),
                    counters: Default::default(),
                })
            })
            .clone()
    }

    pub(crate) fn record(&self, status: u16, seconds: f64) {
        self.duration.record(seconds);
        if let Some(counter) = self
            .counters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&status)
        {
            counter.increment(1);
            return;
        }
        let mut counters = self.counters.write().unwrap_or_else(|e| e.into_inner());
        counters
            .entry(status)
            .or_insert_with(|| {
                metrics::counter!(
                    "anomaly_http_requests_total",
                    "method" => self.method,
                    "route" => self.route.clone(),
                    "status" => status.to_string()
                )
            })
            .increment(1);
    }
}

/// Whether a request is for the metrics (public, like the probes: scrapers carry no token).
pub fn is_metrics(path: &str) -> bool {
    path == "/metrics"
}

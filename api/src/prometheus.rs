//! Prometheus metrics: one recorder per process (the `metrics` crate's facade, rendered by
//! `metrics-exporter-prometheus` without its own HTTP server), served at `GET /metrics` by every
//! role that answers HTTP, and the handles `routed` counts and times each route with. The
//! domain counters (predictions, anomalies, fits, training points, the model cache, consumers)
//! are recorded where they happen, in `anomaly-workers`; README lists every name.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{LazyLock, OnceLock, RwLock};

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
        "anomaly_graphql_prepared_total",
        "GraphQL operations run from a prepared plan (the hot predict mutation), not the executor"
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
    Router::new().route(crate::openapi::operation("/metrics"), get(render))
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

/// Methods with a label of their own; any other is `OTHER` (a client cannot mint label values).
const METHODS: [(Method, &str); 9] = [
    (Method::GET, "GET"),
    (Method::POST, "POST"),
    (Method::PUT, "PUT"),
    (Method::DELETE, "DELETE"),
    (Method::HEAD, "HEAD"),
    (Method::OPTIONS, "OPTIONS"),
    (Method::PATCH, "PATCH"),
    (Method::CONNECT, "CONNECT"),
    (Method::TRACE, "TRACE"),
];

/// `map[key]`, made by `make` and kept the first time it is asked for (the usual path takes a
/// read lock only).
fn kept<K, Q, V>(map: &RwLock<HashMap<K, V>>, key: &Q, make: impl FnOnce() -> (K, V)) -> V
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
    V: Clone,
{
    if let Some(value) = map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
        return value.clone();
    }
    let (key, value) = make();
    let mut map = map.write().unwrap_or_else(|e| e.into_inner());
    map.entry(key).or_insert(value).clone()
}

/// The request counter (per status) and duration histogram of one route pattern (never the raw
/// path, so series ids do not become labels) and method, registered once and kept for the
/// process's life (route patterns and methods are few): a labelled key costs allocations and
/// hashing of every label when it is looked up per request.
pub(crate) struct RouteHandles {
    method: &'static str,
    route: String,
    duration: Histogram,
    /// The counter of 200 answers, the usual status, reached without a lookup.
    ok: OnceLock<Counter>,
    /// Counters per other status code, added as codes appear.
    counters: RwLock<HashMap<u16, Counter>>,
}

thread_local! {
    /// The handles this thread used last: a busy route is found again without touching the
    /// shared table (its lock and reference counts are contended between worker threads).
    static LAST_USED: std::cell::Cell<Option<&'static RouteHandles>> =
        const { std::cell::Cell::new(None) };
}

impl RouteHandles {
    pub(crate) fn of(route: &str, method: &Method) -> &'static Self {
        type Table = RwLock<HashMap<String, &'static RouteHandles>>;
        /// One table per labelled method, the last for `OTHER`.
        static TABLES: LazyLock<[Table; METHODS.len() + 1]> = LazyLock::new(Default::default);
        let at = METHODS
            .iter()
            .position(|(m, _)| m == method)
            .unwrap_or(METHODS.len());
        let method = METHODS.get(at).map_or("OTHER", |(_, label)| *label);
        if let Some(last) = LAST_USED.get()
            && last.method == method
            && last.route == route
        {
            return last;
        }
        let handles = kept(&TABLES[at], route, || {
            let handles = Self {
                method,
                route: route.to_owned(),
                duration: metrics::histogram!(
                    "anomaly_http_request_duration_seconds",
                    "method" => method,
                    "route" => route.to_owned()
                ),
                ok: OnceLock::new(),
                counters: Default::default(),
            };
            (route.to_owned(), &*Box::leak(Box::new(handles)))
        });
        LAST_USED.set(Some(handles));
        handles
    }

    /// The method's label (`OTHER` for a method without one of its own).
    pub(crate) fn method(&self) -> &'static str {
        self.method
    }

    /// The route pattern.
    pub(crate) fn route(&self) -> &str {
        &self.route
    }

    pub(crate) fn record(&self, status: u16, seconds: f64) {
        self.duration.record(seconds);
        if status == 200 {
            self.ok.get_or_init(|| self.counter(200)).increment(1);
        } else {
            kept(&self.counters, &status, || (status, self.counter(status))).increment(1);
        }
    }

    fn counter(&self, status: u16) -> Counter {
        metrics::counter!(
            "anomaly_http_requests_total",
            "method" => self.method,
            "route" => self.route.clone(),
            "status" => status.to_string()
        )
    }
}

/// Whether a request is for the metrics (public, like the probes: scrapers carry no token).
pub fn is_metrics(path: &str) -> bool {
    path == "/metrics"
}

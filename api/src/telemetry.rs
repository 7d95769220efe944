//! Logging and tracing, set up once. Logs: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json`
//! for JSON lines. Traces: off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set, then every span is
//! exported over OTLP/HTTP (the standard `OTEL_*` variables apply; the service is named
//! `anomaly-<command>` unless `OTEL_SERVICE_NAME` says otherwise). The W3C trace context travels
//! with every call the gateway makes to a trainer or predictor (and, in `anomaly-workers`, with
//! every event on Kafka), so one request is one trace across processes.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Keeps the trace exporter running; dropping it flushes and stops it.
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("anomaly: flushing traces failed: {err}");
        }
    }
}

/// Installs logging, and trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub fn init(format: LogFormat, service: &str) -> Telemetry {
    let exporting = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .is_ok_and(|endpoint| !endpoint.trim().is_empty());
    let provider = exporting.then(|| otlp_provider(service)).flatten();
    install(format, provider.clone());
    Telemetry { provider }
}

/// Installs logging with spans also going to `provider` (tests pass one with an in-memory
/// exporter).
pub fn install(format: LogFormat, provider: Option<SdkTracerProvider>) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm_migration=warn"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(colours_wanted())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
    };
    EXPORTING.store(provider.is_some(), std::sync::atomic::Ordering::Relaxed);
    let traces = provider.map(|provider| {
        let tracer = provider.tracer("anomaly");
        opentelemetry::global::set_tracer_provider(provider);
        tracing_opentelemetry::layer().with_tracer(tracer)
    });
    // A subscriber may already be installed (tests); keep it.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
}

/// Colours only for a person at a terminal: a log file, journald or a collector gets plain text
/// (escape codes there are noise, and writing them cost every request's span about a tenth of its
/// formatting); `NO_COLOR` turns them off anywhere.
fn colours_wanted() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn otlp_provider(service: &str) -> Option<SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("anomaly: OTEL_EXPORTER_OTLP_ENDPOINT is set but the exporter failed: {err}");
            return None;
        }
    };
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("anomaly-{service}"));
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(name)
                    .build(),
            )
            .build(),
    )
}

/// The current span's trace context as W3C headers, for an outgoing call.
pub fn trace_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(
            &context,
            &mut opentelemetry_http::HeaderInjector(&mut headers),
        );
    });
    headers
}

/// The current span's `traceparent` and `tracestate`, for a call that carries them in its body;
/// none when no trace is being recorded.
pub fn trace_context() -> (Option<String>, Option<String>) {
    let mut headers = trace_headers();
    let mut take = |name: &str| {
        headers
            .remove(name)
            .and_then(|value| value.to_str().ok().map(str::to_owned))
    };
    (take("traceparent"), take("tracestate"))
}

/// Makes `span` a child of the trace a `traceparent` (and `tracestate`) names.
pub fn continue_trace_from(span: &tracing::Span, traceparent: &str, tracestate: Option<String>) {
    let mut headers = axum::http::HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = axum::http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("traceparent", traceparent);
    if let Some(tracestate) = tracestate.as_deref() {
        put("tracestate", tracestate);
    }
    continue_trace(span, &headers);
}

/// Makes `span` a child of the trace an incoming request carries, if it carries one.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    // Most requests carry no trace: skip the propagator's lookup and parse for them.
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    use opentelemetry::trace::TraceContextExt as _;
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Whether spans are exported (`install` was given a trace provider).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The span of one HTTP request (method, route pattern, request id), continuing the caller's
/// trace when the request carries one (`routed` runs the request in it). It is an `info` span
/// when traces are exported, else a `debug` one of target `anomaly_api::routed`, on with the
/// access log (`RUST_LOG=info,anomaly_api::routed=debug`): at the default `info` a span per
/// request, formatted as it opens, cost about a tenth of REST predict's throughput, and a 5xx's
/// error line names its method, route and id itself.
pub(crate) fn request_span(request: &axum::extract::Request) -> tracing::Span {
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unmatched)", axum::extract::MatchedPath::as_str);
    let id = crate::edge::request_id(request);
    let span = if EXPORTING.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info_span!(target: "anomaly_api::routed", "request", method = %request.method(), path, id)
    } else {
        tracing::debug_span!(target: "anomaly_api::routed", "request", method = %request.method(), path, id)
    };
    if !span.is_disabled() {
        continue_trace(&span, request.headers());
    }
    span
}

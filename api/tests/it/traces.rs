//! One distributed fit is one trace: the gateway's request span and the trainer's, in different
//! servers (here in one test process, with the SDK's in-memory exporter standing in for an OTLP
//! collector), share a trace id, the trainer's request a child of the gateway's call. So is one
//! distributed predict, though its point travels to the predictor in a batch shared with others.

use std::sync::Arc;

use anomaly_api::config::LogFormat;
use anomaly_api::process::parts;
use anomaly_api::roles::internal::{predictor_routes, trainer_routes};
use anomaly_api::roles::remote::{RemotePredictors, RemoteTrainer};
use anomaly_workers::bus::MemoryBus;
use anomaly_workers::predictor::Predictor;
use anomaly_workers::stats::MemoryStats;
use anomaly_workers::store::SqlStore;
use anomaly_workers::trainer::Trainer;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

use crate::demo_scenario::{T0, fit_body};
use crate::support::{Http, eventually, serve};

fn path_of(span: &SpanData) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == "path")
        .map(|kv| match &kv.value {
            Value::String(s) => s.as_str().to_owned(),
            other => other.to_string(),
        })
}

/// Spans recorded in memory from now on: the process's telemetry exports to the returned exporter.
fn record_spans() -> (InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    anomaly_api::telemetry::install(LogFormat::Text, Some(provider.clone()));
    (exporter, provider)
}

/// A store on a fresh SQLite file (kept while the directory lives) and an in-process bus.
async fn store_and_bus() -> (Arc<SqlStore>, Arc<MemoryBus>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    (store, Arc::new(MemoryBus::new(64)), dir)
}

/// A gateway on `services` with the default limits.
async fn gateway(services: parts::Gateway) -> Http {
    let config = anomaly_api::config::Config::from_lookup(|_| None).unwrap();
    let app = parts::gateway(Arc::new(config), services, Default::default())
        .await
        .unwrap();
    Http::new(serve(app).await)
}

/// `remote` (another server's span) is in `gateway`'s trace, under one of its spans.
fn assert_continues(spans: &[SpanData], gateway: &SpanData, remote: &SpanData) {
    let trace = gateway.span_context.trace_id();
    assert_eq!(remote.span_context.trace_id(), trace, "one trace");
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .map(|s| s.span_context.span_id())
        .collect();
    assert!(in_trace.contains(&remote.parent_span_id), "{spans:#?}");
    assert_ne!(
        remote.span_context.span_id(),
        gateway.span_context.span_id()
    );
}

#[tokio::test]
async fn a_distributed_fit_is_one_trace_across_gateway_and_trainer() {
    let (exporter, provider) = record_spans();
    let (store, bus, _dir) = store_and_bus().await;
    let trainer = Arc::new(Trainer::storing_points(store.clone(), bus.clone()));
    let trainer_url = serve(anomaly_api::roles::observed(trainer_routes(
        trainer,
        1 << 20,
    )))
    .await;
    let gateway = gateway(parts::Gateway {
        training: Arc::new(RemoteTrainer::new(&trainer_url)),
        scoring: Arc::new(RemotePredictors::new(&["http://127.0.0.1:9".to_owned()])),
        store,
        stats: Arc::new(MemoryStats::new()),
        bus,
    })
    .await;

    let answer = gateway.fit("traced", &fit_body(1)).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    // A server's request span ends when it has finished sending the answer, which may be just
    // after the client has read it.
    let has = |path: &'static str| {
        let exporter = exporter.clone();
        move || {
            let found = exporter
                .get_finished_spans()
                .unwrap()
                .iter()
                .any(|s| path_of(s).as_deref() == Some(path));
            async move { found }
        }
    };
    eventually(
        "the trainer's request span ends",
        has("/internal/fit/{series_id}"),
    )
    .await;
    eventually("the gateway's request span ends", has("/fit/{series_id}")).await;
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let gateway_span = spans
        .iter()
        .find(|s| path_of(s).as_deref() == Some("/fit/{series_id}"))
        .unwrap_or_else(|| panic!("no gateway request span in {spans:#?}"));
    let trainer_span = spans
        .iter()
        .find(|s| path_of(s).as_deref() == Some("/internal/fit/{series_id}"))
        .unwrap_or_else(|| panic!("no trainer request span in {spans:#?}"));
    assert_continues(&spans, gateway_span, trainer_span);
}

#[tokio::test]
async fn a_distributed_predict_is_one_trace_across_gateway_and_predictor() {
    let (exporter, provider) = record_spans();
    let (store, bus, _dir) = store_and_bus().await;
    let predictor = Arc::new(Predictor::new(store.clone(), bus.clone(), 100));
    let predictor_url = serve(anomaly_api::roles::observed(predictor_routes(
        predictor,
        1 << 20,
    )))
    .await;
    let gateway = gateway(parts::Gateway {
        training: Arc::new(Trainer::storing_points(store.clone(), bus.clone())),
        scoring: Arc::new(RemotePredictors::new(&[predictor_url])),
        store,
        stats: Arc::new(MemoryStats::new()),
        bus,
    })
    .await;

    assert_eq!(gateway.fit("traced", &fit_body(1)).await.status, 200);
    let answer = gateway.predict("traced", T0 + 86_400, 10.5).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    let finished = |check: fn(&SpanData) -> bool| {
        let exporter = exporter.clone();
        move || {
            let found = exporter.get_finished_spans().unwrap().iter().any(check);
            async move { found }
        }
    };
    eventually(
        "the predictor's span of the point ends",
        finished(|s| s.name == "predict"),
    )
    .await;
    eventually(
        "the gateway's request span ends",
        finished(|s| path_of(s).as_deref() == Some("/predict/{series_id}")),
    )
    .await;
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let gateway_span = spans
        .iter()
        .find(|s| path_of(s).as_deref() == Some("/predict/{series_id}"))
        .unwrap_or_else(|| panic!("no gateway request span in {spans:#?}"));
    let predict_span = spans
        .iter()
        .find(|s| s.name == "predict")
        .unwrap_or_else(|| panic!("no predictor span in {spans:#?}"));
    assert_continues(&spans, gateway_span, predict_span);
}

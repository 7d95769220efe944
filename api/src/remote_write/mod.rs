//! anomaly as a Prometheus remote-write receiver (`POST /api/v1/write`, remote write 1.0), so a
//! `remote_write` entry in prometheus.yml feeds series straight into the detectors, and the
//! results back out as Prometheus series (`GET /federate`, or pushed by remote write). Answers
//! as Prometheus expects: 204 when taken; 400, 413 or 415 for a request that is wrong as sent
//! (Prometheus drops it and does not retry); 503 only when a backend is down and sending the
//! same request again will help.

pub mod identity;
pub mod receiver;
pub mod results;
pub mod selector;
pub mod wire;

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use anomaly_workers::predictor::Scoring;
use anomaly_workers::trainer::Training;

use crate::error::ApiError;

pub use receiver::{Receiver, RemoteWriteSettings};
pub use selector::Selector;

/// The receiver's configuration: how series are modelled, and where results are pushed.
#[derive(Debug, Clone, Default)]
pub struct RemoteWriteConfig {
    pub settings: RemoteWriteSettings,
    /// A remote write URL the results are pushed to as they are scored; none: only `/federate`.
    pub results_url: Option<String>,
    /// Bearer token sent with the pushed results.
    pub results_token: Option<String>,
    /// Scored samples waiting to be pushed, at most.
    pub results_queue: usize,
}

/// How often series no longer written are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The receiver, its results push and its sweep of forgotten series, started.
pub fn start(
    training: Arc<dyn Training>,
    scoring: Arc<dyn Scoring>,
    config: &RemoteWriteConfig,
) -> Arc<Receiver> {
    let mut receiver = Receiver::new(training, scoring, config.settings.clone());
    if let Some(url) = &config.results_url {
        let push = results::ResultsPush::start(
            url.clone(),
            config.results_token.clone(),
            config.results_queue,
        );
        receiver = receiver.on_scored(move |tracked, latest| push.offer(tracked, latest));
    }
    let receiver = Arc::new(receiver);
    tokio::spawn(sweep(Arc::downgrade(&receiver)));
    receiver
}

async fn sweep(receiver: Weak<Receiver>) {
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let Some(receiver) = receiver.upgrade() else {
            return;
        };
        let forgotten = receiver.forget_stale();
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                "remote-written series no longer written were forgotten"
            );
        }
        metrics::gauge!("anomaly_remote_write_series").set(receiver.len() as f64);
    }
}

pub fn routes(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route(crate::openapi::operation("/api/v1/write"), post(write))
        .route(crate::openapi::operation("/federate"), get(federate))
        .with_state(receiver)
}

async fn write(
    State(receiver): State<Arc<Receiver>>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    check_format(request.headers())?;
    let body = crate::extract::body(request, &()).await?;
    let decoded = wire::decode(&body, receiver.settings().max_decoded_bytes)
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    let timeout = receiver.settings().timeout;
    let Ok(taken) = tokio::time::timeout(timeout, receiver.ingest(decoded)).await else {
        return Err(ApiError::Unavailable {
            what: "Scoring",
            cause: anomaly_workers::cause::Cause::message(format!(
                "a remote write request took longer than {timeout:?}"
            )),
        });
    };
    match taken {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(receiver::IngestError::Bad(detail)) => Err(ApiError::bad_request(detail)),
        Err(receiver::IngestError::Predict(err)) => Err(err.into()),
        Err(receiver::IngestError::Train(err)) => Err(err.into()),
    }
}

/// Remote write 1.0 as Prometheus sends it: snappy, protobuf, version 0.1.0.
fn check_format(headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(content_type) = text(header::CONTENT_TYPE) {
        let content_type = content_type.to_ascii_lowercase();
        if content_type.contains("io.prometheus.write.v2") {
            return Err(ApiError::UnsupportedMediaType(REMOTE_WRITE_2));
        }
        if !content_type.starts_with("application/x-protobuf") {
            return Err(ApiError::UnsupportedMediaType(PROTOBUF_ONLY));
        }
    }
    if text(header::HeaderName::from_static(
        "x-prometheus-remote-write-version",
    ))
    .is_some_and(|v| v.trim().starts_with('2'))
    {
        return Err(ApiError::UnsupportedMediaType(REMOTE_WRITE_2));
    }
    match text(header::CONTENT_ENCODING) {
        Some(encoding) if encoding.trim().eq_ignore_ascii_case("snappy") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(SNAPPY_ONLY)),
    }
}

const REMOTE_WRITE_2: &str = "Remote write 2.0 is not supported: send remote write 1.0 (protobuf_message: prometheus.WriteRequest)";
const PROTOBUF_ONLY: &str = "Send a remote write body as application/x-protobuf";
const SNAPPY_ONLY: &str =
    "Send a remote write body snappy-compressed, with Content-Encoding: snappy";

async fn federate(State(receiver): State<Arc<Receiver>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        results::exposition(&receiver),
    )
        .into_response()
}

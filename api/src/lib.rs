//! The gateway of the anomaly platform (REST compatibility routes, plots, health) and the
//! assembly of roles into processes. `main.rs` only parses the command line; tests start exactly
//! what users start through `serve::run` on a port-0 listener.

pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod nab;
pub mod plot;
pub mod rest;
pub mod roles;
pub mod serve;
pub mod state;
pub mod telemetry;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::state::AppState;

/// The gateway's HTTP surface.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    rest::routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(BodyLimit(max_body_bytes)))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a request handler panicked".into()).into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let path = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("(unmatched)", MatchedPath::as_str);
                    tracing::info_span!("request", method = %request.method(), path)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "detail": "Not Found" })),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({ "detail": "Method Not Allowed" })),
    )
        .into_response()
}

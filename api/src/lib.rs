//! The gateway of the anomaly platform (REST compatibility routes, plots, health) and the
//! assembly of roles into processes. `main.rs` only parses the command line; tests start exactly
//! what users start through `serve::run` on a port-0 listener.

pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod graphql;
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

/// Most operations one GraphQL batch request may hold.
pub const DEFAULT_GRAPHQL_BATCH_LIMIT: usize = 10;

/// The gateway's HTTP surface: the REST routes and GraphQL.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    app_with(state, max_body_bytes, DEFAULT_GRAPHQL_BATCH_LIMIT)
}

/// `app` with a chosen GraphQL batch limit.
pub fn app_with(state: AppState, max_body_bytes: usize, graphql_batch_limit: usize) -> Router {
    let schema = graphql::schema(state.clone());
    rest::routes()
        .with_state(state)
        .merge(graphql::routes(schema, graphql_batch_limit))
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

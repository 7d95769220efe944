//! The gateway of the anomaly platform (REST compatibility routes, plots, health) and the
//! assembly of roles into processes (`process`, the composition root). `main.rs` only parses the
//! command line; tests start exactly what users start through `process::run` on a port-0
//! listener.

// The OpenAPI document is one `json!` literal, deeper than the default limit of 128.
#![recursion_limit = "256"]

pub mod alertmanager;
pub mod alerts;
pub mod answer;
pub mod assets;
pub mod auth;
pub mod backends;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod edge;
pub mod error;
pub mod extract;
pub mod graphiql;
pub mod graphql;
pub mod listen;
pub mod nab;
pub mod openapi;
pub mod plot;
pub mod probes;
pub mod process;
pub mod prometheus;
pub mod remote_write;
pub mod rest;
pub mod rfc3339;
pub mod roles;
pub(crate) mod routed;
pub mod state;
pub mod telemetry;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::auth::ApiToken;
use crate::extract::BodyLimit;
use crate::state::AppState;

/// The gateway's HTTP surface: the REST routes, GraphQL and the dashboard, within the limits of
/// `state.config`. `shutdown` closes the WebSockets (1001) when the server stops.
pub fn app(state: AppState, shutdown: CancellationToken) -> impl listen::HttpService {
    let config = state.config.clone();
    let token = ApiToken::from_config(
        config.api_token.as_deref(),
        config.api_read_token.as_deref(),
    );
    let webhook_endpoints = std::sync::Arc::new(webhooks::Endpoints::new(
        state.store.clone(),
        &config.webhooks,
    ));
    let schema = graphql::schema_with(state.clone(), &config.graphql, webhook_endpoints.clone());
    let prepared = graphql::Prepared::new(state.clone(), &config.graphql);
    let probes = probes::routes(vec![probes::Check::database(state.store.clone())]);
    prometheus::handle();
    let max_body_bytes = config.max_body_bytes;
    let receiver = remote_write::start(
        state.training.clone(),
        state.scoring.clone(),
        &config.remote_write,
    );
    let webhook_routes = webhooks::routes(webhook_endpoints);
    let routes = rest::routes()
        .with_state(state)
        .merge(graphql::routes(
            schema,
            prepared,
            config.graphql_batch_limit,
            max_body_bytes,
            token.clone(),
            graphql::WsSettings {
                limits: config.ws.clone(),
                open: Default::default(),
                shutdown,
                renderers: Default::default(),
            },
        ))
        .merge(dashboard::routes())
        .merge(graphiql::routes())
        .merge(probes)
        .merge(prometheus::routes())
        .merge(remote_write::routes(receiver))
        .merge(webhook_routes)
        .merge(openapi::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(routed::RoutedLayer::new(token));
    // Run once around the router, not per route (see `routed`); CORS outside the token check,
    // so a browser's preflight is answered.
    let limited = tower::ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(BodyLimit(max_body_bytes)))
        .service(routes);
    tower::ServiceBuilder::new()
        .option_layer(edge::cors(&config.cors_origins))
        .service(edge::CompressWhenAsked::new(edge::compression(), limited))
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

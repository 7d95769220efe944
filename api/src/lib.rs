//! The gateway of the anomaly platform (REST compatibility routes, plots, health) and the
//! assembly of roles into processes. `main.rs` only parses the command line; tests start exactly
//! what users start through `serve::run` on a port-0 listener.

// The OpenAPI document is one `json!` literal, deeper than the default limit of 128.
#![recursion_limit = "256"]

pub mod alertmanager;
pub mod alerts;
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
pub mod prometheus;
pub mod remote_write;
pub mod rest;
pub mod rfc3339;
pub mod roles;
pub(crate) mod routed;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::ApiToken;
use crate::config::Config;
use crate::extract::BodyLimit;
use crate::state::AppState;

/// What the edge enforces on every request.
#[derive(Clone)]
pub struct EdgeLimits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most operations one GraphQL batch request may hold.
    pub graphql_batch_limit: usize,
    /// Most series `/healthcheck` lists in `model_usage`.
    pub health_top_series: usize,
    /// The token every request must present; none leaves the gateway open.
    pub token: Option<ApiToken>,
    /// What one GraphQL request may cost, nest, answer and take.
    pub graphql: graphql::QueryLimits,
    /// What one `/detect` request may cost and take.
    pub detect: rest::DetectLimits,
    /// Origins browsers may call the API from (CORS).
    pub cors_origins: Vec<String>,
    /// What the GraphQL WebSocket allows its clients.
    pub ws: graphql::WsLimits,
    /// Fires when the server shuts down (WebSockets then close with 1001); never, by default.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// What Prometheus remote write models and bounds, and where results are pushed.
    pub remote_write: remote_write::RemoteWriteConfig,
    /// How webhook deliveries are retried and bounded.
    pub webhooks: webhooks::WebhookSettings,
}

impl EdgeLimits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_body_bytes: config.max_body_bytes,
            graphql_batch_limit: config.graphql_batch_limit,
            health_top_series: config.health_top_series,
            token: ApiToken::from_config(
                config.api_token.as_deref(),
                config.api_read_token.as_deref(),
            ),
            graphql: config.graphql.clone(),
            detect: config.detect,
            cors_origins: config.cors_origins.clone(),
            ws: config.ws.clone(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            remote_write: config.remote_write.clone(),
            webhooks: config.webhooks.clone(),
        }
    }
}

/// The gateway's HTTP surface: the REST routes, GraphQL and the dashboard.
pub fn app(state: AppState, edge: &EdgeLimits) -> Router {
    let webhook_endpoints = std::sync::Arc::new(webhooks::Endpoints::new(
        state.store.clone(),
        &edge.webhooks,
    ));
    let schema = graphql::schema_with(state.clone(), &edge.graphql, webhook_endpoints.clone());
    let probes = probes::routes(vec![probes::Check::database(state.store.clone())]);
    prometheus::handle();
    let max_body_bytes = edge.max_body_bytes;
    let receiver = remote_write::start(
        state.training.clone(),
        state.scoring.clone(),
        &edge.remote_write,
    );
    let webhook_routes = webhooks::routes(webhook_endpoints);
    let routes = rest::routes()
        .with_state(state)
        .merge(graphql::routes(
            schema,
            edge.graphql_batch_limit,
            max_body_bytes,
            edge.token.clone(),
            graphql::WsSettings {
                limits: edge.ws.clone(),
                open: Default::default(),
                shutdown: edge.shutdown.clone(),
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
        .layer(axum::middleware::from_fn_with_state(
            edge.token.clone(),
            routed::routed,
        ));
    // Run once around the router, not per route (see `routed`); CORS outside the token check,
    // so a browser's preflight is answered.
    let around = tower::ServiceBuilder::new()
        .option_layer(edge::cors(&edge.cors_origins))
        .layer(edge::compression())
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(BodyLimit(max_body_bytes)))
        .layer(axum::Extension(edge.detect))
        .layer(axum::Extension(rest::HealthTopSeries(
            edge.health_top_series,
        )))
        .service(routes);
    Router::new().fallback_service(around)
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

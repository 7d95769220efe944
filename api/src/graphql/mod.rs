//! The GraphQL gateway (SPEC §6): mutations that fit and score through the same `Training` and
//! `Scoring` traits as REST, queries whose nested fields load through DataLoaders (a bounded
//! number of database queries however many series are listed), and subscriptions fed from the
//! event bus. `schema.graphql` at the repository root is `anomaly schema`'s output.

mod direct;
mod documents;
pub mod guard;
mod http;
mod loaders;
mod mutation;
mod query;
mod socket;
mod streaming;
mod subscription;
mod types;
mod webhooks;
mod ws;
pub mod ws_rules;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Schema, SchemaBuilder};
use axum::Router;
use axum::routing::get;

use crate::auth::ApiToken;
use crate::state::AppState;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

pub type AnomalySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub use guard::QueryLimits;
pub(crate) use http::body_too_large;
pub use ws_rules::WsLimits;

/// The schema with the request limits of `limits` (depth and cost are priced by `guard`, not by
/// async-graphql's own checks, which expand every fragment spread).
fn builder(limits: &QueryLimits) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .extension(guard::Guard::new(limits));
    if limits.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

/// How long a DataLoader collects keys before it loads them in one statement. async-graphql's
/// default (1 ms) is shorter than resolving one level of a 50-item list can take on a busy
/// machine (the list yields to the scheduler every 32 items), which split one level's keys into
/// several statements; 5 ms keeps a level in one, at that much latency on nested fields only.
pub const LOADER_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

fn windowed<T: Send + Sync + 'static>(loader: T) -> DataLoader<T> {
    DataLoader::new(loader, tokio::spawn).delay(LOADER_WINDOW)
}

/// The schema serving `state`, within `limits`.
pub fn schema(state: AppState, limits: &QueryLimits) -> AnomalySchema {
    let webhooks = Arc::new(crate::webhooks::Endpoints::new(
        state.store.clone(),
        &Default::default(),
    ));
    schema_with(state, limits, webhooks)
}

/// The schema, with the webhook endpoints its webhook fields manage.
pub fn schema_with(
    state: AppState,
    limits: &QueryLimits,
    webhooks: Arc<crate::webhooks::Endpoints>,
) -> AnomalySchema {
    builder(limits)
        .data(webhooks)
        .data(windowed(loaders::ModelsLoader(state.store.clone())))
        .data(windowed(loaders::TrainingDataLoader(state.store.clone())))
        .data(state)
        .data(crate::rest::HealthTopSeries(limits.health_top_series))
        .finish()
}

/// The SDL, with types, fields, arguments and enum items sorted: what `schema.graphql` holds.
pub fn sdl() -> String {
    let options = async_graphql::SDLExportOptions::new()
        .sorted_fields()
        .sorted_arguments()
        .sorted_enum_items();
    builder(&QueryLimits::default())
        .finish()
        .sdl_with_options(options)
}

#[derive(Clone)]
struct Endpoint {
    schema: AnomalySchema,
    batch_limit: usize,
    /// Largest WebSocket message (and frame) a client may send, in bytes.
    max_message_bytes: usize,
    /// Checked again in a WebSocket's `connection_init`.
    token: Option<ApiToken>,
    ws: WsSettings,
}

/// What the WebSocket endpoint shares across its connections.
#[derive(Clone)]
pub struct WsSettings {
    pub limits: WsLimits,
    /// Operations open on the gateway's WebSockets.
    pub open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Fires when the server shuts down: every WebSocket then closes with 1001.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Live results rendered once per distinct subscription request.
    pub renderers: std::sync::Arc<direct::Renderers>,
}

/// `/graphql` (POST, batches up to `batch_limit`; GET for queries; GraphiQL for browsers) and
/// `/graphql/ws` (graphql-transport-ws and graphql-ws, pinged while idle; a message larger than
/// `max_message_bytes` closes the connection with 1009).
pub fn routes(
    schema: AnomalySchema,
    batch_limit: usize,
    max_message_bytes: usize,
    token: Option<ApiToken>,
    ws: WsSettings,
) -> Router {
    Router::new()
        .route("/graphql", get(http::query_or_graphiql).post(http::execute))
        .route("/graphql/ws", get(ws::upgrade))
        .with_state(Endpoint {
            schema,
            batch_limit,
            max_message_bytes,
            token,
            ws,
        })
}

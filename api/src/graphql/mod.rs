//! The GraphQL gateway (SPEC §6): mutations that fit and score through the same `Training` and
//! `Scoring` traits as REST, queries whose nested fields load through DataLoaders (a bounded
//! number of database queries however many series are listed), and subscriptions fed from the
//! event bus. `schema.graphql` at the repository root is `anomaly schema`'s output.

mod http;
mod loaders;
mod mutation;
mod query;
mod subscription;
mod types;
mod ws;

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

/// Deepest nesting a query may have.
pub const MAX_DEPTH: usize = 10;
/// Largest complexity (fields, lists counted by their size) a query may have.
pub const MAX_COMPLEXITY: usize = 5000;

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The schema serving `state`.
pub fn schema(state: AppState) -> AnomalySchema {
    builder()
        .data(DataLoader::new(
            loaders::ModelsLoader(state.store.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            loaders::TrainingDataLoader(state.store.clone()),
            tokio::spawn,
        ))
        .data(state)
        .finish()
}

/// The SDL, with types, fields, arguments and enum items sorted: what `schema.graphql` holds.
pub fn sdl() -> String {
    let options = async_graphql::SDLExportOptions::new()
        .sorted_fields()
        .sorted_arguments()
        .sorted_enum_items();
    builder().finish().sdl_with_options(options)
}

#[derive(Clone)]
struct Endpoint {
    schema: AnomalySchema,
    batch_limit: usize,
    /// Checked again in a WebSocket's `connection_init`.
    token: Option<ApiToken>,
}

/// `/graphql` (POST, batches up to `batch_limit`; GET for queries; GraphiQL for browsers) and
/// `/graphql/ws` (graphql-transport-ws and graphql-ws, pinged while idle).
pub fn routes(schema: AnomalySchema, batch_limit: usize, token: Option<ApiToken>) -> Router {
    Router::new()
        .route("/graphql", get(http::query_or_graphiql).post(http::execute))
        .route("/graphql/ws", get(ws::upgrade))
        .with_state(Endpoint {
            schema,
            batch_limit,
            token,
        })
}

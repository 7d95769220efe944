//! The GraphQL gateway (SPEC §6): mutations that fit and score through the same `Training` and
//! `Scoring` traits as REST, queries whose nested fields load through DataLoaders (a bounded
//! number of database queries however many series are listed), and subscriptions fed from the
//! event bus. `schema.graphql` at the repository root is `anomaly schema`'s output.

mod loaders;
mod mutation;
mod query;
mod subscription;
mod types;

use async_graphql::dataloader::DataLoader;
use async_graphql::http::GraphiQLSource;
use async_graphql::{Schema, SchemaBuilder};
use async_graphql_axum::{
    GraphQLBatchRequest, GraphQLRequest, GraphQLResponse, GraphQLSubscription,
};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

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
}

/// `/graphql` (POST, batches up to `batch_limit`; GET for queries; GraphiQL for browsers) and
/// `/graphql/ws` (graphql-transport-ws and graphql-ws).
pub fn routes(schema: AnomalySchema, batch_limit: usize) -> Router {
    let subscriptions = GraphQLSubscription::new(schema.clone());
    Router::new()
        .route("/graphql", get(query_or_graphiql).post(execute))
        .route_service("/graphql/ws", subscriptions)
        .with_state(Endpoint {
            schema,
            batch_limit,
        })
}

async fn execute(State(endpoint): State<Endpoint>, request: GraphQLBatchRequest) -> Response {
    let batch = request.into_inner();
    if let async_graphql::BatchRequest::Batch(requests) = &batch
        && requests.len() > endpoint.batch_limit
    {
        let error = async_graphql::ServerError::new(
            format!(
                "A batch may hold at most {} operations, this one has {}",
                endpoint.batch_limit,
                requests.len()
            ),
            None,
        );
        let mut error = error;
        error.extensions = Some({
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", "BAD_USER_INPUT");
            ext
        });
        let response = async_graphql::Response::from_errors(vec![error]);
        return GraphQLResponse::from(response).into_response();
    }
    GraphQLResponse::from(endpoint.schema.execute_batch(batch).await).into_response()
}

async fn query_or_graphiql(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    request: Result<GraphQLRequest, async_graphql_axum::rejection::GraphQLRejection>,
) -> Response {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match request {
        Ok(request) if !wants_html => {
            let request = request.into_inner();
            GraphQLResponse::from(endpoint.schema.execute(request).await).into_response()
        }
        _ => Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql/ws")
                .finish(),
        )
        .into_response(),
    }
}

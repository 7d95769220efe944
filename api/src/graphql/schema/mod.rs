//! The GraphQL schema, whatever carries it: its types and resolvers, the DataLoaders they share,
//! and the extension it is built with (`guard`, with the `documents` cache it parses through).
//! The guard and the cache are here rather than in `transport` because async-graphql runs them
//! inside every execution: an HTTP POST, a WebSocket operation, an SSE stream and a live result
//! rendered for direct subscribers are priced, timed and parsed alike. Nothing here knows how a
//! request arrived; `transport` depends on this module, never the other way round.

mod context;
mod documents;
pub mod guard;
mod loaders;
mod mutation;
mod prepared;
mod query;
pub(super) mod subscriptions;
mod types;
mod webhooks;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Schema, SchemaBuilder};

use crate::state::AppState;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscriptions::SubscriptionRoot;

pub type AnomalySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub use guard::QueryLimits;
pub use prepared::{Lookup, Prepared};

/// The schema with the request limits of `limits` (depth and cost are priced by `guard`, not by
/// async-graphql's own checks, which expand every fragment spread).
fn builder(limits: &QueryLimits) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot::default())
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

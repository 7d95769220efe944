//! The GraphQL gateway (SPEC §6): mutations that fit and score through the same `Training` and
//! `Scoring` traits as REST, queries whose nested fields load through DataLoaders (a bounded
//! number of database queries however many series are listed), and subscriptions fed from the
//! event bus. `schema.graphql` at the repository root is `anomaly schema`'s output.

mod schema;
mod transport;

pub use schema::{
    AnomalySchema, LOADER_WINDOW, MutationRoot, QueryLimits, QueryRoot, SubscriptionRoot, guard,
    schema, schema_with, sdl,
};
pub(crate) use transport::body_too_large;
pub use transport::{WsLimits, WsSettings, routes, ws_rules};

//! The GraphQL gateway (README, "GraphQL"): mutations that fit and score through the same `Training` and
//! `Scoring` traits as REST, queries whose nested fields load through DataLoaders (a bounded
//! number of database queries however many series are listed), and subscriptions fed from the
//! event bus. `schema.graphql` at the repository root is `anomaly schema`'s output.
//!
//! `schema/` is what the API means, whatever carries it; `transport/` is how requests arrive
//! and answers leave (it depends on `schema`, never the other way round). Where a change goes:
//! - a query or mutation field, an argument, a type: `schema/query.rs`, `schema/mutation.rs`,
//!   `schema/types.rs` (`schema/webhooks.rs` for the webhook types); then write `anomaly schema`'s
//!   output to `schema.graphql` (a test compares them).
//! - something new a resolver needs from the gateway: given in `schema::schema_with`, taken
//!   through `ContextExt` in `schema/context.rs` (no resolver looks data up by type).
//! - loading nested fields in batches: `schema/loaders.rs`.
//! - what a request may cost, how long it may run, how large its answer may be, the read-only
//!   token's rule: `schema/guard.rs` (parsing once per text: `schema/documents.rs`).
//! - the hot `predict` mutation run without the executor: `schema/prepared.rs`; a field added to
//!   `Prediction` also gets its `PredictionField` (`schema/types.rs`), or a document selecting it
//!   is left to the executor.
//! - a new subscription topic: these files: `schema/subscriptions/<field>.rs` (the field, its
//!   arguments and the `live::Follow` they make), its line in `SubscriptionRoot`
//!   (`schema/subscriptions/mod.rs`), and, only if it follows a bus topic the feed does not
//!   follow yet, that topic's line in `anomaly_workers::fanout::LIVE_TOPICS`. Replay after a
//!   cursor, `LAGGED`, the open gauge and the WebSocket fast path come with
//!   `schema/subscriptions/live.rs`.
//! - GraphQL over HTTP (methods, batches, status codes, GraphiQL): `transport/http.rs`; SSE and
//!   multipart streams: `transport/streaming.rs`.
//! - the WebSocket protocol, pings and close codes: `transport/ws.rs`; a connection's rules and
//!   limits: `transport/ws_rules.rs`; live results written by the follower itself:
//!   `transport/direct.rs` (rendering, framing) and `transport/socket.rs` (the shared socket).

mod schema;
mod transport;

pub use schema::{
    AnomalySchema, LOADER_WINDOW, MutationRoot, Prepared, QueryLimits, QueryRoot, SubscriptionRoot,
    guard, schema, schema_with, sdl,
};
pub(crate) use transport::body_too_large;
pub use transport::{WsLimits, WsSettings, routes, ws_rules};

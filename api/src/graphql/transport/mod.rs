//! How GraphQL requests reach the schema and its answers leave: HTTP (`http`, and `streaming`
//! for SSE and multipart subscriptions), and WebSocket (`ws`, the connection rules async-graphql
//! does not enforce in `ws_rules`, and the fast path that writes live results straight to a
//! socket: `socket`, `direct`). Everything here is about connections, framing, protocols and
//! their limits; what a field means or costs is the schema's (`super::schema`).

mod direct;
mod http;
mod socket;
mod streaming;
mod ws;
pub mod ws_rules;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use super::schema::{AnomalySchema, Prepared};
use crate::auth::ApiToken;

pub(crate) use http::body_too_large;
pub use ws_rules::WsLimits;

/// What the GraphQL routes share, behind one `Arc`: a request clones one reference count, not
/// each of the schema's, the token's and the WebSocket settings'.
struct Endpoint {
    schema: AnomalySchema,
    /// The hot `predict` mutation, run without the executor once it has run through it.
    prepared: Prepared,
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
    prepared: Prepared,
    batch_limit: usize,
    max_message_bytes: usize,
    token: Option<ApiToken>,
    ws: WsSettings,
) -> Router {
    Router::new()
        .route(
            crate::openapi::operation("/graphql"),
            get(http::query_or_graphiql).post(http::execute),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .with_state(Arc::new(Endpoint {
            schema,
            prepared,
            batch_limit,
            max_message_bytes,
            token,
            ws,
        }))
}

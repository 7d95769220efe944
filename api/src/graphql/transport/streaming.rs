//! Subscriptions over plain HTTP, for curl users, proxies and browsers without WebSockets: a POST
//! to `/graphql` (or a GET, for queries and subscriptions) that accepts
//! - `text/event-stream`: the GraphQL-over-SSE protocol, "distinct connections" mode — one
//!   `next` event per result, then `complete`; a comment every 15 s keeps proxies from timing out;
//! - `multipart/mixed`: the incremental multipart response — with `subscriptionSpec="1.0"`
//!   (Apollo's clients) each part is `{"payload": result}` and `{}` is a heartbeat; otherwise each
//!   part is the result with `"hasNext": true`, the last `{"hasNext": false}`.
//!
//! The token rules are the HTTP ones (a read-only token may subscribe, not mutate), and every
//! open stream counts against `GRAPHQL_MAX_SUBSCRIPTIONS` like a WebSocket operation.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::futures_util::{Stream, StreamExt, stream};
use async_graphql::parser::types::OperationType;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use crate::extract::accepts;

/// How often an idle stream sends a keep-alive.
const HEARTBEAT: Duration = Duration::from_secs(15);
const BOUNDARY: &str = "graphql";

/// The streaming media type a request asks for, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Streaming {
    Sse,
    /// Apollo's multipart subscription protocol (`subscriptionSpec="1.0"`).
    MultipartApollo,
    /// Incremental delivery over multipart (`hasNext`).
    Multipart,
}

impl Streaming {
    pub fn requested(headers: &HeaderMap) -> Option<Self> {
        if accepts(headers, "text/event-stream") {
            return Some(Self::Sse);
        }
        if accepts(headers, "multipart/mixed") {
            let apollo = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("subscriptionSpec"));
            return Some(if apollo {
                Self::MultipartApollo
            } else {
                Self::Multipart
            });
        }
        None
    }
}

/// Holds a place among the gateway's open subscriptions for as long as a stream lives.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `request` and streams its results as `kind` asks.
pub(super) fn respond(
    endpoint: &Endpoint,
    mut request: async_graphql::Request,
    kind: Streaming,
) -> Response {
    let open = endpoint.ws.open.clone();
    if !super::ws_rules::take_place(&open, endpoint.ws.limits.per_gateway) {
        return super::http::error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_SUBSCRIPTIONS",
            format!(
                "The gateway already serves {} subscriptions (GRAPHQL_MAX_SUBSCRIPTIONS)",
                endpoint.ws.limits.per_gateway
            ),
        );
    }
    let place = Place(open);
    let shutdown = endpoint.ws.shutdown.clone();
    // A query or mutation runs as over plain HTTP, within GRAPHQL_TIMEOUT_SECS and the answer
    // size limit (async-graphql's stream skips the request hooks that enforce them).
    let subscription =
        super::http::operation_type(&mut request) == Some(OperationType::Subscription);
    let schema = endpoint.schema.clone();
    let responses = if subscription {
        schema.execute_stream(request).boxed()
    } else {
        stream::once(async move { schema.execute(request).await }).boxed()
    };
    let results = responses
        .map(move |response| {
            let _ = &place;
            serde_json::to_string(&response).unwrap_or_else(|_| "{}".into())
        })
        // The server is going away: end the stream so the client reconnects elsewhere.
        .take_until(async move { shutdown.cancelled().await });
    match kind {
        Streaming::Sse => sse(results),
        Streaming::MultipartApollo | Streaming::Multipart => multipart(results, kind),
    }
}

fn sse(results: impl Stream<Item = String> + Send + 'static) -> Response {
    // Written by hand: `complete` must carry an empty `data:` line, which axum's `Sse` leaves
    // out, and EventSource ignores an event without data.
    let events = results.map(|json| Bytes::from(format!("event: next\ndata: {json}\n\n")));
    let body =
        with_heartbeats(events, Some(Bytes::from_static(b":\n\n"))).chain(stream::once(async {
            Bytes::from_static(b"event: complete\ndata:\n\n")
        }));
    streamed("text/event-stream; charset=utf-8".into(), body)
}

fn part(json: &str) -> Bytes {
    Bytes::from(format!(
        "\r\n--{BOUNDARY}\r\ncontent-type: application/json; charset=utf-8\r\n\r\n{json}"
    ))
}

fn multipart(results: impl Stream<Item = String> + Send + 'static, kind: Streaming) -> Response {
    let apollo = kind == Streaming::MultipartApollo;
    let parts = results.map(move |json| {
        if apollo {
            part(&format!("{{\"payload\":{json}}}"))
        } else {
            // `{"data":...}` becomes `{"data":...,"hasNext":true}`.
            let body = json.strip_suffix('}').unwrap_or(&json);
            let comma = if body.len() > 1 { "," } else { "" };
            part(&format!("{body}{comma}\"hasNext\":true}}"))
        }
    });
    // Apollo's clients take `{}` as a heartbeat; incremental delivery has none.
    let heartbeat = apollo.then(|| part("{}"));
    let end = if apollo {
        Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"))
    } else {
        let mut last = part("{\"hasNext\":false}").to_vec();
        last.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        Bytes::from(last)
    };
    let body = with_heartbeats(parts, heartbeat).chain(stream::once(async move { end }));
    let content_type = if apollo {
        format!("multipart/mixed; boundary=\"{BOUNDARY}\"; subscriptionSpec=\"1.0\"")
    } else {
        format!("multipart/mixed; boundary=\"{BOUNDARY}\"")
    };
    streamed(content_type, body)
}

/// `frames`, with `heartbeat` every `HEARTBEAT` while they last (none when `None`).
fn with_heartbeats(
    frames: impl Stream<Item = Bytes> + Send + 'static,
    heartbeat: Option<Bytes>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let beats = stream::unfold(heartbeat, |heartbeat| async move {
        let beat = heartbeat.clone()?;
        tokio::time::sleep(HEARTBEAT).await;
        Some((beat, heartbeat))
    });
    // The frames' end (`None`) ends the merged stream.
    let frames_then_end = frames.map(Some).chain(stream::once(async { None }));
    stream::select(frames_then_end, beats.map(Some))
        .take_while(|frame: &Option<Bytes>| std::future::ready(frame.is_some()))
        .filter_map(std::future::ready)
}

fn streamed(content_type: String, body: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body.map(Ok::<_, Infallible>)),
    )
        .into_response()
}

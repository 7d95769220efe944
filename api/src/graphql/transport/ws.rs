//! `/graphql/ws`: GraphQL subscriptions over WebSocket (`graphql-transport-ws`, and the legacy
//! `graphql-ws` of subscriptions-transport-ws). Beyond what async-graphql-axum's service does, the
//! server pings every idle connection so proxies keep it open, closes a connection whose client
//! stopped answering (its subscriptions are dropped with it), checks the API token sent in
//! `connection_init` (browsers cannot set headers on a WebSocket), closes a connection that
//! sends a message over `MAX_BODY_BYTES` with 1009 (message too big), one that sends no
//! `connection_init` in time with 4408, one that breaks a rule of `ws_rules` with its code, and
//! every connection with 1001 when the server shuts down (clients reconnect elsewhere).
//!
//! The handshake is done here rather than by axum, so that the connection keeps its raw socket:
//! live results of its subscriptions are then written by the feed's follower (`direct`,
//! `socket`), while async-graphql's protocol machine runs every message of the protocol.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::futures_util::{SinkExt, StreamExt};
use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::{Data, ErrorExtensions, Executor, Request};
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::Endpoint;
use super::direct::{DirectDelivery, Renderers};
use super::socket::{Outbox, SocketIo};
use super::ws_rules::ConnectionRules;
use crate::auth::Access;
use crate::graphql::schema::AnomalySchema;
use crate::graphql::schema::subscriptions::DirectRoute;

/// How often the server pings a connection.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// Pings a client may leave unanswered (no frame at all from it) before it is taken as gone.
const MISSED_PINGS: u32 = 3;
/// The read buffer each connection starts with (tungstenite's default, 128 KiB, is zeroed when
/// first read into: 10,000 idle subscribers held 1.4 GB); a larger message is read in several
/// chunks of this size.
const READ_BUFFER_BYTES: usize = 2 * 1024;

pub(super) async fn upgrade(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    on_upgrade: Option<axum::Extension<OnUpgrade>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(protocol) = subprotocol(&headers) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    // axum's extractor checks the request (its rejections are the answers); the handshake is
    // finished here, keeping hyper's upgrade handle.
    if let Err(rejection) = upgrade {
        return rejection.into_response();
    }
    let (Some(axum::Extension(on_upgrade)), Some(key)) =
        (on_upgrade, headers.get(header::SEC_WEBSOCKET_KEY))
    else {
        return StatusCode::UPGRADE_REQUIRED.into_response();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    // A client that sent the token as a header (not a browser) is already known.
    let authorized_by_header = match &endpoint.token {
        None => Some(Access::Full),
        Some(token) => token.access_from_header(&headers),
    };
    tokio::spawn(async move {
        let budget = endpoint.ws.limits.outbox_bytes;
        let (io, outbox) = match SocketIo::accept(on_upgrade, budget).await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::debug!(error = %err, "a WebSocket upgrade failed");
                return;
            }
        };
        let limit = endpoint.max_message_bytes;
        let config = WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit))
            .read_buffer_size(READ_BUFFER_BYTES)
            // Each message is written at once: subscribers wait for nothing to fill up.
            .write_buffer_size(0);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        serve(socket, outbox, endpoint, protocol, authorized_by_header).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let answer = response.headers_mut();
    answer.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    answer.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        answer.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    answer.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol.sec_websocket_protocol()),
    );
    response
}

/// The first GraphQL subprotocol the client names (async-graphql-axum's `GraphQLProtocol`
/// extractor picks it the same way but keeps it to itself); none is a 400, as there.
fn subprotocol(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|names| {
            names
                .split(',')
                .find_map(|name| name.trim().parse::<WebSocketProtocols>().ok())
        })
}

/// The connection's side of async-graphql's executor: a subscription opened on a connection
/// with a raw socket gets a `DirectDelivery` in its request data.
#[derive(Clone)]
struct ConnectionExecutor {
    schema: AnomalySchema,
    outbox: Option<Arc<Outbox>>,
    protocol: WebSocketProtocols,
    rules: Arc<Mutex<ConnectionRules>>,
    renderers: Arc<Renderers>,
}

impl ConnectionExecutor {
    fn direct(&self, request: &Request, session: &Arc<Data>) -> Option<DirectDelivery> {
        let outbox = self.outbox.clone()?;
        // The id of the `subscribe` async-graphql is handling: it calls this right after
        // reading it.
        let id = lock(&self.rules).take_subscribing()?;
        // What `connection_init` granted, in the connection's data.
        let access = *session
            .get(&std::any::TypeId::of::<Access>())?
            .downcast_ref::<Access>()?;
        let renderer = self.renderers.get(&self.schema, request, access, session);
        Some(DirectDelivery {
            outbox,
            id,
            protocol: self.protocol,
            renderer,
        })
    }
}

impl Executor for ConnectionExecutor {
    fn execute(
        &self,
        request: Request,
    ) -> impl std::future::Future<Output = async_graphql::Response> + Send {
        let schema = self.schema.clone();
        async move { schema.execute(request).await }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let session = session_data.unwrap_or_default();
        let request = match self.direct(&request, &session) {
            Some(direct) => request.data(Arc::new(direct) as Arc<dyn DirectRoute>),
            None => request,
        };
        self.schema
            .execute_stream_with_session_data(request, session)
    }
}

/// Marks the connection's outbox closed when the connection ends, however it ends.
struct CloseOutbox(Option<Arc<Outbox>>);

impl Drop for CloseOutbox {
    fn drop(&mut self) {
        stop_direct(self.0.as_deref());
    }
}

async fn serve(
    socket: WebSocketStream<SocketIo>,
    outbox: Option<Arc<Outbox>>,
    endpoint: Arc<Endpoint>,
    protocol: WebSocketProtocols,
    authorized_by_header: Option<Access>,
) {
    let _closed = CloseOutbox(outbox.clone());
    let started = Instant::now();
    let last_heard = Arc::new(AtomicU64::new(0));
    let (mut socket_sink, socket_stream) = socket.split();
    let heard = last_heard.clone();
    let too_big = Arc::new(AtomicBool::new(false));
    let oversized = too_big.clone();
    let rules = Arc::new(Mutex::new(ConnectionRules::new(
        endpoint.ws.limits.clone(),
        endpoint.ws.open.clone(),
    )));
    let checked = rules.clone();
    let incoming = socket_stream
        .inspect(move |read| {
            heard.store(elapsed_ms(started), Ordering::Relaxed);
            // The only read error that is the client's doing: a message over the size limit.
            if let Err(err) = read
                && err.to_string().contains("too long")
            {
                oversized.store(true, Ordering::Relaxed);
            }
        })
        // A message that breaks a rule is not handed on: the stream ends, then the close says why.
        .take_while(move |read| {
            let keep = match read {
                Ok(Message::Text(text)) => lock(&checked).incoming(text.as_str()).is_ok(),
                _ => true,
            };
            std::future::ready(keep)
        });
    let initialized = Arc::new(AtomicBool::new(false));
    let init_done = initialized.clone();
    let limit = endpoint.max_message_bytes;
    let token = endpoint.token.clone();
    // async-graphql's protocol state machine, polled right here: each result goes from it to the
    // socket with no queue and no task in between.
    let input = incoming
        .take_while(|read| std::future::ready(read.is_ok()))
        .filter_map(|read| {
            std::future::ready(match read {
                Ok(Message::Text(text)) => Some(axum::body::Bytes::from(text)),
                Ok(Message::Binary(bytes)) => Some(bytes),
                _ => None,
            })
        });
    let executor = ConnectionExecutor {
        schema: endpoint.schema.clone(),
        outbox: outbox.clone(),
        protocol,
        rules: rules.clone(),
        renderers: endpoint.ws.renderers.clone(),
    };
    let graphql = async_graphql::http::WebSocket::new(executor, input, protocol)
        .on_connection_init(move |payload| async move {
            let access = match (authorized_by_header, &token) {
                (Some(access), _) => Some(access),
                (None, Some(token)) => token.access_from_init_payload(&payload),
                (None, None) => Some(Access::Full),
            };
            match access {
                Some(access) => {
                    init_done.store(true, Ordering::Relaxed);
                    let mut data = Data::default();
                    data.insert(access);
                    Ok(data)
                }
                None => Err(
                    async_graphql::Error::new(crate::auth::UNAUTHENTICATED_MESSAGE)
                        .extend_with(|_, e| e.set("code", "UNAUTHENTICATED")),
                ),
            }
        })
        .map(|message| match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: reason.into(),
            })),
        });
    tokio::pin!(graphql);

    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let patience = PING_INTERVAL * MISSED_PINGS;
    let init_deadline = tokio::time::sleep(endpoint.ws.limits.init_timeout);
    tokio::pin!(init_deadline);
    // Made once: a `cancelled()` made per turn of the loop would lock the token's waiter list,
    // shared by every connection, twice per message sent.
    let shutdown = endpoint.ws.shutdown.clone().cancelled_owned();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            message = graphql.next() => match message {
                Some(message) => {
                    match &message {
                        Message::Text(text) => lock(&rules).outgoing(text.as_str()),
                        // No result of the follower's may follow a close.
                        _ => stop_direct(outbox.as_deref()),
                    }
                    if socket_sink.send(forbidden_as_4403(message)).await.is_err() {
                        return;
                    }
                }
                // The GraphQL side ended and everything it said has been sent.
                None => {
                    let broken = lock(&rules).violation();
                    let close = broken.or_else(|| {
                        too_big.load(Ordering::Relaxed).then(|| {
                            (1009, format!("message too big: the limit is {limit} bytes"))
                        })
                    });
                    if let Some((code, reason)) = close {
                        close_with(&mut socket_sink, outbox.as_deref(), code, reason).await;
                    }
                    return;
                }
            },
            drained = drained(outbox.as_deref()) => {
                if drained.is_err() {
                    return;
                }
            }
            () = &mut init_deadline, if !initialized.load(Ordering::Relaxed) => {
                close_with(&mut socket_sink, outbox.as_deref(), 4408, "Connection initialisation timeout".into()).await;
                return;
            }
            () = &mut shutdown => {
                let reason = "the server is shutting down: reconnect".into();
                close_with(&mut socket_sink, outbox.as_deref(), 1001, reason).await;
                return;
            }
            _ = ping.tick() => {
                let silent_ms = elapsed_ms(started).saturating_sub(last_heard.load(Ordering::Relaxed));
                if Duration::from_millis(silent_ms) > patience {
                    tracing::info!("closing a WebSocket whose client stopped answering pings");
                    close_with(&mut socket_sink, outbox.as_deref(), 1001, "client stopped answering pings".into()).await;
                    return;
                }
                if socket_sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn stop_direct(outbox: Option<&Outbox>) {
    if let Some(outbox) = outbox {
        outbox.close();
    }
}

/// Waits until the follower's frames that the socket did not take at once are written (never,
/// on a connection without an outbox).
async fn drained(outbox: Option<&Outbox>) -> std::io::Result<()> {
    match outbox {
        Some(outbox) => outbox.drained().await,
        None => std::future::pending().await,
    }
}

/// async-graphql closes a refused `connection_init` with 1002; graphql-transport-ws asks for
/// 4403 Forbidden, which clients such as graphql-ws's take as "do not retry".
fn forbidden_as_4403(message: Message) -> Message {
    match message {
        Message::Close(Some(frame)) if frame.reason == crate::auth::UNAUTHENTICATED_MESSAGE => {
            Message::Close(Some(CloseFrame {
                code: 4403.into(),
                reason: frame.reason,
            }))
        }
        other => other,
    }
}

/// Sends a close frame (the connection may already be gone: nothing to do then).
async fn close_with(
    sink: &mut (impl SinkExt<Message> + Unpin),
    outbox: Option<&Outbox>,
    code: u16,
    reason: String,
) {
    stop_direct(outbox);
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

fn lock(rules: &Mutex<ConnectionRules>) -> std::sync::MutexGuard<'_, ConnectionRules> {
    rules.lock().unwrap_or_else(|e| e.into_inner())
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

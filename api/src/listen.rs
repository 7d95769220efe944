//! The HTTP server every role runs: axum's router on hyper, with what `axum::serve` lacks for a
//! server on the open network: a deadline for a request's headers (which is also how long a
//! kept-alive connection may sit idle), a deadline for the whole request including its body, and a
//! cap on open connections (past it a new connection gets a 503 and is closed, so the process
//! never runs out of file descriptors and the connections it has keep working).
//!
//! Bodies over the limit are refused from their `Content-Length` before a byte of them is read (so
//! a client that asked `Expect: 100-continue` gets 413 instead of `100 Continue`), and a closing
//! connection lingers: its write side is shut and what the client still sends is read and
//! discarded for a bounded time and amount, as nginx's lingering close does, so a client that
//! uploads its whole body before reading reads the 413 instead of a reset. HTTP/1.1 and HTTP/2
//! (cleartext, by prior knowledge) are both served, told apart by the HTTP/2 preface.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::edge::REQUEST_ID;
use crate::error::ApiError;

/// How long connections still serving a request get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What one client connection may hold, from configuration.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// How long a request's headers may take to arrive, counted from when the connection starts
    /// waiting for them: on a kept-alive connection this is also its idle timeout
    /// (`HTTP_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// How long a request may take from its headers to its answer, reading its body included
    /// (`HTTP_REQUEST_TIMEOUT_SECS`; WebSockets are not cut once upgraded).
    pub request_timeout: Duration,
    /// Most connections open at once (`HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Largest request body (`MAX_BODY_BYTES`): a larger `Content-Length` is refused unread.
    pub max_body_bytes: usize,
    /// How a closing connection drains what its client still sends.
    pub linger: Linger,
}

/// A closing connection's lingering: its write side is shut at once (the client reads the answer
/// and then the end), and what the client still sends is read and thrown away until it stops
/// sending for `LINGER_IDLE`, closes, or `time` or `bytes` run out. The connection keeps its
/// place under `HTTP_MAX_CONNECTIONS` meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Linger {
    /// Longest a connection lingers (`HTTP_LINGER_SECS`).
    pub time: Duration,
    /// Most bytes read and discarded (`HTTP_LINGER_BYTES`).
    pub bytes: usize,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(10),
            bytes: 64 * 1024 * 1024,
        }
    }
}

/// A lingering connection whose client sends nothing for this long is closed.
const LINGER_IDLE: Duration = Duration::from_secs(2);

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            max_body_bytes: 2 * 1024 * 1024,
            linger: Linger::default(),
        }
    }
}

/// 16,384, or fewer when the process may not open that many files (a quarter of them is kept
/// for the database, the broker and the log).
pub fn default_max_connections() -> usize {
    let ceiling = 16_384;
    match open_files_limit() {
        Some(limit) => ceiling.min(limit.saturating_mul(3) / 4).max(16),
        None => ceiling,
    }
}

/// The soft limit on open files, where the platform says (Linux `/proc`).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// What `serve` serves: a `Router`, or `crate::app`'s service around one (served directly: a
/// router wrapped around it only to give it the router's type cost a route lookup, a boxed clone
/// of the whole service and a boxed future per request).
pub trait HttpService:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> HttpService for T where
    T: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// What runs around the service for every request, as one hyper service rather than a stack of
/// layers (each layer is a future wrapped around the next, a clone and often a box per request):
/// the request id (the client's `x-request-id`, or a new UUID, returned on the answer), the body
/// limit (a body announced over `max_body_bytes` is refused unread, [`refuse_large_body`]) and
/// the deadline (a request, its body included, taking longer than `timeout` gets 408).
#[derive(Clone)]
struct Edge<S> {
    service: S,
    timeout: Duration,
    max_body_bytes: usize,
}

impl<S: HttpService> hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Edge<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send + 'static>>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        let id = match request.headers().get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = new_request_id();
                request.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        if let Some(mut refused) = refuse_large_body(self.max_body_bytes, &request) {
            refused.headers_mut().insert(REQUEST_ID, id);
            return Box::pin(std::future::ready(Ok(refused)));
        }
        let answer = tower::ServiceExt::oneshot(self.service.clone(), request);
        let timeout = self.timeout;
        Box::pin(async move {
            let mut response = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(response)) => response,
                Ok(Err(infallible)) => match infallible {},
                Err(_) => {
                    let mut response = ApiError::RequestTimeout(format!(
                        "The request did not complete within {} s",
                        timeout.as_secs_f64()
                    ))
                    .into_response();
                    // Its body may still be unread: the connection cannot carry another request.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    response
                }
            };
            response.headers_mut().entry(REQUEST_ID).or_insert(id);
            Ok(response)
        })
    }
}

/// A new request id: a random UUID, written straight into the header's bytes.
fn new_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_bytes(&text).expect("a UUID is a valid header value")
}

/// Answers 413 to a request whose `Content-Length` is over `limit`, before anything reads its body
/// (hyper sends `100 Continue` only when the body is first read). The connection is closed after
/// the answer (the body was never read) and lingers. A body of unannounced length is held to the
/// limit by the extractors as it is read.
fn refuse_large_body(limit: usize, request: &Request) -> Option<Response> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_none_or(|length| length <= limit as u64) {
        return None;
    }
    let mut response = if request.uri().path().starts_with("/graphql") {
        crate::graphql::body_too_large(limit)
    } else {
        ApiError::PayloadTooLarge(limit).into_response()
    };
    if request.version() < axum::http::Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Some(response)
}

/// Serves `service` (a router, or `crate::app`) on `listener` within `limits` until `shutdown`
/// fires, then lets open requests finish (up to 30 s).
pub async fn serve(
    listener: TcpListener,
    service: impl HttpService,
    limits: &ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let timeout = limits.request_timeout;
    let max_body_bytes = limits.max_body_bytes;
    // Once around the service (not per route).
    let service = Edge {
        service,
        timeout,
        max_body_bytes,
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // Pings find a peer that vanished; an HTTP/2 connection is otherwise bounded by the cap.
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or the like: wait a moment instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(&stream);
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: at HTTP_MAX_CONNECTIONS");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let (http1, http2) = (http1.clone(), http2.clone());
        let (header_timeout, linger) = (limits.header_timeout, limits.linger);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let Some((stream, http2_preface)) = first_bytes(stream, header_timeout).await else {
                return;
            };
            let stream = Counted {
                stream: Some(stream),
                unread: http2_preface.clone(),
                slot: Some(slot),
                linger,
            };
            let ended = if http2_preface[..] == HTTP2_PREFACE[..] {
                let connection = http2.serve_connection(TokioIo::new(stream), service);
                until_shutdown(connection, shutdown, |c| c.graceful_shutdown()).await
            } else {
                let connection = http1
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                until_shutdown(connection, shutdown, |c| c.graceful_shutdown()).await
            };
            if let Err(err) = ended {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown; closing them");
    }
    Ok(())
}

/// Reads a new connection's first bytes, as far as they agree with the HTTP/2 preface (at most
/// 24), within `timeout`: all 24 say HTTP/2; fewer, HTTP/1 (they are handed to hyper unread).
/// None when the client closed or sent nothing in time.
async fn first_bytes(
    mut stream: tokio::net::TcpStream,
    timeout: Duration,
) -> Option<(tokio::net::TcpStream, Bytes)> {
    let mut read = Vec::with_capacity(HTTP2_PREFACE.len());
    let reading = async {
        while read.len() < HTTP2_PREFACE.len() && HTTP2_PREFACE.starts_with(&read) {
            let mut chunk = [0u8; 24];
            let wanted = HTTP2_PREFACE.len() - read.len();
            match stream.read(&mut chunk[..wanted]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => read.extend_from_slice(&chunk[..n]),
            }
        }
        true
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(true) => Some((stream, Bytes::from(read))),
        _ => None,
    }
}

/// Drives `connection` until it ends; once `shutdown` fires, lets the request in flight finish
/// (`graceful` tells the connection to close after it) and then ends.
async fn until_shutdown<C, E>(
    connection: C,
    shutdown: CancellationToken,
    graceful: fn(Pin<&mut C>),
) -> Result<(), E>
where
    C: std::future::Future<Output = Result<(), E>>,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => ended,
        () = shutdown.cancelled() => {
            graceful(connection.as_mut());
            connection.await
        }
    }
}

/// A connection holding its place under the cap until the socket closes (a WebSocket keeps it
/// after the upgrade, when hyper has handed the socket over). Dropped, it lingers (see
/// [`Linger`]).
pub(crate) struct Counted {
    /// Always there until `into_parts` or the drop takes it.
    stream: Option<tokio::net::TcpStream>,
    /// Bytes read to tell the protocol apart, served first.
    unread: Bytes,
    slot: Option<OwnedSemaphorePermit>,
    linger: Linger,
}

impl Counted {
    /// The socket, what was read from it but not yet served, and its place under the cap (an
    /// upgraded WebSocket takes them over).
    pub(crate) fn into_parts(mut self) -> (tokio::net::TcpStream, Bytes, OwnedSemaphorePermit) {
        let stream = self.stream.take().expect("the socket is there until taken");
        let slot = self.slot.take().expect("the slot is there until taken");
        (stream, std::mem::take(&mut self.unread), slot)
    }

    fn stream(&mut self) -> &mut tokio::net::TcpStream {
        self.stream
            .as_mut()
            .expect("the socket is there until taken")
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let (Some(stream), Some(slot)) = (self.stream.take(), self.slot.take()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, slot, self.linger));
        }
    }
}

/// Shuts the write side of a closing connection and discards what its client still sends (see
/// [`Linger`]), then closes it.
async fn linger(mut stream: tokio::net::TcpStream, _slot: OwnedSemaphorePermit, limits: Linger) {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + limits.time;
    let mut left = limits.bytes;
    let mut sink = vec![0u8; 16 * 1024];
    while left > 0 {
        let wait = deadline.min(tokio::time::Instant::now() + LINGER_IDLE);
        match tokio::time::timeout_at(wait, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            let served = self.unread.split_to(n);
            buf.put_slice(&served);
            return Poll::Ready(Ok(()));
        }
        Pin::new(self.stream()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.stream()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.stream()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.stream()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.stream()).poll_shutdown(cx)
    }
}

/// Tells a connection over the cap why it is closed, without waiting on it.
fn refuse(stream: &tokio::net::TcpStream) {
    const BODY: &str = r#"{"detail":"Too many open connections, try again shortly"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    // Read what the client already sent (without waiting): a socket closed with unread data
    // sends a reset, which may destroy the answer before the client reads it.
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match stream.try_read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_fits_the_open_files_limit() {
        let cap = default_max_connections();
        assert!((16..=16_384).contains(&cap));
        if let Some(limit) = open_files_limit() {
            assert!(cap <= limit, "{cap} connections with {limit} files");
        }
    }
}

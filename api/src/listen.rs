//! The HTTP server every role runs: axum's router on hyper, with what `axum::serve` lacks for a
//! server on the open network: a deadline for a request's headers (which is also how long a
//! kept-alive connection may sit idle), a deadline for the whole request including its body, and a
//! cap on open connections (past it a new connection gets a 503 and is closed, so the process
//! never runs out of file descriptors and the connections it has keep working).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

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
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
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

/// Answers 408 when a request (its body included) takes longer than `timeout`.
pub async fn request_deadline(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
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
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` fires, then lets open requests
/// finish (up to 30 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let timeout = limits.request_timeout;
    // Once around the router (not per route): the request id (the client's, or a new one,
    // returned on the answer) and the deadline.
    let service = tower::ServiceBuilder::new()
        .map_request(|request: hyper::Request<hyper::body::Incoming>| request.map(Body::new))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| request_deadline(timeout, request, next),
        ))
        .service(router);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
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
        let service = TowerToHyperService::new(service.clone());
        let stream = Counted {
            stream,
            _slot: slot,
        };
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = shutdown.cancelled() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
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

/// A connection holding its place under the cap until the socket closes (a WebSocket keeps it
/// after the upgrade, when hyper has handed the socket over).
pub(crate) struct Counted {
    stream: tokio::net::TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Counted {
    /// The socket and its place under the cap (an upgraded WebSocket takes both over).
    pub(crate) fn into_parts(self) -> (tokio::net::TcpStream, OwnedSemaphorePermit) {
        (self.stream, self._slot)
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
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

//! The one middleware that runs inside the router, where the matched route is known: the
//! request's span (continuing the caller's trace; `debug` unless traces are exported, see
//! `telemetry::request_span`), a log line per answer (`debug`) and an error line per 5xx,
//! the request metrics by route pattern, the token check, and a 500 for a handler that panics.
//! One layer on purpose: axum boxes every layer applied to its routes and clones the whole chain
//! for every request (measured on REST predict: eight route layers cost about a fifth of the
//! server's CPU in allocations and virtual clones). Layers that need no route run outside the
//! router, once (`app`, `listen::serve`).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::auth::{ApiToken, require_token};
use crate::error::ApiError;
use crate::prometheus::RouteHandles;

/// The layer for every route: `router.layer(RoutedLayer::new(token))`; no token: open.
#[derive(Clone)]
pub struct RoutedLayer {
    token: Option<ApiToken>,
}

impl RoutedLayer {
    pub fn new(token: Option<ApiToken>) -> Self {
        Self { token }
    }
}

impl<S> tower::Layer<S> for RoutedLayer {
    type Service = Routed<S>;

    fn layer(&self, route: S) -> Routed<S> {
        Routed {
            route,
            token: self.token.clone(),
        }
    }
}

/// A route inside [`routed`]. Written out rather than through `axum::middleware::from_fn`, which
/// boxes the route once more as its `Next` and wraps the answer's future twice per request.
#[derive(Clone)]
pub struct Routed<S> {
    route: S,
    token: Option<ApiToken>,
}

impl<S> tower::Service<Request> for Routed<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.route.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The route made ready by `poll_ready` serves this request; its clone the next.
        let fresh = self.route.clone();
        let ready = std::mem::replace(&mut self.route, fresh);
        let token = self.token.clone();
        Box::pin(async move { Ok(routed(token, request, ready).await) })
    }
}

/// The request's span, metrics, token check and panic guard around `handler` (the route's).
async fn routed<S>(token: Option<ApiToken>, request: Request, handler: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    let handles = RouteHandles::of(route, request.method());
    let span = crate::telemetry::request_span(&request);
    // For the error line of a 5xx when the span is off (a header's clone is a reference count).
    let id = span
        .is_disabled()
        .then(|| request.headers().get(crate::edge::REQUEST_ID).cloned())
        .flatten();
    let started = Instant::now();
    let mut answer = std::pin::pin!(require_token(token, request, handler));
    // A panicking handler answers 500 (the panic hook reports it as usual) instead of dropping
    // the connection.
    let response = std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| answer.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(
                ApiError::Internal(anomaly_workers::cause::Cause::message(
                    "a request handler panicked",
                ))
                .into_response(),
            ),
        }
    })
    .instrument(span.clone())
    .await;
    let latency = started.elapsed();
    let status = response.status();
    handles.record(status.as_u16(), latency.as_secs_f64());
    span.in_scope(|| {
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            if span.is_disabled() {
                let id = id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or("-");
                tracing::error!(
                    method = %handles.method(),
                    path = handles.route(),
                    id,
                    status = status.as_u16(),
                    latency_ms,
                    "response failed"
                );
            } else {
                tracing::error!(status = status.as_u16(), latency_ms, "response failed");
            }
        } else {
            tracing::debug!(
                status = status.as_u16(),
                latency_ms,
                "finished processing request"
            );
        }
    });
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_and_the_next_request_is_served() {
        async fn boom() -> &'static str {
            panic!("a bug in a handler")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(RoutedLayer::new(None));
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let answer = app.clone().oneshot(get("/boom")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .unwrap();
        assert!(
            String::from_utf8_lossy(&body).contains("detail"),
            "{body:?}"
        );
        let answer = app.oneshot(get("/fine")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }

    /// What a test subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn at_info_a_5xx_is_logged_with_its_method_route_and_id_and_a_2xx_is_not() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        async fn failing() -> StatusCode {
            StatusCode::SERVICE_UNAVAILABLE
        }
        let app = Router::new()
            .route("/failing/{id}", get(failing))
            .route("/fine", get(|| async { "fine" }))
            .layer(RoutedLayer::new(None));
        let get = |path: &str| {
            Request::get(path)
                .header(crate::edge::REQUEST_ID, "req-42")
                .body(Body::empty())
                .unwrap()
        };
        let answer = app.clone().oneshot(get("/fine")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(
            captured.0.lock().unwrap().is_empty(),
            "a 200 logs nothing at info"
        );
        let answer = app.oneshot(get("/failing/x")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        for part in [
            "ERROR",
            "response failed",
            "method=GET",
            "path=\"/failing/{id}\"",
            "id=\"req-42\"",
            "status=503",
        ] {
            assert!(log.contains(part), "{part} in {log}");
        }
    }
}

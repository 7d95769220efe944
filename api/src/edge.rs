//! HTTP conveniences at the edge, from tower-http: CORS for the origins an operator allows
//! (`CORS_ORIGINS`; none by default: only the gateway's own pages call it), gzip/brotli for
//! answers over 1 KB when the client accepts them (JSON lists, GraphQL answers, GraphiQL's files;
//! the small predict answers stay as they are), and a request id on every request (`x-request-id`,
//! kept from the client or made up, by `listen::serve`) that the logs carry and the answer
//! returns.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures_util::FutureExt as _;
use futures_util::future::Either;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer, CompressionLevel};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Answers smaller than this are sent uncompressed.
const COMPRESS_ABOVE_BYTES: u16 = 1024;

/// CORS for `origins` (`*` allows any origin), none when empty.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
            .expose_headers([REQUEST_ID])
            .max_age(Duration::from_secs(3600)),
    )
}

/// gzip and brotli (fast settings) for answers over 1 KB, never for images or streams (an
/// encoder holds back what it has not filled a block with, which would delay live results).
pub fn compression() -> CompressionLayer<impl Predicate> {
    let predicate = SizeAbove::new(COMPRESS_ABOVE_BYTES)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        .and(NotForContentType::const_new("multipart/mixed"))
        .and(NotForContentType::GRPC);
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(predicate)
}

/// The request id of `request`, for log spans.
pub fn request_id(request: &Request) -> &str {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// The compression layer for requests that accept an encoding, and `plain` (the same service
/// without it) for those that accept none (most API clients and load generators): for them the
/// layer would only wrap every answer's body in an encoder that passes it through, a box and a
/// copy per request on the hot path.
#[derive(Clone)]
pub struct CompressWhenAsked<S, P: Predicate> {
    compressed: Compression<S, P>,
    plain: S,
}

impl<S: Clone, P: Predicate> CompressWhenAsked<S, P> {
    pub fn new(layer: CompressionLayer<P>, plain: S) -> Self {
        Self {
            compressed: tower::Layer::layer(&layer, plain.clone()),
            plain,
        }
    }
}

/// A compressed answer with its body boxed, as the router's answers are.
type Boxed =
    fn(Result<Response<CompressionBody<Body>>, Infallible>) -> Result<Response, Infallible>;

impl<S, P> tower::Service<Request> for CompressWhenAsked<S, P>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone,
    P: Predicate,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        futures_util::future::Map<<Compression<S, P> as tower::Service<Request>>::Future, Boxed>,
        S::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let asks = request
            .headers()
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .any(|v| v.as_bytes().iter().any(|b| !b.is_ascii_whitespace()));
        if asks {
            let boxed: Boxed = |answer| answer.map(|response| response.map(Body::new));
            Either::Left(self.compressed.call(request).map(boxed))
        } else {
            Either::Right(self.plain.call(request))
        }
    }
}

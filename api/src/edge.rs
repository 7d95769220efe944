//! HTTP conveniences at the edge, from tower-http: CORS for the origins an operator allows
//! (`CORS_ORIGINS`; none by default: only the gateway's own pages call it), gzip/brotli for
//! answers over 1 KB when the client accepts them (JSON lists, GraphQL answers, GraphiQL's files;
//! the small predict answers stay as they are), and a request id on every request (`x-request-id`,
//! kept from the client or made up, by `listen::serve`) that the logs carry and the answer
//! returns.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
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

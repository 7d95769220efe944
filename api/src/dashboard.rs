//! The live dashboard (`dashboard/`, built by Vite) served at `/dashboard` from files embedded in
//! the binary at compile time, so running the gateway needs no npm and no internet. The built
//! files are committed; CI rebuilds them and fails when they differ.
//!
//! The page itself is public (it holds no data); its GraphQL calls need the token when
//! `API_TOKEN` is set, which the page asks for.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file and the headers it is served with.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(bytes: &'static [u8], content_type: &'static str) -> Self {
        // FNV-1a over the content: the names carry no hash, so the ETag lets browsers revalidate.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        let etag =
            HeaderValue::from_str(&format!("\"{hash:016x}\"")).expect("hex is a valid header");
        Self {
            bytes,
            content_type,
            etag,
        }
    }

    fn respond(&self, request_headers: &HeaderMap) -> Response {
        let fresh = request_headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tag| tag == self.etag);
        let status = if fresh {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, self.etag.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ];
        if fresh {
            (status, headers).into_response()
        } else {
            (status, headers, self.bytes).into_response()
        }
    }
}

/// Everything the page loads comes from the gateway itself; it talks only to its own origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

macro_rules! built {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dashboard/dist/",
            $file
        ))
    };
}

static INDEX: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(built!("index.html"), "text/html; charset=utf-8"));
static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(built!("assets/app.js"), "text/javascript; charset=utf-8"));
static STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(built!("assets/app.css"), "text/css; charset=utf-8"));

/// The page and its two assets; any other path under `/dashboard` falls through to the app's 404.
pub fn routes() -> Router {
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/assets/app.js", get(script))
        .route("/dashboard/assets/app.css", get(style))
}

async fn index(headers: HeaderMap) -> Response {
    INDEX.respond(&headers)
}

async fn script(headers: HeaderMap) -> Response {
    SCRIPT.respond(&headers)
}

async fn style(headers: HeaderMap) -> Response {
    STYLE.respond(&headers)
}

/// Whether a request asks for the dashboard's files (public even with `API_TOKEN`).
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

//! The live dashboard (`dashboard/`, built by Vite) served at `/dashboard` from files embedded in
//! the binary at compile time, so running the gateway needs no npm and no internet. The built
//! files are committed; CI rebuilds them and fails when they differ.
//!
//! The page itself is public (it holds no data); its GraphQL calls need the token when
//! `API_TOKEN` is set, which the page asks for.

use std::sync::LazyLock;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::assets::Asset;

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

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        built!("index.html"),
        "text/html; charset=utf-8",
        CONTENT_SECURITY_POLICY,
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        built!("assets/app.js"),
        "text/javascript; charset=utf-8",
        CONTENT_SECURITY_POLICY,
    )
});
static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        built!("assets/app.css"),
        "text/css; charset=utf-8",
        CONTENT_SECURITY_POLICY,
    )
});

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

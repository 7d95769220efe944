//! GraphiQL, the GraphQL playground, served from files embedded in the binary (GraphiQL 3.8.3,
//! React 18.3.1, pinned in `api/assets/graphiql/` with their licences) under a policy that lets
//! the page load nothing from outside the gateway: it works offline, and no third-party script
//! runs on the origin where the dashboard keeps its token.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::assets::{Asset, embedded, respond_named};

/// Scripts and styles from the gateway only; GraphiQL sets inline styles and embeds its fonts
/// and icons as `data:` URLs; it talks to `/graphql` and `/graphql/ws` on this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

static PAGE: LazyLock<Asset> = LazyLock::new(|| {
    embedded!(
        "graphiql",
        "index.html",
        "text/html; charset=utf-8",
        CONTENT_SECURITY_POLICY
    )
});

/// The page's files by name.
static FILES: LazyLock<[(&str, Asset); 5]> = LazyLock::new(|| {
    [
        (
            "react.production.min.js",
            embedded!(
                "graphiql",
                "react.production.min.js",
                "text/javascript; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
        (
            "react-dom.production.min.js",
            embedded!(
                "graphiql",
                "react-dom.production.min.js",
                "text/javascript; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
        (
            "graphiql.min.js",
            embedded!(
                "graphiql",
                "graphiql.min.js",
                "text/javascript; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
        (
            "graphiql.min.css",
            embedded!(
                "graphiql",
                "graphiql.min.css",
                "text/css; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
        (
            "start.js",
            embedded!(
                "graphiql",
                "start.js",
                "text/javascript; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
    ]
});

/// The page (answered by `/graphql` to a browser's GET).
pub fn page(headers: &HeaderMap) -> Response {
    PAGE.respond(headers)
}

/// `/graphql/assets/{file}`.
pub fn routes() -> Router {
    Router::new().route("/graphql/assets/{file}", get(file))
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    respond_named(&*FILES, &name, &headers)
}

/// Whether a request asks for GraphiQL's files (public even with `API_TOKEN`, like the page).
pub fn is_graphiql_asset(path: &str) -> bool {
    path.starts_with("/graphql/assets/")
}

//! The optional API tokens. With `API_TOKEN` set, every gateway route but `/healthcheck`, the
//! probes (`/livez`, `/readyz`), `/metrics`, the API documentation (`/openapi.json`, `/docs`),
//! the dashboard's files and the GraphiQL page needs `Authorization: Bearer <token>`; a
//! WebSocket client may instead send it in `connection_init` (`{"Authorization": "Bearer <token>"}` or
//! `{"token": "<token>"}`). `API_READ_TOKEN` is a second, read-only token for dashboards and
//! GraphiQL viewers: GraphQL queries and subscriptions and REST `GET`s, but no mutation (GraphQL
//! code `FORBIDDEN`) and no REST `POST` (403).
//! A missing or wrong token is 401: REST answers `{"detail": ...}`, GraphQL an error with code
//! `UNAUTHENTICATED`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const UNAUTHENTICATED_MESSAGE: &str = "Not authenticated: send Authorization: Bearer <token>";

pub const READ_ONLY_MESSAGE: &str =
    "This token is read-only: it may query and subscribe, not fit or predict";

/// What a request may do, from the token it presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Everything (`API_TOKEN`, or no token configured).
    Full,
    /// Queries, subscriptions and REST reads (`API_READ_TOKEN`).
    ReadOnly,
}

/// The tokens clients must present. Compared in constant time.
#[derive(Clone)]
pub struct ApiToken {
    full: Arc<str>,
    read_only: Option<Arc<str>>,
}

fn same(expected: &str, presented: &str) -> bool {
    let (a, b) = (expected.as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiToken {
    /// `None` when no token is configured (the gateway is open); a read-only token alone is
    /// refused by the configuration, so it is ignored here.
    pub fn from_config(full: Option<&str>, read_only: Option<&str>) -> Option<Self> {
        full.map(|full| Self {
            full: Arc::from(full),
            read_only: read_only.map(Arc::from),
        })
    }

    /// What `presented` (the token itself) allows, if it is one of the tokens.
    fn access(&self, presented: &str) -> Option<Access> {
        let read_only = self
            .read_only
            .as_deref()
            .is_some_and(|t| same(t, presented));
        if same(&self.full, presented) {
            Some(Access::Full)
        } else if read_only {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }

    fn access_bearer(&self, value: &str) -> Option<Access> {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .and_then(|presented| self.access(presented.trim()))
    }

    /// What the `Authorization` header allows, if it carries one of the tokens.
    pub fn access_from_header(&self, headers: &HeaderMap) -> Option<Access> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| self.access_bearer(v))
    }

    /// What a graphql-ws `connection_init` payload allows, if it carries one of the tokens.
    pub fn access_from_init_payload(&self, payload: &Value) -> Option<Access> {
        let field = |name: &str| payload.get(name).and_then(Value::as_str);
        field("Authorization")
            .or_else(|| field("authorization"))
            .and_then(|v| self.access_bearer(v))
            .or_else(|| field("token").and_then(|t| self.access(t)))
    }
}

/// Middleware: lets a request through when no token is configured, when it presents the token,
/// or when it asks for something public (health, the GraphiQL page, the WebSocket upgrade whose
/// token comes in `connection_init`).
pub async fn require_token<S>(token: Option<ApiToken>, mut request: Request, next: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let Some(token) = token else {
        request.extensions_mut().insert(Access::Full);
        return run(next, request).await;
    };
    match token.access_from_header(request.headers()) {
        Some(Access::ReadOnly) if writes(&request) => {
            return crate::error::ApiError::Forbidden(READ_ONLY_MESSAGE).into_response();
        }
        Some(access) => {
            request.extensions_mut().insert(access);
            return run(next, request).await;
        }
        None if is_public(&request) => {
            // A WebSocket proves its token in `connection_init`; the rest is public reading.
            request.extensions_mut().insert(Access::ReadOnly);
            return run(next, request).await;
        }
        None => {}
    }
    let mut response = if request.uri().path().starts_with("/graphql") {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "errors": [{
                "message": UNAUTHENTICATED_MESSAGE,
                "extensions": { "code": "UNAUTHENTICATED" }
            }] })),
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "detail": "Not authenticated" })),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `request` answered by `service`.
async fn run<S>(service: S, request: Request) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    match tower::ServiceExt::oneshot(service, request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
}

/// A REST request that changes or computes something (every REST `POST`, `DELETE`, ...: all but
/// reads); GraphQL decides by operation, in `graphql::guard`.
fn writes(request: &Request) -> bool {
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    !reads.contains(request.method()) && !request.uri().path().starts_with("/graphql")
}

fn is_public(request: &Request) -> bool {
    let path = request.uri().path();
    let get = request.method() == Method::GET;
    let wants_html = crate::extract::accepts(request.headers(), "text/html");
    (get && (path == "/healthcheck"
        || crate::probes::is_probe(path)
        || crate::prometheus::is_metrics(path)
        || crate::openapi::is_docs_path(path)
        || crate::dashboard::is_dashboard_path(path)
        || crate::graphiql::is_graphiql_asset(path)))
        || path == "/graphql/ws"
        || (get && path == "/graphql" && wants_html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let token = ApiToken::from_config(Some("s3cret"), None).unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(token.access_from_header(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre"),
        );
        assert_eq!(token.access_from_header(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert_eq!(token.access_from_header(&headers), Some(Access::Full));
        let init = |v: Value| token.access_from_init_payload(&v);
        assert_eq!(
            init(json!({ "Authorization": "Bearer s3cret" })),
            Some(Access::Full)
        );
        assert_eq!(init(json!({ "token": "s3cret" })), Some(Access::Full));
        assert_eq!(init(json!({ "token": "S3CRET" })), None);
        assert_eq!(init(json!({})), None);
    }

    #[test]
    fn the_read_only_token_reads() {
        let token = ApiToken::from_config(Some("full"), Some("viewer")).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer viewer"),
        );
        assert_eq!(token.access_from_header(&headers), Some(Access::ReadOnly));
        assert_eq!(
            token.access_from_init_payload(&json!({ "token": "viewer" })),
            Some(Access::ReadOnly)
        );
        assert_eq!(
            token.access_from_init_payload(&json!({ "token": "full" })),
            Some(Access::Full)
        );
    }
}

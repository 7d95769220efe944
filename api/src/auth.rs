//! The optional API token (`API_TOKEN`). When it is set, every gateway route but `/healthcheck`,
//! the dashboard's files and the GraphiQL page needs `Authorization: Bearer <token>`; a WebSocket
//! client may instead send it in `connection_init` (`{"Authorization": "Bearer <token>"}` or
//! `{"token": "<token>"}`).
//! Refusals are 401: REST answers `{"detail": ...}`, GraphQL an error with code `UNAUTHENTICATED`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const UNAUTHENTICATED_MESSAGE: &str = "Not authenticated: send Authorization: Bearer <token>";

/// The token clients must present. Compared in constant time.
#[derive(Clone)]
pub struct ApiToken(Arc<str>);

impl ApiToken {
    /// `None` when no token is configured (the gateway is open).
    pub fn from_config(token: Option<&str>) -> Option<Self> {
        token.map(|t| Self(Arc::from(t)))
    }

    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn matches_bearer(&self, value: &str) -> bool {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .is_some_and(|presented| self.matches(presented.trim()))
    }

    pub fn accepts_header(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| self.matches_bearer(v))
    }

    /// A graphql-ws `connection_init` payload carrying the token.
    pub fn accepts_init_payload(&self, payload: &Value) -> bool {
        let field = |name: &str| payload.get(name).and_then(Value::as_str);
        field("Authorization")
            .or_else(|| field("authorization"))
            .is_some_and(|v| self.matches_bearer(v))
            || field("token").is_some_and(|t| self.matches(t))
    }
}

/// Middleware: lets a request through when no token is configured, when it presents the token,
/// or when it asks for something public (health, the GraphiQL page, the WebSocket upgrade whose
/// token comes in `connection_init`).
pub async fn require_token(
    State(token): State<Option<ApiToken>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    if token.accepts_header(request.headers()) || is_public(&request) {
        return next.run(request).await;
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

fn is_public(request: &Request) -> bool {
    let path = request.uri().path();
    let get = request.method() == Method::GET;
    let wants_html = crate::extract::accepts(request.headers(), "text/html");
    (get && (path == "/healthcheck" || crate::dashboard::is_dashboard_path(path)))
        || path == "/graphql/ws"
        || (get && path == "/graphql" && wants_html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let token = ApiToken::from_config(Some("s3cret")).unwrap();
        let mut headers = HeaderMap::new();
        assert!(!token.accepts_header(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre"),
        );
        assert!(!token.accepts_header(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(token.accepts_header(&headers));
        assert!(token.accepts_init_payload(&json!({ "Authorization": "Bearer s3cret" })));
        assert!(token.accepts_init_payload(&json!({ "token": "s3cret" })));
        assert!(!token.accepts_init_payload(&json!({ "token": "S3CRET" })));
        assert!(!token.accepts_init_payload(&json!({})));
    }
}

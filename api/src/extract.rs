//! Request extractors whose rejections are the API's own errors, so a malformed body, path or
//! query gets the seed's `{"detail": ...}` answer instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use anomaly_workers::domain::SeriesId;

use crate::error::ApiError;

/// A JSON body, within the configured size limit. A body without a content type is read as JSON
/// (the seed's clients did not always send one); one sent as anything else (a cross-site form's
/// `text/plain` or `application/x-www-form-urlencoded`) gets 415.
pub struct JsonBody<T>(pub T);

/// Whether a `Content-Type` value names JSON (`application/json`, `application/*+json`).
fn is_json(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let starts = |prefix: &str| {
        media_type
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    let ends = |suffix: &str| {
        media_type
            .len()
            .checked_sub(suffix.len())
            .and_then(|at| media_type.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
    };
    media_type.eq_ignore_ascii_case("application/json") || (starts("application/") && ends("+json"))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(axum::http::header::CONTENT_TYPE)
            && !content_type.to_str().is_ok_and(is_json)
        {
            return Err(ApiError::UnsupportedMediaType(crate::error::JSON_ONLY));
        }
        let bytes = body(req, state).await?;
        // serde would also read a struct from an array; every body of this API is an object.
        let starts_as_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !starts_as_object {
            return Err(ApiError::invalid_payload("expected a JSON object"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|err| ApiError::invalid_payload(err.to_string()))
    }
}

/// A request's body, within the limit in force (413 naming it past that).
pub async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(crate::config::DEFAULT_MAX_BODY_BYTES, |l| l.0);
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::invalid_payload(rejection.body_text())
        }
    })
}

/// The body limit in force, recorded in request extensions so rejections can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The `{series_id}` path segment, parsed: a malformed id is refused before the body is read.
pub struct SeriesPath(pub SeriesId);

impl<S: Send + Sync> FromRequestParts<S> for SeriesPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        Ok(SeriesPath(SeriesId::parse(&raw.0)?))
    }
}

/// Query parameters of type `T`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// Whether the request's `Accept` headers name `media_type` (GraphiQL for browsers, the
/// GraphQL-over-HTTP response type).
pub fn accepts(headers: &axum::http::HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| accept.contains(media_type))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_media_types_are_told_apart_from_others_whatever_their_case() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;charset=utf-8",
            "application/vnd.api+json",
            "application/problem+JSON",
        ] {
            assert!(is_json(json), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json-seq",
            "text/json+plain",
            "application/",
            "+json",
            "",
        ] {
            assert!(!is_json(other), "{other}");
        }
    }
}

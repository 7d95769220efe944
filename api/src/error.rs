//! The one error type at the edge: maps every failure to a status and the seed's
//! `{"detail": ...}` body, logs internal causes, and never shows them to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use anomaly_workers::cause::Cause;
use anomaly_workers::domain::InvalidInput;
use anomaly_workers::predictor::PredictError;
use anomaly_workers::stats::StatsError;
use anomaly_workers::store::StoreError;
use anomaly_workers::trainer::TrainError;

pub const INVALID_PAYLOAD: &str = "Invalid request payload";
pub const MODEL_NOT_FOUND: &str = "Model not found";
pub const NO_TRAINING_DATA: &str = "No training data found for given series_id and version.";
pub const JSON_ONLY: &str = "Send the body as application/json";

#[derive(Debug)]
pub enum ApiError {
    /// 400 with a detail safe to show; `reason` optionally explains a malformed payload.
    BadRequest {
        detail: String,
        reason: Option<String>,
    },
    NotFound(&'static str),
    PayloadTooLarge(usize),
    /// 415: a body sent in another format than the route takes; the text says which it takes
    /// (`JSON_ONLY` for the JSON routes).
    UnsupportedMediaType(&'static str),
    /// 403: the token presented may not do this (the read-only token and a mutation).
    Forbidden(&'static str),
    /// 408: the request (or the work it asked for) ran past its time limit; the text says which.
    RequestTimeout(String),
    /// 503: a backend is down; `what` is shown, `cause` only logged.
    Unavailable {
        what: &'static str,
        cause: Cause,
    },
    /// 500: a bug or corrupt data; only logged.
    Internal(Cause),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            reason: None,
        }
    }

    pub fn invalid_payload(reason: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: INVALID_PAYLOAD.into(),
            reason: Some(reason.into()),
        }
    }
}

/// What a client is shown of a failure, the same over REST and GraphQL.
struct Shown {
    status: StatusCode,
    /// GraphQL's `extensions.code`.
    code: &'static str,
    detail: String,
    /// Where a malformed payload went wrong (REST's `reason`; GraphQL appends it).
    reason: Option<String>,
}

impl ApiError {
    /// The one mapping of a failure to what the client sees: status, code and text. Internal
    /// causes are logged here (a `Cause`'s text already holds every level of its chain) and
    /// never shown.
    fn shown(self) -> Shown {
        let shown = |status, code, detail: String| Shown {
            status,
            code,
            detail,
            reason: None,
        };
        match self {
            ApiError::BadRequest { detail, reason } => Shown {
                status: StatusCode::BAD_REQUEST,
                code: "BAD_USER_INPUT",
                detail,
                reason,
            },
            ApiError::NotFound(detail) => shown(StatusCode::NOT_FOUND, "NOT_FOUND", detail.into()),
            ApiError::PayloadTooLarge(limit) => shown(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BAD_USER_INPUT",
                format!("Request body too large: the limit is {limit} bytes"),
            ),
            ApiError::UnsupportedMediaType(detail) => shown(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
                detail.into(),
            ),
            ApiError::Forbidden(detail) => shown(StatusCode::FORBIDDEN, "FORBIDDEN", detail.into()),
            ApiError::RequestTimeout(detail) => {
                shown(StatusCode::REQUEST_TIMEOUT, "TIMEOUT", detail)
            }
            ApiError::Unavailable { what, cause } => {
                tracing::warn!(%cause, "{what} unavailable");
                metrics::counter!("anomaly_backend_unavailable_total", "backend" => what)
                    .increment(1);
                shown(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "INTERNAL",
                    format!("{what} is unavailable, try again shortly"),
                )
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                shown(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "Internal server error".into(),
                )
            }
        }
    }

    /// The same failure for GraphQL: the message REST would show, and `extensions.code`
    /// (`BAD_USER_INPUT`, `NOT_FOUND`, `FORBIDDEN`, `TIMEOUT` or `INTERNAL`); internal causes are
    /// only logged.
    pub fn into_graphql(self) -> async_graphql::Error {
        use async_graphql::ErrorExtensions;
        let Shown {
            code,
            detail,
            reason,
            ..
        } = self.shown();
        let message = match reason {
            Some(reason) => format!("{detail}: {reason}"),
            None => detail,
        };
        async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Shown {
            status,
            detail,
            reason,
            ..
        } = self.shown();
        let mut body = json!({ "detail": detail });
        if let Some(reason) = reason {
            body["reason"] = reason.into();
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // A backend or role down is worth retrying: say when.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<InvalidInput> for ApiError {
    fn from(err: InvalidInput) -> Self {
        ApiError::bad_request(err.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => ApiError::Unavailable {
                what: "The database",
                cause,
            },
            StoreError::Corrupt(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<StatsError> for ApiError {
    fn from(err: StatsError) -> Self {
        ApiError::Unavailable {
            what: "The metrics store",
            cause: Cause::new(err),
        }
    }
}

impl From<TrainError> for ApiError {
    fn from(err: TrainError) -> Self {
        match err {
            TrainError::Invalid(invalid) => invalid.into(),
            TrainError::Store(store) => store.into(),
            TrainError::Bus(bus) => ApiError::Unavailable {
                what: "The event bus",
                cause: Cause::new(bus),
            },
            TrainError::Unreachable(cause) => ApiError::Unavailable {
                what: "The trainer",
                cause,
            },
        }
    }
}

impl From<PredictError> for ApiError {
    fn from(err: PredictError) -> Self {
        match err {
            PredictError::ModelNotFound(_) => ApiError::NotFound(MODEL_NOT_FOUND),
            PredictError::Store(store) => store.into(),
            PredictError::Unreachable(cause) => ApiError::Unavailable {
                what: "The predictor",
                cause,
            },
            PredictError::Bus(bus) => ApiError::Unavailable {
                what: "The event bus",
                cause: Cause::new(bus),
            },
        }
    }
}

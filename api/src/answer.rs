//! A JSON answer written once into a buffer sized for it: axum's `Json` starts at 128 bytes and
//! grows (a copy) for anything longer, which a predict's answer (about 230 bytes) always is.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// Bytes reserved for an answer before it is written.
const USUAL_ANSWER_BYTES: usize = 320;

/// `T` as an `application/json` answer.
pub struct JsonAnswer<T>(pub T);

impl<T: Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        let mut text = Vec::with_capacity(USUAL_ANSWER_BYTES);
        match serde_json::to_writer(&mut text, &self.0) {
            Ok(()) => {
                let mut response = Response::new(Body::from(text));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(err) => ApiError::Internal(anomaly_workers::cause::Cause::message(format!(
                "the answer could not be written as JSON: {err}"
            )))
            .into_response(),
        }
    }
}

//! GraphQL over HTTP: POST runs an operation or a batch (limited), GET runs queries only (a
//! mutation or subscription over GET is 405, as the GraphQL-over-HTTP spec asks), a browser's GET
//! gets GraphiQL, and a request that cannot be parsed gets a 4xx with a GraphQL error body.
//! Answers are `application/graphql-response+json` when the client accepts it (then a request
//! error, one that stops execution before it starts, is a 400 without `data`), else
//! `application/json` with 200, as the GraphQL-over-HTTP spec describes. A POST body is read
//! within `MAX_BODY_BYTES` like every other body (413 past it).

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchResponse, ErrorExtensionValues, ParseRequestError, ServerError};
use async_graphql_axum::GraphQLRequest;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use super::streaming::{self, Streaming};
use crate::auth::Access;
use crate::extract::accepts;
use crate::graphql::schema::Lookup;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// 413 for a GraphQL request whose body is over `limit` bytes, as a GraphQL error with a code.
pub(crate) fn body_too_large(limit: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "BAD_USER_INPUT",
        format!("Request body too large: the limit is {limit} bytes"),
    )
}

/// An error answer in GraphQL's shape with `extensions.code`, under `status`.
pub(super) fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    let body = serde_json::json!({ "errors": [error] });
    json_response(status, "application/json", &body)
}

fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &serde_json::Value,
) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.to_string(),
    )
        .into_response()
}

fn text_response(
    status: StatusCode,
    content_type: &'static str,
    body: serde_json::Result<String>,
) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.unwrap_or_else(|_| "null".into()),
    )
        .into_response()
}

/// The media type a client accepts for an answer: `application/graphql-response+json` (the
/// GraphQL-over-HTTP one) or plain `application/json`.
#[derive(Clone, Copy)]
pub(super) struct AnswerType {
    modern: bool,
}

impl AnswerType {
    pub(super) fn of(headers: &HeaderMap) -> Self {
        Self {
            modern: accepts(headers, GRAPHQL_RESPONSE_JSON),
        }
    }
}

/// `response` in the media type the client accepts.
fn respond(answer_type: AnswerType, response: BatchResponse) -> Response {
    let modern = answer_type.modern;
    let content_type = if modern {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    };
    match response {
        BatchResponse::Single(response) => {
            // Parse, validation and variable errors carry no path and leave no data.
            let request_error = modern
                && response.data == async_graphql::Value::Null
                && !response.errors.is_empty()
                && response.errors.iter().all(|e| e.path.is_empty());
            if request_error {
                let mut body = serde_json::to_value(&response).unwrap_or_default();
                if let Some(fields) = body.as_object_mut() {
                    fields.remove("data");
                }
                return json_response(StatusCode::BAD_REQUEST, content_type, &body);
            }
            // Written straight to text: no intermediate JSON tree on the hot path.
            text_response(
                StatusCode::OK,
                content_type,
                serde_json::to_string(&response),
            )
        }
        BatchResponse::Batch(responses) => text_response(
            StatusCode::OK,
            content_type,
            serde_json::to_string(&responses),
        ),
    }
}

fn missing_query() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "BAD_USER_INPUT",
        "Missing query".into(),
    )
}

/// A body or query string that is not a GraphQL request.
pub struct BadRequest(ParseRequestError);

impl From<ParseRequestError> for BadRequest {
    fn from(err: ParseRequestError) -> Self {
        Self(err)
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        match self.0 {
            ParseRequestError::PayloadTooLarge => error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BAD_USER_INPUT",
                "Request body too large".into(),
            ),
            other => error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                format!("Not a GraphQL request: {other}"),
            ),
        }
    }
}

/// `POST /graphql`. The request is taken whole (not its headers as an extractor, which copies
/// them) and its headers are read before its body.
pub(super) async fn execute(State(endpoint): State<Arc<Endpoint>>, request: Request) -> Response {
    let headers = request.headers();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .get(.."application/json".len())
                .is_some_and(|head| head.eq_ignore_ascii_case("application/json"))
        });
    let answer_type = AnswerType::of(headers);
    let streaming = Streaming::requested(headers);
    let access = request
        .extensions()
        .get::<Access>()
        .copied()
        .unwrap_or(Access::Full);
    let body = Bytes::from_request(request, &()).await;
    if !json {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "Send the request as application/json".into(),
        );
    }
    // Read through axum's `Bytes`, which keeps to the body limit (async-graphql-axum's own
    // extractor reads a body of any size).
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return BadRequest(ParseRequestError::PayloadTooLarge).into_response();
        }
        Err(rejection) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                format!("Not a GraphQL request: {}", rejection.body_text()),
            );
        }
    };
    // One operation (nearly every request) is read as one: the batch type is an untagged enum,
    // which buffers the whole document before trying each of its forms.
    let single = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let parsed = if single {
        serde_json::from_slice(&body).map(async_graphql::BatchRequest::Single)
    } else {
        serde_json::from_slice(&body)
    };
    let batch = match parsed {
        Ok(batch) => batch,
        Err(err) => {
            return BadRequest(ParseRequestError::InvalidRequest(Box::new(err))).into_response();
        }
    };
    if let async_graphql::BatchRequest::Single(request) = &batch
        && request.query.trim().is_empty()
    {
        return missing_query();
    }
    if let async_graphql::BatchRequest::Batch(requests) = &batch
        && requests.len() > endpoint.batch_limit
    {
        return error_response(
            StatusCode::OK,
            "BAD_USER_INPUT",
            format!(
                "A batch may hold at most {} operations, this one has {}",
                endpoint.batch_limit,
                requests.len()
            ),
        );
    }
    let batch = match (streaming, batch) {
        (Some(kind), async_graphql::BatchRequest::Single(request)) => {
            return streaming::respond(&endpoint, request.data(access), kind);
        }
        (_, batch) => batch,
    };
    let prepared = &endpoint.prepared;
    let learning = match &batch {
        async_graphql::BatchRequest::Single(request) => match prepared.lookup(request, access) {
            Lookup::Plan(plan) => {
                if let Some(response) = prepared.run(&plan, request).await {
                    return respond(answer_type, BatchResponse::Single(response));
                }
                None
            }
            Lookup::Unknown => Some(request.query.clone()),
            Lookup::Schema => None,
        },
        async_graphql::BatchRequest::Batch(_) => None,
    };
    let response = endpoint.schema.execute_batch(batch.data(access)).await;
    if let (Some(query), BatchResponse::Single(answered)) = (learning, &response) {
        prepared.learn(query, answered);
    }
    respond(answer_type, response)
}

pub(super) async fn query_or_graphiql(
    State(endpoint): State<Arc<Endpoint>>,
    access: Option<Extension<Access>>,
    headers: HeaderMap,
    request: Result<GraphQLRequest<BadRequest>, BadRequest>,
) -> Response {
    if accepts(&headers, "text/html") {
        return crate::graphiql::page(&headers);
    }
    let mut request = match request {
        Ok(request) => request.into_inner(),
        Err(rejection) => return rejection.into_response(),
    };
    if request.query.trim().is_empty() {
        return missing_query();
    }
    let access = access.map_or(Access::Full, |Extension(access)| access);
    let streaming = Streaming::requested(&headers);
    // Over GET a stream may carry a subscription; a mutation always needs POST.
    let allowed = |t: &OperationType| {
        *t == OperationType::Query || (streaming.is_some() && *t == OperationType::Subscription)
    };
    if let Some(kind) = operation_type(&mut request).filter(|t| !allowed(t)) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            format!("A {kind} cannot run over GET: use POST"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return response;
    }
    if let Some(kind) = streaming {
        return streaming::respond(&endpoint, request.data(access), kind);
    }
    respond(
        AnswerType::of(&headers),
        BatchResponse::Single(endpoint.schema.execute(request.data(access)).await),
    )
}

/// The kind of operation `request` selects, when its document parses and names one. The parsed
/// document stays in the request, so the guard does not parse it again.
pub(super) fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let wanted_name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    document
        .operations
        .iter()
        .find(|(name, _)| match &wanted_name {
            Some(wanted) => name.is_some_and(|n| n.as_str() == wanted),
            None => true,
        })
        .map(|(_, operation)| operation.node.ty)
}

//! Building responses: bodies, the `Warning` header, `Status` errors, and the refusals that
//! belong to HTTP alone (405, 406, 415), which the registry never sees.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use registry::ApiError;
use serde_json::Value;

use super::Body;
use crate::status::{Subject, failure, status};

/// Why a request was not served: an API error (with the warnings gathered so far), or a
/// refusal of the HTTP layer.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// An error of the registry or of the request's contents.
    Api(ApiError, Vec<String>),
    /// 405: the resource does not offer the verb.
    MethodNotAllowed(String),
    /// 406: no response type the client accepts.
    NotAcceptable(String),
    /// 415: a body of a type the resource does not take.
    UnsupportedMediaType(String),
}

impl From<(ApiError, Vec<String>)> for Refusal {
    fn from((error, warnings): (ApiError, Vec<String>)) -> Refusal {
        Refusal::Api(error, warnings)
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Refusal {
        Refusal::Api(error, Vec::new())
    }
}

impl Refusal {
    /// The response.
    pub(crate) fn response(&self, subject: &Subject) -> Response<Body> {
        let (code, reason, message) = match self {
            Refusal::Api(error, warnings) => return error_response(error, subject, warnings),
            Refusal::MethodNotAllowed(m) => (405, "MethodNotAllowed", m),
            Refusal::NotAcceptable(m) => (406, "NotAcceptable", m),
            Refusal::UnsupportedMediaType(m) => (415, "UnsupportedMediaType", m),
        };
        json_response(code, &failure(code, reason, message), &[])
    }
}

/// What a handler answers.
pub(crate) type Outcome = Result<Response<Body>, Refusal>;

/// An API error as an outcome.
pub(crate) fn fail<T>(error: ApiError) -> Result<T, (ApiError, Vec<String>)> {
    Err((error, Vec::new()))
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response with a body of `content_type` and the warnings as `Warning: 299` headers.
pub(crate) fn respond(
    code: u16,
    content_type: &str,
    body: impl Into<Bytes>,
    warnings: &[String],
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    for warning in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(warning).unwrap_or_default()
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.append(header::WARNING, value);
        }
    }
    response
}

/// A JSON response.
pub(crate) fn json_response(code: u16, value: &Value, warnings: &[String]) -> Response<Body> {
    respond(
        code,
        "application/json",
        serde_json::to_vec(value).expect("JSON serializes"),
        warnings,
    )
}

/// The `Status` of an API error.
pub(crate) fn error_response(
    error: &ApiError,
    subject: &Subject,
    warnings: &[String],
) -> Response<Body> {
    let body = status(error, subject);
    let code = body["code"].as_u64().unwrap_or(500) as u16;
    json_response(code, &body, warnings)
}

/// 404 for a path the server does not serve.
pub(crate) fn not_found() -> Response<Body> {
    json_response(
        404,
        &failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
        &[],
    )
}

/// 405 for a method a path does not take.
pub(crate) fn method_not_allowed() -> Response<Body> {
    Refusal::MethodNotAllowed(
        "the server does not allow this method on the requested resource".into(),
    )
    .response(&Subject::default())
}

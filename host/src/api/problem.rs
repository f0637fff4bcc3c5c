//! RFC 9457 problem documents: every error the API returns.

use crate::runtime::routes::FieldError;
use poem::http::{HeaderValue, StatusCode, header};
use poem_openapi::{Enum, Object};

/// A problem document (`application/problem+json`). `type` is stable: clients
/// may switch on it.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Problem {
    /// A URN naming the kind of problem, for example `urn:devpulse:problem:not-found`.
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: Option<String>,
    /// Every input that was refused, for validation problems.
    pub errors: Option<Vec<InvalidInput>>,
}

/// Where a refused input was.
#[derive(Clone, Copy, Debug, Enum)]
#[oai(rename_all = "lowercase")]
pub enum InputLocation {
    Path,
    Query,
    Body,
}

/// One input a request was refused for.
#[derive(Clone, Debug, Object)]
pub struct InvalidInput {
    pub location: InputLocation,
    /// The parameter name, or a JSON pointer into the body (empty for the whole body).
    pub name: String,
    pub message: String,
}

impl From<FieldError> for InvalidInput {
    fn from(error: FieldError) -> Self {
        let location = match error.location {
            "path" => InputLocation::Path,
            "query" => InputLocation::Query,
            _ => InputLocation::Body,
        };
        InvalidInput { location, name: error.name, message: error.message }
    }
}

impl Problem {
    /// A problem of `kind` (a short slug such as `not-found`).
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:devpulse:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors.into_iter().map(InvalidInput::from).collect());
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-input", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// The document as a response with the problem media type.
    pub fn into_response(self) -> poem::Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = poem_openapi::types::ToJSON::to_json(&self).unwrap_or_default().to_string();
        poem::Response::builder().status(status).content_type("application/problem+json").body(body)
    }
}

/// `405` with the `Allow` header RFC 9110 requires.
pub fn method_not_allowed(method: &str, allowed: &[&str]) -> poem::Response {
    let allowed = allowed.join(", ");
    let mut response = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{method} is not allowed here; allowed: {allowed}"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&allowed) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// Turns any error poem or poem-openapi produced (unknown path, unparsable
/// parameter, oversized body) into a problem document.
pub fn from_poem_error(err: poem::Error) -> poem::Response {
    if err.is_from_response() {
        // Already a response of ours, for example an `ApiError`.
        return err.into_response();
    }
    let status = err.status();
    let kind = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        status if status.is_client_error() => "invalid-input",
        _ => "internal",
    };
    if status.is_server_error() {
        tracing::error!("request failed: {err}");
    }
    Problem::new(status, kind, err.to_string()).into_response()
}

//! The one place where refusals become HTTP responses: each code's status, the problem as an
//! RFC 9457 problem document (`application/problem+json`), and the headers a status calls for.
//! Handlers return [`ApiError`]; a store that cannot serve becomes a 503 with `Retry-After` here
//! and nowhere else. Responses that actix makes itself (a body it cannot read, a size limit) are
//! turned into problem documents by [`super::middleware::problems`], which also adds each one's
//! `instance` (the request id).

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::deliver::feeds::PageError;
use crate::model::{Code, Problem};
use crate::store::StoreError;

pub fn status(code: Code) -> StatusCode {
    match code {
        Code::MalformedJson | Code::BadRequest => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::SenderMismatch | Code::Forbidden => StatusCode::FORBIDDEN,
        Code::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Code::MessageIdConflict | Code::Conflict | Code::ReadOnlyConfiguration => StatusCode::CONFLICT,
        Code::CursorExpired => StatusCode::GONE,
        Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::StateSecret
        | Code::StateSecretMarking
        | Code::InvalidMarking
        | Code::MappingFailed
        | Code::UnknownMessageType
        | Code::UnknownDivision
        | Code::UnknownRegion
        | Code::SchemaViolation
        | Code::InvalidConfiguration
        | Code::FilePathRefused
        | Code::LimitExceeded => StatusCode::UNPROCESSABLE_ENTITY,
        Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Code::StoreUnavailable | Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
    }
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem as RFC 9457 has it: `type`, `title`, `status`, `detail`, `instance`, with the
/// gateway's own `code`, `message` (the same as `detail`, for clients written before), `details`
/// and, for malformed JSON, `line` and `column` as extension members.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProblemDocument)]
pub struct Document<'a> {
    /// `urn:xietong:problem:CODE`: the same for every occurrence of a code.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for people (the same as `message`).
    pub detail: &'a str,
    /// `urn:uuid:REQUEST_ID`: this occurrence (the `x-request-id` of the logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(flatten)]
    pub problem: &'a Problem,
}

impl<'a> Document<'a> {
    /// The document of `p` sent with `status`, for the request `instance` (when known).
    pub fn new(p: &'a Problem, status: StatusCode, instance: Option<String>) -> Document<'a> {
        Document {
            type_uri: p.code.type_uri(),
            title: p.code.title(),
            status: status.as_u16(),
            detail: &p.message,
            instance,
            problem: p,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The response for a refusal: its problem document, with the headers its status calls for.
/// The problem rides along in the response's extensions, for the middleware that adds the
/// request id.
pub fn problem(p: &Problem) -> HttpResponse {
    let status = status(p.code);
    let mut r = HttpResponse::build(status);
    if p.code == Code::Unauthenticated {
        r.insert_header((WWW_AUTHENTICATE, "Bearer realm=\"xietong\""));
    }
    r.insert_header((CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
    let mut response = r.body(Document::new(p, status, None).to_bytes());
    response.extensions_mut().insert(p.clone());
    response
}

/// A refusal that the client should retry after `wait` (429, 503).
pub fn retry_after(p: &Problem, wait: Duration) -> HttpResponse {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut r = problem(p);
    if let Ok(v) = secs.max(1).to_string().parse() {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

/// What a handler answers when it refuses: a problem, and when to retry.
#[derive(Debug)]
pub struct ApiError {
    pub problem: Problem,
    pub retry: Option<Duration>,
}

impl ApiError {
    /// A refusal the client should retry after `wait`.
    pub fn retry_after(problem: Problem, wait: Duration) -> ApiError {
        ApiError { problem, retry: Some(wait) }
    }

    /// The same refusal, told in other words.
    pub fn saying(mut self, message: impl Into<String>) -> ApiError {
        self.problem.message = message.into();
        self
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> ApiError {
        ApiError { problem, retry: None }
    }
}

/// The store cannot serve now: 503, retry in a second (a conflict is the caller's: 409).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(m) => Problem::new(Code::Conflict, m).into(),
            StoreError::Closed => ApiError::retry_after(
                Problem::new(Code::StoreUnavailable, "the gateway is shutting down; retry shortly"),
                Duration::from_secs(1),
            ),
            e @ StoreError::Unavailable(_) => {
                ApiError::retry_after(Problem::new(Code::StoreUnavailable, e.to_string()), Duration::from_secs(1))
            }
        }
    }
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> ApiError {
        match e {
            PageError::Expired(p) => p.into(),
            PageError::Store(e) => e.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem.code.as_str(), self.problem.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(self.problem.code)
    }

    fn error_response(&self) -> HttpResponse {
        match self.retry {
            Some(wait) => retry_after(&self.problem, wait),
            None => problem(&self.problem),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    /// Every code renders as RFC 9457 has it, the ones no healthy request reaches included
    /// (`tests/it/contract.rs` provokes the others over HTTP).
    #[test]
    fn every_code_is_a_problem_document_with_its_status() {
        for code in Code::ALL {
            let p = Problem::new(code, "why");
            let response = problem(&p);
            assert_eq!(response.status(), status(code), "{code:?}");
            assert_eq!(response.headers().get(CONTENT_TYPE).unwrap(), PROBLEM_JSON, "{code:?}");
            let body = response.into_body().try_into_bytes().unwrap();
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(doc["type"], format!("urn:xietong:problem:{}", code.as_str()));
            assert_eq!(doc["status"], status(code).as_u16());
            assert_eq!((doc["code"].as_str(), doc["detail"].as_str()), (Some(code.as_str()), Some("why")));
            assert!(!doc["title"].as_str().unwrap().is_empty());
        }
        let statuses: std::collections::BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(statuses.len(), Code::ALL.len(), "every code once");
    }
}

//! The one place where refusals become HTTP responses: each code's status, the problem as JSON,
//! and the headers a status calls for. Handlers return [`ApiError`]; a store that cannot serve
//! becomes a 503 with `Retry-After` here and nowhere else.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};

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
        Code::MessageIdConflict | Code::Conflict => StatusCode::CONFLICT,
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
        Code::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The response for a refusal: the problem as JSON, with the headers its status calls for.
pub fn problem(p: &Problem) -> HttpResponse {
    let mut r = HttpResponse::build(status(p.code));
    if p.code == Code::Unauthenticated {
        r.insert_header((WWW_AUTHENTICATE, "Bearer realm=\"xietong\""));
    }
    r.json(p)
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

//! The one place where refusal codes become HTTP statuses.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};

use crate::model::{Code, Problem};

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
        | Code::SchemaViolation
        | Code::InvalidConfiguration
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

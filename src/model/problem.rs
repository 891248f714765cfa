//! Why a request was refused: a stable machine-readable code, a sentence for people, and
//! details that name the field (a JSON pointer) and the reason. Each code has a stable problem
//! type URI (`urn:xietong:problem:CODE`, RFC 9457) and a title. The HTTP layer alone maps codes
//! to status codes.

use serde::Serialize;

/// Stable refusal codes. Clients may match on them; they never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The body is not JSON (or not UTF-8, or nested too deeply).
    MalformedJson,
    /// A parameter of the request is missing or malformed.
    BadRequest,
    /// No valid bearer token.
    Unauthenticated,
    /// The sender named in the body is not the authenticated agency.
    SenderMismatch,
    /// The caller may not do this.
    Forbidden,
    LimitExceeded,
    HeadersTooLarge,
    /// No such resource.
    NotFound,
    /// The method is not allowed on this resource.
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The Content-Type is not one the gateway accepts.
    UnsupportedMediaType,
    /// The whole message is classified as a state secret (秘密, 机密, 绝密).
    StateSecret,
    /// Free text carries a state-secret marking such as `机密★10年`.
    StateSecretMarking,
    /// A field marking is malformed or points at nothing.
    InvalidMarking,
    /// The native message cannot be mapped (a required field is missing, a value has the
    /// wrong form, an enumeration value is unknown).
    MappingFailed,
    /// The message type is not one the gateway knows.
    UnknownMessageType,
    /// A division code is not in the GB/T 2260 table.
    UnknownDivision,
    /// A region key a message names is not in regions.yaml.
    UnknownRegion,
    /// The canonical message does not satisfy its JSON Schema.
    SchemaViolation,
    /// The sender reused a message id for a different message.
    MessageIdConflict,
    /// The request conflicts with the resource's state (an id that exists, a configured
    /// subscription changed through the API).
    Conflict,
    /// The cursor is older than the feed's retention: entries after it are gone.
    CursorExpired,
    /// A request through the API names a file on the gateway's host (only the operators'
    /// configuration may).
    FilePathRefused,
    /// The configuration directory cannot be written (a Kubernetes ConfigMap): a rule change
    /// goes through the deployment's own process instead.
    ReadOnlyConfiguration,
    /// Too many requests from this agency.
    RateLimited,
    /// The store cannot commit right now; retry later.
    StoreUnavailable,
    /// A configuration to reload does not check.
    InvalidConfiguration,
    /// A bug: the gateway failed in a way it did not foresee.
    Internal,
    /// The request did not arrive in time.
    RequestTimeout,
    /// The gateway is not ready to serve (readiness).
    Unavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MalformedJson => "malformed_json",
            Code::BadRequest => "bad_request",
            Code::Unauthenticated => "unauthenticated",
            Code::SenderMismatch => "sender_mismatch",
            Code::Forbidden => "forbidden",
            Code::LimitExceeded => "limit_exceeded",
            Code::HeadersTooLarge => "headers_too_large",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::StateSecret => "state_secret",
            Code::StateSecretMarking => "state_secret_marking",
            Code::InvalidMarking => "invalid_marking",
            Code::MappingFailed => "mapping_failed",
            Code::UnknownMessageType => "unknown_message_type",
            Code::UnknownDivision => "unknown_division",
            Code::UnknownRegion => "unknown_region",
            Code::SchemaViolation => "schema_violation",
            Code::MessageIdConflict => "message_id_conflict",
            Code::Conflict => "conflict",
            Code::CursorExpired => "cursor_expired",
            Code::FilePathRefused => "file_path_refused",
            Code::ReadOnlyConfiguration => "read_only_configuration",
            Code::RateLimited => "rate_limited",
            Code::StoreUnavailable => "store_unavailable",
            Code::InvalidConfiguration => "invalid_configuration",
            Code::Internal => "internal",
            Code::RequestTimeout => "request_timeout",
            Code::Unavailable => "unavailable",
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [Code; 30] = [
        Code::MalformedJson,
        Code::BadRequest,
        Code::Unauthenticated,
        Code::SenderMismatch,
        Code::Forbidden,
        Code::LimitExceeded,
        Code::HeadersTooLarge,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::StateSecret,
        Code::StateSecretMarking,
        Code::InvalidMarking,
        Code::MappingFailed,
        Code::UnknownMessageType,
        Code::UnknownDivision,
        Code::UnknownRegion,
        Code::SchemaViolation,
        Code::MessageIdConflict,
        Code::Conflict,
        Code::CursorExpired,
        Code::FilePathRefused,
        Code::ReadOnlyConfiguration,
        Code::RateLimited,
        Code::StoreUnavailable,
        Code::InvalidConfiguration,
        Code::Internal,
        Code::RequestTimeout,
        Code::Unavailable,
    ];

    /// The problem type (RFC 9457): a URI that stays the same for this code.
    pub fn type_uri(self) -> String {
        format!("urn:xietong:problem:{}", self.as_str())
    }

    /// A short summary of the problem type, the same for every occurrence.
    pub fn title(self) -> &'static str {
        match self {
            Code::MalformedJson => "The body is not valid JSON",
            Code::BadRequest => "A parameter of the request is missing or malformed",
            Code::Unauthenticated => "No valid credentials",
            Code::SenderMismatch => "The message names another sender than the credentials",
            Code::Forbidden => "The caller may not do this",
            Code::LimitExceeded => "The message exceeds a shape limit",
            Code::HeadersTooLarge => "The request's headers are too large",
            Code::NotFound => "No such resource",
            Code::MethodNotAllowed => "The method is not allowed on this resource",
            Code::PayloadTooLarge => "The body is larger than the limit",
            Code::UnsupportedMediaType => "The Content-Type is not accepted",
            Code::StateSecret => "The message is classified as a state secret",
            Code::StateSecretMarking => "Free text carries a state-secret marking",
            Code::InvalidMarking => "A field marking is invalid",
            Code::MappingFailed => "The message does not fit its source format",
            Code::UnknownMessageType => "Unknown message type",
            Code::UnknownDivision => "Unknown division",
            Code::UnknownRegion => "Unknown region",
            Code::SchemaViolation => "The message does not satisfy its schema",
            Code::MessageIdConflict => "The message id was used for another message",
            Code::Conflict => "The request conflicts with the resource's state",
            Code::CursorExpired => "The cursor is older than the feed's retention",
            Code::FilePathRefused => "Files on the gateway's host cannot be named through the API",
            Code::ReadOnlyConfiguration => "The configuration directory cannot be written",
            Code::RateLimited => "Too many requests",
            Code::StoreUnavailable => "The store cannot serve now",
            Code::InvalidConfiguration => "The configuration does not check",
            Code::Internal => "Internal error",
            Code::RequestTimeout => "The request took too long to arrive",
            Code::Unavailable => "The gateway is not ready",
        }
    }
}

/// One precise reason: which field (a JSON pointer; into the native message unless it starts
/// with `/data`) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Detail {
    pub pointer: String,
    pub reason: String,
}

impl Detail {
    pub fn new(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        Detail { pointer: pointer.into(), reason: reason.into() }
    }
}

/// A refusal, serialised as the body of every 4xx/5xx response and as `error` in `explain`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
    /// For malformed JSON: where the parser stopped (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Problem {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Problem { code, message: message.into(), details: Vec::new(), line: None, column: None }
    }

    pub fn with_details(mut self, details: Vec<Detail>) -> Self {
        self.details = details;
        self
    }

    /// A refusal for a body that is not valid JSON, with the parser's position.
    pub fn malformed_json(err: &serde_json::Error) -> Self {
        let what = match err.classify() {
            serde_json::error::Category::Eof => "the body ends before the JSON value is complete",
            serde_json::error::Category::Syntax => "the body is not valid JSON",
            serde_json::error::Category::Data => "the body is not a JSON object",
            serde_json::error::Category::Io => "the body could not be read",
        };
        let mut p = Problem::new(Code::MalformedJson, format!("{what} (line {}, column {})", err.line(), err.column()));
        p.details = vec![Detail::new("", err.to_string())];
        p.line = Some(err.line());
        p.column = Some(err.column());
        p
    }

    /// The pointers named in the details, for audit records (never values).
    pub fn pointers(&self) -> String {
        self.details.iter().map(|d| d.pointer.as_str()).collect::<Vec<_>>().join(" ")
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        for d in &self.details {
            write!(f, "\n  {}: {}", if d.pointer.is_empty() { "(root)" } else { &d.pointer }, d.reason)?;
        }
        Ok(())
    }
}

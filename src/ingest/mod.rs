//! HTTP ingest: `POST /v1/messages`. Authenticates the caller (bearer token → agency),
//! enforces its rate limit, the media type and the body limit, runs the pipeline, and commits
//! before answering `202 Accepted`.

pub mod auth;
pub mod body;
pub mod limit;
pub mod messages;
pub mod response;

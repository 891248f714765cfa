//! What a request carries: its body (the media type decides how it is read; the size is bounded
//! before anything is buffered beyond the limit) and its query string.

use actix_web::HttpRequest;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::{self, BytesMut, Payload};
use futures_util::StreamExt;

use crate::model::BodyKind;
use crate::model::{Code, Problem};

const ACCEPTED: &str =
    "application/json (the agency's native format) or application/cloudevents+json (a canonical event)";

/// The kind of body the Content-Type announces.
pub fn kind(req: &HttpRequest) -> Result<BodyKind, Problem> {
    let unsupported = |what: String| Problem::new(Code::UnsupportedMediaType, format!("{what}; send {ACCEPTED}"));
    let value = req
        .headers()
        .get(CONTENT_TYPE)
        .ok_or_else(|| unsupported("the request has no Content-Type".into()))?
        .to_str()
        .map_err(|_| unsupported("the Content-Type is not readable".into()))?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    for param in parts {
        if let Some((name, val)) = param.split_once('=') {
            let val = val.trim().trim_matches('"');
            if name.trim().eq_ignore_ascii_case("charset") && !val.eq_ignore_ascii_case("utf-8") {
                return Err(unsupported(format!("charset {val} is not supported: bodies are UTF-8")));
            }
        }
    }
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Native),
        "application/cloudevents+json" => Ok(BodyKind::CloudEvent),
        "application/cloudevents-batch+json" => {
            Err(unsupported("batches are not accepted: post one event per request".into()))
        }
        other => Err(unsupported(format!("Content-Type {other} is not accepted"))),
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(Code::PayloadTooLarge, format!("the body is larger than the limit of {limit} bytes"))
}

/// Reads the whole body, refusing it as soon as it exceeds `limit` bytes.
pub async fn read(req: &HttpRequest, mut payload: Payload, limit: usize) -> Result<BytesMut, Problem> {
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| Problem::new(Code::MalformedJson, format!("the body could not be read completely: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The query string as `T`; a 400 naming what does not fit.
pub fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, Problem> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| Problem::new(Code::BadRequest, format!("query: {e}")))
}

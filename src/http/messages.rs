//! `POST /v1/messages`: authenticates the sender, enforces its rate limit, the media type and
//! the body limit, runs the pipeline, and commits before answering `202 Accepted`.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tracing_actix_web::RequestId;

use super::error::ApiError;
use super::{auth, request};
use crate::gateway::Gateway;
use crate::model::{Code, Problem, Sender};
use crate::pipeline;
use crate::store::{Accepted, Refusal, StoreError};

pub async fn post(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    request_id: RequestId,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let mut response = handle(&gw, &req, payload).await.unwrap_or_else(|e| {
        gw.metrics.count("refused", e.problem.code.as_str());
        actix_web::ResponseError::error_response(&e)
    });
    gw.metrics.ingest_seconds.observe(started.elapsed().as_secs_f64());
    if let Ok(v) = request_id.to_string().parse() {
        response.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), v);
    }
    response
}

async fn handle(gw: &Gateway, req: &HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    // One configuration snapshot for the whole request, whatever reloads meanwhile.
    let rt = gw.runtime();
    let config = &rt.config;
    let before_reading = |p: Problem| {
        tracing::info!(code = p.code.as_str(), "refused before reading the message");
        ApiError::from(p)
    };
    let (sender, limit) = auth::sender(&config.agencies, req).map_err(before_reading)?;
    if let Err(wait) = rt.limits.check(&sender) {
        let p = Problem::new(
            Code::RateLimited,
            format!("{sender} sends faster than its limit of {} messages per second", limit.per_second),
        );
        return Err(ApiError::retry_after(p, wait));
    }
    let kind = request::kind(req).map_err(before_reading)?;
    let body = request::read(req, payload, config.settings.limits.max_body_bytes).await.map_err(before_reading)?;
    let format = config.mapping_for(&sender, kind).ok_or_else(|| {
        let why = match &sender {
            Sender::Agency(_) => "has no native format configured",
            Sender::Hub(_) => "is a regional hub, and hubs have no native format",
        };
        before_reading(Problem::new(
            Code::UnsupportedMediaType,
            format!("{sender} {why}: post canonical events as application/cloudevents+json"),
        ))
    })?;
    let body_sha256 = pipeline::body_sha256(&body);

    let unit = match pipeline::run(
        config,
        format,
        &sender,
        &body,
        Some(pipeline::Records { store: gw.store.as_ref(), now_ms: gw.clock.now_ms() }),
    )
    .await
    {
        Ok(unit) => unit,
        Err(p) => {
            // Only metadata is recorded: the hash of the body, never its content.
            tracing::info!(sender = %sender, code = p.code.as_str(), fields = %p.pointers(), body_sha256 = %body_sha256, "refused");
            let audit =
                Refusal { sender: Some(sender.clone()), body_sha256, code: p.code.as_str(), pointers: p.pointers() };
            if let Err(e) = gw.store.record_refusal(audit).await {
                tracing::warn!(error = %e, "could not record the refusal in the audit log");
            }
            return Err(p.into());
        }
    };
    let message = unit.message(&sender.to_string(), body_sha256, gw.clock.now_ms());
    let accepted = gw.store.accept(message).await.map_err(|e| {
        tracing::error!(error = %e, sender = %sender, "the store could not commit; answered 503");
        let closed = matches!(e, StoreError::Closed);
        let refusal = ApiError::from(e);
        if closed {
            refusal
        } else {
            refusal.saying("the message could not be committed; nothing was stored, retry shortly")
        }
    })?;
    match accepted {
        Accepted::Created(receipt) => {
            gw.metrics.count("accepted", "ok");
            let routing = &unit.addressed.routing;
            if routing.unrouted {
                gw.metrics.unrouted.inc();
            }
            let recipients: Vec<String> = receipt.recipients.iter().map(|r| r.id.clone()).collect();
            tracing::info!(
                id = %receipt.id, sender = %sender, r#type = %receipt.message_type, stripped = receipt.stripped.len(),
                recipients = %recipients.join(" "), rules = %routing.rules.join(" "), unrouted = routing.unrouted,
                "accepted"
            );
            Ok(HttpResponse::Accepted().json(&receipt))
        }
        Accepted::Duplicate(receipt) => {
            gw.metrics.count("duplicate", "ok");
            tracing::info!(id = %receipt.id, sender = %sender, "duplicate: answered with the first receipt");
            Ok(HttpResponse::build(StatusCode::OK).insert_header(("Idempotent-Replayed", "true")).json(&receipt))
        }
        Accepted::Conflict(receipt) => Err(Problem::new(
            Code::MessageIdConflict,
            format!(
                "{} already sent a different message with id {} (accepted as {}); a new message needs a new id",
                sender, unit.normalized.native_id, receipt.id
            ),
        )
        .into()),
    }
}

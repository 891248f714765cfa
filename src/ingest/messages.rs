//! `POST /v1/messages`.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tracing_actix_web::RequestId;

use super::{auth, body, response};
use crate::model::{Code, Problem};
use crate::server::Gateway;
use crate::store::{Accepted, NewMessage, Refusal, StoreError};
use crate::{explain, pipeline};

pub async fn post(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    request_id: RequestId,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let mut response = handle(&gw, &req, payload).await;
    gw.metrics.ingest_seconds.observe(started.elapsed().as_secs_f64());
    if let Ok(v) = request_id.to_string().parse() {
        response.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), v);
    }
    response
}

async fn handle(gw: &Gateway, req: &HttpRequest, payload: web::Payload) -> HttpResponse {
    // One configuration snapshot for the whole request, whatever reloads meanwhile.
    let rt = gw.runtime();
    let config = &rt.config;
    let refuse = |p: Problem| {
        gw.metrics.count("refused", p.code.as_str());
        tracing::info!(code = p.code.as_str(), "refused before reading the message");
        response::problem(&p)
    };
    let agency = match auth::authenticate(&config.agencies, req) {
        Ok(a) => a,
        Err(p) => return refuse(p),
    };
    if let Err(wait) = rt.limits.check(&agency.id) {
        gw.metrics.count("refused", Code::RateLimited.as_str());
        let p = Problem::new(
            Code::RateLimited,
            format!(
                "{} sends faster than its limit of {} messages per second",
                agency.id, agency.rate_limit.per_second
            ),
        );
        return response::retry_after(&p, wait);
    }
    let kind = match body::kind(req) {
        Ok(k) => k,
        Err(p) => return refuse(p),
    };
    let body = match body::read(req, payload, config.settings.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(p) => return refuse(p),
    };
    let Some(format) = config.mapping_for(&agency.id, kind) else {
        return refuse(Problem::new(
            Code::UnsupportedMediaType,
            format!(
                "{} has no native format configured: post canonical events as application/cloudevents+json",
                agency.id
            ),
        ));
    };
    let body_sha256 = pipeline::body_sha256(&body);

    let accepted = explain::normalize_and_address(config, format, &agency.id, &body, Some(gw.store.as_ref())).await;
    let (normalized, addressed) = match accepted {
        Ok(pair) => pair,
        Err(p) => {
            // Only metadata is recorded: the hash of the body, never its content.
            tracing::info!(sender = %agency.id, code = p.code.as_str(), fields = %p.pointers(), body_sha256 = %body_sha256, "refused");
            gw.metrics.count("refused", p.code.as_str());
            let audit = Refusal { sender: Some(agency.id), body_sha256, code: p.code.as_str(), pointers: p.pointers() };
            if let Err(e) = gw.store.record_refusal(audit).await {
                tracing::warn!(error = %e, "could not record the refusal in the audit log");
            }
            return response::problem(&p);
        }
    };
    let deliveries = pipeline::outbox(&addressed.deliveries, &normalized.event);

    let message = NewMessage {
        id: normalized.id.clone(),
        sender: agency.id.to_string(),
        native_id: normalized.native_id.clone(),
        message_type: normalized.message_type.name,
        subject: normalized.subject.clone(),
        content_sha256: normalized.content_sha256.clone(),
        body_sha256,
        stripped: normalized.stripped.clone(),
        event: normalized.event.to_string(),
        deliveries,
        received_ms: gw.clock.now_ms(),
        in_reply_to: normalized.in_reply_to.clone(),
    };
    match gw.store.accept(message).await {
        Ok(Accepted::Created(receipt)) => {
            gw.metrics.count("accepted", "ok");
            if addressed.routing.unrouted {
                gw.metrics.unrouted.inc();
            }
            let recipients: Vec<String> = receipt.recipients.iter().map(|r| r.id.clone()).collect();
            tracing::info!(
                id = %receipt.id, sender = %agency.id, r#type = %receipt.message_type, stripped = receipt.stripped.len(),
                recipients = %recipients.join(" "), rules = %addressed.routing.rules.join(" "), unrouted = addressed.routing.unrouted,
                "accepted"
            );
            HttpResponse::Accepted().json(&receipt)
        }
        Ok(Accepted::Duplicate(receipt)) => {
            gw.metrics.count("duplicate", "ok");
            tracing::info!(id = %receipt.id, sender = %agency.id, "duplicate: answered with the first receipt");
            HttpResponse::build(StatusCode::OK).insert_header(("Idempotent-Replayed", "true")).json(&receipt)
        }
        Ok(Accepted::Conflict(receipt)) => {
            gw.metrics.count("refused", Code::MessageIdConflict.as_str());
            let p = Problem::new(
                Code::MessageIdConflict,
                format!(
                    "{} already sent a different message with id {} (accepted as {}); a new message needs a new id",
                    agency.id, normalized.native_id, receipt.id
                ),
            );
            response::problem(&p)
        }
        Err(e) => {
            gw.metrics.count("refused", Code::StoreUnavailable.as_str());
            tracing::error!(error = %e, sender = %agency.id, "the store could not commit; answered 503");
            let message = match e {
                StoreError::Closed => "the gateway is shutting down; retry shortly".to_string(),
                StoreError::Unavailable(_) | StoreError::Conflict(_) => {
                    "the message could not be committed; nothing was stored, retry shortly".to_string()
                }
            };
            response::retry_after(&Problem::new(Code::StoreUnavailable, message), Duration::from_secs(1))
        }
    }
}

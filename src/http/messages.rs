//! `POST /v1/messages`: authenticates the sender, enforces its rate limit, the media type and
//! the body limit, runs the pipeline, and commits before answering `202 Accepted`. With
//! `?dry_run=true` it runs the same pipeline and answers what would happen, storing and
//! delivering nothing (the attempt is audited as a dry run).

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing_actix_web::RequestId;

use super::error::ApiError;
use super::{auth, request};
use crate::audit::Entry;
use crate::gateway::Gateway;
use crate::model::{Code, Problem, Sender};
use crate::pipeline::{self, explain};
use crate::store::{Accepted, Receipt, Refusal, StoreError};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostQuery {
    /// Run the whole pipeline and answer what would happen; nothing is stored or delivered.
    #[serde(default)]
    dry_run: bool,
}

/// Post a message
///
/// In the sender's native format (`application/json`, the format agencies.yaml gives it) or as
/// a canonical CloudEvent (`application/cloudevents+json`; hubs post these only). `202` means
/// the message is committed: a crash from then on loses nothing, and every recipient gets it.
/// The same message again (same sender, same id, same content) is answered `200` with the first
/// receipt (`Idempotent-Replayed: true`). With `dry_run=true`: `200` with what would happen (the
/// canonical message, what would be stripped, the recipients and the rules that chose them, or
/// the refusal it would get); nothing is stored, delivered or counted.
#[utoipa::path(post, path = "/v1/messages", operation_id = "post_message", tag = "messages",
    params(PostQuery),
    security(("bearer" = []), ("mutualTLS" = [])),
    request_body(description = "The message", content(
        (Object = "application/json"),
        (Object = "application/cloudevents+json"),
    )),
    responses(
        (status = 202, description = "Accepted and committed", body = Receipt),
        (status = 200, description = "A resend of a message already accepted: the first receipt (Receipt); or, for a dry run, what would happen (Outcome)", content(
            (Receipt = "application/json"),
            (explain::Outcome = "application/json"),
        )),
        (status = 400, description = "The body is not JSON, or a query parameter is wrong"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "The sender may not send this type, or the message names another sender"),
        (status = 409, description = "The message id was already used for a different message"),
        (status = 413, description = "The body is larger than the limit"),
        (status = 415, description = "Not application/json or application/cloudevents+json, or no native format for this sender"),
        (status = 422, description = "Refused: a state secret, a mapping or schema problem, an unknown division (details name each field)"),
        (status = 429, description = "Above the sender's rate limit (Retry-After)"),
        (status = 503, description = "The store cannot commit now, or did not confirm the commit durable: not accepted; resending the same message is safe (Retry-After)"),
    ))]
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
    let records = pipeline::Records { store: gw.store.as_ref(), now_ms: gw.clock.now_ms() };
    if request::query::<PostQuery>(req).map_err(before_reading)?.dry_run {
        let run = pipeline::run(config, format, &sender, &body, Some(records)).await;
        let outcome = explain::outcome(format.name.clone(), run);
        let code = outcome.error.as_ref().map_or("accepted", |p| p.code.as_str());
        tracing::info!(sender = %sender, code, "dry run");
        let entry =
            Entry { body_sha256: Some(body_sha256), ..Entry::new("dry_run").actor(sender.to_string()).code(code) };
        if let Err(e) = gw.store.audit(entry).await {
            tracing::warn!(error = %e, "could not record the dry run in the audit log");
        }
        return Ok(HttpResponse::Ok().json(outcome));
    }

    let unit = match pipeline::run(config, format, &sender, &body, Some(records)).await {
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
            refusal.saying("the message is not accepted: its commit was not confirmed durable; retry shortly (resending the same message is safe)")
        }
    })?;
    match accepted {
        Accepted::Created(receipt) => {
            gw.metrics.count("accepted", "ok");
            let routing = &unit.addressed.routing;
            if routing.unrouted {
                gw.metrics.unrouted.inc();
            }
            if !routing.failures.is_empty() {
                gw.rule_failures(&rt, &receipt.id, &routing.failures).await;
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

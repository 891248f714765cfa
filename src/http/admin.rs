//! The operators' endpoints, all behind an operator's token: `POST /v1/admin/explain?as=AGENCY_ID`
//! (the whole pipeline on a message, nothing stored), `POST /v1/admin/reload`,
//! `GET /v1/admin/dead-letters` and `POST /v1/admin/dead-letters/{id}/replay`. Messages are in
//! `inspect`, the threads and statistics in `threads`, the overview in `overview`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::error::ApiError;
use super::{auth, request};
use crate::gateway::{Gateway, ReloadError};
use crate::model::{Code, Detail, Problem, Sender};
use crate::pipeline::{Records, explain};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// The sender: an agency `KIND:DIVISION` or a hub `hub:REGION`.
    #[serde(rename = "as")]
    #[param(rename = "as")]
    sender: String,
}

/// What a reload changed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReloadAnswer {
    /// Always true: a configuration that does not check is refused (422).
    reloaded: bool,
    summary: crate::gateway::Reloaded,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DeadLetters {
    dead_letters: Vec<crate::store::DeadLetter>,
}

/// A dead letter sent again.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Replayed {
    id: i64,
    /// `pending`: it goes out again from now on, with the same webhook id.
    state: &'static str,
}

/// Explain a message as a sender would post it
///
/// The whole pipeline, nothing stored or delivered: the canonical message, what is stripped, the
/// rules and recipients, or the refusal.
#[utoipa::path(post, path = "/v1/admin/explain", operation_id = "explain", tag = "admin", security(("bearer" = [])), params(ExplainQuery),
    request_body(description = "The message, as the sender would post it", content(
        (Object = "application/json"), (Object = "application/cloudevents+json"))),
    responses(
        (status = 200, description = "What would happen", body = explain::Outcome),
        (status = 400, description = "No sender, or no format for it"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn explain(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let operator = auth::calling_operator(&gw, &req)?;
    let rt = gw.runtime();
    let config = &rt.config;
    let query = web::Query::<ExplainQuery>::from_query(req.query_string())
        .map_err(|_| Problem::new(Code::BadRequest, "give the sender: /v1/admin/explain?as=KIND:DIVISION"))?
        .into_inner();
    let sender: Sender = query.sender.parse().map_err(|e: String| {
        Problem::new(Code::BadRequest, e).with_details(vec![Detail::new("", "query parameter `as`")])
    })?;
    let kind = request::kind(&req)?;
    let body = request::read(&req, payload, config.settings.limits.max_body_bytes).await?;
    tracing::info!(operator = %operator, sender = %sender, "explain");
    match explain::explain(
        config,
        &sender,
        kind,
        &body,
        Some(Records { store: gw.store.as_ref(), now_ms: gw.clock.now_ms() }),
    )
    .await
    {
        Ok(e) => Ok(HttpResponse::Ok().json(e)),
        Err(usage) => Err(Problem::new(Code::BadRequest, usage).into()),
    }
}

/// Reload the configuration
///
/// A configuration that does not check is refused, one detail per problem, and the one in force
/// keeps serving.
#[utoipa::path(post, path = "/v1/admin/reload", operation_id = "reload", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded", body = ReloadAnswer),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token, or a viewer's"),
        (status = 422, description = "The configuration does not check"),
    ))]
pub async fn reload(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let operator = auth::acting(&gw, &req)?;
    tracing::info!(operator = %operator, "reload requested");
    match gw.reload(&format!("operator:{operator}")).await {
        Ok(summary) => Ok(HttpResponse::Ok().json(ReloadAnswer { reloaded: true, summary })),
        Err(ReloadError::Invalid(errors)) => {
            let details = errors.0.iter().map(|e| Detail::new("", e.to_string())).collect();
            Err(Problem::new(
                Code::InvalidConfiguration,
                format!("the configuration has {} problem(s); the current one keeps serving", errors.0.len()),
            )
            .with_details(details)
            .into())
        }
        Err(ReloadError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this subscription's.
    subscription: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<usize>,
}

/// Dead letters
///
/// Webhook deliveries that used up their retries.
#[utoipa::path(get, path = "/v1/admin/dead-letters", operation_id = "dead_letters", tag = "admin", security(("bearer" = [])), params(DeadLetterQuery),
    responses(
        (status = 200, description = "The dead letters", body = DeadLetters),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn dead_letters(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let q = web::Query::<DeadLetterQuery>::from_query(req.query_string()).map(|q| q.into_inner()).ok();
    let (subscription, limit) = q.map_or((None, 100), |q| (q.subscription, q.limit.unwrap_or(100).clamp(1, 1000)));
    let list = gw.store.dead_letters(subscription, limit).await?;
    Ok(HttpResponse::Ok().json(DeadLetters { dead_letters: list }))
}

/// Sends a dead letter again from now on, with the same webhook id.
/// Send a dead letter again
#[utoipa::path(post, path = "/v1/admin/dead-letters/{id}/replay", operation_id = "replay_dead_letter", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The dead letter's id")),
    responses(
        (status = 200, description = "Pending again", body = Replayed),
        (status = 400, description = "Not a dead letter's id"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
        (status = 404, description = "No such dead letter"),
    ))]
pub async fn replay(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let operator = auth::acting(&gw, &req)?;
    let attempt = id.parse::<i64>().map_err(|_| Problem::new(Code::BadRequest, "a dead letter's id is a number"))?;
    if gw.store.replay(attempt, &format!("operator:{operator}")).await? {
        tracing::info!(operator = %operator, attempt, "dead letter replayed");
        Ok(HttpResponse::Ok().json(Replayed { id: attempt, state: "pending" }))
    } else {
        Err(Problem::new(Code::NotFound, format!("no dead letter {attempt}")).into())
    }
}

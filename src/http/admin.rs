//! The operators' endpoints, all behind an operator's token: `POST /v1/admin/explain?as=AGENCY_ID`
//! (the whole pipeline on a message, nothing stored), `POST /v1/admin/reload`,
//! `GET /v1/admin/messages/{id}` (where a message went), `GET /v1/admin/dead-letters` and
//! `POST /v1/admin/dead-letters/{id}/replay`. The threads and statistics are in `threads`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{auth, request};
use crate::gateway::{Gateway, ReloadError};
use crate::model::{Code, Detail, Problem, Sender};
use crate::pipeline::{Records, explain};

/// The operator calling.
fn operator(gw: &Gateway, req: &HttpRequest) -> Result<String, Problem> {
    let rt = gw.runtime();
    auth::operator(&rt.config.operators, &rt.config.agencies, req).map(str::to_string)
}

#[derive(Deserialize)]
pub struct ExplainQuery {
    #[serde(rename = "as")]
    sender: String,
}

pub async fn explain(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let operator = operator(&gw, &req)?;
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
        Ok(e) => Ok(HttpResponse::Ok().json(e.output)),
        Err(usage) => Err(Problem::new(Code::BadRequest, usage).into()),
    }
}

pub async fn reload(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let operator = operator(&gw, &req)?;
    tracing::info!(operator = %operator, "reload requested");
    match gw.reload(&format!("operator:{operator}")).await {
        Ok(r) => Ok(HttpResponse::Ok().json(json!({"reloaded": true, "summary": r}))),
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

/// Where a message went: each recipient, each webhook attempt with its state and times.
pub async fn trace(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    operator(&gw, &req)?;
    match gw.store.trace(&id).await? {
        Some(t) => Ok(HttpResponse::Ok().json(t)),
        None => Err(Problem::new(Code::NotFound, format!("no message `{id}`")).into()),
    }
}

#[derive(Deserialize)]
pub struct DeadLetterQuery {
    subscription: Option<String>,
    limit: Option<usize>,
}

pub async fn dead_letters(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    operator(&gw, &req)?;
    let q = web::Query::<DeadLetterQuery>::from_query(req.query_string()).map(|q| q.into_inner()).ok();
    let (subscription, limit) = q.map_or((None, 100), |q| (q.subscription, q.limit.unwrap_or(100).clamp(1, 1000)));
    let list = gw.store.dead_letters(subscription, limit).await?;
    Ok(HttpResponse::Ok().json(json!({"dead_letters": list})))
}

/// Sends a dead letter again from now on, with the same webhook id.
pub async fn replay(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let operator = operator(&gw, &req)?;
    let attempt = id.parse::<i64>().map_err(|_| Problem::new(Code::BadRequest, "a dead letter's id is a number"))?;
    if gw.store.replay(attempt, &format!("operator:{operator}")).await? {
        tracing::info!(operator = %operator, attempt, "dead letter replayed");
        Ok(HttpResponse::Ok().json(json!({"id": attempt, "state": "pending"})))
    } else {
        Err(Problem::new(Code::NotFound, format!("no dead letter {attempt}")).into())
    }
}

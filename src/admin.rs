//! The operators' endpoints, all behind an operator's token: `POST /v1/admin/explain?as=AGENCY_ID`
//! (the whole pipeline on a message, nothing stored), `POST /v1/admin/reload`,
//! `GET /v1/admin/messages/{id}` (where a message went), `GET /v1/admin/dead-letters` and
//! `POST /v1/admin/dead-letters/{id}/replay`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::explain;
use crate::ingest::{auth, body, response};
use crate::model::{AgencyId, Code, Detail, Problem};
use crate::server::{Gateway, ReloadError};
use crate::store::StoreError;

#[derive(Deserialize)]
pub struct ExplainQuery {
    #[serde(rename = "as")]
    sender: String,
}

pub async fn explain(gw: web::Data<Gateway>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let rt = gw.runtime();
    let config = &rt.config;
    let operator = match auth::operator(&config.operators, &config.agencies, &req) {
        Ok(name) => name.to_string(),
        Err(p) => return response::problem(&p),
    };
    let query = match web::Query::<ExplainQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(_) => {
            return response::problem(&Problem::new(
                Code::BadRequest,
                "give the sender: /v1/admin/explain?as=KIND:DIVISION",
            ));
        }
    };
    let sender: AgencyId = match query.sender.parse() {
        Ok(s) => s,
        Err(e) => {
            return response::problem(
                &Problem::new(Code::BadRequest, e).with_details(vec![Detail::new("", "query parameter `as`")]),
            );
        }
    };
    let kind = match body::kind(&req) {
        Ok(k) => k,
        Err(p) => return response::problem(&p),
    };
    let body = match body::read(&req, payload, config.settings.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(p) => return response::problem(&p),
    };
    tracing::info!(operator = %operator, sender = %sender, "explain");
    match explain::explain(config, &sender, kind, &body, Some(gw.store.as_ref())).await {
        Ok(e) => HttpResponse::Ok().json(e.output),
        Err(usage) => response::problem(&Problem::new(Code::BadRequest, usage)),
    }
}

pub async fn reload(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let operator = match operator(&gw, &req) {
        Ok(name) => name,
        Err(p) => return response::problem(&p),
    };
    tracing::info!(operator = %operator, "reload requested");
    match gw.reload(&format!("operator:{operator}")).await {
        Ok(r) => HttpResponse::Ok().json(json!({"reloaded": true, "summary": r})),
        Err(ReloadError::Invalid(errors)) => {
            let details = errors.0.iter().map(|e| Detail::new("", e.to_string())).collect();
            response::problem(
                &Problem::new(
                    Code::InvalidConfiguration,
                    format!("the configuration has {} problem(s); the current one keeps serving", errors.0.len()),
                )
                .with_details(details),
            )
        }
        Err(ReloadError::Store(e)) => {
            response::retry_after(&Problem::new(Code::StoreUnavailable, e.to_string()), Duration::from_secs(1))
        }
    }
}

/// The operator calling.
fn operator(gw: &Gateway, req: &HttpRequest) -> Result<String, Problem> {
    let rt = gw.runtime();
    auth::operator(&rt.config.operators, &rt.config.agencies, req).map(str::to_string)
}

fn unavailable(e: StoreError) -> HttpResponse {
    response::retry_after(&Problem::new(Code::StoreUnavailable, e.to_string()), Duration::from_secs(1))
}

/// Where a message went: each recipient, each webhook attempt with its state and times.
pub async fn trace(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if let Err(p) = operator(&gw, &req) {
        return response::problem(&p);
    }
    match gw.store.trace(&id).await {
        Ok(Some(t)) => HttpResponse::Ok().json(t),
        Ok(None) => response::problem(&Problem::new(Code::NotFound, format!("no message `{id}`"))),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
pub struct DeadLetterQuery {
    subscription: Option<String>,
    limit: Option<usize>,
}

pub async fn dead_letters(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    if let Err(p) = operator(&gw, &req) {
        return response::problem(&p);
    }
    let q = web::Query::<DeadLetterQuery>::from_query(req.query_string()).map(|q| q.into_inner()).ok();
    let (subscription, limit) = q.map_or((None, 100), |q| (q.subscription, q.limit.unwrap_or(100).clamp(1, 1000)));
    match gw.store.dead_letters(subscription, limit).await {
        Ok(list) => HttpResponse::Ok().json(json!({"dead_letters": list})),
        Err(e) => unavailable(e),
    }
}

/// Sends a dead letter again from now on, with the same webhook id.
pub async fn replay(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let operator = match operator(&gw, &req) {
        Ok(o) => o,
        Err(p) => return response::problem(&p),
    };
    let Ok(attempt) = id.parse::<i64>() else {
        return response::problem(&Problem::new(Code::BadRequest, "a dead letter's id is a number"));
    };
    match gw.store.replay(attempt, &format!("operator:{operator}")).await {
        Ok(true) => {
            tracing::info!(operator = %operator, attempt, "dead letter replayed");
            HttpResponse::Ok().json(json!({"id": attempt, "state": "pending"}))
        }
        Ok(false) => response::problem(&Problem::new(Code::NotFound, format!("no dead letter {attempt}"))),
        Err(e) => unavailable(e),
    }
}

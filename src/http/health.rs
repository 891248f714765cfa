//! `GET /healthz` (the process answers), `GET /readyz` (the store can commit now),
//! `GET /metrics` (Prometheus text format), and the answers for unknown routes and methods.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::error;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the store can commit now.
pub async fn readyz(gw: web::Data<Gateway>) -> HttpResponse {
    match tokio::time::timeout(Duration::from_secs(2), gw.store.ready()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(Err(e)) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable", "reason": e.to_string()}))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "reason": "the store did not answer within 2 s"})),
    }
}

pub async fn metrics(gw: web::Data<Gateway>) -> HttpResponse {
    HttpResponse::build(StatusCode::OK)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(gw.metrics.render())
}

pub async fn not_found() -> HttpResponse {
    error::problem(&Problem::new(Code::NotFound, "no such resource; messages are posted to /v1/messages"))
}

pub async fn method_not_allowed() -> HttpResponse {
    let mut r = error::problem(&Problem::new(Code::MethodNotAllowed, "this resource accepts POST only"));
    r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
    r
}

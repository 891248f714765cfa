//! `GET /healthz` (the process answers), `GET /readyz` (the store can commit now),
//! `GET /metrics` (Prometheus text format), and the answers for unknown routes and methods.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{HttpResponse, web};

use super::connections::Counts;
use super::error;
use crate::gateway::Gateway;
use crate::model::{Code, Problem};

/// `{"status": …}` of a health check.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (healthz) or `ready` (readyz).
    pub status: &'static str,
}

/// The process answers
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The store can commit now
///
/// Otherwise a 503 problem (`unavailable`) that says why.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", responses(
    (status = 200, description = "Ready", body = Status),
    (status = 503, description = "Not ready: the store cannot commit now"),
))]
pub async fn readyz(gw: web::Data<Gateway>) -> HttpResponse {
    let why = match tokio::time::timeout(Duration::from_secs(2), gw.store.ready()).await {
        Ok(Ok(())) => return HttpResponse::Ok().json(Status { status: "ready" }),
        Ok(Err(e)) => format!("the store cannot commit: {e}"),
        Err(_) => "the store did not answer within 2 s".to_string(),
    };
    error::problem(&Problem::new(Code::Unavailable, why))
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", responses(
    (status = 200, description = "The Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4"),
))]
pub async fn metrics(gw: web::Data<Gateway>, counts: web::Data<Counts>) -> HttpResponse {
    let gauges = &gw.metrics.http;
    gauges.requests_in_flight.set(i64::try_from(counts.in_flight.total()).unwrap_or(i64::MAX));
    gauges.connections_open.set(i64::try_from(counts.connections.total()).unwrap_or(i64::MAX));
    HttpResponse::build(StatusCode::OK)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(gw.metrics.render())
}

pub async fn not_found() -> HttpResponse {
    error::problem(&Problem::new(Code::NotFound, "no such resource; messages are posted to /v1/messages"))
}

/// The answer for a known path with a method it does not take; `allowed` in lower case, as the
/// route table writes them.
pub async fn method_not_allowed(allowed: &'static [&'static str]) -> HttpResponse {
    let allow: Vec<String> = allowed.iter().map(|m| m.to_ascii_uppercase()).collect();
    let allow = allow.join(", ");
    let mut r = error::problem(&Problem::new(Code::MethodNotAllowed, format!("this resource takes {allow} only")));
    if let Ok(v) = HeaderValue::from_str(&allow) {
        r.headers_mut().insert(ALLOW, v);
    }
    r
}

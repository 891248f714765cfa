//! The audit page: the chain's head, a verify button with its report, the latest records with
//! filters, the signed checkpoints. The same functions as `/v1/admin/audit` and
//! `/v1/admin/audit/verify`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::Form;
use super::guard;
use super::page::{self, Page, html};
use crate::gateway::Gateway;
use crate::http::audit::{self, AuditQuery, AuditView, Verified};

const SECTION: &str = "/console/audit";

#[derive(Template)]
#[template(path = "audit.html", config = "src/http/console/askama.toml")]
struct AuditPage {
    page: Page,
    view: AuditView,
    action: String,
    actor: String,
    verified: Option<Verified>,
}

async fn render(
    gw: &Gateway,
    req: &HttpRequest,
    page: Page,
    q: AuditQuery,
    verified: Option<Verified>,
) -> HttpResponse {
    let view = match audit::latest(gw, &q).await {
        Ok(v) => v,
        Err(e) => return page::unavailable(req, &e.problem.message),
    };
    let (action, actor) = (q.action.unwrap_or_default(), q.actor.unwrap_or_default());
    html(StatusCode::OK, &AuditPage { page, view, action, actor, verified })
}

pub async fn page(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = web::Query::<AuditQuery>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default();
    render(&gw, &req, Page::new(&req, &s, SECTION), q, None).await
}

/// Verifies the whole chain (a viewer may too: it changes nothing) and shows the report.
pub async fn verify(gw: web::Data<Gateway>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = Form::parse(&body);
    let s = match guard::require_form(&gw, &req, &form, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let verified = match audit::verify(&gw).await {
        Ok(v) => v,
        Err(e) => return page::unavailable(&req, &e.problem.message),
    };
    render(&gw, &req, Page::new(&req, &s, SECTION), AuditQuery::default(), Some(verified)).await
}

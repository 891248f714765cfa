//! The agencies page: the directory (`GET /v1/admin/agencies`) with its filters.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::guard;
use super::page::{self, Page, html};
use crate::gateway::Gateway;
use crate::http::directory::{self, Directory, DirectoryQuery};

#[derive(Template)]
#[template(path = "agencies.html", config = "src/http/console/askama.toml")]
struct AgenciesPage {
    page: Page,
    q: DirectoryQuery,
    d: Directory,
    regions: Vec<(String, String)>,
    error: Option<String>,
}

pub async fn page(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = web::Query::<DirectoryQuery>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default();
    let regions = gw.runtime().config.router.regions.iter().map(|r| (r.key.clone(), r.name.clone())).collect();
    let page = Page::new(&req, &s, "/console/agencies");
    match directory::directory(&gw, &q).await {
        Ok(d) => html(StatusCode::OK, &AgenciesPage { page, q, d, regions, error: None }),
        Err(e) if e.problem.code == crate::model::Code::StoreUnavailable => page::unavailable(&req, &e.problem.message),
        Err(e) => {
            let d = Directory { matching: 0, agencies: Vec::new() };
            html(StatusCode::BAD_REQUEST, &AgenciesPage { page, q, d, regions, error: Some(e.problem.message) })
        }
    }
}

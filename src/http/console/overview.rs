//! The overview page: the same data as `GET /v1/admin/overview`, refreshed every 30 s (htmx).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::chart::{self, Bar};
use super::page::{self, Page, html};
use super::session::{self, NoSession};
use crate::gateway::Gateway;
use crate::http::overview::{Overview, Tally, overview};

#[derive(Template)]
#[template(path = "overview.html", config = "src/http/console/askama.toml")]
struct OverviewPage {
    page: Page,
    o: Overview,
    accepted: i64,
    refused: i64,
    resent: i64,
    overdue: usize,
    by_type: Vec<Tally>,
    chart: String,
}

pub async fn page(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match session::current(&gw, &req).await {
        Ok(s) => s,
        Err(NoSession::SignIn) => return session::to_sign_in("/console/"),
        Err(NoSession::Store(e)) => return page::unavailable(&req, &e.to_string()),
    };
    let o = match overview(&gw).await {
        Ok(o) => o,
        Err(e) => return page::unavailable(&req, &e.problem.message),
    };
    let page = Page::new(&req, &s, "/console/");
    let bars: Vec<Bar> = o
        .hours
        .iter()
        .map(|h| Bar {
            label: h.at.get(11..13).unwrap_or_default().to_string(),
            parts: vec![(h.accepted, "#1e5fa8"), (h.refused, "#b42318"), (h.resent, "#b7791f")],
            title: format!(
                "{} — {} {} · {} {} · {} {}",
                h.at.get(..16).unwrap_or_default(),
                page.t.accepted,
                h.accepted,
                page.t.refused,
                h.refused,
                page.t.resent,
                h.resent
            ),
        })
        .collect();
    let chart = chart::stacked_bars(&bars, 3, page.t.per_hour_by_type);
    let mut by_type: Vec<Tally> = o
        .types
        .iter()
        .map(|t| Tally { key: t.clone(), n: o.hours.iter().map(|h| h.by_type.get(t).copied().unwrap_or(0)).sum() })
        .collect();
    by_type.sort_by_key(|t| std::cmp::Reverse(t.n));
    let (accepted, refused, resent) =
        o.hours.iter().fold((0, 0, 0), |(a, r, s), h| (a + h.accepted, r + h.refused, s + h.resent));
    let overdue = o.owed.iter().filter(|w| w.overdue).count();
    html(StatusCode::OK, &OverviewPage { page, o, accepted, refused, resent, overdue, by_type, chart })
}

//! Replies and evaluation (及时反馈, 奖优惩劣): the replies owed in a period, soonest deadline first
//! and overdue ones marked; per agency, requests received, answered on time and late, open,
//! overdue, on-time rate, median and 90th-percentile reply time, by level and region, as a chart
//! and a table; a page per agency; the same figures as CSV. What `GET /v1/admin/stats` and
//! `GET /v1/admin/owed` give.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::chart::{self, Bar};
use super::guard;
use super::page::{self, Page, html};
use crate::gateway::Gateway;
use crate::http::threads::{self, ObligationView, StatsParams, obligation_view};
use crate::threads::stats::{self, AgencyStats};

const SECTION: &str = "/console/replies";

/// How many of the replies owed the page lists.
const OWED_SHOWN: usize = 200;

/// An agency's figures with its rate worked out for the page.
pub struct Row {
    pub s: AgencyStats,
    /// Answered on time, of those answered or overdue, in percent.
    pub on_time_rate: Option<u32>,
    pub median: String,
    pub p90: String,
}

fn duration(seconds: Option<i64>) -> String {
    match seconds {
        None => "—".into(),
        Some(s) if s < 3600 => format!("{} min", s / 60),
        Some(s) if s < 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        Some(s) => format!("{:.1} d", s as f64 / 86_400.0),
    }
}

impl Row {
    fn of(s: AgencyStats) -> Row {
        let judged = s.answered_on_time + s.answered_late + s.overdue;
        let on_time_rate = (judged > 0).then(|| (s.answered_on_time * 100 / judged) as u32);
        Row { median: duration(s.median_reply_seconds), p90: duration(s.p90_reply_seconds), on_time_rate, s }
    }
}

#[derive(Template)]
#[template(path = "replies.html", config = "src/http/console/askama.toml")]
struct RepliesPage {
    page: Page,
    q: StatsParams,
    query: String,
    from: String,
    to: String,
    rows: Vec<Row>,
    owed: Vec<ObligationView>,
    chart: String,
    regions: Vec<(String, String)>,
    /// The agency of an agency's page.
    agency: Option<String>,
    error: Option<String>,
}

fn params(req: &HttpRequest) -> StatsParams {
    web::Query::<StatsParams>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default()
}

pub async fn page(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    render(&gw, &req, None).await
}

pub async fn agency(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    render(&gw, &req, Some(id.into_inner())).await
}

async fn render(gw: &Gateway, req: &HttpRequest, agency: Option<String>) -> HttpResponse {
    let s = match guard::require(gw, req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = Page::new(req, &s, SECTION);
    let q = params(req);
    let regions =
        gw.runtime().config.router.regions.iter().map(|r| (r.key.clone(), r.name.clone())).collect::<Vec<_>>();
    let mut p = RepliesPage {
        page,
        query: req.query_string().to_string(),
        q: q.clone(),
        from: String::new(),
        to: String::new(),
        rows: Vec::new(),
        owed: Vec::new(),
        chart: String::new(),
        regions,
        agency: agency.clone(),
        error: None,
    };
    let figures = match threads::figures(gw, &q).await {
        Ok(f) => f,
        Err(e) if e.problem.code == crate::model::Code::StoreUnavailable => {
            return page::unavailable(req, &e.problem.message);
        }
        Err(e) => {
            p.error = Some(e.problem.message);
            return html(StatusCode::BAD_REQUEST, &p);
        }
    };
    let now = gw.clock.now_ms();
    let mut rows: Vec<AgencyStats> = figures.agencies;
    if let Some(a) = &agency {
        rows.retain(|r| &r.agency == a);
    }
    rows.sort_by(|a, b| b.received.cmp(&a.received).then(a.agency.cmp(&b.agency)));
    // The agencies listed (one agency's page, a level or a region) owe them; else any agency.
    let narrowed =
        agency.is_some() || [&q.level, &q.region].iter().any(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty()));
    let awaiting = narrowed.then(|| rows.iter().map(|r| r.agency.clone()).collect());
    match threads::owed_by(gw, &q, awaiting, OWED_SHOWN).await {
        Ok(owed) => p.owed = owed.iter().map(|o| obligation_view(o, now)).collect(),
        Err(e) => return page::unavailable(req, &e.problem.message),
    }
    let bars: Vec<Bar> = rows
        .iter()
        .take(24)
        .map(|r| Bar {
            label: r.agency.clone(),
            parts: vec![
                (r.answered_on_time as i64, "#15803d"),
                (r.answered_late as i64, "#b7791f"),
                (r.overdue as i64, "#b42318"),
                ((r.open - r.overdue) as i64, "#94a3b8"),
            ],
            title: format!(
                "{} — {} {} · {} {} · {} {} · {} {}",
                r.agency,
                p.page.t.on_time,
                r.answered_on_time,
                p.page.t.late,
                r.answered_late,
                p.page.t.overdue,
                r.overdue,
                p.page.t.open_word,
                r.open - r.overdue
            ),
        })
        .collect();
    if !bars.is_empty() {
        p.chart = chart::stacked_bars(&bars, 1, p.page.t.per_agency);
    }
    let chosen = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    p.from = if chosen(&q.from) { figures.from } else { "…".into() };
    p.to = if chosen(&q.to) { figures.to } else { p.page.t.now.into() };
    p.rows = rows.into_iter().map(Row::of).collect();
    html(StatusCode::OK, &p)
}

/// The figures as CSV (what `GET /v1/admin/stats` with `Accept: text/csv` gives).
pub async fn csv(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = guard::require(&gw, &req).await {
        return r;
    }
    match threads::figures(&gw, &params(&req)).await {
        Ok(figures) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
            .insert_header((CONTENT_DISPOSITION, "attachment; filename=\"xietong-replies.csv\""))
            .body(stats::csv(&figures.agencies)),
        Err(e) => page::refused(&req, crate::http::error::status(e.problem.code), &e.problem.message),
    }
}

//! The operators' views of the threads: `GET /v1/admin/threads` (and `/{id}`) and
//! `GET /v1/admin/stats`, the figures behind 奖优惩劣 (section 十七), in JSON, or CSV on
//! `Accept: text/csv`.

use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth;
use super::error::ApiError;
use super::request::query;
use crate::clock::{format_ms, parse_time};
use crate::gateway::Gateway;
use crate::model::{Code, Problem};
use crate::store::{ObligationRow, ThreadQuery, ThreadRow};
use crate::threads::stats::{self, state};

fn operator(gw: &Gateway, req: &HttpRequest) -> Result<(), Problem> {
    let rt = gw.runtime();
    auth::operator(&rt.config.operators, &rt.config.agencies, req).map(|_| ())
}

/// A time of the query, as unix ms.
fn time(text: Option<&str>) -> Result<Option<i64>, Problem> {
    text.map(parse_time).transpose().map_err(|e| Problem::new(Code::BadRequest, e))
}

fn obligation_json(o: &ObligationRow, now_ms: i64) -> Value {
    let state = if o.state != "answered" && o.deadline_ms < now_ms { "overdue" } else { o.state.as_str() };
    json!({
        "request": o.request_id, "type": o.request_type, "requester": o.requester, "awaiting": o.awaiting,
        "opened_at": format_ms(o.opened_ms), "deadline": format_ms(o.deadline_ms), "state": state,
        "answered_by": o.answered_by, "answered_at": o.answered_ms.map(format_ms), "late": o.late, "outcome": o.outcome,
        "reply_seconds": o.answered_ms.map(|a| (a - o.opened_ms) / 1000),
    })
}

fn thread_json(t: &ThreadRow, now_ms: i64) -> Value {
    json!({
        "id": t.id,
        "case": t.case_number,
        "state": state(t, now_ms),
        "opened_at": format_ms(t.opened_ms),
        "obligations": t.obligations.iter().map(|o| obligation_json(o, now_ms)).collect::<Vec<_>>(),
        "messages": t.messages.iter().map(|m| json!({
            "id": m.message_id, "kind": m.kind, "type": m.message_type, "sender": m.sender, "at": format_ms(m.at_ms), "flag": m.flag,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
pub struct ThreadsParams {
    state: Option<String>,
    agency: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

pub async fn list(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    operator(&gw, &req)?;
    let params: ThreadsParams = query(&req)?;
    if params.state.as_deref().is_some_and(|s| !["open", "overdue", "closed"].contains(&s)) {
        return Err(Problem::new(Code::BadRequest, "state: open, overdue or closed").into());
    }
    let (from_ms, to_ms) = (time(params.from.as_deref())?, time(params.to.as_deref())?);
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    // The state is derived from the deadlines, so it is filtered after reading.
    let query = ThreadQuery {
        id: None,
        agency: params.agency,
        from_ms,
        to_ms,
        limit: if params.state.is_some() { 10_000 } else { limit },
    };
    let now = gw.clock.now_ms();
    let rows = gw.store.threads(query).await?;
    let threads: Vec<Value> = rows
        .iter()
        .filter(|t| params.state.as_deref().is_none_or(|s| state(t, now) == s))
        .take(limit)
        .map(|t| thread_json(t, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"threads": threads})))
}

pub async fn one(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    operator(&gw, &req)?;
    let query = ThreadQuery { id: Some(id.to_string()), limit: 1, ..ThreadQuery::default() };
    let rows = gw.store.threads(query).await?;
    match rows.first() {
        Some(t) => Ok(HttpResponse::Ok().json(thread_json(t, gw.clock.now_ms()))),
        None => Err(Problem::new(Code::NotFound, format!("no thread `{id}`")).into()),
    }
}

#[derive(Deserialize)]
pub struct StatsParams {
    from: Option<String>,
    to: Option<String>,
    level: Option<String>,
    region: Option<String>,
}

pub async fn stats(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    operator(&gw, &req)?;
    let params: StatsParams = query(&req)?;
    let now = gw.clock.now_ms();
    let from_ms = time(params.from.as_deref())?.unwrap_or(0);
    let to_ms = time(params.to.as_deref())?.unwrap_or(now + 1);
    let rt = gw.runtime();
    let router = &rt.config.router;
    if params.region.as_deref().is_some_and(|r| router.regions.get(r).is_none()) {
        return Err(Problem::new(Code::BadRequest, "region: a region of regions.yaml").into());
    }
    let obligations = gw.store.obligations(from_ms, to_ms).await?;
    let rows = stats::figures(obligations, now, router, params.level.as_deref(), params.region.as_deref());
    let csv = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv"));
    if csv {
        return Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(stats::csv(&rows)));
    }
    Ok(HttpResponse::Ok().json(json!({"from": format_ms(from_ms), "to": format_ms(to_ms), "agencies": rows})))
}

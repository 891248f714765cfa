//! The operators' views of the threads: `GET /v1/admin/threads` (and `/{id}`) and
//! `GET /v1/admin/stats`, the figures behind 奖优惩劣 (section 十七), in JSON, or CSV on
//! `Accept: text/csv`.

use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth;
use super::error::ApiError;
use super::request::query;
use crate::clock::{format_ms, parse_time};
use crate::gateway::Gateway;
use crate::model::{Code, Problem};
use crate::store::{ObligationRow, OwedQuery, ThreadQuery, ThreadRow};
use crate::threads::stats::{self, state};

/// A time of the query, as unix ms.
fn time(text: Option<&str>) -> Result<Option<i64>, Problem> {
    text.map(parse_time).transpose().map_err(|e| Problem::new(Code::BadRequest, e))
}

/// A reply owed: by whom, to whom, until when, and what became of it.
#[derive(Serialize, ToSchema)]
pub struct ObligationView {
    /// The gateway's id of the request.
    pub request: String,
    #[serde(rename = "type")]
    pub request_type: String,
    pub requester: String,
    pub awaiting: String,
    pub opened_at: String,
    pub deadline: String,
    /// `open`, `overdue` or `answered`.
    pub state: String,
    pub answered_by: Option<String>,
    pub answered_at: Option<String>,
    pub late: Option<bool>,
    /// `answered`, `cannot_determine` (无法认定), or null.
    pub outcome: Option<String>,
    pub reply_seconds: Option<i64>,
}

/// A message of a thread.
#[derive(Serialize, ToSchema)]
pub struct ThreadMessage {
    pub id: String,
    /// `request`, `reply`, `progress`, `notice` or `message`.
    pub kind: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub sender: String,
    pub at: String,
    /// Why a reply was flagged (stray, late), or null.
    pub flag: Option<String>,
}

/// A thread: a request, its replies and progress, and the obligations it opened.
#[derive(Serialize, ToSchema)]
pub struct ThreadView {
    pub id: String,
    /// The case number.
    pub case: Option<String>,
    /// `open`, `overdue` or `closed`.
    pub state: &'static str,
    pub opened_at: String,
    pub obligations: Vec<ObligationView>,
    pub messages: Vec<ThreadMessage>,
}

#[derive(Serialize, ToSchema)]
pub struct ThreadList {
    pub threads: Vec<ThreadView>,
}

/// The figures behind 奖优惩劣, per agency that owed replies.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    pub from: String,
    pub to: String,
    pub agencies: Vec<stats::AgencyStats>,
}

pub fn obligation_view(o: &ObligationRow, now_ms: i64) -> ObligationView {
    let state = if o.state != "answered" && o.deadline_ms < now_ms { "overdue".to_string() } else { o.state.clone() };
    ObligationView {
        request: o.request_id.clone(),
        request_type: o.request_type.clone(),
        requester: o.requester.clone(),
        awaiting: o.awaiting.clone(),
        opened_at: format_ms(o.opened_ms),
        deadline: format_ms(o.deadline_ms),
        state,
        answered_by: o.answered_by.clone(),
        answered_at: o.answered_ms.map(format_ms),
        late: o.late,
        outcome: o.outcome.clone(),
        reply_seconds: o.answered_ms.map(|a| (a - o.opened_ms) / 1000),
    }
}

pub fn thread_view(t: &ThreadRow, now_ms: i64) -> ThreadView {
    ThreadView {
        id: t.id.clone(),
        case: t.case_number.clone(),
        state: state(t, now_ms),
        opened_at: format_ms(t.opened_ms),
        obligations: t.obligations.iter().map(|o| obligation_view(o, now_ms)).collect(),
        messages: t
            .messages
            .iter()
            .map(|m| ThreadMessage {
                id: m.message_id.clone(),
                kind: m.kind.clone(),
                message_type: m.message_type.clone(),
                sender: m.sender.clone(),
                at: format_ms(m.at_ms),
                flag: m.flag.clone(),
            })
            .collect(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadsParams {
    /// `open`, `overdue` or `closed`.
    state: Option<String>,
    /// Threads where this agency asked or owes.
    agency: Option<String>,
    /// Opened from this day (YYYY-MM-DD, Beijing) or time (RFC 3339).
    from: Option<String>,
    /// Opened before this day or time.
    to: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<usize>,
}

/// Threads
///
/// Newest first, with their obligations and messages.
#[utoipa::path(get, path = "/v1/admin/threads", operation_id = "list_threads", tag = "admin", security(("bearer" = [])), params(ThreadsParams),
    responses(
        (status = 200, description = "The threads", body = ThreadList),
        (status = 400, description = "A parameter is wrong"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn list(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
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
    let threads = rows
        .iter()
        .filter(|t| params.state.as_deref().is_none_or(|s| state(t, now) == s))
        .take(limit)
        .map(|t| thread_view(t, now))
        .collect();
    Ok(HttpResponse::Ok().json(ThreadList { threads }))
}

/// One thread
#[utoipa::path(get, path = "/v1/admin/threads/{id}", operation_id = "thread", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The thread's id (its first message's)")),
    responses(
        (status = 200, description = "The thread", body = ThreadView),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
        (status = 404, description = "No such thread"),
    ))]
pub async fn one(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let query = ThreadQuery { id: Some(id.to_string()), limit: 1, ..ThreadQuery::default() };
    let rows = gw.store.threads(query).await?;
    match rows.first() {
        Some(t) => Ok(HttpResponse::Ok().json(thread_view(t, gw.clock.now_ms()))),
        None => Err(Problem::new(Code::NotFound, format!("no thread `{id}`")).into()),
    }
}

#[derive(Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Requests received from this day (YYYY-MM-DD, Beijing) or time (RFC 3339).
    pub from: Option<String>,
    /// Requests received before this day or time.
    pub to: Option<String>,
    /// Only agencies at this level: national, province, prefecture, county.
    pub level: Option<String>,
    /// Only agencies in this key region.
    pub region: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The period `params` names, unix ms, the end exclusive: from the start when it names none, to
/// the end of today (Beijing) when it names no end.
fn period(params: &StatsParams, now: i64) -> Result<(i64, i64), Problem> {
    let from_ms = time(given(&params.from))?.unwrap_or(0);
    let to_ms = time(given(&params.to))?.unwrap_or_else(|| stats::day_start(stats::day(now) + 1));
    Ok((from_ms, to_ms))
}

/// The figures of the agencies of the level and region `params` names that owed replies to
/// requests received in its period (to the end of today when it names no end).
pub async fn figures(gw: &Gateway, params: &StatsParams) -> Result<Stats, ApiError> {
    let now = gw.clock.now_ms();
    let (from_ms, to_ms) = period(params, now)?;
    let rt = gw.runtime();
    let router = &rt.config.router;
    let (level, region) = (given(&params.level), given(&params.region));
    if region.is_some_and(|r| router.regions.get(r).is_none()) {
        return Err(Problem::new(Code::BadRequest, "region: a region of regions.yaml").into());
    }
    if level.is_some_and(|l| crate::route::divisions::Level::named(l).is_none()) {
        return Err(Problem::new(Code::BadRequest, "level: national, province, prefecture or county").into());
    }
    let parts = stats::gather(gw.store.as_ref(), from_ms, to_ms, now).await?;
    let rows = stats::figures(&parts, router, level, region);
    Ok(Stats { from: format_ms(from_ms), to: format_ms(to_ms), agencies: rows })
}

/// Reply timeliness per agency (奖优惩劣)
///
/// JSON, or CSV with `Accept: text/csv`.
#[utoipa::path(get, path = "/v1/admin/stats", operation_id = "stats", tag = "admin", security(("bearer" = [])), params(StatsParams),
    responses(
        (status = 200, description = "The figures", content(
            (Stats = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A parameter is wrong"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn stats(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let params: StatsParams = query(&req)?;
    let stats = figures(&gw, &params).await?;
    let csv = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv"));
    if csv {
        return Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(stats::csv(&stats.agencies)));
    }
    Ok(HttpResponse::Ok().json(stats))
}

#[derive(Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwedParams {
    /// Requests received from this day (YYYY-MM-DD, Beijing) or time (RFC 3339).
    pub from: Option<String>,
    /// Requests received before this day or time.
    pub to: Option<String>,
    /// Only replies owed by agencies at this level: national, province, prefecture, county.
    pub level: Option<String>,
    /// Only replies owed by agencies in this key region.
    pub region: Option<String>,
    /// Only replies this agency owes.
    pub agency: Option<String>,
    /// 1 to 1000 (default 200).
    pub limit: Option<usize>,
}

/// The replies owed
#[derive(Serialize, ToSchema)]
pub struct OwedList {
    pub owed: Vec<ObligationView>,
}

/// The replies not given yet to the requests of the period, level and region `params` names,
/// soonest deadline first (overdue ones first of all).
pub async fn owed_rows(gw: &Gateway, params: &OwedParams) -> Result<Vec<ObligationRow>, ApiError> {
    let scope = StatsParams {
        from: params.from.clone(),
        to: params.to.clone(),
        level: params.level.clone(),
        region: params.region.clone(),
    };
    let awaiting = match (given(&params.agency), given(&scope.level).or(given(&scope.region))) {
        (Some(agency), _) => Some(vec![agency.to_string()]),
        // The agencies of that level or region that owed replies in the period.
        (None, Some(_)) => Some(figures(gw, &scope).await?.agencies.into_iter().map(|a| a.agency).collect()),
        (None, None) => None,
    };
    owed_by(gw, &scope, awaiting, params.limit.unwrap_or(200)).await
}

/// The replies `awaiting` owe (any agency's when `None`) to the requests of the period `scope`
/// names, soonest deadline first, at most `limit` (1 to 1,000).
pub async fn owed_by(
    gw: &Gateway,
    scope: &StatsParams,
    awaiting: Option<Vec<String>>,
    limit: usize,
) -> Result<Vec<ObligationRow>, ApiError> {
    let (from_ms, to_ms) = period(scope, gw.clock.now_ms())?;
    Ok(gw.store.owed(OwedQuery { from_ms, to_ms, awaiting, limit: limit.clamp(1, 1000) }).await?)
}

/// Replies owed
///
/// The replies not given yet to requests received in the period, soonest deadline first.
#[utoipa::path(get, path = "/v1/admin/owed", operation_id = "owed", tag = "admin", security(("bearer" = [])), params(OwedParams),
    responses(
        (status = 200, description = "The replies owed", body = OwedList),
        (status = 400, description = "A parameter is wrong"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "Not an operator's token"),
    ))]
pub async fn owed(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::calling_operator(&gw, &req)?;
    let params: OwedParams = query(&req)?;
    let now = gw.clock.now_ms();
    let owed = owed_rows(&gw, &params).await?.iter().map(|o| obligation_view(o, now)).collect();
    Ok(HttpResponse::Ok().json(OwedList { owed }))
}

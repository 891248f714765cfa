//! Operators' views: `GET /v1/admin/threads` (and `/{id}`) and `GET /v1/admin/stats`, the
//! figures behind 奖优惩劣 (section 十七): per agency, requests received, answered on time,
//! late, still open, and the median and 90th-percentile reply times. CSV on `Accept: text/csv`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::format_ms;
use crate::ingest::{auth, response};
use crate::model::{AgencyId, Code, Problem};
use crate::normalize::convert::beijing;
use crate::server::Gateway;
use crate::store::{ObligationRow, StoreError, ThreadQuery, ThreadRow};

/// The state of a thread at `now_ms`: `overdue` when a reply is owed past its deadline, `open`
/// when one is owed, `closed` when nothing is.
pub fn state(thread: &ThreadRow, now_ms: i64) -> &'static str {
    let owed: Vec<&ObligationRow> = thread.obligations.iter().filter(|o| o.state != "answered").collect();
    if owed.iter().any(|o| o.deadline_ms < now_ms) {
        "overdue"
    } else if owed.is_empty() {
        "closed"
    } else {
        "open"
    }
}

/// A time given as `YYYY-MM-DD` (the start of that day in Beijing) or RFC 3339, as unix ms.
pub fn parse_time(text: &str) -> Result<i64, Problem> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| beijing().from_local_datetime(&d).single())
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| {
            Problem::new(Code::BadRequest, format!("`{text}` is not a time: YYYY-MM-DD (Beijing) or RFC 3339"))
        })
}

fn operator(gw: &Gateway, req: &HttpRequest) -> Result<(), Problem> {
    let rt = gw.runtime();
    auth::operator(&rt.config.operators, &rt.config.agencies, req).map(|_| ())
}

fn unavailable(e: StoreError) -> HttpResponse {
    response::retry_after(&Problem::new(Code::StoreUnavailable, e.to_string()), Duration::from_secs(1))
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

pub async fn list(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    if let Err(p) = operator(&gw, &req) {
        return response::problem(&p);
    }
    let params = match web::Query::<ThreadsParams>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return response::problem(&Problem::new(Code::BadRequest, format!("query: {e}"))),
    };
    if params.state.as_deref().is_some_and(|s| !["open", "overdue", "closed"].contains(&s)) {
        return response::problem(&Problem::new(Code::BadRequest, "state: open, overdue or closed"));
    }
    let (from_ms, to_ms) =
        match (params.from.as_deref().map(parse_time).transpose(), params.to.as_deref().map(parse_time).transpose()) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(p), _) | (_, Err(p)) => return response::problem(&p),
        };
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
    match gw.store.threads(query).await {
        Ok(rows) => {
            let threads: Vec<Value> = rows
                .iter()
                .filter(|t| params.state.as_deref().is_none_or(|s| state(t, now) == s))
                .take(limit)
                .map(|t| thread_json(t, now))
                .collect();
            HttpResponse::Ok().json(json!({"threads": threads}))
        }
        Err(e) => unavailable(e),
    }
}

pub async fn one(gw: web::Data<Gateway>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if let Err(p) = operator(&gw, &req) {
        return response::problem(&p);
    }
    let query = ThreadQuery { id: Some(id.to_string()), limit: 1, ..ThreadQuery::default() };
    match gw.store.threads(query).await {
        Ok(rows) => match rows.first() {
            Some(t) => HttpResponse::Ok().json(thread_json(t, gw.clock.now_ms())),
            None => response::problem(&Problem::new(Code::NotFound, format!("no thread `{id}`"))),
        },
        Err(e) => unavailable(e),
    }
}

/// One agency's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgencyStats {
    pub agency: String,
    pub level: String,
    /// Requests it was asked to answer.
    pub received: usize,
    pub answered_on_time: usize,
    pub answered_late: usize,
    /// Not answered yet, overdue or not.
    pub open: usize,
    /// Not answered, and past the deadline.
    pub overdue: usize,
    pub median_reply_seconds: Option<i64>,
    pub p90_reply_seconds: Option<i64>,
}

/// The figures of `obligations` at `now_ms`, per agency that owed a reply.
pub fn compute(obligations: &[ObligationRow], now_ms: i64, level_of: impl Fn(&str) -> String) -> Vec<AgencyStats> {
    let mut by_agency: BTreeMap<&str, (AgencyStats, Vec<i64>)> = BTreeMap::new();
    for o in obligations {
        let (s, times) = by_agency.entry(&o.awaiting).or_insert_with(|| {
            (
                AgencyStats { agency: o.awaiting.clone(), level: level_of(&o.awaiting), ..AgencyStats::default() },
                Vec::new(),
            )
        });
        s.received += 1;
        match (o.answered_ms, o.late) {
            (Some(at), late) => {
                if late == Some(true) {
                    s.answered_late += 1;
                } else {
                    s.answered_on_time += 1;
                }
                times.push((at - o.opened_ms) / 1000);
            }
            (None, _) => {
                s.open += 1;
                if o.deadline_ms < now_ms {
                    s.overdue += 1;
                }
            }
        }
    }
    by_agency
        .into_values()
        .map(|(mut s, mut times)| {
            times.sort_unstable();
            s.median_reply_seconds = percentile(&times, 50);
            s.p90_reply_seconds = percentile(&times, 90);
            s
        })
        .collect()
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[derive(Deserialize)]
pub struct StatsParams {
    from: Option<String>,
    to: Option<String>,
    level: Option<String>,
    region: Option<String>,
}

pub async fn stats(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    if let Err(p) = operator(&gw, &req) {
        return response::problem(&p);
    }
    let params = match web::Query::<StatsParams>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return response::problem(&Problem::new(Code::BadRequest, format!("query: {e}"))),
    };
    let now = gw.clock.now_ms();
    let (from_ms, to_ms) =
        match (params.from.as_deref().map(parse_time).transpose(), params.to.as_deref().map(parse_time).transpose()) {
            (Ok(f), Ok(t)) => (f.unwrap_or(0), t.unwrap_or(now + 1)),
            (Err(p), _) | (_, Err(p)) => return response::problem(&p),
        };
    let rt = gw.runtime();
    let router = &rt.config.router;
    if params.region.as_deref().is_some_and(|r| router.regions.get(r).is_none()) {
        return response::problem(&Problem::new(Code::BadRequest, "region: a region of regions.yaml"));
    }
    let obligations = match gw.store.obligations(from_ms, to_ms).await {
        Ok(o) => o,
        Err(e) => return unavailable(e),
    };
    let level_of = |agency: &str| {
        agency
            .parse::<AgencyId>()
            .ok()
            .and_then(|a| router.divisions.get(&a.division))
            .map(|e| e.level.as_str().to_string())
            .unwrap_or_default()
    };
    let kept: Vec<ObligationRow> = obligations
        .into_iter()
        .filter(|o| params.level.as_deref().is_none_or(|l| level_of(&o.awaiting) == l))
        .filter(|o| {
            params.region.as_deref().is_none_or(|r| {
                let division = o.awaiting.parse::<AgencyId>().ok().map(|a| a.division);
                router.regions.get(r).zip(division).is_some_and(|(region, d)| region.contains(&d))
            })
        })
        .collect();
    let rows = compute(&kept, now, level_of);
    let csv = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv"));
    if csv {
        let mut out = String::from(
            "agency,level,received,answered_on_time,answered_late,open,overdue,median_reply_seconds,p90_reply_seconds\n",
        );
        for r in &rows {
            let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                r.agency,
                r.level,
                r.received,
                r.answered_on_time,
                r.answered_late,
                r.open,
                r.overdue,
                opt(r.median_reply_seconds),
                opt(r.p90_reply_seconds)
            ));
        }
        return HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(out);
    }
    HttpResponse::Ok().json(json!({"from": format_ms(from_ms), "to": format_ms(to_ms), "agencies": rows}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(awaiting: &str, opened: i64, deadline: i64, answered: Option<i64>) -> ObligationRow {
        ObligationRow {
            id: 0,
            thread: "t".into(),
            request_id: "r".into(),
            request_type: "x".into(),
            requester: "a".into(),
            awaiting: awaiting.into(),
            opened_ms: opened,
            deadline_ms: deadline,
            state: if answered.is_some() { "answered".into() } else { "open".into() },
            answered_by: None,
            answered_ms: answered,
            late: answered.map(|a| a > deadline),
            outcome: None,
        }
    }

    #[test]
    fn counts_on_time_late_open_and_overdue_with_percentiles() {
        let rows = [
            o("a", 0, 10_000, Some(1_000)),
            o("a", 0, 10_000, Some(2_000)),
            o("a", 0, 10_000, Some(30_000)),
            o("a", 0, 10_000, None),
            o("a", 0, 99_000, None),
            o("b", 0, 10_000, None),
        ];
        let stats = compute(&rows, 50_000, |_| "county".into());
        let a = &stats[0];
        assert_eq!((a.received, a.answered_on_time, a.answered_late, a.open, a.overdue), (5, 2, 1, 2, 1));
        assert_eq!((a.median_reply_seconds, a.p90_reply_seconds), (Some(2), Some(30)));
        assert_eq!((stats[1].agency.as_str(), stats[1].overdue, stats[1].median_reply_seconds), ("b", 1, None));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn times_are_beijing_days_or_rfc3339() {
        assert_eq!(format_ms(parse_time("2026-11-24").unwrap()), "2026-11-24T00:00:00.000+08:00");
        assert!(parse_time("2026-11-24T10:00:00Z").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}

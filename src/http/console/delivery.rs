//! The delivery page: every subscription with its state, backlog, last success and last error,
//! paused, resumed (or re-enabled) and its dead letters replayed; the dead letters, filtered by
//! subscription, each replayed on its own. The same functions as `/v1/admin/subscriptions` and
//! `/v1/admin/dead-letters`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::form::Form;
use super::guard;
use super::page::{self, Page, html};
use crate::gateway::Gateway;
use crate::http::delivery::{self, SubscriptionState};
use crate::store::DeadLetter;

const SECTION: &str = "/console/delivery";

#[derive(Template)]
#[template(path = "delivery.html", config = "src/http/console/askama.toml")]
struct DeliveryPage {
    page: Page,
    subscriptions: Vec<SubscriptionState>,
    letters: Vec<DeadLetter>,
    filter: String,
    done: String,
    feed: String,
    parked: Vec<Parked>,
    /// The cursor of the next page of the operators' feed, when there is one.
    parked_next: Option<i64>,
}

/// A message parked in the operators' feed (no rule routed it, or every recipient was
/// withheld).
struct Parked {
    cursor: i64,
    id: String,
    message_type: String,
    subject: Option<String>,
    time: String,
    sender: String,
}

const PARKED_PAGE: usize = 50;

pub async fn page(gw: web::Data<Gateway>, req: HttpRequest) -> HttpResponse {
    let s = match guard::require(&gw, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let query = Form::query(&req);
    let filter = query.text("subscription").to_string();
    let subscriptions = match delivery::states(&gw).await {
        Ok(list) => list,
        Err(e) => return page::unavailable(&req, &e.problem.message),
    };
    let letters = match gw.store.dead_letters(Some(filter.clone()).filter(|f| !f.is_empty()), 200).await {
        Ok(l) => l,
        Err(e) => return page::unavailable(&req, &e.to_string()),
    };
    let done = query.text("done").to_string();
    let feed = gw.runtime().config.router.operators_feed.clone();
    let after = query.text("parked_after").parse::<i64>().unwrap_or(0);
    let page_of_feed = match gw.store.feed(&feed, after, PARKED_PAGE).await {
        Ok(p) => p,
        Err(e) => return page::unavailable(&req, &e.to_string()),
    };
    let parked_next =
        (page_of_feed.entries.len() == PARKED_PAGE).then(|| page_of_feed.entries.last().map(|e| e.cursor)).flatten();
    let parked = page_of_feed
        .entries
        .into_iter()
        .map(|e| {
            let event: serde_json::Value = serde_json::from_str(&e.event).unwrap_or_default();
            let text = |p: &str| event.pointer(p).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            Parked {
                cursor: e.cursor,
                id: text("/id"),
                message_type: e.message_type,
                subject: e.subject,
                time: text("/time"),
                sender: text("/data/sender/id"),
            }
        })
        .collect();
    let page = Page::new(&req, &s, SECTION);
    html(StatusCode::OK, &DeliveryPage { page, subscriptions, letters, filter, done, feed, parked, parked_next })
}

/// `pause`, `resume` or `replay` (its dead letters) on a subscription.
pub async fn act(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let s = match guard::require_form(&gw, &req, &form, true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (id, action) = path.into_inner();
    let done = match action.as_str() {
        "pause" => delivery::pause_subscription(&gw, &id, &s.operator).await.map(|_| "paused".to_string()),
        "resume" => delivery::resume_subscription(&gw, &id, &s.operator).await.map(|_| "resumed".to_string()),
        "replay" => delivery::replay_all(&gw, &id, &s.operator).await.map(|n| format!("replayed-{n}")),
        _ => return page::not_found(&req),
    };
    match done {
        Ok(done) => page::see_other(&format!("{SECTION}?done={done}")),
        Err(e) => page::refused(&req, crate::http::error::status(e.problem.code), &e.problem.message),
    }
}

/// Replays one dead letter.
pub async fn replay_one(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let form = Form::parse(&body);
    let s = match guard::require_form(&gw, &req, &form, true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(attempt) = id.parse::<i64>() else { return page::not_found(&req) };
    match gw.store.replay(attempt, &format!("operator:{}", s.operator)).await {
        Ok(true) => page::see_other(&format!("{SECTION}?done=replayed-1")),
        Ok(false) => page::not_found(&req),
        Err(e) => page::unavailable(&req, &e.to_string()),
    }
}

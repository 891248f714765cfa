//! Reading a feed: `GET /v1/feeds/{feed}/events` (JSON pages, long-poll with `wait`) and
//! `GET /v1/feeds/{feed}/stream` (Server-Sent Events, resumed from `Last-Event-ID`).
//!
//! A feed is one recipient's copies of its messages, in commit order. The cursor of an entry is
//! its position; reading `after` a cursor returns exactly the entries that followed it, so a
//! reader that resumes from its last cursor sees no gap and no duplicate. Only the feed's owner
//! may read it (its token); `public` is open to all.

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ingest::{auth, response};
use crate::model::{Code, Problem};
use crate::route::Recipient;
use crate::server::Gateway;
use crate::store::{FeedEntry, FeedPage};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
pub struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
    wait: Option<u64>,
}

impl PageQuery {
    pub fn limit_value(&self) -> Option<usize> {
        self.limit
    }

    pub fn wait_value(&self) -> Option<u64> {
        self.wait
    }
}

#[derive(Serialize)]
pub struct Page<'a> {
    pub feed: String,
    pub events: Vec<EventOut<'a>>,
    /// The cursor to read after next time (the last one returned, or the one given).
    pub next: String,
}

#[derive(Serialize)]
pub struct EventOut<'a> {
    pub cursor: String,
    #[serde(rename = "type")]
    pub message_type: &'a str,
    pub event: &'a RawValue,
}

/// The feed named in the path, if the caller may read it.
pub fn authorize(gw: &Gateway, req: &HttpRequest, feed: &str) -> Result<Recipient, Problem> {
    let feed: Recipient = feed.parse().map_err(|e: String| Problem::new(Code::BadRequest, e))?;
    if feed.is_public() {
        return Ok(feed);
    }
    let rt = gw.runtime();
    let config = &rt.config;
    let principal = auth::principal(&config.agencies, &config.operators, req)?;
    if principal.feed(&config.router.operators_feed) != feed {
        return Err(Problem::new(Code::Forbidden, format!("only {feed} may read its feed")));
    }
    Ok(feed)
}

/// Parses a cursor (`after`, `Last-Event-ID`); absent means from the start.
pub fn cursor(text: Option<&str>) -> Result<i64, Problem> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => t.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
            Problem::new(Code::BadRequest, format!("`{t}` is not a cursor: give the `cursor` of an event you received"))
        }),
    }
}

/// Refuses a cursor whose successors are past the retention.
pub fn check_retention(after: i64, page: &FeedPage) -> Result<(), Problem> {
    if after > 0 && after < page.purged_through {
        return Err(Problem::new(
            Code::CursorExpired,
            format!(
                "cursor {after} is older than the retention: entries up to {} are gone; read again from the start (no `after`)",
                page.purged_through
            ),
        ));
    }
    Ok(())
}

/// Reads a page, waiting up to `wait` for the first entry.
pub async fn page_or_wait(
    gw: &Gateway,
    feed: &str,
    after: i64,
    limit: usize,
    wait: Duration,
) -> Result<FeedPage, Problem> {
    let unavailable = |e: crate::store::StoreError| Problem::new(Code::StoreUnavailable, e.to_string());
    let deadline = tokio::time::Instant::now() + wait;
    let mut commits = gw.store.commits();
    let mut stopping = gw.stopping();
    loop {
        // Mark the commits seen before reading, so none in between is missed.
        commits.borrow_and_update();
        let page = gw.store.feed(feed, after, limit).await.map_err(unavailable)?;
        check_retention(after, &page)?;
        if !page.entries.is_empty() || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
            return Ok(page);
        }
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, commits.changed()) => {
                if !matches!(changed, Ok(Ok(()))) {
                    return Ok(page);
                }
            }
            // The server is stopping: answer with what there is (nothing), the client asks again.
            _ = stopping.wait_for(|s| *s) => return Ok(page),
        }
    }
}

pub fn render<'a>(feed: &Recipient, entries: &'a [FeedEntry], after: i64) -> Page<'a> {
    let events = entries
        .iter()
        .filter_map(|e| {
            Some(EventOut {
                cursor: e.cursor.to_string(),
                message_type: &e.message_type,
                event: serde_json::from_str(&e.event).ok()?,
            })
        })
        .collect();
    let next = entries.last().map_or(after, |e| e.cursor).to_string();
    Page { feed: feed.to_string(), events, next }
}

pub async fn events(gw: web::Data<Gateway>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let feed = match authorize(&gw, &req, &path) {
        Ok(f) => f,
        Err(p) => return response::problem(&p),
    };
    let query = match web::Query::<PageQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return response::problem(&Problem::new(Code::BadRequest, format!("query: {e}"))),
    };
    let after = match cursor(query.after.as_deref()) {
        Ok(c) => c,
        Err(p) => return response::problem(&p),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return response::problem(&Problem::new(Code::BadRequest, format!("limit: between 1 and {MAX_LIMIT}")));
    }
    let max_wait = gw.runtime().config.settings.delivery.max_wait;
    let wait = Duration::from_secs(query.wait.unwrap_or(0)).min(max_wait);
    match page_or_wait(&gw, &feed.to_string(), after, limit, wait).await {
        Ok(page) => HttpResponse::Ok().json(render(&feed, &page.entries, after)),
        Err(p) if p.code == Code::StoreUnavailable => response::retry_after(&p, Duration::from_secs(1)),
        Err(p) => response::problem(&p),
    }
}

/// The SSE form of one entry: `id:` the cursor, `event:` the type, `data:` the event.
fn sse(entry: &FeedEntry) -> Bytes {
    Bytes::from(format!("id: {}\nevent: {}\ndata: {}\n\n", entry.cursor, entry.message_type, entry.event))
}

struct Stream {
    gw: web::Data<Gateway>,
    feed: String,
    after: i64,
    queued: VecDeque<Bytes>,
    commits: tokio::sync::watch::Receiver<u64>,
    stopping: tokio::sync::watch::Receiver<bool>,
    heartbeat: Duration,
    ended: bool,
}

pub async fn stream(gw: web::Data<Gateway>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let feed = match authorize(&gw, &req, &path) {
        Ok(f) => f,
        Err(p) => return response::problem(&p),
    };
    let last_event_id = req.headers().get("last-event-id").and_then(|v| v.to_str().ok());
    let query = web::Query::<PageQuery>::from_query(req.query_string()).map(|q| q.into_inner()).ok();
    let after = match cursor(last_event_id.or(query.as_ref().and_then(|q| q.after.as_deref()))) {
        Ok(c) => c,
        Err(p) => return response::problem(&p),
    };
    // Refuse an expired cursor before the stream starts, with a proper status.
    if let Err(p) = page_or_wait(&gw, &feed.to_string(), after, 1, Duration::ZERO).await {
        return response::problem(&p);
    }
    let heartbeat = gw.runtime().config.settings.delivery.heartbeat;
    let mut queued = VecDeque::new();
    // Tell clients to reconnect after 2 s if the connection drops.
    queued.push_back(Bytes::from_static(b"retry: 2000\n\n"));
    let state = Stream {
        commits: gw.store.commits(),
        stopping: gw.stopping(),
        gw,
        feed: feed.to_string(),
        after,
        queued,
        heartbeat,
        ended: false,
    };
    let body = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if s.ended {
                return None;
            }
            if let Some(chunk) = s.queued.pop_front() {
                return Some((Ok::<_, actix_web::Error>(chunk), s));
            }
            s.commits.borrow_and_update();
            match s.gw.store.feed(&s.feed, s.after, 100).await {
                Ok(page) if check_retention(s.after, &page).is_err() => s.ended = true,
                Ok(page) if !page.entries.is_empty() => {
                    for e in &page.entries {
                        s.queued.push_back(sse(e));
                    }
                    s.after = page.entries.last().map_or(s.after, |e| e.cursor);
                }
                // Nothing new: wait for a commit, a heartbeat, or the server to stop (the client
                // resumes from its last id).
                Ok(_) => tokio::select! {
                    changed = tokio::time::timeout(s.heartbeat, s.commits.changed()) => match changed {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => s.ended = true,
                        Err(_) => s.queued.push_back(Bytes::from_static(b": heartbeat\n\n")),
                    },
                    _ = s.stopping.wait_for(|stop| *stop) => s.ended = true,
                },
                // The store is away: end the stream; the client resumes from its last id.
                Err(_) => s.ended = true,
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

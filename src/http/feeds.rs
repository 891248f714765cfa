//! `GET /v1/feeds/{feed}/events` (JSON pages, long-poll with `wait`) and
//! `GET /v1/feeds/{feed}/stream` (Server-Sent Events, resumed from `Last-Event-ID`). Only the
//! feed's owner may read it (its token); `public` is open to all.

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::error::ApiError;
use super::{auth, request};
use crate::deliver::feeds::{self, check_retention, cursor, page_or_wait, read_kept};
use crate::deliver::subscription::Filter;
use crate::gateway::Gateway;
use crate::model::{Code, Detail, Problem};
use crate::route::{Recipient, Router};
use crate::store::FeedEntry;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The query of a feed page or stream (and of a cursor subscription's events): where to start,
/// how many, how long to wait, and a filter as a subscription has one (each a comma-separated
/// list: `types`, `divisions` (prefixes), `regions`, `levels`).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The cursor to read after (a page's `next`); from the oldest kept entry when absent.
    pub after: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// Seconds to wait for an entry when there is none yet (long-poll; at most `delivery.max_wait`,
    /// 30 by default).
    pub wait: Option<u64>,
    /// Comma-separated message types.
    pub types: Option<String>,
    /// Comma-separated division prefixes (`33`, `3301`, `330106`): a case division starts with one.
    pub divisions: Option<String>,
    /// Comma-separated key regions: a case division belongs to one.
    pub regions: Option<String>,
    /// Comma-separated sender levels: national, province, prefecture, county.
    pub levels: Option<String>,
}

impl PageQuery {
    /// The page size asked for (100 when absent); a 400 when it is not 1 to 1000.
    pub fn limit(&self) -> Result<usize, Problem> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if (1..=MAX_LIMIT).contains(&limit) {
            Ok(limit)
        } else {
            Err(Problem::new(Code::BadRequest, format!("limit: between 1 and {MAX_LIMIT}"))
                .with_details(vec![Detail::new("", "query parameter limit")]))
        }
    }

    /// How long to long-poll: `wait` seconds, at most `max`.
    pub fn wait(&self, max: Duration) -> Duration {
        Duration::from_secs(self.wait.unwrap_or(0)).min(max)
    }

    /// The filter the query gives, checked; a 400 names each list that is wrong.
    pub fn filter(&self, router: &Router) -> Result<Filter, Problem> {
        let list = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .map(|l| l.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect())
                .unwrap_or_default()
        };
        let filter = Filter {
            types: list(&self.types),
            divisions: list(&self.divisions),
            regions: list(&self.regions),
            levels: list(&self.levels),
        };
        let problems = filter.problems(router);
        if problems.is_empty() {
            return Ok(filter);
        }
        let details = problems.into_iter().map(|p| Detail::new("", format!("query parameter {p}"))).collect();
        Err(Problem::new(Code::BadRequest, "the feed's filter is not valid").with_details(details))
    }
}

/// Whether `entry` passes `filter`.
pub fn passes(filter: &Filter, entry: &FeedEntry, router: &Router) -> bool {
    filter.is_empty()
        || filter.matches(&entry.message_type, &serde_json::from_str(&entry.event).unwrap_or_default(), router)
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

/// A page of a feed
///
/// Your own feed (an agency's is its id, a hub's `hub:REGION`, the operators' theirs), or
/// `public` (open to all). Long-polls with `wait`; filters by type, division, region and level.
#[utoipa::path(get, path = "/v1/feeds/{feed}/events", operation_id = "feed_events", tag = "feeds",
    params(("feed" = String, Path, description = "KIND:DIVISION, hub:REGION, public, or the operators' feed"), PageQuery),
    security((), ("bearer" = []), ("mutualTLS" = [])),
    responses(
        (status = 200, description = "The page", body = crate::deliver::feeds::Page),
        (status = 400, description = "A parameter is wrong"),
        (status = 401, description = "No valid credentials (any feed but public)"),
        (status = 403, description = "Not your feed"),
        (status = 410, description = "The cursor is older than the feed's retention"),
    ))]
pub async fn events(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let feed = authorize(&gw, &req, &path)?;
    let query: PageQuery = request::query(&req)?;
    let after = cursor(query.after.as_deref())?;
    let limit = query.limit()?;
    let rt = gw.runtime();
    let router = &rt.config.router;
    let filter = query.filter(router)?;
    let wait = query.wait(rt.config.settings.delivery.max_wait);
    let (store, stopping) = (gw.store.as_ref(), gw.stopping());
    if filter.is_empty() {
        let page = page_or_wait(store, stopping, &feed.to_string(), after, limit, wait).await?;
        return Ok(HttpResponse::Ok().json(feeds::render(&feed, &page.entries, after)));
    }
    let kept =
        read_kept(store, stopping, &feed.to_string(), after, limit, wait, |e| passes(&filter, e, router)).await?;
    let mut page = feeds::render(&feed, &kept.entries, after);
    page.next = kept.next.to_string();
    Ok(HttpResponse::Ok().json(page))
}

/// The SSE form of one entry: `id:` the cursor, `event:` the type, `data:` the event.
fn sse(entry: &FeedEntry) -> Bytes {
    Bytes::from(format!("id: {}\nevent: {}\ndata: {}\n\n", entry.cursor, entry.message_type, entry.event))
}

struct Stream {
    gw: web::Data<Gateway>,
    feed: String,
    filter: Filter,
    after: i64,
    queued: VecDeque<Bytes>,
    commits: tokio::sync::watch::Receiver<u64>,
    stopping: tokio::sync::watch::Receiver<bool>,
    heartbeat: Duration,
    ended: bool,
}

/// A feed as Server-Sent Events
///
/// Each event: `id:` its cursor, `event:` its type, `data:` the canonical event as JSON. Resumes
/// after `Last-Event-ID` (or `after`); comments (`: heartbeat`) keep the connection alive. The
/// stream ends when the gateway stops; reconnect with the last id.
#[utoipa::path(get, path = "/v1/feeds/{feed}/stream", operation_id = "feed_stream", tag = "feeds",
    params(
        ("feed" = String, Path, description = "KIND:DIVISION, hub:REGION, public, or the operators' feed"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last cursor received: the stream resumes after it"),
        PageQuery,
    ),
    security((), ("bearer" = []), ("mutualTLS" = [])),
    responses(
        (status = 200, description = "The stream", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A parameter is wrong"),
        (status = 401, description = "No valid credentials (any feed but public)"),
        (status = 403, description = "Not your feed"),
        (status = 410, description = "The cursor is older than the feed's retention"),
    ))]
pub async fn stream(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let feed = authorize(&gw, &req, &path)?;
    let last_event_id = req.headers().get("last-event-id").and_then(|v| v.to_str().ok());
    let query: PageQuery = request::query(&req)?;
    let after = cursor(last_event_id.or(query.after.as_deref()))?;
    let filter = query.filter(&gw.runtime().config.router)?;
    // Refuse an expired cursor before the stream starts, with a proper status.
    page_or_wait(gw.store.as_ref(), gw.stopping(), &feed.to_string(), after, 1, Duration::ZERO).await?;
    let heartbeat = gw.runtime().config.settings.delivery.heartbeat;
    let mut queued = VecDeque::new();
    // Tell clients to reconnect after 2 s if the connection drops.
    queued.push_back(Bytes::from_static(b"retry: 2000\n\n"));
    let state = Stream {
        commits: gw.store.commits(),
        stopping: gw.stopping(),
        gw,
        feed: feed.to_string(),
        filter,
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
                    let rt = s.gw.runtime();
                    for e in page.entries.iter().filter(|e| passes(&s.filter, e, &rt.config.router)) {
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
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

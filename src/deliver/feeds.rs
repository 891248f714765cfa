//! Reading a feed: a page after a cursor, or the wait for the next commit when there is
//! nothing yet (long-polls and Server-Sent Events, in `http::feeds`).
//!
//! A feed is one recipient's copies of its messages, in commit order. The cursor of an entry is
//! its position; reading `after` a cursor returns exactly the entries that followed it, so a
//! reader that resumes from its last cursor sees no gap and no duplicate.

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::model::{Code, Problem};
use crate::route::Recipient;
use crate::store::{FeedEntry, FeedPage, Feeds, StoreError};

/// A page of a feed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<'a> {
    pub feed: String,
    pub events: Vec<EventOut<'a>>,
    /// The cursor to read after next time (the last one returned, or the one given).
    pub next: String,
}

/// One entry of a feed: its cursor, the event's type, and the event as this recipient receives it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventOut<'a> {
    pub cursor: String,
    #[serde(rename = "type")]
    pub message_type: &'a str,
    #[schema(schema_with = crate::model::schema::canonical_event)]
    pub event: &'a RawValue,
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

/// Why a page could not be read.
#[derive(Debug)]
pub enum PageError {
    /// The cursor is past the retention.
    Expired(Problem),
    Store(StoreError),
}

/// Reads a page, waiting up to `wait` for the first entry; a page with nothing at once when
/// `stopping` turns true (the reader asks again, on another instance or after the restart).
pub async fn page_or_wait(
    store: &dyn Feeds,
    mut stopping: watch::Receiver<bool>,
    feed: &str,
    after: i64,
    limit: usize,
    wait: Duration,
) -> Result<FeedPage, PageError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut commits = store.commits();
    loop {
        // Mark the commits seen before reading, so none in between is missed.
        commits.borrow_and_update();
        let page = store.feed(feed, after, limit).await.map_err(PageError::Store)?;
        check_retention(after, &page).map_err(PageError::Expired)?;
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

/// Pages a filtered read looks through, at most, before it answers with what it found.
const PAGES_SCANNED: usize = 20;

/// What a filtered read found: the entries kept, and the cursor to read after next time (past the
/// entries the filter left out, so the reader moves on).
pub struct Kept {
    pub entries: Vec<FeedEntry>,
    pub next: i64,
}

/// Reads entries after `after` that `keep` passes, waiting up to `wait` for the first: page after
/// page (up to [`PAGES_SCANNED`]) until one holds something to keep, the feed has nothing more,
/// or the wait is over.
pub async fn read_kept(
    store: &dyn Feeds,
    stopping: watch::Receiver<bool>,
    feed: &str,
    mut after: i64,
    limit: usize,
    wait: Duration,
    keep: impl Fn(&FeedEntry) -> bool,
) -> Result<Kept, PageError> {
    let deadline = tokio::time::Instant::now() + wait;
    for _ in 0..PAGES_SCANNED {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let page = page_or_wait(store, stopping.clone(), feed, after, limit, left).await?;
        let Some(last) = page.entries.last().map(|e| e.cursor) else { break };
        let entries: Vec<FeedEntry> = page.entries.into_iter().filter(|e| keep(e)).collect();
        after = last;
        if !entries.is_empty() {
            return Ok(Kept { entries, next: after });
        }
    }
    Ok(Kept { entries: Vec::new(), next: after })
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

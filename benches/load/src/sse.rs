//! A Server-Sent Events reader for the delivery side of a load run: it follows a feed's stream
//! from a given cursor and notes which message arrived when.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Deserialize;

/// What one reader saw.
#[derive(Default)]
pub struct Seen {
    /// Message id and when its event arrived.
    pub events: Vec<(String, Instant)>,
    /// The stream ended or failed before the reader was stopped (why).
    pub broke: Option<String>,
}

#[derive(Deserialize)]
struct EventId<'a> {
    #[serde(borrow)]
    id: &'a str,
}

/// Reads `{url}/v1/feeds/{feed}/stream` after `after` as `token` until `stop` turns true,
/// counting the events in `count` as they come.
pub async fn read(
    url: &str,
    feed: &str,
    token: &str,
    after: i64,
    mut stop: tokio::sync::watch::Receiver<bool>,
    count: Arc<AtomicUsize>,
) -> Seen {
    let mut seen = Seen::default();
    let client = match reqwest::Client::builder().http1_only().build() {
        Ok(c) => c,
        Err(e) => {
            seen.broke = Some(e.to_string());
            return seen;
        }
    };
    let response = client
        .get(format!("{}/v1/feeds/{feed}/stream", url.trim_end_matches('/')))
        .bearer_auth(token)
        .header("last-event-id", after.to_string())
        .send()
        .await;
    let mut response = match response {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            seen.broke = Some(format!("HTTP {}", r.status()));
            return seen;
        }
        Err(e) => {
            seen.broke = Some(e.to_string());
            return seen;
        }
    };
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = stop.wait_for(|s| *s) => return seen,
            chunk = response.chunk() => chunk,
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                seen.broke = Some("the stream ended".into());
                return seen;
            }
            Err(e) => {
                seen.broke = Some(e.to_string());
                return seen;
            }
        };
        let at = Instant::now();
        buffer.extend_from_slice(&chunk);
        // Every complete event (a block ending in a blank line).
        let mut start = 0;
        while let Some(end) = find(&buffer[start..], b"\n\n") {
            let block = &buffer[start..start + end];
            for line in block.split(|b| *b == b'\n') {
                if let Some(data) = line.strip_prefix(b"data: ")
                    && let Ok(e) = serde_json::from_slice::<EventId>(data)
                {
                    seen.events.push((e.id.to_string(), at));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            start += end + 2;
        }
        buffer.drain(..start);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

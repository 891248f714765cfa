//! The webhook worker: moves each webhook subscription's new feed entries into attempts, leases
//! the due ones, POSTs them signed, and records the outcome.
//!
//! - **At least once.** Attempts are created from the feed in the same transaction that moves
//!   the subscription's cursor, and leased while in flight; after a crash an expired lease makes
//!   an attempt due again. A resend carries the same `webhook-id` and event `id`.
//! - **Never twice at once.** The lease is longer than the request timeout.
//! - **In order per case thread.** Only the oldest unfinished attempt of a thread is leased.
//! - **One endpoint never delays another.** Each has its own concurrency and rate limits.
//! - **Retries** on timeouts, connection errors, 408, 429 and 5xx, on the configured schedule
//!   with jitter, honouring `Retry-After`; other 4xx go to the dead letters with the answer kept;
//!   410 disables the subscription.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::guard::Guard;
use super::signature;
use super::subscription::{Stored, Webhook};
use crate::clock::Clock;
use crate::config::Current;
use crate::config::settings::Delivery;
use crate::route::Router;
use crate::store::{Attempt, AttemptOutcome, NewAttempt, NextLease, Store, StoreError, SubscriptionRow};
use crate::telemetry::Metrics;

/// Feed entries read per step when creating attempts.
const FAN_OUT_PAGE: usize = 500;
/// At most this many outcomes of one subscription are recorded together (one commit).
const OUTCOMES_TOGETHER: usize = 256;
/// A send's report: the attempt, how it ended, and its place in the endpoint's concurrency.
type Outcome = (Attempt, AttemptOutcome, OwnedSemaphorePermit);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What the worker keeps per webhook endpoint.
struct Endpoint {
    url: reqwest::Url,
    client: reqwest::Client,
    keys: Vec<Vec<u8>>,
    permits: Arc<Semaphore>,
    limiter: DefaultDirectRateLimiter,
}

impl Endpoint {
    fn build(webhook: &Webhook, delivery: &Delivery) -> Result<Endpoint, String> {
        let url = reqwest::Url::parse(&webhook.url).map_err(|e| format!("url: {e}"))?;
        let guard = Guard::new(&delivery.allow_internal)?;
        guard.check_url(&url)?;
        let keys = webhook.secrets.iter().map(|s| signature::decode_secret(s)).collect::<Result<Vec<_>, _>>()?;
        let mut client = reqwest::Client::builder()
            .timeout(delivery.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(guard));
        if let Some(c) = &webhook.client_certificate {
            let pem = c.pem()?;
            client =
                client.identity(reqwest::Identity::from_pem(&pem).map_err(|e| format!("client certificate: {e}"))?);
        }
        if let Some(pem) = webhook.ca_pem()? {
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("ca: {e}"))?;
            // Only these CAs: the endpoint is pinned to its private PKI.
            client = client.tls_certs_only(certs);
        }
        let concurrency = webhook.concurrency.unwrap_or(delivery.concurrency).max(1);
        let rate =
            NonZeroU32::new(webhook.rate_per_second.unwrap_or(delivery.rate_per_second)).unwrap_or(NonZeroU32::MIN);
        Ok(Endpoint {
            url,
            client: client.build().map_err(|e| format!("http client: {e}"))?,
            keys,
            permits: Arc::new(Semaphore::new(concurrency as usize)),
            limiter: RateLimiter::direct(Quota::per_second(rate)),
        })
    }
}

/// The webhook worker, on a store, a clock, the metrics and the configuration in force.
#[derive(Clone)]
pub struct WebhookWorker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    config: Current,
}

/// A subscription's delivery task, and the spec it was started with.
struct Running {
    spec: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // What it sent is recorded by the send's own task; what it leased and did not send is
        // due again when the lease ends.
        self.task.abort();
    }
}

impl WebhookWorker {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, metrics: Arc<Metrics>, config: Current) -> WebhookWorker {
        WebhookWorker { store, clock, metrics, config }
    }

    /// Keeps one delivery task per enabled webhook subscription, so subscriptions make progress
    /// side by side (and their writes share the store's group commits): a task starts for a new
    /// subscription, restarts when its spec changes, and stops when it is disabled or deleted.
    /// Ends when the store is closed.
    pub async fn run(self) {
        let mut running: HashMap<String, Running> = HashMap::new();
        loop {
            match self.store.subscriptions().await {
                Ok(subscriptions) => {
                    let wanted: Vec<&SubscriptionRow> = subscriptions
                        .iter()
                        .filter(|s| s.disabled.is_none() && Stored::parse(&s.spec).webhook.is_some())
                        .collect();
                    running.retain(|id, r| wanted.iter().any(|s| &s.id == id && s.spec == r.spec));
                    for sub in wanted {
                        if !running.contains_key(&sub.id) {
                            let task = tokio::spawn(self.clone().deliver(sub.clone()));
                            running.insert(sub.id.clone(), Running { spec: sub.spec.clone(), task });
                        }
                    }
                }
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "webhook worker: the store is unavailable; retrying"),
            }
            tokio::time::sleep((self.config)().settings.delivery.tick).await;
        }
    }

    /// Delivers one subscription: creates its attempts from its feed, leases what is due and
    /// sends it, whenever messages are committed, a send finishes, or a tick passes (retries
    /// fall due).
    async fn deliver(self, sub: SubscriptionRow) {
        let stored = Stored::parse(&sub.spec);
        let Some(webhook) = &stored.webhook else { return };
        let endpoint = match Endpoint::build(webhook, &(self.config)().settings.delivery) {
            Ok(e) => Arc::new(e),
            Err(e) => {
                tracing::error!(subscription = %sub.id, error = %e, "cannot reach this endpoint; its messages wait");
                return;
            }
        };
        let wake = Arc::new(Notify::new());
        let done = self.record_outcomes(&sub, &endpoint, wake.clone());
        let mut commits = self.store.commits();
        let mut cursor = sub.cursor;
        // Whether the feed may hold entries without attempts: at the start, after a commit of
        // messages, at each tick (what another instance committed), and after a failed round.
        let mut new_entries = true;
        loop {
            commits.borrow_and_update();
            let failed = match self.round(&sub, &stored, &endpoint, &done, (&mut cursor, new_entries)).await {
                Ok(true) => false,
                // Changed, disabled or deleted: the supervisor starts what there is now.
                Ok(false) => return,
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::warn!(subscription = %sub.id, error = %e, "webhook worker: the store is unavailable; retrying");
                    true
                }
            };
            let tick = (self.config)().settings.delivery.tick;
            let woken_by_commit_or_tick = tokio::select! {
                changed = commits.changed() => if changed.is_err() { return } else { true },
                // Outcomes recorded: places are free, and the feed is as it was.
                _ = wake.notified() => false,
                _ = tokio::time::sleep(tick) => true,
            };
            new_entries = woken_by_commit_or_tick || failed;
        }
    }

    /// A task that records the outcomes the sends report, as many together as have arrived
    /// (up to [`OUTCOMES_TOGETHER`]), and, where the store can in the same step, leases as many
    /// due attempts and sends them in the places the recorded ones held (so a busy endpoint's
    /// turn makes one round trip to the writer, not two). Then it frees the places left and
    /// wakes the subscription's loop. It ends when every send reporting to it has.
    fn record_outcomes(
        &self,
        sub: &SubscriptionRow,
        endpoint: &Arc<Endpoint>,
        wake: Arc<Notify>,
    ) -> mpsc::UnboundedSender<Outcome> {
        let (report, mut reported) = mpsc::unbounded_channel::<Outcome>();
        // Weak: the recorder must not keep its own channel open, or it would never end.
        let sends = report.downgrade();
        let (worker, endpoint, id, spec) = (self.clone(), endpoint.clone(), sub.id.clone(), sub.spec.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(OUTCOMES_TOGETHER);
            while reported.recv_many(&mut batch, OUTCOMES_TOGETHER).await > 0 {
                let (done, mut permits): (Vec<_>, Vec<_>) = batch.drain(..).map(|(a, o, p)| ((a, o), p)).unzip();
                let n = done.len();
                let delivery = (worker.config)().settings.delivery.clone();
                let next = NextLease {
                    subscription: id.clone(),
                    spec: spec.clone(),
                    max: permits.len(),
                    now_ms: worker.clock.now_ms(),
                    lease_ms: delivery.lease.as_millis() as i64,
                };
                match worker.store.complete_and_lease(done, &next).await {
                    Ok(Some(leased)) => {
                        for attempt in leased {
                            // A place for each (`max` was their number). The subscription's loop
                            // keeps the channel open while it runs; had it stopped, its spec
                            // changed or it was disabled, and nothing was leased.
                            let (Some(permit), Some(report)) = (permits.pop(), sends.upgrade()) else { break };
                            worker.spawn_send(&endpoint, attempt, &delivery, permit, report);
                        }
                    }
                    Ok(None) => {}
                    // The leases run out and the attempts are due again: at least once.
                    Err(e) => tracing::warn!(error = %e, outcomes = n, "could not record webhook outcomes"),
                }
                drop(permits);
                wake.notify_one();
            }
        });
        report
    }

    /// One pass for a subscription: create attempts from its feed (when it may have new
    /// entries), lease what is due, send.
    /// False when the subscription is no longer the one this task was started for (its spec
    /// changed, it was disabled or deleted): nothing is created or sent under the old spec once
    /// the change is committed.
    async fn round(
        &self,
        sub: &SubscriptionRow,
        stored: &Stored,
        endpoint: &Arc<Endpoint>,
        done: &mpsc::UnboundedSender<Outcome>,
        (cursor, new_entries): (&mut i64, bool),
    ) -> Result<bool, StoreError> {
        let now = self.store.subscription(&sub.id).await?;
        if now.is_none_or(|s| s.spec != sub.spec || s.disabled.is_some()) {
            return Ok(false);
        }
        let config = (self.config)();
        let delivery = &config.settings.delivery;
        if new_entries {
            *cursor = self.fan_out(sub, *cursor, stored, &config.router).await?;
        }
        let free = endpoint.permits.available_permits();
        if free == 0 {
            return Ok(true);
        }
        let lease_ms = delivery.lease.as_millis() as i64;
        for attempt in self.store.lease(&sub.id, free, self.clock.now_ms(), lease_ms).await? {
            let Ok(permit) = endpoint.permits.clone().try_acquire_owned() else { break };
            self.spawn_send(endpoint, attempt, delivery, permit, done.clone());
        }
        Ok(true)
    }

    /// Sends a leased attempt in its place in the endpoint's concurrency, and reports how it
    /// ended to the subscription's recorder.
    fn spawn_send(
        &self,
        endpoint: &Arc<Endpoint>,
        attempt: Attempt,
        delivery: &Delivery,
        permit: OwnedSemaphorePermit,
        report: mpsc::UnboundedSender<Outcome>,
    ) {
        let (worker, endpoint, delivery) = (self.clone(), endpoint.clone(), delivery.clone());
        tokio::spawn(async move {
            let outcome = send(&endpoint, &attempt, &delivery, worker.clock.as_ref()).await;
            worker.metrics.count_webhook(outcome_name(&outcome));
            // The recorder is gone only when the runtime is shutting down: the lease runs out.
            let _ = report.send((attempt, outcome, permit));
        });
    }

    /// Creates the attempts for the feed entries after `cursor`; the new cursor.
    async fn fan_out(
        &self,
        sub: &SubscriptionRow,
        mut cursor: i64,
        stored: &Stored,
        router: &Router,
    ) -> Result<i64, StoreError> {
        loop {
            let page = self.store.feed(&sub.owner, cursor, FAN_OUT_PAGE).await?;
            let Some(last) = page.entries.last().map(|e| e.cursor) else { return Ok(cursor) };
            let full = page.entries.len() == FAN_OUT_PAGE;
            let matched = page
                .entries
                .into_iter()
                .filter_map(|e| {
                    // The whole event only for a filter that looks into it; otherwise its id alone.
                    let id = if stored.filter.reads_the_event() {
                        let event = serde_json::from_str::<Value>(&e.event).unwrap_or_default();
                        stored.filter.matches(&e.message_type, &event, router).then_some(())?;
                        event["id"].as_str().unwrap_or_default().to_string()
                    } else {
                        stored.filter.matches(&e.message_type, &Value::Null, router).then_some(())?;
                        serde_json::from_str::<EventId>(&e.event).map(|e| e.id.into_owned()).unwrap_or_default()
                    };
                    Some(NewAttempt {
                        seq: e.cursor,
                        thread: e.subject.unwrap_or_else(|| format!("message:{}", e.cursor)),
                        message_id: id,
                        message_type: e.message_type,
                        event: e.event,
                    })
                })
                .collect();
            self.store.enqueue(&sub.id, matched, last).await?;
            cursor = last;
            if !full {
                return Ok(cursor);
            }
        }
    }
}

/// An event's `id`, read without building the rest of the event.
#[derive(serde::Deserialize)]
struct EventId<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

/// POSTs one attempt and says how it ended.
async fn send(endpoint: &Endpoint, attempt: &Attempt, delivery: &Delivery, clock: &dyn Clock) -> AttemptOutcome {
    endpoint.limiter.until_ready().await;
    let now_ms = clock.now_ms();
    let timestamp = now_ms.div_euclid(1000);
    let signature = signature::sign(&endpoint.keys, &attempt.webhook_id, timestamp, attempt.event.as_bytes());
    let sent = endpoint
        .client
        .post(endpoint.url.clone())
        .header("content-type", "application/cloudevents+json; charset=utf-8")
        .header("webhook-id", &attempt.webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(attempt.event.clone())
        .send()
        .await;
    match sent {
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            retry(attempt.attempts, delivery, now_ms, None, format!("{what}: {}", causes(&e)), None)
        }
        Ok(response) => {
            let status = response.status().as_u16();
            match status {
                200..=299 => AttemptOutcome::Delivered { status },
                410 => AttemptOutcome::Gone { status },
                408 | 429 | 500..=599 => {
                    let after = retry_after(response.headers(), now_ms);
                    retry(attempt.attempts, delivery, now_ms, Some(status), format!("HTTP {status}"), after)
                }
                _ => {
                    let body = response.text().await.ok();
                    AttemptOutcome::Dead {
                        status: Some(status),
                        error: format!("the endpoint refused it with HTTP {status}"),
                        response: body,
                    }
                }
            }
        }
    }
}

/// The next try on the schedule, or dead when it is spent. `before` attempts were made before
/// this failed one, which ended at `now_ms`.
pub fn retry(
    before: u32,
    delivery: &Delivery,
    now_ms: i64,
    status: Option<u16>,
    error: String,
    retry_after: Option<Duration>,
) -> AttemptOutcome {
    let made = before as usize + 1;
    let Some(wait) = delivery.retry_schedule.get(made - 1) else {
        return AttemptOutcome::Dead {
            status,
            error: format!("{error}; gave up after {made} attempts"),
            response: None,
        };
    };
    let spread = delivery.jitter * (rand::random::<f64>() * 2.0 - 1.0);
    let jittered = wait.mul_f64((1.0 + spread).max(0.0));
    let wait = retry_after.map_or(jittered, |after| jittered.max(after.min(MAX_RETRY_AFTER)));
    AttemptOutcome::Retry { at_ms: now_ms + wait.as_millis() as i64, status, error }
}

/// `Retry-After` as seconds or an HTTP date (from `now_ms`).
fn retry_after(headers: &reqwest::header::HeaderMap, now_ms: i64) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    u64::try_from(at.timestamp_millis() - now_ms).ok().map(Duration::from_millis)
}

/// An error and its causes, innermost last (a TLS failure says which check failed).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn outcome_name(o: &AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Delivered { .. } => "delivered",
        AttemptOutcome::Retry { .. } => "retry",
        AttemptOutcome::Dead { .. } => "dead",
        AttemptOutcome::Gone { .. } => "gone",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_then_dead() {
        let d = Delivery {
            retry_schedule: vec![Duration::from_secs(5), Duration::from_secs(60)],
            jitter: 0.0,
            ..Delivery::default()
        };
        let now = chrono::Utc::now().timestamp_millis();
        match retry(0, &d, now, Some(503), "HTTP 503".into(), None) {
            AttemptOutcome::Retry { at_ms, .. } => assert!((at_ms - now - 5000).abs() < 1000),
            other => panic!("{other:?}"),
        }
        match retry(1, &d, now, None, "timed out".into(), Some(Duration::from_secs(120))) {
            AttemptOutcome::Retry { at_ms, .. } => {
                assert!((at_ms - now - 120_000).abs() < 1000, "Retry-After wins when longer")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(retry(2, &d, now, Some(500), "HTTP 500".into(), None), AttemptOutcome::Dead { .. }));
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let d = Delivery { retry_schedule: vec![Duration::from_secs(100)], jitter: 0.2, ..Delivery::default() };
        for _ in 0..200 {
            let now = chrono::Utc::now().timestamp_millis();
            let AttemptOutcome::Retry { at_ms, .. } = retry(0, &d, now, None, String::new(), None) else { panic!() };
            let wait = at_ms - now;
            assert!((79_000..=121_000).contains(&wait), "{wait}");
        }
    }

    #[test]
    fn reads_retry_after_in_both_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        let now = chrono::Utc::now().timestamp_millis();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        h.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        assert!(retry_after(&h, now).is_some_and(|d| (85..=91).contains(&d.as_secs())));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }
}

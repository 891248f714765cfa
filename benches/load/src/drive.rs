//! Drives an HTTP endpoint with generated messages: a fixed number of connections, each sending
//! one request after another (closed loop), or a fixed total rate (open loop: each request has
//! its scheduled time, and its latency counts from then, so a stalled server is not hidden by
//! requests that were never sent).

use std::time::{Duration, Instant};

use super::messages::{Generator, Message, Mix};
use super::report::{Recorder, Report};

/// Distinct messages prepared per connection; each send gives one a new id.
const POOL: usize = 64;

#[derive(Clone, Debug)]
pub struct Plan {
    /// The base URLs (several instances of one gateway); messages go to `{url}/v1/messages`,
    /// the connections spread over them in turn.
    pub urls: Vec<String>,
    pub connections: usize,
    /// Messages per second in total; `None`: as fast as the connections go.
    pub rate: Option<f64>,
    /// Sent before measuring, not counted.
    pub warmup: Duration,
    pub duration: Duration,
    pub mix: Mix,
    /// Goes into every message id (keeps runs apart).
    pub run: String,
    /// Keep the receipts of the measured messages (for the delivery side).
    pub receipts: bool,
}

/// A measured message the gateway accepted: when it was sent (its scheduled time in an open
/// loop) and to whom the gateway said it goes.
#[derive(Clone, Debug)]
pub struct Sent {
    pub id: String,
    pub at: Instant,
    pub recipients: Vec<String>,
}

/// What a run measured.
pub struct Run {
    pub report: Report,
    /// With `Plan::receipts`: every measured message accepted.
    pub sent: Vec<Sent>,
    /// When the measured part began and ended.
    pub measured: (Instant, Instant),
}

#[derive(serde::Deserialize)]
struct Receipt {
    id: String,
    #[serde(default)]
    recipients: Vec<Addressee>,
}

#[derive(serde::Deserialize)]
struct Addressee {
    id: String,
}

/// Runs `plan` and reports it under `name`.
pub async fn run(name: &str, plan: &Plan) -> Result<Run, String> {
    if plan.urls.is_empty() {
        return Err("no URL to send to".into());
    }
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let mut tasks = Vec::with_capacity(plan.connections);
    for i in 0..plan.connections {
        let endpoint = format!("{}/v1/messages", plan.urls[i % plan.urls.len()].trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("the HTTP client: {e}"))?;
        let mut generator = Generator::new(plan.mix.clone(), &format!("{}-{i}", plan.run), i as u64);
        let pool: Vec<Message> = (0..POOL).map(|_| generator.next_message()).collect();
        // Open loop: this connection's share of the rate, its sends spread over the interval.
        let interval = plan.rate.map(|r| Duration::from_secs_f64(plan.connections as f64 / r.max(0.001)));
        let offset = interval.map(|d| d.mul_f64(i as f64 / plan.connections as f64)).unwrap_or_default();
        let keep = plan.receipts;
        tasks.push(tokio::spawn(async move {
            let mut recorder = Recorder::default();
            let mut sent = Vec::new();
            let mut last = measure_from;
            let mut n: u64 = 0;
            tokio::time::sleep_until((start + offset).into()).await;
            loop {
                let scheduled = match interval {
                    Some(d) => {
                        let at = start + offset + d.mul_f64(n as f64);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => Instant::now(),
                };
                if scheduled >= end {
                    break;
                }
                let message = &pool[(n as usize) % POOL];
                n += 1;
                let (status, receipt) = send(&client, &endpoint, message, n, keep).await;
                if scheduled >= measure_from {
                    recorder.record(&status, scheduled.elapsed());
                    last = last.max(Instant::now());
                    if let Some(r) = receipt {
                        let recipients = r.recipients.into_iter().map(|a| a.id).collect();
                        sent.push(Sent { id: r.id, at: scheduled, recipients });
                    }
                }
            }
            (recorder, sent, last)
        }));
    }
    let mut all = Recorder::default();
    let mut sent = Vec::new();
    let mut last = end;
    for t in tasks {
        let (recorder, mut more, finished) = t.await.map_err(|e| format!("a connection's task failed: {e}"))?;
        all.merge(&recorder);
        sent.append(&mut more);
        last = last.max(finished);
    }
    // A gateway that falls behind an open loop takes longer than planned: the rate is what it
    // answered over the time it took.
    let took = last.saturating_duration_since(measure_from).max(plan.duration);
    Ok(Run { report: all.report(name, took, "202"), sent, measured: (measure_from, end) })
}

/// Sends one message: the answer's status (or the error's kind), and with `keep` the receipt of
/// a 202.
async fn send(
    client: &reqwest::Client,
    endpoint: &str,
    message: &Message,
    n: u64,
    keep: bool,
) -> (String, Option<Receipt>) {
    let answer = client
        .post(endpoint)
        .header("content-type", "application/json")
        .bearer_auth(&message.token)
        .body(message.body_with_counter(n))
        .send()
        .await;
    match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the answer whole, so the connection is reused.
            let body = response.bytes().await.unwrap_or_default();
            let receipt = (keep && status == 202).then(|| serde_json::from_slice(&body).ok()).flatten();
            (status.to_string(), receipt)
        }
        Err(e) if e.is_connect() => ("connect".into(), None),
        Err(e) if e.is_timeout() => ("timeout".into(), None),
        Err(_) => ("error".into(), None),
    }
}

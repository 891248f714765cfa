//! The delivery side of a load run: webhook subscriptions made through the gateway's API for the
//! run (and deleted after it), SSE readers, and what reached them: deliveries per second, the
//! latency from a message's POST to its arrival, and what is missing or came twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::drive::Sent;
use super::report::{Latency, Recorder};

/// An agency whose feed is read during the run, and the token it reads with.
#[derive(Clone, Debug)]
pub struct Reader {
    pub owner: String,
    pub token: String,
}

/// `OWNER=TOKEN`, e.g. `procuratorate:330100=demo-procuratorate-330100`.
pub fn reader(text: &str) -> Result<Reader, String> {
    match text.split_once('=') {
        Some((owner, token)) if owner.contains(':') && !token.is_empty() => {
            Ok(Reader { owner: owner.to_string(), token: token.to_string() })
        }
        _ => Err(format!("`{text}`: OWNER=TOKEN was expected, e.g. procuratorate:330100=demo-procuratorate-330100")),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default()
}

async fn call(request: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() { Ok(body) } else { Err(format!("{what}: HTTP {status}: {body}")) }
}

/// Subscribes `reader`'s feed to the webhook at `hook` (from the feed's head on); the id.
pub async fn subscribe(
    url: &str,
    reader: &Reader,
    id: &str,
    hook: &str,
    secret: &str,
    concurrency: u32,
) -> Result<String, String> {
    let spec = json!({"id": id, "webhook": {"url": hook, "secrets": [secret], "concurrency": concurrency,
                     "rate_per_second": 1_000_000}});
    let made = call(
        client().post(format!("{url}/v1/subscriptions")).bearer_auth(&reader.token).json(&spec),
        &format!("subscribing {}", reader.owner),
    )
    .await?;
    Ok(made["id"].as_str().unwrap_or(id).to_string())
}

pub async fn unsubscribe(url: &str, reader: &Reader, id: &str) -> Result<(), String> {
    call(client().delete(format!("{url}/v1/subscriptions/{id}")).bearer_auth(&reader.token), "unsubscribing").await?;
    Ok(())
}

/// The head of `reader`'s feed: where a reader that wants only what comes next starts (read
/// through a cursor subscription made and deleted for it).
pub async fn head(url: &str, reader: &Reader, id: &str) -> Result<i64, String> {
    let made = call(
        client()
            .post(format!("{url}/v1/subscriptions"))
            .bearer_auth(&reader.token)
            .json(&json!({"id": id, "cursor": true})),
        &format!("reading the head of {}", reader.owner),
    )
    .await?;
    unsubscribe(url, reader, id).await?;
    made["cursor"].as_str().and_then(|c| c.parse().ok()).ok_or_else(|| format!("no cursor in {made}"))
}

/// What reached one kind of reader.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryReport {
    pub name: String,
    /// Measured messages addressed to the subscribed feeds (one per message and feed).
    pub expected: u64,
    pub arrived: u64,
    pub missing: u64,
    /// Arrivals of a message at a feed's reader after the first.
    pub duplicates: u64,
    /// Deliveries of any message (warm-up ones too) that arrived while the load ran, per second.
    pub per_second_under_load: f64,
    /// Expected deliveries per second from the first measured POST to the last arrival.
    pub per_second_end_to_end: f64,
    /// From the end of the load until the last expected delivery arrived.
    pub drain_seconds: f64,
    /// Deliveries per second after the load ended, while the backlog drained (none when
    /// nothing was left): delivery alone, without ingest beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second_draining: Option<f64>,
    /// From a message's POST (its scheduled time) to its arrival.
    pub latency_ms: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_signatures: Option<u64>,
}

impl std::fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency_ms;
        write!(
            f,
            "{:<10} {:>9.0}/s under load, {:.0}/s end to end{}  POST→arrival p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  [{} of {} arrived, {} missing, {} twice, drained {:.2} s after the load",
            self.name,
            self.per_second_under_load,
            self.per_second_end_to_end,
            self.per_second_draining.map(|d| format!(", {d:.0}/s draining")).unwrap_or_default(),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            self.arrived,
            self.expected,
            self.missing,
            self.duplicates,
            self.drain_seconds
        )?;
        if let Some(bad) = self.bad_signatures {
            write!(f, ", {bad} bad signatures")?;
        }
        write!(f, "]")
    }
}

/// Matches what arrived with what was sent. `readers` are (reader, the feed it reads): several
/// readers may read one feed. `arrivals` are (reader, message id, when).
pub fn report(
    name: &str,
    sent: &[Sent],
    readers: &[(String, String)],
    arrivals: &[(String, String, Instant)],
    measured: (Instant, Instant),
) -> DeliveryReport {
    let mut expected: HashMap<(&str, &str), Instant> = HashMap::new();
    for s in sent {
        for (reader, feed) in readers {
            if s.recipients.contains(feed) {
                expected.insert((reader.as_str(), s.id.as_str()), s.at);
            }
        }
    }
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let (mut latency, mut duplicates, mut last) = (Recorder::default(), 0u64, None::<Instant>);
    for (owner, id, at) in arrivals {
        let key = (owner.as_str(), id.as_str());
        let Some(sent_at) = expected.get(&key) else { continue };
        if !seen.insert(key) {
            duplicates += 1;
            continue;
        }
        latency.record("ok", at.saturating_duration_since(*sent_at));
        last = Some(last.map_or(*at, |l| l.max(*at)));
    }
    let (from, to) = measured;
    let under_load = arrivals.iter().filter(|(_, _, at)| *at >= from && *at < to).count();
    let after = arrivals.iter().filter(|(_, _, at)| *at >= to).count();
    let drained = last.map_or(Duration::ZERO, |l| l.saturating_duration_since(to));
    let arrived = seen.len() as u64;
    let first_sent = sent.iter().map(|s| s.at).min().unwrap_or(from);
    let span = last.map_or(Duration::ZERO, |l| l.saturating_duration_since(first_sent));
    let mut r = latency.report(name, span, "ok");
    r.per_second = arrived as f64 / span.as_secs_f64().max(f64::MIN_POSITIVE);
    DeliveryReport {
        name: name.to_string(),
        expected: expected.len() as u64,
        arrived,
        missing: expected.len() as u64 - arrived,
        duplicates,
        per_second_under_load: under_load as f64
            / to.saturating_duration_since(from).as_secs_f64().max(f64::MIN_POSITIVE),
        per_second_end_to_end: if arrived == 0 { 0.0 } else { r.per_second },
        drain_seconds: drained.as_secs_f64(),
        per_second_draining: (drained >= Duration::from_millis(500)).then(|| after as f64 / drained.as_secs_f64()),
        latency_ms: r.latency_ms,
        bad_signatures: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_arrivals_with_what_was_sent_to_the_readers() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let sent = vec![
            Sent { id: "a".into(), at: ms(0), recipients: vec!["p:1".into(), "q:1".into()] },
            Sent { id: "b".into(), at: ms(10), recipients: vec!["p:1".into()] },
            Sent { id: "c".into(), at: ms(20), recipients: vec!["z:9".into()] },
        ];
        let arrivals = vec![
            ("0".to_string(), "a".to_string(), ms(4)),
            ("1".to_string(), "a".to_string(), ms(6)),
            ("0".to_string(), "a".to_string(), ms(7)),
            ("0".to_string(), "warm-up".to_string(), ms(1)),
        ];
        let readers = [("0".to_string(), "p:1".to_string()), ("1".to_string(), "q:1".to_string())];
        let r = report("webhooks", &sent, &readers, &arrivals, (ms(0), ms(100)));
        assert_eq!((r.expected, r.arrived, r.missing, r.duplicates), (3, 2, 1, 1));
        assert!((r.latency_ms.p50 - 4.0).abs() < 0.1 && (r.latency_ms.max - 6.0).abs() < 0.1, "{:?}", r.latency_ms);
        assert!((r.per_second_under_load - 40.0).abs() < 0.1, "all four arrived within the 100 ms");
        assert!((r.per_second_end_to_end - 2.0 / 0.006).abs() < 1.0, "{}", r.per_second_end_to_end);
        assert_eq!((r.drain_seconds, r.per_second_draining), (0.0, None));
    }
}

//! What one load phase measured: throughput, latency percentiles and answers by status, as
//! text for people and JSON for scripts.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies (microseconds, up to an hour at three significant digits) and answers of one phase.
pub struct Recorder {
    latency: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
        }
    }
}

impl Recorder {
    /// One answer: its status (or the error's kind, e.g. `connect`) and how long it took.
    pub fn record(&mut self, status: &str, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).clamp(1, 3_600_000_000);
        let _ = self.latency.record(micros);
        *self.statuses.entry(status.to_string()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.latency.add(&other.latency);
        for (status, n) in &other.statuses {
            *self.statuses.entry(status.clone()).or_default() += n;
        }
    }

    /// The report of a phase that lasted `elapsed`; `ok` names the status that counts as done.
    pub fn report(&self, name: &str, elapsed: Duration, ok: &str) -> Report {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let done = self.statuses.get(ok).copied().unwrap_or(0);
        let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Report {
            name: name.to_string(),
            seconds,
            requests: self.latency.len(),
            done,
            per_second: done as f64 / seconds,
            latency_ms: Latency { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), max: self.latency.max() as f64 / 1000.0 },
            statuses: self.statuses.clone(),
            ratio_to_ceiling: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub name: String,
    pub seconds: f64,
    pub requests: u64,
    /// Answers with the expected status (202 for ingest).
    pub done: u64,
    pub per_second: f64,
    pub latency_ms: Latency,
    pub statuses: BTreeMap<String, u64>,
    /// `per_second` over the ceiling's, when the ceiling was measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_ceiling: Option<f64>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<10} {:>9.0}/s", self.name, self.per_second)?;
        if let Some(r) = self.ratio_to_ceiling {
            write!(f, " ({:>5.1}% of the ceiling)", r * 100.0)?;
        }
        let l = &self.latency_ms;
        write!(f, "  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ", l.p50, l.p90, l.p99, l.max)?;
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        write!(f, "[{}]", statuses.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_throughput_and_statuses() {
        let mut a = Recorder::default();
        for ms in 1..=100 {
            a.record("202", Duration::from_millis(ms));
        }
        let mut b = Recorder::default();
        b.record("429", Duration::from_millis(500));
        a.merge(&b);
        let r = a.report("gateway", Duration::from_secs(2), "202");
        assert_eq!((r.requests, r.done), (101, 100));
        assert_eq!(r.per_second, 50.0);
        assert!((r.latency_ms.p50 - 51.0).abs() < 0.5, "{:?}", r.latency_ms);
        assert!((r.latency_ms.p99 - 100.0).abs() < 0.5, "{:?}", r.latency_ms);
        assert!((r.latency_ms.max - 500.0).abs() < 1.0);
        assert_eq!(r.statuses["429"], 1);
        assert!(r.to_string().contains("202: 100, 429: 1"), "{r}");
    }
}

//! Time, injectable: the gateway reads the clock through [`Clock`], so that tests move it instead
//! of sleeping through real deadlines. All deadlines are Beijing time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;

    /// Now, in Beijing time.
    fn now(&self) -> DateTime<FixedOffset> {
        beijing().timestamp_millis_opt(self.now_ms()).single().unwrap_or_else(|| beijing().timestamp_nanos(0))
    }
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that stands still until moved (tests).
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(ms)))
    }

    /// Starts at the system's now.
    pub fn now_at_start() -> ManualClock {
        Self::at(SystemClock.now_ms())
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Beijing time (UTC+8, no daylight saving): every time the gateway writes or reads without an
/// offset.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is within ±24 h")
}

/// RFC 3339 with milliseconds, Beijing time.
pub fn format_ms(ms: i64) -> String {
    beijing()
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false))
        .unwrap_or_default()
}

/// A time given as `YYYY-MM-DD` (the start of that day in Beijing) or RFC 3339, as unix ms.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| beijing().from_local_datetime(&d).single())
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| format!("`{text}` is not a time: YYYY-MM-DD (Beijing) or RFC 3339"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_beijing_days_or_rfc3339() {
        assert_eq!(format_ms(parse_time("2026-11-24").unwrap()), "2026-11-24T00:00:00.000+08:00");
        assert!(parse_time("2026-11-24T10:00:00Z").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}

//! Time, injectable: the gateway reads the clock through [`Clock`], so that tests move it instead
//! of sleeping through real deadlines. All deadlines are Beijing time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, FixedOffset, TimeZone};

use crate::normalize::convert::beijing;

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

/// RFC 3339 with milliseconds, Beijing time.
pub fn format_ms(ms: i64) -> String {
    beijing()
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false))
        .unwrap_or_default()
}

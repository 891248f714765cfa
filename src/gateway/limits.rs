//! Per-agency rate limits (GCRA, with governor). Each agency has its own quota from
//! `agencies.yaml` or the default in `xietong.yaml`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::Agencies;
use crate::model::AgencyId;

pub struct RateLimits {
    limiters: HashMap<AgencyId, (Quota, Arc<DefaultDirectRateLimiter>)>,
    clock: DefaultClock,
}

impl RateLimits {
    /// The limits of `agencies`. An agency whose quota is the same as in `previous` keeps its
    /// limiter, so a configuration reload does not refill anyone's bucket.
    pub fn new(agencies: &Agencies, previous: Option<&RateLimits>) -> Self {
        let limiters = agencies
            .iter()
            .filter_map(|a| {
                let per_second = NonZeroU32::new(a.rate_limit.per_second)?;
                let burst = NonZeroU32::new(a.rate_limit.burst)?;
                let quota = Quota::per_second(per_second).allow_burst(burst);
                let kept =
                    previous.and_then(|p| p.limiters.get(&a.id)).filter(|(q, _)| *q == quota).map(|(_, l)| l.clone());
                Some((a.id, (quota, kept.unwrap_or_else(|| Arc::new(RateLimiter::direct(quota))))))
            })
            .collect();
        RateLimits { limiters, clock: DefaultClock::default() }
    }

    /// `Err(wait)` when the agency must wait before its next message is accepted.
    pub fn check(&self, agency: &AgencyId) -> Result<(), Duration> {
        match self.limiters.get(agency) {
            None => Ok(()),
            Some((_, limiter)) => limiter.check().map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }
}

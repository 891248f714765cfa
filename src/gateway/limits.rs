//! Per-sender rate limits (GCRA, with governor). Each agency and hub has its own quota from
//! `agencies.yaml` or the default in `xietong.yaml`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::Agencies;
use crate::config::settings::RateLimit;
use crate::model::Sender;

pub struct RateLimits {
    limiters: HashMap<Sender, (Quota, Arc<DefaultDirectRateLimiter>)>,
    clock: DefaultClock,
}

impl RateLimits {
    /// The limits of the agencies and hubs of `agencies`. A sender whose quota is the same as
    /// in `previous` keeps its limiter, so a configuration reload does not refill anyone's
    /// bucket.
    pub fn new(agencies: &Agencies, previous: Option<&RateLimits>) -> Self {
        let senders = agencies
            .iter()
            .map(|a| (Sender::Agency(a.id), a.rate_limit))
            .chain(agencies.hub_list().map(|h| (Sender::Hub(h.key.clone()), h.rate_limit)));
        let limiters = senders
            .filter_map(|(sender, limit): (Sender, RateLimit)| {
                let per_second = NonZeroU32::new(limit.per_second)?;
                let burst = NonZeroU32::new(limit.burst)?;
                let quota = Quota::per_second(per_second).allow_burst(burst);
                let kept =
                    previous.and_then(|p| p.limiters.get(&sender)).filter(|(q, _)| *q == quota).map(|(_, l)| l.clone());
                Some((sender, (quota, kept.unwrap_or_else(|| Arc::new(RateLimiter::direct(quota))))))
            })
            .collect();
        RateLimits { limiters, clock: DefaultClock::default() }
    }

    /// `Err(wait)` when the sender must wait before its next message is accepted.
    pub fn check(&self, sender: &Sender) -> Result<(), Duration> {
        match self.limiters.get(sender) {
            None => Ok(()),
            Some((_, limiter)) => limiter.check().map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }
}

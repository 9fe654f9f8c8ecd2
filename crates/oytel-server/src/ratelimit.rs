//! The in-process limits: the burst limit per partner and environment, and failed
//! authentications per client address. Both use `governor` (GCRA); idle keys are evicted by
//! [`RateLimits::sweep`], which the server runs every minute, so memory stays bounded.
//!
//! The hourly quotas are counted elsewhere (see `oytel_core::limits`), exactly across
//! instances. The burst limit is per instance: behind a load balancer spreading a partner's
//! requests over N instances, a partner may burst up to N times the limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use oytel_types::Environment;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;
/// Limiters of partners' bursts, one per distinct rate.
type BurstLimiters = HashMap<u32, Arc<Keyed<(String, Environment)>>>;

/// Failed authentications allowed per client address per minute, by default.
pub const AUTH_FAILURES_PER_MINUTE: u32 = 20;

/// The in-process limiters of one server.
pub struct RateLimits {
    /// One keyed limiter per distinct burst rate (partners with the same rate share it).
    burst: Mutex<BurstLimiters>,
    auth_failures: Keyed<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(AUTH_FAILURES_PER_MINUTE)
    }
}

impl RateLimits {
    /// Limiters allowing `auth_failures_per_minute` failed authentications per address.
    pub fn new(auth_failures_per_minute: u32) -> RateLimits {
        let per_minute = NonZeroU32::new(auth_failures_per_minute).unwrap_or(NonZeroU32::MIN);
        RateLimits {
            burst: Mutex::new(HashMap::new()),
            auth_failures: RateLimiter::keyed(Quota::per_minute(per_minute)).with_middleware(),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }
}

/// A request over a limit: how long until one may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// The wait.
    pub retry_after: Duration,
}

impl RateLimits {
    /// Takes one request of a partner's burst allowance; `Ok` holds the requests left.
    pub fn burst(
        &self,
        partner_id: &str,
        environment: Environment,
        per_second: u32,
    ) -> Result<u32, Exceeded> {
        let Some(rate) = NonZeroU32::new(per_second) else {
            return Err(Exceeded {
                retry_after: Duration::from_secs(1),
            });
        };
        let limiter = match self.burst.lock() {
            Ok(mut map) => map
                .entry(per_second)
                .or_insert_with(|| {
                    Arc::new(RateLimiter::keyed(Quota::per_second(rate)).with_middleware())
                })
                .clone(),
            Err(_) => return Ok(per_second),
        };
        match limiter.check_key(&(partner_id.to_owned(), environment)) {
            Ok(state) => Ok(state.remaining_burst_capacity()),
            Err(not_until) => Err(Exceeded {
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
        }
    }

    /// Whether `address` is refused for failing to authenticate too often, and for how long.
    pub fn auth_blocked(&self, address: IpAddr) -> Option<Exceeded> {
        let blocked = self.blocked.lock().ok()?;
        let until = *blocked.get(&address)?;
        let now = Instant::now();
        (until > now).then(|| Exceeded {
            retry_after: until - now,
        })
    }

    /// Counts a failed authentication from `address`; past the limit the address is refused
    /// until its allowance recovers.
    pub fn auth_failed(&self, address: IpAddr) {
        if let Err(not_until) = self.auth_failures.check_key(&address) {
            let wait = not_until.wait_time_from(self.clock.now());
            if let Ok(mut blocked) = self.blocked.lock() {
                blocked.insert(address, Instant::now() + wait);
            }
        }
    }

    /// Forgets idle keys.
    pub fn sweep(&self) {
        if let Ok(map) = self.burst.lock() {
            for limiter in map.values() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        self.auth_failures.retain_recent();
        self.auth_failures.shrink_to_fit();
        if let Ok(mut blocked) = self.blocked.lock() {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
    }

    /// How many keys are tracked (for tests of eviction).
    pub fn tracked(&self) -> usize {
        let burst: usize = self
            .burst
            .lock()
            .map(|m| m.values().map(|l| l.len()).sum())
            .unwrap_or_default();
        burst + self.auth_failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_request_in_a_second_is_refused() {
        let limits = RateLimits::default();
        for i in 0..10 {
            assert_eq!(limits.burst("ptn_1", Environment::Sandbox, 10), Ok(9 - i));
        }
        let refused = limits.burst("ptn_1", Environment::Sandbox, 10).unwrap_err();
        assert!(refused.retry_after <= Duration::from_millis(100));
        assert!(
            limits.burst("ptn_1", Environment::Production, 10).is_ok(),
            "per environment"
        );
        assert!(
            limits.burst("ptn_2", Environment::Sandbox, 10).is_ok(),
            "per partner"
        );
        assert!(
            limits.burst("ptn_1", Environment::Sandbox, 1000).is_ok(),
            "a raised rate is its own"
        );
        assert!(limits.burst("ptn_3", Environment::Sandbox, 0).is_err());
    }

    #[test]
    fn idle_keys_are_evicted() {
        let limits = RateLimits::default();
        for i in 0..500 {
            limits
                .burst(&format!("ptn_{i}"), Environment::Sandbox, 1000)
                .unwrap();
        }
        assert_eq!(limits.tracked(), 500);
        // At 1000 per second one used request is replenished within a millisecond.
        std::thread::sleep(Duration::from_millis(30));
        limits.sweep();
        assert_eq!(limits.tracked(), 0, "idle partners are forgotten");
    }

    #[test]
    fn addresses_failing_too_often_are_blocked() {
        let limits = RateLimits::default();
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..AUTH_FAILURES_PER_MINUTE {
            assert!(limits.auth_blocked(address).is_none());
            limits.auth_failed(address);
        }
        assert!(
            limits.auth_blocked(address).is_none(),
            "the limit itself is allowed"
        );
        limits.auth_failed(address);
        let blocked = limits.auth_blocked(address).unwrap();
        assert!(
            blocked.retry_after > Duration::ZERO && blocked.retry_after <= Duration::from_secs(3)
        );
        assert!(limits.auth_blocked("192.0.2.8".parse().unwrap()).is_none());
        assert!(limits.tracked() >= 1);
        limits.sweep();
    }
}

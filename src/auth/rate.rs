//! Per-principal rate limits: a token bucket per caller, refilled at the
//! configured rate up to the configured burst, so one client cannot starve
//! the others. A refused call learns how long until a token is back.
//!
//! Memory is bounded: at most [`MAX_TRACKED_PRINCIPALS`] buckets. When the
//! table is full, buckets that have refilled completely (they hold nothing a
//! fresh bucket would not) are dropped; if every bucket is still refilling,
//! a new principal is served untracked rather than refused, since refusing
//! would let busy callers lock out everyone else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most principals with a bucket at once (each costs about 100 bytes).
pub const MAX_TRACKED_PRINCIPALS: usize = 100_000;

/// A rate and a burst; a rate of 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per principal.
    pub per_second: f64,
    /// Requests a principal may make at once after being idle.
    pub burst: u32,
}

impl RateLimit {
    /// Whether this limit limits anything.
    pub fn is_unlimited(&self) -> bool {
        !(self.per_second > 0.0 && self.per_second.is_finite())
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every principal.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter enforcing `limit` for each principal separately.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limit enforced.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token for `principal` at `now`.
    ///
    /// # Errors
    /// The time until the next token, when the bucket is empty.
    pub fn take(&self, principal: &str, now: Instant) -> Result<(), Duration> {
        if self.limit.is_unlimited() {
            return Ok(());
        }
        let rate = self.limit.per_second;
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(principal) {
            if buckets.len() >= MAX_TRACKED_PRINCIPALS {
                let full_after = Duration::from_secs_f64(burst / rate);
                buckets.retain(|_, b| now.saturating_duration_since(b.updated) < full_after);
                if buckets.len() >= MAX_TRACKED_PRINCIPALS {
                    return Ok(());
                }
            }
            buckets.insert(
                principal.to_string(),
                Bucket {
                    tokens: burst,
                    updated: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(principal) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_served_then_refused_until_tokens_come_back() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 5,
        });
        let start = Instant::now();
        for _ in 0..5 {
            assert!(limiter.take("a", start).is_ok());
        }
        let wait = limiter.take("a", start).expect_err("the sixth is refused");
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(
            limiter.take("b", start).is_ok(),
            "another principal is not affected"
        );
        assert!(
            limiter
                .take("a", start + Duration::from_millis(100))
                .is_ok()
        );
        assert!(
            limiter
                .take("a", start + Duration::from_millis(100))
                .is_err()
        );
        // Idle for long: back to a full burst, no more.
        let later = start + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(limiter.take("a", later).is_ok());
        }
        assert!(limiter.take("a", later).is_err());
    }

    #[test]
    fn a_zero_rate_is_unlimited() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.0,
            burst: 0,
        });
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.take("a", now).is_ok()));
    }
}

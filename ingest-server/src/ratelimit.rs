//! Token buckets for per-key rate limits, charged per record.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// A token bucket refilled continuously at `rate` tokens per second up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> TokenBucket {
        TokenBucket {
            rate: limit.records_per_second,
            burst: limit.burst,
            state: Mutex::new((limit.burst, Instant::now())),
        }
    }

    /// Takes `n` tokens, or none and says how long until `n` would be available.
    /// A request larger than the burst waits for a full bucket and may then go into debt,
    /// so a batch bigger than the burst is slowed, not refused forever.
    pub fn take(&self, n: f64) -> Result<(), Duration> {
        self.take_at(n, Instant::now())
    }

    fn take_at(&self, n: f64, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *state;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        let needed = n.min(self.burst);
        if *tokens >= needed {
            *tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((needed - *tokens) / self.rate))
        }
    }

    /// Takes `n` tokens whatever is left, for work already done (a refused request): the
    /// bucket may go into debt, and the key's next request waits until it is paid off.
    pub fn charge(&self, n: f64) {
        self.charge_at(n, Instant::now());
    }

    fn charge_at(&self, n: f64, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *state;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst) - n;
        *last = now;
    }

    /// Whether any request could pass now: a cheap check before reading a body.
    pub fn is_empty(&self) -> Option<Duration> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = *state;
        let tokens = tokens + last.elapsed().as_secs_f64() * self.rate;
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_burst_and_refills_over_time() {
        let b = TokenBucket::new(RateLimit {
            records_per_second: 10.0,
            burst: 20.0,
        });
        let t0 = Instant::now();
        assert!(b.take_at(15.0, t0).is_ok());
        let wait = b.take_at(10.0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(b.take_at(10.0, t0 + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn work_already_done_is_charged_into_debt() {
        let b = TokenBucket::new(RateLimit {
            records_per_second: 10.0,
            burst: 20.0,
        });
        let t0 = Instant::now();
        b.charge_at(25.0, t0);
        let wait = b.take_at(1.0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.6).abs() < 1e-6, "{wait:?}");
        assert!(b.take_at(1.0, t0 + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn oversized_request_waits_for_a_full_bucket_then_goes_into_debt() {
        let b = TokenBucket::new(RateLimit {
            records_per_second: 10.0,
            burst: 20.0,
        });
        let t0 = Instant::now();
        assert!(b.take_at(50.0, t0).is_ok());
        let wait = b.take_at(1.0, t0).unwrap_err();
        assert!(wait >= Duration::from_secs(3), "{wait:?}");
    }
}

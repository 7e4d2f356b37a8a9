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
            Err(wait(needed - *tokens, self.rate))
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
        (tokens < 1.0).then(|| wait(1.0 - tokens, self.rate))
    }
}

/// The longest wait a bucket asks for (a client then asks again).
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// How long `missing` tokens take to refill at `rate` per second, at most [`MAX_WAIT`]:
/// `Duration::from_secs_f64` panics on a value it cannot hold (a tiny rate, a huge debt).
fn wait(missing: f64, rate: f64) -> Duration {
    Duration::try_from_secs_f64(missing / rate).map_or(MAX_WAIT, |d| d.min(MAX_WAIT))
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

    /// Guards a panic on the first 429: `from_secs_f64` of a wait that a tiny rate made
    /// too long for a `Duration`.
    #[test]
    fn a_wait_too_long_to_say_is_capped_not_a_panic() {
        let b = TokenBucket::new(RateLimit {
            records_per_second: 1e-300,
            burst: 1.0,
        });
        let t0 = Instant::now();
        assert!(b.take_at(1.0, t0).is_ok());
        assert_eq!(b.take_at(1.0, t0).unwrap_err(), MAX_WAIT);
        assert_eq!(b.is_empty(), Some(MAX_WAIT));
        assert_eq!(wait(1.0, 0.0), MAX_WAIT);
        assert_eq!(wait(f64::NAN, 1.0), MAX_WAIT);
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

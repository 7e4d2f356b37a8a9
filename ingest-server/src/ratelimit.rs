//! Token buckets for rate limits, charged per record: one per key, and for public keys one
//! per key and client address as well, kept in a bounded LRU ([`ClientBuckets`]).

use std::hash::RandomState;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashlink::LruCache;

use crate::config::RateLimit;

/// A bucket's tokens at an instant; the arithmetic both kinds of bucket share.
#[derive(Debug, Clone, Copy)]
struct Level {
    tokens: f64,
    last: Instant,
}

impl Level {
    fn full(limit: RateLimit, now: Instant) -> Level {
        Level {
            tokens: limit.burst,
            last: now,
        }
    }

    /// Refills for the time since the last change, up to the burst.
    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.records_per_second).min(limit.burst);
        self.last = now;
    }

    fn take(&mut self, limit: RateLimit, n: f64, now: Instant) -> Result<(), Duration> {
        self.refill(limit, now);
        let needed = n.min(limit.burst);
        if self.tokens >= needed {
            self.tokens -= n;
            Ok(())
        } else {
            Err(wait(needed - self.tokens, limit.records_per_second))
        }
    }

    fn charge(&mut self, limit: RateLimit, n: f64, now: Instant) {
        self.refill(limit, now);
        self.tokens -= n;
    }

    fn empty(&self, limit: RateLimit, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = self.tokens + elapsed * limit.records_per_second;
        (tokens < 1.0).then(|| wait(1.0 - tokens, limit.records_per_second))
    }
}

/// A token bucket refilled continuously at `rate` tokens per second up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    state: Mutex<Level>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> TokenBucket {
        TokenBucket {
            limit,
            state: Mutex::new(Level::full(limit, Instant::now())),
        }
    }

    /// The rate and burst it refills at.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes `n` tokens, or none and says how long until `n` would be available.
    /// A request larger than the burst waits for a full bucket and may then go into debt,
    /// so a batch bigger than the burst is slowed, not refused forever.
    pub fn take(&self, n: f64) -> Result<(), Duration> {
        self.take_at(n, Instant::now())
    }

    fn take_at(&self, n: f64, now: Instant) -> Result<(), Duration> {
        let mut level = self.state.lock().unwrap_or_else(|p| p.into_inner());
        level.take(self.limit, n, now)
    }

    /// Takes `n` tokens whatever is left, for work already done (a refused request): the
    /// bucket may go into debt, and the key's next request waits until it is paid off.
    pub fn charge(&self, n: f64) {
        self.charge_at(n, Instant::now());
    }

    fn charge_at(&self, n: f64, now: Instant) {
        let mut level = self.state.lock().unwrap_or_else(|p| p.into_inner());
        level.charge(self.limit, n, now);
    }

    /// Whether any request could pass now: a cheap check before reading a body.
    pub fn is_empty(&self) -> Option<Duration> {
        let level = self.state.lock().unwrap_or_else(|p| p.into_inner());
        level.empty(self.limit, Instant::now())
    }
}

/// One token bucket per client address, for one public key: a browser that floods cannot
/// drain the bucket every other browser holding the same (published) key shares.
///
/// At most `capacity` addresses are remembered, least recently used forgotten first, so an
/// attacker with many addresses cannot grow it; a forgotten address starts again with a
/// full bucket, and the key's own bucket still bounds them all together. IPv6 addresses
/// are counted per /64 (what one host is usually given), IPv4-mapped IPv6 as IPv4.
pub struct ClientBuckets {
    limit: RateLimit,
    state: Mutex<LruCache<IpAddr, Level, RandomState>>,
}

impl std::fmt::Debug for ClientBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuckets")
            .field("limit", &self.limit)
            .field("clients", &self.len())
            .finish()
    }
}

impl ClientBuckets {
    /// No client yet; at most `capacity` (at least 1) remembered.
    pub fn new(limit: RateLimit, capacity: usize) -> ClientBuckets {
        ClientBuckets {
            limit,
            // SipHash with a random key: the addresses come from clients.
            state: Mutex::new(LruCache::with_hasher(capacity.max(1), RandomState::new())),
        }
    }

    /// Whether `other` has the same rate, burst and capacity.
    pub fn same_limits(&self, other: &ClientBuckets) -> bool {
        // One lock at a time: `other` may be `self`.
        let mine = self.lock().capacity();
        self.limit == other.limit && mine == other.lock().capacity()
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<IpAddr, Level, RandomState>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`TokenBucket::take`] for `client`'s bucket (a new client starts full).
    pub fn take(&self, client: IpAddr, n: f64) -> Result<(), Duration> {
        self.take_at(client, n, Instant::now())
    }

    fn take_at(&self, client: IpAddr, n: f64, now: Instant) -> Result<(), Duration> {
        self.with(client, now, |level, limit| level.take(limit, n, now))
    }

    /// [`TokenBucket::charge`] for `client`'s bucket.
    pub fn charge(&self, client: IpAddr, n: f64) {
        let now = Instant::now();
        self.with(client, now, |level, limit| level.charge(limit, n, now));
    }

    /// Gives back `n` tokens taken for a request the key's own bucket then refused (up to
    /// the burst), so a client is not charged for the others' traffic.
    pub fn give_back(&self, client: IpAddr, n: f64) {
        let mut cache = self.lock();
        if let Some(level) = cache.peek_mut(&group(client)) {
            level.tokens = (level.tokens + n).min(self.limit.burst);
        }
    }

    /// [`TokenBucket::is_empty`] for `client`'s bucket (an unknown client's is full).
    pub fn empty(&self, client: IpAddr) -> Option<Duration> {
        let cache = self.lock();
        cache
            .peek(&group(client))
            .and_then(|level| level.empty(self.limit, Instant::now()))
    }

    fn with<T>(
        &self,
        client: IpAddr,
        now: Instant,
        f: impl FnOnce(&mut Level, RateLimit) -> T,
    ) -> T {
        let (limit, key) = (self.limit, group(client));
        let mut cache = self.lock();
        // `insert` forgets the least recently used past the capacity; `get_mut` marks use.
        if !cache.contains_key(&key) {
            cache.insert(key, Level::full(limit, now));
        }
        match cache.get_mut(&key) {
            Some(level) => f(level, limit),
            None => f(&mut Level::full(limit, now), limit),
        }
    }
}

/// The address a client's bucket is kept under: IPv6 by its /64, IPv4-mapped as IPv4.
fn group(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
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

    const TEN: RateLimit = RateLimit {
        records_per_second: 10.0,
        burst: 20.0,
    };

    #[test]
    fn each_client_has_its_own_bucket_and_the_least_recent_is_forgotten() {
        let clients = ClientBuckets::new(TEN, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
        );
        let t0 = Instant::now();
        assert!(clients.take_at(a, 20.0, t0).is_ok());
        assert!(clients.take_at(a, 1.0, t0).is_err(), "a is empty");
        assert!(clients.take_at(b, 20.0, t0).is_ok(), "b has its own bucket");
        assert!(clients.empty(a).is_some());
        clients.give_back(a, 5.0);
        assert!(clients.take_at(a, 5.0, t0).is_ok(), "given back");
        assert!(
            clients.take_at(b, 1.0, t0).is_err(),
            "b is empty, and now used last"
        );
        // A third address: the least recently used (a) is forgotten, memory stays at 2.
        assert!(clients.take_at(c, 1.0, t0).is_ok());
        assert_eq!(clients.len(), 2);
        assert_eq!(clients.empty(a), None, "forgotten, so full again");
        assert!(
            clients.empty(b).is_some(),
            "b still remembered, still empty"
        );
        for i in 0..10_000u32 {
            let _ = clients.take_at(IpAddr::from(i.to_be_bytes()), 1.0, t0);
        }
        assert_eq!(clients.len(), 2);
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let clients = ClientBuckets::new(TEN, 16);
        let t0 = Instant::now();
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(clients.take_at(one, 20.0, t0).is_ok());
        assert!(clients.take_at(same_64, 1.0, t0).is_err());
        assert!(clients.take_at(other_64, 1.0, t0).is_ok());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(clients.take_at(v4, 20.0, t0).is_ok());
        assert!(clients.take_at(mapped, 1.0, t0).is_err());
    }

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

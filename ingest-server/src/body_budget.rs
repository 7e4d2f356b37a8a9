//! The bytes of request bodies the server holds at once, across every request
//! (`limits.max_in_flight_bytes`).
//!
//! Each request's own size is capped (`max_body_bytes` as sent, `max_decompressed_bytes`
//! inflated), but nothing else capped how many of them are read, inflated and decoded at
//! the same time: a few hundred connections each sending 5 MB, or a handful of gzip bodies
//! inflating to 20 MB, were enough to exhaust memory. So every ingest request takes a
//! [`BodyLease`] on one shared budget and grows it *before* each buffer it allocates for its
//! body (as read, then inflated); a lease the budget cannot grow at once fails, and the
//! request is answered 503 with `Retry-After` instead of waiting: a client retries later,
//! and a request that waits would hold its share meanwhile. A request that would need more
//! than the whole budget can never be served and is answered 413. The records decoded
//! from a body are counted in its lease too (estimated as they are built), and the lease is
//! given back when the request is answered, since its records live until then.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Leases are counted in KiB, so a semaphore's `u32` acquisitions reach 4 TiB.
const UNIT: u64 = 1024;

/// The shared budget of body bytes; see the module docs.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    units: Arc<Semaphore>,
    total_units: u64,
}

/// The budget has no room for what a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// Not now: other requests hold the rest (503, retry later).
    Now,
    /// Never: the request needs more than the whole budget (413).
    Ever,
}

impl BodyBudget {
    /// A budget of `bytes` (rounded up to whole KiB).
    pub(crate) fn new(bytes: u64) -> BodyBudget {
        let total_units = bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS as u64);
        BodyBudget {
            units: Arc::new(Semaphore::new(
                usize::try_from(total_units).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            total_units,
        }
    }

    /// An empty lease on this budget.
    pub(crate) fn lease(&self) -> BodyLease {
        BodyLease {
            units: Arc::clone(&self.units),
            held: None,
            total_units: self.total_units,
        }
    }

    /// Bytes leased now, by every request together.
    #[cfg(test)]
    fn in_use(&self) -> u64 {
        (self.total_units - self.units.available_permits() as u64) * UNIT
    }
}

/// One request's share of the [`BodyBudget`]: grown before a buffer is allocated, returned
/// when dropped.
#[derive(Debug)]
pub(crate) struct BodyLease {
    units: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    total_units: u64,
}

impl BodyLease {
    /// Makes the lease cover at least `bytes` in all; fails at once, holding what it held,
    /// when the budget has no room for the difference.
    pub(crate) fn cover(&mut self, bytes: usize) -> Result<(), NoRoom> {
        let wanted = (bytes as u64).div_ceil(UNIT);
        let held = self.held_units();
        if wanted <= held {
            return Ok(());
        }
        if wanted > self.total_units {
            return Err(NoRoom::Ever);
        }
        let more = u32::try_from(wanted - held).map_err(|_| NoRoom::Ever)?;
        let permit = match Arc::clone(&self.units).try_acquire_many_owned(more) {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                metrics::counter!("faultline_ingest_body_budget_full_total").increment(1);
                return Err(NoRoom::Now);
            }
        };
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.report();
        Ok(())
    }

    /// Gives back what the lease holds beyond `bytes`.
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        let keep = (bytes as u64).div_ceil(UNIT);
        let excess = self.held_units().saturating_sub(keep);
        if let (Some(held), Ok(excess)) = (&mut self.held, usize::try_from(excess)) {
            drop(held.split(excess));
            self.report();
        }
    }

    /// Bytes this lease holds.
    pub(crate) fn held(&self) -> usize {
        usize::try_from(self.held_units() * UNIT).unwrap_or(usize::MAX)
    }

    fn held_units(&self) -> u64 {
        self.held.as_ref().map_or(0, |p| p.num_permits() as u64)
    }

    fn report(&self) {
        let in_use = self.total_units - self.units.available_permits() as u64;
        metrics::gauge!("faultline_ingest_body_bytes_in_flight").set((in_use * UNIT) as f64);
    }
}

impl Drop for BodyLease {
    fn drop(&mut self) {
        if self.held.take().is_some() {
            self.report();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_grow_within_the_budget_and_give_back_on_drop_and_shrink() {
        let budget = BodyBudget::new(100 * 1024);
        let mut a = budget.lease();
        a.cover(60 * 1024).unwrap();
        a.cover(10).unwrap();
        assert_eq!(a.held(), 60 * 1024, "covering less than held takes nothing");
        let mut b = budget.lease();
        assert_eq!(b.cover(50 * 1024), Err(NoRoom::Now));
        assert_eq!(b.held(), 0, "a failed cover takes nothing");
        b.cover(40 * 1024).unwrap();
        assert_eq!(budget.in_use(), 100 * 1024);
        assert_eq!(a.cover(61 * 1024), Err(NoRoom::Now));
        assert_eq!(a.held(), 60 * 1024, "a failed cover keeps what was held");
        a.shrink_to(20 * 1024 + 1);
        assert_eq!(a.held(), 21 * 1024, "rounded up to whole KiB");
        b.cover(79 * 1024).unwrap();
        drop(a);
        drop(b);
        assert_eq!(budget.in_use(), 0);
        let mut whole = budget.lease();
        whole.cover(100 * 1024).unwrap();
    }

    #[test]
    fn a_request_larger_than_the_whole_budget_never_fits() {
        let budget = BodyBudget::new(4096);
        let mut lease = budget.lease();
        let mut other = budget.lease();
        other.cover(4096).unwrap();
        assert_eq!(
            lease.cover(4097),
            Err(NoRoom::Ever),
            "even while another holds it all"
        );
        assert_eq!(lease.cover(usize::MAX), Err(NoRoom::Ever));
        assert_eq!(lease.cover(4096), Err(NoRoom::Now));
        drop(other);
        lease.cover(4096).unwrap();
    }
}

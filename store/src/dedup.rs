//! The most recent record ids, oldest forgotten first: the file store's deduplication and the
//! alert evaluator's guard against counting a retried batch twice.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// A bounded set of the most recent record ids.
///
/// Each id is kept as a 64-bit fingerprint from SipHash with a key drawn at random when the
/// set is made: half the memory of the ids themselves, and one hash per id instead of one
/// per lookup, which matters because every record touches this table at random. Clients
/// choose ids, but without the key they cannot aim two ids at one fingerprint; by chance,
/// with a million ids remembered, a new id is mistaken for a duplicate with odds of about 1
/// in 10^13.
pub struct RecentIds {
    capacity: usize,
    keys: std::collections::hash_map::RandomState,
    set: HashSet<u64, BuildHasherDefault<PassThrough>>,
    order: VecDeque<u64>,
}

impl std::fmt::Debug for RecentIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentIds")
            .field("capacity", &self.capacity)
            .field("len", &self.order.len())
            .finish()
    }
}

/// The set's own hasher: its keys are already uniform keyed hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl RecentIds {
    /// Remembers up to `capacity` ids; 0 remembers none (every id is new).
    pub fn new(capacity: usize) -> Self {
        RecentIds {
            capacity,
            keys: std::collections::hash_map::RandomState::new(),
            set: HashSet::default(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    #[cfg(test)]
    fn contains(&self, id: u128) -> bool {
        self.set.contains(&self.fingerprint(id))
    }

    fn fingerprint(&self, id: u128) -> u64 {
        self.keys.hash_one(id)
    }

    /// Claims `id` for a write in progress: `None` if it is remembered (or already claimed),
    /// in which case the record is a duplicate. A claim is then either
    /// [`RecentIds::commit`]ted or [`RecentIds::release`]d.
    pub(crate) fn claim(&mut self, id: u128) -> Option<u64> {
        let fp = self.fingerprint(id);
        self.set.insert(fp).then_some(fp)
    }

    /// Gives back claims whose write failed: those ids were not stored.
    pub(crate) fn release(&mut self, claims: &[u64]) {
        for fp in claims {
            self.set.remove(fp);
        }
    }

    /// Makes claims permanent (their write is durable), forgetting the oldest ids if full.
    pub(crate) fn commit(&mut self, claims: &[u64]) {
        self.order.extend(claims);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// Remembers `id` as the newest, forgetting the oldest if full. Returns `false` if it
    /// was remembered already (a duplicate); always `true` with capacity 0.
    pub fn insert(&mut self, id: u128) -> bool {
        if !self.enabled() {
            return true;
        }
        match self.claim(id) {
            Some(fp) => {
                self.commit(&[fp]);
                true
            }
            None => false,
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest() {
        let mut d = RecentIds::new(2);
        let new: Vec<bool> = [1, 2, 2, 3].into_iter().map(|id| d.insert(id)).collect();
        assert_eq!(new, [true, true, false, true]);
        assert_eq!(d.len(), 2);
        assert!(!d.contains(1));
        assert!(d.contains(2) && d.contains(3));
        assert!(d.insert(1), "1 was forgotten, so it is new again");

        // A failed write gives its claims back; a committed one keeps them.
        let claim = d.claim(9).unwrap();
        assert!(d.claim(9).is_none(), "claimed twice in one group");
        d.release(&[claim]);
        assert!(!d.contains(9));
        let claim = d.claim(9).unwrap();
        d.commit(&[claim]);
        assert!(d.contains(9) && !d.contains(3), "3 was the oldest");

        let mut off = RecentIds::new(0);
        assert!(
            off.insert(1) && off.insert(1),
            "with capacity 0 every id is new"
        );
        assert!(!off.contains(1));
        assert!(!off.enabled());
    }
}

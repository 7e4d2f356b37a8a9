//! Noise control, between an error's capture and its record: repeats within the fold window
//! fold into the record already queued (its `meta.count`), then sampling, then the per-page
//! cap. The package's ignore lists run before (they hold `RegExp`s); what a fold changes in
//! the outbox stays there (a record a request already carries cannot take a repeat, and the
//! repeat then goes on here as a new error).

use alloc::string::String;
use alloc::vec::Vec;

/// Fold keys remembered at most; past it, expired ones go, and all of them if none has.
const MAX_FOLDS: usize = 100;

/// What [`Gate::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Make a record of it.
    Capture = 0,
    /// Not drawn by the sample rate.
    Sampled = 1,
    /// The page already sent its `max_per_page`.
    Capped = 2,
}

/// One fold: the key's hash, the record's id, until when repeats fold into it (ms).
struct Fold {
    key: u64,
    id: String,
    until: f64,
}

/// The state of one page.
pub(crate) struct Gate {
    window_ms: f64,
    sample_rate: f64,
    max_per_page: f64,
    captured: f64,
    folds: Vec<Fold>,
}

impl Gate {
    /// A gate with the package's options `foldWindowMs`, `sampleRate`, `maxPerPage`.
    pub(crate) const fn new(window_ms: f64, sample_rate: f64, max_per_page: f64) -> Gate {
        Gate {
            window_ms,
            sample_rate,
            max_per_page,
            captured: 0.0,
            folds: Vec::new(),
        }
    }

    /// Starts again with these options (as [`Gate::new`] would, in place: dropping a whole
    /// gate is more wasm).
    pub(crate) fn reset(&mut self, window_ms: f64, sample_rate: f64, max_per_page: f64) {
        self.window_ms = window_ms;
        self.sample_rate = sample_rate;
        self.max_per_page = max_per_page;
        self.captured = 0.0;
        self.folds.clear();
    }

    /// The id of the record an error with fold key `key` repeats at `now` (ms), if any.
    pub(crate) fn fold_of(&self, key: &str, now: f64) -> Option<&str> {
        let key = hash(key);
        self.folds
            .iter()
            .find(|f| f.key == key && now < f.until)
            .map(|f| f.id.as_str())
    }

    /// Whether an error that folded into nothing becomes a record; `random` is uniform in
    /// `[0, 1)`. A capture is remembered under `key` as record `id` for the fold window.
    pub(crate) fn admit(&mut self, key: &str, id: &str, now: f64, random: f64) -> Verdict {
        if random >= self.sample_rate {
            return Verdict::Sampled;
        }
        if self.captured >= self.max_per_page {
            return Verdict::Capped;
        }
        self.captured += 1.0;
        let key = hash(key);
        // One pass drops the key's old fold and the expired ones (which fold nothing any
        // more): one `retain` in the wasm rather than two.
        self.folds.retain(|f| f.key != key && now < f.until);
        if self.folds.len() >= MAX_FOLDS {
            self.folds.clear();
        }
        self.folds.push(Fold {
            key,
            id: id.into(),
            until: now + self.window_ms,
        });
        Verdict::Capture
    }
}

/// FNV-1a, 64 bits: keys (message and top of stack) are not kept, only this.
fn hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_fold_within_the_window_only() {
        let mut g = Gate::new(5_000.0, 1.0, 500.0);
        assert_eq!(g.fold_of("k", 0.0), None);
        assert_eq!(g.admit("k", "id1", 0.0, 0.5), Verdict::Capture);
        assert_eq!(g.fold_of("k", 4_999.0), Some("id1"));
        assert_eq!(g.fold_of("other", 1.0), None);
        assert_eq!(g.fold_of("k", 5_000.0), None);
        // A repeat that could not fold (its record in flight) is a new record and fold.
        assert_eq!(g.admit("k", "id2", 100.0, 0.5), Verdict::Capture);
        assert_eq!(g.fold_of("k", 5_099.0), Some("id2"));
    }

    #[test]
    fn reset_starts_again() {
        let mut g = Gate::new(5_000.0, 1.0, 1.0);
        assert_eq!(g.admit("k", "id1", 0.0, 0.5), Verdict::Capture);
        assert_eq!(g.admit("j", "id2", 0.0, 0.5), Verdict::Capped);
        g.reset(1_000.0, 0.5, 2.0);
        assert_eq!(g.fold_of("k", 1.0), None);
        assert_eq!(g.admit("k", "id3", 0.0, 0.5), Verdict::Sampled);
        assert_eq!(g.admit("k", "id3", 0.0, 0.4), Verdict::Capture);
        assert_eq!(g.fold_of("k", 999.0), Some("id3"));
        assert_eq!(g.fold_of("k", 1_000.0), None);
        assert_eq!(g.admit("j", "id4", 0.0, 0.4), Verdict::Capture);
        assert_eq!(g.admit("l", "id5", 0.0, 0.4), Verdict::Capped);
    }

    #[test]
    fn sampling_then_the_cap() {
        let mut g = Gate::new(0.0, 0.25, 2.0);
        assert_eq!(g.admit("a", "1", 0.0, 0.25), Verdict::Sampled);
        assert_eq!(g.admit("a", "1", 0.0, 0.24), Verdict::Capture);
        assert_eq!(g.admit("b", "2", 0.0, 0.0), Verdict::Capture);
        assert_eq!(g.admit("c", "3", 0.0, 0.0), Verdict::Capped);
        assert_eq!(g.admit("c", "3", 0.0, 0.9), Verdict::Sampled);
        let mut none = Gate::new(0.0, 0.0, 10.0);
        assert_eq!(none.admit("a", "1", 0.0, 0.0), Verdict::Sampled);
        let mut off = Gate::new(0.0, 1.0, 0.0);
        assert_eq!(off.admit("a", "1", 0.0, 0.0), Verdict::Capped);
    }

    #[test]
    fn folds_are_bounded() {
        let mut g = Gate::new(1_000.0, 1.0, 1e9);
        for i in 0..MAX_FOLDS {
            g.admit(&i.to_string(), "x", 0.0, 0.0);
        }
        assert_eq!(g.folds.len(), MAX_FOLDS);
        // Expired ones go first.
        g.admit("new", "y", 2_000.0, 0.0);
        assert_eq!(g.folds.len(), 1);
        for i in 0..MAX_FOLDS * 3 {
            g.admit(&i.to_string(), "x", 3_000.0, 0.0);
        }
        assert!(g.folds.len() <= MAX_FOLDS);
        assert_eq!(g.fold_of("new", 2_500.0), None);
    }
}

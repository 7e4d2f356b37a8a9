//! Folding: identical errors within a window become one record with `meta.count`.
//!
//! The first occurrence makes a record. Repeats within `foldWindowMs` of it increment that
//! record's count while it is still queued; once it has been sent they are counted here and
//! leave as one follow-up record (same content, a new id, the count of the repeats) when
//! the window closes, the page is hidden or the reporter is flushed. Counts are therefore
//! exact, and a burst of 500 identical errors costs one record and 500 increments.
//!
//! A window also remembers decisions: when sampling or the per-page cap dropped the first
//! occurrence, the repeats are dropped with it instead of getting a fresh chance each.

use std::rc::Rc;

/// Windows remembered at once; the oldest is closed early past this.
pub(crate) const MAX_FOLDS: usize = 64;

/// One open window.
#[derive(Debug)]
pub(crate) struct Fold {
    /// The errors' fingerprint.
    pub(crate) fp: u64,
    /// When the window opened (host clock, ms).
    pub(crate) start: f64,
    /// Whether the first occurrence was kept (sampled in and under the cap).
    pub(crate) kept: bool,
    /// The record repeats go into while it is queued.
    pub(crate) seq: u32,
    /// That record's id (what `captureException` returns for a repeat).
    pub(crate) id: [u8; 16],
    /// Repeats counted after the record left the queue.
    pub(crate) extra: u32,
    /// Time of the latest repeat (ms since the epoch), for the follow-up's `ts`.
    pub(crate) last_ts: f64,
    /// The record's JSON fragments, to build the follow-up from.
    pub(crate) template: Option<(Rc<str>, Rc<str>)>,
}

/// A repeat to be sent as its own record.
#[derive(Debug)]
pub(crate) struct FollowUp {
    /// Repeats it stands for.
    pub(crate) count: u32,
    /// Time of the latest one.
    pub(crate) ts: f64,
    /// `head` and `tail` of the original.
    pub(crate) template: (Rc<str>, Rc<str>),
}

/// The open windows.
#[derive(Debug, Default)]
pub(crate) struct Folds {
    open: Vec<Fold>,
}

impl Folds {
    /// The open window for `fp` at `now`, if any.
    pub(crate) fn find(&mut self, fp: u64) -> Option<&mut Fold> {
        self.open.iter_mut().find(|f| f.fp == fp)
    }

    /// Opens a window; closes the oldest first if [`MAX_FOLDS`] are open.
    pub(crate) fn open(&mut self, fold: Fold, out: &mut Vec<FollowUp>) {
        if self.open.len() >= MAX_FOLDS {
            let f = self.open.remove(0);
            out.extend(follow_up(f));
        }
        self.open.push(fold);
    }

    /// Closes windows opened `window_ms` or more before `now`.
    pub(crate) fn expire(&mut self, now: f64, window_ms: f64, out: &mut Vec<FollowUp>) {
        if self.open.first().is_none_or(|f| now - f.start < window_ms) {
            return; // windows open in order: the first is the oldest
        }
        let (done, open): (Vec<Fold>, Vec<Fold>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|f| now - f.start >= window_ms);
        self.open = open;
        out.extend(done.into_iter().filter_map(follow_up));
    }

    /// Takes every pending repeat now (flush, hidden page), keeping the windows open.
    pub(crate) fn drain_repeats(&mut self, out: &mut Vec<FollowUp>) {
        for f in &mut self.open {
            if f.extra > 0
                && let Some(template) = f.template.clone()
            {
                out.push(FollowUp {
                    count: f.extra,
                    ts: f.last_ts,
                    template,
                });
                f.extra = 0;
            }
        }
    }

    /// Marks the window whose record is `seq` as dropped (`beforeSend` refused it).
    pub(crate) fn drop_record(&mut self, seq: u32) {
        for f in self.open.iter_mut().filter(|f| f.seq == seq) {
            f.kept = false;
            f.template = None;
            f.extra = 0;
        }
    }

    /// Updates the template of the window whose record is `seq` (`beforeSend` edited it).
    pub(crate) fn retemplate(&mut self, seq: u32, head: &Rc<str>, tail: &Rc<str>) {
        for f in self.open.iter_mut().filter(|f| f.seq == seq) {
            f.template = Some((Rc::clone(head), Rc::clone(tail)));
        }
    }

    /// Repeats waiting to be sent.
    pub(crate) fn pending(&self) -> usize {
        self.open.iter().filter(|f| f.extra > 0).count()
    }

    /// When the oldest window with waiting repeats closes.
    pub(crate) fn next_deadline(&self, window_ms: f64) -> Option<f64> {
        self.open
            .iter()
            .find(|f| f.extra > 0)
            .map(|f| f.start + window_ms)
    }
}

fn follow_up(f: Fold) -> Option<FollowUp> {
    match (f.extra, f.template) {
        (0, _) | (_, None) => None,
        (count, Some(template)) => Some(FollowUp {
            count,
            ts: f.last_ts,
            template,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(fp: u64, start: f64, extra: u32) -> Fold {
        Fold {
            fp,
            start,
            kept: true,
            seq: fp as u32,
            id: [0; 16],
            extra,
            last_ts: start,
            template: Some((Rc::from("h"), Rc::from("t"))),
        }
    }

    #[test]
    fn expiry_emits_follow_ups_for_counted_repeats() {
        let mut folds = Folds::default();
        let mut out = Vec::new();
        folds.open(fold(1, 0.0, 3), &mut out);
        folds.open(fold(2, 10.0, 0), &mut out);
        folds.open(fold(3, 50.0, 1), &mut out);
        folds.expire(5.0, 30.0, &mut out);
        assert!(out.is_empty());
        assert_eq!(folds.next_deadline(30.0), Some(30.0));
        folds.expire(45.0, 30.0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, 3);
        assert!(folds.find(1).is_none() && folds.find(2).is_none());
        assert!(folds.find(3).is_some());
        assert_eq!(folds.pending(), 1);
    }

    #[test]
    fn drain_keeps_windows_and_drop_forgets_repeats() {
        let mut folds = Folds::default();
        let mut out = Vec::new();
        folds.open(fold(1, 0.0, 2), &mut out);
        folds.drain_repeats(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(folds.find(1).unwrap().extra, 0);
        folds.find(1).unwrap().extra = 4;
        folds.drop_record(1);
        assert!(!folds.find(1).unwrap().kept);
        assert_eq!(folds.pending(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut folds = Folds::default();
        let mut out = Vec::new();
        for i in 0..MAX_FOLDS as u64 + 1 {
            folds.open(fold(i, i as f64, 1), &mut out);
        }
        assert_eq!(out.len(), 1, "the oldest window closed early");
        assert!(folds.find(0).is_none());
    }
}

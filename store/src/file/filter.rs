//! Segment filters: per sealed segment, a Bloom filter of the `meta` values it holds, so a
//! query for a rare `meta.KEY=VALUE` skips the segments that cannot hold it without reading
//! them.
//!
//! Each scalar of a record's `meta` is hashed with its flattened path
//! ([`crate::search::leaf_hash`]); the writer sets the hashes' bits in the active segment's
//! filter as it commits records; when it seals the segment, the writer's sealer thread
//! writes the filter beside the sidecar (`{seq:020}.filter`), off the ingest path. The filter starts at a size bounded by the segment's
//! maximum size and is folded in halves at sealing while it stays sparse, so a small segment
//! gets a small file. A query reads only the few words of the file its probes need.
//!
//! File: `FLTBLOOM`, the bit count as a power of two (`u32` LE), the probes per hash (`u32`
//! LE), then the bits as `u64` LE words. A segment without a filter (written before filters
//! existed, or whose filter could not be written) is read as before.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::segment::{Fsyncs, write_atomically};
use crate::search::mix;

const MAGIC: &[u8; 8] = b"FLTBLOOM";
const HEADER: u64 = 16;
/// Bits probed per hash.
const PROBES: u32 = 4;
/// The smallest filter: 4 Kib (512 bytes).
const MIN_LOG2_BITS: u32 = 12;
/// The largest: 256 Mib (32 MiB), for segments of 64 MiB and more.
const MAX_LOG2_BITS: u32 = 28;
/// Folding stops before more than this share of bits would be set (4 probes at 35%: about
/// 1.5% false positives).
const MAX_FILL: f64 = 0.35;

/// `dir/{seq:020}.filter`
pub(crate) fn filter_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.filter"))
}

/// The bit positions of `hash` in a filter of `2^log2_bits` bits (double hashing; a
/// position in a filter folded to half its size is the same position modulo the half).
fn positions(hash: u64, log2_bits: u32) -> impl Iterator<Item = u64> {
    let mask = (1u64 << log2_bits) - 1;
    let step = mix(hash) | 1;
    (0..u64::from(PROBES)).map(move |i| hash.wrapping_add(i.wrapping_mul(step)) & mask)
}

/// The filter of the active segment, built as records are committed.
///
/// Its bits are kept in pages of 4 KiB allocated when a bit in them is first set, so an idle
/// or quiet server holds next to nothing, and a busy one at most the filter's size. (Allocated
/// up front, a 64 MiB segment's 16 MiB filter was in every server from its start and pushed
/// the hostile suite's peak RSS past its ceiling.) Setting a bit stays a few instructions on
/// the writer thread: no list to sort, no table to grow.
#[derive(Debug)]
pub(crate) struct FilterBuilder {
    pages: Vec<Option<Box<[u64; PAGE_WORDS]>>>,
    log2_bits: u32,
}

/// Words per page of a filter being built (4 KiB).
const PAGE_WORDS: usize = 512;

impl FilterBuilder {
    /// An empty filter for a segment of at most `segment_max_bytes`: two bits per byte of
    /// segment (one sixteenth of its size), within the bounds above.
    pub(crate) fn new(segment_max_bytes: u64) -> FilterBuilder {
        let log2_bits = log2_bits_for(segment_max_bytes.saturating_mul(2));
        let words = 1usize << (log2_bits - 6);
        FilterBuilder {
            pages: (0..words.div_ceil(PAGE_WORDS)).map(|_| None).collect(),
            log2_bits,
        }
    }

    /// Adds one value's hash.
    pub(crate) fn insert(&mut self, hash: u64) {
        for bit in positions(hash, self.log2_bits) {
            let word = (bit >> 6) as usize;
            if let Some(page) = self.pages.get_mut(word / PAGE_WORDS) {
                let page = page.get_or_insert_with(|| Box::new([0; PAGE_WORDS]));
                page[word % PAGE_WORDS] |= 1 << (bit & 63);
            }
        }
    }

    /// Bytes of memory its pages hold.
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.pages.iter().flatten().count() * PAGE_WORDS * 8
    }

    /// Folds the filter and writes it as `{seq}.filter` atomically (temporary file, fsync,
    /// rename, directory fsync).
    pub(crate) fn seal(self, dir: &Path, seq: u64, fsyncs: &Fsyncs) -> io::Result<()> {
        let mut log2_bits = self.log2_bits;
        let total = 1usize << (log2_bits - 6);
        let mut words: Vec<u64> = Vec::with_capacity(total);
        for page in self.pages {
            match page {
                Some(page) => words.extend_from_slice(&page[..]),
                None => words.resize(words.len() + PAGE_WORDS, 0),
            }
        }
        words.truncate(total);
        fold(&mut words, &mut log2_bits);
        let mut bytes = Vec::with_capacity(HEADER as usize + words.len() * 8);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&log2_bits.to_le_bytes());
        bytes.extend_from_slice(&PROBES.to_le_bytes());
        for w in &words {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        write_atomically(dir, &filter_path(dir, seq), &bytes, fsyncs)
    }
}

/// The power of two of at least `bits` bits, within [`MIN_LOG2_BITS`]..=[`MAX_LOG2_BITS`].
fn log2_bits_for(bits: u64) -> u32 {
    (64 - bits.max(2).saturating_sub(1).leading_zeros()).clamp(MIN_LOG2_BITS, MAX_LOG2_BITS)
}

/// Halves the filter while the half stays sparse enough.
fn fold(words: &mut Vec<u64>, log2_bits: &mut u32) {
    while *log2_bits > MIN_LOG2_BITS {
        let half = words.len() / 2;
        let ones: u64 = (0..half)
            .map(|i| u64::from((words[i] | words[i + half]).count_ones()))
            .sum();
        if ones as f64 > MAX_FILL * (half as f64 * 64.0) {
            return;
        }
        for i in 0..half {
            words[i] |= words[i + half];
        }
        words.truncate(half);
        *log2_bits -= 1;
    }
}

/// Whether segment `seq` may hold a record matching every group of hashes (each group: the
/// hashes of one filter's values, any of which may match). `None` when the segment has no
/// readable filter: it must be read.
pub(crate) fn may_match(dir: &Path, seq: u64, groups: &[Vec<u64>]) -> Option<bool> {
    let mut file = File::open(filter_path(dir, seq)).ok()?;
    let len = file.metadata().ok()?.len();
    let mut header = [0u8; HEADER as usize];
    file.read_exact(&mut header).ok()?;
    if &header[..8] != MAGIC {
        return None;
    }
    let log2_bits = u32::from_le_bytes(header[8..12].try_into().ok()?);
    let probes = u32::from_le_bytes(header[12..16].try_into().ok()?);
    if !(MIN_LOG2_BITS..=MAX_LOG2_BITS).contains(&log2_bits)
        || probes != PROBES
        || len != HEADER + (1u64 << (log2_bits - 3))
    {
        return None;
    }
    let mut bit_set = |bit: u64| -> Option<bool> {
        file.seek(SeekFrom::Start(HEADER + (bit >> 6) * 8)).ok()?;
        let mut word = [0u8; 8];
        file.read_exact(&mut word).ok()?;
        Some(u64::from_le_bytes(word) & (1 << (bit & 63)) != 0)
    };
    for group in groups {
        let mut any = false;
        for &hash in group {
            let mut all = true;
            for bit in positions(hash, log2_bits) {
                if !bit_set(bit)? {
                    all = false;
                    break;
                }
            }
            if all {
                any = true;
                break;
            }
        }
        if !any {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn folded_filters_keep_every_value_and_skip_most_others() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut f = FilterBuilder::new(64 * 1024 * 1024);
        let inserted: Vec<u64> = (0..20_000u64).map(|i| mix(i * 7 + 1)).collect();
        for h in &inserted {
            f.insert(*h);
        }
        f.seal(dir, 3, &Fsyncs::default()).unwrap();
        let size = fs::metadata(filter_path(dir, 3)).unwrap().len();
        assert!(size < 64 * 1024, "folded to {size} bytes");
        for h in &inserted {
            assert_eq!(may_match(dir, 3, &[vec![*h]]), Some(true));
        }
        let absent = (0..10_000u64)
            .filter(|i| may_match(dir, 3, &[vec![mix(i * 7 + 2)]]) == Some(true))
            .count();
        assert!(absent < 300, "{absent} false positives in 10,000");
        // Every group must match; within a group any hash may.
        let yes = inserted[0];
        let no = (0..)
            .map(|i: u64| mix(i * 7 + 2))
            .find(|h| may_match(dir, 3, &[vec![*h]]) == Some(false))
            .unwrap();
        assert_eq!(may_match(dir, 3, &[vec![no, yes]]), Some(true));
        assert_eq!(may_match(dir, 3, &[vec![yes], vec![no]]), Some(false));
        assert_eq!(may_match(dir, 4, &[vec![yes]]), None, "no filter");
        fs::write(filter_path(dir, 5), b"FLTBLOOM\x0c\0\0\0\x04\0\0\0short").unwrap();
        assert_eq!(
            may_match(dir, 5, &[vec![yes]]),
            None,
            "a torn filter is ignored"
        );
    }

    #[test]
    fn memory_is_spent_as_values_come_and_bounded_by_the_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // 64 MiB segments: 128 Mib (16 MiB) of bits at most, none up front.
        let mut f = FilterBuilder::new(64 * 1024 * 1024);
        assert_eq!(f.allocated(), 0, "nothing up front");
        let values: Vec<u64> = (0..200_000u64).map(|i| mix(i + 11)).collect();
        f.insert(values[0]);
        assert!(
            f.allocated() <= 4 * 4096,
            "{} bytes for one value",
            f.allocated()
        );
        for h in &values {
            f.insert(*h);
        }
        assert!(f.allocated() <= 16 * 1024 * 1024);
        f.seal(dir, 1, &Fsyncs::default()).unwrap();
        for h in &values {
            assert_eq!(may_match(dir, 1, &[vec![*h]]), Some(true));
        }
        // A quiet segment's filter is folded to the smallest, and right.
        let mut quiet = FilterBuilder::new(64 * 1024 * 1024);
        quiet.insert(values[0]);
        quiet.seal(dir, 2, &Fsyncs::default()).unwrap();
        assert_eq!(
            fs::metadata(filter_path(dir, 2)).unwrap().len(),
            HEADER + (1 << (MIN_LOG2_BITS - 3))
        );
        assert_eq!(may_match(dir, 2, &[vec![values[0]]]), Some(true));
    }
}

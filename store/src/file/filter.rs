//! Segment filters: per sealed segment, a Bloom filter of the `meta` values it holds, so a
//! query for a rare `meta.KEY=VALUE` skips the segments that cannot hold it without reading
//! them.
//!
//! Each scalar of a record's `meta` is hashed with its flattened path
//! ([`crate::search::leaf_hash`]); the writer sets the hashes' bits in the active segment's
//! filter as it commits records and writes the filter beside the sidecar when it seals the
//! segment (`{seq:020}.filter`). The filter starts at a size bounded by the segment's
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
/// It starts as the list of the distinct hashes seen, which is all a segment of few distinct
/// values needs (an idle or quiet server holds next to nothing), and turns into the bits of
/// a filter of the segment's largest size only once the list would take as much memory as
/// those bits: the memory stays within that bound either way, and is spent only when used.
/// (Allocated up front, a 64 MiB segment's filter was 16 MiB of every server's memory from
/// its start, twice over while a segment was sealed and the next one opened.)
#[derive(Debug)]
pub(crate) struct FilterBuilder {
    /// Hashes seen, sorted and deduplicated up to `sorted`, appended after it.
    hashes: Vec<u64>,
    sorted: usize,
    /// The bits, once the list outgrew them.
    bits: Option<Vec<u64>>,
    /// Bits of the largest filter (a power of two).
    max_log2_bits: u32,
}

/// Bits set aside per distinct value when a filter is sized from its list (4 probes: about
/// 0.25 of the bits set, before folding).
const BITS_PER_VALUE: u64 = 16;

impl FilterBuilder {
    /// An empty filter for a segment of at most `segment_max_bytes`: at most two bits per
    /// byte of segment (one sixteenth of its size), within the bounds above.
    pub(crate) fn new(segment_max_bytes: u64) -> FilterBuilder {
        FilterBuilder {
            hashes: Vec::new(),
            sorted: 0,
            bits: None,
            max_log2_bits: log2_bits_for(segment_max_bytes.saturating_mul(2)),
        }
    }

    /// Adds one value's hash.
    pub(crate) fn insert(&mut self, hash: u64) {
        if let Some(words) = &mut self.bits {
            set(words, self.max_log2_bits, hash);
            return;
        }
        self.hashes.push(hash);
        // A hash takes as much memory as 64 bits of the filter: the list never holds more
        // hashes than the bits' words, and turns into bits once half of that is distinct.
        let most = 1usize << (self.max_log2_bits - 6);
        if self.hashes.len() >= (2 * self.sorted).max(1024).min(most) {
            self.hashes.sort_unstable();
            self.hashes.dedup();
            self.sorted = self.hashes.len();
            if self.sorted >= most / 2 {
                let mut words = vec![0; 1usize << (self.max_log2_bits - 6)];
                for &h in &self.hashes {
                    set(&mut words, self.max_log2_bits, h);
                }
                self.bits = Some(words);
                self.hashes = Vec::new();
                self.sorted = 0;
            }
        }
    }

    /// The filter's bits: the list's values in a filter sized for them, or the bits as built.
    fn words(mut self) -> (Vec<u64>, u32) {
        if let Some(words) = self.bits {
            return (words, self.max_log2_bits);
        }
        self.hashes.sort_unstable();
        self.hashes.dedup();
        let log2_bits = log2_bits_for((self.hashes.len() as u64).saturating_mul(BITS_PER_VALUE))
            .min(self.max_log2_bits);
        let mut words = vec![0; 1usize << (log2_bits - 6)];
        for &h in &self.hashes {
            set(&mut words, log2_bits, h);
        }
        (words, log2_bits)
    }

    /// Folds the filter and writes it as `{seq}.filter` atomically (temporary file, fsync,
    /// rename, directory fsync).
    pub(crate) fn seal(self, dir: &Path, seq: u64, fsyncs: &Fsyncs) -> io::Result<()> {
        let (mut words, mut log2_bits) = self.words();
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

fn set(words: &mut [u64], log2_bits: u32, hash: u64) {
    for bit in positions(hash, log2_bits) {
        if let Some(word) = words.get_mut((bit >> 6) as usize) {
            *word |= 1 << (bit & 63);
        }
    }
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
        // 1 MiB segments: at most 2 Mib (256 KiB) of bits, the memory of 32,768 hashes.
        let mut f = FilterBuilder::new(1024 * 1024);
        assert!(
            f.bits.is_none() && f.hashes.capacity() == 0,
            "nothing up front"
        );
        let values: Vec<u64> = (0..40_000u64).map(|i| mix(i + 11)).collect();
        for h in &values[..10_000] {
            f.insert(*h);
            f.insert(*h); // repeats are kept once
        }
        assert!(f.bits.is_none(), "10,000 distinct values stay a list");
        assert!(f.hashes.len() <= 32_768, "{}", f.hashes.len());
        for h in &values[10_000..] {
            assert!(
                f.hashes.len() <= 32_768,
                "never more hashes than the bits' words"
            );
            f.insert(*h);
        }
        assert_eq!(f.bits.as_ref().map(Vec::len), Some(2 * 1024 * 1024 / 64));
        assert!(f.hashes.is_empty());
        f.seal(dir, 1, &Fsyncs::default()).unwrap();
        for h in &values {
            assert_eq!(may_match(dir, 1, &[vec![*h]]), Some(true));
        }
        // A quiet segment's filter is small, and right.
        let mut quiet = FilterBuilder::new(64 * 1024 * 1024);
        quiet.insert(values[0]);
        quiet.seal(dir, 2, &Fsyncs::default()).unwrap();
        assert_eq!(
            fs::metadata(filter_path(dir, 2)).unwrap().len(),
            HEADER + (1 << (MIN_LOG2_BITS - 3))
        );
        assert_eq!(may_match(dir, 2, &[vec![values[0]]]), Some(true));
        let misses = values[1..]
            .iter()
            .filter(|h| may_match(dir, 2, &[vec![**h]]) == Some(true))
            .count();
        assert!(misses < 400, "{misses} false positives");
    }
}

//! Record ids: the same line read twice gets the same id, so the server stores it once.

use faultline_schema::Uuid;

/// Where a forwarded record's id comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ids {
    /// Standard input cannot be read again: a fresh UUIDv7 per record (retries of a batch
    /// still carry the same ids).
    Random,
    /// A file: the id is a function of the file's generation (a random value chosen when
    /// the forwarder first saw this file, or saw it truncated, and kept in the state file)
    /// and the byte offset where the record's first line starts. A forwarder restarted
    /// from an older offset sends the records again with the ids they had.
    Offsets(u128),
}

impl Ids {
    /// The id of the record whose first line starts at byte `start`.
    pub(crate) fn id(self, start: u64) -> Uuid {
        match self {
            Ids::Random => Uuid::now_v7(),
            Ids::Offsets(generation) => {
                // Distinct offsets give distinct values; setting the version and variant
                // bits (a v4 UUID) keeps 122 of them.
                let bits = generation.wrapping_add(u128::from(start));
                uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid()
            }
        }
    }
}

/// A new file generation: random, or (if the system has no randomness to give) from the
/// clock.
pub(crate) fn new_generation() -> u128 {
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => u128::from_le_bytes(bytes),
        Err(_) => Uuid::now_v7().as_u128(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_give_stable_distinct_v4_ids() {
        let g = Ids::Offsets(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        assert_eq!(g.id(10), g.id(10));
        assert_ne!(g.id(10), g.id(11));
        assert_eq!(g.id(10).get_version_num(), 4);
        assert_ne!(
            Ids::Offsets(new_generation()).id(0),
            Ids::Offsets(new_generation()).id(0)
        );
        assert_ne!(Ids::Random.id(0), Ids::Random.id(0));
    }
}

//! The fuzz corpus and every input that once broke an invariant, replayed through the same
//! checks the fuzz targets run (`faultline_schema::fuzzing`), so CI guards what the fuzzer
//! found without running it.

use faultline_schema::fuzzing::{check_decode_batch, check_stack_parse, replay};

/// Batch bodies in all three forms: counts add up, accepted records round-trip.
#[test]
fn decode_batch_corpus_and_regressions_hold() {
    replay("decode_batch", check_decode_batch);
}

/// Stack text: at most a frame a line, names and files taken from the input.
#[test]
fn stack_parse_corpus_and_regressions_hold() {
    replay("stack_parse", check_stack_parse);
}

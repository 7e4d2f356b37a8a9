//! The fuzz corpus and every input that once broke an invariant, replayed through the same
//! checks the fuzz target runs (`faultline_store::fuzzing`), so CI guards what the fuzzer
//! found without running it.

use faultline_schema::fuzzing::replay;
use faultline_store::fuzzing::check_ndjson_framing;

/// Segment bytes: backward and forward framing agree, the torn-tail cut keeps whole JSON
/// lines only.
#[test]
fn ndjson_framing_corpus_and_regressions_hold() {
    replay("ndjson_framing", check_ndjson_framing);
}

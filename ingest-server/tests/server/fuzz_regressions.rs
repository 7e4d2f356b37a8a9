//! The fuzz corpus and every input that once broke an invariant, replayed through the same
//! checks the fuzz targets run (`faultline_server::fuzzing`), so CI guards what the fuzzer
//! found without running it.

use faultline_schema::fuzzing::replay;
use faultline_server::fuzzing::{check_alert_config, check_inflate};

/// Gzip bodies: never more than the limit out, valid streams come back whole.
#[test]
fn inflate_corpus_and_regressions_hold() {
    replay("inflate", check_inflate);
}

/// Config text: what parses survives the env-override round trip, checked configs compile.
#[test]
fn alert_config_corpus_and_regressions_hold() {
    replay("alert_config", check_alert_config);
}

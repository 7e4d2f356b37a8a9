//! The alert configuration's fuzzing invariants, for the server's `alert_config` fuzz target
//! and its regression tests.

// These checks assert by panicking: that is how the fuzzer and the tests see a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use faultline_schema::{Level, Record, Timestamp, Value};

use crate::alert_config::AlertsConfig;
use crate::eval::Interest;
use crate::rule::Rule;

/// The alert part of the `alert_config` fuzz target (the server's
/// `fuzzing::check_alert_config` parses the whole config file): `alerts`, whose check gave
/// `checked`, also compiles exactly when the check passed, with one rule per
/// `[alerts.rules.NAME]`; and every compiled rule can look at, group and describe a record
/// its filter matches without panicking.
pub fn check_compiled_alerts(mut alerts: AlertsConfig, checked: Result<(), String>) {
    // The rules file is a path on this machine, not part of the input.
    alerts.rules_file = None;
    let compiled = match alerts.compile() {
        Ok(compiled) => compiled,
        Err(e) => {
            assert!(checked.is_err(), "check passed but compile failed: {e}");
            return;
        }
    };
    assert!(checked.is_ok(), "compile passed but check failed");
    assert_eq!(
        compiled.rules.len(),
        alerts.rules.len(),
        "one rule per table"
    );
    let interest = Interest::new(compiled.rules.clone(), &compiled.meta_keys);
    for rule in &compiled.rules {
        let record = matching_record(rule, &compiled.meta_keys);
        let _ = rule.horizon_ms();
        let _ = rule.query();
        if let Some(observed) = interest.observe(&record)
            && rule.wants(&observed)
        {
            let group = rule.group_of(&observed).unwrap_or_default();
            let _ = rule.render_summary(&group, u64::MAX, "detail");
        }
    }
}

/// A record built to pass `rule`'s filter: its first service and event, the highest
/// level, and every `meta` key rules read set to the value the filter wants (or `x`).
fn matching_record(rule: &Arc<Rule>, meta_keys: &[String]) -> Record {
    let filter = &rule.filter;
    let mut record = Record::new(
        Timestamp::from_unix_millis(1_700_000_000_000),
        filter.services.first().map_or("api", String::as_str),
        Level::Critical,
        filter.events.first().map_or("event", String::as_str),
        "message",
    );
    for (slot, key) in meta_keys.iter().enumerate() {
        let want = filter
            .meta
            .iter()
            .find(|(s, _)| *s == slot)
            .map_or("x", |(_, w)| w.as_str());
        record.meta.insert(key.clone(), Value::String(want.into()));
    }
    record
}

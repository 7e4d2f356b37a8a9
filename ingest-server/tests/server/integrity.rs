//! What is acknowledged is stored and reads back, on both stores: records that the server
//! changes after decoding (stamping, sampling) and records PostgreSQL would refuse.

use serde_json::{Value, json};

use crate::common::{TestServer, record, server_with};
use crate::pg::fresh_db;

/// A file-store server, or one on a fresh PostgreSQL database.
async fn server_on(postgres: bool, sampled: bool) -> TestServer {
    let url = if postgres {
        Some(fresh_db().await)
    } else {
        None
    };
    server_with(|c| {
        c.database_url = url;
        if sampled {
            c.sampling.default_per_minute = 1;
        }
    })
    .await
}

/// A record of `service` whose `meta` (with `extra` in it) serializes to exactly
/// `MAX_META_BYTES`.
fn at_the_meta_limit(service: &str, event: &str, extra: Value) -> Value {
    let mut meta = extra.as_object().cloned().unwrap_or_default();
    meta.insert("pad".into(), json!(""));
    let overhead = serde_json::to_string(&meta).unwrap().len();
    meta.insert(
        "pad".into(),
        json!("x".repeat(faultline_schema::MAX_META_BYTES - overhead)),
    );
    assert_eq!(
        serde_json::to_string(&meta).unwrap().len(),
        faultline_schema::MAX_META_BYTES
    );
    let mut r = record(service, "info", event, "at the limit");
    r["meta"] = Value::Object(meta);
    r
}

fn events(records: &[Value]) -> Vec<&str> {
    let mut e: Vec<&str> = records.iter().filter_map(|r| r["event"].as_str()).collect();
    e.sort_unstable();
    e
}

/// Guards batches that could never succeed on PostgreSQL: a NUL in a nested `meta` key
/// passed validation, `jsonb` refused it, and the whole batch got 503 on every retry (its
/// good records never stored). Now the key is scrubbed like every other NUL.
async fn a_nul_in_a_nested_meta_key_fails_nothing(postgres: bool) {
    let s = server_on(postgres, false).await;
    let mut bad = record("api", "info", "nested_nul", "m");
    bad["meta"] = json!({ "x": { "a\u{0}": 1, "l": [{ "\u{0}": "v\u{0}" }] } });
    let body = json!([record("api", "info", "good", "m"), bad]).to_string();
    let (status, resp) = s.ingest(body).await;
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (202, Some(2)),
        "{resp}"
    );
    let stored = s.recent("").await;
    assert_eq!(events(&stored), ["good", "nested_nul"]);
    let nested = stored.iter().find(|r| r["event"] == "nested_nul").unwrap();
    assert_eq!(nested["meta"]["x"]["a\u{FFFD}"], 1, "{nested}");
    assert_eq!(nested["meta"]["x"]["l"][0]["\u{FFFD}"], "v\u{FFFD}");
}

#[tokio::test]
async fn a_nul_in_a_nested_meta_key_fails_nothing_on_the_file_store() {
    a_nul_in_a_nested_meta_key_fails_nothing(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_nested_meta_key_fails_nothing_on_postgres() {
    a_nul_in_a_nested_meta_key_fails_nothing(true).await;
}

/// Guards acknowledged records that never read back: stamping grows `meta` after it was
/// checked (`"user": ""` re-keyed to 18 characters, the sampler's `sample_weight`), and a
/// record at the limit was acknowledged, then skipped by every query. Now a record that
/// stamping pushes over the limit is refused with the reason, and the sampler's weight is
/// not counted in the limit, so every acknowledged record is returned.
async fn every_acknowledged_record_reads_back_after_stamping(postgres: bool) {
    let s = server_on(postgres, true).await;
    let body = json!([
        at_the_meta_limit("api", "empty_user", json!({ "user": "" })),
        at_the_meta_limit(
            "api",
            "anonymized_user",
            json!({ "user": "u_0123456789abcdef" })
        ),
    ]);
    let (status, resp) = s.ingest(body.to_string()).await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp["accepted"], 1, "{resp}");
    assert_eq!(resp["rejected"][0]["index"], 0, "{resp}");
    let error = resp["rejected"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("meta") && error.contains("16384") && error.contains("re-keyed"),
        "{error}"
    );
    // A sampling rate of 1 a minute keeps the 1st, 2nd and 4th of a service's records (the
    // 4th standing for the 3rd too): the 4th gets `meta.sample_weight` on a full `meta`.
    let sampled: Vec<Value> = (0..4)
        .map(|i| at_the_meta_limit("worker", &format!("sampled_{i}"), json!({})))
        .collect();
    let (status, resp) = s.ingest(json!(sampled).to_string()).await;
    assert_eq!(
        (status, resp["accepted"].as_u64(), resp["sampled"].as_u64()),
        (202, Some(4), Some(1)),
        "{resp}"
    );
    let stored = s.recent("").await;
    assert_eq!(
        events(&stored),
        ["anonymized_user", "sampled_0", "sampled_1", "sampled_3"],
        "every acknowledged record reads back"
    );
    let weighted = stored.iter().find(|r| r["event"] == "sampled_3").unwrap();
    assert_eq!(weighted["meta"]["sample_weight"], 2);
}

#[tokio::test]
async fn every_acknowledged_record_reads_back_after_stamping_on_the_file_store() {
    every_acknowledged_record_reads_back_after_stamping(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_record_reads_back_after_stamping_on_postgres() {
    every_acknowledged_record_reads_back_after_stamping(true).await;
}

/// Guards counts a client could inflate (and overflow): `meta.sample_weight` was taken from
/// clients and summed into `/logs/stats`. Only the server's sampler may set it now; a
/// client's is refused per record, with the reason.
#[tokio::test]
async fn a_client_sample_weight_is_refused() {
    let s = server_on(false, false).await;
    let mut weighted = record("api", "critical", "inflated", "m");
    weighted["meta"] = json!({ "sample_weight": u64::MAX });
    let body = json!([weighted, record("api", "critical", "honest", "m")]);
    let (status, resp) = s.ingest(body.to_string()).await;
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (202, Some(1)),
        "{resp}"
    );
    assert_eq!(resp["rejected"][0]["index"], 0);
    let error = resp["rejected"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("meta.sample_weight") && error.contains("sampler"),
        "{error}"
    );
    assert_eq!(events(&s.recent("").await), ["honest"]);
}

//! Sampling above a rate: a chatty service's INFO lines are thinned to about the rate,
//! its errors are all kept, and `/logs/stats` still reports what was sent, on the file
//! store and on PostgreSQL.

use serde_json::{Value, json};

use crate::common::{TestServer, metric, server_with};
use crate::pg::fresh_db;
use crate::process::now_record;

const RATE: u64 = 500;
const INFOS: u64 = 10_000;
const ERRORS: u64 = 200;

async fn sampled_server(database_url: Option<String>) -> TestServer {
    server_with(|c| {
        c.keys[0].services = vec!["*".into()];
        c.sampling.default_per_minute = RATE;
        c.database_url = database_url;
    })
    .await
}

/// Sends 10,000 INFO and 200 ERROR lines from `service` (well within a minute) and checks
/// what was kept and what `/logs/stats` says.
async fn ten_thousand_lines(s: &TestServer, service: &str) {
    let (mut accepted, mut sampled) = (0, 0);
    for batch in 0..10 {
        let mut records: Vec<Value> = (0..INFOS / 10)
            .map(|i| now_record(service, "info", &format!("line {batch}-{i}")))
            .collect();
        for i in 0..ERRORS / 10 {
            records.insert(
                (i * 37) as usize,
                now_record(service, "error", &format!("error {batch}-{i}")),
            );
        }
        let (status, body) = s.ingest(json!(records).to_string()).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["rejected"], json!([]));
        accepted += body["accepted"].as_u64().unwrap();
        sampled += body["sampled"].as_u64().unwrap();
    }
    assert_eq!(
        accepted,
        INFOS + ERRORS,
        "sampled records count as accepted"
    );

    // Kept: the first RATE, then one in ceil(n / RATE) as n grows: the sum of 1/ceil(n/500)
    // over n = 501..10,000 is about 1,300, so about 1,800 in all (rate * (1 + ln 20) is the
    // continuous bound, 1,998).
    let kept_infos = INFOS - sampled;
    assert!(
        (RATE + 1_000..=2_000).contains(&kept_infos),
        "{kept_infos} INFO lines kept of {INFOS} at {RATE} per minute"
    );

    let (status, recent) = s
        .get(&format!(
            "/logs/recent?service={service}&level=ERROR&limit=1000"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        recent["records"].as_array().unwrap().len() as u64,
        ERRORS,
        "every error is kept"
    );
    let (_, recent) = s
        .get(&format!("/logs/recent?service={service}&limit=1000"))
        .await;
    let weighted = recent["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["level"] == "INFO")
        .filter_map(|r| r["meta"]["sample_weight"].as_u64())
        .count();
    assert!(weighted > 0, "kept lines carry their weight");

    let (status, stats) = s
        .get(&format!("/logs/stats?service={service}&window=10m"))
        .await;
    assert_eq!(status, 200, "{stats}");
    let total = |level: &str| {
        stats["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["level"] == level)
            .map_or(0, |t| t["count"].as_u64().unwrap())
    };
    // The weights add up to every line sent except those skipped since the last kept INFO
    // line, fewer than the last stride: ceil(10,000 / 500) = 20.
    let stride = INFOS.div_ceil(RATE);
    let infos = total("INFO");
    assert!(
        (INFOS - stride + 1..=INFOS).contains(&infos),
        "stats say {infos} INFO lines, {INFOS} were sent"
    );
    assert_eq!(total("ERROR"), ERRORS);

    let (_, text) = s.get("/metrics").await;
    let text = text.as_str().unwrap();
    let series = format!("faultline_ingest_records_sampled_total{{service=\"{service}\"}}");
    assert_eq!(metric(text, &series), Some(sampled as f64), "{series}");
}

#[tokio::test]
async fn sampling_keeps_about_the_rate_and_stats_keep_the_volume() {
    let s = sampled_server(None).await;
    ten_thousand_lines(&s, "chatty-file").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sampling_stats_add_up_weights_in_postgres() {
    let s = sampled_server(Some(fresh_db().await)).await;
    ten_thousand_lines(&s, "chatty-pg").await;
}

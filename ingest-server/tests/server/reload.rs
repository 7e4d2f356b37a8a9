//! Operations on a running server, through the real binary: SIGHUP reloads of the config
//! under load, the daily quota across a restart, and the JSON access log.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::ADMIN;
use crate::process::{
    KEY, Proc, client, get, ids_on_disk, metrics_text, now_record, post, spawn_with,
};

const OLD_KEY: &str = "sk_reload_old_0123";
const NEW_KEY: &str = "sk_reload_new_4567";

/// The config of the reload test: key `old` (or `new`), an alert rule `errors` that fires
/// on one ERROR, and `extra` appended.
fn reload_config(key: &str, extra: &str) -> String {
    format!(
        r#"
[[keys]]
name = "{key}"
kind = "secret"
key_env = "{var}"
services = ["*"]

[alerts]
evaluation_interval = "100ms"

[alerts.rules.errors]
kind = "threshold"
filter = {{ service = "api", level = "ERROR" }}
window = "10m"
threshold = 1
actions = ["system_check"]
{extra}
"#,
        var = if key == "old" { "OLD_KEY" } else { "NEW_KEY" },
    )
}

fn sighup(p: &Proc) {
    let pid = p.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

async fn status_with(c: &reqwest::Client, base: &str, key: &str) -> u16 {
    post(c, base, key, &json!([now_record("api", "info", "probe")]))
        .await
        .unwrap()
        .0
}

/// Waits (at most 10 s) until `check` holds.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `n` failed reloads are counted.
async fn reload_errors_reach(c: &reqwest::Client, p: &Proc, n: u32) {
    let series = format!("faultline_config_reloads_total{{result=\"error\"}} {n}");
    eventually(&series, || async {
        metrics_text(c, &p.base).await.contains(&series)
    })
    .await;
}

fn rule_status(alerts: &Value, rule: &str) -> Option<String> {
    alerts["rules"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == rule)
        .map(|r| r["status"].as_str().unwrap_or("").to_owned())
}

/// Guards the reload contract: a good file swaps keys and rules with nothing refused under
/// load, a broken one changes nothing and is counted.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_keys_and_rules_under_load_and_a_broken_file_keeps_them() {
    let data = tempfile::tempdir().unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("faultline.toml");
    std::fs::write(&conf, reload_config("old", "")).unwrap();
    let p = spawn_with(
        data.path(),
        Some(&conf),
        true,
        &[("OLD_KEY", OLD_KEY), ("NEW_KEY", NEW_KEY)],
    );
    let c = client();
    assert_eq!(status_with(&c, &p.base, OLD_KEY).await, 202);
    assert_eq!(status_with(&c, &p.base, NEW_KEY).await, 401);
    // One ERROR fires `errors`: its state must outlive the reloads.
    let (s, _) = post(
        &c,
        &p.base,
        KEY,
        &json!([now_record("api", "error", "boom")]),
    )
    .await
    .unwrap();
    assert_eq!(s, 202);
    eventually("rule errors fires", || async {
        let (_, alerts) = get(&c, &p.base, ADMIN, "/alerts").await;
        rule_status(&alerts, "errors").as_deref() == Some("firing")
    })
    .await;

    // Clients post without pause (the shortcut key, which every reload keeps).
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for client_no in 0..3u64 {
        let (stop, failed, acked, base) =
            (stop.clone(), failed.clone(), acked.clone(), p.base.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ids: Vec<String> = (0..10u64)
                    .map(|i| format!("00000000-0000-4{client_no:03x}-8000-{:012x}", n * 10 + i))
                    .collect();
                n += 1;
                let batch: Vec<Value> = ids
                    .iter()
                    .map(|id| {
                        let mut r = now_record("api", "info", "during reload");
                        r["id"] = json!(id);
                        r
                    })
                    .collect();
                match post(&c, &base, KEY, &json!(batch)).await {
                    Ok((202, _)) => acked.lock().unwrap().extend(ids),
                    other => {
                        eprintln!("refused during reload: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A good file: key `old` replaced by `new`, a rule added, `listen` changed (kept).
    std::fs::write(
        &conf,
        format!(
            "shutdown_timeout = \"31s\"\n{}",
            reload_config(
                "new",
                "[alerts.rules.added]\nkind = \"threshold\"\nfilter = { service = \"worker\" }\n\
                 window = \"1m\"\nthreshold = 1000\nactions = [\"system_check\"]\n"
            )
        ),
    )
    .unwrap();
    sighup(&p);
    eventually("the new key works", || async {
        status_with(&c, &p.base, NEW_KEY).await == 202
    })
    .await;
    assert_eq!(
        status_with(&c, &p.base, OLD_KEY).await,
        401,
        "the removed key is refused"
    );
    let (_, alerts) = get(&c, &p.base, ADMIN, "/alerts").await;
    assert_eq!(
        rule_status(&alerts, "errors").as_deref(),
        Some("firing"),
        "an unchanged rule keeps its state: {alerts}"
    );
    assert!(rule_status(&alerts, "added").is_some(), "{alerts}");
    let metrics = metrics_text(&c, &p.base).await;
    assert!(
        metrics.contains("faultline_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A broken file: nothing changes, the error is counted.
    std::fs::write(&conf, "[[keys]]\nname = \n").unwrap();
    sighup(&p);
    reload_errors_reach(&c, &p, 1).await;
    assert_eq!(status_with(&c, &p.base, NEW_KEY).await, 202);
    assert_eq!(status_with(&c, &p.base, OLD_KEY).await, 401);
    let (_, alerts) = get(&c, &p.base, ADMIN, "/alerts").await;
    assert!(
        rule_status(&alerts, "added").is_some(),
        "rules kept: {alerts}"
    );
    // A file whose rule is wrong is refused whole: the key it would add does not work.
    std::fs::write(
        &conf,
        reload_config(
            "old",
            "[alerts.rules.bad]\nkind = \"threshold\"\nwindow = \"1m\"\n",
        ),
    )
    .unwrap();
    sighup(&p);
    reload_errors_reach(&c, &p, 2).await;
    assert_eq!(status_with(&c, &p.base, OLD_KEY).await, 401);
    assert_eq!(status_with(&c, &p.base, NEW_KEY).await, 202);
    // A changed rule starts afresh: `errors` needing 5 records no longer fires on one.
    std::fs::write(
        &conf,
        reload_config("new", "").replace("threshold = 1\n", "threshold = 5\n"),
    )
    .unwrap();
    sighup(&p);
    eventually("the changed rule starts afresh", || async {
        let (_, alerts) = get(&c, &p.base, ADMIN, "/alerts").await;
        matches!(rule_status(&alerts, "errors").as_deref(), Some(s) if s != "firing")
    })
    .await;
    assert!(
        metrics_text(&c, &p.base)
            .await
            .contains("faultline_config_reloads_total{result=\"ok\"} 2")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(p.terminate().success());
    let acked = acked.lock().unwrap().clone();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request refused");
    assert!(
        acked.len() > 100,
        "only {} records acknowledged",
        acked.len()
    );
    let stored = ids_on_disk(data.path());
    let missing = acked.iter().filter(|id| !stored.contains_key(*id)).count();
    assert_eq!(missing, 0, "acknowledged records lost");
}

/// Posts `n` records with `key`; returns the status and the `Retry-After` header.
async fn post_n(c: &reqwest::Client, base: &str, n: usize) -> (u16, Option<u64>) {
    let batch: Vec<Value> = (0..n).map(|_| now_record("api", "info", "quota")).collect();
    let r = c
        .post(format!("{base}/logs/ingest"))
        .bearer_auth(KEY)
        .json(&batch)
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (r.status().as_u16(), retry)
}

fn seconds_to_utc_midnight() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    86_400 - now % 86_400
}

/// Guards the daily quota: a batch past it is refused until the next UTC day, and a restart
/// (SIGTERM, or SIGKILL a second after the last count) does not give the key a new quota.
#[tokio::test(flavor = "multi_thread")]
async fn the_daily_quota_is_refused_to_midnight_and_survives_restarts() {
    let data = tempfile::tempdir().unwrap();
    let quota = [("FAULTLINE_LIMITS_DAILY_QUOTA", "30")];
    let c = client();
    let p = spawn_with(data.path(), None, true, &quota);
    assert_eq!(post_n(&c, &p.base, 20).await.0, 202);
    let (status, retry) = post_n(&c, &p.base, 11).await;
    assert_eq!(status, 429, "20 + 11 is past 30");
    let retry = retry.expect("Retry-After");
    let midnight = seconds_to_utc_midnight();
    assert!(
        retry.abs_diff(midnight) <= 5,
        "Retry-After {retry} s, next UTC midnight in {midnight} s"
    );
    assert_eq!(post_n(&c, &p.base, 5).await.0, 202, "25 of 30");
    assert!(p.terminate().success());

    let p = spawn_with(data.path(), None, true, &quota);
    assert_eq!(
        post_n(&c, &p.base, 6).await.0,
        429,
        "25 + 6 after a restart"
    );
    assert_eq!(post_n(&c, &p.base, 4).await.0, 202, "29 of 30");
    // Persisted within a second even without a clean stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.kill9();

    let p = spawn_with(data.path(), None, true, &quota);
    assert_eq!(post_n(&c, &p.base, 2).await.0, 429, "29 + 2 after SIGKILL");
    assert_eq!(post_n(&c, &p.base, 1).await.0, 202, "30 of 30");
    let (status, _) = post_n(&c, &p.base, 1).await;
    assert_eq!(status, 429);
    let metrics = metrics_text(&c, &p.base).await;
    assert!(
        metrics.contains("reason=\"quota_exceeded\""),
        "refusals are counted by reason"
    );
    assert!(p.terminate().success());
}

/// Guards secrets in the access log: keys and tokens arrive in headers and in query
/// parameters, and none may reach a line; the key's name does.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_names_keys_and_never_holds_one() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("access.log");
    let public = "pk_access_public_99";
    let backend = "sk_access_backend_55";
    let conf = data.path().join("faultline.toml");
    std::fs::write(
        &conf,
        format!(
            "access_log = {log:?}\n[[keys]]\nname = \"web\"\nkind = \"public\"\nkey = \"{public}\"\n\
             services = [\"ui\"]\norigins = [\"http://localhost:5173\"]\n\
             [[keys]]\nname = \"backend\"\nkind = \"secret\"\nkey_env = \"FAULTLINE_TEST_BACKEND\"\n\
             services = [\"*\"]\n",
            log = log.to_str().unwrap()
        ),
    )
    .unwrap();
    let p = spawn_with(
        data.path(),
        Some(&conf),
        true,
        &[("FAULTLINE_TEST_BACKEND", backend)],
    );
    let c = client();
    let base = &p.base;
    let batch = json!([now_record("api", "info", "logged")]);
    let ui = json!([now_record("ui", "info", "logged")]);
    let envelope = format!(
        "{{\"dsn\":\"http://{backend}@127.0.0.1/1\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"hi\",\"level\":\"error\"}}\n"
    );
    let sent = [
        c.post(format!("{base}/logs/ingest"))
            .bearer_auth(backend)
            .json(&batch),
        c.post(format!("{base}/logs/ingest"))
            .header("x-faultline-key", backend)
            .json(&batch),
        c.post(format!("{base}/logs/ingest?key={backend}&x=1"))
            .json(&batch),
        c.post(format!("{base}/logs/ingest?key={public}"))
            .header("origin", "http://localhost:5173")
            .json(&ui),
        c.post(format!("{base}/v1/logs?key={backend}"))
            .header("content-type", "application/json")
            .body("{\"resourceLogs\":[]}"),
        c.post(format!("{base}/api/1/envelope/?sentry_key={backend}"))
            .body(envelope.clone()),
        c.post(format!("{base}/api/1/envelope/"))
            .header(
                "x-sentry-auth",
                format!("Sentry sentry_key={backend}, sentry_version=7"),
            )
            .body(envelope.clone()),
        c.post(format!("{base}/api/1/envelope/")).body(envelope),
        c.get(format!("{base}/logs/recent?key={ADMIN}")),
        c.get(format!("{base}/logs/recent")).bearer_auth(ADMIN),
        c.post(format!("{base}/logs/ingest"))
            .bearer_auth("sk_wrong_guess_77")
            .json(&batch),
    ];
    let mut statuses = Vec::new();
    for request in sent {
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses[0], 202, "{statuses:?}");
    assert_eq!(statuses[3], 202, "{statuses:?}");
    assert!(p.terminate().success());

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [backend, KEY, public, ADMIN, "sk_wrong_guess_77"] {
        assert!(
            !text.contains(secret),
            "{secret} in the access log:\n{text}"
        );
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), statuses.len(), "{text}");
    let keys: Vec<&str> = lines
        .iter()
        .map(|l| l["key"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        keys,
        [
            "backend", "backend", "backend", "web", "backend", "backend", "backend", "-", "admin",
            "admin", "unknown"
        ]
    );
    for (line, status) in lines.iter().zip(&statuses) {
        assert_eq!(line["status"], *status);
        assert!(
            line["path"].as_str().is_some_and(|p| !p.contains('?')),
            "{line}"
        );
        assert_eq!(line["client"], "127.0.0.1");
        assert!(line["duration_ms"].as_f64().is_some() && line["ts"].is_string());
    }
    assert_eq!(lines[0]["method"], "POST");
    assert_eq!(lines[0]["path"], "/logs/ingest");
    assert_eq!(
        lines[0]["bytes_in"].as_u64(),
        Some(batch.to_string().len() as u64)
    );
}

/// Guards the quota across nodes: two servers on one PostgreSQL share a key's count (each
/// reads the other's within a second), and it survives both restarting.
#[tokio::test(flavor = "multi_thread")]
async fn the_daily_quota_is_shared_by_nodes_on_postgres_and_survives_restarts() {
    let url = crate::pg::fresh_db().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("FAULTLINE_LIMITS_DAILY_QUOTA", "30"),
    ];
    let c = client();
    let a = spawn_with(a_dir.path(), None, true, &env);
    let b = spawn_with(b_dir.path(), None, true, &env);
    assert_eq!(post_n(&c, &a.base, 20).await.0, 202);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(post_n(&c, &b.base, 11).await.0, 429, "B knows A's 20");
    assert_eq!(post_n(&c, &b.base, 8).await.0, 202, "28 of 30");
    assert!(a.terminate().success());
    assert!(b.terminate().success());

    let a = spawn_with(a_dir.path(), None, true, &env);
    let (status, retry) = post_n(&c, &a.base, 3).await;
    assert_eq!(status, 429, "28 + 3 after both restarted");
    assert!(retry.unwrap().abs_diff(seconds_to_utc_midnight()) <= 5);
    assert_eq!(post_n(&c, &a.base, 2).await.0, 202);
    assert_eq!(post_n(&c, &a.base, 1).await.0, 429);
    assert!(a.terminate().success());
}

/// Guards the TLS reload beside the config reload: one SIGHUP (with the files' own watch
/// too slow to matter) serves the renewed certificate and applies the new keys.
#[tokio::test(flavor = "multi_thread")]
async fn one_sighup_reloads_the_certificate_and_the_config() {
    use crate::tls::{certificate, curl, install};
    let data = tempfile::tempdir().unwrap();
    let tls = tempfile::tempdir().unwrap();
    certificate(tls.path(), "first");
    certificate(tls.path(), "second");
    install(tls.path(), "first");
    let conf = tls.path().join("faultline.toml");
    std::fs::write(&conf, reload_config("old", "")).unwrap();
    let (cert, key) = (tls.path().join("live.pem"), tls.path().join("live.key"));
    let p = spawn_with(
        data.path(),
        Some(&conf),
        true,
        &[
            ("OLD_KEY", OLD_KEY),
            ("NEW_KEY", NEW_KEY),
            ("FAULTLINE_TLS_CERT", cert.to_str().unwrap()),
            ("FAULTLINE_TLS_KEY", key.to_str().unwrap()),
            ("FAULTLINE_TLS_WATCH_INTERVAL", "1h"),
        ],
    );
    let url = format!("{}/healthz", p.base);
    let (first, second) = (tls.path().join("first.pem"), tls.path().join("second.pem"));
    assert_eq!(curl(&first, &[], &url).0, 0);
    install(tls.path(), "second");
    std::fs::write(&conf, reload_config("new", "")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(curl(&first, &[], &url).0, 0, "no reload without SIGHUP");
    sighup(&p);
    let mut builder = reqwest::ClientBuilder::new().timeout(Duration::from_secs(10));
    for pem in [&first, &second] {
        let pem = std::fs::read(pem).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    let c = builder.build().unwrap();
    eventually("the new key works", || async {
        status_with(&c, &p.base, NEW_KEY).await == 202
    })
    .await;
    eventually("the renewed certificate is served", || async {
        curl(&second, &[], &url).0 == 0
    })
    .await;
    assert_eq!(status_with(&c, &p.base, OLD_KEY).await, 401);
    assert!(p.terminate().success());
}

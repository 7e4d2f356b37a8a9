//! The server on PostgreSQL: the HTTP contract over SQL, an outage under load, a crash while
//! the spool drains, `faultline migrate`, and alert state kept in PostgreSQL.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::alerts::{errors, restart_config, restart_while_firing};
use crate::alerts_support::{Capture, Faultline, KEY as ALERT_KEY, run, write_config};
use crate::common::{ADMIN, metric, record, server_with};
use crate::pg::{PrivatePg, fresh_db, fresh_db_on, stored_ids};
use crate::process::{
    KEY, Load, assert_stored_once, client, get, ids_on_disk, metrics_text, now_record, post,
    spawn_with,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_http_contract_holds_over_postgres() {
    let url = fresh_db().await;
    let s = server_with(|c| c.database_url = Some(url.clone())).await;
    let mut user_record = record("api", "error", "payment_failed", "card declined");
    user_record["meta"] = json!({ "user": "u_0123456789abcdef" });
    let body = json!([
        user_record,
        record("api", "LOUD", "x", "bad"),
        record("worker", "info", "tick", "ok")
    ]);
    let (status, resp) = s.ingest(body.to_string()).await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp["accepted"], 2);
    assert_eq!(resp["rejected"][0]["index"], 1);
    // Replay: nothing new stored.
    let records = s.recent("").await;
    let replay: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("received_at");
            r
        })
        .collect();
    let (_, again) = s.ingest(json!(replay).to_string()).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(s.recent("").await.len(), 2);
    assert_eq!(s.recent("level=error").await.len(), 1);
    assert_eq!(s.recent("service=worker").await.len(), 1);
    assert_eq!(s.recent("q=DECLINED").await.len(), 1);
    assert_eq!(s.recent("raw_user=nobody").await.len(), 0);
    assert_eq!(s.recent("service=%27%20OR%201%3D1%20--").await.len(), 0);
    let (status, ready) = s.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["store"]["kind"], "postgres");
    assert_eq!(ready["store"]["spool"]["batches"], 0);
    let req = Request::get("/logs/stats?window=24h")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = s.send(req).await;
    assert_eq!(status, 200);
}

/// Guards `storage.file_copy` (issue 4): with PostgreSQL as the primary store and the file
/// store as a second copy, every acknowledged record is in both, once, and reads are
/// answered by PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn file_copy_writes_both_stores_and_reads_from_postgres() {
    let url = fresh_db().await;
    let s = server_with(|c| {
        c.database_url = Some(url.clone());
        c.storage.file_copy = true;
    })
    .await;
    let ids: Vec<String> = (0..5)
        .map(|i| format!("00000000-00fa-4000-8000-{i:012x}"))
        .collect();
    let batch: Vec<Value> = ids
        .iter()
        .map(|id| {
            let mut r = record("api", "error", "fanout", id);
            r["id"] = json!(id);
            r
        })
        .collect();
    let (status, resp) = s.ingest(json!(batch).to_string()).await;
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (202, Some(5)),
        "{resp}"
    );
    let (_, ready) = s.get("/readyz").await;
    assert_eq!(ready["store"]["kind"], "fanout", "{ready}");

    // Acknowledged means fsynced in the file copy and committed in PostgreSQL.
    let in_postgres = stored_ids(&url).await;
    let in_files = ids_on_disk(&s._dir.path().join("segments"));
    for id in &ids {
        assert_eq!(in_postgres.get(id), Some(&1), "{id} in PostgreSQL");
        assert_eq!(in_files.get(id), Some(&1), "{id} in the file copy");
    }

    // Reads come from PostgreSQL: a row deleted there is gone from the API, although the
    // file copy still has it.
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM system_logs WHERE id = $1::uuid")
        .bind(&ids[0])
        .execute(&mut c)
        .await
        .unwrap();
    let recent = s.recent("event=fanout").await;
    let served: HashSet<&str> = recent.iter().filter_map(|r| r["id"].as_str()).collect();
    let expected: HashSet<&str> = ids[1..].iter().map(String::as_str).collect();
    assert_eq!(served, expected);
    assert!(ids_on_disk(&s._dir.path().join("segments")).contains_key(&ids[0]));
}

pub(crate) fn next_ids(prefix: u64, n: &mut u64, count: u64) -> Vec<String> {
    (0..count)
        .map(|_| {
            *n += 1;
            format!("00000000-{prefix:04x}-4000-8000-{:012x}", *n)
        })
        .collect()
}

pub(crate) fn batch_with(ids: &[String]) -> Value {
    json!(
        ids.iter()
            .map(|id| {
                let mut r = now_record("api", "info", "load");
                r["id"] = json!(id);
                r
            })
            .collect::<Vec<_>>()
    )
}

/// Waits until `/readyz` shows an empty spool.
async fn wait_drained(base: &str, within: Duration) {
    let c = client();
    let deadline = Instant::now() + within;
    loop {
        let r = c.get(format!("{base}/readyz")).send().await;
        if let Ok(r) = r {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if v["store"]["spool"]["batches"] == 0 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the spool did not drain within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_under_load_loses_and_doubles_nothing() {
    let pg = PrivatePg::start();
    let url = fresh_db_on(&pg.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_with(
        dir.path(),
        None,
        true,
        &[
            ("DATABASE_URL", &url),
            ("FAULTLINE_POSTGRES_WRITE_TIMEOUT", "1s"),
        ],
    );
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c_no in 0..4u64 {
        let (acked, stop, base) = (acked.clone(), stop.clone(), p.base.clone());
        clients.push(tokio::spawn(async move {
            let c = client();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let ids = next_ids(c_no, &mut n, 20);
                if let Ok((202, _)) = post(&c, &base, KEY, &batch_with(&ids)).await {
                    acked.lock().unwrap().extend(ids);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.down();
    let during_start = acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let during = acked.lock().unwrap().len() - during_start;
    assert!(
        during > 0,
        "ingest kept acknowledging while PostgreSQL was down"
    );
    // Depth and age of the spool, on /readyz and /metrics: the oldest batch has waited
    // since shortly after PostgreSQL went down, 20 seconds ago.
    let (_, ready) = get(&client(), &p.base, ADMIN, "/readyz").await;
    let spool = &ready["store"]["spool"];
    assert!(spool["batches"].as_u64().unwrap() > 0, "{ready}");
    assert!(spool["records"].as_u64().unwrap() > 0, "{ready}");
    assert!(spool["bytes"].as_u64().unwrap() > 0, "{ready}");
    let age = spool["oldest_age_seconds"].as_f64().unwrap();
    assert!((10.0..60.0).contains(&age), "{ready}");
    let text = metrics_text(&client(), &p.base).await;
    let gauge = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("no {name} in {text}"));
    assert!(gauge("faultline_spool_batches") > 0.0, "{text}");
    assert!(gauge("faultline_spool_bytes") > 0.0, "{text}");
    assert!(
        (10.0..60.0).contains(&gauge("faultline_spool_oldest_age_seconds")),
        "{text}"
    );
    pg.up();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    wait_drained(&p.base, Duration::from_secs(60)).await;
    let text = metrics_text(&client(), &p.base).await;
    assert_eq!(
        metric(&text, "faultline_spool_batches"),
        Some(0.0),
        "{text}"
    );
    assert!(p.terminate().success());

    let stored = stored_ids(&url).await;
    let acked = acked.lock().unwrap();
    let missing = acked.iter().filter(|id| !stored.contains_key(*id)).count();
    assert_eq!(missing, 0, "of {} acknowledged records", acked.len());
    assert!(stored.values().all(|&n| n == 1), "a record stored twice");
    eprintln!(
        "outage: {} acknowledged ({during} while down), all stored once",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_while_the_spool_drains_loses_and_doubles_nothing() {
    let pg = PrivatePg::start();
    let url = fresh_db_on(&pg.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("FAULTLINE_POSTGRES_WRITE_TIMEOUT", "500ms"),
    ];
    let p = spawn_with(dir.path(), None, true, &env);
    // Migrations applied while up; then an outage fills the spool.
    let c = client();
    let mut acked = HashSet::new();
    let mut n = 0;
    let ids = next_ids(9, &mut n, 10);
    assert_eq!(
        post(&c, &p.base, KEY, &batch_with(&ids)).await.unwrap().0,
        202
    );
    acked.extend(ids);
    pg.down();
    for _ in 0..300 {
        let ids = next_ids(9, &mut n, 20);
        assert_eq!(
            post(&c, &p.base, KEY, &batch_with(&ids)).await.unwrap().0,
            202
        );
        acked.extend(ids);
    }
    // The database returns; kill the server as soon as the drain is under way.
    pg.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, ready) = get(&c, &p.base, ADMIN, "/readyz").await;
        let batches = ready["store"]["spool"]["batches"].as_u64().unwrap_or(0);
        if batches < 300 {
            break;
        }
        assert!(Instant::now() < deadline, "the drain never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    p.kill9();
    let partly = stored_ids(&url).await.len();
    let p = spawn_with(dir.path(), None, true, &env);
    wait_drained(&p.base, Duration::from_secs(60)).await;
    assert!(p.terminate().success());
    let stored = stored_ids(&url).await;
    assert!(
        partly < stored.len(),
        "the kill landed mid-drain ({partly} of {})",
        stored.len()
    );
    assert!(
        acked.iter().all(|id| stored.contains_key(id)),
        "an acknowledged record was lost"
    );
    assert!(stored.values().all(|&n| n == 1), "a record stored twice");
}

/// Guards crash safety on PostgreSQL: `kill -9` at random moments under load from several
/// clients, restarting on the same data dir and database each time, leaves every record
/// that got a 202 in `system_logs` exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_kill_9_under_load_on_postgres_loses_and_doubles_nothing() {
    const ROUNDS: u64 = 5;
    let url = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", url.as_str())];
    let load = Load::default();
    load.kill_rounds(ROUNDS, || spawn_with(dir.path(), None, true, &env))
        .await;
    // A last start drains anything a write timeout left in the spool.
    let p = spawn_with(dir.path(), None, true, &env);
    wait_drained(&p.base, Duration::from_secs(60)).await;
    assert!(p.terminate().success());
    let stored = stored_ids(&url).await;
    assert_stored_once(&load.acked.lock().unwrap(), &stored);
    eprintln!(
        "kill -9 x{ROUNDS} on PostgreSQL: {} acknowledged records, all stored once",
        load.acked()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn faultline_migrate_creates_the_schema() {
    let url = fresh_db().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["migrate", "--database-url", &url])
        .env_remove("FAULTLINE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE tablename IN ('system_logs', 'system_checks', 'alert_state') ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(tables, ["alert_state", "system_checks", "system_logs"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["migrate"])
        .env_remove("DATABASE_URL")
        .env_remove("FAULTLINE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_state_checks_and_deliveries_round_trip_in_postgres() {
    use faultline_alerts::{
        AlertState, AlertStore, CheckKind, CheckStatus, Delivery, DeliveryStatus, NotifyEvent,
        PgAlertStore, StateChanges, StoredAlert, StoredRule, SystemCheck,
    };
    use faultline_schema::Timestamp;
    let url = fresh_db().await;
    faultline_store::PostgresStore::migrate(&url, 1)
        .await
        .unwrap();
    let store = PgAlertStore::new(sqlx::PgPool::connect(&url).await.unwrap());

    let state: AlertState = serde_json::from_value(
        json!({"status": "firing", "sent": 1, "value": 5, "detail": "5 ERROR in 1m", "owed": ["resolved"], "updated_at": "2026-11-22T12:00:00.000Z"}),
    )
    .unwrap();
    let alert = StoredAlert {
        rule: "api_errors".into(),
        group: String::new(),
        labels: Default::default(),
        state: state.clone(),
    };
    let grouped = StoredAlert {
        rule: "ui_user".into(),
        group: "meta.user=u_1".into(),
        labels: [("meta.user".to_owned(), "u_1".to_owned())].into(),
        state,
    };
    let rule = StoredRule {
        rule: "api_errors".into(),
        reset_at: Some(Timestamp::from_unix_millis(1_000)),
        evaluated_at: None,
    };
    let changes = StateChanges {
        rules: vec![rule.clone()],
        upsert: vec![alert.clone(), grouped.clone()],
        delete: vec![],
    };
    store.save(changes).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.rules, vec![rule]);
    assert_eq!(loaded.alerts, vec![alert.clone(), grouped]);
    let delete = StateChanges {
        delete: vec![("ui_user".into(), "meta.user=u_1".into())],
        ..StateChanges::default()
    };
    store.save(delete).await.unwrap();
    assert_eq!(store.load().await.unwrap().alerts, vec![alert]);

    let t = Timestamp::now().unix_millis();
    let check = |name: &str, status, ms: i64| SystemCheck {
        name: name.into(),
        kind: CheckKind::Rule,
        status,
        detail: format!("{name} at {ms}"),
        group: None,
        source: "evaluator".into(),
        checked_at: Timestamp::from_unix_millis(ms),
    };
    store
        .append_checks(vec![
            check("a", CheckStatus::Ok, t - 3),
            check("a", CheckStatus::Failed, t - 2),
            check("b", CheckStatus::Ok, t - 1),
        ])
        .await
        .unwrap();
    let latest = store.latest_checks().await.unwrap();
    let summary: Vec<_> = latest.iter().map(|c| (c.name.as_str(), c.status)).collect();
    assert_eq!(
        summary,
        [("a", CheckStatus::Failed), ("b", CheckStatus::Ok)]
    );
    let recent = store.recent_checks("a", 10).await.unwrap();
    assert_eq!(
        recent,
        vec![
            check("a", CheckStatus::Failed, t - 2),
            check("a", CheckStatus::Ok, t - 3)
        ]
    );

    let delivery = |rule: &str, ms: i64| Delivery {
        rule: rule.into(),
        group: String::new(),
        channel: "slack".into(),
        event: NotifyEvent::Firing,
        status: DeliveryStatus::Sent,
        attempts: 1,
        error: None,
        code: Some(200),
        at: Timestamp::from_unix_millis(ms),
        duration_ms: 12,
    };
    store
        .append_deliveries(vec![
            delivery("r", t - 3),
            delivery("r", t - 2),
            delivery("r", t - 1),
            delivery("s", t),
        ])
        .await
        .unwrap();
    let recent = store.recent_deliveries(2).await.unwrap();
    let got: Vec<_> = recent
        .iter()
        .map(|d| (d.rule.as_str(), d.at.unix_millis() - t))
        .collect();
    assert_eq!(got, [("r", -1), ("r", -2), ("s", 0)]);
}

/// The alert state rows of `rule` in PostgreSQL: (group, status).
async fn alert_rows(url: &str, rule: &str) -> Vec<(String, String)> {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT group_key, state->>'status' FROM alert_state WHERE rule = $1 ORDER BY group_key",
    )
    .bind(rule)
    .fetch_all(&mut c)
    .await
    .unwrap()
}

/// Guards alert state in PostgreSQL (issue 5): with `database_url` set, a restart while an
/// alert fires sends no second page and the resolve still comes once, even though every
/// start gets an empty data dir of its own (another node, or a lost disk), so the state
/// can only have come from PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_while_firing_on_postgres_sends_no_second_notification_and_still_resolves() {
    let url = fresh_db().await;
    let capture = Capture::start().await;
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(conf.path(), &restart_config(&capture, "10s"));
    let env = [("DATABASE_URL", url.clone())];
    restart_while_firing(&capture, || {
        let data = tempfile::tempdir().unwrap();
        (
            Faultline::start(data.path(), Some(&config), &env),
            Some(data),
        )
    })
    .await;
    assert_eq!(
        alert_rows(&url, "api_errors").await,
        [(String::new(), "resolved".to_owned())],
        "the alert's state is in PostgreSQL"
    );
}

/// `check-alerts` and `summary` on PostgreSQL use the alert state there: from data dirs of
/// their own they see what the server decided, `check-alerts` is kept out while a server
/// evaluates, and what it records and resets is what the next process sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_alerts_and_summary_use_the_alert_state_in_postgres() {
    let url = fresh_db().await;
    let capture = Capture::start().await;
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(
        conf.path(),
        &restart_config(&capture, "1m").replace(
            "actions = [\"hook\"]",
            "actions = [\"hook\", \"system_check\"]",
        ),
    );
    let env = [("DATABASE_URL", url.clone())];
    let server_dir = tempfile::tempdir().unwrap();
    let server = Faultline::start(server_dir.path(), Some(&config), &env);
    server.post(ALERT_KEY, None, errors("api", 3)).await;
    capture.wait_for("hook", 1, Duration::from_secs(5)).await;
    // Another machine's cron: its own (empty) data dir, the same database.
    let cron = tempfile::tempdir().unwrap();
    let faultline = |args: &[&str]| run(args, cron.path(), Some(&config), &env);

    let (code, _, err) = faultline(&["check-alerts", "--window", "60"]);
    assert_eq!(code, 2, "the server evaluates these rules: {err}");
    assert!(err.contains("in use"), "{err}");
    let (code, out, err) = faultline(&["summary", "--window", "15m", "--json"]);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["status"], "firing", "{s}");
    assert_eq!(s["firing"][0]["rule"], "api_errors", "{s}");
    assert_eq!(s["records"], 3, "{s}");
    assert!(server.terminate().0.success());

    let (code, out, err) = faultline(&["check-alerts", "--window", "60", "--json"]);
    assert_eq!(code, 1, "still firing\n{out}\n{err}");
    let hits: Vec<Value> = capture
        .hits("hook")
        .iter()
        .map(|h| h.body.clone())
        .collect();
    assert_eq!(hits.len(), 1, "and not notified again: {hits:#?}");
    let (_, out, _) = faultline(&["summary", "--window", "15m", "--json"]);
    let s: Value = serde_json::from_str(&out).unwrap();
    let check = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api_errors")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (check["status"].clone(), check["source"].clone()),
        (json!("failed"), json!("check-alerts")),
        "check-alerts recorded its check in PostgreSQL: {s}"
    );

    let (code, out, err) = faultline(&["check-alerts", "--window", "60", "--reset", "api_errors"]);
    assert_eq!(code, 0, "reset: {out}\n{err}");
    let hits = capture.hits("hook");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].body["event"], "resolved");
    assert_eq!(
        alert_rows(&url, "api_errors").await,
        [(String::new(), "resolved".to_owned())],
        "the reset is persisted in PostgreSQL"
    );
    let (_, out, _) = faultline(&["summary", "--window", "15m", "--json"]);
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["firing"], json!([]), "{s}");
}

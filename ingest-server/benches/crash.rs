//! Crash benchmark: `kill -9` the release `faultline` binary under load, `--rounds` times
//! (20 by default), on one data dir; then check that every record that got a 202 is stored
//! exactly once. Run with `cargo xtask bench crash [--rounds N]`, which runs it on the file
//! store and, with `--database-url` (a superuser URL; a fresh database is created on it),
//! on PostgreSQL as the primary store.
//!
//! Each round: four clients send batches of 20 records with client ids as fast as they are
//! answered; the server is killed at a pseudo-random moment 300 to 1100 ms in; it is then
//! restarted on the same data dir (and database), recovering the torn tail or the spool, for
//! the next round. Restart-to-ready is the time from starting the process to the first 200
//! from `/readyz`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::load::{KEY, start_server};

fn spawn(dir: &Path, database_url: Option<&str>) -> (Child, String) {
    let (child, addr) = match database_url {
        Some(url) => start_server(dir, &[("FAULTLINE_LOG", "error"), ("DATABASE_URL", url)]),
        None => start_server(dir, &[("FAULTLINE_LOG", "error")]),
    };
    (child, format!("http://{addr}"))
}

/// Polls `/readyz` until it answers 200 (and, with `drained`, shows an empty spool).
async fn wait_ready(base: &str, drained: bool) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().as_u16() == 200
        {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            let spool = v["store"]["spool"]["batches"].as_u64().unwrap_or(0);
            if !drained || spool == 0 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{base} not ready within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ids_on_disk(dir: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for entry in std::fs::read_dir(dir.join("segments")).unwrap().flatten() {
        if entry.path().extension().is_none_or(|e| e != "ndjson") {
            continue;
        }
        for line in std::fs::read(entry.path()).unwrap().split(|&b| b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line)
                && let Some(id) = v["id"].as_str()
            {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    counts
}

async fn ids_in_postgres(url: &str) -> HashMap<String, usize> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT id::text, count(*) FROM system_logs GROUP BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, n)| (id, usize::try_from(n).unwrap_or(0)))
        .collect()
}

/// Four clients posting batches of 20 until a request fails; acknowledged ids go to `acked`.
fn start_load(
    base: &str,
    round: u64,
    acked: &Arc<Mutex<HashSet<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4u64)
        .map(|c| {
            let (acked, base) = (acked.clone(), base.to_owned());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0u64.. {
                    let ids: Vec<String> = (0..20)
                        .map(|i| format!("00000000-{round:04x}-4{c:03x}-8000-{:012x}", n * 20 + i))
                        .collect();
                    let batch: Vec<serde_json::Value> = ids
                        .iter()
                        .map(|id| {
                            serde_json::json!({"id": id, "ts": faultline_schema::Timestamp::now().to_string(),
                                "service": "api", "level": "INFO", "event": "load", "message": "crash bench"})
                        })
                        .collect();
                    let sent = client
                        .post(format!("{base}/logs/ingest"))
                        .bearer_auth(KEY)
                        .json(&batch)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().as_u16() == 202 => acked.lock().unwrap().extend(ids),
                        _ => break,
                    }
                }
            })
        })
        .collect()
}

fn main() {
    let mut rounds = 20u64;
    let mut database = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(20),
            "--database-url" => database = it.next(),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = database.map(|base| support::load::fresh_db(&rt, &base));
    let url = url.as_deref();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut ready_ms = Vec::new();
    let mut acked_before = 0;
    for round in 0..rounds {
        let started = Instant::now();
        let (mut child, base) = spawn(dir.path(), url);
        rt.block_on(wait_ready(&base, false));
        ready_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(300 + (seed >> 33) % 800);
        rt.block_on(async {
            let tasks = start_load(&base, round, &acked);
            tokio::time::sleep(kill_after).await;
            child.kill().unwrap();
            child.wait().unwrap();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let so_far = acked.lock().unwrap().len();
        eprintln!(
            "round {}: killed after {kill_after:?}, {so_far} acknowledged so far",
            round + 1
        );
        assert!(
            so_far > acked_before,
            "round {}: nothing was acknowledged before the kill",
            round + 1
        );
        acked_before = so_far;
    }
    // One more start recovers the last kill's tail (or drains the spool).
    let (mut child, base) = spawn(dir.path(), url);
    rt.block_on(wait_ready(&base, true));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let stored = match url {
        Some(url) => rt.block_on(ids_in_postgres(url)),
        None => ids_on_disk(dir.path()),
    };
    let acked = acked.lock().unwrap();
    let lost = acked.iter().filter(|id| !stored.contains_key(*id)).count();
    let doubled = stored.values().filter(|&&n| n > 1).count();
    let unacked_kept = stored.keys().filter(|id| !acked.contains(*id)).count();
    ready_ms.sort_by(f64::total_cmp);
    println!(
        "| store | rounds | acknowledged records | lost | stored twice | stored but not acknowledged (in flight at the kill) | restart to ready, median ms | max ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {rounds} | {} | {lost} | {doubled} | {unacked_kept} | {:.0} | {:.0} |",
        if url.is_some() { "PostgreSQL" } else { "file" },
        acked.len(),
        ready_ms[ready_ms.len() / 2],
        ready_ms[ready_ms.len() - 1]
    );
    let store = if url.is_some() {
        "PostgreSQL"
    } else {
        "file store"
    };
    support::load::figure(
        &format!("{store}: acknowledged records lost or doubled over {rounds} kill -9"),
        "records",
        (lost + doubled) as f64,
        "lower",
        None,
        Some(0.0),
    );
    support::load::figure(
        &format!("{store}: restart to ready after kill -9, median"),
        "ms",
        ready_ms[ready_ms.len() / 2],
        "lower",
        None,
        None,
    );
    assert_eq!(
        (lost, doubled),
        (0, 0),
        "acknowledged records lost or doubled"
    );
}

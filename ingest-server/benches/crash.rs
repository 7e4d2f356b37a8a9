//! Crash benchmark: `kill -9` the release `faultline` binary under load, `--rounds` times
//! (20 by default), on one data dir; then check that every record that got a 202 is on disk
//! exactly once. Run with `cargo xtask bench crash [--rounds N]`.
//!
//! Each round: four clients send batches of 20 records with client ids as fast as they are
//! answered; the server is killed at a pseudo-random moment 300 to 1100 ms in; it is then
//! restarted on the same data dir (recovering the torn tail) for the next round.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk_crash_bench";

fn spawn(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("FAULTLINE_CONFIG")
        .env("FAULTLINE_LOG", "error")
        .env("FAULTLINE_ADMIN_TOKEN", "crash-admin")
        .env("FAULTLINE_INGEST_KEY", KEY)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
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

fn main() {
    let mut rounds = 20u64;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--rounds" {
            rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(20);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut restart_ms = Vec::new();
    let mut acked_before = 0;
    for round in 0..rounds {
        let started = Instant::now();
        let (mut child, base) = spawn(dir.path());
        restart_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(300 + (seed >> 33) % 800);
        rt.block_on(async {
            let mut tasks = Vec::new();
            for c in 0..4u64 {
                let (acked, base) = (acked.clone(), base.clone());
                tasks.push(tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    for n in 0u64.. {
                        let ids: Vec<String> = (0..20)
                            .map(|i| format!("00000000-{round:04x}-4{c:03x}-8000-{:012x}", n * 20 + i))
                            .collect();
                        let batch: Vec<serde_json::Value> = ids
                            .iter()
                            .map(|id| {
                                serde_json::json!({"id": id, "ts": "2026-11-22T12:00:00Z", "service": "api",
                                    "level": "INFO", "event": "load", "message": "crash bench"})
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
                }));
            }
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
    // One more start recovers the last kill's tail.
    let (mut child, _) = spawn(dir.path());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let on_disk = ids_on_disk(dir.path());
    let acked = acked.lock().unwrap();
    let lost = acked.iter().filter(|id| !on_disk.contains_key(*id)).count();
    let doubled = on_disk.values().filter(|&&n| n > 1).count();
    let unacked_kept = on_disk.keys().filter(|id| !acked.contains(*id)).count();
    restart_ms.sort_by(f64::total_cmp);
    println!(
        "| rounds | acknowledged records | lost | stored twice | stored but not acknowledged (in flight at the kill) | restart to listening, median ms |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {rounds} | {} | {lost} | {doubled} | {unacked_kept} | {:.0} |",
        acked.len(),
        restart_ms[restart_ms.len() / 2]
    );
    assert_eq!(
        (lost, doubled),
        (0, 0),
        "acknowledged records lost or doubled"
    );
}

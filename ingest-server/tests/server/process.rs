//! Process tests: the real `faultline` binary on port 0 with a temp data dir.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ADMIN, HMAC, SALT, record};

pub const KEY: &str = "sk_process_test";

pub struct Proc {
    pub child: Child,
    pub base: String,
    /// Lines printed before "listening on".
    pub banner: Vec<String>,
}

fn spawn(data_dir: &Path, config: Option<&Path>, secrets_from_env: bool) -> Proc {
    spawn_with(data_dir, config, secrets_from_env, &[])
}

/// Starts `faultline serve` on port 0 with `extra` environment variables.
pub fn spawn_with(
    data_dir: &Path,
    config: Option<&Path>,
    secrets_from_env: bool,
    extra: &[(&str, &str)],
) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("FAULTLINE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for var in [
        "FAULTLINE_ADMIN_TOKEN",
        "FAULTLINE_INGEST_KEY",
        "FAULTLINE_PUBLIC_KEY",
        "FAULTLINE_USER_SALT",
        "FAULTLINE_HMAC_KEY",
        "FAULTLINE_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    if secrets_from_env {
        cmd.env("FAULTLINE_ADMIN_TOKEN", ADMIN)
            .env("FAULTLINE_INGEST_KEY", KEY)
            .env("FAULTLINE_USER_SALT", SALT)
            .env("FAULTLINE_HMAC_KEY", HMAC);
    }
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.envs(extra.iter().copied());
    let mut child = cmd.spawn().expect("start faultline");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut banner = Vec::new();
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let base = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send((base, std::mem::take(&mut banner)));
                    sent = true;
                } else {
                    banner.push(line);
                }
            }
        }
    });
    let (base, banner) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("faultline did not print its listening address");
    Proc {
        child,
        base,
        banner,
    }
}

impl Proc {
    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.sigterm();
        self.wait_exit()
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// Waits (at most 20 s) for the process to exit.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit 20 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn post(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> reqwest::Result<(u16, Value)> {
    let r = c
        .post(format!("{base}/logs/ingest"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

pub async fn get(c: &reqwest::Client, base: &str, token: &str, path: &str) -> (u16, Value) {
    let r = c
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `GET /metrics` as text.
pub async fn metrics_text(c: &reqwest::Client, base: &str) -> String {
    let r = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

fn banner_value(banner: &[String], label: &str) -> String {
    banner
        .iter()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("{label:?} not printed in {banner:?}"))
        .to_owned()
}

pub fn now_record(service: &str, level: &str, message: &str) -> Value {
    let mut r = record(service, level, "e", message);
    r["ts"] = json!(faultline_schema::Timestamp::now().to_string());
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_prints_secrets_once_and_sigterm_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), None, false);
    let admin = banner_value(&p.banner, "admin token");
    let key = banner_value(&p.banner, "secret ingest key");
    assert!(key.starts_with("sk_"), "{key}");
    let c = client();
    let batch = json!([
        now_record("api", "error", "one"),
        now_record("api", "error", "two"),
        now_record("worker", "info", "three"),
    ]);
    let (status, resp) = post(&c, &p.base, &key, &batch).await.unwrap();
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (202, Some(3)),
        "{resp}"
    );
    let (status, _) = get(&c, &p.base, &key, "/logs/recent").await;
    assert_eq!(status, 403, "an ingest key cannot read");
    let (_, before) = get(&c, &p.base, &admin, "/logs/stats?window=1h").await;
    assert!(p.terminate().success(), "graceful exit on SIGTERM");

    let p = spawn(dir.path(), None, false);
    assert!(
        !p.banner.iter().any(|l| l.contains("admin token")),
        "secrets are printed only on the first start: {:?}",
        p.banner
    );
    let (status, recent) = get(&c, &p.base, &admin, "/logs/recent").await;
    assert_eq!(status, 200);
    assert_eq!(recent["records"].as_array().unwrap().len(), 3);
    let (_, after) = get(&c, &p.base, &admin, "/logs/stats?window=1h").await;
    assert_eq!(
        before["totals"], after["totals"],
        "stats rebuilt from the store on start"
    );
    assert!(p.terminate().success());
}

/// Every `.ndjson` line under `dir`, as id -> count.
pub fn ids_on_disk(dir: &Path) -> HashMap<String, usize> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "ndjson") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    let mut counts = HashMap::new();
    for file in files {
        let text = std::fs::read(&file).unwrap();
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(v) = serde_json::from_slice::<Value>(line)
                && let Some(id) = v["id"].as_str()
            {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    counts
}

/// Ingest load: clients posting batches of [`Load::BATCH`] records with ids unique to the
/// round and the client, each until a request fails. Acknowledged ids go to `acked`.
#[derive(Default)]
pub struct Load {
    pub acked: Arc<Mutex<HashSet<String>>>,
    /// Set by the test right after it signalled the server.
    signalled: Arc<AtomicBool>,
    /// Batches sent before `signalled` was set and acknowledged after: in flight then.
    in_flight: Arc<AtomicU64>,
}

impl Load {
    const BATCH: u64 = 20;

    pub fn start(&self, base: &str, round: u64, clients: u64) -> Vec<tokio::task::JoinHandle<()>> {
        self.signalled.store(false, Ordering::SeqCst);
        (0..clients)
            .map(|client_no| {
                let (acked, signalled, in_flight) = (
                    self.acked.clone(),
                    self.signalled.clone(),
                    self.in_flight.clone(),
                );
                let base = base.to_owned();
                tokio::spawn(async move {
                    let c = client();
                    for n in 0.. {
                        let ids: Vec<String> = (0..Load::BATCH)
                            .map(|i| {
                                format!(
                                    "00000000-{round:04x}-4{client_no:03x}-8000-{:012x}",
                                    n * Load::BATCH + i
                                )
                            })
                            .collect();
                        let batch: Vec<Value> = ids
                            .iter()
                            .map(|id| {
                                let mut r = now_record("api", "info", "load");
                                r["id"] = json!(id);
                                r
                            })
                            .collect();
                        let sent_before = !signalled.load(Ordering::SeqCst);
                        match post(&c, &base, KEY, &json!(batch)).await {
                            Ok((202, _)) => {
                                acked.lock().unwrap().extend(ids);
                                if sent_before && signalled.load(Ordering::SeqCst) {
                                    in_flight.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            Ok(_) | Err(_) => break,
                        }
                    }
                })
            })
            .collect()
    }

    /// `rounds` times: starts a server with `spawn`, loads it from four clients and kills it
    /// with SIGKILL at a pseudo-random moment.
    pub async fn kill_rounds(&self, rounds: u64, mut spawn: impl FnMut() -> Proc) {
        let mut moments = kill_moments();
        for round in 0..rounds {
            let p = spawn();
            let tasks = self.start(&p.base, round, 4);
            tokio::time::sleep(moments.next().unwrap()).await;
            let before = self.acked();
            p.kill9();
            for t in tasks {
                t.await.unwrap();
            }
            assert!(
                before > 0,
                "round {round}: no batch was acknowledged before the kill"
            );
        }
    }

    pub fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Restarts the server on `dir` (recovering whatever the test left), stops it, and
    /// checks that every acknowledged id is on disk exactly once.
    async fn check_stored_once(&self, dir: &Path) {
        let p = spawn(dir, None, true);
        let (status, _) = get(&client(), &p.base, ADMIN, "/logs/recent?limit=1").await;
        assert_eq!(status, 200);
        assert!(p.terminate().success());
        assert_stored_once(&self.acked.lock().unwrap(), &ids_on_disk(dir));
    }
}

/// Every id in `acked` is in `stored` (id -> count), and nothing is stored twice.
pub fn assert_stored_once<N: PartialOrd + From<u8> + std::fmt::Debug>(
    acked: &HashSet<String>,
    stored: &HashMap<String, N>,
) {
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged records lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
    let doubled: Vec<_> = stored.iter().filter(|(_, n)| **n > N::from(1)).collect();
    assert!(
        doubled.is_empty(),
        "records stored twice: {:?}",
        doubled.first()
    );
}

/// Pseudo-random moments between 300 and 1100 ms, a new sequence each run: when to kill.
fn kill_moments() -> impl Iterator<Item = Duration> {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    std::iter::repeat_with(move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Duration::from_millis(300 + (seed >> 33) % 800)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_record() {
    const ROUNDS: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let load = Load::default();
    load.kill_rounds(ROUNDS, || spawn(dir.path(), None, true))
        .await;
    load.check_stored_once(dir.path()).await;
    eprintln!(
        "kill -9 x{ROUNDS}: {} acknowledged records, all present once",
        load.acked()
    );
}

/// Guards graceful shutdown (issue 3): SIGTERM while several clients keep posting lets the
/// requests in flight finish and the server exit 0; after a restart every record that got
/// a 202 is on disk exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_every_acknowledged_record_once() {
    const ROUNDS: u64 = 3;
    let dir = tempfile::tempdir().unwrap();
    let load = Load::default();
    for round in 0..ROUNDS {
        let p = spawn(dir.path(), None, true);
        let tasks = load.start(&p.base, round, 4);
        // Signal once the load runs: at least ten more batches acknowledged.
        let target = load.acked() + 10 * Load::BATCH as usize;
        let deadline = Instant::now() + Duration::from_secs(20);
        while load.acked() < target {
            assert!(
                Instant::now() < deadline,
                "round {round}: the load never ran"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        p.sigterm();
        load.signalled.store(true, Ordering::SeqCst);
        let status = tokio::task::spawn_blocking(move || p.wait_exit())
            .await
            .unwrap();
        assert!(
            status.success(),
            "round {round}: exit after SIGTERM: {status}"
        );
        for t in tasks {
            t.await.unwrap();
        }
    }
    let in_flight = load.in_flight.load(Ordering::SeqCst);
    assert!(
        in_flight > 0,
        "no request was in flight when SIGTERM arrived, in {ROUNDS} rounds"
    );
    load.check_stored_once(dir.path()).await;
    eprintln!(
        "SIGTERM x{ROUNDS}: {} acknowledged records ({in_flight} batches in flight at the signal), all present once",
        load.acked()
    );
}

fn write_config(dir: &Path, storage: &str) -> PathBuf {
    let path = dir.join("faultline.toml");
    std::fs::write(&path, format!("[storage]\n{storage}\n")).unwrap();
    path
}

fn segment_bytes(dir: &Path) -> (usize, u64) {
    let seg = dir.join("segments");
    let mut n = 0;
    let mut bytes = 0;
    for e in std::fs::read_dir(seg).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "ndjson") {
            n += 1;
            bytes += e.metadata().unwrap().len();
        }
    }
    (n, bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_spreads_records_over_segments_and_restart_rebuilds_stats() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = write_config(cfg_dir.path(), "segment_max_bytes = 4096");
    let p = spawn(dir.path(), Some(&config), true);
    let c = client();
    for i in 0..20 {
        let batch: Vec<Value> = (0..10)
            .map(|j| {
                now_record(
                    if j % 2 == 0 { "api" } else { "worker" },
                    "error",
                    &format!("r{i}-{j}"),
                )
            })
            .collect();
        let (status, _) = post(&c, &p.base, KEY, &json!(batch)).await.unwrap();
        assert_eq!(status, 202);
    }
    let (segments, _) = segment_bytes(dir.path());
    assert!(
        segments >= 5,
        "200 records of ~250 bytes in 4 KiB segments: {segments}"
    );
    let (_, recent) = get(&c, &p.base, ADMIN, "/logs/recent?limit=1000").await;
    assert_eq!(
        recent["records"].as_array().unwrap().len(),
        200,
        "queries span segments"
    );
    let (_, before) = get(&c, &p.base, ADMIN, "/logs/stats?window=1h").await;
    assert!(p.terminate().success());

    let p = spawn(dir.path(), Some(&config), true);
    let (_, after) = get(&c, &p.base, ADMIN, "/logs/stats?window=1h").await;
    assert_eq!(before["totals"], after["totals"]);
    let total: u64 = after["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 200);
    assert!(p.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_by_bytes_keeps_the_store_bounded_and_the_newest_records() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = write_config(
        cfg_dir.path(),
        "segment_max_bytes = 4096\nretention_bytes = 16384",
    );
    let p = spawn(dir.path(), Some(&config), true);
    let c = client();
    for i in 0..40 {
        let batch: Vec<Value> = (0..10)
            .map(|j| now_record("api", "info", &format!("r{i:02}-{j}")))
            .collect();
        assert_eq!(post(&c, &p.base, KEY, &json!(batch)).await.unwrap().0, 202);
    }
    let (_, bytes) = segment_bytes(dir.path());
    assert!(bytes <= 16384 + 2 * 4096, "store is {bytes} bytes");
    let (_, recent) = get(&c, &p.base, ADMIN, "/logs/recent?limit=1000&q=r39-").await;
    assert_eq!(
        recent["records"].as_array().unwrap().len(),
        10,
        "the newest batch is kept"
    );
    let (_, old) = get(&c, &p.base, ADMIN, "/logs/recent?limit=1000&q=r00-").await;
    assert!(
        old["records"].as_array().unwrap().is_empty(),
        "the oldest batch is gone"
    );
    assert!(p.terminate().success());
}

//! Faults around the server: the data dir's disk filling up under load, and notifier
//! endpoints that hang or fail.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::alerts::errors;
use crate::alerts_support::{Capture, Faultline, Hang, KEY as ALERT_KEY, write_config};
use crate::common::ADMIN;
use crate::pg::is_root;
use crate::process::{KEY, assert_stored_once, client, get, ids_on_disk, now_record, spawn_with};

/// A tmpfs of a fixed size mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        assert!(
            is_root(),
            "this test mounts a tmpfs to fill a disk and must run as root \
             (`sudo -E cargo xtask test`, or in the CI container, which runs as root)"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -t tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// One POST of `ids`: status, `Retry-After` and body.
async fn post_ids(
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> reqwest::Result<(u16, Option<String>, Value)> {
    let batch: Vec<Value> = ids
        .iter()
        .map(|id| {
            let mut r = now_record(
                "api",
                "info",
                "filling the disk with records of some length",
            );
            r["id"] = json!(id);
            r
        })
        .collect();
    let r = c
        .post(format!("{base}/logs/ingest"))
        .bearer_auth(KEY)
        .json(&batch)
        .send()
        .await?;
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, retry_after, r.json().await.unwrap_or(Value::Null)))
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    acked: Mutex<HashSet<String>>,
    /// 503s for a full disk.
    full: AtomicU64,
    /// 202s since the counter was last reset.
    accepted: AtomicU64,
    /// Anything else: status and body.
    unexpected: Mutex<Vec<String>>,
}

/// Clients that post batches of 20 until `stop`, retrying a batch refused with 503; ids
/// unique to the `phase` and the client.
fn start_clients(
    phase: u64,
    base: &str,
    seen: &Arc<Seen>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4u64)
        .map(|client_no| {
            let (base, seen, stop) = (base.to_owned(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                let c = client();
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let ids: Vec<String> = (0..20)
                        .map(|i| {
                            format!(
                                "00000000-{phase:04x}-4{client_no:03x}-8000-{:012x}",
                                n * 20 + i
                            )
                        })
                        .collect();
                    // The same batch again until it is stored: a client honouring the 503.
                    loop {
                        match post_ids(&c, &base, &ids).await {
                            Ok((202, _, _)) => {
                                seen.acked.lock().unwrap().extend(ids);
                                seen.accepted.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Ok((503, retry_after, body)) => {
                                let message = body["error"].as_str().unwrap_or("");
                                if retry_after.is_some() && message.contains("disk") {
                                    seen.full.fetch_add(1, Ordering::SeqCst);
                                } else {
                                    seen.unexpected.lock().unwrap().push(format!(
                                        "503 without Retry-After or a word on the disk: \
                                         {retry_after:?} {body}"
                                    ));
                                }
                            }
                            Ok((status, _, body)) => {
                                seen.unexpected
                                    .lock()
                                    .unwrap()
                                    .push(format!("{status} {body}"));
                            }
                            Err(e) => seen.unexpected.lock().unwrap().push(e.to_string()),
                        }
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_acked_once(seen: &Seen, data_dir: &Path) {
    assert_stored_once(&seen.acked.lock().unwrap(), &ids_on_disk(data_dir));
}

/// Guards the disk-full path end to end: a full data dir answers 503 with Retry-After and
/// says why, loses nothing acknowledged, reports not ready, and takes writes again once
/// space is freed, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_503_loses_nothing_and_recovers_when_space_returns() {
    let disk = Tmpfs::mount("8m");
    let data_dir: PathBuf = disk.path().join("data");
    // Room to give back later.
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; 3 * 1024 * 1024]).unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let config = cfg.path().join("faultline.toml");
    std::fs::write(&config, "[storage]\nsegment_max_bytes = 262144\n").unwrap();
    let p = spawn_with(&data_dir, Some(&config), true, &[]);
    let c = client();

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(0, &p.base, &seen, &stop);
    wait_for("the disk filled up", Duration::from_secs(30), || {
        seen.full.load(Ordering::SeqCst) >= 8
    })
    .await;
    assert!(
        seen.acked.lock().unwrap().len() > 1000,
        "acknowledged before the disk filled"
    );

    // Full: not ready, saying why; reads still answer.
    let (status, ready) = get(&c, &p.base, ADMIN, "/readyz").await;
    assert_eq!(status, 503, "{ready}");
    let reason = ready["reason"].as_str().unwrap_or("");
    assert!(reason.contains("No space left"), "{ready}");
    // Without the token, /readyz is open to anyone: the status, not the error's text (paths,
    // SQL) (issue 21).
    let open = c.get(format!("{}/readyz", p.base)).send().await.unwrap();
    assert_eq!(open.status().as_u16(), 503);
    let open = open.text().await.unwrap();
    assert!(
        !open.contains("No space left") && !open.contains(&*data_dir.to_string_lossy()),
        "{open}"
    );
    let (status, recent) = get(&c, &p.base, ADMIN, "/logs/recent?limit=10").await;
    assert_eq!(
        (status, recent["records"].as_array().map(Vec::len)),
        (200, Some(10))
    );
    assert_acked_once(&seen, &data_dir);
    stop.store(true, Ordering::SeqCst);
    for t in clients {
        t.await.unwrap();
    }
    // With no writes coming, it stays not ready while the disk is full...
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, ready) = get(&c, &p.base, ADMIN, "/readyz").await;
    assert_eq!(status, 503, "{ready}");

    // ...and turns ready once space returns, without a restart or a write to try it.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, ready) = get(&c, &p.base, ADMIN, "/readyz").await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready 10 s after space was freed: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Writes succeed again.
    stop.store(false, Ordering::SeqCst);
    seen.accepted.store(0, Ordering::SeqCst);
    let clients = start_clients(1, &p.base, &seen, &stop);
    wait_for(
        "ingest took writes again after space was freed",
        Duration::from_secs(15),
        || seen.accepted.load(Ordering::SeqCst) >= 10,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for t in clients {
        t.await.unwrap();
    }
    let unexpected = seen.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "{} unexpected answers, e.g. {:?}",
        unexpected.len(),
        unexpected.first()
    );
    assert!(p.terminate().success(), "graceful exit with a full disk");

    // A restart (on a disk that may be full again) recovers every acknowledged record once.
    let p = spawn_with(&data_dir, Some(&config), true, &[]);
    let (status, _) = get(&c, &p.base, ADMIN, "/logs/recent?limit=1").await;
    assert_eq!(status, 200);
    assert!(p.terminate().success());
    assert_acked_once(&seen, &data_dir);
    eprintln!(
        "disk full: {} acknowledged, {} refused with 503, all stored once",
        seen.acked.lock().unwrap().len(),
        seen.full.load(Ordering::SeqCst)
    );
}

/// Guards alerting against bad receivers: while one channel's endpoint hangs and another
/// answers 500, a rule on a healthy channel still notifies, the server keeps answering, the
/// failed attempts are retried and shown with their reasons, and shutdown does not wait on
/// the hung delivery past its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_and_failing_notifiers_do_not_stall_alerts_or_shutdown() {
    let healthy = Capture::start().await;
    let broken = Capture::start().await;
    broken.fail_next(&[500; 16]);
    let hang = Hang::start().await;
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(
        conf.path(),
        &format!(
            r#"
[alerts]
evaluation_interval = "200ms"

[alerts.channels.hang]
kind = "webhook"
url = "{hang}"
timeout = "1s"
retries = 2
backoff = "100ms"

[alerts.channels.hang_long]
kind = "webhook"
url = "{hang_long}"
timeout = "1h"
retries = 0

[alerts.channels.broken]
kind = "webhook"
url = "{broken}"
retries = 2
backoff = "100ms"

[alerts.channels.healthy]
kind = "webhook"
url = "{healthy}"

{rules}"#,
            rules = [
                ("api", r#""hang", "broken""#),
                ("worker", r#""healthy""#),
                ("ui", r#""hang_long""#),
            ]
            .map(|(service, actions)| format!(
                "[alerts.rules.{service}_errors]\nkind = \"threshold\"\n\
                 filter = {{ service = \"{service}\", level = \"ERROR\" }}\n\
                 window = \"1m\"\nthreshold = 3\nactions = [{actions}]\n"
            ))
            .concat(),
            hang = hang.url("hang"),
            hang_long = hang.url("hang_long"),
            broken = broken.url("broken"),
            healthy = healthy.url("healthy"),
        ),
    );
    let server = Faultline::start(data.path(), Some(&config), &[]);

    // The hanging endpoint takes the first attempt and holds it.
    server.post(ALERT_KEY, None, errors("api", 3)).await;
    hang.wait_accepted(1).await;
    // Meanwhile another rule notifies its healthy channel, and the server answers.
    server.post(ALERT_KEY, None, errors("worker", 3)).await;
    healthy.wait_for("healthy", 1, Duration::from_secs(5)).await;
    let rule = server.rule("api_errors").await;
    let finished: Vec<&Value> = rule["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "hang")
        .collect();
    assert!(
        finished.is_empty(),
        "the healthy channel was notified while the hung delivery was still retrying: {rule}"
    );
    let started = Instant::now();
    let health = server.get("/healthz").await;
    assert_eq!(health["status"], "ok");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "/healthz answered late"
    );

    // Both bad channels: every attempt made, each failure recorded with its reason.
    let deliveries = server.deliveries("api_errors", 2).await;
    let hung = &deliveries["hang"];
    assert_eq!(
        (hung["status"].as_str(), hung["attempts"].as_u64()),
        (Some("failed"), Some(3)),
        "{hung}"
    );
    assert!(
        hung["error"].as_str().unwrap().contains("timed out"),
        "{hung}"
    );
    assert_eq!(hang.accepted(), 3, "one connection per attempt");
    let failed = &deliveries["broken"];
    assert_eq!(
        (failed["status"].as_str(), failed["attempts"].as_u64()),
        (Some("failed"), Some(3)),
        "{failed}"
    );
    assert_eq!(failed["code"], 500, "{failed}");
    assert!(
        failed["error"].as_str().unwrap().starts_with("HTTP 500"),
        "{failed}"
    );
    assert_eq!(broken.hits("broken").len(), 3);

    // A delivery that would hang for an hour holds shutdown for at most the documented 10 s.
    server.post(ALERT_KEY, None, errors("ui", 3)).await;
    hang.wait_accepted(4).await;
    let started = Instant::now();
    let (status, log) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(
        took < Duration::from_secs(15),
        "shutdown took {took:?} with a hung notification in flight"
    );
    assert!(
        log.contains("stopping with notifications still being delivered"),
        "the abandoned delivery is logged: {log}"
    );
}

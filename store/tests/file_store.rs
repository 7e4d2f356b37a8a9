//! The file store against real files: durability, dedup, group commit, rotation, retention,
//! crash repair, back-pressure and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faultline_schema::{Level, Map, Record, Timestamp, Uuid, Value};
use faultline_store::{
    FileStore, FileStoreConfig, Query, RecordStore, StatsQuery, StoreError, WriteReceipt,
};
use tempfile::TempDir;

const MINUTE: i64 = 60_000;

/// A fresh, unique id per call, so tests never share ids.
fn next_id() -> Uuid {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Uuid::from_u128(
        (0x0190_0000_0000_7000_8000_u128 << 48) | u128::from(NEXT.fetch_add(1, Ordering::Relaxed)),
    )
}

fn rec(ts_ms: i64, service: &str, level: Level, message: &str) -> Record {
    let mut r = Record::new(
        Timestamp::from_unix_millis(ts_ms),
        service,
        level,
        "e",
        message,
    );
    r.id = Some(next_id());
    r.received_at = Some(Timestamp::now());
    r
}

fn now_ms() -> i64 {
    Timestamp::now().unix_millis()
}

fn open(config: FileStoreConfig) -> FileStore {
    FileStore::open(config).unwrap()
}

fn segments_dir(tmp: &TempDir) -> PathBuf {
    tmp.path().join("segments")
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    files.sort();
    files
}

async fn all(store: &FileStore) -> Vec<Record> {
    store
        .query(Query {
            limit: 1000,
            ..Query::default()
        })
        .await
        .unwrap()
}

fn ids(records: &[Record]) -> HashSet<Uuid> {
    records.iter().filter_map(|r| r.id).collect()
}

/// Every record in every segment, read straight from the files (queries stop at 1000).
fn on_disk(tmp: &TempDir) -> Vec<Record> {
    files_with(&segments_dir(tmp), ".ndjson")
        .iter()
        .flat_map(|p| {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| Record::from_json(l.as_bytes()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn write_then_query_filters_orders_and_limits() {
    let tmp = TempDir::new().unwrap();
    let store = open(FileStoreConfig::new(tmp.path()));
    let base = now_ms() - 10 * MINUTE;
    let mut with_user = rec(base + 4, "api", Level::Critical, "Card DECLINED twice");
    with_user.event = "payment_failed".into();
    with_user.meta = Map::from_iter([("user".to_string(), Value::from("u_0123456789abcdef"))]);
    let batch = vec![
        rec(base + 1, "api", Level::Info, "started"),
        rec(base + 3, "worker", Level::Error, "job failed"),
        with_user.clone(),
        rec(base + 2, "api", Level::Warning, "slow card check"),
        rec(base + 5, "worker", Level::Debug, "tick"),
    ];
    let receipt = store.write(batch).await.unwrap();
    assert_eq!(
        receipt,
        WriteReceipt {
            written: 5,
            duplicates: 0
        }
    );

    let got = all(&store).await;
    let ts: Vec<i64> = got.iter().map(|r| r.ts.unix_millis() - base).collect();
    assert_eq!(ts, [5, 4, 3, 2, 1], "newest ts first");
    assert_eq!(got[1], with_user, "stored and read back unchanged");

    let query = |q: Query| {
        let store = store.clone();
        async move {
            store
                .query(q)
                .await
                .unwrap()
                .iter()
                .map(|r| r.ts.unix_millis() - base)
                .collect::<Vec<_>>()
        }
    };
    let api = Some("api".to_string());
    assert_eq!(
        query(Query {
            service: api.clone(),
            ..Query::default()
        })
        .await,
        [4, 2, 1]
    );
    assert_eq!(
        query(Query {
            min_level: Some(Level::Error),
            ..Query::default()
        })
        .await,
        [4, 3]
    );
    assert_eq!(
        query(Query {
            event: Some("payment_failed".into()),
            ..Query::default()
        })
        .await,
        [4]
    );
    assert_eq!(
        query(Query {
            user: Some("u_0123456789abcdef".into()),
            ..Query::default()
        })
        .await,
        [4]
    );
    assert_eq!(
        query(Query {
            text: Some("card".into()),
            ..Query::default()
        })
        .await,
        [4, 2]
    );
    let since = Some(Timestamp::from_unix_millis(base + 2));
    let until = Some(Timestamp::from_unix_millis(base + 4));
    assert_eq!(
        query(Query {
            since,
            until,
            ..Query::default()
        })
        .await,
        [3, 2],
        "until is exclusive"
    );
    assert_eq!(
        query(Query {
            limit: 2,
            ..Query::default()
        })
        .await,
        [5, 4]
    );
    assert_eq!(
        query(Query {
            service: api,
            min_level: Some(Level::Warning),
            limit: 1,
            ..Query::default()
        })
        .await,
        [4]
    );
    let future = Some(Timestamp::from_unix_millis(base + 100));
    assert!(
        query(Query {
            since: future,
            ..Query::default()
        })
        .await
        .is_empty()
    );

    let health = store.health();
    assert!(health.ready);
    assert!(health.stored_bytes > 0);
    assert_eq!(health.queue_capacity, 1024);
    assert_eq!(health.last_error, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_ids_are_stored_once() {
    let tmp = TempDir::new().unwrap();
    let store = open(FileStoreConfig::new(tmp.path()));
    let t = now_ms();
    let a = rec(t, "api", Level::Error, "a");
    let b = rec(t + 1, "api", Level::Error, "b");
    let no_id = |m: &str| {
        let mut r = rec(t + 2, "api", Level::Info, m);
        r.id = None;
        r
    };

    // Within one batch.
    let receipt = store
        .write(vec![
            a.clone(),
            a.clone(),
            b.clone(),
            no_id("x"),
            no_id("x"),
        ])
        .await
        .unwrap();
    assert_eq!(
        receipt,
        WriteReceipt {
            written: 4,
            duplicates: 1
        },
        "records without id are never deduplicated"
    );
    // Across batches: a client retrying the whole batch.
    let c = rec(t + 3, "api", Level::Error, "c");
    let receipt = store
        .write(vec![a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    assert_eq!(
        receipt,
        WriteReceipt {
            written: 1,
            duplicates: 2
        }
    );
    // Only duplicates: acknowledged without a write.
    let receipt = store.write(vec![c.clone()]).await.unwrap();
    assert_eq!(
        receipt,
        WriteReceipt {
            written: 0,
            duplicates: 1
        }
    );
    assert_eq!(all(&store).await.len(), 5);

    // Across a restart: the id set is rebuilt from the segments.
    store.shutdown().await.unwrap();
    drop(store);
    let store = open(FileStoreConfig::new(tmp.path()));
    let d = rec(t + 4, "api", Level::Error, "d");
    let receipt = store.write(vec![a, b, c, d]).await.unwrap();
    assert_eq!(
        receipt,
        WriteReceipt {
            written: 1,
            duplicates: 3
        }
    );
    let got = all(&store).await;
    assert_eq!(got.len(), 6);
    let stored_ids: Vec<Uuid> = got.iter().filter_map(|r| r.id).collect();
    assert_eq!(stored_ids.len(), ids(&got).len(), "no id stored twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_share_fsyncs() {
    const WRITERS: usize = 50;
    const BATCHES: usize = 10;
    const RECORDS: usize = 5;
    let tmp = TempDir::new().unwrap();
    let store = open(FileStoreConfig::new(tmp.path()));
    let fsyncs_before = store.fsync_count();
    let t = now_ms();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for b in 0..BATCHES {
                let batch: Vec<Record> = (0..RECORDS)
                    .map(|i| rec(t + i as i64, "api", Level::Info, &format!("w{w} b{b} r{i}")))
                    .collect();
                sent.extend(batch.iter().map(|r| r.id.unwrap()));
                let receipt = store.write(batch).await.unwrap();
                assert_eq!(
                    receipt,
                    WriteReceipt {
                        written: RECORDS,
                        duplicates: 0
                    }
                );
            }
            sent
        }));
    }
    let mut sent = HashSet::new();
    for task in tasks {
        sent.extend(task.await.unwrap());
    }
    let fsyncs = store.fsync_count() - fsyncs_before;
    let batches = (WRITERS * BATCHES) as u64;
    assert!(
        fsyncs < batches,
        "{fsyncs} fsyncs for {batches} batches: no group commit"
    );
    assert!(fsyncs > 0);
    store.shutdown().await.unwrap();

    let stored = on_disk(&tmp);
    assert_eq!(stored.len(), WRITERS * BATCHES * RECORDS);
    assert_eq!(ids(&stored), sent);
}

/// Every file under `dir` and `dir` itself, with its permission bits.
#[cfg(unix)]
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![(
        dir.to_path_buf(),
        fs::metadata(dir).unwrap().permissions().mode() & 0o777,
    )];
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(modes(&path));
        } else {
            out.push((
                path.clone(),
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            ));
        }
    }
    out
}

/// Guards records readable by every user of the machine: segments, sidecars and the lock
/// were created 0644 in 0755 directories; now 0600 in 0700, whatever the umask allows.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn segments_sidecars_and_directories_are_private_to_the_owner() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    let config = FileStoreConfig {
        segment_max_bytes: 1024,
        ..FileStoreConfig::new(&data)
    };
    let store = open(config);
    for b in 0..8 {
        let batch = (0..4)
            .map(|i| rec(now_ms(), "api", Level::Info, &format!("private {b} {i}")))
            .collect();
        store.write(batch).await.unwrap();
    }
    store.shutdown().await.unwrap();
    let found = modes(&data);
    assert!(
        found
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with(".idx.json")),
        "rotated into sealed segments with sidecars: {found:?}"
    );
    for (path, mode) in found {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_by_size_spans_segments_and_seals_them() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig {
        segment_max_bytes: 2048,
        ..FileStoreConfig::new(tmp.path())
    };
    let store = open(config.clone());
    let t = now_ms() - 5 * MINUTE;
    let mut written = Vec::new();
    for b in 0..40 {
        let batch: Vec<Record> = (0..4)
            .map(|i| {
                rec(
                    t + b * 4 + i,
                    "api",
                    Level::Info,
                    &format!("batch {b} record {i}"),
                )
            })
            .collect();
        written.extend(batch.iter().cloned());
        store.write(batch).await.unwrap();
    }
    let dir = segments_dir(&tmp);
    let segments = files_with(&dir, ".ndjson");
    let sidecars = files_with(&dir, ".idx.json");
    assert!(segments.len() >= 5, "{} segments", segments.len());
    assert_eq!(
        sidecars.len(),
        segments.len() - 1,
        "every sealed segment has a sidecar"
    );
    for segment in &segments[..segments.len() - 1] {
        let len = fs::metadata(segment).unwrap().len();
        assert!(len <= 2048, "{} is {len} bytes", segment.display());
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(&sidecars[0]).unwrap()).unwrap();
    assert_eq!(summary["bytes"], fs::metadata(&segments[0]).unwrap().len());
    assert!(summary["records"].as_u64().unwrap() > 0);

    let check = |got: Vec<Record>, n: usize| {
        let mut expected = written.clone();
        expected.reverse();
        expected.truncate(n);
        assert_eq!(got, expected);
    };
    check(all(&store).await, written.len());
    check(
        store
            .query(Query {
                limit: 7,
                ..Query::default()
            })
            .await
            .unwrap(),
        7,
    );
    // A window in the middle of the oldest segments.
    let since = Timestamp::from_unix_millis(t + 10);
    let until = Timestamp::from_unix_millis(t + 20);
    let got = store
        .query(Query {
            since: Some(since),
            until: Some(until),
            ..Query::default()
        })
        .await
        .unwrap();
    let ts: Vec<i64> = got.iter().map(|r| r.ts.unix_millis() - t).collect();
    assert_eq!(ts, (10..20).rev().collect::<Vec<_>>());
    store.shutdown().await.unwrap();
    drop(store);

    // A crash during rotation leaves a sealed segment without its sidecar: rebuilt on open.
    fs::remove_file(&sidecars[1]).unwrap();
    let before = fs::read(&sidecars[0]).unwrap();
    let store = open(config);
    assert!(sidecars[1].exists(), "missing sidecar rebuilt");
    assert_eq!(fs::read(&sidecars[0]).unwrap(), before);
    check(all(&store).await, written.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_by_bytes_deletes_the_oldest_sealed_segments() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig {
        segment_max_bytes: 1024,
        retention_bytes: 4096,
        ..FileStoreConfig::new(tmp.path())
    };
    let store = open(config);
    let t = now_ms();
    let mut written = Vec::new();
    for b in 0..60 {
        let r = rec(
            t + b,
            "api",
            Level::Info,
            &format!("record {b} {}", "x".repeat(100)),
        );
        written.push(r.clone());
        store.write(vec![r]).await.unwrap();
    }
    let dir = segments_dir(&tmp);
    let total: u64 = files_with(&dir, ".ndjson")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= 4096 + 1024, "{total} bytes kept");
    assert_eq!(store.health().stored_bytes, total);
    assert_eq!(
        files_with(&dir, ".idx.json").len(),
        files_with(&dir, ".ndjson").len() - 1
    );

    let got = all(&store).await;
    assert!(got.len() < written.len() && !got.is_empty());
    // What is left is the newest records, all of them.
    written.reverse();
    assert_eq!(got, written[..got.len()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_by_age_deletes_segments_received_long_ago() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig {
        segment_max_bytes: 1024,
        ..FileStoreConfig::new(tmp.path())
    };
    let store = open(config);
    let forty_days_ago = now_ms() - 40 * 24 * 60 * MINUTE;
    // Each record is larger than a segment may grow, so each gets a segment of its own.
    for b in 0..20 {
        let mut r = rec(forty_days_ago + b, "api", Level::Info, &"old ".repeat(300));
        r.received_at = Some(Timestamp::from_unix_millis(forty_days_ago + b));
        store.write(vec![r]).await.unwrap();
    }
    // New records push the old ones into sealed segments; every rotation runs retention.
    let mut fresh = Vec::new();
    for b in 0..20 {
        let r = rec(now_ms() + b, "api", Level::Info, &"new ".repeat(300));
        fresh.push(r.id.unwrap());
        store.write(vec![r]).await.unwrap();
    }
    let got = all(&store).await;
    assert_eq!(
        ids(&got),
        fresh.into_iter().collect(),
        "only the old records are gone"
    );
    // One segment per new record; the 20 old ones are gone.
    assert_eq!(files_with(&segments_dir(&tmp), ".ndjson").len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_store_rotates_by_age_and_applies_retention_on_a_timer() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig {
        segment_max_age: Duration::from_millis(300),
        retention_age: Duration::from_millis(1),
        ..FileStoreConfig::new(tmp.path())
    };
    let store = open(config);
    store
        .write(vec![rec(now_ms(), "api", Level::Info, "soon gone")])
        .await
        .unwrap();
    assert_eq!(all(&store).await.len(), 1);
    let dir = segments_dir(&tmp);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !all(&store).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no age rotation and retention within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let segments = files_with(&dir, ".ndjson");
    assert_eq!(segments.len(), 1, "only the new active segment is left");
    assert_eq!(fs::metadata(&segments[0]).unwrap().len(), 0);
    assert!(files_with(&dir, ".idx.json").is_empty());
    // The store goes on writing into the new segment.
    store
        .write(vec![rec(now_ms(), "api", Level::Info, "after")])
        .await
        .unwrap();
    assert_eq!(all(&store).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn torn_tail_is_repaired_on_open() {
    let tmp = TempDir::new().unwrap();
    let t = now_ms();
    let store = open(FileStoreConfig::new(tmp.path()));
    let good: Vec<Record> = (0..10)
        .map(|i| rec(t + i, "api", Level::Info, &format!("good {i}")))
        .collect();
    store.write(good.clone()).await.unwrap();
    store.shutdown().await.unwrap();
    drop(store);

    // A crash mid-write: a line of garbage (blocks that never got their data) and half a record.
    let segment = files_with(&segments_dir(&tmp), ".ndjson").pop().unwrap();
    let clean_len = fs::metadata(&segment).unwrap().len();
    let torn = rec(t + 99, "api", Level::Info, "torn").to_json();
    let mut file = fs::OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(b"\x00\x00\xff\xfe not json \x01\n").unwrap();
    file.write_all(&torn.as_bytes()[..torn.len() / 2]).unwrap();
    drop(file);

    let store = open(FileStoreConfig::new(tmp.path()));
    let content = fs::read(&segment).unwrap();
    assert_eq!(content.len() as u64, clean_len, "torn tail cut off");
    assert_eq!(content.last(), Some(&b'\n'));
    let mut expected = good.clone();
    expected.reverse();
    assert_eq!(all(&store).await, expected);

    let after = rec(t + 100, "api", Level::Info, "after repair");
    store.write(vec![after.clone()]).await.unwrap();
    assert_eq!(all(&store).await[0], after);
    store.shutdown().await.unwrap();
    let text = fs::read_to_string(&segment).unwrap();
    assert_eq!(text.lines().count(), 11);
    assert!(
        text.lines()
            .all(|l| Record::from_json(l.as_bytes()).is_ok())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_rebuilds_stats_and_dedup() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig {
        segment_max_bytes: 1024,
        ..FileStoreConfig::new(tmp.path())
    };
    let store = open(config.clone());
    let now = now_ms();
    let this_minute = now - now.rem_euclid(MINUTE);
    let mut sent = Vec::new();
    for i in 0..12 {
        let minute = this_minute - (i % 3) * MINUTE;
        let (service, level) = if i % 2 == 0 {
            ("api", Level::Error)
        } else {
            ("worker", Level::Info)
        };
        let r = rec(minute + i, service, level, "counted");
        sent.push(r.clone());
        store.write(vec![r]).await.unwrap();
    }
    // Outside the 24 h stats window: stored but not counted.
    store
        .write(vec![rec(
            now - 25 * 60 * MINUTE,
            "api",
            Level::Error,
            "old",
        )])
        .await
        .unwrap();

    let stats_query = StatsQuery {
        since: Timestamp::from_unix_millis(now - 60 * MINUTE),
        until: Timestamp::from_unix_millis(now + MINUTE),
        service: None,
    };
    let before = store.stats(stats_query.clone()).await.unwrap();
    let total: u64 = before.buckets.iter().map(|b| b.count).sum();
    assert_eq!(total, 12);
    assert_eq!(
        before.buckets.len(),
        6,
        "3 minutes x 2 (service, level) pairs"
    );
    let api_only = store
        .stats(StatsQuery {
            service: Some("api".into()),
            ..stats_query.clone()
        })
        .await
        .unwrap();
    assert_eq!(api_only.buckets.iter().map(|b| b.count).sum::<u64>(), 6);
    store.shutdown().await.unwrap();
    drop(store);

    let store = open(config);
    assert!(
        files_with(&segments_dir(&tmp), ".ndjson").len() > 1,
        "stats come from several segments"
    );
    assert_eq!(store.stats(stats_query).await.unwrap(), before);
    let receipt = store.write(sent).await.unwrap();
    assert_eq!(
        receipt,
        WriteReceipt {
            written: 0,
            duplicates: 12
        }
    );
}

/// A sampled record stands for `meta.sample_weight` records in stats, as written and as
/// rebuilt on start; a weight that is not a whole number (stored before the key was
/// reserved) counts as 1 rather than hiding the line.
#[tokio::test(flavor = "multi_thread")]
async fn stats_add_up_sample_weights_before_and_after_a_restart() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig::new(tmp.path());
    let store = open(config.clone());
    let now = now_ms();
    let mut weighted = rec(now, "api", Level::Info, "stands for 40");
    weighted
        .meta
        .insert("sample_weight".into(), Value::from(40));
    let mut odd = rec(now, "api", Level::Info, "old weight");
    odd.meta.insert("sample_weight".into(), Value::from("lots"));
    let plain = rec(now, "api", Level::Info, "just one");
    store.write(vec![weighted, odd, plain]).await.unwrap();
    let query = StatsQuery {
        since: Timestamp::from_unix_millis(now - 60 * MINUTE),
        until: Timestamp::from_unix_millis(now + MINUTE),
        service: None,
    };
    let total = |stats: faultline_store::Stats| stats.buckets.iter().map(|b| b.count).sum::<u64>();
    assert_eq!(total(store.stats(query.clone()).await.unwrap()), 42);
    store.shutdown().await.unwrap();
    drop(store);

    let store = open(config);
    assert_eq!(
        total(store.stats(query).await.unwrap()),
        42,
        "rebuilt from the segment"
    );
}

/// Guards the writer thread, which panicked (debug builds) or wrapped (release) adding up
/// weights past `u64::MAX`: counts saturate, as written and as rebuilt on start.
#[tokio::test(flavor = "multi_thread")]
async fn huge_sample_weights_saturate_in_the_writer_and_after_a_restart() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig::new(tmp.path());
    let store = open(config.clone());
    let now = now_ms();
    let heavy = || {
        let mut r = rec(now, "api", Level::Critical, "stands for a lot");
        r.meta.insert("sample_weight".into(), Value::from(u64::MAX));
        r
    };
    store.write(vec![heavy(), heavy()]).await.unwrap();
    store.write(vec![heavy()]).await.unwrap();
    let query = StatsQuery {
        since: Timestamp::from_unix_millis(now - 60 * MINUTE),
        until: Timestamp::from_unix_millis(now + MINUTE),
        service: None,
    };
    let counts = |stats: faultline_store::Stats| -> Vec<u64> {
        stats.buckets.iter().map(|b| b.count).collect()
    };
    assert_eq!(
        counts(store.stats(query.clone()).await.unwrap()),
        [u64::MAX]
    );
    store.shutdown().await.unwrap();
    drop(store);
    let store = open(config);
    assert_eq!(counts(store.stats(query).await.unwrap()), [u64::MAX]);
}

#[tokio::test(flavor = "multi_thread")]
async fn full_queue_refuses_at_once_and_loses_nothing_acknowledged() {
    let tmp = TempDir::new().unwrap();
    let config = FileStoreConfig {
        queue_capacity: 1,
        ..FileStoreConfig::new(tmp.path())
    };
    let store = open(config.clone());
    assert_eq!(store.health().queue_capacity, 1);
    let t = now_ms();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let r = rec(t + i, "api", Level::Info, "flood");
            let id = r.id.unwrap();
            (id, store.write(vec![r]).await)
        }));
    }
    let mut acked = HashSet::new();
    let mut overloaded = 0;
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(receipt)) => {
                assert_eq!(receipt.written, 1);
                acked.insert(id);
            }
            (_, Err(StoreError::Overloaded)) => overloaded += 1,
            (_, Err(e)) => panic!("unexpected error {e}"),
        }
    }
    assert!(
        overloaded > 0,
        "a queue of one never filled up under 300 concurrent writes"
    );
    assert!(!acked.is_empty());
    store.shutdown().await.unwrap();
    drop(store);
    let stored = ids(&on_disk(&tmp));
    assert!(
        acked.is_subset(&stored),
        "every acknowledged record is stored"
    );
    assert!(open(config).health().ready);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_refuses_new_writes_and_keeps_acknowledged_ones() {
    let tmp = TempDir::new().unwrap();
    let store = open(FileStoreConfig::new(tmp.path()));
    let t = now_ms();
    let acked = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        let acked = Arc::clone(&acked);
        tasks.push(tokio::spawn(async move {
            for b in 0..1000 {
                let r = rec(t + b, "api", Level::Info, &format!("w{w} b{b}"));
                let id = r.id.unwrap();
                match store.write(vec![r]).await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(id);
                    }
                    Err(StoreError::Closed) => return,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.shutdown().await.unwrap();
    let err = store
        .write(vec![rec(t, "api", Level::Info, "late")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err:?}");
    assert!(matches!(
        store.write(Vec::new()).await,
        Err(StoreError::Closed)
    ));
    assert!(!store.health().ready);
    store.shutdown().await.unwrap(); // a second shutdown is harmless
    for task in tasks {
        task.await.unwrap();
    }
    drop(store);

    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    let store = open(FileStoreConfig::new(tmp.path()));
    let stored = ids(&on_disk(&tmp));
    assert!(
        acked.is_subset(&stored),
        "every write acknowledged before shutdown survives"
    );
    assert!(store.health().ready);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_last_handle_finishes_queued_writes() {
    let tmp = TempDir::new().unwrap();
    let store = open(FileStoreConfig::new(tmp.path()));
    let clone = store.clone();
    let r = rec(now_ms(), "api", Level::Info, "kept");
    clone.write(vec![r.clone()]).await.unwrap();
    drop(clone);
    drop(store);
    // The writer exits once the handles are gone; a new open sees everything.
    let store = open(FileStoreConfig::new(tmp.path()));
    assert_eq!(all(&store).await, [r]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_open_of_the_same_dir_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open(FileStoreConfig::new(dir.path())).unwrap();
    let err = FileStore::open(FileStoreConfig::new(dir.path()))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    first.shutdown().await.unwrap();
    drop(first);
    FileStore::open(FileStoreConfig::new(dir.path())).unwrap();
}

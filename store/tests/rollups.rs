//! Hourly rollups on both stores: the same answers as counting the records by hand, for
//! every grouping, across restarts (and a crash's stale files) and retention. PostgreSQL is
//! the real one of `cargo xtask test` (`FAULTLINE_TEST_DATABASE_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use faultline_schema::{Level, Record, SAMPLE_WEIGHT_KEY, Timestamp, Uuid};
use faultline_store::{
    FileStore, FileStoreConfig, GroupBy, HOUR_MS, PostgresConfig, PostgresStore, RecordStore,
    RollupBucket, RollupQuery, hour_of,
};
use sqlx::Connection;
use tempfile::TempDir;

use support::fresh_db;

const DAY: i64 = 86_400_000;

async fn postgres(url: &str, spool: &TempDir) -> PostgresStore {
    let mut config = PostgresConfig::new(url, spool.path().join("spool"));
    config.write_timeout = Duration::from_secs(5);
    PostgresStore::open(config).await.unwrap()
}

fn file_config(dir: &Path) -> FileStoreConfig {
    let mut config = FileStoreConfig::new(dir);
    // Many segments, so replays cross segment boundaries.
    config.segment_max_bytes = 16 * 1024;
    config
}

fn now() -> i64 {
    Timestamp::now().unix_millis()
}

/// Records over the last 29 days (every 7 hours), of two services, five levels, three
/// events and releases, some folded (`meta.count`) or sampled, plus one older than the
/// 30-day retention and one three hours ahead: neither is counted.
fn corpus(now: i64) -> Vec<Record> {
    let mut out = Vec::new();
    let mut n = 0u32;
    let mut age = 5 * 60_000;
    while age < 29 * DAY {
        for k in 0..3u32 {
            n += 1;
            let service = ["api", "ui"][(n % 2) as usize];
            let level = Level::ALL[(n % 5) as usize];
            let event = ["boot", "payment_failed", "window.onerror"][(n % 3) as usize];
            let mut r = Record::new(
                Timestamp::from_unix_millis(now - age - i64::from(k) * 1000),
                service,
                level,
                event,
                format!("m{n}"),
            );
            r.id = Some(Uuid::now_v7());
            r.received_at = Some(Timestamp::from_unix_millis(now));
            match n % 4 {
                0 => {}
                1 => {
                    r.meta.insert("release".into(), "1.0.0".into());
                }
                2 => {
                    r.meta.insert("release".into(), "ünï-2".into());
                    r.meta.insert("count".into(), 3.into());
                }
                _ => {
                    r.meta.insert(SAMPLE_WEIGHT_KEY.into(), 5.into());
                    r.meta.insert("count".into(), 2.into());
                }
            }
            out.push(r);
        }
        age += 7 * HOUR_MS;
    }
    for at in [now - 31 * DAY, now + 3 * HOUR_MS] {
        let mut r = Record::new(
            Timestamp::from_unix_millis(at),
            "api",
            Level::Error,
            "x",
            "out",
        );
        r.id = Some(Uuid::now_v7());
        r.received_at = Some(Timestamp::from_unix_millis(now));
        out.push(r);
    }
    out
}

/// What the rollups must say, counted from the records themselves.
fn expected(records: &[Record], now: i64, group_by: GroupBy) -> Vec<RollupBucket> {
    let mut sums: BTreeMap<RollupBucket, u64> = BTreeMap::new();
    for r in records {
        let ts = r.ts.unix_millis();
        if ts < now - 30 * DAY || ts > now + HOUR_MS {
            continue;
        }
        let key = RollupBucket {
            hour: Timestamp::from_unix_millis(hour_of(ts)),
            service: group_by.service.then(|| r.service.clone()),
            level: group_by.level.then_some(r.level),
            event: group_by.event.then(|| r.event.clone()),
            release: group_by
                .release
                .then(|| faultline_store::release_of(r).to_owned()),
            count: 0,
        };
        *sums.entry(key).or_default() += faultline_store::event_weight(r);
    }
    sums.into_iter()
        .map(|(b, count)| RollupBucket { count, ..b })
        .collect()
}

const GROUPINGS: [&str; 5] = [
    "service,level",
    "",
    "event",
    "release",
    "service,level,event,release",
];

fn window(now: i64, group_by: &str) -> RollupQuery {
    RollupQuery {
        since: Timestamp::from_unix_millis(now - 30 * DAY),
        until: Timestamp::from_unix_millis(now + HOUR_MS),
        service: None,
        group_by: group_by.parse().unwrap(),
    }
}

/// Every grouping answers what the records say; `service` filters.
async fn check(store: &dyn RecordStore, records: &[Record], now: i64, what: &str) {
    for g in GROUPINGS {
        let got = store.rollups(window(now, g)).await.unwrap();
        let want = expected(records, now, g.parse().unwrap());
        assert!(!want.is_empty());
        assert_eq!(got, want, "{what}: group_by={g:?}");
    }
    let mut q = window(now, "level");
    q.service = Some("ui".into());
    let got = store.rollups(q).await.unwrap();
    let ui: Vec<Record> = records
        .iter()
        .filter(|r| r.service == "ui")
        .cloned()
        .collect();
    assert_eq!(
        got,
        expected(&ui, now, "level".parse().unwrap()),
        "{what}: service=ui"
    );
}

/// Writes the corpus in batches, each twice (a client's retry must not count again).
async fn write_twice(store: &dyn RecordStore, records: &[Record]) {
    for batch in records.chunks(50) {
        store.write(batch.to_vec()).await.unwrap();
        let again = store.write(batch.to_vec()).await.unwrap();
        assert_eq!(again.written, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn file_store_rollups_survive_restarts_crashes_and_lost_files() {
    let tmp = tempfile::tempdir().unwrap();
    let now = now();
    let records = corpus(now);
    let (first, second) = records.split_at(records.len() / 2);

    let store = FileStore::open(file_config(tmp.path())).unwrap();
    write_twice(&store, first).await;
    check(&store, first, now, "first half").await;
    store.shutdown().await.unwrap();
    drop(store);
    let rollups = tmp.path().join("rollups");
    let days = std::fs::read_dir(&rollups).unwrap().count();
    assert!(days >= 15, "one file per day and the manifest: {days}");
    let early = copy_dir(&rollups, &tmp.path().join("early"));

    let store = FileStore::open(file_config(tmp.path())).unwrap();
    check(&store, first, now, "reopened").await;
    write_twice(&store, second).await;
    check(&store, &records, now, "both halves").await;
    store.shutdown().await.unwrap();
    drop(store);

    let store = FileStore::open(file_config(tmp.path())).unwrap();
    check(&store, &records, now, "clean restart").await;
    store.shutdown().await.unwrap();
    drop(store);

    // As if the process died before the second half's rollups were written: the files of
    // the first half (and a stray file of an unfinished write) are there, the rest is read
    // again from the segments, nothing twice.
    std::fs::remove_dir_all(&rollups).unwrap();
    copy_dir(&early, &rollups);
    std::fs::write(rollups.join("2026-01-01.999.json"), b"{\"entries\":[[0,\"x").unwrap();
    let store = FileStore::open(file_config(tmp.path())).unwrap();
    check(&store, &records, now, "restart after a crash").await;
    store.shutdown().await.unwrap();
    drop(store);
    assert!(
        !rollups.join("2026-01-01.999.json").exists(),
        "stray file removed"
    );

    // Files lost or unreadable: rebuilt from the segments alone.
    std::fs::remove_dir_all(&rollups).unwrap();
    let store = FileStore::open(file_config(tmp.path())).unwrap();
    check(&store, &records, now, "rebuilt").await;
    store.shutdown().await.unwrap();
    drop(store);
    std::fs::write(rollups.join("manifest.json"), b"not json").unwrap();
    let store = FileStore::open(file_config(tmp.path())).unwrap();
    check(&store, &records, now, "unreadable manifest").await;
    store.shutdown().await.unwrap();
}

fn copy_dir(from: &Path, to: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to.to_owned()
}

/// Guards "drop with retention": a store reopened with a shorter retention forgets the
/// older hours, in memory and on disk.
#[tokio::test(flavor = "multi_thread")]
async fn file_store_rollups_drop_with_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let now = now();
    let records = corpus(now);
    let store = FileStore::open(file_config(tmp.path())).unwrap();
    store.write(records.clone()).await.unwrap();
    store.shutdown().await.unwrap();
    drop(store);
    let day_files = |dir: &Path| {
        std::fs::read_dir(dir.join("rollups"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "manifest.json")
            .count()
    };
    assert!(day_files(tmp.path()) >= 29);

    let mut config = file_config(tmp.path());
    config.retention_age = Duration::from_secs(3 * 86_400);
    let store = FileStore::open(config).unwrap();
    let got = store.rollups(window(now, "")).await.unwrap();
    assert!(
        got.iter()
            .all(|b| b.hour.unix_millis() >= hour_of(now - 3 * DAY)),
        "{got:?}"
    );
    // No record lies within two hours of the boundary (ages are 5 min + 7 h * n).
    let recent: Vec<Record> = records
        .iter()
        .filter(|r| r.ts.unix_millis() >= now - 3 * DAY)
        .cloned()
        .collect();
    assert_eq!(got, expected(&recent, now, "".parse().unwrap()));
    store.shutdown().await.unwrap();
    assert!(day_files(tmp.path()) <= 4, "old day files deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn both_stores_give_the_same_rollups_and_postgres_keeps_them_across_a_restart() {
    let now = now();
    let records = corpus(now);
    let tmp = tempfile::tempdir().unwrap();
    let file = FileStore::open(file_config(tmp.path())).unwrap();
    let url = fresh_db().await;
    let spool = tempfile::tempdir().unwrap();
    let pg = postgres(&url, &spool).await;
    write_twice(&file, &records).await;
    write_twice(&pg, &records).await;
    // Before the deltas are folded (read from both tables) ...
    check(&pg, &records, now, "postgres, deltas").await;
    for g in GROUPINGS {
        assert_eq!(
            pg.rollups(window(now, g)).await.unwrap(),
            file.rollups(window(now, g)).await.unwrap(),
            "group_by={g:?}"
        );
    }
    // ... and after: the fold runs every two seconds.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM log_rollup_deltas")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if waiting == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never folded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM log_rollups")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(rows > 0 && rows < records.len() as i64, "{rows} rows");
    check(&pg, &records, now, "postgres, folded").await;
    pg.shutdown().await.unwrap();
    drop(pg);
    let pg = postgres(&url, &spool).await;
    check(&pg, &records, now, "postgres, reopened").await;
    pg.shutdown().await.unwrap();
    file.shutdown().await.unwrap();
}

//! Archive before delete (`[retention] archive_dir`, issue 27): retention writes what it
//! deletes as gzip NDJSON per day, `faultline import` brings it back, idempotent by id, on
//! both stores; an archive that cannot be written stops deletion, fails the `archive`
//! check and fires a health rule on an `archive` probe; a corrupt archive imports nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::alerts_support::{Capture, Faultline, KEY};
use crate::pg::fresh_db;

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    faultline_schema::Timestamp::now().unix_millis()
}

fn ts(ms: i64) -> String {
    faultline_schema::Timestamp::from_unix_millis(ms).to_string()
}

/// `n` records at `at_ms` (a millisecond apart), every third an error event (so it carries
/// an issue id), each with a unique message.
fn records(tag: &str, n: usize, at_ms: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let level = if i % 3 == 0 { "ERROR" } else { "INFO" };
            let mut r =
                crate::alerts_support::record("api", level, "job", json!({ "n": i, "tag": tag }));
            r["ts"] = ts(at_ms + i as i64).into();
            r["message"] = format!("{tag} {i}").into();
            r
        })
        .collect()
}

/// `faultline ARGS` with only `env` set (the secrets a store needs are not involved).
fn faultline(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("FAULTLINE_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("FAULTLINE_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run faultline")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every `*.ndjson.gz` under `dir`, sorted.
fn archives(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(dir) else {
        return out;
    };
    for day in days {
        let day = day.unwrap().path();
        for f in std::fs::read_dir(&day).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".ndjson.gz") {
                out.push(f);
            } else {
                assert!(name.ends_with(".tmp"), "unexpected {name}");
            }
        }
    }
    out.sort();
    out
}

/// id -> issue (or `-`) of what `/logs/recent` answers.
async fn recent(node: &Faultline) -> BTreeMap<String, String> {
    let page = node.get("/logs/recent?limit=1000").await;
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["issue"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

/// id -> issue (or `-`), and the number of rows, of `system_logs`.
async fn pg_rows(url: &str) -> (BTreeMap<String, String>, i64) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id::text, issue FROM system_logs")
            .fetch_all(&mut c)
            .await
            .unwrap();
    let n = rows.len() as i64;
    (
        rows.into_iter()
            .map(|(id, issue)| (id, issue.unwrap_or_else(|| "-".into())))
            .collect(),
        n,
    )
}

async fn archive_check(node: &Faultline) -> Value {
    let checks = node.get("/system/checks/latest").await;
    checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "archive")
        .cloned()
        .unwrap_or(Value::Null)
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The file store: records written now in 1 s segments by a node that keeps them (its
/// retention is the default 30 days, so a slow machine cannot let this node archive them
/// before the next start), then `env`'s 2 s retention is past. Returns the data dir's stored
/// records (id -> issue) before retention.
async fn file_store_expires(data: &Path, env: &[(&str, String)]) -> BTreeMap<String, String> {
    let keep: Vec<(&str, String)> = env
        .iter()
        .filter(|(k, _)| *k != "FAULTLINE_STORAGE_RETENTION")
        .cloned()
        .collect();
    let node = Faultline::start(data, None, &keep);
    for b in 0..3 {
        node.post(KEY, None, json!(records(&format!("b{b}"), 100, now_ms())))
            .await;
    }
    let stored = recent(&node).await;
    assert_eq!(stored.len(), 300);
    // The segment ages out (1 s) and is sealed (its summary written) while the server runs.
    let sidecar = data.join("segments").join(format!("{:020}.idx.json", 1));
    wait_until("the first segment is sealed", || async { sidecar.exists() }).await;
    node.terminate();
    // Past the 2 s retention when the next start's retention pass runs.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stored
}

fn short_retention(archive_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("FAULTLINE_STORAGE_RETENTION", "2s".into()),
        ("FAULTLINE_STORAGE_SEGMENT_MAX_AGE", "1s".into()),
        (
            "FAULTLINE_RETENTION_ARCHIVE_DIR",
            archive_dir.display().to_string(),
        ),
    ]
}

/// A server on PostgreSQL `url` archiving into `dir` (retention: the default 30 days).
fn postgres_archiving_to(url: &str, dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", url.to_owned()),
        ("FAULTLINE_RETENTION_ARCHIVE_DIR", dir.display().to_string()),
    ]
}

/// Guards issue 27's round trip: every record retention deleted comes back from the
/// archives with its id and issue, and a second import stores nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn archive_delete_import_round_trip_on_both_stores() {
    // The file store.
    let data = tempfile::tempdir().unwrap();
    let archive_dir = data.path().join("archive");
    let env = short_retention(&archive_dir);
    let stored = file_store_expires(data.path(), &env).await;
    let node = Faultline::start(data.path(), None, &env);
    wait_until("retention archived and deleted every record", || async {
        recent(&node).await.is_empty()
    })
    .await;
    let check = archive_check(&node).await;
    assert_eq!(check["status"], "ok", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("300 records"),
        "{check}"
    );
    node.terminate();
    let files = archives(&archive_dir);
    assert!(!files.is_empty(), "no archive written");
    let today = &ts(now_ms())[..10];
    assert!(
        files.iter().all(|f| f.to_string_lossy().contains(today)),
        "{files:?}"
    );

    let mut args = vec!["import".to_owned(), "--data-dir".to_owned()];
    args.push(data.path().display().to_string());
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let keep = [("FAULTLINE_STORAGE_RETENTION", "30d".to_owned())];
    let first = faultline(&args, &keep);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("imported 300 of 300 records"),
        "{}",
        text(&first)
    );
    let second = faultline(&args, &keep);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("imported 0 of 300 records")
            && text(&second).contains("300 were already stored"),
        "{}",
        text(&second)
    );
    let node = Faultline::start(data.path(), None, &keep);
    assert_eq!(
        recent(&node).await,
        stored,
        "every record back, issue ids kept"
    );
    node.terminate();
    let on_disk = crate::process::ids_on_disk(data.path());
    assert_eq!(on_disk.len(), 300);
    assert!(on_disk.values().all(|n| *n == 1), "none doubled");

    // PostgreSQL: one expired daily partition and expired rows in the default partition.
    let data = tempfile::tempdir().unwrap();
    let archive_dir = data.path().join("archive");
    let url = fresh_db().await;
    let env = postgres_archiving_to(&url, &archive_dir);
    let node = Faultline::start(data.path(), None, &env);
    let day35 = (now_ms() / DAY_MS - 35) * DAY_MS;
    let partition = format!("system_logs_p{}", ts(day35)[..10].replace('-', ""));
    {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!(
            "CREATE TABLE {partition} PARTITION OF system_logs FOR VALUES FROM ('{}') TO ('{}')",
            ts(day35),
            ts(day35 + DAY_MS)
        ))
        .execute(&mut c)
        .await
        .unwrap();
    }
    node.post(KEY, None, json!(records("old", 200, day35 + 3_600_000)))
        .await;
    node.post(KEY, None, json!(records("older", 150, day35 - 5 * DAY_MS)))
        .await;
    node.post(KEY, None, json!(records("fresh", 10, now_ms())))
        .await;
    let (before, n) = pg_rows(&url).await;
    assert_eq!(n, 360);
    node.terminate();

    // The start's maintenance archives, then drops and deletes.
    let node = Faultline::start(data.path(), None, &env);
    let (after, _) = pg_rows(&url).await;
    assert_eq!(after.len(), 10, "only the fresh records are left");
    let check = archive_check(&node).await;
    assert_eq!(check["status"], "ok", "{check}");
    node.terminate();
    let files = archives(&archive_dir);
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            let day = f.parent().unwrap().file_name().unwrap().to_string_lossy();
            format!("{day}/{}", f.file_name().unwrap().to_string_lossy())
        })
        .collect();
    assert_eq!(
        names,
        [
            format!(
                "{}/postgres-default.ndjson.gz",
                &ts(day35 - 5 * DAY_MS)[..10]
            ),
            format!("{}/postgres-{partition}.ndjson.gz", &ts(day35)[..10]),
        ],
        "one file per day and source"
    );

    let mut args = vec!["import".to_owned(), "--data-dir".to_owned()];
    args.push(data.path().display().to_string());
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let db = [("DATABASE_URL", url.clone())];
    for (round, expected) in [(1, "imported 350 of 350"), (2, "imported 0 of 350")] {
        let out = faultline(&args, &db);
        assert!(out.status.success(), "round {round}: {}", text(&out));
        assert!(
            text(&out).contains(expected),
            "round {round}: {}",
            text(&out)
        );
        let (rows, n) = pg_rows(&url).await;
        assert_eq!(n, 360, "round {round}: none doubled");
        assert_eq!(
            rows, before,
            "round {round}: every record back, issue ids kept"
        );
    }
}

/// Guards "nothing is deleted unarchived": an archive dir that cannot be written (a regular
/// file in its place; tests run as root, so modes would not stop a write) keeps every
/// record and fails the `archive` check, on both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unwritable_archive_dir_stops_deletion_and_fails_the_check() {
    let data = tempfile::tempdir().unwrap();
    let blocker = data.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file where the archive dir should be").unwrap();
    let env = short_retention(&blocker);
    let stored = file_store_expires(data.path(), &env).await;
    // The health alert: a rule on an `archive` probe, notifying a real webhook receiver.
    let receiver = Capture::start().await;
    let config = data.path().join("faultline.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts.channels.hook]\nkind = \"webhook\"\nurl = \"{}\"\n\n\
             [alerts.probes.archive]\nkind = \"archive\"\ninterval = \"200ms\"\n\n\
             [alerts.rules.archive_failing]\nkind = \"health\"\nprobe = \"archive\"\n\
             threshold = 1\nactions = [\"hook\"]\n",
            receiver.url("hook")
        ),
    )
    .unwrap();
    let node = Faultline::start(data.path(), Some(&config), &env);
    wait_until("the archive check fails", || async {
        archive_check(&node).await["status"] == "failed"
    })
    .await;
    let alert = receiver.wait_for("hook", 1, Duration::from_secs(30)).await;
    assert_eq!(
        alert[0].body["rule"], "archive_failing",
        "{:?}",
        alert[0].body
    );
    assert_eq!(alert[0].body["event"], "firing", "{:?}", alert[0].body);
    assert!(
        alert[0].body.to_string().contains("not-a-dir"),
        "the alert says why: {:?}",
        alert[0].body
    );
    let check = archive_check(&node).await;
    assert!(
        check["detail"].as_str().unwrap().contains("not-a-dir"),
        "names the directory: {check}"
    );
    assert_eq!(recent(&node).await, stored, "nothing deleted");
    let ready = node.get("/readyz").await;
    assert_eq!(ready["store"]["archive"]["failing"], true, "{ready}");
    node.terminate();
    assert_eq!(crate::process::ids_on_disk(data.path()).len(), 300);

    let data = tempfile::tempdir().unwrap();
    let blocker = data.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let url = fresh_db().await;
    let env = postgres_archiving_to(&url, &blocker);
    let node = Faultline::start(data.path(), None, &env);
    node.post(KEY, None, json!(records("old", 50, now_ms() - 40 * DAY_MS)))
        .await;
    node.terminate();
    let node = Faultline::start(data.path(), None, &env);
    let check = archive_check(&node).await;
    assert_eq!(check["status"], "failed", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("not-a-dir"),
        "{check}"
    );
    assert_eq!(pg_rows(&url).await.1, 50, "nothing deleted");
    node.terminate();
}

/// Guards the import's all-or-nothing check: a truncated archive is refused with its file
/// and line, and nothing is stored, not even from the good file before it.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_archive_imports_nothing_and_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let gzip = |path: &Path, lines: &[Value]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for (i, l) in lines.iter().enumerate() {
            let mut l = l.clone();
            l["id"] = uuid::Uuid::from_u128(i as u128 + 1 + lines.len() as u128 * 7)
                .to_string()
                .into();
            l["received_at"] = l["ts"].clone();
            writeln!(enc, "{l}").unwrap();
        }
        std::fs::write(path, enc.finish().unwrap()).unwrap();
    };
    let good = dir.path().join("good.ndjson.gz");
    gzip(&good, &records("good", 10, now_ms()));
    let cut = dir.path().join("cut.ndjson.gz");
    gzip(&cut, &records("cut", 3000, now_ms()));
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();

    let data_arg = data.display().to_string();
    let (good_arg, cut_arg) = (good.display().to_string(), cut.display().to_string());
    let out = faultline(
        &["import", "--data-dir", &data_arg, &good_arg, &cut_arg],
        &[],
    );
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&cut_arg) && said.contains(": line ") && said.contains("cut short"),
        "names the file and the line: {said}"
    );
    assert!(
        crate::process::ids_on_disk(&data).is_empty(),
        "nothing imported: {said}"
    );

    // The good file alone goes in.
    let out = faultline(&["import", "--data-dir", &data_arg, &good_arg], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(crate::process::ids_on_disk(&data).len(), 10);
}

//! Source maps on PostgreSQL (`PostgresSourceMaps`) against the real PostgreSQL of `cargo
//! xtask test` (`FAULTLINE_TEST_DATABASE_URL`), in a database of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use faultline_schema::Timestamp;
use faultline_store::{
    PostgresConfig, PostgresSourceMaps, PostgresStore, RecordStore, SourceMapError, SourceMapStore,
    SourceMapUpload,
};
use support::fresh_db;

fn upload(release: &str, url: &str, map: &[u8]) -> SourceMapUpload {
    SourceMapUpload {
        release: release.into(),
        url: url.into(),
        map: map.to_vec(),
        sources: 2,
        sources_content: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn put_replace_limit_list_touch_sweep_delete() {
    let url = fresh_db().await;
    let spool = tempfile::tempdir().unwrap();
    let mut config = PostgresConfig::new(&url, spool.path().join("spool"));
    config.write_timeout = Duration::from_secs(2);
    // Opening the store applies the migrations.
    let store = PostgresStore::open(config).await.unwrap();
    let maps = PostgresSourceMaps::new(store.pool().clone());
    // A second node's view: its own pool on the same database.
    let other = PostgresSourceMaps::new(sqlx::PgPool::connect(&url).await.unwrap());

    let stored = maps.put(upload("r1", "~/a.js", b"{}"), 100).await.unwrap();
    assert_eq!(
        (stored.bytes, stored.sources, stored.sources_content),
        (2, 2, false)
    );
    let v1 = other.version("r1").await.unwrap().unwrap();
    maps.put(upload("r1", "~/a.js", b"{ }"), 100).await.unwrap();
    maps.put(upload("r1", "~/b.js", b"{}"), 100).await.unwrap();
    let r1 = other.release("r1").await.unwrap().unwrap();
    assert!(
        r1.version > v1,
        "every change is a new version, seen by every node"
    );
    assert_eq!((r1.files.len(), r1.bytes()), (2, 5));
    assert_eq!(other.map("r1", "~/a.js").await.unwrap().unwrap(), b"{ }");
    assert_eq!(other.map("r1", "~/c.js").await.unwrap(), None);
    let full = maps.put(upload("r1", "~/c.js", &[b' '; 96]), 100).await;
    assert!(
        matches!(
            full,
            Err(SourceMapError::ReleaseFull {
                would_hold: 101,
                ..
            })
        ),
        "{full:?}"
    );
    maps.put(upload("r1", "~/a.js", &[b' '; 98]), 100)
        .await
        .unwrap();
    maps.put(upload("r2", "~/a.js", b"{}"), 100).await.unwrap();

    let list = other.releases().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].release, "r2", "newest upload first");
    assert_eq!((list[1].files, list[1].bytes), (2, 100));

    let future = Timestamp::from_unix_millis(Timestamp::now().unix_millis() + 60_000);
    other.touch("r2", future).await.unwrap();
    let swept = maps
        .sweep(Timestamp::from_unix_millis(
            Timestamp::now().unix_millis() + 1_000,
        ))
        .await
        .unwrap();
    assert_eq!(swept, vec!["r1".to_owned()], "r2 was used later");
    assert_eq!(other.release("r1").await.unwrap(), None);
    let later = Timestamp::from_unix_millis(future.unix_millis() + 1);
    assert_eq!(maps.sweep(later).await.unwrap(), vec!["r2".to_owned()]);

    maps.put(upload("r3", "~/a.js", b"{}"), 100).await.unwrap();
    assert_eq!(other.delete("r3").await.unwrap(), 1);
    assert_eq!(maps.version("r3").await.unwrap(), None);
    assert_eq!(maps.delete("r3").await.unwrap(), 0);
    store.shutdown().await.unwrap();
}

//! Opening the stores, in one place for `faultline serve`, `check-alerts` and `summary`: the
//! record store the config names (the file store, or PostgreSQL with its outage spool and an
//! optional file copy) and the alert state beside it (`faultline_alerts::open_store`: in
//! PostgreSQL when the records are, else in the data dir).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_alerts::{AlertAccess, AlertStore};
use faultline_store::{
    ArchiveDir, FanoutStore, FileSourceMaps, FileStore, FileStoreConfig, PostgresConfig,
    PostgresSourceMaps, PostgresStore, RecordStore, SourceMapStore, WriteMethod,
};

use crate::config::{Config, PgWriteMethod};

/// What a process opens the stores for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `faultline serve`: ingest and answer; evaluate alerts alone on the file store, or
    /// contend for leadership on PostgreSQL (so the alert state is opened to read there).
    Serve,
    /// `faultline check-alerts`: evaluate once, exclusively.
    CheckAlerts,
    /// `faultline summary`: report, beside a process that may be evaluating.
    Summary,
}

/// The opened stores.
pub(crate) struct Stores {
    /// What ingest writes to and reads from.
    pub(crate) records: Arc<dyn RecordStore>,
    /// The PostgreSQL store, when `database_url` is set (also behind a fan-out): its pool
    /// holds the alert state too.
    pub(crate) postgres: Option<PostgresStore>,
    /// The alert state.
    pub(crate) alerts: Arc<dyn AlertStore>,
}

/// Opens the record store and the alert state for `purpose`.
pub(crate) async fn open(config: &Config, purpose: Purpose) -> Result<Stores> {
    let (records, postgres) = open_records(config).await?;
    let access = match (purpose, &postgres) {
        (Purpose::Serve, Some(_)) | (Purpose::Summary, _) => AlertAccess::Read,
        (Purpose::Serve, None) | (Purpose::CheckAlerts, _) => AlertAccess::Evaluate,
    };
    let alerts =
        faultline_alerts::open_store(&config.alerts, postgres.as_ref(), &config.data_dir, access)
            .await?;
    Ok(Stores {
        records,
        postgres,
        alerts,
    })
}

/// The configured store: PostgreSQL (with its spool, and optionally a file copy) when
/// `database_url` is set, else the file store.
pub(crate) async fn open_records(
    config: &Config,
) -> Result<(Arc<dyn RecordStore>, Option<PostgresStore>)> {
    let storage = &config.storage;
    let file_config = FileStoreConfig {
        segment_max_bytes: storage.segment_max_bytes,
        segment_max_age: storage.segment_max_age.0,
        retention_age: storage.retention.0,
        retention_bytes: storage.retention_bytes,
        queue_capacity: config.limits.ingest_queue_batches,
        dedup_ids: storage.dedup_ids,
        issue_retention: config.issues.retention.0,
        archive: config.retention.archive_dir.as_ref().map(ArchiveDir::new),
        ..FileStoreConfig::new(config.data_dir.clone())
    };
    let open_file = || async {
        let opened = Instant::now();
        let dir = file_config.dir.clone();
        let config = file_config.clone();
        let store = tokio::task::spawn_blocking(move || FileStore::open(config))
            .await
            .context("store start-up task failed")?
            .with_context(|| format!("cannot open the file store in {}", dir.display()))?;
        tracing::info!(
            dir = %dir.display(),
            took_ms = opened.elapsed().as_millis() as u64,
            "file store open"
        );
        anyhow::Ok(store)
    };
    let Some(url) = &config.database_url else {
        return Ok((Arc::new(open_file().await?), None));
    };
    let pg = &config.postgres;
    let pg_config = PostgresConfig {
        pool_size: pg.pool_size,
        write_method: match pg.write_method {
            PgWriteMethod::Unnest => WriteMethod::Unnest,
            PgWriteMethod::Copy => WriteMethod::Copy,
        },
        write_timeout: pg.write_timeout.0,
        retention: storage.retention.0,
        partitions_ahead: pg.partitions_ahead,
        spool_max_bytes: pg.spool_max_bytes,
        issue_retention: config.issues.retention.0,
        archive: config.retention.archive_dir.as_ref().map(ArchiveDir::new),
        ..PostgresConfig::new(url.clone(), config.data_dir.join("spool"))
    };
    let postgres = PostgresStore::open(pg_config)
        .await
        .context("cannot open the PostgreSQL store")?;
    tracing::info!(spool = %config.data_dir.join("spool").display(), "PostgreSQL store open");
    let store: Arc<dyn RecordStore> = if storage.file_copy {
        let copy = open_file().await?;
        Arc::new(FanoutStore::new(Arc::new(postgres.clone()), Arc::new(copy)))
    } else {
        Arc::new(postgres.clone())
    };
    Ok((store, Some(postgres)))
}

/// Where uploaded source maps are kept: beside the records in PostgreSQL (so every node
/// sees the same maps), else under `<data_dir>/sourcemaps`.
pub(crate) async fn open_sourcemaps(
    config: &Config,
    postgres: Option<&PostgresStore>,
) -> Result<Arc<dyn SourceMapStore>> {
    if let Some(postgres) = postgres {
        return Ok(Arc::new(PostgresSourceMaps::new(postgres.pool().clone())));
    }
    let dir = config.data_dir.join("sourcemaps");
    let maps = tokio::task::spawn_blocking(move || FileSourceMaps::open(dir))
        .await
        .context("source map start-up task failed")?
        .context("cannot open the source map store")?;
    Ok(Arc::new(maps))
}

//! Start-up and graceful shutdown of `faultline serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_store::{
    FanoutStore, FileStore, FileStoreConfig, PostgresConfig, PostgresStore, RecordStore,
    WriteMethod,
};
use tokio::net::TcpListener;

use crate::alerts::{AlertAccess, AlertHandle, AlertRunner, Election, Feed, PgLeaderLock};
use crate::auth::KeyRing;
use crate::config::{Config, PgWriteMethod};
use crate::sampling::Sampler;
use crate::state::AppState;
use crate::{app, http, metrics, secrets};

/// A started server: its address and the means to stop it.
pub struct Server {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The shared state.
    pub state: AppState,
    listener: TcpListener,
    /// Secrets generated on this start (printed once by the CLI).
    pub generated: Vec<(String, String)>,
    /// Where generated secrets are kept.
    pub secrets_file: std::path::PathBuf,
    /// The alert evaluator, stopped after the HTTP server.
    alerts: AlertRunner,
}

/// Opens the store, resolves keys and binds the listener; [`Server::run`] then serves.
pub async fn start(config: Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Server> {
    let secrets = secrets::resolve(&config, env)?;
    let mut keys = Vec::new();
    for key in config.keys.iter().chain(&secrets.shortcut_keys) {
        keys.push((key.clone(), secrets::key_value(key, env)?));
    }
    let keyring = KeyRing::new(&config, keys, secrets.admin_token.clone());

    let store = open_store(&config).await?;
    let (alerts, alert_runner) = start_alerts(&config, &store, env).await?;
    let store = store.store;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let sampler = Arc::new(Sampler::new(config.sampling.clone()));
    let state = AppState {
        config: Arc::new(config),
        keys: Arc::new(keyring),
        store,
        user_salt: secrets.user_salt.into(),
        rekeyer: Arc::new(faultline_schema::UserRekeyer::new(&secrets.hmac_key)),
        metrics: metrics::install(),
        started: Instant::now(),
        alerts,
        sampler,
    };
    Ok(Server {
        addr,
        state,
        listener,
        generated: secrets.generated,
        secrets_file: secrets.file,
        alerts: alert_runner,
    })
}

/// The alert evaluator over `store`, with its state where the records are: PostgreSQL when
/// it is configured (where the nodes of a deployment contend for the evaluator's advisory
/// lock: one leads, the others stand by), else the data dir (locked: one process).
async fn start_alerts(
    config: &Config,
    store: &Store,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AlertHandle, AlertRunner)> {
    let (alert_store, election, feed) = match &store.postgres {
        Some(postgres) => (
            crate::alerts::open_store(config, store, AlertAccess::Read).await?,
            Election::Postgres(PgLeaderLock::new(postgres.pool().clone())),
            Feed::Shared(postgres.clone()),
        ),
        None => (
            crate::alerts::open_store(config, store, AlertAccess::Evaluate).await?,
            Election::Sole,
            Feed::Ingest,
        ),
    };
    crate::alerts::spawn(
        &config.alerts,
        Arc::clone(&store.store),
        alert_store,
        election,
        feed,
        env,
    )
    .await
    .context("cannot start the alert evaluator")
}

impl Server {
    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish (their writes complete and are acknowledged), and drains and fsyncs the store.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let store = self.state.store.clone();
        let header_timeout = self.state.config.limits.request_timeout.0;
        http::serve(self.listener, app(self.state), header_timeout, shutdown).await;
        // Alerts first: records acknowledged by the last requests are still evaluated.
        self.alerts.shutdown().await;
        tracing::info!("stopped accepting; draining the store");
        store.shutdown().await.context("store shutdown failed")?;
        tracing::info!("store drained and synced");
        Ok(())
    }
}

/// The opened record store.
pub(crate) struct Store {
    /// What ingest writes to and reads from.
    pub(crate) store: Arc<dyn RecordStore>,
    /// The PostgreSQL store, when `database_url` is set (also behind a fan-out): its pool
    /// holds the alert state too.
    pub(crate) postgres: Option<PostgresStore>,
}

/// The configured store: PostgreSQL (with its spool, and optionally a file copy) when
/// `database_url` is set, else the file store.
pub(crate) async fn open_store(config: &Config) -> Result<Store> {
    let storage = &config.storage;
    let file_config = FileStoreConfig {
        segment_max_bytes: storage.segment_max_bytes,
        segment_max_age: storage.segment_max_age.0,
        retention_age: storage.retention.0,
        retention_bytes: storage.retention_bytes,
        queue_capacity: config.limits.ingest_queue_batches,
        dedup_ids: storage.dedup_ids,
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
        return Ok(Store {
            store: Arc::new(open_file().await?),
            postgres: None,
        });
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
    Ok(Store {
        store,
        postgres: Some(postgres),
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

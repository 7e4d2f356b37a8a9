//! Start-up and graceful shutdown of the server (`faultline serve`): keys, the stores, the
//! alert evaluator, the listener; then serving until a stop signal, and draining.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use faultline_alerts::{AlertHandle, AlertRunner, Election, Feed, PgLeaderLock};
use faultline_store::SourceMapStore;
use faultline_symbolicate::{Symbolicator, SymbolicatorConfig};

use crate::access_log::AccessLog;
use crate::api::{app, metrics};
use crate::app_state::AppState;
use crate::auth::KeyRing;
use crate::body_budget::BodyBudget;
use crate::config::{Config, Overrides};
use crate::live::{Live, LiveConfig, Reloader};
use crate::quota::{self, Quotas};
use crate::sampling::Sampler;
use crate::store::{self, Purpose, Stores};
use crate::{http, reload, secrets, tls};

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
    /// Deletes releases' source maps past retention; stopped with the HTTP server.
    sourcemap_sweeper: tokio::task::JoinHandle<()>,
    /// TLS, when `[tls]` names a certificate and key (`https://`).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// SIGHUP, for whoever reloads something.
    sighup: tokio::sync::broadcast::Sender<()>,
    /// Reloads the configuration on SIGHUP, once [`Server::reload_on_sighup`] said from where.
    reloader: Option<Arc<Reloader>>,
    /// The keys' daily quota counts; persisted by `quota_flusher`, and once more at the end.
    quotas: Arc<Quotas>,
    quota_flusher: tokio::task::JoinHandle<()>,
}

/// Opens the store, resolves keys and binds the listener; [`Server::run`] then serves.
pub async fn start(config: Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Server> {
    let secrets = secrets::resolve(&config, env)?;
    let mut keys = Vec::new();
    for key in config.keys.iter().chain(&secrets.shortcut_keys) {
        keys.push((key.clone(), secrets::key_value(key, env)?));
    }
    let mut keyring = KeyRing::new(&config, keys, secrets.admin_token.clone());

    let stores = store::open(&config, Purpose::Serve).await?;
    let quotas = Arc::new(match &stores.postgres {
        Some(postgres) => Quotas::open_postgres(postgres.pool().clone()).await,
        None => Quotas::open_file(&config.data_dir).await,
    }?);
    keyring.count_quotas_in(&quotas);
    let quota_flusher = tokio::spawn(quota::flush_every_second(Arc::clone(&quotas)));
    let sourcemaps = store::open_sourcemaps(&config, stores.postgres.as_ref()).await?;
    let symbolicator = Arc::new(Symbolicator::new(
        sourcemaps,
        SymbolicatorConfig {
            cache_bytes: usize::try_from(config.sourcemaps.cache_bytes).unwrap_or(usize::MAX),
            cache_maps: config.sourcemaps.cache_maps,
            refresh: config.sourcemaps.refresh.0,
            ..SymbolicatorConfig::default()
        },
    ));
    let sourcemap_sweeper = tokio::spawn(sweep_sourcemaps(
        Arc::clone(symbolicator.store()),
        config.sourcemap_retention(),
    ));
    let (alerts, alert_runner) = start_alerts(&config, &stores, env).await?;
    let store = stores.records;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let sighup = reload::sighup();
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            let files = tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            let cert = Arc::new(tls::ReloadingCert::new(files)?);
            tokio::spawn(tls::watch(
                Arc::clone(&cert),
                config.tls.watch_interval.0,
                sighup.subscribe(),
            ));
            Some(tls::server_config(cert)?)
        }
        _ => None,
    };
    let sampler = Arc::new(Sampler::new(config.sampling.clone()));
    let scrubber = Arc::new(faultline_schema::UrlScrubber::new(
        &config.privacy.deny_url_params,
    ));
    let bodies = Arc::new(BodyBudget::new(config.limits.max_in_flight_bytes));
    let access_log = match &config.access_log {
        Some(target) => Some(AccessLog::open(target)?),
        None => None,
    };
    let config = Arc::new(config);
    let keys = Arc::new(keyring);
    let live = Arc::new(LiveConfig::new(Live {
        config: Arc::clone(&config),
        keys: Arc::clone(&keys),
        sampler: Arc::clone(&sampler),
    }));
    let state = AppState {
        config,
        keys,
        store,
        user_salt: secrets.user_salt.into(),
        rekeyer: Arc::new(faultline_schema::UserRekeyer::new(&secrets.hmac_key)),
        scrubber,
        metrics: metrics::install(),
        started: Instant::now(),
        alerts,
        sampler,
        bodies,
        symbolicator,
        live,
        access_log,
    };
    Ok(Server {
        addr,
        state,
        listener,
        generated: secrets.generated,
        secrets_file: secrets.file,
        alerts: alert_runner,
        sourcemap_sweeper,
        tls,
        sighup,
        reloader: None,
        quotas,
        quota_flusher,
    })
}

/// Every ten minutes, deletes the source maps of releases neither uploaded to nor used by
/// symbolication within `retention` (`[sourcemaps] retention`, else the records').
async fn sweep_sourcemaps(store: Arc<dyn SourceMapStore>, retention: std::time::Duration) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = faultline_schema::Timestamp::from_unix_millis(
            faultline_schema::Timestamp::now()
                .unix_millis()
                .saturating_sub(retention_ms),
        );
        match store.sweep(cutoff).await {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(releases = ?deleted, "source maps past retention deleted");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "source map retention failed"),
        }
    }
}

/// The alert evaluator over the opened stores: on PostgreSQL the nodes of a deployment
/// contend for the evaluator's advisory lock (one leads, the others stand by); on the file
/// store this process leads alone (its alert state is locked).
async fn start_alerts(
    config: &Config,
    stores: &Stores,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AlertHandle, AlertRunner)> {
    let (election, feed) = match &stores.postgres {
        Some(postgres) => (
            Election::Postgres(PgLeaderLock::new(postgres.pool().clone())),
            Feed::Shared(postgres.clone()),
        ),
        None => (Election::Sole, Feed::Ingest),
    };
    faultline_alerts::spawn(
        &config.alerts,
        Arc::clone(&stores.records),
        Arc::clone(&stores.alerts),
        election,
        feed,
        env,
    )
    .await
    .context("cannot start the alert evaluator")
}

impl Server {
    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// On SIGHUP, reloads keys, limits, sampling and alert rules from `path` (the file the
    /// server was started with; `None`: the embedded defaults and the environment), with
    /// the same command-line `overrides`. See `live.rs`.
    pub fn reload_on_sighup(&mut self, path: Option<std::path::PathBuf>, overrides: Overrides) {
        self.reloader = Some(Arc::new(Reloader::new(
            path,
            overrides,
            Arc::clone(&self.state.live),
            self.state.alerts.clone(),
            Arc::clone(&self.quotas),
        )));
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish (their writes complete and are acknowledged), and drains and fsyncs the store.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let store = self.state.store.clone();
        let options = http::ServeOptions {
            header_timeout: self.state.config.limits.request_timeout.0,
            shutdown_timeout: self.state.config.shutdown_timeout.0,
            tls: self.tls,
        };
        let reloads = self.reloader.map(|reloader| {
            let mut hup = self.sighup.subscribe();
            tokio::spawn(async move {
                let env = |k: &str| std::env::var(k).ok();
                loop {
                    match hup.recv().await {
                        Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            reloader.reload_and_report(&env).await;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        });
        http::serve(self.listener, app(self.state), options, shutdown).await;
        if let Some(reloads) = reloads {
            reloads.abort();
        }
        self.sourcemap_sweeper.abort();
        self.quota_flusher.abort();
        if let Err(e) = self.quotas.flush().await {
            tracing::error!(error = %e, "cannot persist the daily quota counts");
        }
        // Alerts first: records acknowledged by the last requests are still evaluated.
        self.alerts.shutdown().await;
        tracing::info!("stopped accepting; draining the store");
        store.shutdown().await.context("store shutdown failed")?;
        tracing::info!("store drained and synced");
        Ok(())
    }
}

/// A future that resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a server polls it only between accepts,
/// so a SIGTERM right after it says it is listening (a test's first request, then stop)
/// found the default action and killed the process without draining the store. Call it
/// inside the runtime, before saying that the server listens.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(int) => {},
                () = wait(term) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received");
    }
}

//! Start-up and graceful shutdown of the server (`faultline serve`): keys, the stores, the
//! alert evaluator, the listener; then serving until a stop signal, and draining.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use faultline_alerts::{AlertHandle, AlertRunner, Election, Feed, PgLeaderLock};

use crate::api::{app, metrics};
use crate::app_state::AppState;
use crate::auth::KeyRing;
use crate::body_budget::BodyBudget;
use crate::config::Config;
use crate::sampling::Sampler;
use crate::store::{self, Purpose, Stores};
use crate::{http, secrets};

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

    let stores = store::open(&config, Purpose::Serve).await?;
    let (alerts, alert_runner) = start_alerts(&config, &stores, env).await?;
    let store = stores.records;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let sampler = Arc::new(Sampler::new(config.sampling.clone()));
    let scrubber = Arc::new(faultline_schema::UrlScrubber::new(
        &config.privacy.deny_url_params,
    ));
    let bodies = Arc::new(BodyBudget::new(config.limits.max_in_flight_bytes));
    let state = AppState {
        config: Arc::new(config),
        keys: Arc::new(keyring),
        store,
        user_salt: secrets.user_salt.into(),
        rekeyer: Arc::new(faultline_schema::UserRekeyer::new(&secrets.hmac_key)),
        scrubber,
        metrics: metrics::install(),
        started: Instant::now(),
        alerts,
        sampler,
        bodies,
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

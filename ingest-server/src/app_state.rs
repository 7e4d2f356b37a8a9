//! What every handler shares.
//!
//! The reloadable part (`config`, `keys`, the sampler) is the snapshot in force when the
//! state was cloned: axum clones the state for every request, so a request sees one
//! configuration from its start to its end whatever a reload does meanwhile (`live.rs`).

use std::sync::Arc;
use std::time::Instant;

use faultline_schema::{UrlScrubber, UserRekeyer};
use faultline_store::RecordStore;
use faultline_symbolicate::Symbolicator;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::access_log::AccessLog;
use crate::auth::KeyRing;
use crate::body_budget::BodyBudget;
use crate::config::Config;
use crate::live::LiveConfig;
use crate::sampling::Sampler;
use faultline_alerts::AlertHandle;

/// The server's shared state: configuration, keys, the store, metrics.
pub struct AppState {
    /// The configuration in force when this state was cloned (see the module docs).
    pub config: Arc<Config>,
    /// Ingest keys and the admin token, as `config` says.
    pub keys: Arc<KeyRing>,
    /// Where records are stored.
    pub store: Arc<dyn RecordStore>,
    /// The public salt clients anonymize user ids with (for `raw_user` queries).
    pub user_salt: Arc<str>,
    /// The secret `meta.user` is re-keyed with, as a ready HMAC state.
    pub rekeyer: Arc<UserRekeyer>,
    /// Takes credentials and secret parameters out of URLs in every record (`[privacy]`).
    pub scrubber: Arc<UrlScrubber>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// When the server started.
    pub started: Instant,
    /// The alert evaluator: ingest feeds it, `/alerts` asks it.
    pub alerts: AlertHandle,
    /// Samples chatty services' records below `WARNING` (`[sampling]`).
    pub(crate) sampler: Arc<Sampler>,
    /// The bytes of request bodies held at once (`limits.max_in_flight_bytes`).
    pub(crate) bodies: Arc<BodyBudget>,
    /// Maps records' stack frames through uploaded source maps (`[sourcemaps]`); its store
    /// is where `/sourcemaps` uploads go.
    pub symbolicator: Arc<Symbolicator>,
    /// Where `config`, `keys` and `sampler` are read from when the state is cloned.
    pub(crate) live: Arc<LiveConfig>,
    /// The JSON access log (`access_log`), when configured.
    pub(crate) access_log: Option<AccessLog>,
}

impl Clone for AppState {
    /// A copy with the configuration in force now (a reload may have replaced it since
    /// `self` was made); everything else is shared.
    fn clone(&self) -> Self {
        let live = self.live.current();
        AppState {
            config: Arc::clone(&live.config),
            keys: Arc::clone(&live.keys),
            sampler: Arc::clone(&live.sampler),
            store: Arc::clone(&self.store),
            user_salt: Arc::clone(&self.user_salt),
            rekeyer: Arc::clone(&self.rekeyer),
            scrubber: Arc::clone(&self.scrubber),
            metrics: self.metrics.clone(),
            started: self.started,
            alerts: self.alerts.clone(),
            bodies: Arc::clone(&self.bodies),
            symbolicator: Arc::clone(&self.symbolicator),
            live: Arc::clone(&self.live),
            access_log: self.access_log.clone(),
        }
    }
}

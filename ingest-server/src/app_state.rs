//! What every handler shares.

use std::sync::Arc;
use std::time::Instant;

use faultline_schema::{UrlScrubber, UserRekeyer};
use faultline_store::RecordStore;
use faultline_symbolicate::Symbolicator;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::KeyRing;
use crate::body_budget::BodyBudget;
use crate::config::Config;
use crate::sampling::Sampler;
use faultline_alerts::AlertHandle;

/// The server's shared state: configuration, keys, the store, metrics.
#[derive(Clone)]
pub struct AppState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Ingest keys and the admin token.
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
}

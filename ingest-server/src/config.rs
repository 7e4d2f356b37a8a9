//! Configuration: one TOML file, every scalar overridable by an environment variable, then
//! the command-line flags; applied in one step ([`Config::load`]) and shared as `Arc<Config>`.
//!
//! Secrets never come from the file's text: secret keys name an env var (`key_env`) or a
//! file (`key_file`), and the admin token, user salt and HMAC key come from env
//! (`FAULTLINE_ADMIN_TOKEN`, `FAULTLINE_USER_SALT`, `FAULTLINE_HMAC_KEY`) or are generated
//! into the data dir on first start (see `secrets.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use faultline_alerts::AlertsConfig;
use faultline_schema::HumanDuration;

/// The whole configuration, as read from TOML. Every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP server listens. Env `FAULTLINE_LISTEN`, flag `--listen`.
    pub listen: SocketAddr,
    /// The file store, generated secrets and local state. Env `FAULTLINE_DATA_DIR`.
    pub data_dir: PathBuf,
    /// PostgreSQL URL for the production store. Env `DATABASE_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Ingest keys; see [`KeyConfig`].
    pub keys: Vec<KeyConfig>,
    /// Request and rate limits.
    pub limits: Limits,
    /// The file store.
    pub storage: Storage,
    /// What retention does before it deletes (both stores).
    pub retention: Retention,
    /// The PostgreSQL store, used when `database_url` is set.
    pub postgres: Postgres,
    /// Alert rules, their channels and probes; see [`AlertsConfig`].
    pub alerts: AlertsConfig,
    /// Sampling of chatty services' records below `WARNING`; off unless configured.
    pub sampling: Sampling,
    /// What ingest takes out of records before storing them.
    pub privacy: Privacy,
    /// Uploaded source maps and symbolication.
    pub sourcemaps: Sourcemaps,
    /// Error events grouped into issues.
    pub issues: Issues,
    /// TLS in the process (off unless a certificate and key are given).
    pub tls: Tls,
    /// How long a stop waits for open requests to finish before closing their connections.
    pub shutdown_timeout: HumanDuration,
    /// Proxies (addresses or CIDRs, `10.0.0.0/8`, `::1`) whose `X-Forwarded-For` is
    /// believed: the client address a request is rate limited by is then the rightmost
    /// address in it that is not itself a trusted proxy. Empty (the default): the peer
    /// address, and the header is ignored (any client can write it).
    pub trusted_proxies: Vec<String>,
    /// A JSON access log, one line per request (time, method, path without the query,
    /// status, bytes, duration, client address, key name; never a key or token):
    /// `"stdout"` or a file path (appended to). Unset (the default): none. Env
    /// `FAULTLINE_ACCESS_LOG`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            keys: Vec::new(),
            limits: Limits::default(),
            storage: Storage::default(),
            retention: Retention::default(),
            postgres: Postgres::default(),
            alerts: AlertsConfig::default(),
            sampling: Sampling::default(),
            privacy: Privacy::default(),
            sourcemaps: Sourcemaps::default(),
            issues: Issues::default(),
            tls: Tls::default(),
            shutdown_timeout: HumanDuration(Duration::from_secs(30)),
            trusted_proxies: Vec::new(),
            access_log: None,
        }
    }
}

/// TLS in the process: HTTPS with HTTP/2 (ALPN) and HTTP/1.1. Plain HTTP without it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain, leaf first. Env `FAULTLINE_TLS_CERT`, flag `--tls-cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key. Env `FAULTLINE_TLS_KEY`, flag `--tls-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// How often the files are checked for a renewal (SIGHUP reloads at once too).
    pub watch_interval: HumanDuration,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert: None,
            key: None,
            watch_interval: HumanDuration(Duration::from_secs(10)),
        }
    }
}

/// One ingest key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// A name for logs and metrics (never the key itself).
    pub name: String,
    /// `public` (shipped in browser code: write-only, from `origins`) or `secret` (services).
    pub kind: KeyKind,
    /// The key itself; only allowed for public keys, which are not secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// A file holding the key (surrounding whitespace ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Services this key may write records for; `"*"` means every service.
    #[serde(default)]
    pub services: Vec<String>,
    /// Browser origins allowed to use a public key (`http://localhost:5173`).
    #[serde(default)]
    pub origins: Vec<String>,
    /// This key's rate limit; defaults to `limits.public_key_rate` or `limits.secret_key_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Records this key may send per UTC day (0: no quota); defaults to
    /// `limits.daily_quota`. Past it, ingest answers 429 until the next UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_quota: Option<u64>,
    /// Whether this (secret) key may upload, list and delete source maps (`/sourcemaps`),
    /// as the admin token may: for a CI job that should not read records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sourcemaps: bool,
}

/// Whether a key is shipped to browsers or kept by services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Shipped in browser code: write-only, limited to its services and origins.
    Public,
    /// Kept by services.
    Secret,
}

/// A token bucket: sustained records per second and the burst above it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Records per second, sustained.
    pub records_per_second: f64,
    /// Records that may arrive at once after a quiet period.
    pub burst: f64,
}

/// Limits on requests, applied before anything is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body as sent (compressed or not); larger gets 413.
    pub max_body_bytes: u64,
    /// Largest body after gzip decompression; larger gets 413 without inflating the rest.
    pub max_decompressed_bytes: u64,
    /// Most records in one batch; more gets 413. Counted while the body is decoded, before
    /// the records are allocated.
    pub max_batch_records: usize,
    /// Most attributes in one OTLP request (`/v1/logs`): every `KeyValue` (of resources and
    /// log records, and nested in map values, at any depth) and every item of an array
    /// value, empty ones included. More gets 413; counted before the request is decoded.
    pub max_batch_attributes: usize,
    /// Memory the server gives request bodies and the records decoded from them, all
    /// requests together: bodies as read and as inflated, and records (estimated) as they
    /// are decoded, each request keeping its share until it is answered. A request that
    /// finds no room gets 503 with `Retry-After`; one that needs more than all of it, 413.
    /// Must be larger than `max_body_bytes + max_decompressed_bytes`.
    pub max_in_flight_bytes: u64,
    /// Deadline for a whole request, body included; slower gets 408.
    pub request_timeout: HumanDuration,
    /// Rate limit for secret keys without their own.
    pub secret_key_rate: RateLimit,
    /// Rate limit for public keys without their own.
    pub public_key_rate: RateLimit,
    /// Rate limit of each client address using a public key, beside the key's own (which
    /// every browser holding the published key shares): one client cannot starve the rest.
    pub public_client_rate: RateLimit,
    /// Most client addresses remembered per public key (least recently used forgotten).
    pub client_buckets: usize,
    /// Batches that may wait for the store; when full, ingest answers 503 with `Retry-After`.
    pub ingest_queue_batches: usize,
    /// Records each key may send per UTC day, for keys without their own `daily_quota`
    /// (0, the default: no quota). Counted like the rate limit (every record of a batch let
    /// through); a batch that would pass it gets 429 with `Retry-After` to the next UTC
    /// midnight. The counts survive restarts (`<data_dir>/quotas.json`, or PostgreSQL).
    pub daily_quota: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 5 * 1024 * 1024,
            max_decompressed_bytes: 20 * 1024 * 1024,
            max_batch_records: faultline_schema::DEFAULT_MAX_BATCH_RECORDS,
            max_batch_attributes: 200_000,
            max_in_flight_bytes: 512 * 1024 * 1024,
            request_timeout: HumanDuration(Duration::from_secs(30)),
            secret_key_rate: RateLimit {
                records_per_second: 200_000.0,
                burst: 400_000.0,
            },
            public_key_rate: RateLimit {
                records_per_second: 2_000.0,
                burst: 10_000.0,
            },
            public_client_rate: RateLimit {
                records_per_second: 200.0,
                burst: 2_000.0,
            },
            client_buckets: 65_536,
            ingest_queue_batches: 1024,
            daily_quota: 0,
        }
    }
}

/// The embedded file store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Start a new segment when the active one would pass this size.
    pub segment_max_bytes: u64,
    /// Start a new segment when the active one is this old.
    pub segment_max_age: HumanDuration,
    /// Delete segments whose newest record was received longer ago than this.
    pub retention: HumanDuration,
    /// Delete the oldest segments while the store is larger than this (0: no limit).
    pub retention_bytes: u64,
    /// How many recent record ids are remembered to make client retries idempotent.
    pub dedup_ids: usize,
    /// With PostgreSQL configured, also keep every record in the file store (a second copy;
    /// a write is acknowledged only when both have it).
    pub file_copy: bool,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            segment_max_bytes: 64 * 1024 * 1024,
            segment_max_age: HumanDuration(Duration::from_secs(3600)),
            retention: HumanDuration(Duration::from_secs(30 * 86_400)),
            retention_bytes: 50 * 1024 * 1024 * 1024,
            dedup_ids: 1_000_000,
            file_copy: false,
        }
    }
}

/// What retention does before it deletes, on either store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Archive what retention deletes here first: expired file store segments and
    /// PostgreSQL partitions (and the default partition's expired rows) as gzip NDJSON of
    /// the stored records, per day (`<archive_dir>/<yyyy-mm-dd>/<source>.ndjson.gz`).
    /// Nothing is deleted that could not be archived (the `archive` system check fails
    /// instead); `faultline import` brings archives back. Unset (the default): retention
    /// deletes outright. Env `FAULTLINE_RETENTION_ARCHIVE_DIR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_dir: Option<PathBuf>,
}

/// The PostgreSQL store (production). Retention is `storage.retention`, applied by
/// dropping whole daily partitions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Postgres {
    /// Connections kept open to PostgreSQL.
    pub pool_size: u32,
    /// `unnest` (one statement per batch) or `copy` (COPY into a staging table).
    pub write_method: PgWriteMethod,
    /// A batch not committed within this time (connection wait and retries included) goes to
    /// the local spool instead, so a slow or unreachable database does not hold clients.
    pub write_timeout: HumanDuration,
    /// Daily partitions are created this many days ahead.
    pub partitions_ahead: u32,
    /// The most the outage spool (`<data_dir>/spool`) may hold; beyond it ingest answers 503.
    pub spool_max_bytes: u64,
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres {
            pool_size: 8,
            write_method: PgWriteMethod::Unnest,
            write_timeout: HumanDuration(Duration::from_secs(5)),
            partitions_ahead: 3,
            spool_max_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// How batches are written to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PgWriteMethod {
    /// `INSERT ... SELECT FROM UNNEST(...)`: one statement per batch.
    Unnest,
    /// `COPY` into a staging table, then one `INSERT ... SELECT`.
    Copy,
}

/// Sampling: per service, records below `WARNING` beyond a rate per minute are kept one in
/// N (N growing with the service's volume in that minute), and each kept record carries in
/// `meta.sample_weight` how many records it stands for. `WARNING` and worse are never
/// sampled. `0` means no sampling.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sampling {
    /// Records below `WARNING` per service per minute kept before sampling starts, for
    /// services without their own rate (0: such services are never sampled).
    /// Env `FAULTLINE_SAMPLING_DEFAULT_PER_MINUTE`.
    pub default_per_minute: u64,
    /// Rates for single services (`api = 2000`), overriding the default (0: never sampled).
    pub services: std::collections::BTreeMap<String, u64>,
}

impl Sampling {
    /// The rate per minute for `service`, or `None` when its records are never sampled.
    pub fn per_minute(&self, service: &str) -> Option<u64> {
        let rate = self
            .services
            .get(service)
            .copied()
            .unwrap_or(self.default_per_minute);
        (rate > 0).then_some(rate)
    }

    /// Whether any service is sampled.
    pub fn enabled(&self) -> bool {
        self.default_per_minute > 0 || self.services.values().any(|r| *r > 0)
    }
}

/// Privacy: every record ingest takes in (from browsers, services, OTLP) has URL credentials
/// removed and the values of secret-looking URL parameters replaced with `[Filtered]`, in
/// its message and every string of its meta, before it is stored (the rule is
/// `faultline_schema::UrlScrubber`, the same as the browser reporter's; docs/SECURITY.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// More URL parameter names to filter, beyond the built-in ones (`token`, `key`,
    /// `password`, `secret`, `session`, `code`, ...). An entry filters every parameter whose
    /// name, in ASCII letters and digits and lowercased, contains the entry's (so
    /// `"tenant"` filters `tenant`, `x_tenant_id` and `TenantId`). Env
    /// `FAULTLINE_PRIVACY_DENY_URL_PARAMS`, comma-separated.
    pub deny_url_params: Vec<String>,
    /// Sentry events: whether a user known only by `user.ip_address` (`{{auto}}`: the
    /// request's client address) is counted as that address, re-keyed like every user.
    /// Off (the default): the address is dropped and the event has no user. Env
    /// `FAULTLINE_PRIVACY_SENTRY_IP_AS_USER`.
    pub sentry_ip_as_user: bool,
}

/// Issues (`/issues`): error events grouped by fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Issues {
    /// An issue is deleted once its last event is older than this (default `90d`): kept
    /// longer than its events, so a regression after a quiet month is still recognized.
    /// Env `FAULTLINE_ISSUES_RETENTION`.
    pub retention: HumanDuration,
}

impl Default for Issues {
    fn default() -> Self {
        Issues {
            retention: HumanDuration(faultline_store::issues::DEFAULT_ISSUE_RETENTION),
        }
    }
}

/// Source maps (`/sourcemaps`) and symbolication: how much may be uploaded, how many parsed
/// maps are cached, and how long a release's maps are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sourcemaps {
    /// The largest map accepted, after gzip (413 past it). Env
    /// `FAULTLINE_SOURCEMAPS_MAX_FILE_BYTES`.
    pub max_file_bytes: u64,
    /// The most one release's maps may hold together (413 past it).
    pub max_release_bytes: u64,
    /// Parsed maps kept in memory, in (estimated) bytes; the least recently used go first.
    pub cache_bytes: u64,
    /// Parsed maps kept in memory, in number.
    pub cache_maps: usize,
    /// How long a node trusts its cached list of a release's maps before checking the
    /// store again (how soon an upload to another node is used).
    pub refresh: HumanDuration,
    /// A release's maps are deleted once both its newest upload and its last use by
    /// symbolication are older than this. `0s` (the default): `storage.retention`.
    pub retention: HumanDuration,
}

impl Default for Sourcemaps {
    fn default() -> Self {
        Sourcemaps {
            max_file_bytes: 32 * 1024 * 1024,
            max_release_bytes: 256 * 1024 * 1024,
            cache_bytes: 256 * 1024 * 1024,
            cache_maps: 256,
            refresh: HumanDuration(Duration::from_secs(5)),
            retention: HumanDuration(Duration::ZERO),
        }
    }
}

impl Config {
    /// How long a release's source maps are kept after their last upload or use.
    pub fn sourcemap_retention(&self) -> Duration {
        if self.sourcemaps.retention.0.is_zero() {
            self.storage.retention.0
        } else {
            self.sourcemaps.retention.0
        }
    }
}

/// Values given on the command line (clap has already merged their env vars).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    pub database_url: Option<String>,
    /// `--tls-cert` (env `FAULTLINE_TLS_CERT`)
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` (env `FAULTLINE_TLS_KEY`)
    pub tls_key: Option<PathBuf>,
}

/// A configuration problem, naming the file, the key or field, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped fields.
    #[error("invalid config{}: {message}", origin.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if it came from one.
        origin: Option<PathBuf>,
        /// The parser's message, with the line and the field.
        message: String,
    },
    /// An environment variable override has the wrong type.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value breaks a rule.
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the file (if any), applies `FAULTLINE_*` env overrides, then the flags, and
    /// checks the result. `env` reads a variable (the process environment in production).
    pub fn load(
        path: Option<&Path>,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let config = Config::load_unchecked(path, overrides, env)?;
        config.check()?;
        Ok(config)
    }

    /// [`Config::load`] without the rules' check: read, parsed and overridden, for
    /// `faultline validate` to list every [`Config::problems`].
    pub fn load_unchecked(
        path: Option<&Path>,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        let origin = path.map(Path::to_path_buf);
        let parse_err = |message: String| ConfigError::Parse {
            origin: origin.clone(),
            message,
        };
        let mut from_file: Config = toml::from_str(&text).map_err(|e| parse_err(e.to_string()))?;
        if path.is_none() {
            // The embedded default runs the shipped alert rules from the first start; their
            // channels stay "not configured" until their variables are set.
            from_file.alerts = AlertsConfig::seeded();
        }

        // Round-trip through a table so every scalar, nested or not, can be overridden by
        // FAULTLINE_<SECTION>_<FIELD> without listing them by hand.
        let mut table =
            toml::Table::try_from(&from_file).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        apply_env(&mut table, "FAULTLINE", env)?;
        let mut config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;

        if let Some(url) = env("DATABASE_URL") {
            config.database_url = Some(url);
        }
        // A list, which the scalar overrides above skip: comma-separated, like
        // FAULTLINE_CORS_ORIGINS.
        if let Some(names) = env("FAULTLINE_PRIVACY_DENY_URL_PARAMS") {
            config.privacy.deny_url_params = names
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir.clone_from(dir);
        }
        if let Some(url) = &overrides.database_url {
            config.database_url = Some(url.clone());
        }
        if let Some(target) = env("FAULTLINE_ACCESS_LOG").filter(|t| !t.trim().is_empty()) {
            config.access_log = Some(target);
        }
        // Paths the table above does not hold while they are unset.
        for (var, field) in [
            ("FAULTLINE_TLS_CERT", &mut config.tls.cert),
            ("FAULTLINE_TLS_KEY", &mut config.tls.key),
            (
                "FAULTLINE_RETENTION_ARCHIVE_DIR",
                &mut config.retention.archive_dir,
            ),
        ] {
            if let Some(path) = env(var).filter(|p| !p.is_empty()) {
                *field = Some(PathBuf::from(path));
            }
        }
        if let Some(path) = &overrides.tls_cert {
            config.tls.cert = Some(path.clone());
        }
        if let Some(path) = &overrides.tls_key {
            config.tls.key = Some(path.clone());
        }
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(ConfigError::Invalid(problem)),
            None => Ok(()),
        }
    }

    /// Every rule the values break, in the order of the file (`faultline validate` lists
    /// them all; a start stops at the first).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut invalid = |msg: String| problems.push(msg);
        let l = &self.limits;
        if l.max_body_bytes == 0 || l.max_decompressed_bytes < l.max_body_bytes {
            invalid(
                "limits.max_decompressed_bytes must be at least limits.max_body_bytes, \
                 and both above 0"
                    .into(),
            );
        }
        if self.postgres.pool_size == 0 || self.postgres.write_timeout.0.is_zero() {
            invalid("postgres.pool_size and postgres.write_timeout must be above 0".into());
        }
        if l.max_batch_records == 0 || l.ingest_queue_batches == 0 || l.max_batch_attributes == 0 {
            invalid(
                "limits.max_batch_records, limits.max_batch_attributes and \
                 limits.ingest_queue_batches must be above 0"
                    .into(),
            );
        }
        if l.max_in_flight_bytes <= l.max_body_bytes.saturating_add(l.max_decompressed_bytes) {
            invalid(format!(
                "limits.max_in_flight_bytes ({}) must be larger than limits.max_body_bytes + \
                 limits.max_decompressed_bytes ({}), or the largest request could never be read",
                l.max_in_flight_bytes,
                l.max_body_bytes.saturating_add(l.max_decompressed_bytes)
            ));
        }
        if l.client_buckets == 0 {
            invalid("limits.client_buckets must be above 0".into());
        }
        for proxy in &self.trusted_proxies {
            if parse_proxy(proxy).is_none() {
                invalid(format!(
                    "trusted_proxies: {proxy:?} is not an IP address or a CIDR such as \
                     10.0.0.0/8 or fd00::/8"
                ));
            }
        }
        for rate in [
            &l.secret_key_rate,
            &l.public_key_rate,
            &l.public_client_rate,
        ] {
            if let Err(e) = check_rate(rate, "limits") {
                invalid(e);
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, key) in self.keys.iter().enumerate() {
            let at = format!("keys[{i}] ({})", key.name);
            if key.name.is_empty() || !names.insert(key.name.as_str()) {
                invalid(format!("{at}: name must be non-empty and unique"));
            }
            let sources = usize::from(key.key.is_some())
                + usize::from(key.key_env.is_some())
                + usize::from(key.key_file.is_some());
            if sources != 1 {
                invalid(format!(
                    "{at}: give exactly one of key, key_env or key_file"
                ));
            }
            if key.kind == KeyKind::Secret && key.key.is_some() {
                invalid(format!(
                    "{at}: a secret key must not be written in the config file: \
                     put it in an environment variable (key_env) or a file (key_file)"
                ));
            }
            if key.services.is_empty() {
                invalid(format!(
                    "{at}: services is empty: list the services it may write for, or \"*\""
                ));
            }
            for s in &key.services {
                if s != "*" && faultline_schema::check_service(s).is_err() {
                    invalid(format!(
                        "{at}: service {s:?} is not a valid service name ([a-z0-9_.-], 1 to 64)"
                    ));
                }
            }
            if key.kind == KeyKind::Public && key.sourcemaps {
                invalid(format!(
                    "{at}: sourcemaps = true needs a secret key (a public key ships to browsers)"
                ));
            }
            if key.kind == KeyKind::Public && key.origins.is_empty() {
                invalid(format!(
                    "{at}: a public key needs origins (the browser origins allowed to use it)"
                ));
            }
            for o in &key.origins {
                if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                    invalid(format!(
                        "{at}: origin {o:?} must look like https://host[:port], without a path"
                    ));
                }
            }
            if let Some(rate) = &key.rate_limit
                && let Err(e) = check_rate(rate, &at)
            {
                invalid(e);
            }
        }
        if let Some(target) = &self.access_log
            && target.trim().is_empty()
        {
            invalid("access_log: give \"stdout\" or a file path, or leave it unset".into());
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            invalid("tls: give both cert and key (--tls-cert and --tls-key), or neither".into());
        }
        if self.tls.watch_interval.0.is_zero() || self.shutdown_timeout.0.is_zero() {
            invalid("tls.watch_interval and shutdown_timeout must be above 0".into());
        }
        let m = &self.sourcemaps;
        if m.max_file_bytes == 0 || m.max_release_bytes < m.max_file_bytes || m.cache_maps == 0 {
            invalid(
                "sourcemaps.max_file_bytes and sourcemaps.cache_maps must be above 0, and \
                 sourcemaps.max_release_bytes at least sourcemaps.max_file_bytes"
                    .into(),
            );
        }
        for service in self.sampling.services.keys() {
            if faultline_schema::check_service(service).is_err() {
                invalid(format!(
                    "sampling.services: {service:?} is not a valid service name \
                     ([a-z0-9_.-], 1 to 64)"
                ));
            }
        }
        for name in &self.privacy.deny_url_params {
            if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
                invalid(format!(
                    "privacy.deny_url_params: {name:?} has no letter or digit, so it would \
                     match every parameter name: give names such as \"tenant\""
                ));
            }
        }
        if let Err(e) = self.alerts.check() {
            invalid(e.to_string());
        }
        problems
    }
}

/// The slowest rate a limit may have: one record a day. A slower one would ask clients to
/// wait longer than a `Duration` (or a `Retry-After`) can say.
const MIN_RECORDS_PER_SECOND: f64 = 1.0 / 86_400.0;

fn check_rate(rate: &RateLimit, at: &str) -> Result<(), String> {
    let ok = rate.records_per_second.is_finite()
        && rate.records_per_second >= MIN_RECORDS_PER_SECOND
        && rate.burst.is_finite()
        && rate.burst >= 1.0;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{at}: rate limits need records_per_second of at least 1/86400 (one record a \
             day) and burst >= 1, both finite; got records_per_second = {}, burst = {}",
            rate.records_per_second, rate.burst
        ))
    }
}

/// Replaces each scalar leaf with `PREFIX_<PATH>` from the environment, parsed as the
/// leaf's type. Arrays (such as `keys`) are not overridable this way.
fn apply_env(
    table: &mut toml::Table,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let var = format!("{prefix}_{}", key.to_ascii_uppercase());
        if let toml::Value::Table(inner) = value {
            apply_env(inner, &var, env)?;
            continue;
        }
        let Some(raw) = env(&var) else { continue };
        let bad = |what: &str| ConfigError::Env {
            var: var.clone(),
            message: format!("{raw:?} is not {what}"),
        };
        *value = match value {
            toml::Value::Integer(_) => {
                toml::Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?)
            }
            toml::Value::Float(_) => {
                toml::Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?)
            }
            toml::Value::Boolean(_) => {
                toml::Value::Boolean(raw.trim().parse().map_err(|_| bad("true or false"))?)
            }
            toml::Value::Array(_) => continue,
            _ => toml::Value::String(raw),
        };
    }
    Ok(())
}

/// A `trusted_proxies` entry: an address (`10.1.2.3`, `::1`) or a CIDR (`10.0.0.0/8`).
pub(crate) fn parse_proxy(entry: &str) -> Option<ipnet::IpNet> {
    let entry = entry.trim();
    entry.parse::<ipnet::IpNet>().ok().or_else(|| {
        entry
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(toml_text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.toml");
        std::fs::write(&path, toml_text).unwrap();
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(Some(&path), &Overrides::default(), &|k| {
            vars.get(k).cloned()
        })
    }

    #[test]
    fn design_example_loads() {
        let c = load(
            r#"
listen = "127.0.0.1:8080"
data_dir = "./data"

[[keys]]
name = "panel"
kind = "public"
key = "pk_panel_dev"
services = ["ui"]
origins = ["http://localhost:5173"]

[[keys]]
name = "backend"
kind = "secret"
key_env = "FAULTLINE_BACKEND_KEY"
services = ["api", "worker"]
"#,
            &[],
        )
        .unwrap();
        assert_eq!(c.keys.len(), 2);
        assert_eq!(c.keys[1].kind, KeyKind::Secret);
    }

    #[test]
    fn shipped_example_config_loads_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../faultline.example.toml");
        let c = Config::load(Some(&path), &Overrides::default(), &|_| None).unwrap();
        let d = Config::default();
        assert_eq!(c.keys.len(), 2);
        assert_eq!(c.limits.max_body_bytes, d.limits.max_body_bytes);
        assert_eq!(
            c.limits.max_decompressed_bytes,
            d.limits.max_decompressed_bytes
        );
        assert_eq!(c.limits.secret_key_rate, d.limits.secret_key_rate);
        assert_eq!(c.storage.retention, d.storage.retention);
        assert_eq!(c.storage.retention_bytes, d.storage.retention_bytes);
        assert_eq!(c.storage.segment_max_bytes, d.storage.segment_max_bytes);
        assert_eq!(c.limits.max_in_flight_bytes, d.limits.max_in_flight_bytes);
        assert_eq!(c.limits.max_batch_attributes, d.limits.max_batch_attributes);
    }

    /// Guards `[retention] archive_dir` (issue 27): off by default and in the example, set
    /// by the file or by FAULTLINE_RETENTION_ARCHIVE_DIR (which wins), unknown keys refused.
    #[test]
    fn the_archive_dir_comes_from_the_file_or_the_environment() {
        assert_eq!(load("", &[]).unwrap().retention.archive_dir, None);
        let from_file = load("[retention]\narchive_dir = \"/srv/archive\"\n", &[]).unwrap();
        assert_eq!(
            from_file.retention.archive_dir.as_deref(),
            Some(Path::new("/srv/archive"))
        );
        for text in ["", "[retention]\narchive_dir = \"/srv/archive\"\n"] {
            let c = load(text, &[("FAULTLINE_RETENTION_ARCHIVE_DIR", "/mnt/a")]).unwrap();
            assert_eq!(
                c.retention.archive_dir.as_deref(),
                Some(Path::new("/mnt/a"))
            );
        }
        let err = load("[retention]\narchive = \"/x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("archive"), "{err}");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../faultline.example.toml");
        let example = Config::load(Some(&path), &Overrides::default(), &|_| None).unwrap();
        assert_eq!(example.retention.archive_dir, None);
    }

    #[test]
    fn the_in_flight_budget_holds_the_largest_request() {
        let c = load("", &[("FAULTLINE_LIMITS_MAX_IN_FLIGHT_BYTES", "50331648")]).unwrap();
        assert_eq!(c.limits.max_in_flight_bytes, 48 << 20);
        // 5 MiB + 20 MiB exactly: a gzip body at both limits could never be read.
        let err = load("[limits]\nmax_in_flight_bytes = 26214400\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_in_flight_bytes"), "{err}");
        let err = load("[limits]\nmax_batch_attributes = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_batch_attributes"), "{err}");
    }

    #[test]
    fn env_overrides_nested_scalars_and_flags_win() {
        let c = load(
            "[limits]\nmax_batch_records = 50\n",
            &[
                ("FAULTLINE_LIMITS_MAX_BATCH_RECORDS", "70"),
                ("FAULTLINE_STORAGE_RETENTION", "7d"),
                ("FAULTLINE_LISTEN", "127.0.0.1:9999"),
            ],
        )
        .unwrap();
        assert_eq!(c.limits.max_batch_records, 70);
        assert_eq!(c.storage.retention.0, Duration::from_secs(7 * 86_400));
        assert_eq!(c.listen.port(), 9999);

        let err = load("", &[("FAULTLINE_LIMITS_MAX_BATCH_RECORDS", "lots")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("FAULTLINE_LIMITS_MAX_BATCH_RECORDS"),
            "{err}"
        );
    }

    #[test]
    fn sampling_rates_default_off_with_per_service_overrides() {
        let c = load("", &[]).unwrap();
        assert!(!c.sampling.enabled(), "off unless configured");
        let c = load(
            "[sampling]\ndefault_per_minute = 500\n[sampling.services]\napi = 2000\nbilling = 0\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.sampling.per_minute("worker"), Some(500));
        assert_eq!(c.sampling.per_minute("api"), Some(2000));
        assert_eq!(c.sampling.per_minute("billing"), None, "0: never sampled");
        let c = load("", &[("FAULTLINE_SAMPLING_DEFAULT_PER_MINUTE", "300")]).unwrap();
        assert_eq!(c.sampling.per_minute("api"), Some(300));
        let err = load("[sampling.services]\n\"API\" = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sampling.services") && err.contains("API"),
            "{err}"
        );
    }

    /// Guards start-up panics: a tiny rate made `Duration::from_secs_f64` overflow on the
    /// first 429, and a huge duration overflowed deadlines; both are config errors now.
    #[test]
    fn tiny_rates_and_huge_durations_are_config_errors() {
        for rate in ["1e-300", "0.0", "-1.0", "nan", "inf"] {
            let err = load(
                &format!(
                    "[limits]\npublic_key_rate = {{ records_per_second = {rate}, burst = 10.0 }}\n"
                ),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("limits") && err.contains("records_per_second"),
                "{rate}: {err}"
            );
        }
        let err = load("", &[("FAULTLINE_LIMITS_SECRET_KEY_RATE_BURST", "inf")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("burst"), "{err}");
        assert!(
            load(
                "[limits]\npublic_key_rate = { records_per_second = 0.0001, burst = 1.0 }\n",
                &[]
            )
            .is_ok()
        );
        let err = load("[storage]\nretention = \"36501d\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("retention") && err.contains("too long"),
            "{err}"
        );
        let many = format!("{}ms", u64::MAX).repeat(1_100);
        let err = load("", &[("FAULTLINE_STORAGE_RETENTION", &many)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn privacy_deny_url_params_from_file_and_env() {
        let c = load(
            "[privacy]\ndeny_url_params = [\"tenant\", \"X-Trace\"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.privacy.deny_url_params, ["tenant", "X-Trace"]);
        let c = load(
            "[privacy]\ndeny_url_params = [\"tenant\"]\n",
            &[("FAULTLINE_PRIVACY_DENY_URL_PARAMS", " a , ,b")],
        )
        .unwrap();
        assert_eq!(
            c.privacy.deny_url_params,
            ["a", "b"],
            "env replaces the list"
        );
        assert!(load("", &[]).unwrap().privacy.deny_url_params.is_empty());
        let err = load("[privacy]\ndeny_url_params = [\"--\"]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("privacy.deny_url_params"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        let err = load("listen = 5\n", &[]).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        let err = load("[limits]\nmax_body = 1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_body"), "{err}");
        let err = load(
            "[[keys]]\nname = \"b\"\nkind = \"secret\"\nkey = \"sk\"\nservices = [\"api\"]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("keys[0] (b)") && err.contains("key_env"),
            "{err}"
        );
        let err = load(
            "[[keys]]\nname = \"p\"\nkind = \"public\"\nkey = \"pk\"\nservices = [\"ui\"]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("origins"), "{err}");
    }
}

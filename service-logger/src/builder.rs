//! [`Builder`]: the record's static fields, the outputs, and the process-wide pieces (global
//! subscriber, `log` bridge, panic hook).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use faultline_schema::{Level, Record, Timestamp, check_service};
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
#[cfg(feature = "log")]
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::encode::RecordConfig;
use crate::error::InitError;
use crate::layer::FaultlineLayer;
#[cfg(feature = "log")]
use crate::log_bridge::LogBridge;
use crate::logger::{Guard, Logger};
use crate::output::Output;
use crate::worker::OutputHandle;

/// The logger [`Builder::init`] installed, for [`crate::flush`], [`crate::shutdown`] and
/// [`crate::exit`].
pub(crate) static GLOBAL: OnceLock<Logger> = OnceLock::new();

/// How long dropping the [`Guard`] waits for the outputs by default: 5 seconds (see
/// [`Builder::shutdown_timeout`]).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`Builder::init`] filters with when `RUST_LOG` is unset or empty: `info`.
pub const DEFAULT_FILTER: &str = "info";

/// Starts a [`Builder`].
pub fn builder() -> Builder {
    Builder::default()
}

/// Configures a logger; see the crate documentation for a walk-through.
#[derive(Debug)]
pub struct Builder {
    service: Option<String>,
    release: Option<String>,
    environment: Option<String>,
    host: Option<Option<String>>,
    fields: Vec<(String, Value)>,
    user_salt: Option<String>,
    outputs: Vec<Output>,
    heartbeat: Option<Duration>,
    panic_hook: bool,
    log_bridge: bool,
    shutdown_timeout: Option<Duration>,
    panic_flush_timeout: Option<Duration>,
    default_filter: String,
    with_target: bool,
    with_location: bool,
    with_thread: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            service: None,
            release: None,
            environment: None,
            host: None,
            fields: Vec::new(),
            user_salt: None,
            outputs: Vec::new(),
            heartbeat: None,
            panic_hook: true,
            log_bridge: true,
            shutdown_timeout: Some(DEFAULT_SHUTDOWN_TIMEOUT),
            panic_flush_timeout: None,
            default_filter: DEFAULT_FILTER.to_owned(),
            with_target: true,
            with_location: false,
            with_thread: false,
        }
    }
}

#[cfg(feature = "log")]
/// The plain `target=level` directives of a `RUST_LOG` value, for the `log` bridge (span and
/// field directives do not apply to `log` records and are left out).
fn log_targets(directives: &str) -> Targets {
    let mut targets = Targets::new();
    for d in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        if let Ok(t) = d.parse::<Targets>() {
            for (target, level) in t.iter() {
                targets = targets.with_target(target, level);
            }
            if let Some(level) = t.default_level() {
                targets = targets.with_default(level);
            }
        }
    }
    if targets.iter().next().is_none() && targets.default_level().is_none() {
        // Nothing parsed: errors only, as the `EnvFilter` does.
        targets = targets.with_default(LevelFilter::ERROR);
    }
    targets
}

/// The machine's host name, from `HOSTNAME` or the kernel.
fn detect_host() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

impl Builder {
    /// The `service` of every record (required): 1 to 64 characters of `[a-z0-9_.-]`.
    pub fn service(mut self, service: impl Into<String>) -> Builder {
        self.service = Some(service.into());
        self
    }

    /// `meta.release` of every record (for example `env!("CARGO_PKG_VERSION")`).
    pub fn release(mut self, release: impl Into<String>) -> Builder {
        self.release = Some(release.into());
        self
    }

    /// `meta.environment` of every record (`production`, `staging`, ...).
    pub fn environment(mut self, environment: impl Into<String>) -> Builder {
        self.environment = Some(environment.into());
        self
    }

    /// `meta.host` of every record (default: the machine's host name; `None` leaves it out).
    pub fn host(mut self, host: Option<String>) -> Builder {
        self.host = Some(host);
        self
    }

    /// Another static `meta` field on every record. Span and event fields of the same name
    /// win over it.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Builder {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// The project's public salt for user ids: a `user` field that is not already an
    /// anonymized id (`u_` and 16 hex characters) is replaced by
    /// `faultline_schema::anonymize_user(salt, value)`, so the raw id never leaves the
    /// service and matches the browser reporter's. Defaults to `FAULTLINE_USER_SALT`, then
    /// to an empty salt.
    pub fn user_salt(mut self, salt: impl Into<String>) -> Builder {
        self.user_salt = Some(salt.into());
        self
    }

    /// Adds an output. Without any, records go to standard output.
    pub fn output(mut self, output: Output) -> Builder {
        self.outputs.push(output);
        self
    }

    /// Each output's worker writes an `INFO` record with event `heartbeat` this often (with
    /// its queue depth, written, dropped and lag), so an `absence` alert rule on the server
    /// notices a dead process or a stuck worker. Off by default.
    pub fn heartbeat(mut self, every: Duration) -> Builder {
        self.heartbeat = Some(every);
        self
    }

    /// Whether to install the panic hook (default `true`): a panic is logged as a `CRITICAL`
    /// record (event `panic`, with its location and, when `RUST_BACKTRACE` asks, the
    /// backtrace in `meta.stack_text`) and every logger is flushed before the previous hook
    /// runs.
    pub fn panic_hook(mut self, yes: bool) -> Builder {
        self.panic_hook = yes;
        self
    }

    /// How long the panic hook may wait for the flush (default: as long as it takes).
    pub fn panic_flush_timeout(mut self, timeout: Duration) -> Builder {
        self.panic_flush_timeout = Some(timeout);
        self
    }

    /// Whether [`init`](Builder::init) also installs the `LogBridge` as the `log`
    /// crate's logger (default `true`; skipped if another one is installed; only with the
    /// `log` feature).
    pub fn log_bridge(mut self, yes: bool) -> Builder {
        self.log_bridge = yes;
        self
    }

    /// How long dropping the [`Guard`] (or [`crate::exit`]) may wait for the shutdown
    /// (default [`DEFAULT_SHUTDOWN_TIMEOUT`], 5 seconds; `Duration::MAX` waits as long as it
    /// takes).
    ///
    /// Why bounded: a process that is told to stop should stop. An ingest endpoint that is
    /// down would otherwise hold the exit for as long as the HTTP output retries (see
    /// `HttpConfig::retry_for`), longer than a container runtime waits before it kills.
    /// When the time runs out, the guard says on standard error how many records each
    /// output left undelivered (and how many are safe in a spool) and lets the process end.
    /// Give the HTTP output a `spool_dir` and the next
    /// start delivers what this one left.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// The directives [`init`](Builder::init) filters with when `RUST_LOG` is unset or empty
    /// (default [`DEFAULT_FILTER`], `info`), in `RUST_LOG`'s syntax: `"info,my_app=debug"`.
    pub fn default_filter(mut self, directives: impl Into<String>) -> Builder {
        self.default_filter = directives.into();
        self
    }

    /// Whether records carry `meta.target`, the module path or `log` target (default `true`).
    pub fn with_target(mut self, yes: bool) -> Builder {
        self.with_target = yes;
        self
    }

    /// Whether records carry `meta.file` and `meta.line` (default `false`).
    pub fn with_location(mut self, yes: bool) -> Builder {
        self.with_location = yes;
        self
    }

    /// Whether records carry `meta.thread`, the thread's name or id (default `false`).
    pub fn with_thread(mut self, yes: bool) -> Builder {
        self.with_thread = yes;
        self
    }

    fn record_config(&mut self) -> Result<RecordConfig, InitError> {
        let service = self
            .service
            .take()
            .ok_or_else(|| InitError::Invalid("a service name is required".into()))?;
        check_service(&service).map_err(|e| InitError::Invalid(e.to_string()))?;
        let mut statics: Vec<(String, Value)> = Vec::new();
        let host = match self.host.take() {
            Some(h) => h,
            None => detect_host(),
        };
        for (k, v) in [
            ("release", self.release.take()),
            ("environment", self.environment.take()),
            ("host", host),
        ] {
            if let Some(v) = v {
                statics.push((k.to_owned(), Value::String(v)));
            }
        }
        statics.append(&mut self.fields);
        // The same rules the server applies, checked once here.
        let mut probe = Record::new(
            Timestamp::from_unix_millis(0),
            &service,
            Level::Info,
            "e",
            "",
        );
        probe.meta = statics.iter().cloned().collect();
        probe
            .validate()
            .map_err(|e| InitError::Invalid(e.to_string()))?;
        let statics = probe.meta.into_iter().collect();
        Ok(RecordConfig {
            service,
            statics,
            user_salt: self
                .user_salt
                .take()
                .or_else(|| std::env::var("FAULTLINE_USER_SALT").ok()),
            with_target: self.with_target,
            with_location: self.with_location,
        })
    }

    /// Starts the outputs' workers and returns the layer and its guard, for composing with
    /// other layers:
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    ///
    /// let (layer, _guard) = faultline_logger::builder().service("api").build()?;
    /// tracing_subscriber::registry()
    ///     .with(layer)
    ///     .with(tracing_subscriber::fmt::layer())
    ///     .init();
    /// # Ok::<(), faultline_logger::InitError>(())
    /// ```
    ///
    /// Errors if a setting breaks the record contract or an output cannot start (a directory
    /// that cannot be created, a malformed URL, an unwritable spool).
    pub fn build(mut self) -> Result<(FaultlineLayer, Guard), InitError> {
        let record = self.record_config()?;
        if self.outputs.is_empty() {
            self.outputs.push(Output::stdout());
        }
        if self.outputs.len() > 64 {
            return Err(InitError::Invalid("at most 64 outputs".into()));
        }
        crate::capture::start_clock();
        let mut handles: Vec<Arc<OutputHandle>> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for output in std::mem::take(&mut self.outputs) {
            let base = output
                .options
                .name
                .clone()
                .unwrap_or_else(|| output.label().to_owned());
            let mut name = base.clone();
            let mut n = 1;
            while names.contains(&name) {
                n += 1;
                name = format!("{base}-{n}");
            }
            names.push(name.clone());
            let Output { kind, options } = output;
            match OutputHandle::spawn(kind, options, name, &record, self.heartbeat) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Stop the ones already running.
                    let partial = Logger::new(handles, record, false, None, None, false);
                    partial.shutdown(Duration::MAX);
                    return Err(e);
                }
            }
        }
        let logger = Logger::new(
            handles,
            record,
            self.with_thread,
            self.shutdown_timeout,
            self.panic_flush_timeout,
            self.panic_hook,
        );
        crate::panic::register(&logger);
        if self.panic_hook {
            crate::panic::install();
        }
        let layer = FaultlineLayer {
            logger: logger.clone(),
        };
        Ok((layer, Guard { logger }))
    }

    /// [`build`](Builder::build), then installs the layer as the global `tracing`
    /// subscriber (on a `Registry`, behind an `EnvFilter` read from `RUST_LOG`) and, unless
    /// turned off, the `log` bridge. The returned guard shuts the logger down when dropped:
    /// keep it in `main`.
    ///
    /// # `RUST_LOG`
    ///
    /// Events pass `RUST_LOG` first (`RUST_LOG=warn,my_app=debug`), or the
    /// [`default_filter`](Builder::default_filter), `info`, when it is unset or empty, as
    /// with `env_logger` and `tracing_subscriber::fmt`: a dependency's `TRACE` chatter costs
    /// nothing unless asked for, and an operator can turn a module up without a rebuild.
    /// Then each output's own [`min_level`](Output::min_level) and
    /// [`targets`](Output::targets) choose among what passed, so an output that takes only
    /// errors keeps taking only errors whatever `RUST_LOG` says. Directives that do not
    /// parse are skipped with a line on standard error. `log` records obey the same
    /// target directives through the bridge (with the `log` feature). [`build`](Builder::build) applies no filter:
    /// compose your own.
    ///
    /// Errors like `build`, and with [`InitError::AlreadyInitialized`] when a global
    /// subscriber is already set (the logger is then shut down again).
    pub fn init(self) -> Result<Guard, InitError> {
        let log_bridge = self.log_bridge;
        let directives = match std::env::var("RUST_LOG") {
            Ok(v) if !v.trim().is_empty() => v,
            _ => self.default_filter.clone(),
        };
        let (layer, guard) = self.build()?;
        let logger = guard.logger.clone();
        let filter = EnvFilter::builder()
            .with_default_directive(LevelFilter::ERROR.into())
            .parse_lossy(&directives);
        let subscriber = tracing_subscriber::registry().with(filter).with(layer);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            drop(guard);
            return Err(InitError::AlreadyInitialized);
        }
        #[cfg(not(feature = "log"))]
        let _ = log_bridge;
        #[cfg(feature = "log")]
        if log_bridge {
            let bridge = LogBridge::new(logger.clone()).filter(log_targets(&directives));
            let max = bridge.max_level();
            if log::set_boxed_logger(Box::new(bridge)).is_ok() {
                log::set_max_level(max);
            }
        }
        let _ = GLOBAL.set(logger);
        Ok(guard)
    }
}

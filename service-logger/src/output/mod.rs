//! Outputs, the things records are written to: their configuration ([`Output`], [`Policy`])
//! and [`open`], which starts the kind's [`Destination`] on its worker.
//!
//! Each output gets its own bounded queue and worker thread, so a slow destination (an ingest
//! endpoint that is down) never holds up a fast one (the local file), and each has its own
//! full-queue policy and routing.

mod destination;
#[cfg(feature = "file")]
pub(crate) mod file;
#[cfg(feature = "http")]
pub(crate) mod http;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod stream;
#[cfg(feature = "unix")]
pub(crate) mod unix;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::filter::Targets;

use crate::error::InitError;
use crate::stats::Counters;

pub(crate) use destination::Destination;
#[cfg(feature = "file")]
pub use file::{Clock, FileConfig, Fsync, Rotation};
#[cfg(feature = "http")]
pub use http::HttpConfig;
#[cfg(feature = "postgres")]
pub use postgres::PostgresConfig;
#[cfg(feature = "unix")]
pub use unix::UnixConfig;

/// The default queue capacity of an output, per thread that logs to it: 8,192 records, in a
/// 1 MiB ring (128 bytes a record; a call with a message and three fields takes about 100).
pub const DEFAULT_QUEUE_CAPACITY: usize = 8_192;

/// What a call site does when an output's queue is full.
///
/// The queue fills only when the output cannot keep up for a while (a disk stalls, a burst
/// outruns it). Whatever the policy, every record is accounted for: written, still queued,
/// spooled, or counted in [`Dropped`](crate::Dropped) under its reason, and after drops the
/// worker writes a `WARNING` record `logger_dropped` saying how many, so the loss shows in
/// the logs themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Wait for room (the default): nothing is lost, and an output that cannot keep up slows
    /// its callers down.
    #[default]
    Block,
    /// Wait at most this long, then drop the record and count it in `Dropped::timeout`.
    BlockTimeout(Duration),
    /// Drop the record at once and count it in `Dropped::queue_full`: callers never wait.
    DropNewest,
}

/// One output, a place records are written to (stdout, a file, PostgreSQL, the ingest
/// endpoint), with its queue, policy and routing.
///
/// ```no_run
/// use faultline_logger::{FileConfig, HttpConfig, Policy, Output};
///
/// // Everything to a rotating file; errors also to the ingest endpoint, never dropped.
/// let file = Output::file(FileConfig::new("/var/log/api").max_bytes(64 << 20).keep_files(20));
/// let ingest = Output::http(HttpConfig::new("https://faultline.internal", "sk_api").spool_dir("/var/lib/api/spool"))
///     .min_level(tracing::Level::ERROR)
///     .policy(Policy::DropNewest)
///     .never_drop_errors(true);
/// # let _ = (file, ingest);
/// ```
pub struct Output {
    pub(crate) kind: Kind,
    pub(crate) options: Options,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("kind", &self.kind.label())
            .field("options", &self.options)
            .finish()
    }
}

pub(crate) enum Kind {
    Stdout,
    Stderr,
    Writer(Box<dyn Write + Send>),
    #[cfg(feature = "file")]
    File(FileConfig),
    #[cfg(feature = "http")]
    Http(HttpConfig),
    #[cfg(feature = "postgres")]
    Postgres(PostgresConfig),
    #[cfg(feature = "unix")]
    Unix(UnixConfig),
}

impl Kind {
    fn label(&self) -> &'static str {
        match self {
            Kind::Stdout => "stdout",
            Kind::Stderr => "stderr",
            Kind::Writer(_) => "writer",
            #[cfg(feature = "file")]
            Kind::File(_) => "file",
            #[cfg(feature = "http")]
            Kind::Http(_) => "http",
            #[cfg(feature = "postgres")]
            Kind::Postgres(_) => "postgres",
            #[cfg(feature = "unix")]
            Kind::Unix(_) => "unix",
        }
    }
}

/// The settings every output has.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) name: Option<String>,
    pub(crate) policy: Policy,
    pub(crate) never_drop_errors: bool,
    pub(crate) capacity: usize,
    /// The most verbose level taken (tracing's order: `TRACE` takes everything).
    pub(crate) min_level: tracing::Level,
    pub(crate) targets: Option<Targets>,
    pub(crate) synchronous: bool,
    pub(crate) heartbeat: bool,
    pub(crate) batch_size: usize,
    pub(crate) linger: Duration,
}

impl Output {
    fn new(kind: Kind) -> Output {
        Output {
            kind,
            options: Options {
                name: None,
                policy: Policy::default(),
                never_drop_errors: false,
                capacity: DEFAULT_QUEUE_CAPACITY,
                min_level: tracing::Level::TRACE,
                targets: None,
                synchronous: false,
                heartbeat: true,
                batch_size: 1000,
                linger: Duration::from_millis(200),
            },
        }
    }

    /// NDJSON records on standard output, one per line (for containers whose runtime
    /// collects stdout).
    pub fn stdout() -> Output {
        Output::new(Kind::Stdout)
    }

    /// NDJSON records on standard error.
    pub fn stderr() -> Output {
        Output::new(Kind::Stderr)
    }

    /// NDJSON records to any writer (a socket, a pipe, a test buffer). The worker writes
    /// whole lines and calls `flush` whenever its queue runs empty.
    pub fn writer(writer: impl Write + Send + 'static) -> Output {
        Output::new(Kind::Writer(Box::new(writer)))
    }

    /// A rotating NDJSON file; see [`FileConfig`].
    #[cfg(feature = "file")]
    #[cfg_attr(docsrs, doc(cfg(feature = "file")))]
    pub fn file(config: FileConfig) -> Output {
        Output::new(Kind::File(config))
    }

    /// The ingest endpoint (`POST /logs/ingest`); see [`HttpConfig`].
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http(config: HttpConfig) -> Output {
        Output::new(Kind::Http(config))
    }

    /// PostgreSQL, through the server's own `faultline_store::PostgresStore`: the same
    /// `system_logs` table, batched idempotent writes and durable outage spool; see
    /// [`PostgresConfig`].
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(config: PostgresConfig) -> Output {
        Output::new(Kind::Postgres(config))
    }

    /// A local collector, `faultline forward --listen unix:PATH` (or `tcp:HOST:PORT`), for
    /// services of several processes: batches over a framed socket protocol, kept until the
    /// collector acknowledges them and sent again after a reconnect, heartbeats, and a clean
    /// `BYE` at shutdown; see [`UnixConfig`].
    #[cfg(feature = "unix")]
    #[cfg_attr(docsrs, doc(cfg(feature = "unix")))]
    pub fn unix(config: UnixConfig) -> Output {
        Output::new(Kind::Unix(config))
    }

    /// The name in [`Stats`](crate::Stats), reports and heartbeats (default: the kind,
    /// `file`, `http`, ..., with `-2`, `-3` appended on repeats).
    pub fn name(mut self, name: impl Into<String>) -> Output {
        self.options.name = Some(name.into());
        self
    }

    /// What a call site does when this output's queue is full (default [`Policy::Block`]).
    pub fn policy(mut self, policy: Policy) -> Output {
        self.options.policy = policy;
        self
    }

    /// Whether records at `ERROR` and above (including `CRITICAL`) wait for room whatever
    /// the policy (default `false`). With [`Policy::DropNewest`] this keeps every error while
    /// shedding routine records under load.
    pub fn never_drop_errors(mut self, yes: bool) -> Output {
        self.options.never_drop_errors = yes;
        self
    }

    /// How many records each thread may have waiting in this output's queue (default
    /// [`DEFAULT_QUEUE_CAPACITY`]; at least 1).
    ///
    /// Every thread that logs gets its own queue into each output the first time it logs
    /// there: a ring of `capacity` x 128 bytes (rounded up to a power of two, between
    /// 64 KiB and 32 MiB), whose memory is touched only as it fills. Records too large for
    /// the ring wait beside it, in order. A thread's queue is full when it holds `capacity`
    /// records or its ring has no room; other threads are not affected. When the thread
    /// ends, the worker writes what it left; the next new thread takes the emptied ring
    /// over (so a pool replacing its threads does not map new memory), or it is freed.
    pub fn queue_capacity(mut self, capacity: usize) -> Output {
        self.options.capacity = capacity.max(1);
        self
    }

    /// Takes only records at `level` or more severe (default: everything). For example
    /// `tracing::Level::ERROR` for an alerting destination.
    pub fn min_level(mut self, level: tracing::Level) -> Output {
        self.options.min_level = level;
        self
    }

    /// Takes only records these per-target directives enable, on top of
    /// [`min_level`](Output::min_level): `"my_app=debug,hyper=warn".parse::<Targets>()`.
    pub fn targets(mut self, targets: Targets) -> Output {
        self.options.targets = Some(targets);
        self
    }

    /// Write-through: a logging call returns only once its record is written (to the file
    /// or stdout, sent or spooled for HTTP, in PostgreSQL or its spool), in order with
    /// everything before it. For programs that prefer that to speed, such as short CLI
    /// tools. The worker still does the I/O, so this is safe inside async code.
    pub fn synchronous(mut self) -> Output {
        self.options.synchronous = true;
        self
    }

    /// Whether this output gets the logger's heartbeat records (default `true` when the
    /// builder sets a [`heartbeat`](crate::Builder::heartbeat)).
    pub fn heartbeat(mut self, yes: bool) -> Output {
        self.options.heartbeat = yes;
        self
    }

    /// HTTP and PostgreSQL: the most records in one request or insert (default 1,000).
    pub fn batch_size(mut self, records: usize) -> Output {
        self.options.batch_size = records.max(1);
        self
    }

    /// HTTP and PostgreSQL: how long a batch's first record waits for others to join it
    /// before the batch is sent anyway (default 200 ms). A full batch goes at once.
    pub fn linger(mut self, linger: Duration) -> Output {
        self.options.linger = linger;
        self
    }

    pub(crate) fn label(&self) -> &'static str {
        self.kind.label()
    }

    /// Whether this output takes a record of `level` from `target`.
    #[inline]
    pub(crate) fn accepts(options: &Options, target: &str, level: &tracing::Level) -> bool {
        *level <= options.min_level
            && options
                .targets
                .as_ref()
                .is_none_or(|t| t.would_enable(target, level))
    }
}

/// Opens the destination on the worker thread (runtimes and files belong to it).
pub(crate) fn open(
    kind: Kind,
    name: &str,
    service: &str,
    options: &Options,
    counters: Arc<Counters>,
) -> Result<Box<dyn Destination>, InitError> {
    #[cfg(any(feature = "http", feature = "postgres", feature = "unix"))]
    let (batch, linger) = (options.batch_size, options.linger);
    #[cfg(not(any(feature = "file", feature = "unix")))]
    let _ = service;
    #[cfg(not(any(feature = "file", feature = "http", feature = "postgres")))]
    let _ = name;
    #[cfg(not(any(feature = "http", feature = "postgres", feature = "unix")))]
    let _ = options;
    Ok(match kind {
        Kind::Stdout => Box::new(stream::StreamOutput::stdout(counters)),
        Kind::Stderr => Box::new(stream::StreamOutput::stderr(counters)),
        Kind::Writer(w) => Box::new(stream::StreamOutput::writer(w, counters)),
        #[cfg(feature = "file")]
        Kind::File(config) => Box::new(file::FileOutput::open(config, name, service, counters)?),
        #[cfg(feature = "http")]
        Kind::Http(config) => Box::new(http::HttpOutput::open(
            config, name, batch, linger, counters,
        )?),
        #[cfg(feature = "unix")]
        Kind::Unix(config) => Box::new(unix::UnixOutput::open(
            config, service, batch, linger, counters,
        )?),
        #[cfg(feature = "postgres")]
        Kind::Postgres(config) => Box::new(postgres::PgOutput::open(
            config, name, batch, linger, counters,
        )?),
    })
}

//! `faultline forward`: ship a program's log lines to the ingest endpoint, from standard
//! input (`app 2>&1 | faultline forward --service api ...`) or from a file it follows
//! (`--file /var/log/worker.log`), in place of a hand-written tailer or a log shipper
//! sidecar.
//!
//! # The path of a line
//!
//! 1. **Input** (`input/`). Standard input is read on its own thread and, with `--tee`,
//!    copied to standard output unchanged. A file is followed through rotation and
//!    truncation, resuming from the offset in its state file (`input/tail.rs`).
//! 2. **Parse** (`parse/`). Each line is a JSON object or text (`--format`). JSON is mapped
//!    by the keys of the formatter that wrote it: the Faultline schema itself, Python
//!    `logging` JSON formatters, Bunyan, `tracing-subscriber` (`parse/formats/`); text gets
//!    a level from its leading level word (`parse/level.rs`). A Python traceback is folded
//!    into the log line that introduced it, or becomes a record of its own
//!    (`parse/traceback.rs`). Every result is made a record the server accepts
//!    (`parse/parsed.rs`).
//! 3. **Ids** (`id.rs`). A file's records get ids derived from their offset, so a line read
//!    twice is stored once; standard input's get random ones.
//! 4. **Out** (`deliver.rs`). Records go through the service logger's HTTP output: batches,
//!    gzip, retries with backoff, a spool on disk while the server is unreachable.
//! 5. **Commit** (`pipeline.rs`, `input/tail.rs`). A file's offset is saved only after the
//!    output flushed: every record before it acknowledged by the server or in the spool.
//! 6. **The end** (`exit_summary.rs`). At end of input (or SIGTERM), held-back lines are sent,
//!    the output is flushed for at most `--flush-timeout`, and a summary goes to standard
//!    error; the exit code is 1 if any record was lost.
//!
//! With `--listen unix:PATH` (or `tcp:HOST:PORT`) it is instead the local collector of a
//! service of several processes: workers log to it with `faultline-logger`'s `Output::unix`
//! and it sends for all of them, acknowledging each batch once the server (or the spool)
//! has it, and writing `worker_started`, `worker_heartbeat`, `worker_absent` and
//! `worker_stopped` records (`input/listen.rs`).

mod deliver;
mod exit_summary;
mod id;
mod input;
mod parse;
mod pipeline;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deliver::Delivery;
use faultline_logger::collector::CollectorAddr;
use faultline_schema::HumanDuration;
use id::Ids;
use input::tail::TailConfig;
pub use parse::InputFormat;
use pipeline::Pipeline;

/// `faultline forward` flags.
#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// The `service` of every record (lines in the Faultline schema may name their own).
    #[arg(long, env = "FAULTLINE_SERVICE")]
    pub service: String,
    /// The Faultline server (its base URL, or the full ingest URL).
    #[arg(
        long,
        env = "FAULTLINE_ENDPOINT",
        default_value = "http://127.0.0.1:8080"
    )]
    pub endpoint: String,
    /// A secret ingest key allowed to write `--service`.
    #[arg(long, env = "FAULTLINE_INGEST_KEY", hide_env_values = true)]
    pub key: String,
    /// Follow this file instead of reading standard input.
    #[arg(long, env = "FAULTLINE_FORWARD_FILE")]
    pub file: Option<PathBuf>,
    /// Be the local collector of a service of several processes instead of reading lines:
    /// `unix:PATH` or `tcp:HOST:PORT`, where the workers' `faultline-logger`
    /// (`Output::unix`) sends its records.
    #[arg(long, env = "FAULTLINE_FORWARD_LISTEN", conflicts_with_all = ["file", "tee"])]
    pub listen: Option<CollectorAddr>,
    /// With `--listen`: how often a connected worker gets a `worker_heartbeat` record (for
    /// an `absence` rule grouped by `meta.worker`).
    #[arg(long, env = "FAULTLINE_WORKER_HEARTBEAT", default_value = "1m", value_parser = HumanDuration::parse)]
    pub worker_heartbeat: HumanDuration,
    /// Where the file's offset is kept (default: `.<file name>.faultline-state` beside the
    /// file).
    #[arg(long, env = "FAULTLINE_FORWARD_STATE_FILE", requires = "file")]
    pub state_file: Option<PathBuf>,
    /// Where batches wait while the server is unreachable (default with `--file`:
    /// `.<file name>.faultline-spool/` beside the file; standard input: none, records wait
    /// in memory).
    #[arg(long, env = "FAULTLINE_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// How lines are read.
    #[arg(
        long,
        env = "FAULTLINE_FORWARD_FORMAT",
        value_enum,
        default_value = "auto"
    )]
    pub format: InputFormat,
    /// Also copy standard input to standard output, unchanged (not with `--file`).
    #[arg(long, env = "FAULTLINE_FORWARD_TEE", conflicts_with = "file")]
    pub tee: bool,
    /// How long to wait at the end for the server to acknowledge what is left (then it goes
    /// to the spool, if there is one, or counts as lost).
    #[arg(long, env = "FAULTLINE_FLUSH_TIMEOUT", default_value = "30s", value_parser = HumanDuration::parse)]
    pub flush_timeout: HumanDuration,
    /// How long a pause in the input must last before a warning or error line is sent
    /// without waiting for a traceback that may follow it.
    #[arg(long, env = "FAULTLINE_MULTILINE_WAIT", default_value = "500ms", value_parser = HumanDuration::parse)]
    pub multiline_wait: HumanDuration,
    /// With `--file`: how long a rotated file must be quiet before the new one is read.
    #[arg(long, env = "FAULTLINE_ROTATE_WAIT", default_value = "1s", value_parser = HumanDuration::parse)]
    pub rotate_wait: HumanDuration,
    /// With `--file`: how often the file is checked for new lines once all were read.
    #[arg(long, env = "FAULTLINE_POLL_INTERVAL", default_value = "200ms", value_parser = HumanDuration::parse)]
    pub poll_interval: HumanDuration,
}

/// `<dir>/.<name><suffix>` beside `file`.
fn beside(file: &Path, suffix: &str) -> PathBuf {
    let name = file
        .file_name()
        .map_or_else(|| "log".into(), |n| n.to_string_lossy().into_owned());
    file.with_file_name(format!(".{name}{suffix}"))
}

/// Runs `faultline forward` to the end of its input, or until `stop_signal` resolves (the
/// binary passes its SIGTERM / Ctrl-C future; `runtime` polls it).
pub fn run(
    args: ForwardArgs,
    runtime: &tokio::runtime::Runtime,
    stop_signal: impl Future<Output = ()> + Send + 'static,
) -> ExitCode {
    if let Err(e) = faultline_schema::check_service(&args.service) {
        eprintln!("faultline forward: --service: {e}");
        return ExitCode::from(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    runtime.spawn(async move {
        stop_signal.await;
        flag.store(true, Ordering::Relaxed);
    });
    let spool = args
        .spool_dir
        .clone()
        .or_else(|| args.file.as_deref().map(|f| beside(f, ".faultline-spool")));
    let delivery = match Delivery::open(&args.endpoint, &args.key, spool) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "faultline forward: cannot start sending to {}: {e}",
                args.endpoint
            );
            return ExitCode::from(2);
        }
    };
    let mut pipeline = Pipeline::new(&args.service, args.format, delivery);
    let timeout = args.flush_timeout.0;
    let ids = match (&args.file, &args.listen) {
        (None, Some(addr)) => {
            let config = input::listen::ListenConfig {
                addr: addr.clone(),
                heartbeat_records: args.worker_heartbeat.0,
            };
            if let Err(e) = input::listen::run(&config, &mut pipeline, &stop) {
                eprintln!("faultline forward: {e}");
                let summary = pipeline.close(Ids::Random, timeout);
                eprintln!("faultline forward: {summary}");
                return ExitCode::from(2);
            }
            Ids::Random
        }
        (None, None) => {
            let run = input::stdin::run(&mut pipeline, args.tee, args.multiline_wait.0, &stop);
            if let Err(e) = run {
                eprintln!("faultline forward: reading standard input: {e}");
            }
            Ids::Random
        }
        (Some(file), _) => {
            let state_file = args
                .state_file
                .clone()
                .unwrap_or_else(|| beside(file, ".faultline-state"));
            let _lock = match input::state_file::StateLock::acquire(&state_file) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("faultline forward: {e}");
                    return ExitCode::from(2);
                }
            };
            let config = TailConfig {
                path: file.clone(),
                state_file,
                poll: args.poll_interval.0,
                rotate_wait: args.rotate_wait.0,
                multiline_wait: args.multiline_wait.0,
                settle_timeout: timeout,
            };
            match input::tail::run(&config, &mut pipeline, &stop) {
                Ok(ids) => ids,
                Err(e) => {
                    eprintln!("faultline forward: {e}");
                    let summary = pipeline.close(Ids::Random, timeout);
                    eprintln!("faultline forward: {summary}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let summary = pipeline.close(ids, timeout);
    eprintln!("faultline forward: {summary}");
    if summary.lost() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

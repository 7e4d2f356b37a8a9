//! Helpers: subscribers for a built layer, reading record files back, a writer output that
//! can be held shut, the real `faultline` binary, PostgreSQL databases.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use faultline_logger::FaultlineLayer;
use faultline_schema::Record;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

pub const KEY: &str = "sk_logger_test";
pub const ADMIN: &str = "admin_logger_test";

/// A dispatcher with only `layer` on a registry, for `tracing::dispatcher::with_default`.
pub fn dispatch(layer: FaultlineLayer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// Runs `f` with `layer` as this thread's subscriber.
pub fn with_layer<T>(layer: &FaultlineLayer, f: impl FnOnce() -> T) -> T {
    tracing::dispatcher::with_default(&dispatch(layer.clone()), f)
}

/// Parses NDJSON text into records, failing on any line that is not a valid record.
pub fn parse_lines(text: &str) -> Vec<Record> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| Record::from_json(l.as_bytes()).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The sequence number of a closed segment (`prefix.stamp.seq.ndjson[.gz]`).
pub fn segment_seq(name: &str) -> Option<u64> {
    let base = name.strip_suffix(".gz").unwrap_or(name);
    let base = base.strip_suffix(".ndjson")?;
    base.rsplit('.').next()?.parse().ok()
}

/// Closed segments of `prefix` in `dir`, oldest first.
pub fn closed_segments(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&format!("{prefix}."))?;
            if rest == "ndjson" || rest.ends_with(".tmp") {
                return None;
            }
            Some((segment_seq(&name)?, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

pub fn read_text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// Every record of `prefix` under `dir`: closed segments oldest first, then the active file.
pub fn read_all(dir: &Path, prefix: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for p in closed_segments(dir, prefix) {
        out.extend(parse_lines(&read_text(&p)));
    }
    let active = dir.join(format!("{prefix}.ndjson"));
    if active.exists() {
        out.extend(parse_lines(&read_text(&active)));
    }
    out
}

/// A writer that keeps what it is given and can be held shut: `write` waits while the gate
/// is closed, so an output's worker can be stopped at a known point.
#[derive(Clone, Default)]
pub struct Gated {
    pub data: Arc<Mutex<Vec<u8>>>,
    gate: Arc<(Mutex<bool>, Condvar)>,
    pub entered: Arc<AtomicUsize>,
}

impl Gated {
    pub fn closed() -> Gated {
        Gated::default()
    }

    pub fn open(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }

    /// Waits until the worker is inside `write` (holding what it took).
    pub fn wait_entered(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.entered.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the worker never wrote");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn records(&self) -> Vec<Record> {
        parse_lines(&String::from_utf8(self.data.lock().unwrap().clone()).unwrap())
    }
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.gate.0.lock().unwrap();
        while !*open {
            open = self.gate.1.wait(open).unwrap();
        }
        self.data.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that is always open.
pub fn open_writer() -> Gated {
    let g = Gated::closed();
    g.open();
    g
}

/// The `faultline` binary, built (or found up to date) once per test run with the same
/// cargo that runs the tests.
pub fn faultline_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        cargo_executable(
            &["--package", "faultline-server", "--bin", "faultline"],
            "faultline",
        )
    })
    .clone()
}

/// An example of this crate, built (or found up to date) with the cargo that runs the tests,
/// with every feature (what `cargo xtask test` builds the crate with).
pub fn example_bin(name: &str) -> PathBuf {
    cargo_executable(
        &[
            "--package",
            "faultline-logger",
            "--all-features",
            "--example",
            name,
        ],
        name,
    )
}

/// Runs `cargo build` with `args` and returns the executable called `name` it reports.
fn cargo_executable(args: &[&str], name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .arg("build")
        .args(args)
        .arg("--message-format=json")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build {args:?} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("executable")?.as_str().map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"))
}

/// A running `faultline serve`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    /// Starts `faultline serve` on `listen` (`127.0.0.1:0` for any port) with the file store
    /// in `data_dir`.
    pub fn start(data_dir: &Path, listen: &str) -> Server {
        Server::start_with(data_dir, listen, &[])
    }

    /// [`Server::start`] with extra environment (`FAULTLINE_LIMITS_*` overrides).
    pub fn start_with(data_dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(faultline_bin());
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env_remove("DATABASE_URL")
            .env_remove("FAULTLINE_CONFIG")
            .env_remove("FAULTLINE_PUBLIC_KEY")
            .env("FAULTLINE_LOG", "warn")
            .env("FAULTLINE_INGEST_KEY", KEY)
            .env("FAULTLINE_ADMIN_TOKEN", ADMIN)
            .env("FAULTLINE_USER_SALT", "salt")
            .env("FAULTLINE_HMAC_KEY", "hmac")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start faultline");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                    let base = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(base);
                    sent = true;
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("faultline did not print its address");
        Server { child, base }
    }

    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// `kill -9`: the server is gone at once, mid-whatever.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The value of the ingest request counter for `status` in `/metrics` (0 when absent).
    pub fn ingest_requests(&self, status: u16) -> u64 {
        let url = format!("{}/metrics", self.base);
        let text = block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() });
        let label = format!("status=\"{status}\"");
        text.lines()
            .filter(|l| l.starts_with("faultline_ingest_requests_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    /// Every record of `service`, newest first (at most 1,000).
    pub fn recent(&self, service: &str) -> Vec<Record> {
        let url = format!("{}/logs/recent?service={service}&limit=1000", self.base);
        let body = block_on(async {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        });
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Record::from_value(v.clone()).unwrap())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

//! Scale-out benchmark: one, two and three release `faultline serve` nodes on one
//! PostgreSQL, and the alert leader's failover time.
//!
//! Run with `cargo xtask bench scaleout` (it starts a throwaway PostgreSQL cluster and
//! passes its superuser URL as `--url`). For each node count, on a fresh database:
//!
//! 1. the nodes start with the same secrets and config (a rule that matches nothing, so the
//!    leader election runs but no notification is sent);
//! 2. the load generator spreads its keep-alive connections round-robin over the nodes and
//!    posts batches as fast as they are answered (closed loop), durable acks on;
//! 3. the CPU time each node and PostgreSQL used is read from `/proc`, so the table can say
//!    what a record costs a node, which is what tells whether adding nodes helps on a given
//!    machine (this one has 2 cores for the nodes, PostgreSQL and the loader together).
//!
//! Then, with three nodes, `--rounds` times: find the leader from `/readyz`, `kill -9` it,
//! and time until another node's `/readyz` says it leads; restart the killed node (it
//! stands by) before the next round.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::load::{Outcome, fresh_db, load, pct, round_trip, start_server};
use tokio::net::TcpStream;

/// Evaluation interval of the nodes: a standby tries the leader lock this often.
const INTERVAL_MS: u64 = 500;

struct Args {
    url: String,
    seconds: u64,
    connections: usize,
    batch: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        seconds: 10,
        connections: 16,
        batch: 100,
        rounds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--url" => a.url = value(),
            "--seconds" => a.seconds = value().parse().unwrap_or(a.seconds),
            "--connections" => a.connections = value().parse().unwrap_or(a.connections),
            "--batch" => a.batch = value().parse().unwrap_or(a.batch),
            "--rounds" => a.rounds = value().parse().unwrap_or(a.rounds),
            _ => {} // cargo bench passes --bench
        }
    }
    assert!(
        !a.url.is_empty(),
        "pass --url <PostgreSQL superuser URL> (cargo xtask bench scaleout does)"
    );
    a
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("faultline.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[alerts]
evaluation_interval = "{INTERVAL_MS}ms"

[alerts.channels.ops]
kind = "webhook"
url = "http://127.0.0.1:9/never"

[alerts.rules.quiet]
kind = "threshold"
filter = {{ service = "nobody", level = "ERROR" }}
window = "1m"
threshold = 1
actions = ["ops"]
"#
        ),
    )
    .unwrap();
    path
}

/// One `faultline serve` process.
struct Node {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Node {
    fn start(database: &str, config: &Path, dir: &Path) -> Node {
        let config = config.to_string_lossy();
        let (child, addr) = start_server(
            dir,
            &[
                ("DATABASE_URL", database),
                ("FAULTLINE_CONFIG", &config),
                ("FAULTLINE_POSTGRES_POOL_SIZE", "16"),
                ("FAULTLINE_POSTGRES_WRITE_TIMEOUT", "30s"),
                // Every node of a deployment shares its secrets.
                ("FAULTLINE_USER_SALT", "bench-salt-0123456789abcdef"),
                (
                    "FAULTLINE_HMAC_KEY",
                    "bench-hmac-0123456789abcdef0123456789",
                ),
            ],
        );
        Node {
            child,
            addr,
            dir: dir.to_owned(),
        }
    }

    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .ok();
        self.child.wait().ok();
    }

    /// `kill -9`; returns the data dir for a restart.
    fn kill(mut self) -> PathBuf {
        self.child.kill().ok();
        self.child.wait().ok();
        self.dir
    }

    fn cpu_seconds(&self) -> f64 {
        support::cpu_seconds(self.child.id())
    }
}

/// CPU time of every `postgres` process (the cluster's backends and workers).
fn postgres_cpu_seconds() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            total += support::cpu_seconds(pid);
        }
    }
    total
}

/// Whether `/readyz` of the node at `addr` says it leads (false if it does not answer).
async fn leads(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let mut buf = Vec::new();
    let req = b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if round_trip(&mut stream, req, &mut buf).await.is_err() {
        return false;
    }
    let body = buf.split(|&b| b == b'\n').next_back().unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["alerts"]["leader"].as_bool())
        .unwrap_or(false)
}

/// The index of the node that leads, waiting up to `within`.
async fn leader(nodes: &[Node], within: Duration) -> Option<usize> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        for (i, n) in nodes.iter().enumerate() {
            if leads(&n.addr).await {
                return Some(i);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

struct Scale {
    nodes: usize,
    outcome: Outcome,
    node_cpu: f64,
    postgres_cpu: f64,
}

fn main() {
    let args = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let duration = Duration::from_secs(args.seconds);
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(conf.path());

    let mut scales = Vec::new();
    for n in 1..=3 {
        let database = fresh_db(&rt, &args.url);
        let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let nodes: Vec<Node> = dirs
            .iter()
            .map(|d| Node::start(&database, &config, d.path()))
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
        let (outcome, node_cpu, postgres_cpu) = local.block_on(&rt, async {
            // Warm up: connections, pools, partitions, page cache.
            load(&addrs, 10, args.connections, Duration::from_secs(1), None).await;
            let cpu0: f64 = nodes.iter().map(Node::cpu_seconds).sum();
            let pg0 = postgres_cpu_seconds();
            let o = load(&addrs, args.batch, args.connections, duration, None).await;
            let cpu1: f64 = nodes.iter().map(Node::cpu_seconds).sum();
            (o, cpu1 - cpu0, postgres_cpu_seconds() - pg0)
        });
        eprintln!(
            "{n} node(s): {:.0} records/s",
            outcome.records as f64 / duration.as_secs_f64()
        );
        nodes.into_iter().for_each(Node::stop);
        scales.push(Scale {
            nodes: n,
            outcome,
            node_cpu,
            postgres_cpu,
        });
    }

    // Failover: three nodes, kill the leader, time the takeover.
    let database = fresh_db(&rt, &args.url);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Node> = dirs
        .iter()
        .map(|d| Node::start(&database, &config, d.path()))
        .collect();
    let mut takeovers = Vec::new();
    local.block_on(&rt, async {
        for round in 0..args.rounds {
            let old = leader(&nodes, Duration::from_secs(10))
                .await
                .expect("a node leads");
            let t0 = Instant::now();
            let killed = nodes.remove(old).kill();
            // The replacement starts only after the takeover, so it cannot be the one timed.
            leader(&nodes, Duration::from_secs(30))
                .await
                .expect("a standby takes over within 30 s");
            let took = t0.elapsed();
            eprintln!("round {round}: leader killed, a standby led after {took:?}");
            takeovers.push(took);
            nodes.push(Node::start(&database, &config, &killed));
        }
    });
    nodes.into_iter().for_each(Node::stop);

    report(&args, &scales, &mut takeovers);
}

fn report(args: &Args, scales: &[Scale], takeovers: &mut [Duration]) {
    let secs = args.seconds as f64;
    let base = scales[0].outcome.records as f64 / secs;
    println!(
        "{} s per run, batches of {} records (about {} bytes each), {} keep-alive connections \
         spread round-robin over the nodes, durable acks (PostgreSQL commit before the 202), \
         one fresh database per run; every process (nodes, PostgreSQL, load generator) on \
         this machine's cores.\n",
        args.seconds,
        args.batch,
        support::load::record(7).len(),
        args.connections
    );
    println!(
        "| nodes | records/s | per node | vs 1 node | node CPU (cores) | PostgreSQL CPU (cores) | records per node CPU-second | p50 ms | p99 ms | errors |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in scales {
        let rate = s.outcome.records as f64 / secs;
        println!(
            "| {} | {rate:.0} | {:.0} | {:.2}x | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {} |",
            s.nodes,
            rate / s.nodes as f64,
            rate / base,
            s.node_cpu / secs,
            s.postgres_cpu / secs,
            s.outcome.records as f64 / s.node_cpu.max(f64::EPSILON),
            pct(&s.outcome.latencies_us, 0.5),
            pct(&s.outcome.latencies_us, 0.99),
            s.outcome.errors
        );
    }
    takeovers.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = takeovers[takeovers.len() / 2];
    let max = takeovers[takeovers.len() - 1];
    println!(
        "\nLeader failover, three nodes, `evaluation_interval` {INTERVAL_MS} ms, {} rounds of \
         `kill -9` on the leader (time from the kill until another node's `/readyz` says it \
         leads): min {:.0} ms, median {:.0} ms, max {:.0} ms ({:.2} intervals at most; the \
         promise is two).",
        takeovers.len(),
        ms(takeovers[0]),
        ms(median),
        ms(max),
        ms(max) / INTERVAL_MS as f64
    );
    let three = scales[scales.len() - 1].outcome.records as f64 / secs;
    support::load::figure(
        "PostgreSQL, three nodes: records/s at batch 100",
        "records/s",
        three,
        "higher",
        None,
        None,
    );
    support::load::figure(
        "alert leader failover, worst of the rounds",
        "ms",
        ms(max),
        "lower",
        None,
        Some(2.0 * INTERVAL_MS as f64),
    );
}

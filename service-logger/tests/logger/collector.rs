//! The local collector for services of several processes: worker processes (this test
//! binary, re-run on `collector::worker_entry` with `FAULTLINE_COLLECTOR_WORKER` set) log
//! with `Output::unix` to a real `faultline forward --listen unix:PATH`, which sends to a
//! real `faultline serve`. A clean stop ends with the worker's `worker_stopped` record, a
//! killed or frozen worker gets a `worker_absent` one, and a collector killed mid-stream and
//! started again loses and doubles nothing; a server with alert rules on those records
//! fires them for a killed worker.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use faultline_logger::{Output, UnixConfig, builder};
use faultline_schema::Record;

use crate::common::{KEY, Server, eventually, faultline_bin, free_port};

const WORKER_ENV: &str = "FAULTLINE_COLLECTOR_WORKER";

/// Not a test on its own: the body of the worker processes. Returns at once unless
/// `FAULTLINE_COLLECTOR_WORKER` is set to `ADDR|SERVICE|COUNT|PACE_MS|THEN`.
#[test]
fn worker_entry() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [addr, service, count, pace, then] = parts[..] else {
        panic!("bad worker spec {spec}");
    };
    let config = UnixConfig::new(addr)
        .unwrap()
        .worker(service)
        .heartbeat(Duration::from_millis(100));
    let _guard = builder()
        .service(service)
        .output(Output::unix(config).batch_size(50))
        .init()
        .unwrap();
    let pace = Duration::from_millis(pace.parse().unwrap());
    for seq in 0..count.parse::<u64>().unwrap() {
        tracing::info!(event = "work", seq, "work item done");
        std::thread::sleep(pace);
    }
    println!("logged");
    if then == "hang" {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn worker(addr: &str, service: &str, count: u64, pace_ms: u64, then: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "collector::worker_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(
            WORKER_ENV,
            format!("{addr}|{service}|{count}|{pace_ms}|{then}"),
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits until a worker printed `logged` (everything it logs is queued).
fn wait_logged(child: &mut Child) {
    let out = child.stdout.take().unwrap();
    let logged = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("logged"));
    assert!(logged, "the worker ended before it logged everything");
}

/// `faultline forward --listen unix:PATH` to `server`, started and listening.
fn collector(server: &Server, socket: &Path) -> Child {
    let child = start_collector(server, &format!("unix:{}", socket.display()));
    eventually(Duration::from_secs(20), || socket.exists().then_some(()));
    child
}

/// `faultline forward --listen ADDR` to `server`, started.
fn start_collector(server: &Server, listen: &str) -> Child {
    Command::new(faultline_bin())
        .args(["forward", "--listen", listen])
        .args(["--service", "collector", "--endpoint", &server.base])
        .args(["--key", KEY, "--worker-heartbeat", "200ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The `seq` of the work records (event `work`) and the collector's own records, by event.
fn split(records: Vec<Record>) -> (Vec<u64>, HashMap<String, Vec<Record>>) {
    let mut seqs = Vec::new();
    let mut own: HashMap<String, Vec<Record>> = HashMap::new();
    for r in records {
        if r.event.starts_with("worker_") {
            own.entry(r.event.clone()).or_default().push(r);
        } else if r.event == "work" {
            seqs.push(r.meta["seq"].as_u64().unwrap());
        }
    }
    seqs.sort_unstable();
    (seqs, own)
}

fn reason(own: &HashMap<String, Vec<Record>>) -> Option<String> {
    let absent = own.get("worker_absent")?;
    assert_eq!(absent.len(), 1, "{absent:?}");
    Some(absent[0].meta["reason"].as_str().unwrap().to_owned())
}

#[test]
fn workers_log_through_the_collector_and_its_records_say_how_each_left() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("faultline.sock");
    let server = Server::start(data.path(), "127.0.0.1:0");
    let mut collector = collector(&server, &socket);
    let addr = format!("unix:{}", socket.display());
    // A second collector on a live socket, or on a path that is not a socket, refuses to
    // start and leaves it alone.
    let refused = start_collector(&server, &addr).wait().unwrap();
    assert_eq!(refused.code(), Some(2));
    let not_a_socket = dir.path().join("notes.txt");
    std::fs::write(&not_a_socket, "keep me").unwrap();
    let refused = start_collector(&server, &format!("unix:{}", not_a_socket.display()))
        .wait()
        .unwrap();
    assert_eq!(refused.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&not_a_socket).unwrap(), "keep me");

    let mut clean = worker(&addr, "w-clean", 300, 2, "exit");
    let mut killed = worker(&addr, "w-killed", 50, 2, "hang");
    let mut frozen = worker(&addr, "w-frozen", 50, 2, "hang");
    wait_logged(&mut killed);
    wait_logged(&mut frozen);
    assert!(clean.wait().unwrap().success());

    // A clean stop: every record, then the collector's last word for the worker.
    let (seqs, own) = eventually(Duration::from_secs(20), || {
        let (seqs, own) = split(server.recent("w-clean"));
        own.contains_key("worker_stopped").then_some((seqs, own))
    });
    assert_eq!(seqs, (0..300).collect::<Vec<u64>>());
    let stopped = &own["worker_stopped"];
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].meta["worker"], "w-clean");
    assert_eq!(stopped[0].meta["pid"], u64::from(clean.id()));
    let last_work = server
        .recent("w-clean")
        .iter()
        .filter(|r| r.event == "work")
        .map(|r| r.ts)
        .max()
        .unwrap();
    assert!(stopped[0].ts >= last_work);
    assert_eq!(own["worker_started"].len(), 1);
    assert_eq!(reason(&own), None);

    // Both stuck workers are alive: heartbeat records keep coming for them.
    for service in ["w-killed", "w-frozen"] {
        eventually(Duration::from_secs(10), || {
            let (seqs, own) = split(server.recent(service));
            (seqs.len() == 50 && own.get("worker_heartbeat").is_some_and(|h| h.len() >= 2))
                .then_some(())
        });
    }

    // kill -9: the connection breaks without a goodbye.
    signal(&killed, "-KILL");
    let _ = killed.wait();
    let why = eventually(Duration::from_secs(10), || {
        reason(&split(server.recent("w-killed")).1)
    });
    assert_eq!(why, "its connection closed without a goodbye");

    // SIGSTOP: the connection stays open, but the heartbeats stop (3 x 100 ms).
    signal(&frozen, "-STOP");
    let why = eventually(Duration::from_secs(10), || {
        reason(&split(server.recent("w-frozen")).1)
    });
    assert_eq!(why, "it sent nothing for 300 ms");
    // After its absence, no heartbeat record claims it is alive.
    let beats = |s: &str| {
        split(server.recent(s))
            .1
            .get("worker_heartbeat")
            .map_or(0, Vec::len)
    };
    let (killed_beats, frozen_beats) = (beats("w-killed"), beats("w-frozen"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        (beats("w-killed"), beats("w-frozen")),
        (killed_beats, frozen_beats)
    );
    signal(&frozen, "-KILL");
    let _ = frozen.wait();

    signal(&collector, "-TERM");
    assert!(collector.wait().unwrap().success());
    assert!(!socket.exists(), "the collector removes its socket");
}

#[test]
fn a_collector_killed_and_started_again_loses_and_doubles_nothing() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("faultline.sock");
    let server = Server::start(data.path(), "127.0.0.1:0");
    let mut first = collector(&server, &socket);
    let addr = format!("unix:{}", socket.display());
    let mut workers: Vec<Child> = ["r-one", "r-two"]
        .iter()
        .map(|s| worker(&addr, s, 800, 3, "exit"))
        .collect();

    // Mid-stream: some batches stored and acknowledged, some stored and not yet
    // acknowledged, some in the collector's memory only.
    eventually(Duration::from_secs(20), || {
        (split(server.recent("r-one")).0.len() >= 200).then_some(())
    });
    first.kill().unwrap();
    let _ = first.wait();
    std::thread::sleep(Duration::from_millis(300));
    let mut second = collector(&server, &socket);
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }
    for service in ["r-one", "r-two"] {
        let (seqs, own) = eventually(Duration::from_secs(20), || {
            let (seqs, own) = split(server.recent(service));
            own.contains_key("worker_stopped").then_some((seqs, own))
        });
        assert_eq!(seqs, (0..800).collect::<Vec<u64>>(), "{service}");
        // It said hello to both collectors, goodbye once, and was never absent (the first
        // collector died before it could say so).
        assert_eq!(own["worker_started"].len(), 2, "{service}");
        assert_eq!(own["worker_stopped"].len(), 1, "{service}");
        assert_eq!(reason(&own), None, "{service}");
    }
    signal(&second, "-TERM");
    assert!(second.wait().unwrap().success());
}

#[test]
fn the_collector_listens_on_tcp_too() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut collector = start_collector(&server, &format!("tcp:{addr}"));
    eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).ok().map(drop)
    });
    let mut w = worker(&format!("tcp:{addr}"), "t-tcp", 120, 1, "exit");
    assert!(w.wait().unwrap().success());
    let (seqs, own) = eventually(Duration::from_secs(20), || {
        let (seqs, own) = split(server.recent("t-tcp"));
        own.contains_key("worker_stopped").then_some((seqs, own))
    });
    assert_eq!(seqs, (0..120).collect::<Vec<u64>>());
    assert_eq!(own["worker_started"].len(), 1);
    assert_eq!(reason(&own), None);
    signal(&collector, "-TERM");
    assert!(collector.wait().unwrap().success());
}

/// The group of `rule` in the server's `GET /alerts` whose group names `worker`, if it fires.
fn firing(server: &Server, rule: &str, worker: &str) -> bool {
    let url = format!("{}/alerts", server.base);
    let body: serde_json::Value = crate::common::block_on(async {
        reqwest::Client::new()
            .get(url)
            .bearer_auth(crate::common::ADMIN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == rule)
        .flat_map(|r| r["groups"].as_array().cloned().unwrap_or_default())
        .any(|g| g["status"] == "firing" && g["group"].as_str().is_some_and(|s| s.contains(worker)))
}

/// A killed worker fires the alert rules its records are for, in a server with them
/// configured: an `absence` rule on the collector's `worker_heartbeat` records grouped by
/// `meta.worker`, and a `threshold` rule on `worker_absent`. Neither fires while the worker
/// lives.
#[test]
fn a_killed_worker_fires_the_absence_rule() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faultline.toml");
    std::fs::write(
        &config,
        r#"
[alerts]
evaluation_interval = "200ms"

[alerts.rules.worker_gone]
kind = "absence"
filter = { service = "a-worker", event = "worker_heartbeat" }
group_by = "meta.worker"
window = "2s"
actions = ["notice"]

[alerts.rules.worker_absent]
kind = "threshold"
filter = { service = "a-worker", event = "worker_absent" }
group_by = "meta.worker"
window = "1m"
threshold = 1
actions = ["notice"]
"#,
    )
    .unwrap();
    let socket = dir.path().join("faultline.sock");
    let server = Server::start_with(
        data.path(),
        "127.0.0.1:0",
        &[("FAULTLINE_CONFIG", config.to_str().unwrap())],
    );
    let mut collector = collector(&server, &socket);
    let mut w = worker(
        &format!("unix:{}", socket.display()),
        "a-worker",
        20,
        2,
        "hang",
    );
    wait_logged(&mut w);
    eventually(Duration::from_secs(10), || {
        let (_, own) = split(server.recent("a-worker"));
        own.get("worker_heartbeat")
            .is_some_and(|h| h.len() >= 3)
            .then_some(())
    });
    // Alive for longer than the absence window: nothing fires.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!firing(&server, "worker_gone", "a-worker"));
    assert!(!firing(&server, "worker_absent", "a-worker"));

    signal(&w, "-KILL");
    let _ = w.wait();
    eventually(Duration::from_secs(10), || {
        firing(&server, "worker_absent", "a-worker").then_some(())
    });
    eventually(Duration::from_secs(10), || {
        firing(&server, "worker_gone", "a-worker").then_some(())
    });

    signal(&collector, "-TERM");
    assert!(collector.wait().unwrap().success());
}

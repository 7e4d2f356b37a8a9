//! Real receivers for the alert tests, on loopback: an HTTP server that captures what
//! Slack, PagerDuty and webhooks would get, an SMTP server (Python's `aiosmtpd`, installed
//! by `cargo xtask test`), a `redis-server` the test starts and stops, and the `faultline`
//! binary with a config and environment of the test's choosing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The first path segment (`slack`, `pagerduty`, `restart`, `control`).
    pub route: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub at: Instant,
}

/// The HTTP receiver: every POST to `/{route}/...` is kept.
#[derive(Clone, Default)]
pub struct Capture {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Statuses to answer with, in order, before answering 200/202.
    statuses: Arc<Mutex<Vec<u16>>>,
}

async fn hit(
    State(c): State<Capture>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    let route = path.split('/').next().unwrap_or_default().to_owned();
    c.hits.lock().unwrap().push(Hit {
        route: route.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        at: Instant::now(),
    });
    let mut statuses = c.statuses.lock().unwrap();
    if !statuses.is_empty() {
        return (StatusCode::from_u16(statuses.remove(0)).unwrap(), "");
    }
    if route == "pagerduty" {
        (StatusCode::ACCEPTED, r#"{"status":"success"}"#)
    } else {
        (StatusCode::OK, "ok")
    }
}

impl Capture {
    pub async fn start() -> Capture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = Capture {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Capture::default()
        };
        let app = axum::Router::new()
            .route("/{*path}", post(hit))
            .with_state(c.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        c.base = c.base.clone();
        c
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// Answer the next requests with these statuses.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.statuses.lock().unwrap().extend_from_slice(statuses);
    }

    pub fn hits(&self, route: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.route == route)
            .cloned()
            .collect()
    }

    /// Waits until `route` has `n` hits, and returns them.
    pub async fn wait_for(&self, route: &str, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let hits = self.hits(route);
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "{route}: {} of {n} requests after {within:?}: {hits:#?}",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A receiver that accepts connections, reads what is sent, and never answers: a notifier
/// endpoint that hangs.
pub struct Hang {
    pub base: String,
    accepted: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hang {
    pub async fn start() -> Hang {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let kept = accepted.clone();
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                kept.lock().unwrap().push(Instant::now());
                // Drain the request so the client is left waiting for the answer only.
                open.push(tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
                        .await
                        .is_ok_and(|n| n > 0)
                    {}
                    std::future::pending::<()>().await;
                }));
            }
        });
        Hang {
            base,
            accepted,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// How many connections it has taken.
    pub fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Waits (up to 10 s) until it has taken `n` connections.
    pub async fn wait_accepted(&self, n: usize) {
        eventually(
            &format!("{n} connections to the hanging endpoint"),
            Duration::from_secs(10),
            || async { (self.accepted() >= n).then_some(()) },
        )
        .await;
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Python's `aiosmtpd` on a free port; each message becomes a JSON line on its stdout.
const SMTP_SERVER: &str = r#"
import asyncio, json, sys
from aiosmtpd.smtp import SMTP, AuthResult

LOGIN = sys.argv[1] if len(sys.argv) > 1 else ""

class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "login": session.auth_data,
            "data": envelope.content.decode("utf8", "replace"),
        }), flush=True)
        return "250 Message accepted for delivery"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = f"{auth_data.login.decode()}:{auth_data.password.decode()}" == LOGIN
    return AuthResult(success=ok, auth_data=auth_data.login.decode())

def factory():
    if LOGIN:
        return SMTP(Handler(), authenticator=authenticator, auth_required=True, auth_require_tls=False)
    return SMTP(Handler())

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

/// A running SMTP server.
pub struct Smtp {
    child: Child,
    pub port: u16,
    messages: Arc<Mutex<Vec<Value>>>,
}

impl Smtp {
    /// Starts it; with `login` (`user:password`) it requires that login.
    pub fn start(login: Option<&str>) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtp.py");
        std::fs::write(&script, SMTP_SERVER).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .args(login)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (cargo xtask test installs it)");
        let stdout = child.stdout.take().unwrap();
        let messages: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = messages.clone();
        std::thread::spawn(move || {
            let _dir = dir;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if let Some(port) = v["port"].as_u64() {
                    let _ = tx.send(port as u16);
                } else {
                    kept.lock().unwrap().push(v);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("aiosmtpd did not start: is it installed? (pip install aiosmtpd)");
        Smtp {
            child,
            port,
            messages,
        }
    }

    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} emails: {m:#?}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback (free when this returns; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` on a port of the test's choosing.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    pub fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server (cargo xtask test installs the Debian package)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child: Some(child),
            port,
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `faultline serve` process.
pub struct Faultline {
    child: Child,
    pub base: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// The environment every server of these tests gets (on top of the test's own).
pub const ADMIN: &str = crate::common::ADMIN;
pub const KEY: &str = "sk_alert_tests";

fn faultline(
    args: &[&str],
    data_dir: &Path,
    config: Option<&Path>,
    env: &[(&str, String)],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.args(args).arg("--data-dir").arg(data_dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("FAULTLINE_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("FAULTLINE_ADMIN_TOKEN", ADMIN)
        .env("FAULTLINE_INGEST_KEY", KEY)
        .env("FAULTLINE_USER_SALT", crate::common::SALT)
        .env("FAULTLINE_HMAC_KEY", crate::common::HMAC)
        .env("FAULTLINE_LOG", "info,faultline_server=debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Faultline {
    pub fn start(data_dir: &Path, config: Option<&Path>, env: &[(&str, String)]) -> Faultline {
        let mut cmd = faultline(&["serve", "--listen", "127.0.0.1:0"], data_dir, config, env);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start faultline");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[faultline] {line}");
                kept.lock().unwrap().push(line);
            }
        });
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
            .expect("faultline did not print its listening address");
        Faultline {
            child,
            base,
            stderr: lines,
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.log());
            }
            assert!(Instant::now() < deadline, "no exit 30 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn post(&self, key: &str, origin: Option<&str>, records: Value) -> Value {
        let mut req = client()
            .post(format!("{}/logs/ingest", self.base))
            .bearer_auth(key)
            .json(&records);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
        body
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// The rule's entry in `GET /alerts`.
    pub async fn rule(&self, name: &str) -> Value {
        let alerts = self.get("/alerts").await;
        alerts["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no rule {name} in {alerts}"))
    }

    /// Waits (up to 20 s) until `GET /alerts` shows `n` finished deliveries of `rule`, and
    /// returns them by channel name.
    pub async fn deliveries(&self, rule: &str, n: usize) -> HashMap<String, Value> {
        let deliveries = eventually(
            &format!("{n} deliveries of {rule} finish"),
            Duration::from_secs(20),
            || async {
                let rule = self.rule(rule).await;
                let d = rule["deliveries"].as_array().unwrap().clone();
                (d.len() == n).then_some(d)
            },
        )
        .await;
        deliveries
            .into_iter()
            .map(|d| (d["channel"].as_str().unwrap().to_owned(), d))
            .collect()
    }
}

impl Drop for Faultline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a one-shot `faultline` command: (exit code, stdout, stderr).
pub fn run(
    args: &[&str],
    data_dir: &Path,
    config: Option<&Path>,
    env: &[(&str, String)],
) -> (i32, String, String) {
    let out = faultline(args, data_dir, config, env)
        .output()
        .expect("run faultline");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A record stamped now.
pub fn record(service: &str, level: &str, event: &str, meta: Value) -> Value {
    serde_json::json!({
        "ts": faultline_schema::Timestamp::now().to_string(),
        "service": service,
        "level": level,
        "event": event,
        "message": format!("{event} from {service}"),
        "meta": meta,
    })
}

/// Writes `text` as a config file in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("faultline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Polls `f` until it returns `Some`, or fails after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

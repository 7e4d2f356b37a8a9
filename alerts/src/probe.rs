//! Probes: active health checks run by the server every `interval` (and once per
//! `check-alerts` run). Each run is bounded by `timeout` and ends in a [`ProbeResult`].
//!
//! - `tcp`: a TCP connection to `address` opens.
//! - `redis`: `PING` over RESP on a plain TCP connection answers `+PONG` (after `AUTH` when
//!   a password is configured). No Redis client library: two commands do not need one.
//! - `http`: a GET of `url` answers `expect_status` (default 200). Redirects are not followed.
//! - `archive`: the record store's archiving before retention deletes
//!   (`[retention] archive_dir`) wrote its last archive; ok when archiving is off.

use std::time::{Duration, Instant};

use faultline_store::ArchiveHealth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::alert_config::{AlertConfigError, ProbeConfig, ProbeKind};
use crate::notify::{Secret, read_secret};

/// A ready probe.
#[derive(Debug)]
pub(crate) struct Probe {
    pub name: String,
    pub kind: ProbeKind,
    pub interval: Duration,
    timeout: Duration,
    address: String,
    url: String,
    expect_status: u16,
    password: Option<Secret>,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeResult {
    pub failed: bool,
    pub detail: String,
}

impl ProbeResult {
    fn ok(detail: String) -> ProbeResult {
        ProbeResult {
            failed: false,
            detail,
        }
    }

    fn failed(detail: String) -> ProbeResult {
        ProbeResult {
            failed: true,
            detail,
        }
    }
}

/// The longest reply line read from Redis.
const MAX_REPLY: usize = 512;

impl Probe {
    pub(crate) fn new(
        name: &str,
        c: &ProbeConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Probe, AlertConfigError> {
        let at = format!("alerts.probes.{name}");
        let password = read_secret(
            &at,
            "password_env",
            c.password_env.as_ref(),
            c.password_file.as_ref(),
            env,
        )?;
        Ok(Probe {
            name: name.to_owned(),
            kind: c.kind,
            interval: c.interval.0,
            timeout: c.timeout.0,
            address: c.address.clone().unwrap_or_default(),
            url: c.url.clone().unwrap_or_default(),
            expect_status: c.expect_status.unwrap_or(200),
            password,
        })
    }

    /// Runs once, within the timeout; an `archive` probe asks `archive` for the record
    /// store's archiving.
    pub(crate) async fn run(
        &self,
        http: &reqwest::Client,
        archive: impl FnOnce() -> Option<ArchiveHealth>,
    ) -> ProbeResult {
        let started = Instant::now();
        let run = async {
            match self.kind {
                ProbeKind::Tcp => self.tcp().await.map(|()| "connected".to_owned()),
                ProbeKind::Redis => self.redis().await,
                ProbeKind::Http => self.http(http).await,
                ProbeKind::Archive => archived(archive()),
            }
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(what)) => ProbeResult::ok(format!("{what} in {}", took(started))),
            Ok(Err(why)) => ProbeResult::failed(why),
            Err(_) => ProbeResult::failed(format!(
                "{} {} timed out after {:?}",
                self.kind.as_str(),
                self.target(),
                self.timeout
            )),
        }
    }

    fn target(&self) -> &str {
        match self.kind {
            ProbeKind::Http => &self.url,
            _ => &self.address,
        }
    }

    async fn connect(&self) -> Result<TcpStream, String> {
        TcpStream::connect(&self.address)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.address))
    }

    async fn tcp(&self) -> Result<(), String> {
        self.connect().await.map(drop)
    }

    async fn redis(&self) -> Result<String, String> {
        let mut stream = self.connect().await?;
        if let Some(password) = &self.password {
            let auth = resp_command(&["AUTH", password.expose()]);
            let reply = round_trip(&mut stream, &auth).await?;
            if reply != "+OK" {
                return Err(format!("redis {} refused AUTH: {}", self.address, reply));
            }
        }
        let reply = round_trip(&mut stream, &resp_command(&["PING"])).await?;
        if reply == "+PONG" {
            Ok("PONG".to_owned())
        } else {
            Err(format!(
                "redis {} answered PING with {reply:?}",
                self.address
            ))
        }
    }

    async fn http(&self, http: &reqwest::Client) -> Result<String, String> {
        let response = http
            .get(&self.url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("GET {}: {}", self.url, e.without_url()))?;
        let status = response.status().as_u16();
        if status == self.expect_status {
            Ok(format!("HTTP {status}"))
        } else {
            Err(format!(
                "GET {} answered HTTP {status} (expected {})",
                self.url, self.expect_status
            ))
        }
    }
}

/// The store's archiving, as a probe: failed with the reason while the last archive could
/// not be written.
fn archived(archive: Option<ArchiveHealth>) -> Result<String, String> {
    match archive {
        None => Ok("archiving is off".to_owned()),
        Some(a) => match a.last_error {
            Some(e) => Err(format!(
                "retention deletes nothing until archives can be written: {e}"
            )),
            None => Ok(format!(
                "{} files, {} records archived since start",
                a.files, a.records
            )),
        },
    }
}

fn took(started: Instant) -> String {
    format!("{:.1} ms", started.elapsed().as_secs_f64() * 1000.0)
}

/// A command as a RESP array of bulk strings.
fn resp_command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends `command` and reads one reply line (without its CRLF).
async fn round_trip(stream: &mut TcpStream, command: &[u8]) -> Result<String, String> {
    stream
        .write_all(command)
        .await
        .map_err(|e| format!("redis write failed: {e}"))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = stream
            .read(&mut byte)
            .await
            .map_err(|e| format!("redis read failed: {e}"))?;
        if n == 0 {
            return Err("redis closed the connection without answering".into());
        }
        line.push(byte[0]);
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        if line.len() > MAX_REPLY {
            return Err("redis reply line too long".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn probe(kind: ProbeKind, address: &str, url: &str) -> Probe {
        Probe {
            name: "p".into(),
            kind,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            address: address.into(),
            url: url.into(),
            expect_status: 200,
            password: None,
        }
    }

    /// A one-connection server that answers each command line group with `replies`.
    async fn fake_redis(replies: &'static [&'static str]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for reply in replies {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[test]
    fn resp_encoding() {
        assert_eq!(resp_command(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            resp_command(&["AUTH", "pässword"]),
            b"*2\r\n$4\r\nAUTH\r\n$9\r\np\xc3\xa4ssword\r\n"
        );
    }

    #[tokio::test]
    async fn redis_pong_is_healthy_and_errors_are_not() {
        let http = reqwest::Client::new();
        let ok = probe(ProbeKind::Redis, &fake_redis(&["+PONG\r\n"]).await, "");
        let r = ok.run(&http, || None).await;
        assert!(!r.failed && r.detail.starts_with("PONG in"), "{r:?}");
        let loading = probe(
            ProbeKind::Redis,
            &fake_redis(&["-LOADING Redis is loading the dataset\r\n"]).await,
            "",
        );
        let r = loading.run(&http, || None).await;
        assert!(r.failed && r.detail.contains("LOADING"), "{r:?}");
        let mut auth = probe(
            ProbeKind::Redis,
            &fake_redis(&["-WRONGPASS invalid\r\n"]).await,
            "",
        );
        auth.password = Some(Secret::for_tests("pw"));
        let r = auth.run(&http, || None).await;
        assert!(r.failed && r.detail.contains("refused AUTH"), "{r:?}");
        assert!(!r.detail.contains("pw "), "the password is not shown");
    }

    #[tokio::test]
    async fn tcp_and_http_probes() {
        let http = reqwest::Client::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert!(
            !probe(ProbeKind::Tcp, &addr, "")
                .run(&http, || None)
                .await
                .failed
        );
        drop(listener);
        let r = probe(ProbeKind::Tcp, &addr, "").run(&http, || None).await;
        assert!(r.failed && r.detail.contains("cannot connect"), "{r:?}");

        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .route(
                "/down",
                axum::routing::get(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let r = probe(ProbeKind::Http, "", &format!("{base}/ok"))
            .run(&http, || None)
            .await;
        assert!(!r.failed, "{r:?}");
        let r = probe(ProbeKind::Http, "", &format!("{base}/down"))
            .run(&http, || None)
            .await;
        assert!(
            r.failed && r.detail.contains("HTTP 503 (expected 200)"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let r = probe(ProbeKind::Redis, &addr, "")
            .run(&reqwest::Client::new(), || None)
            .await;
        assert!(r.failed && r.detail.contains("timed out"), "{r:?}");
    }

    #[tokio::test]
    async fn an_archive_probe_fails_while_archives_cannot_be_written() {
        let http = reqwest::Client::new();
        let p = probe(ProbeKind::Archive, "", "");
        let r = p.run(&http, || None).await;
        assert!(
            !r.failed && r.detail.starts_with("archiving is off"),
            "{r:?}"
        );
        let writing = ArchiveHealth {
            last_error: None,
            files: 2,
            records: 300,
        };
        let r = p.run(&http, || Some(writing.clone())).await;
        assert!(
            !r.failed && r.detail.starts_with("2 files, 300 records"),
            "{r:?}"
        );
        let failing = ArchiveHealth {
            last_error: Some("cannot create /data/archive: Not a directory".into()),
            ..writing
        };
        let r = p.run(&http, || Some(failing)).await;
        assert!(
            r.failed
                && r.detail.contains("retention deletes nothing")
                && r.detail.contains("/data/archive"),
            "{r:?}"
        );
    }
}

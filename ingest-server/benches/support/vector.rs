//! The competitor for the ingest benchmark: Vector (`http_server` -> `file`, end-to-end
//! acknowledgements), the anchor this machine provides in `../shared/anchors/`, driven by the
//! same loader with the same records as NDJSON.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the anchor lives: `FAULTLINE_BENCH_ANCHORS`, else `../shared/anchors` beside the
/// repository.
fn anchors() -> PathBuf {
    std::env::var_os("FAULTLINE_BENCH_ANCHORS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/anchors"),
        PathBuf::from,
    )
}

/// A running Vector and the address its `http_server` source listens on.
pub(crate) struct Vector {
    child: Child,
    pub(crate) addr: String,
}

impl Vector {
    /// Starts the anchor's Vector with its configuration, its directories under `dir` and
    /// its source on a free loopback port; waits until the port answers. Panics with what is
    /// missing if the anchor is not there: the comparison is part of the suite.
    pub(crate) fn start(dir: &Path) -> Vector {
        let anchors = anchors();
        let binary = anchors.join("vector");
        let config = anchors.join("vector-http-file.toml");
        for needed in [&binary, &config] {
            assert!(
                needed.is_file(),
                "the competitor anchor {} is missing: the ingest benchmark runs Vector beside \
                 Faultline (see ../shared/anchors/README.md; FAULTLINE_BENCH_ANCHORS names \
                 another directory)",
                needed.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for Vector")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let text = std::fs::read_to_string(&config).expect("read the Vector configuration");
        assert!(
            text.contains("127.0.0.1:9101") && text.contains("VBENCH"),
            "{} no longer has the address 127.0.0.1:9101 and the VBENCH directory the \
             benchmark replaces",
            config.display()
        );
        let text = text
            .replace("127.0.0.1:9101", &addr)
            .replace("VBENCH", &dir.display().to_string());
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let config = dir.join("vector.toml");
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .arg("--quiet")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("Vector exited before listening on {addr}: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "Vector did not listen on {addr} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Vector { child, addr }
    }

    /// The version line of the anchor (`vector 0.58.0 (...)`).
    pub(crate) fn version() -> String {
        Command::new(anchors().join("vector"))
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map_or_else(|| "vector".into(), |v| v.trim().to_owned())
    }

    /// Stops it (SIGTERM, then waits).
    pub(crate) fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .ok();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `POST /` of `records` as newline-delimited JSON, what Vector's `http_server` source with
/// `framing.method = "newline_delimited"` reads.
pub(crate) fn ndjson_request(records: &[String]) -> Vec<u8> {
    let mut body = records.join("\n");
    body.push('\n');
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-ndjson\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// [`super::load::requests`]' 16 variants of `batch` records, as NDJSON for Vector.
pub(crate) fn requests(batch: usize) -> Vec<Vec<u8>> {
    (0..16)
        .map(|v| {
            ndjson_request(
                &(0..batch)
                    .map(|i| super::load::record(v * batch + i))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

//! The HTTP sink against a real `faultline serve` (delivery, an outage, a restart of the
//! service), and against a scripted endpoint for retry rules the real server will not
//! produce on demand.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline_logger::{HttpConfig, Sink, builder};
use faultline_schema::{Level, Uuid};

use crate::common::{KEY, Server, eventually, free_port, with_layer};

fn http(base: &str) -> HttpConfig {
    HttpConfig::new(base, KEY).backoff(Duration::from_millis(50), Duration::from_millis(500))
}

#[test]
fn delivers_batches_to_a_real_server() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0");
    let (layer, guard) = builder()
        .service("httptest")
        .sink(Sink::http(http(&server.base)).batch_size(100))
        .build()
        .unwrap();
    with_layer(&layer, || {
        let span = tracing::info_span!("job", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
        let _e = span.enter();
        for i in 0..499u64 {
            tracing::info!(seq = i, "shipped");
        }
        tracing::error!(seq = 499u64, user = "bob", "failed");
    });
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete, "{report:?}");
    assert_eq!((report.written, report.dropped.total()), (500, 0));
    let stored = server.recent("httptest");
    assert_eq!(stored.len(), 500);
    let seqs: HashSet<u64> = stored
        .iter()
        .map(|r| r.meta["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 500);
    let failed = stored.iter().find(|r| r.message == "failed").unwrap();
    assert_eq!(failed.level, Level::Error);
    assert_eq!(failed.meta["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // Anonymized in the service, re-keyed by the server: never the raw id.
    assert!(failed.meta["user"].as_str().unwrap().starts_with("u_"));
}

/// The issue's outage test: the server is killed mid-stream and comes back on the same
/// port; records logged meanwhile wait in the spool and are stored exactly once.
#[test]
fn rides_out_a_server_outage_and_delivers_each_record_once() {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0");
    let addr = server.addr();
    let (layer, guard) = builder()
        .service("outage")
        .sink(
            Sink::http(http(&server.base).spool_dir(spool.path()))
                .batch_size(50)
                .linger(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let log = |from: u64, to: u64| {
        with_layer(&layer, || {
            for i in from..to {
                tracing::info!(seq = i, "across an outage");
            }
        })
    };
    log(0, 100);
    assert_eq!(guard.flush().written, 100);

    server.kill();
    log(100, 300);
    let report = guard.flush();
    assert!(
        report.complete,
        "a failing endpoint leaves the records durable"
    );
    assert_eq!(report.written, 100);
    assert_eq!(report.spooled, 200, "{report:?}");
    assert!(report.sinks[0].sink_errors > 0);
    std::thread::sleep(Duration::from_millis(300));

    let server = Server::start(data.path(), &addr);
    log(300, 400);
    let report = eventually(Duration::from_secs(60), || {
        let r = guard.flush_timeout(Duration::from_secs(5));
        (r.spooled == 0 && r.written == 400).then_some(r)
    });
    assert_eq!(report.dropped.total(), 0);
    let stored = server.recent("outage");
    let ids: HashSet<Uuid> = stored.iter().map(|r| r.id.unwrap()).collect();
    assert_eq!(stored.len(), 400, "each record stored once");
    assert_eq!(ids.len(), 400);
    let seqs: HashSet<u64> = stored
        .iter()
        .map(|r| r.meta["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..400).collect());
    drop(guard);
}

/// Batches spooled by one run of a service are delivered by the next.
#[test]
fn the_spool_survives_a_restart_of_the_service() {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let first = builder()
        .service("restart")
        .sink(Sink::http(http(&base).spool_dir(spool.path())))
        .build()
        .unwrap();
    with_layer(&first.0, || {
        for i in 0..50u64 {
            tracing::info!(seq = i, "spooled by the first run");
        }
    });
    let report = first.1.shutdown(Duration::MAX);
    assert!(report.complete);
    assert_eq!((report.written, report.spooled), (0, 50));

    let server = Server::start(data.path(), &addr);
    let (_layer, guard) = builder()
        .service("restart")
        .sink(Sink::http(http(&base).spool_dir(spool.path())))
        .build()
        .unwrap();
    let report = guard.shutdown(Duration::MAX);
    assert_eq!((report.written, report.spooled), (50, 0), "{report:?}");
    assert_eq!(server.recent("restart").len(), 50);
}

/// A scripted endpoint: answers each request with the next of `responses` (then 202s),
/// and remembers when each request came and its body.
/// When a request came, and its body's lines.
type Seen = (Instant, Vec<String>);

struct Scripted {
    base: String,
    requests: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    fn start(responses: Vec<&'static str>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut script = responses.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut len = 0usize;
                    let mut gzip = false;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end().to_ascii_lowercase();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        gzip |= h == "content-encoding: gzip";
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    if gzip {
                        let mut plain = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut plain)
                            .unwrap();
                        body = plain;
                    }
                    let lines: Vec<String> = String::from_utf8(body)
                        .unwrap()
                        .lines()
                        .map(str::to_owned)
                        .collect();
                    let n = lines.len();
                    seen.lock().unwrap().push((Instant::now(), lines));
                    let head = script.next().unwrap_or("202 Accepted");
                    let body = if head.starts_with("202") {
                        format!(r#"{{"accepted":{n},"duplicates":0,"rejected":[]}}"#)
                    } else {
                        r#"{"error":"scripted"}"#.to_owned()
                    };
                    let response = format!(
                        "HTTP/1.1 {head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        Scripted { base, requests }
    }

    fn requests(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }
}

#[test]
fn retry_after_is_honored() {
    let endpoint = Scripted::start(vec!["429 Too Many Requests\r\nRetry-After: 1"]);
    let (layer, guard) = builder()
        .service("retry")
        .sink(Sink::http(http(&endpoint.base)))
        .build()
        .unwrap();
    with_layer(&layer, || tracing::info!("once"));
    let report = guard.shutdown(Duration::MAX);
    assert_eq!((report.written, report.dropped.total()), (1, 0));
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].0 - requests[0].0;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert_eq!(requests[0].1, requests[1].1, "the same batch, the same ids");
}

#[test]
fn server_errors_are_retried_and_client_errors_are_not() {
    let endpoint = Scripted::start(vec![
        "503 Service Unavailable",
        "500 Internal Server Error",
        "400 Bad Request",
    ]);
    let (layer, guard) = builder()
        .service("retry")
        .sink(Sink::http(http(&endpoint.base)))
        .build()
        .unwrap();
    with_layer(&layer, || {
        for _ in 0..3 {
            tracing::info!("refused in the end");
        }
    });
    let report = guard.flush();
    assert_eq!(endpoint.requests().len(), 3, "503, 500, then 400 ends it");
    assert_eq!(report.dropped.rejected, 3);
    assert_eq!(report.written, 0);
    assert!(
        report.sinks[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("400")
    );
    // Later batches are sent as usual.
    with_layer(&layer, || tracing::info!("accepted"));
    assert_eq!(guard.shutdown(Duration::MAX).written, 1);
    assert_eq!(endpoint.requests().len(), 4);
}

#[test]
fn a_batch_too_large_is_split() {
    let endpoint = Scripted::start(vec!["413 Payload Too Large"]);
    let (layer, guard) = builder()
        .service("split")
        .sink(Sink::http(http(&endpoint.base)).batch_size(10))
        .build()
        .unwrap();
    with_layer(&layer, || {
        for i in 0..10u64 {
            tracing::info!(seq = i, "split");
        }
    });
    let report = guard.shutdown(Duration::MAX);
    assert_eq!(report.written, 10);
    let sizes: Vec<usize> = endpoint.requests().iter().map(|r| r.1.len()).collect();
    assert_eq!(sizes, [10, 5, 5]);
}

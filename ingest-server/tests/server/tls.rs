//! TLS in the process: the real binary with a certificate generated here, spoken to by
//! curl (HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3), Chromium, and a client that keeps posting
//! while the certificate is renewed on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::process::{KEY, Proc, now_record, spawn_with};

/// A self-signed certificate for 127.0.0.1 and localhost, written as `NAME.pem` and
/// `NAME.key` under `dir`.
pub fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// `faultline serve` with TLS from `live.pem`/`live.key` in `tls_dir`, polled every 100 ms.
fn spawn_tls(data: &Path, tls_dir: &Path) -> Proc {
    let cert = tls_dir.join("live.pem");
    let key = tls_dir.join("live.key");
    let p = spawn_with(
        data,
        None,
        true,
        &[
            ("FAULTLINE_TLS_CERT", cert.to_str().unwrap()),
            ("FAULTLINE_TLS_KEY", key.to_str().unwrap()),
            ("FAULTLINE_TLS_WATCH_INTERVAL", "100ms"),
        ],
    );
    assert!(p.base.starts_with("https://127.0.0.1:"), "{}", p.base);
    p
}

/// Installs `NAME.pem`/`NAME.key` as the live pair the way certbot does: new files renamed
/// over the old ones.
pub fn install(tls_dir: &Path, name: &str) {
    for ext in ["pem", "key"] {
        let tmp = tls_dir.join(format!("live.{ext}.tmp"));
        std::fs::copy(tls_dir.join(format!("{name}.{ext}")), &tmp).unwrap();
        std::fs::rename(&tmp, tls_dir.join(format!("live.{ext}"))).unwrap();
    }
}

/// curl's answer: (exit code, `%{http_version} %{http_code}`).
pub fn curl(ca: &Path, args: &[&str], url: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn https_speaks_http2_and_http1_over_tls12_and_tls13() {
    let data = tempfile::tempdir().unwrap();
    let tls = tempfile::tempdir().unwrap();
    certificate(tls.path(), "first");
    install(tls.path(), "first");
    let p = spawn_tls(data.path(), tls.path());
    let ca = tls.path().join("first.pem");
    let url = format!("{}/healthz", p.base);
    assert_eq!(
        curl(&ca, &["--http2"], &url),
        (0, "2 200".into()),
        "ALPN h2"
    );
    assert_eq!(curl(&ca, &["--http1.1"], &url), (0, "1.1 200".into()));
    assert_eq!(
        curl(&ca, &["--http2", "--tlsv1.2", "--tls-max", "1.2"], &url),
        (0, "2 200".into()),
        "TLS 1.2"
    );
    assert_eq!(
        curl(&ca, &["--http2", "--tlsv1.3"], &url),
        (0, "2 200".into()),
        "TLS 1.3"
    );
    let (code, _) = curl(&ca, &["--tlsv1.0", "--tls-max", "1.1"], &url);
    assert_ne!(code, 0, "TLS 1.0/1.1 refused");
    // Ingest over HTTP/2.
    let body = serde_json::to_string(&json!([now_record("api", "error", "over h2")])).unwrap();
    let (code, out) = curl(
        &ca,
        &[
            "--http2",
            "-H",
            &format!("Authorization: Bearer {KEY}"),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ],
        &format!("{}/logs/ingest", p.base),
    );
    assert_eq!((code, out.as_str()), (0, "2 202"));
    // Plain HTTP on the TLS port is not served.
    let plain = p.base.replace("https://", "http://");
    let (code, out) = curl(&ca, &["--max-time", "5"], &format!("{plain}/healthz"));
    assert!(code != 0 || !out.ends_with("200"), "{code} {out}");
    chromium_negotiates_h2(&p.base);
    assert!(p.terminate().success());
}

/// Chromium (headless, through playwright-core) loads the dashboard's health page over the
/// self-signed certificate and reports the protocol it used.
fn chromium_negotiates_h2(base: &str) {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e");
    let script = r#"
const { chromium } = require(process.cwd() + '/node_modules/playwright-core');
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const response = await page.goto(process.argv[1] + '/healthz');
    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    console.log(JSON.stringify({ status: response.status(), protocol }));
  } finally { await browser.close(); }
})().catch((e) => { console.error(e); process.exit(1); });
"#;
    let out = Command::new("node")
        .current_dir(&e2e)
        .args(["-e", script, base])
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!({"status": 200, "protocol": "h2"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_certificate_is_served_without_a_restart_while_requests_continue() {
    let data = tempfile::tempdir().unwrap();
    let tls = tempfile::tempdir().unwrap();
    certificate(tls.path(), "first");
    certificate(tls.path(), "second");
    certificate(tls.path(), "third");
    install(tls.path(), "first");
    let p = spawn_tls(data.path(), tls.path());
    let url = format!("{}/healthz", p.base);
    let first = tls.path().join("first.pem");
    assert_eq!(curl(&first, &[], &url).0, 0);

    // Clients trusting every generation post without pause: one keeps its connection (h2),
    // the others open a new one per request.
    let with_roots = || {
        let mut builder = reqwest::ClientBuilder::new().timeout(Duration::from_secs(10));
        for name in ["first", "second", "third"] {
            let pem = std::fs::read(tls.path().join(format!("{name}.pem"))).unwrap();
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        builder
    };
    let pooled = with_roots().build().unwrap();
    // No idle connection kept: a new connection and handshake for every request.
    let fresh = with_roots().pool_max_idle_per_host(0).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for client in 0..3u64 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let c = if client == 0 {
            pooled.clone()
        } else {
            fresh.clone()
        };
        let base = p.base.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let mut record = now_record("api", "info", "during renewal");
                record["id"] = json!(format!("renew-{client}-{n}"));
                let r = c
                    .post(format!("{base}/logs/ingest"))
                    .bearer_auth(KEY)
                    .json(&json!([record]))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed during renewal: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    for name in ["second", "third"] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        install(tls.path(), name);
        let ca = tls.path().join(format!("{name}.pem"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while curl(&ca, &[], &url).0 != 0 {
            assert!(
                Instant::now() < deadline,
                "{name} not served 10 s after renewal"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_ne!(curl(&first, &[], &url).0, 0, "the old certificate is gone");
    }
    // A broken pair (a key that does not match) keeps the current certificate.
    std::fs::copy(tls.path().join("first.key"), tls.path().join("live.key")).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(curl(&tls.path().join("third.pem"), &[], &url).0, 0);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let metrics = reqwest_text(&pooled, &format!("{}/metrics", p.base)).await;
    assert!(
        metrics.contains("faultline_tls_reloads_total{result=\"error\"}"),
        "a failed reload is counted"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    assert!(ok.load(Ordering::Relaxed) > 20, "{ok:?}");
    assert!(p.terminate().success());
}

async fn reqwest_text(c: &reqwest::Client, url: &str) -> String {
    c.get(url).send().await.unwrap().text().await.unwrap()
}

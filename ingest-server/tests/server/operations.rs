//! Operations: `faultline validate` (every problem, exit 0/1), `faultline healthcheck` (the
//! container's HEALTHCHECK), and a public key's rate limit per client address, from real
//! loopback addresses.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::ADMIN;
use crate::process::{get, now_record, spawn_with};

fn faultline(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env_remove("FAULTLINE_CONFIG")
        .env_remove("BACKEND_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn validate_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        r#"
access_log = "/nonexistent/logs/access.log"

[[keys]]
name = "web"
kind = "public"
key = "pk_x"
services = ["web"]
daily_quota = 1000

[[keys]]
name = "backend"
kind = "secret"
key_env = "BACKEND_KEY"
services = ["api"]

[[keys]]
name = "ci"
kind = "secret"
key_file = "/nonexistent/ci.key"
services = ["Not A Service"]

[limits]
public_key_rate = { records_per_second = 0.0, burst = 0.0 }

[tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
"#,
    )
    .unwrap();
    let (code, out) = faultline(&["validate", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "a public key needs origins",
        "service \"Not A Service\" is not a valid service name",
        "records_per_second of at least 1/86400",
        "keys[1].key_env: environment variable BACKEND_KEY is not set",
        "keys[2].key_file: cannot read /nonexistent/ci.key",
        "tls: cannot read certificate /nonexistent/cert.pem",
        "access_log: the directory of \"/nonexistent/logs/access.log\" does not exist",
        "7 problems",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }

    // Syntax: the parser's message with the line.
    std::fs::write(&file, "[limits]\nmax_body_bytes = \"big\"\n").unwrap();
    let (code, out) = faultline(&["validate", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("max_body_bytes") && out.contains("line 2"),
        "{out}"
    );

    // The shipped starting config is good once its key variable is set.
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/faultline.toml");
    let (code, out) = faultline(
        &["validate", "--config", deploy],
        &[("BACKEND_INGEST_KEY", "sk_from_env")],
    );
    assert_eq!((code, out.trim().ends_with(": ok")), (0, true), "{out}");
    let (code, out) = faultline(&["validate", "--config", deploy], &[]);
    assert_eq!(code, 1);
    assert!(out.contains("BACKEND_INGEST_KEY is not set"), "{out}");

    // A channel's unset variable is a problem, unless such channels are skipped.
    let channel = "[alerts.channels.ops]\nkind = \"discord\"\nurl_env = \"NOPE_DISCORD_URL\"\n\
                   [alerts.rules.r]\nkind = \"absence\"\nwindow = \"1m\"\nactions = [\"ops\"]\n";
    std::fs::write(&file, channel).unwrap();
    let (code, out) = faultline(&["validate", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(out.contains("NOPE_DISCORD_URL is not set"), "{out}");
    std::fs::write(
        &file,
        format!("[alerts]\nskip_unconfigured_channels = true\n{channel}"),
    )
    .unwrap();
    let (code, out) = faultline(&["validate", "--config", file.to_str().unwrap()], &[]);
    assert_eq!((code, out.trim().ends_with(": ok")), (0, true), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_exits_0_for_a_ready_server_and_1_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_with(dir.path(), None, true, &[]);
    let url = format!("{}/readyz", p.base);
    assert_eq!(faultline(&["healthcheck", "--url", &url], &[]).0, 0);
    let port = p.base.rsplit(':').next().unwrap().to_owned();
    let listen = format!("0.0.0.0:{port}");
    assert_eq!(
        faultline(&["healthcheck"], &[("FAULTLINE_LISTEN", &listen)]).0,
        0,
        "the port from FAULTLINE_LISTEN"
    );
    assert!(p.terminate().success());
    let (code, out) = faultline(&["healthcheck", "--url", &url], &[]);
    assert_eq!(code, 1, "{out}");
}

/// A client whose connections come from `local` (127.0.0.1, 127.0.0.2, ...: all loopback).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Posts `n` records with the public key from `c`, with `X-Forwarded-For` when given:
/// the status, `Retry-After` and the error's message.
async fn send_public(
    c: &reqwest::Client,
    base: &str,
    n: usize,
    forwarded_for: Option<&str>,
) -> (u16, Option<String>, String) {
    let batch: Vec<Value> = (0..n)
        .map(|i| now_record("web", "ERROR", &format!("click {i}")))
        .collect();
    let mut request = c
        .post(format!("{base}/logs/ingest"))
        .header("x-faultline-key", "pk_operations_web")
        .header("origin", "https://app.example")
        .json(&json!(batch));
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let message = body["error"].as_str().unwrap_or_default().to_owned();
    (status, retry_after, message)
}

/// One browser flooding with the published key gets 429 while another address, and the
/// clients behind a trusted proxy, keep sending; a forged `X-Forwarded-For` from an
/// untrusted peer changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_public_key_is_limited_per_client_address_and_one_client_cannot_starve_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faultline.toml");
    std::fs::write(
        &config,
        r#"
trusted_proxies = ["127.0.0.3"]

[[keys]]
name = "web"
kind = "public"
key = "pk_operations_web"
services = ["web"]
origins = ["https://app.example"]

[limits]
public_client_rate = { records_per_second = 0.01, burst = 10.0 }
"#,
    )
    .unwrap();
    let (code, out) = faultline(&["validate", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}");
    let data = dir.path().join("data");
    let p = spawn_with(&data, Some(&config), true, &[]);
    let (a, b, proxy) = (
        client_from("127.0.0.1"),
        client_from("127.0.0.2"),
        client_from("127.0.0.3"),
    );

    assert_eq!(send_public(&a, &p.base, 10, None).await.0, 202);
    let (status, retry_after, message) = send_public(&a, &p.base, 1, None).await;
    assert_eq!(status, 429, "{message}");
    assert!(
        message.contains("for this client address"),
        "the 429 says which limit: {message}"
    );
    let retry: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((50..=101).contains(&retry), "1 token at 0.01/s: {retry}");
    // A forged X-Forwarded-For from an untrusted peer is not believed.
    let forged = send_public(&a, &p.base, 1, Some("203.0.113.77")).await;
    assert_eq!(forged.0, 429, "{forged:?}");

    // Another address has its own bucket: the first client has not starved it.
    assert_eq!(send_public(&b, &p.base, 10, None).await.0, 202);
    assert_eq!(send_public(&b, &p.base, 1, None).await.0, 429);

    // Behind the trusted proxy, each forwarded client has its own bucket (and the proxy's
    // own address is not what is counted).
    let behind = |xff: &'static str| send_public(&proxy, &p.base, 10, Some(xff));
    assert_eq!(behind("6.6.6.6, 203.0.113.9").await.0, 202);
    assert_eq!(
        send_public(&proxy, &p.base, 1, Some("203.0.113.9")).await.0,
        429,
        "203.0.113.9 spent its burst"
    );
    assert_eq!(behind("203.0.113.10").await.0, 202);
    assert_eq!(behind("2001:db8::1").await.0, 202);

    // Everything accepted was stored: 5 batches of 10.
    let (_, recent) = get(&a, &p.base, ADMIN, "/logs/recent?service=web&limit=1000").await;
    assert_eq!(recent["records"].as_array().unwrap().len(), 50);
    assert!(p.terminate().success());
}

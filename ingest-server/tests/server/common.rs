//! Shared helpers: a server on a temp data dir, records, requests.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, Response};
use faultline_server::config::{Config, KeyConfig, KeyKind, Overrides, RateLimit};
use faultline_server::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

pub const ADMIN: &str = "test-admin-token";
pub const SECRET: &str = "sk_test_backend";
pub const PUBLIC: &str = "pk_test_panel";
pub const ORIGIN: &str = "http://localhost:5173";
pub const SALT: &str = "test-salt";
pub const HMAC: &str = "test-hmac-key";

/// A started server (not serving on its socket) and its data dir.
pub struct TestServer {
    pub state: AppState,
    pub _dir: TempDir,
}

pub fn env(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("FAULTLINE_ADMIN_TOKEN", ADMIN),
        ("FAULTLINE_USER_SALT", SALT),
        ("FAULTLINE_HMAC_KEY", HMAC),
        ("BACKEND_KEY", SECRET),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    vars
}

pub fn keys() -> Vec<KeyConfig> {
    vec![
        KeyConfig {
            name: "backend".into(),
            kind: KeyKind::Secret,
            key: None,
            key_env: Some("BACKEND_KEY".into()),
            key_file: None,
            services: vec!["api".into(), "worker".into()],
            origins: vec![],
            rate_limit: None,
            daily_quota: None,
            sourcemaps: false,
        },
        KeyConfig {
            name: "panel".into(),
            kind: KeyKind::Public,
            key: Some(PUBLIC.into()),
            key_env: None,
            key_file: None,
            services: vec!["ui".into()],
            origins: vec![ORIGIN.into()],
            rate_limit: Some(RateLimit {
                records_per_second: 1.0,
                burst: 5.0,
            }),
            daily_quota: None,
            sourcemaps: false,
        },
    ]
}

pub async fn server_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let vars = env(&[]);
    let mut config = Config::load(None, &Overrides::default(), &|k| vars.get(k).cloned()).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.keys = keys();
    tweak(&mut config);
    let server = faultline_server::start(config, &|k| vars.get(k).cloned())
        .await
        .unwrap();
    TestServer {
        state: server.state,
        _dir: dir,
    }
}

pub async fn server() -> TestServer {
    server_with(|_| {}).await
}

pub fn record(service: &str, level: &str, event: &str, message: &str) -> Value {
    json!({
        "ts": "2026-07-01T12:34:56.789Z",
        "service": service,
        "level": level,
        "event": event,
        "message": message,
    })
}

impl TestServer {
    pub async fn send(&self, request: Request<Body>) -> (u16, HashMap<String, String>, Value) {
        let response: Response<Body> = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    /// POSTs `body` to /logs/ingest with the secret key.
    pub async fn ingest(&self, body: impl Into<Body>) -> (u16, Value) {
        let req = Request::post("/logs/ingest")
            .header("authorization", format!("Bearer {SECRET}"))
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap();
        let (status, _, body) = self.send(req).await;
        (status, body)
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let req = Request::get(path_and_query)
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = self.send(req).await;
        (status, body)
    }

    pub async fn recent(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/logs/recent?{query}")).await;
        assert_eq!(status, 200, "{body}");
        body["records"].as_array().unwrap().clone()
    }
}

/// The value of one series in Prometheus text (`name` or `name{label="v"}`, exactly as
/// rendered), or `None` when it is not there.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

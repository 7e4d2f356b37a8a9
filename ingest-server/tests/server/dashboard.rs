//! The dashboard at `/` and `GET /panel/config`, through the router: content types, caching,
//! the client-route fallback, and API paths keeping their JSON 404. Holds with or without a
//! `www/dist` build embedded (without one, pages say how to build it).

use axum::body::Body;
use axum::http::Request;

use crate::common::*;

async fn get(
    s: &TestServer,
    path: &str,
) -> (
    u16,
    std::collections::HashMap<String, String>,
    serde_json::Value,
) {
    s.send(Request::get(path).body(Body::empty()).unwrap())
        .await
}

#[tokio::test]
async fn pages_are_html_revalidated_and_client_routes_fall_back_to_the_app() {
    let s = server().await;
    for path in ["/", "/dashboard", "/panel", "/panel/"] {
        let (status, headers, body) = get(&s, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            headers["content-security-policy"].contains("script-src 'self' 'wasm-unsafe-eval'")
        );
        assert!(
            body.as_str().unwrap().starts_with("<!doctype html>"),
            "{path}: {body}"
        );
    }
    let (_, first, _) = get(&s, "/").await;
    if let Some(etag) = first.get("etag") {
        let req = Request::get("/")
            .header("if-none-match", etag)
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = s.send(req).await;
        assert_eq!(status, 304, "an unchanged index.html is not sent again");
    }
}

#[tokio::test]
async fn built_assets_are_immutable_with_their_content_type() {
    let s = server().await;
    let (_, _, index) = get(&s, "/").await;
    let html = index.as_str().unwrap_or_default().to_owned();
    // The scripts and styles index.html names (none when the build is not embedded).
    let assets: Vec<&str> = html
        .split('"')
        .filter(|p| p.starts_with("/assets/"))
        .collect();
    for asset in &assets {
        let (status, headers, _) = get(&s, asset).await;
        assert_eq!(status, 200, "{asset}");
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let expected = if asset.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(headers["content-type"], expected, "{asset}");
    }
    if html.contains("/assets/") {
        assert!(!assets.is_empty());
    }
}

#[tokio::test]
async fn api_paths_and_missing_files_keep_a_json_404() {
    let s = server().await;
    for path in [
        "/logs/nope",
        "/alerts/x/y",
        "/assets/gone-123.js",
        "/robots.txt",
    ] {
        let (status, headers, body) = get(&s, path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert!(body["error"].as_str().unwrap().contains("no such endpoint"));
    }
    let (status, _, _) = s
        .send(Request::post("/dashboard").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn panel_config_gives_the_public_key_for_ui_and_the_salt_without_a_token() {
    let s = server().await;
    let (status, headers, body) = get(&s, "/panel/config").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["service"], "ui");
    assert_eq!(body["key"], PUBLIC);
    assert_eq!(body["salt"], SALT);
    assert_eq!(body["origins"], serde_json::json!([ORIGIN]));
    assert!(!body.to_string().contains(SECRET) && !body.to_string().contains(ADMIN));
}

//! The dashboard and demo panel at `/`: the Vite build of `www/` embedded in the binary by
//! `build.rs`, and `GET /panel/config`, the public values the demo panel starts with.
//!
//! Caching: Vite puts a content hash in every name under `/assets/`, so those are
//! `immutable` for a year; `index.html` (and anything else) is `no-cache` with an `ETag`, so
//! a new release is picked up on the next load without refetching what did not change.
//! Any other `GET` that looks like a page (no file extension, not an API path) gets
//! `index.html`: the app routes on the client (`/overview`, `/panel`).
//!
//! `/issues` and `/issues/{id}` are both API routes and dashboard pages (a link to an issue
//! must survive a reload). [`pages`] tells them apart before routing: a browser loading a
//! page asks for `text/html` and sends no token; the dashboard's own API calls send the
//! token and ask for JSON. Both answers say `Vary: Accept, Authorization`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app_state::AppState;
use crate::error::ApiError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));
}

/// One embedded file: its URL path, bytes and ETag (quoted).
type Asset = (&'static str, &'static [u8], &'static str);

/// Where the SPA fallback never applies: the API answers its own 404s there.
const API_PREFIXES: [&str; 8] = [
    "/logs/",
    "/alerts",
    "/issues",
    "/system/",
    "/panel/config",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// Hashed build output: safe to cache forever.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else: revalidate every time (cheap with the ETag).
const REVALIDATE: &str = "no-cache";

/// What a browser should not do with our pages: be framed, sniff types, load foreign code.
/// `'wasm-unsafe-eval'` lets the demo panel's reporter compile its WebAssembly. No inline
/// script or style is allowed: the build has none (React's `style` props go through the
/// CSSOM, which `style-src` does not govern).
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                   style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Shown at `/` by a binary built without `www/dist`.
const NOT_BUILT: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
<title>Faultline</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
<h1>Faultline is running</h1><p>This binary was built without the dashboard. \
Run <code>cargo xtask run</code>, which builds <code>www/</code> (npm ci, Vite) before the server, \
or build it yourself with <code>cd www &amp;&amp; npm ci &amp;&amp; npm run build</code> and rebuild \
<code>faultline</code>.</p><p>The API is up: <a href=\"/healthz\">/healthz</a>.</p></body></html>";

/// The fallback for every path no API route took: an embedded file, `index.html` for a
/// client-side route, or a JSON 404.
pub(crate) async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    respond(embedded::ASSETS, &method, uri.path(), &headers)
}

fn respond(assets: &[Asset], method: &Method, path: &str, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::NotFound.into_response();
    }
    let lookup = |p: &str| assets.iter().find(|(url, _, _)| *url == p);
    let asset = match path {
        "/" | "/index.html" => lookup("/index.html"),
        p => lookup(p).or_else(|| is_page(p).then(|| lookup("/index.html")).flatten()),
    };
    let Some(&(url, bytes, etag)) = asset else {
        if assets.is_empty() && is_page(path) {
            return page_response(
                method,
                NOT_BUILT.as_bytes(),
                None,
                "text/html; charset=utf-8",
            );
        }
        return ApiError::NotFound.into_response();
    };
    let mut response = page_response(method, bytes, Some(etag), content_type(url));
    let h = response.headers_mut();
    let cache = if url.starts_with("/assets/") {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.body_mut() = Body::empty();
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    response
}

fn page_response(
    method: &Method,
    bytes: &'static [u8],
    etag: Option<&'static str>,
    content_type: &'static str,
) -> Response {
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(etag) = etag {
        h.insert(header::ETAG, HeaderValue::from_static(etag));
    }
    if content_type.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// The API paths that are dashboard pages too (`/issues`, `/issues/{id}`).
const SHARED_PAGES: &str = "/issues";

/// Middleware: a browser's page load of a path the API shares with the dashboard gets
/// `index.html`; everything else goes on to the routes.
pub(crate) async fn pages(request: Request, next: Next) -> Response {
    let (method, path) = (request.method(), request.uri().path());
    if !is_shared_page(path) {
        return next.run(request).await;
    }
    let mut response = if wants_page(method, request.headers()) {
        respond(embedded::ASSETS, method, "/index.html", request.headers())
    } else {
        next.run(request).await
    };
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
    response
}

/// `/issues` or `/issues/{id}` (one segment, no file extension).
fn is_shared_page(path: &str) -> bool {
    match path.strip_prefix(SHARED_PAGES) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('/')
            .is_some_and(|id| !id.is_empty() && !id.contains(['/', '.'])),
        None => false,
    }
}

/// A page load: `GET`/`HEAD` asking for HTML with no token (an API call carries one).
fn wants_page(method: &Method, headers: &HeaderMap) -> bool {
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    (method == Method::GET || method == Method::HEAD)
        && html
        && !headers.contains_key(header::AUTHORIZATION)
        && !headers.contains_key("x-faultline-key")
}

/// A path the client-side router may own: not an API path, and no file extension.
fn is_page(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    !API_PREFIXES.iter().any(|p| path.starts_with(p))
        && !path.starts_with("/assets/")
        && !last.contains('.')
}

/// The content type for a file name.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The `GET /panel/config` body: what the demo panel needs to report to this server. Every
/// value is public by design (the key and salt ship in browser code anyway).
#[derive(Debug, Serialize)]
pub(crate) struct PanelConfig {
    /// The service the panel reports as.
    pub service: &'static str,
    /// A public ingest key allowed for that service, if one is configured.
    pub key: Option<String>,
    /// The origins that key accepts (the panel warns when its own is missing).
    pub origins: Vec<String>,
    /// The public anonymization salt.
    pub salt: String,
}

/// `GET /panel/config`: open, like the page that calls it.
pub(crate) async fn panel_config(State(state): State<AppState>) -> Json<PanelConfig> {
    let key = state.keys.public_key_for("ui");
    Json(PanelConfig {
        service: "ui",
        key: key.map(|k| k.0.to_owned()),
        origins: key
            .map(|k| k.1.iter().cloned().collect())
            .unwrap_or_default(),
        salt: state.user_salt.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Asset] = &[
        ("/assets/index-abc123.js", b"console.log(1)", "\"js\""),
        (
            "/assets/faultline_reporter_bg-1f2e.wasm",
            b"\0asm",
            "\"wasm\"",
        ),
        ("/favicon.svg", b"<svg/>", "\"svg\""),
        ("/index.html", b"<!doctype html>", "\"html\""),
    ];

    fn get(path: &str, headers: &HeaderMap) -> Response {
        respond(TABLE, &Method::GET, path, headers)
    }

    fn header(r: &Response, name: header::HeaderName) -> &str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn hashed_assets_are_immutable_with_their_type() {
        let r = get("/assets/index-abc123.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header(&r, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(header(&r, header::CACHE_CONTROL), IMMUTABLE);
        let r = get("/assets/faultline_reporter_bg-1f2e.wasm", &HeaderMap::new());
        assert_eq!(header(&r, header::CONTENT_TYPE), "application/wasm");
        let r = get("/favicon.svg", &HeaderMap::new());
        assert_eq!(header(&r, header::CONTENT_TYPE), "image/svg+xml");
        assert_eq!(header(&r, header::CACHE_CONTROL), REVALIDATE);
    }

    #[test]
    fn client_routes_get_index_html_but_missing_files_and_api_paths_do_not() {
        for path in ["/", "/dashboard", "/panel", "/dashboard/records/x"] {
            let r = get(path, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&r, header::ETAG), "\"html\"", "{path}");
            assert_eq!(header(&r, header::CACHE_CONTROL), REVALIDATE, "{path}");
            let csp = header(&r, header::CONTENT_SECURITY_POLICY);
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
        }
        for path in [
            "/assets/gone-123.js",
            "/robots.txt",
            "/logs/nope",
            "/alerts/x/y",
        ] {
            assert_eq!(
                get(path, &HeaderMap::new()).status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        let post = respond(TABLE, &Method::POST, "/dashboard", &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn issue_pages_are_the_app_for_a_browser_and_the_api_for_a_client() {
        let browser = |extra: Option<(&str, &str)>| {
            let mut h = HeaderMap::new();
            h.insert(
                header::ACCEPT,
                HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
            );
            if let Some((k, v)) = extra {
                h.insert(
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            h
        };
        for path in ["/issues", "/issues/0193a7c2-aaaa", "/issues/42"] {
            assert!(is_shared_page(path), "{path}");
        }
        for path in [
            "/issues/",
            "/issues/a/b",
            "/issues/x.json",
            "/issuesx",
            "/logs/recent",
        ] {
            assert!(!is_shared_page(path), "{path}");
        }
        assert!(wants_page(&Method::GET, &browser(None)));
        assert!(wants_page(&Method::HEAD, &browser(None)));
        assert!(!wants_page(&Method::PUT, &browser(None)));
        assert!(!wants_page(
            &Method::GET,
            &browser(Some(("authorization", "Bearer adm_x")))
        ));
        assert!(!wants_page(
            &Method::GET,
            &browser(Some(("x-faultline-key", "adm_x")))
        ));
        let mut json = HeaderMap::new();
        json.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_page(&Method::GET, &json));
        assert!(
            !wants_page(&Method::GET, &HeaderMap::new()),
            "curl sends */*"
        );
        // Unknown paths under /issues are the API's JSON 404, not the app.
        assert_eq!(
            get("/issues/a/b", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"html\""));
        assert_eq!(get("/", &h).status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"old\""));
        assert_eq!(get("/", &h).status(), StatusCode::OK);
    }

    #[test]
    fn without_a_build_pages_say_how_to_build_it() {
        let r = respond(&[], &Method::GET, "/", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, header::CONTENT_TYPE), "text/html; charset=utf-8");
        let r = respond(&[], &Method::GET, "/assets/x.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}

//! The security review's points that need a running server (docs/SECURITY.md): who may read,
//! what a public key may do, and that no secret or raw user id reaches the logs.

use serde_json::{Value, json};

use crate::alerts_support::{ADMIN, Faultline, KEY, client};
use crate::common::{HMAC, SALT, record};

const PUBLIC: &str = "pk_security_panel";
const ORIGIN: &str = "https://panel.example";

/// A server with every secret from the environment: admin token, secret and public ingest
/// keys, salt and HMAC key; logging at `trace`, the level most likely to leak.
fn server(dir: &std::path::Path) -> Faultline {
    Faultline::start(
        dir,
        None,
        &[
            ("FAULTLINE_PUBLIC_KEY", PUBLIC.into()),
            ("FAULTLINE_CORS_ORIGINS", ORIGIN.into()),
            ("FAULTLINE_LOG", "trace".into()),
        ],
    )
}

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_read_endpoint_needs_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let f = server(dir.path());
    let c = client();
    let same_length_guess = "x".repeat(ADMIN.len());
    let reads = [
        ("GET", "/logs/recent"),
        ("GET", "/logs/stats"),
        ("GET", "/alerts"),
        ("GET", "/system/checks/latest"),
        ("POST", "/alerts/some_rule/reset"),
    ];
    for (method, path) in reads {
        let url = format!("{}{path}", f.base);
        let req = |token: Option<&str>| {
            let r = match method {
                "GET" => c.get(&url),
                _ => c.post(&url),
            };
            match token {
                Some(t) => r.bearer_auth(t),
                None => r,
            }
        };
        assert_eq!(
            status(req(None)).await,
            401,
            "{method} {path} without a token"
        );
        // An ingest key is known but may only write (403); anything else is unknown (401).
        for (wrong, expected) in [
            (KEY, 403),
            (PUBLIC, 403),
            (same_length_guess.as_str(), 401),
            ("", 401),
        ] {
            assert_eq!(
                status(req(Some(wrong))).await,
                expected,
                "{method} {path} with {wrong:?} instead of the admin token"
            );
        }
        let ok = status(req(Some(ADMIN))).await;
        assert!(
            ok == 200 || ok == 404,
            "{method} {path} with the admin token: {ok}"
        );
        let with_query = |key: &str| match method {
            "GET" => c.get(format!("{url}?key={key}")),
            _ => c.post(format!("{url}?key={key}")),
        };
        // Reads take the token from a header only: a URL ends up in proxy logs (issue 21).
        for key in [KEY, ADMIN] {
            let r = with_query(key).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 401, "{method} {path}?key=...");
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("Authorization"),
                "{method} {path}?key=...: {body}"
            );
        }
    }
    // The open endpoints carry no record content, and /readyz no error text.
    for open in ["/healthz", "/readyz", "/metrics"] {
        let r = c.get(format!("{}{open}", f.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{open}");
    }
    f.terminate();
}

/// Guards secrets that URLs carry into stored records: every record, from any client, has
/// `user:password@` removed and secret-looking query and fragment parameters replaced with
/// `[Filtered]` (the built-in names and `[privacy] deny_url_params`), in its message and in
/// every string of its meta, before it is written: nothing of them reaches the disk.
#[tokio::test]
async fn urls_lose_credentials_and_secret_parameters_before_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let f = Faultline::start(
        dir.path(),
        None,
        &[(
            "FAULTLINE_PRIVACY_DENY_URL_PARAMS",
            "tenant, X-Shard".into(),
        )],
    );
    let secrets = [
        "hunter2", "abc123", "deadbeef", "tok.en", "k3y", "acme", "s355", "pw1", "shard9",
    ];
    let mut r = record(
        "api",
        "ERROR",
        "upstream_failed",
        "GET https://svc:hunter2@api.example/v1/cb?code=abc123&page=2&X-Amz-Signature=deadbeef \
         failed",
    );
    r["meta"] = json!({
        "url": "https://app.example/login?next=%2Fhome#access_token=tok.en&state=ok",
        "breadcrumbs": [{
            "category": "fetch",
            "message": "GET /api/items?api_key=k3y&tenant_id=acme 500",
            "data": { "url": "/api/items?sessionid=s355&x_shard=shard9" }
        }],
        "request": { "headers": { "referer": "https://x.example/?password=pw1" } },
        "harmless": "?page=2&q=keys#section",
    });
    let resp = f.post(KEY, None, json!([r])).await;
    assert_eq!(resp["accepted"], 1, "{resp}");
    let stored = f.get("/logs/recent?service=api").await["records"][0].clone();
    assert_eq!(
        stored["message"],
        "GET https://api.example/v1/cb?code=[Filtered]&page=2&X-Amz-Signature=[Filtered] failed"
    );
    let meta = &stored["meta"];
    assert_eq!(
        meta["url"],
        "https://app.example/login?next=%2Fhome#access_token=[Filtered]&state=ok"
    );
    assert_eq!(
        meta["breadcrumbs"][0]["message"],
        "GET /api/items?api_key=[Filtered]&tenant_id=[Filtered] 500"
    );
    assert_eq!(
        meta["breadcrumbs"][0]["data"]["url"],
        "/api/items?sessionid=[Filtered]&x_shard=[Filtered]"
    );
    assert_eq!(
        meta["request"]["headers"]["referer"],
        "https://x.example/?password=[Filtered]"
    );
    assert_eq!(meta["harmless"], "?page=2&q=keys#section");
    f.terminate();
    let mut on_disk = String::new();
    for entry in std::fs::read_dir(dir.path().join("segments")).unwrap() {
        on_disk += &String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(on_disk.contains("[Filtered]"), "the record is on disk");
    for secret in secrets {
        assert!(!on_disk.contains(secret), "{secret} reached the disk");
    }
}

#[tokio::test]
async fn a_public_key_writes_only_its_services_from_its_origins_and_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = server(dir.path());
    let c = client();
    let ingest = format!("{}/logs/ingest", f.base);
    let rec = |service: &str| json!([record(service, "ERROR", "e", "m")]);
    let post = |service: &str, origin: Option<&str>| {
        let mut r = c.post(&ingest).bearer_auth(PUBLIC).json(&rec(service));
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r
    };
    assert_eq!(status(post("ui", Some(ORIGIN))).await, 202);
    assert_eq!(
        status(post("api", Some(ORIGIN))).await,
        403,
        "another service"
    );
    assert_eq!(status(post("ui", Some("https://evil.example"))).await, 403);
    assert_eq!(
        status(post("ui", None)).await,
        403,
        "a public key without an origin"
    );

    // CORS: the preflight names only the configured origin.
    let preflight = |origin: &str| {
        c.request(reqwest::Method::OPTIONS, &ingest)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
    };
    let ok = preflight(ORIGIN).send().await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        ORIGIN
    );
    let evil = preflight("https://evil.example").send().await.unwrap();
    assert!(
        evil.headers().get("access-control-allow-origin").is_none(),
        "a foreign origin must get no CORS grant"
    );

    // Reading with the public key is refused, whatever the origin says.
    let read = c
        .get(format!("{}/logs/recent", f.base))
        .bearer_auth(PUBLIC)
        .header("origin", ORIGIN);
    assert_eq!(status(read).await, 403);
    f.terminate();
}

#[tokio::test]
async fn secrets_and_raw_user_ids_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let f = server(dir.path());
    let c = client();
    let raw_user = "alice.secret@example.com";
    let ingest = format!("{}/logs/ingest", f.base);
    let with_user = |service: &str| {
        let mut r = record(service, "ERROR", "login_failed", "bad password");
        r["meta"] = json!({"user": raw_user});
        r
    };
    let batch = json!([with_user("api"), {"service": "api", "level": "loud"}]);
    // Every way a key is presented, right and wrong, plus reads with the token.
    for r in [
        c.post(&ingest).bearer_auth(KEY).json(&batch),
        c.post(format!("{ingest}?key={KEY}")).json(&batch),
        c.post(&ingest).header("x-faultline-key", KEY).json(&batch),
        c.post(&ingest)
            .bearer_auth(PUBLIC)
            .header("origin", ORIGIN)
            .json(&json!([with_user("ui")])),
        c.post(&ingest).bearer_auth(format!("{KEY}x")).json(&batch),
        c.post(&ingest).bearer_auth(PUBLIC).json(&batch),
        c.get(format!("{}/logs/recent?user={raw_user}", f.base))
            .bearer_auth(ADMIN),
        c.get(format!("{}/logs/recent?key={ADMIN}", f.base)),
        c.get(format!("{}/logs/stats", f.base))
            .bearer_auth(format!("{ADMIN}x")),
    ] {
        r.send().await.unwrap();
    }
    let stored: Value = f.get("/logs/recent?service=api").await;
    let stored_user = stored["records"][0]["meta"]["user"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(stored_user, raw_user, "stored user ids are keyed");
    let metrics = c
        .get(format!("{}/metrics", f.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, log) = f.terminate();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging was on: {log}"
    );
    for (what, secret) in [
        ("admin token", ADMIN),
        ("secret key", KEY),
        ("public key", PUBLIC),
        ("salt", SALT),
        ("HMAC key", HMAC),
        ("raw user id", raw_user),
    ] {
        assert!(!log.contains(secret), "the {what} was logged:\n{log}");
        assert!(!metrics.contains(secret), "the {what} is in /metrics");
    }
}

#[tokio::test]
async fn rate_limits_are_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = Faultline::start(
        dir.path(),
        None,
        &[
            ("FAULTLINE_PUBLIC_KEY", PUBLIC.into()),
            ("FAULTLINE_CORS_ORIGINS", ORIGIN.into()),
            (
                "FAULTLINE_LIMITS_PUBLIC_KEY_RATE_RECORDS_PER_SECOND",
                "0.1".into(),
            ),
            ("FAULTLINE_LIMITS_PUBLIC_KEY_RATE_BURST", "3".into()),
        ],
    );
    let c = client();
    let ingest = format!("{}/logs/ingest", f.base);
    let three = |service: &str| {
        json!(
            (0..3)
                .map(|i| record(service, "ERROR", "e", &format!("m{i}")))
                .collect::<Vec<_>>()
        )
    };
    let public = || {
        c.post(&ingest)
            .bearer_auth(PUBLIC)
            .header("origin", ORIGIN)
            .json(&three("ui"))
    };
    assert_eq!(status(public()).await, 202, "the burst");
    let limited = public().send().await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // The public key's empty bucket is its own: the secret key still writes.
    for _ in 0..5 {
        let r = c.post(&ingest).bearer_auth(KEY).json(&three("api"));
        assert_eq!(
            status(r).await,
            202,
            "the secret key is not limited by the public one"
        );
    }
    f.terminate();
}

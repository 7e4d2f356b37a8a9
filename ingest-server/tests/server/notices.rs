//! `POST /notices`: one user's notices for their own page, with the public key. A real
//! `faultline serve` on the embedded default (the shipped `ui_user_errors` rule).

use std::time::Duration;

use faultline_schema::{anonymize_user, rekey_user};
use serde_json::{Value, json};

use crate::alerts_support::*;
use crate::common::{HMAC, SALT};

const PANEL: &str = "pk_notices_test";
const ORIGIN: &str = "http://localhost:5173";

/// POST /notices with `body` (as `text/plain`, the way the reporter sends it), the key in
/// the query and an `Origin`: (status, allowed origin, body).
async fn notices(
    server: &Faultline,
    body: &str,
    key: Option<&str>,
    origin: &str,
) -> (u16, String, Value) {
    let mut url = format!("{}/notices", server.base);
    if let Some(k) = key {
        url.push_str(&format!("?key={k}"));
    }
    let r = client()
        .post(url)
        .header("origin", origin)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let allowed = r
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, allowed, r.json().await.unwrap())
}

fn ask(user: &str) -> String {
    json!({ "user": user }).to_string()
}

/// The notice of ten errors from one user reaches that user's id only: another user (nine
/// errors) gets an empty list, the answer does not carry the stored id, and bad input is a
/// 400 that does not echo a raw id back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_answer_only_for_the_asked_user() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("FAULTLINE_PUBLIC_KEY", PANEL.to_owned()),
        ("FAULTLINE_CORS_ORIGINS", ORIGIN.to_owned()),
        // Nothing listens here: the Redis rule has no notice anyway.
        (
            "FAULTLINE_ALERTS_PROBES_REDIS_ADDRESS",
            format!("127.0.0.1:{}", free_port()),
        ),
    ];
    let server = Faultline::start(data.path(), None, &env);
    let (alice, bob) = (anonymize_user(SALT, "alice"), anonymize_user(SALT, "bob"));
    let errors = |user: &str, n: usize| {
        json!(
            (0..n)
                .map(|_| record("ui", "ERROR", "window.onerror", json!({ "user": user })))
                .collect::<Vec<_>>()
        )
    };

    // Before any error: an empty list, with CORS for the page.
    let (status, allowed, body) = notices(&server, &ask(&alice), Some(PANEL), ORIGIN).await;
    assert_eq!((status, allowed.as_str()), (200, ORIGIN), "{body}");
    assert_eq!(body, json!({ "notices": [] }));

    server.post(KEY, None, errors(&alice, 10)).await;
    server.post(KEY, None, errors(&bob, 9)).await;
    let got = eventually("alice's notice", Duration::from_secs(10), || async {
        let (_, _, body) = notices(&server, &ask(&alice), Some(PANEL), ORIGIN).await;
        (!body["notices"].as_array().unwrap().is_empty()).then_some(body)
    })
    .await;
    let list = got["notices"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{got}");
    assert_eq!(list[0]["rule"], "ui_user_errors");
    assert_eq!(list[0]["severity"], "warning");
    assert!(list[0]["since"].is_string(), "{got}");
    let message = list[0]["message"].as_str().unwrap();
    assert!(message.contains(&alice), "{message}");
    let stored = rekey_user(HMAC, &alice);
    assert!(
        !got.to_string().contains(&stored),
        "the stored id leaked: {got}"
    );
    // The dashboard's view has it under the stored id.
    assert_eq!(
        server.get("/alerts").await["notices"][0]["group"],
        format!("meta.user={stored}")
    );

    let (status, _, body) = notices(&server, &ask(&bob), Some(PANEL), ORIGIN).await;
    assert_eq!((status, body), (200, json!({ "notices": [] })));
    // A secret key may ask too (no origin needed), with JSON.
    let r = client()
        .post(format!("{}/notices", server.base))
        .bearer_auth(KEY)
        .json(&json!({ "user": alice }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["notices"].as_array().unwrap().len(), 1, "{body}");

    for (body, want) in [
        (String::new(), "body: EOF"),
        ("{}".to_owned(), "missing field `user`"),
        (ask("alice@example.com"), "not an anonymized user id"),
        (ask(&alice.to_uppercase()), "not an anonymized user id"),
        (
            json!({ "user": alice, "group": "meta.user" }).to_string(),
            "unknown field `group`",
        ),
    ] {
        let (status, _, answer) = notices(&server, &body, Some(PANEL), ORIGIN).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(want), "{body}: {error}");
        assert!(!error.contains("alice@"), "a raw id echoed: {error}");
    }
    let (status, _, _) = notices(&server, &"x".repeat(2000), Some(PANEL), ORIGIN).await;
    assert_eq!(status, 413);
    let user = ask(&alice);
    let (status, _, _) = notices(&server, &user, None, ORIGIN).await;
    assert_eq!(status, 401);
    let (status, _, _) = notices(&server, &user, Some(ADMIN), ORIGIN).await;
    assert_eq!(status, 401, "the admin token is not an ingest key");
    let (status, allowed, _) = notices(&server, &user, Some(PANEL), "http://evil.example").await;
    assert_eq!((status, allowed.as_str()), (403, ""));
    assert!(server.terminate().0.success());
}

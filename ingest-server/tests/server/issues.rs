//! Issues end to end (issue 23): grouping at ingest, the `/issues` API on both stores with
//! the same answers, restarts and concurrent writers that neither lose nor double counts,
//! status changes and regressions.

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::alerts_support::{Faultline, KEY};
use crate::common::{ADMIN, TestServer, server_with};
use crate::pg::fresh_db;

/// A file-store server, or one on a fresh PostgreSQL database.
async fn server_on(postgres: bool) -> TestServer {
    let url = if postgres {
        Some(fresh_db().await)
    } else {
        None
    };
    server_with(|c| c.database_url = url).await
}

fn now_ms() -> i64 {
    faultline_schema::Timestamp::now().unix_millis()
}

/// A minute boundary a little in the past, the same for the whole test run, so a batch
/// built twice is the same batch (a retry has the same `ts` as well as the same ids).
fn base_ms() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = now_ms() - 120_000;
        now - now % 60_000
    })
}

fn ts(ms: i64) -> String {
    faultline_schema::Timestamp::from_unix_millis(ms).to_string()
}

/// A TypeError thrown in `function` of a bundle built with `hash`, at `line`.
fn browser_error(id: u32, function: &str, hash: &str, line: u32, meta: Value) -> Value {
    let mut m = json!({
        "error_type": "TypeError",
        "stack": [
            {"function": format!("Object.{function}"), "file": format!("https://a.io/assets/index-{hash}.js?v=1"), "line": line, "column": 7},
            {"function": "Array.forEach", "file": "<anonymous>"},
            {"function": "main", "file": format!("https://a.io/assets/index-{hash}.js"), "line": 1, "column": 1},
        ],
    });
    for (k, v) in meta.as_object().cloned().unwrap_or_default() {
        m[k] = v;
    }
    json!({
        "id": format!("00000000-0000-4000-8000-{id:012}"),
        "ts": ts(base_ms() + i64::from(id)),
        "service": "api",
        "level": "ERROR",
        "event": "window.onerror",
        "message": "TypeError: cart is undefined",
        "meta": m,
    })
}

fn message_error(id: u32, message: &str, meta: Value) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{id:012}"),
        "ts": ts(base_ms() + i64::from(id)),
        "service": "api",
        "level": "ERROR",
        "event": "payment_failed",
        "message": message,
        "meta": meta,
    })
}

/// The batch every store gets: two deploys and two browsers of one error, the same message
/// from another function, templated messages, client fingerprints, a folded and a sampled-
/// looking record, and records that are not errors.
fn corpus() -> Vec<Value> {
    vec![
        browser_error(
            1,
            "renderCart",
            "3f2a9c1b",
            10,
            json!({"release": "1.0", "user": "u_0000000000000001", "environment": "prod",
            "user_agent": "Mozilla/5.0 (X11) AppleWebKit/537.36 Chrome/120.0.1 Safari/537.36", "url": "https://a.io/cart?id=1"}),
        ),
        browser_error(
            2,
            "renderCart",
            "9e8d7c6b",
            12,
            json!({"release": "1.1", "user": "u_0000000000000002", "environment": "prod",
            "user_agent": "Mozilla/5.0 (X11; rv:121.0) Gecko/20100101 Firefox/121.0", "url": "https://a.io/cart?id=2", "count": 3}),
        ),
        browser_error(
            3,
            "renderCheckout",
            "3f2a9c1b",
            10,
            json!({"release": "1.0", "user": "u_0000000000000001"}),
        ),
        message_error(
            4,
            "payment 4013 failed for user 7",
            json!({"user": "u_0000000000000003"}),
        ),
        message_error(
            5,
            "payment 4026 failed for user 8",
            json!({"user": "u_0000000000000003", "issue": "ignored-by-server"}),
        ),
        message_error(6, "refund 77 failed", json!({})),
        message_error(
            7,
            "card declined",
            json!({"fingerprint": ["payments", "declined"]}),
        ),
        message_error(
            8,
            "card expired",
            json!({"fingerprint": ["payments", "declined"]}),
        ),
        message_error(
            9,
            "payment 1 failed for user 2",
            json!({"fingerprint": ["{{ default }}", "acme"]}),
        ),
        json!({"id": "00000000-0000-4000-8000-000000000010", "ts": ts(base_ms() + 10), "service": "api", "level": "INFO",
               "event": "started", "message": "hello", "issue": "0123456789abcdef"}),
        json!({"id": "00000000-0000-4000-8000-000000000011", "ts": ts(base_ms() + 11), "service": "worker", "level": "WARNING",
               "event": "job", "message": "retrying", "meta": {"error_type": "Timeout"}}),
    ]
}

async fn post_admin(s: &TestServer, method: &str, path: &str, body: Value) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, body) = s.send(req).await;
    (status, body)
}

/// What two stores must agree on: each issue's aggregate, less the store's own clock.
fn comparable(page: &Value) -> Vec<Value> {
    page["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let mut i = i.clone();
            let o = i.as_object_mut().unwrap();
            for clock in ["created_at", "status_changed_at", "regressed_at"] {
                o.remove(clock);
            }
            i
        })
        .collect()
}

async fn all_issues(s: &TestServer) -> Value {
    let (status, page) = s.get("/issues?status=all&sort=count&limit=100").await;
    assert_eq!(status, 200, "{page}");
    page
}

/// Guards the contract of issue 23 on both stores: grouping (deploys, browsers, templates,
/// client fingerprints), counts, users, releases, hourly counts, the latest event and top
/// values, `/logs/recent?issue=`, statuses, regression, paging and errors, with the same
/// answers from the file store and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_issue_api_answers_the_same_on_both_stores() {
    let mut answers = Vec::new();
    for postgres in [false, true] {
        let s = server_on(postgres).await;
        let (status, body) = s.ingest(Value::Array(corpus()).to_string()).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["accepted"], 11, "{body}");
        // A retried batch counts nothing.
        let (_, body) = s.ingest(Value::Array(corpus()).to_string()).await;
        assert_eq!(body["duplicates"], 11, "{body}");

        let page = all_issues(&s).await;
        let issues = page["issues"].as_array().unwrap();
        let by_title: BTreeMap<String, &Value> = issues
            .iter()
            .map(|i| (i["title"].as_str().unwrap().to_owned(), i))
            .collect();
        // renderCart (two deploys, two browsers), renderCheckout, the payment template,
        // refund, the client's payments/declined, acme, and the worker's Timeout.
        assert_eq!(issues.len(), 7, "{page:#}");
        let cart = issues
            .iter()
            .find(|i| i["culprit"].as_str().unwrap().contains("renderCart"))
            .unwrap();
        assert_eq!(cart["count"], 4, "1 + a folded record of 3: {cart}");
        assert_eq!(cart["users"], 2);
        assert_eq!(cart["title"], "TypeError: cart is undefined");
        assert_eq!(cart["culprit"], "Object.renderCart (/assets/index.js)");
        assert_eq!(cart["error_type"], "TypeError");
        assert_eq!(cart["level"], "ERROR");
        assert_eq!(cart["status"], "unresolved");
        assert_eq!(cart["release_first"], "1.0");
        assert_eq!(cart["release_last"], "1.1");
        assert_eq!(cart["service"], "api");
        assert_eq!(cart["hourly_24h"].as_array().unwrap().len(), 24);
        assert_eq!(
            cart["hourly_24h"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>(),
            4
        );
        let payment = by_title["payment 4013 failed for user 7"];
        assert_eq!(
            (payment["count"].as_u64(), payment["users"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(
            by_title["card declined"]["count"], 2,
            "one client fingerprint"
        );
        assert_eq!(by_title["Timeout: retrying"]["level"], "WARNING");
        assert!(
            !by_title.contains_key("hello"),
            "INFO without error_type is no issue"
        );
        // The default list is the unresolved ones, newest first.
        let (_, unresolved) = s.get("/issues").await;
        assert_eq!(unresolved["issues"].as_array().unwrap().len(), 7);

        // Every stored error record carries its issue, and only error records do.
        let id = cart["id"].as_str().unwrap().to_owned();
        let events = s.recent(&format!("issue={id}")).await;
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|r| r["issue"] == id.as_str()));
        let hello = s.recent("event=started").await;
        assert_eq!(hello[0].get("issue"), None, "{hello:?}");
        let faked = s.recent("event=payment_failed&q=4026").await;
        assert_eq!(
            faked[0]["issue"], payment["id"],
            "a client's issue is replaced"
        );

        // One issue: hourly counts over 14 days, the latest event, the top values.
        let (status, one) = s.get(&format!("/issues/{id}")).await;
        assert_eq!(status, 200, "{one}");
        let hourly = one["hourly"].as_array().unwrap();
        assert_eq!(hourly.len(), 14 * 24);
        assert_eq!(
            hourly
                .iter()
                .map(|h| h["count"].as_u64().unwrap())
                .sum::<u64>(),
            4
        );
        assert_eq!(
            one["latest_event"]["id"],
            "00000000-0000-4000-8000-000000000002"
        );
        assert_eq!(
            one["tags"]["release"][0],
            json!({"value": "1.1", "count": 3})
        );
        assert_eq!(
            one["tags"]["environment"][0],
            json!({"value": "prod", "count": 4})
        );
        let browsers: Vec<&str> = one["tags"]["browser"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["value"].as_str().unwrap())
            .collect();
        assert_eq!(browsers, ["Firefox 121", "Chrome 120"]);
        assert_eq!(one["tags"]["url"][0], json!({"value": "/cart", "count": 4}));

        // Statuses: resolve, then an event reopens it as a regression in its release.
        let (status, resolved) = post_admin(
            &s,
            "PUT",
            &format!("/issues/{id}"),
            json!({"status": "resolved"}),
        )
        .await;
        assert_eq!(status, 200, "{resolved}");
        assert_eq!(resolved["status"], "resolved");
        let (_, unresolved) = s.get("/issues").await;
        assert_eq!(unresolved["issues"].as_array().unwrap().len(), 6);
        let (_, only_resolved) = s.get("/issues?status=resolved").await;
        assert_eq!(only_resolved["issues"][0]["id"], id.as_str());
        let again = browser_error(12, "renderCart", "77aa88bb", 99, json!({"release": "1.2"}));
        let (status, _) = s.ingest(json!([again]).to_string()).await;
        assert_eq!(status, 202);
        let (_, one) = s.get(&format!("/issues/{id}")).await;
        assert_eq!(one["status"], "unresolved");
        assert_eq!(one["regressed_in"], "1.2");
        assert!(one["regressed_at"].is_string(), "{one}");
        assert_eq!(one["count"], 5);
        // Ignored stays ignored.
        let (status, _) = post_admin(
            &s,
            "PUT",
            &format!("/issues/{id}"),
            json!({"status": "ignored"}),
        )
        .await;
        assert_eq!(status, 200);
        let later = browser_error(13, "renderCart", "77aa88bb", 99, json!({}));
        s.ingest(json!([later]).to_string()).await;
        let (_, one) = s.get(&format!("/issues/{id}")).await;
        assert_eq!(
            (one["status"].as_str(), one["count"].as_u64()),
            (Some("ignored"), Some(6))
        );

        // Paging by cursor visits every issue once.
        let mut seen = Vec::new();
        let mut path = "/issues?status=all&limit=2&sort=last_seen".to_owned();
        loop {
            let (status, page) = s.get(&path).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(
                page["issues"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].clone()),
            );
            match page["next"].as_str() {
                Some(next) => {
                    path = format!("/issues?status=all&limit=2&sort=last_seen&cursor={next}")
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        seen.sort_by_key(Value::to_string);
        seen.dedup();
        assert_eq!(seen.len(), 7);

        // Errors say what was wrong.
        for bad in [
            "/issues?status=open",
            "/issues?sort=newest",
            "/issues?limit=0",
            "/issues?cursor=zzz",
            "/issues?since=yesterday",
            "/issues?color=red",
            "/issues/NOT-AN-ID",
            "/logs/recent?issue=x",
        ] {
            let (status, body) = s.get(bad).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body["error"].is_string(), "{bad}: {body}");
        }
        let (status, body) = s.get("/issues/0123456789abcdef").await;
        assert_eq!(status, 404, "{body}");
        let (status, _) = post_admin(
            &s,
            "PUT",
            "/issues/0123456789abcdef",
            json!({"status": "resolved"}),
        )
        .await;
        assert_eq!(status, 404);
        let (status, body) = post_admin(
            &s,
            "PUT",
            &format!("/issues/{id}"),
            json!({"status": "fixed"}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let req = Request::get("/issues").body(Body::empty()).unwrap();
        assert_eq!(s.send(req).await.0, 401, "the admin token is required");

        answers.push(comparable(&all_issues(&s).await));
    }
    assert_eq!(answers[0], answers[1], "file store and PostgreSQL agree");
}

/// Words that make distinct message templates (a digit would be a placeholder).
const KINDS: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

/// `count` and `users` of every issue on a process's `/issues`, by the kind in its title.
async fn counts(node: &Faultline) -> BTreeMap<String, (u64, u64)> {
    let page = node.get("/issues?status=all&limit=500").await;
    page["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let title = i["title"].as_str().unwrap();
            (
                title.split(' ').nth(1).unwrap_or(title).to_owned(),
                (i["count"].as_u64().unwrap(), i["users"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// `batches` batches of 50 error records over the first `kinds` of [`KINDS`] and 40 users;
/// record ids come from `seed`, so a second call with the same seed is a retry.
fn load(seed: u32, batches: u32, kinds: u32) -> Vec<Value> {
    (0..batches)
        .map(|b| {
            Value::Array(
                (0..50)
                    .map(|i| {
                        let n = b * 50 + i;
                        json!({
                            "id": format!("00000000-0000-4000-{seed:04}-{n:012}"),
                            "ts": ts(base_ms() + i64::from(n)),
                            "service": "api",
                            "level": "ERROR",
                            "event": "load",
                            "message": format!("failure {} {n}", KINDS[(n % kinds) as usize]),
                            "meta": {"user": format!("u_{:016x}", n % 40)},
                        })
                    })
                    .collect(),
            )
        })
        .collect()
}

/// What [`counts`] must say after `load(_, batches, kinds)`.
fn expected(batches: u32, kinds: u32) -> BTreeMap<String, (u64, u64)> {
    let mut want: BTreeMap<String, (u64, std::collections::BTreeSet<u32>)> = BTreeMap::new();
    for n in 0..batches * 50 {
        let e = want
            .entry(KINDS[(n % kinds) as usize].to_owned())
            .or_default();
        e.0 += 1;
        e.1.insert(n % 40);
    }
    want.into_iter()
        .map(|(k, (c, u))| (k, (c, u.len() as u64)))
        .collect()
}

/// `PUT /issues/{id}` with `status` on a process; it must succeed.
async fn set_status(node: &Faultline, id: &str, status: &str) {
    let r = crate::process::client()
        .put(format!("{}/issues/{id}", node.base))
        .bearer_auth(ADMIN)
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "PUT /issues/{id} {status}");
}

async fn post_all(node: &Faultline, batches: Vec<Value>) {
    for b in batches {
        node.post(KEY, None, b).await;
    }
}

/// Guards the shared store (issue 23): two nodes on one PostgreSQL ingest into the same
/// issues at once, each batch also retried through the other node, and every count and user
/// count is exact; a restart of both nodes changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_count_each_event_once() {
    let url = fresh_db().await;
    let env = [("DATABASE_URL", url.clone())];
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Faultline::start(d1.path(), None, &env);
    let b = Faultline::start(d2.path(), None, &env);
    let (issues, batches) = (7, 24);
    let work = load(1, batches, issues);
    let (first, second): (Vec<_>, Vec<_>) = work
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, Value)>| v.into_iter().map(|(_, b)| b).collect::<Vec<_>>();
    let (first, second) = (strip(first), strip(second));
    tokio::join!(
        post_all(&a, first.clone()),
        post_all(&b, second.clone()),
        post_all(&b, first),
        post_all(&a, second),
    );
    let want = expected(batches, issues);
    assert_eq!(counts(&a).await, want);
    assert_eq!(counts(&b).await, want, "both nodes read the same issues");

    a.terminate();
    b.kill9();
    let a = Faultline::start(d1.path(), None, &env);
    assert_eq!(counts(&a).await, want, "after a restart");
    a.terminate();
}

/// Guards the file store's persistence (issue 23): counts and statuses survive a clean stop
/// and a `kill -9` right after writes, never doubled; a retried batch counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_issues_survive_restarts_and_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (issues, batches) = (5, 10);
    let node = Faultline::start(dir.path(), None, &[]);
    post_all(&node, load(2, batches, issues)).await;
    let want = expected(batches, issues);
    assert_eq!(counts(&node).await, want);
    let some_id = node.get("/issues?limit=1").await["issues"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    set_status(&node, &some_id, "ignored").await;
    node.terminate();

    let node = Faultline::start(dir.path(), None, &[]);
    assert_eq!(counts(&node).await, want, "clean restart");
    // More events and a retry, then a crash before any snapshot could follow them.
    post_all(&node, load(3, 4, issues)).await;
    post_all(&node, load(3, 4, issues)).await;
    node.kill9();
    let node = Faultline::start(dir.path(), None, &[]);
    let mut want = expected(batches, issues);
    for (k, (c, _)) in expected(4, issues) {
        want.get_mut(&k).unwrap().0 += c;
    }
    assert_eq!(counts(&node).await, want, "after kill -9");
    let one = node.get(&format!("/issues/{some_id}")).await;
    assert_eq!(one["status"], "ignored", "the status survived");
    node.terminate();
    assert!(Path::new(&dir.path().join("issues.json")).exists());
}

/// A ui error of type `error_type` with `message`, stamped now.
fn ui_error(level: &str, error_type: &str, message: &str) -> Value {
    let mut r = crate::alerts_support::record(
        "ui",
        level,
        "window.onerror",
        json!({"error_type": error_type}),
    );
    r["message"] = message.into();
    r
}

/// The firing notifications a receiver route got.
fn firings(capture: &crate::alerts_support::Capture, route: &str) -> Vec<Value> {
    capture
        .hits(route)
        .into_iter()
        .map(|h| h.body)
        .filter(|b| b["event"] == "firing")
        .collect()
}

/// Guards the alert kinds of issue 23 end to end, on both stores, with a real webhook
/// receiver: `new_issue` fires once per new issue of its service and level (not for another
/// service, a lower level or the issue's later events), with the issue and its title as
/// labels, and resolves after its window; `regression` fires when an event reopens a
/// resolved issue of its service only; `issue` works as a threshold rule's `group_by`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_issue_and_regression_alerts_reach_a_webhook() {
    use crate::alerts_support::{Capture, eventually, write_config};
    use std::time::Duration;
    for postgres in [false, true] {
        let capture = Capture::start().await;
        let (data, conf) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let config = write_config(
            conf.path(),
            &format!(
                r#"
[alerts.channels.new]
kind = "webhook"
url = "{}"

[alerts.channels.back]
kind = "webhook"
url = "{}"

[alerts.channels.hot]
kind = "webhook"
url = "{}"

[alerts.rules.new_ui]
kind = "new_issue"
filter = {{ service = "ui", level = "ERROR" }}
window = "3s"
actions = ["new"]

[alerts.rules.back_ui]
kind = "regression"
filter = {{ service = "ui" }}
window = "3s"
actions = ["back"]

[alerts.rules.hot_issue]
kind = "threshold"
filter = {{ service = "ui" }}
group_by = "issue"
window = "1m"
threshold = 3
actions = [{{ channel = "hot", on = ["firing"] }}]
"#,
                capture.url("new"),
                capture.url("back"),
                capture.url("hot")
            ),
        );
        let env = match postgres {
            true => vec![("DATABASE_URL", fresh_db().await)],
            false => Vec::new(),
        };
        let node = Faultline::start(data.path(), Some(&config), &env);
        let store = if postgres { "PostgreSQL" } else { "file store" };
        let cart = || ui_error("ERROR", "TypeError", "cart 17 is undefined");
        node.post(
            KEY,
            None,
            json!([
                cart(),
                ui_error("ERROR", "TypeError", "cart 18 is undefined"),
                ui_error("ERROR", "RangeError", "invalid page size"),
                ui_error("WARNING", "Timeout", "slow render"),
                crate::alerts_support::record("api", "ERROR", "db_failed", json!({})),
            ]),
        )
        .await;
        let ids: BTreeMap<String, String> = node.get("/issues?status=all&limit=10").await["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["title"].as_str().unwrap().to_owned(),
                    i["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(ids.len(), 4, "{store}: {ids:?}");
        let (cart_id, range_id) = (
            &ids["TypeError: cart 17 is undefined"],
            &ids["RangeError: invalid page size"],
        );

        capture.wait_for("new", 2, Duration::from_secs(10)).await;
        let mut new: Vec<(String, String)> = firings(&capture, "new")
            .iter()
            .map(|b| {
                assert_eq!(
                    (&b["rule"], &b["kind"]),
                    (&json!("new_ui"), &json!("new_issue")),
                    "{b}"
                );
                (
                    b["labels"]["issue"].as_str().unwrap().to_owned(),
                    b["labels"]["title"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        new.sort();
        let mut want = vec![
            (
                cart_id.clone(),
                "TypeError: cart 17 is undefined".to_owned(),
            ),
            (range_id.clone(), "RangeError: invalid page size".to_owned()),
        ];
        want.sort();
        assert_eq!(new, want, "{store}: one firing per new ui ERROR issue");

        // A third event of the cart issue: no new issue, but the per-issue threshold fires.
        node.post(KEY, None, json!([cart()])).await;
        let hot = capture.wait_for("hot", 1, Duration::from_secs(10)).await;
        assert_eq!(
            hot[0].body["labels"]["issue"],
            cart_id.as_str(),
            "{store}: {:?}",
            hot[0].body
        );
        assert_eq!(hot[0].body["value"], 3);

        // Resolve the cart issue and the api one; an event on each reopens both, and only the
        // ui one is a regression the rule reports.
        let api_id = ids
            .iter()
            .find(|(t, _)| t.starts_with("db_failed"))
            .map(|(_, i)| i.clone())
            .unwrap();
        for id in [cart_id, &api_id] {
            set_status(&node, id, "resolved").await;
        }
        node.post(
            KEY,
            None,
            json!([
                cart(),
                crate::alerts_support::record("api", "ERROR", "db_failed", json!({}))
            ]),
        )
        .await;
        let back = capture.wait_for("back", 1, Duration::from_secs(10)).await;
        assert_eq!(back[0].body["event"], "firing");
        assert_eq!(back[0].body["kind"], "regression");
        assert_eq!(back[0].body["labels"]["issue"], cart_id.as_str(), "{store}");
        let one = node.get(&format!("/issues/{api_id}")).await;
        assert_eq!(
            one["status"], "unresolved",
            "{store}: the api issue reopened too: {one}"
        );

        // Each alert resolves once its window passes; nothing else arrives.
        let back = capture.wait_for("back", 2, Duration::from_secs(15)).await;
        assert_eq!(back[1].body["event"], "resolved", "{store}");
        eventually(
            "the new_issue alerts resolve",
            Duration::from_secs(15),
            || async { (capture.hits("new").len() >= 4).then_some(()) },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            firings(&capture, "new").len(),
            2,
            "{store}: no other new issue"
        );
        assert_eq!(capture.hits("new").len(), 4, "{store}");
        assert_eq!(
            capture.hits("back").len(),
            2,
            "{store}: only the ui regression"
        );
        assert_eq!(capture.hits("hot").len(), 1, "{store}");
        node.terminate();
    }
}

/// Guards `[issues] retention` on both stores (issue 23): at the store's retention pass (on
/// start, then periodically) an issue whose last event is older than the retention is
/// forgotten, so its fingerprint starts a new issue, while a younger resolved issue is kept
/// and its next event is a regression, not a new issue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issues_past_retention_are_forgotten_and_younger_ones_regress() {
    for postgres in [false, true] {
        let store = if postgres { "PostgreSQL" } else { "file store" };
        let data = tempfile::tempdir().unwrap();
        let mut env = vec![("FAULTLINE_ISSUES_RETENTION", "1h".to_owned())];
        if postgres {
            env.push(("DATABASE_URL", fresh_db().await));
        }
        let at = |ago_ms: i64, message: &str| {
            let mut r = crate::alerts_support::record("api", "ERROR", "job_failed", json!({}));
            r["ts"] = ts(now_ms() - ago_ms).into();
            r["message"] = message.into();
            r
        };
        let node = Faultline::start(data.path(), None, &env);
        node.post(
            KEY,
            None,
            json!([
                at(2 * 3_600_000, "stale failure"),
                at(1_800_000, "recent failure")
            ]),
        )
        .await;
        let id = |title: &str| {
            let title = title.to_owned();
            let node = &node;
            async move {
                let page = node.get("/issues?status=all").await;
                page["issues"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["title"] == title.as_str())
                    .map(|i| i["id"].as_str().unwrap().to_owned())
            }
        };
        let stale = id("stale failure")
            .await
            .expect("the stale issue exists before a pass");
        let recent = id("recent failure").await.unwrap();
        set_status(&node, &recent, "resolved").await;
        node.terminate();

        // The start's retention pass forgets the stale issue only.
        let node = Faultline::start(data.path(), None, &env);
        let r = crate::process::client()
            .get(format!("{}/issues/{stale}", node.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{store}: the stale issue is gone");
        let one = node.get(&format!("/issues/{recent}")).await;
        assert_eq!(one["status"], "resolved", "{store}: {one}");
        node.post(
            KEY,
            None,
            json!([at(0, "stale failure"), at(0, "recent failure")]),
        )
        .await;
        let again = node.get(&format!("/issues/{stale}")).await;
        assert_eq!(
            (
                again["count"].as_u64(),
                again["status"].as_str(),
                again["regressed_at"].is_null()
            ),
            (Some(1), Some("unresolved"), true),
            "{store}: a new issue under the same id: {again}"
        );
        let one = node.get(&format!("/issues/{recent}")).await;
        assert_eq!(
            (
                one["count"].as_u64(),
                one["status"].as_str(),
                one["regressed_at"].is_string()
            ),
            (Some(2), Some("unresolved"), true),
            "{store}: the kept issue regressed: {one}"
        );
        node.terminate();
    }
}

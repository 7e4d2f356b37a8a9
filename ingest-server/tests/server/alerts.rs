#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Alerts end to end: the real `faultline` binary, real receivers on loopback (HTTP for
//! Slack, PagerDuty and webhooks; `aiosmtpd` for email; `redis-server` for the probe).

use std::time::{Duration, Instant};

use faultline_schema::anonymize_user;
use serde_json::{Value, json};

use crate::alerts_support::*;
use crate::common::SALT;

const SLACK_SECRET: &str = "T0001/B0001/slackS3cretPath";
const ROUTING_KEY: &str = "pdRoutingKeyS3cret";
const BACKEND: &str = "sk_backend_from_env";
const PANEL: &str = "pk_panel_dev";
const ORIGIN: &str = "http://localhost:5173";

fn example_config() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../faultline.example.toml")
}

/// The environment that points the shipped example's channels at this test's receivers,
/// and shortens its windows and probe interval so the test takes seconds.
fn example_env(capture: &Capture, smtp: &Smtp, redis_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("FAULTLINE_BACKEND_KEY", BACKEND.to_owned()),
        (
            "FAULTLINE_SLACK_WEBHOOK_URL",
            capture.url(&format!("slack/{SLACK_SECRET}")),
        ),
        ("FAULTLINE_PAGERDUTY_ROUTING_KEY", ROUTING_KEY.to_owned()),
        (
            "FAULTLINE_ALERTS_CHANNELS_PAGERDUTY_URL",
            capture.url("pagerduty/v2/enqueue"),
        ),
        (
            "FAULTLINE_ALERTS_CHANNELS_SUPPORT_EMAIL_SMTP_PORT",
            smtp.port.to_string(),
        ),
        (
            "FAULTLINE_ALERTS_CHANNELS_SUPPORT_EMAIL_SMTP_HOST",
            "127.0.0.1".to_owned(),
        ),
        (
            "FAULTLINE_WORKER_RESTART_URL",
            capture.url("restart/worker"),
        ),
        (
            "FAULTLINE_ALERTS_CHANNELS_APP_STOP_URL",
            capture.url("control/stop"),
        ),
        (
            "FAULTLINE_ALERTS_PROBES_REDIS_ADDRESS",
            format!("127.0.0.1:{redis_port}"),
        ),
        ("FAULTLINE_ALERTS_PROBES_REDIS_INTERVAL", "250ms".to_owned()),
        ("FAULTLINE_ALERTS_RULES_API_ERRORS_WINDOW", "3s".to_owned()),
        (
            "FAULTLINE_ALERTS_RULES_UI_USER_ERRORS_WINDOW",
            "4s".to_owned(),
        ),
    ]
}

pub(crate) fn errors(service: &str, n: usize) -> Value {
    json!(
        (0..n)
            .map(|_| record(service, "ERROR", "request_failed", json!({})))
            .collect::<Vec<_>>()
    )
}

fn text(hit: &Hit) -> String {
    hit.body["text"].as_str().unwrap_or_default().to_owned()
}

/// Issue 5's four shipped rules, exactly as written in faultline.example.toml (only the
/// receivers' addresses, two windows and the probe interval changed, by environment):
/// each fires once, notifies once, and resolves once. The fifth shipped rule, issue 23's
/// `new_ui_issue`, posts the ui errors' one new issue to Slack once, firing only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_shipped_rules_fire_notify_and_resolve_once() {
    let capture = Capture::start().await;
    let smtp = Smtp::start(None);
    let mut redis = Redis::start(free_port());
    let data = tempfile::tempdir().unwrap();
    let env = example_env(&capture, &smtp, redis.port);
    let server = Faultline::start(data.path(), Some(&example_config()), &env);

    eventually(
        "the redis probe passes",
        Duration::from_secs(20),
        || async {
            let alerts = server.get("/alerts").await;
            (alerts["probes"][0]["status"] == "ok").then_some(())
        },
    )
    .await;
    assert_eq!(server.rule("redis_down").await["status"], "ok");

    // 1. API: five ERROR from api within a minute -> Slack, and a failed system check.
    server.post(BACKEND, None, errors("api", 4)).await;
    server
        .post(
            BACKEND,
            None,
            json!([record("api", "WARNING", "slow", json!({}))]),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        capture.hits("slack").is_empty(),
        "4 ERROR: one below the threshold"
    );
    let sent = Instant::now();
    server.post(BACKEND, None, errors("api", 1)).await;
    let slack = capture.wait_for("slack", 1, Duration::from_secs(5)).await;
    eprintln!("api_errors: record to Slack in {:?}", slack[0].at - sent);
    assert!(
        text(&slack[0]).starts_with("[FIRING] api_errors (error): 5 ERROR+ records from api"),
        "{}",
        text(&slack[0])
    );
    let checks = server.get("/system/checks/latest").await;
    let check = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api_errors")
        .cloned()
        .unwrap();
    assert_eq!(check["status"], "failed", "{checks}");
    let slack = capture.wait_for("slack", 2, Duration::from_secs(10)).await;
    assert!(
        text(&slack[1]).starts_with("[RESOLVED] api_errors"),
        "{}",
        text(&slack[1])
    );

    // 2. Worker: behavior_engine exceptions in 3 consecutive cycles -> restart webhook and a
    //    low-urgency page; resolved once a clean cycle is over.
    for cycle in 1..=3 {
        server
            .post(
                BACKEND,
                None,
                json!([
                    record("worker", "INFO", "cycle_started", json!({ "cycle": cycle })),
                    record(
                        "worker",
                        "ERROR",
                        "behavior_engine",
                        json!({ "cycle": cycle })
                    ),
                ]),
            )
            .await;
        if cycle < 3 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(capture.hits("restart").is_empty(), "{cycle} bad cycles");
        }
    }
    let restart = capture.wait_for("restart", 1, Duration::from_secs(5)).await;
    assert_eq!(restart[0].body["rule"], "worker_behavior_engine");
    assert_eq!(restart[0].body["event"], "firing");
    let pd = capture
        .wait_for("pagerduty", 1, Duration::from_secs(5))
        .await;
    assert_eq!(pd[0].body["event_action"], "trigger");
    assert_eq!(pd[0].body["routing_key"], ROUTING_KEY);
    assert_eq!(pd[0].body["payload"]["severity"], "warning");
    for cycle in [4, 5] {
        server
            .post(
                BACKEND,
                None,
                json!([record(
                    "worker",
                    "INFO",
                    "cycle_started",
                    json!({ "cycle": cycle })
                )]),
            )
            .await;
    }
    let pd = capture
        .wait_for("pagerduty", 2, Duration::from_secs(5))
        .await;
    assert_eq!(pd[1].body["event_action"], "resolve");
    assert_eq!(pd[1].body["dedup_key"], pd[0].body["dedup_key"]);

    // 3. UI: ten error reports from one anonymized user within 10 minutes -> an email to
    //    support and a notice for the dashboard. Nine from another user: nothing.
    let alice = anonymize_user(SALT, "alice");
    let bob = anonymize_user(SALT, "bob");
    let ui = |user: &str, n: usize| {
        json!(
            (0..n)
                .map(|_| record("ui", "ERROR", "window.onerror", json!({ "user": user })))
                .collect::<Vec<_>>()
        )
    };
    server.post(PANEL, Some(ORIGIN), ui(&alice, 9)).await;
    server.post(PANEL, Some(ORIGIN), ui(&bob, 9)).await;
    // The ui's first error is a new issue: one Slack message (the 18 share a fingerprint).
    let slack = capture.wait_for("slack", 3, Duration::from_secs(5)).await;
    assert!(
        text(&slack[2]).starts_with("[FIRING] new_ui_issue"),
        "{}",
        text(&slack[2])
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty());
    server.post(PANEL, Some(ORIGIN), ui(&alice, 1)).await;
    let mail = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mail[0]["to"], json!(["support@localhost"]));
    let data0 = mail[0]["data"].as_str().unwrap();
    assert!(
        data0.contains("Subject: [FIRING] ui_user_errors"),
        "{data0}"
    );
    assert!(data0.contains("10 error reports from one user"), "{data0}");
    let alerts = server.get("/alerts").await;
    let notices = alerts["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{alerts}");
    assert_eq!(notices[0]["rule"], "ui_user_errors");
    let mail = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        mail[1]["data"]
            .as_str()
            .unwrap()
            .contains("Subject: [RESOLVED] ui_user_errors")
    );
    assert!(
        server.get("/alerts").await["notices"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // 4. Redis: the probe fails -> POST control/stop and a high-urgency page; resolved when
    //    Redis is back.
    redis.stop();
    let stop = capture
        .wait_for("control", 1, Duration::from_secs(10))
        .await;
    assert_eq!(stop[0].body["rule"], "redis_down");
    let pd = capture
        .wait_for("pagerduty", 3, Duration::from_secs(5))
        .await;
    assert_eq!(pd[2].body["event_action"], "trigger");
    assert_eq!(pd[2].body["payload"]["severity"], "critical");
    let redis = Redis::start(redis.port);
    let pd = capture
        .wait_for("pagerduty", 4, Duration::from_secs(10))
        .await;
    assert_eq!(pd[3].body["event_action"], "resolve");
    assert_eq!(pd[3].body["dedup_key"], pd[2].body["dedup_key"]);

    // Once each, and nothing else: let any stray notification arrive, then count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        capture.hits("slack").len(),
        3,
        "Slack: API fired and resolved, one new ui issue (no resolve)"
    );
    assert_eq!(
        capture.hits("pagerduty").len(),
        4,
        "PagerDuty: worker and Redis, each trigger and resolve"
    );
    assert_eq!(
        capture.hits("restart").len(),
        1,
        "restart once, not on resolve"
    );
    assert_eq!(
        capture.hits("control").len(),
        1,
        "control/stop once, not on resolve"
    );
    assert_eq!(smtp.messages().len(), 2, "email: fired and resolved");

    // Every delivery is recorded and shown.
    let rule = server.rule("api_errors").await;
    let deliveries = rule["deliveries"].as_array().unwrap();
    let sent: Vec<(&str, &str, &str)> = deliveries
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap(),
                d["event"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [
        ("ops_slack", "firing", "sent"),
        ("ops_slack", "resolved", "sent"),
        ("system_check", "firing", "sent"),
        ("system_check", "resolved", "sent"),
    ] {
        assert!(sent.contains(&want), "{want:?} in {sent:?}");
    }

    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(!log.contains("slackS3cret"), "the Slack URL was logged");
    assert!(!log.contains(ROUTING_KEY), "the routing key was logged");
    drop(redis);
}

pub(crate) fn restart_config(capture: &Capture, window: &str) -> String {
    format!(
        r#"
[alerts.channels.hook]
kind = "webhook"
url = "{}"

[alerts.rules.api_errors]
kind = "threshold"
filter = {{ service = "api", level = "ERROR" }}
window = "{window}"
threshold = 3
actions = ["hook"]
"#,
        capture.url("hook")
    )
}

/// Guards the persisted state: a restart (graceful or `kill -9`) while an alert fires
/// sends no second page, and the resolve still comes, also when the condition ended while
/// the server was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_while_firing_sends_no_second_notification_and_still_resolves() {
    let capture = Capture::start().await;
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(conf.path(), &restart_config(&capture, "10s"));
    restart_while_firing(&capture, || {
        (Faultline::start(data.path(), Some(&config), &[]), None)
    })
    .await;
}

/// The restart-while-firing scenario over `restart_config(capture, "10s")`, with every
/// server from `start` (and the data dir it must outlive, if any). Rule `api_errors` fires
/// and notifies once; a graceful restart and a `kill -9` inside the window bring no second
/// page, and the resolve comes; then it fires again, the server is killed, and the resolve
/// still comes after the window passed while it was down.
pub(crate) async fn restart_while_firing(
    capture: &Capture,
    start: impl Fn() -> (Faultline, Option<tempfile::TempDir>),
) {
    let (server, _dir) = start();
    let fired_at = Instant::now();
    server.post(KEY, None, errors("api", 3)).await;
    capture.wait_for("hook", 1, Duration::from_secs(5)).await;

    // Graceful restart, still inside the window: the counts come back from the store.
    assert!(server.terminate().0.success());
    let (server, _dir) = start();
    let rule = server.rule("api_errors").await;
    assert_eq!(rule["status"], "firing", "{rule}");
    assert_eq!(rule["groups"][0]["current"]["value"], 3, "{rule}");
    // Crash, still inside the window.
    server.kill9();
    let (server, _dir) = start();
    let rule = server.rule("api_errors").await;
    assert_eq!(rule["status"], "firing", "{rule}");
    // Owed notifications leave right after start; give a wrong one the time to arrive.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        capture.hits("hook").len(),
        1,
        "no second firing notification after restarts"
    );
    assert!(
        fired_at.elapsed() < Duration::from_secs(8),
        "the test ran too slowly to prove anything"
    );
    let hits = capture.wait_for("hook", 2, Duration::from_secs(15)).await;
    assert_eq!(hits[1].body["event"], "resolved");

    // Fire again, crash, and let the window pass while the server is down.
    server.post(KEY, None, errors("api", 3)).await;
    let hits = capture.wait_for("hook", 3, Duration::from_secs(5)).await;
    assert_eq!(hits[2].body["event"], "firing");
    // Delivered and persisted as delivered (a crash between the receiver's answer and that
    // write sends it again: at least once).
    eventually(
        "the delivery is persisted",
        Duration::from_secs(5),
        || async {
            let rule = server.rule("api_errors").await;
            rule["groups"][0]["owed"].is_null().then_some(())
        },
    )
    .await;
    server.kill9();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (server, _dir) = start();
    let hits = capture.wait_for("hook", 4, Duration::from_secs(5)).await;
    assert_eq!(hits[3].body["event"], "resolved", "the resolve is not lost");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = capture.hits("hook");
    assert_eq!(
        hits.len(),
        4,
        "{:#?}",
        hits.iter().map(|h| h.body.clone()).collect::<Vec<_>>()
    );
    assert!(server.terminate().0.success());
}

/// A notification that fails (the receiver is down) is retried with backoff, and its
/// outcome is recorded either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_and_recorded() {
    let capture = Capture::start().await;
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(
        conf.path(),
        &format!(
            r#"
[alerts.channels.hook]
kind = "webhook"
url = "{}"
bearer_token_env = "HOOK_TOKEN"
backoff = "100ms"

[alerts.channels.hook2]
kind = "webhook"
url = "{}"
retries = 1
backoff = "100ms"

[alerts.rules.api_errors]
kind = "threshold"
filter = {{ service = "api", level = "ERROR" }}
window = "1m"
threshold = 3
actions = ["hook", "hook2"]
"#,
            capture.url("hook"),
            capture.url("other")
        ),
    );
    // Five 503s, whichever channel asks: hook2 (2 attempts) fails; hook (default: 3
    // retries) gets its third retry through, since its backoff doubles.
    capture.fail_next(&[503, 503, 503, 503, 503]);
    let env = [("HOOK_TOKEN", "h00k-token".to_owned())];
    let server = Faultline::start(data.path(), Some(&config), &env);
    server.post(KEY, None, errors("api", 3)).await;
    let deliveries = server.deliveries("api_errors", 2).await;
    let (hook, hook2) = (&deliveries["hook"], &deliveries["hook2"]);
    assert_eq!(hook2["status"], "failed", "{hook2}");
    assert_eq!(hook2["attempts"], 2);
    assert_eq!(hook2["code"], 503);
    assert!(hook2["error"].as_str().unwrap().starts_with("HTTP 503"));
    assert_eq!(hook["attempts"], 4, "{hook}");
    assert_eq!(hook["status"], "sent", "{hook}");
    let hits = capture.hits("hook");
    assert_eq!(hits.len(), 4);
    assert!(
        hits.iter()
            .all(|h| h.authorization.as_deref() == Some("Bearer h00k-token"))
    );
    assert!(server.terminate().0.success());
}

/// `faultline check-alerts` for cron: exit 1 while something fires (notifying once), 0
/// after a reset; it records system checks; `faultline summary` reports; and neither
/// opens a data dir a running server holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_alerts_once_for_cron_and_summary() {
    let capture = Capture::start().await;
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(
        conf.path(),
        &format!(
            "{}\n[alerts.rules.worker_alive]\nkind = \"absence\"\nfilter = {{ service = \"worker\", event = \"heartbeat\" }}\nwindow = \"10m\"\nactions = [\"system_check\"]\n",
            restart_config(&capture, "1m").replace(
                "actions = [\"hook\"]",
                "actions = [\"hook\", \"system_check\"]"
            )
        ),
    );
    let no_eval = [("FAULTLINE_ALERTS_ENABLED", "false".to_owned())];
    let server = Faultline::start(data.path(), Some(&config), &no_eval);
    server.post(KEY, None, errors("api", 2)).await;
    server
        .post(
            KEY,
            None,
            json!([record("worker", "INFO", "heartbeat", json!({}))]),
        )
        .await;

    let (code, _, err) = run(
        &["check-alerts", "--window", "60"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 2, "the server holds the data dir: {err}");
    assert!(err.contains("in use"), "{err}");
    let summary = crate::alerts_support::run(
        &[
            "summary",
            "--window",
            "15m",
            "--json",
            "--server",
            &server.base,
        ],
        data.path(),
        None,
        &[],
    );
    assert_eq!(summary.0, 0, "{}", summary.2);
    let s: Value = serde_json::from_str(&summary.1).unwrap();
    assert_eq!(s["records"], 3, "{s}");
    assert!(server.terminate().0.success());
    assert!(
        capture.hits("hook").is_empty(),
        "the server did not evaluate"
    );

    let (code, out, err) = run(
        &["check-alerts", "--window", "60"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 0, "2 of 3: all ok\n{out}\n---\n{err}");
    assert!(out.contains("ok       rule   api_errors"), "{out}");

    // One more error arrives; the next run fires, and notifies once.
    let server = Faultline::start(data.path(), Some(&config), &no_eval);
    server.post(KEY, None, errors("api", 1)).await;
    assert!(server.terminate().0.success());
    let (code, out, err) = run(
        &["check-alerts", "--window", "60", "--json"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["status"], "firing");
    assert_eq!(capture.hits("hook").len(), 1);
    assert_eq!(capture.hits("hook")[0].body["event"], "firing");
    let (code, _, _) = run(
        &["check-alerts", "--window", "60"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 1, "still firing");
    assert_eq!(capture.hits("hook").len(), 1, "and not notified again");

    let (code, out, err) = run(
        &["summary", "--window", "15m", "--json"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["status"], "firing");
    let api = s["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["service"] == "api")
        .unwrap();
    assert_eq!(
        (api["level"].clone(), api["count"].clone()),
        (json!("ERROR"), json!(3))
    );
    assert_eq!(s["firing"][0]["rule"], "api_errors");
    let checks = s["checks"].as_array().unwrap();
    let api_check = checks.iter().find(|c| c["name"] == "api_errors").unwrap();
    assert_eq!(api_check["status"], "failed");
    assert_eq!(api_check["source"], "check-alerts");
    let alive = checks.iter().find(|c| c["name"] == "worker_alive").unwrap();
    assert_eq!(alive["status"], "ok", "a heartbeat within 10m");
    let (code, text, _) = run(
        &["summary", "--window", "15m"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 0);
    assert!(text.contains("firing alerts: 1"), "{text}");

    let (code, out, err) = run(
        &["check-alerts", "--window", "60", "--reset", "api_errors"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 0, "reset: {out}\n{err}");
    let hits = capture.hits("hook");
    assert_eq!(hits.len(), 2);
    assert_eq!(
        (
            hits[1].body["event"].clone(),
            hits[1].body["resolve_reason"].clone()
        ),
        (json!("resolved"), json!("reset"))
    );

    let (code, _, err) = run(
        &["check-alerts", "--reset", "nope"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no rule named \"nope\""), "{err}");
}

/// The API: admin only, a reset resolves with a notification, unknown rules are 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_api_needs_the_admin_token_and_resets_a_rule() {
    let capture = Capture::start().await;
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(conf.path(), &restart_config(&capture, "1m"));
    let server = Faultline::start(data.path(), Some(&config), &[]);
    let c = client();
    for (token, want) in [(None, 401), (Some(KEY), 403), (Some("wrong"), 401)] {
        for path in ["/alerts", "/system/checks/latest"] {
            let mut req = c.get(format!("{}{path}", server.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            assert_eq!(
                req.send().await.unwrap().status().as_u16(),
                want,
                "{path} {token:?}"
            );
        }
        let mut req = c.post(format!("{}/alerts/api_errors/reset", server.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), want);
    }
    server.post(KEY, None, errors("api", 3)).await;
    capture.wait_for("hook", 1, Duration::from_secs(5)).await;
    let r = c
        .post(format!("{}/alerts/api_errors/reset", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["resolved"], 1, "{body}");
    let hits = capture.wait_for("hook", 2, Duration::from_secs(5)).await;
    assert_eq!(hits[1].body["resolve_reason"], "reset");
    assert_eq!(server.rule("api_errors").await["status"], "resolved");
    let r = c
        .post(format!("{}/alerts/nope/reset", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nope"));
    let metrics = c
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("faultline_alerts_fired_total{rule=\"api_errors\"} 1"),
        "{metrics}"
    );
    assert!(server.terminate().0.success());
}

/// Email with a login: the password comes from a file named in the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_logs_in_with_the_password_from_a_file() {
    let smtp = Smtp::start(Some("faultline:sm7p-pass"));
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let password = conf.path().join("smtp-password");
    std::fs::write(&password, "sm7p-pass\n").unwrap();
    let config = write_config(
        conf.path(),
        &format!(
            r#"
[alerts.channels.mail]
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {}
tls = "none"
smtp_username = "faultline"
smtp_password_file = "{}"
from = "faultline@example.com"
to = ["oncall@example.com", "support@example.com"]

[alerts.rules.api_errors]
kind = "threshold"
filter = {{ service = "api" }}
window = "1m"
threshold = 1
actions = ["mail"]
"#,
            smtp.port,
            password.display()
        ),
    );
    let server = Faultline::start(data.path(), Some(&config), &[]);
    server.post(KEY, None, errors("api", 1)).await;
    let mail = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        mail[0]["to"],
        json!(["oncall@example.com", "support@example.com"])
    );
    assert_eq!(mail[0]["login"], "faultline");
    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(!log.contains("sm7p-pass"));
}

/// A config problem names the rule and the field, and a missing secret names its variable;
/// the server does not start with either.
#[test]
fn config_errors_name_the_rule_and_the_field() {
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(
        conf.path(),
        "[alerts.rules.api_errors]\nkind = \"threshold\"\nthreshold = 5\n",
    );
    let (code, _, err) = run(
        &["serve", "--listen", "127.0.0.1:0"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("alerts.rules.api_errors: window: missing"),
        "{err}"
    );
    let config = write_config(
        conf.path(),
        "[alerts.channels.ops]\nkind = \"slack\"\nurl_env = \"NOT_SET_ANYWHERE\"\n\
         [alerts.rules.r]\nkind = \"absence\"\nwindow = \"1m\"\nactions = [\"ops\"]\n",
    );
    let (code, _, err) = run(
        &["serve", "--listen", "127.0.0.1:0"],
        data.path(),
        Some(&config),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains(
            "alerts.channels.ops: url_env: environment variable NOT_SET_ANYWHERE is not set"
        ),
        "{err}"
    );
}

/// `summary --merge-into`: the summary becomes a report's `log_summary`, every other field
/// kept in its place and as written; a missing report is created; a file that is not a JSON
/// object is left alone with an error.
#[test]
fn summary_merges_into_a_report() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let report = dir.path().join("latest_oneclick_report.json");
    let original = "{\n  \"run\": \"2026-12-07T06:00:00Z\",\n  \"checks\": [1, 2.50, {\"b\":1,\"a\":2}],\n  \"log_summary\": {\"old\": true},\n  \"zeta\": null\n}\n";
    std::fs::write(&report, original).unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o640)).unwrap();
    let merge = |file: &std::path::Path| {
        run(
            &[
                "summary",
                "--window",
                "15m",
                "--json",
                "--merge-into",
                file.to_str().unwrap(),
            ],
            &store,
            None,
            &[],
        )
    };

    let (code, out, err) = merge(&report);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&report).unwrap();
    let merged: Value = serde_json::from_str(&text).unwrap();
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(merged["log_summary"], printed, "{text}");
    assert_eq!(merged["log_summary"]["status"], "ok");
    assert!(
        merged["log_summary"].get("old").is_none(),
        "replaced: {text}"
    );
    let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
    assert!(
        at("run") < at("checks")
            && at("checks") < at("log_summary")
            && at("log_summary") < at("zeta"),
        "fields in their order: {text}"
    );
    assert!(
        text.contains(r#"[1, 2.50, {"b":1,"a":2}]"#),
        "other values byte for byte: {text}"
    );
    assert_eq!(merged["zeta"], Value::Null);
    let mode = std::fs::metadata(&report).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "permissions kept");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["latest_oneclick_report.json", "store"],
        "no temporary file left"
    );

    let fresh = dir.path().join("new.json");
    let (code, _, err) = merge(&fresh);
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_slice(&std::fs::read(&fresh).unwrap()).unwrap();
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    assert_eq!(created["log_summary"]["records"], 0);

    let list = dir.path().join("list.json");
    std::fs::write(&list, "[1, 2]").unwrap();
    let (code, _, err) = merge(&list);
    assert_ne!(code, 0);
    assert!(err.contains("is not a JSON object"), "{err}");
    assert_eq!(std::fs::read_to_string(&list).unwrap(), "[1, 2]");
}

/// `faultline serve` without a config file runs the shipped rules: a channel whose
/// variable is set notifies (with the rule's runbook), the others show as not configured
/// and are skipped and counted, and the UI rule's notice appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_runs_the_shipped_rules_before_channels_are_set_up() {
    let capture = Capture::start().await;
    let data = tempfile::tempdir().unwrap();
    let env = [
        (
            "FAULTLINE_SLACK_WEBHOOK_URL",
            capture.url(&format!("slack/{SLACK_SECRET}")),
        ),
        // Nothing listens here: redis_down fires, its channels are not configured.
        (
            "FAULTLINE_ALERTS_PROBES_REDIS_ADDRESS",
            format!("127.0.0.1:{}", free_port()),
        ),
        ("FAULTLINE_ALERTS_PROBES_REDIS_INTERVAL", "200ms".to_owned()),
    ];
    let server = Faultline::start(data.path(), None, &env);
    let alerts = server.get("/alerts").await;
    let channels: Vec<(String, bool, String)> = alerts["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["configured"].as_bool().unwrap(),
                c["missing_env"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        channels,
        [
            ("app_stop".into(), false, "FAULTLINE_APP_STOP_URL".into()),
            ("ops_slack".into(), true, String::new()),
            (
                "pagerduty".into(),
                false,
                "FAULTLINE_PAGERDUTY_ROUTING_KEY".into()
            ),
            (
                "worker_restart".into(),
                false,
                "FAULTLINE_WORKER_RESTART_URL".into()
            ),
        ]
    );
    assert_eq!(alerts["rules"].as_array().unwrap().len(), 4, "{alerts}");

    let user = anonymize_user(SALT, "carol");
    let ui: Vec<Value> = (0..10)
        .map(|_| record("ui", "ERROR", "window.onerror", json!({ "user": user })))
        .collect();
    server.post(KEY, None, json!(ui)).await;
    let slack = capture.wait_for("slack", 1, Duration::from_secs(5)).await;
    assert!(
        text(&slack[0]).starts_with("[FIRING] ui_user_errors ["),
        "{}",
        text(&slack[0])
    );
    let fields = slack[0].body["attachments"][0]["fields"].to_string();
    assert!(
        fields.contains("docs/runbook.md#ui_user_errors"),
        "{fields}"
    );
    let alerts = server.get("/alerts").await;
    assert_eq!(alerts["notices"][0]["rule"], "ui_user_errors", "{alerts}");
    let rule = server.rule("ui_user_errors").await;
    assert!(
        rule["config"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("docs/runbook.md#ui_user_errors")
    );

    // redis_down fires; its two channels are skipped and counted, nothing fails.
    let metrics = eventually(
        "redis_down's notifications are skipped",
        Duration::from_secs(20),
        || async {
            let m = client()
                .get(format!("{}/metrics", server.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            m.contains("faultline_alerts_notifications_skipped_total{channel=\"pagerduty\"} 1")
                .then_some(m)
        },
    )
    .await;
    assert!(
        metrics.contains("faultline_alerts_notifications_skipped_total{channel=\"app_stop\"} 1"),
        "{metrics}"
    );
    assert_eq!(server.rule("redis_down").await["status"], "firing");
    assert!(
        server.rule("redis_down").await["deliveries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(server.terminate().0.success());
}

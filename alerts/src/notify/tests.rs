//! Channels against real local receivers: payloads, retries and backoff, timeouts, and
//! that secrets stay out of errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

use super::notification::{MAX_DEDUP_KEY, dedup_key};
use super::*;
use crate::alert_config::AlertsConfig;
use crate::alert_state::AlertState;

type Received = (Value, Option<String>);

/// A receiver that answers with the statuses given, in order (then 200), and keeps bodies.
#[derive(Clone, Default)]
struct Receiver {
    statuses: Arc<Mutex<Vec<u16>>>,
    /// Each body, with its `Authorization` header.
    bodies: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    r.bodies
        .lock()
        .unwrap()
        .push((serde_json::from_slice(&body).unwrap_or(Value::Null), auth));
    let mut statuses = r.statuses.lock().unwrap();
    let status = if statuses.is_empty() {
        200
    } else {
        statuses.remove(0)
    };
    StatusCode::from_u16(status).unwrap()
}

async fn receiver(statuses: &[u16]) -> (String, Receiver) {
    let r = Receiver::default();
    r.statuses.lock().unwrap().extend_from_slice(statuses);
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

fn channel(toml_text: &str, vars: &[(&str, &str)]) -> Channel {
    let config: AlertsConfig = toml::from_str(toml_text).unwrap();
    config.check().unwrap();
    let (name, c) = config.channels.iter().next().unwrap();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Channel::new(name, c, &|k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap()
}

fn notification(event: NotifyEvent) -> Notification {
    let config: AlertsConfig = toml::from_str(
        "[rules.api_errors]\nkind = \"threshold\"\nwindow = \"1m\"\nthreshold = 5\n\
         severity = \"critical\"\nfilter = { service = \"api\", level = \"ERROR\" }\n",
    )
    .unwrap();
    let rule = config.compile().unwrap().rules[0].clone();
    let now = Timestamp::from_unix_millis(1_782_907_200_000);
    let mut state = AlertState::new(now);
    state.value = 7;
    state.detail = "7 ERROR+ records from api in 1m (threshold 5)".into();
    state.fired_at = Some(now);
    if event == NotifyEvent::Resolved {
        state.resolved_at = Some(now);
    }
    Notification::new(&rule, "", &[], &state, event, now)
}

fn ctx() -> Context {
    Context::new(Some("https://faultline.example.com".into()))
}

#[tokio::test]
async fn slack_payload_is_a_text_line_and_a_colored_attachment() {
    let (url, r) = receiver(&[]).await;
    let c = channel(
        "[channels.ops]\nkind = \"slack\"\nurl_env = \"SLACK\"\nchannel = \"#ops\"\n",
        &[("SLACK", &url)],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!(
        (d.status, d.attempts, d.code),
        (DeliveryStatus::Sent, 1, Some(200))
    );
    let body = &r.bodies.lock().unwrap()[0].0;
    assert_eq!(
        body["text"],
        "[FIRING] api_errors (critical): 7 ERROR+ records from api in 1m (threshold 5)"
    );
    assert_eq!(body["channel"], "#ops");
    assert_eq!(body["attachments"][0]["color"], "#d40e0d");
    assert_eq!(
        body["attachments"][0]["title_link"],
        "https://faultline.example.com"
    );
}

/// Guards mentions and links smuggled through record data: a grouped field such as
/// `meta.user` is whatever a client sent, and `<!channel>` in it pinged the whole channel.
#[tokio::test]
async fn slack_text_from_records_is_escaped() {
    let (url, r) = receiver(&[]).await;
    let c = channel(
        "[channels.ops]\nkind = \"slack\"\nurl_env = \"SLACK\"\n",
        &[("SLACK", &url)],
    );
    let mut n = notification(NotifyEvent::Firing);
    n.group = "meta.user=<!channel> & <https://evil.example|click>".into();
    n.summary = format!("5 records for {}", n.group);
    n.description = Some("<@U0001> look".into());
    let d = c.deliver(&ctx(), &n).await;
    assert_eq!(d.status, DeliveryStatus::Sent);
    let body = r.bodies.lock().unwrap()[0].0.to_string();
    for raw in ["<!channel>", "<https://evil", "<@U0001>", " & "] {
        assert!(!body.contains(raw), "{raw} reached Slack unescaped: {body}");
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    let group = body["attachments"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Group")
        .unwrap()["value"]
        .clone();
    assert_eq!(
        group,
        "meta.user=&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    );
    assert!(
        body["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("\n&lt;@U0001&gt; look")
    );
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_with_one_dedup_key() {
    let (url, r) = receiver(&[]).await;
    let c = channel(
        &format!(
            "[channels.pd]\nkind = \"pagerduty\"\nurl = \"{url}\"\nrouting_key_env = \"PD\"\n"
        ),
        &[("PD", "R0UTINGKEY")],
    );
    c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    c.deliver(&ctx(), &notification(NotifyEvent::Resolved))
        .await;
    let bodies = r.bodies.lock().unwrap();
    let (trigger, resolve) = (&bodies[0].0, &bodies[1].0);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UTINGKEY");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "faultline");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(trigger["dedup_key"], "faultline/api_errors");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
}

#[tokio::test]
async fn retries_with_backoff_on_5xx_and_429_but_not_on_400() {
    let (url, r) = receiver(&[503, 429, 200]).await;
    let c = channel(
        &format!("[channels.h]\nkind = \"webhook\"\nurl = \"{url}\"\nbackoff = \"10ms\"\n"),
        &[],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Sent, 3));
    assert_eq!(r.bodies.lock().unwrap().len(), 3);

    let (url, _) = receiver(&[400]).await;
    let c = channel(
        &format!("[channels.h]\nkind = \"webhook\"\nurl = \"{url}\"\nbackoff = \"10ms\"\n"),
        &[],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!(
        (d.status, d.attempts, d.code),
        (DeliveryStatus::Failed, 1, Some(400))
    );
    assert!(d.error.as_deref().unwrap().starts_with("HTTP 400"), "{d:?}");

    let (url, _) = receiver(&[500, 500, 500]).await;
    let c = channel(
        &format!(
            "[channels.h]\nkind = \"webhook\"\nurl = \"{url}\"\nbackoff = \"10ms\"\nretries = 2\n"
        ),
        &[],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 3));
}

#[tokio::test]
async fn webhook_body_is_the_documented_notification_with_a_bearer_token() {
    let (url, r) = receiver(&[]).await;
    let c = channel(
        "[channels.stop]\nkind = \"webhook\"\nurl_env = \"STOP_URL\"\nbearer_token_env = \"TOKEN\"\n",
        &[("STOP_URL", &url), ("TOKEN", "t0ken")],
    );
    c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    let (body, auth) = r.bodies.lock().unwrap()[0].clone();
    assert_eq!(auth.as_deref(), Some("Bearer t0ken"));
    for (key, want) in [
        ("version", serde_json::json!(1)),
        ("source", serde_json::json!("faultline")),
        ("event", serde_json::json!("firing")),
        ("status", serde_json::json!("firing")),
        ("rule", serde_json::json!("api_errors")),
        ("kind", serde_json::json!("threshold")),
        ("severity", serde_json::json!("critical")),
        ("value", serde_json::json!(7)),
        ("dedup_key", serde_json::json!("faultline/api_errors")),
        (
            "dashboard_url",
            serde_json::json!("https://faultline.example.com"),
        ),
    ] {
        assert_eq!(body[key], want, "{key} in {body}");
    }
}

#[tokio::test]
async fn unreachable_receivers_fail_without_showing_the_secret_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/services/T000/B000/s3cr3tT0k3n");
    let c = channel(
        "[channels.ops]\nkind = \"slack\"\nurl_env = \"SLACK\"\nretries = 1\nbackoff = \"10ms\"\n",
        &[("SLACK", &url)],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 2));
    let error = d.error.unwrap();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(!error.contains("s3cr3t"), "the URL is a secret: {error}");
    assert!(!format!("{c:?}").contains("s3cr3t"));
}

#[test]
fn missing_secrets_name_the_channel_and_the_variable() {
    let config: AlertsConfig =
        toml::from_str("[channels.ops]\nkind = \"slack\"\nurl_env = \"NOPE_URL\"\n").unwrap();
    let err = Channel::new("ops", &config.channels["ops"], &|_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "alerts.channels.ops: url_env: environment variable NOPE_URL is not set"
    );
    let bad = Channel::new("ops", &config.channels["ops"], &|_| {
        Some("not a url s3cr3t".into())
    })
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("not an http") && !bad.contains("s3cr3t"),
        "{bad}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn command_gets_the_body_on_stdin_and_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let c = channel(
        &format!(
            "[channels.restart]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"cat > '{0}'; echo >> '{0}'; echo $FAULTLINE_ALERT_RULE >> '{0}'\"]\n",
            out.display()
        ),
        &[],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!((d.status, d.code), (DeliveryStatus::Sent, Some(0)), "{d:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let (json, rule) = text.split_once('\n').unwrap();
    let body: Value = serde_json::from_str(json).unwrap();
    assert_eq!(body["rule"], "api_errors");
    assert_eq!(rule.trim(), "api_errors");

    let c = channel(
        "[channels.slow]\nkind = \"command\"\ncommand = [\"sleep\", \"10\"]\ntimeout = \"200ms\"\n",
        &[],
    );
    let started = std::time::Instant::now();
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert!(d.error.unwrap().contains("killed"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let c = channel(
        "[channels.bad]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"echo broken >&2; exit 3\"]\n",
        &[],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!(
        (d.status, d.attempts, d.code),
        (DeliveryStatus::Failed, 1, Some(3))
    );
    assert!(d.error.unwrap().ends_with("broken"));
}

#[test]
fn email_message_has_the_title_as_subject_and_every_detail() {
    let c = channel(
        "[channels.mail]\nkind = \"email\"\nsmtp_host = \"localhost\"\ntls = \"none\"\n\
         from = \"Faultline <faultline@example.com>\"\nto = [\"support@example.com\"]\n",
        &[],
    );
    let Target::Email(email) = &c.target else {
        panic!("an email channel")
    };
    let message = email
        .message(
            &notification(NotifyEvent::Resolved),
            Some("https://faultline.example.com"),
        )
        .unwrap();
    let text = String::from_utf8(message.formatted()).unwrap();
    assert!(
        text.contains("Subject: [RESOLVED] api_errors (critical): 7 ERROR+"),
        "{text}"
    );
    assert!(text.contains("To: support@example.com"), "{text}");
    assert!(text.contains("api_errors has RESOLVED"), "{text}");
}

#[test]
fn dedup_keys_are_stable_and_short() {
    assert_eq!(dedup_key("r", ""), "faultline/r");
    assert_eq!(dedup_key("r", "meta.user=u_1"), "faultline/r/meta.user=u_1");
    let long = "x".repeat(400);
    let key = dedup_key("r", &long);
    assert!(key.len() <= MAX_DEDUP_KEY);
    assert_eq!(key, dedup_key("r", &long));
}

#[test]
fn backoff_doubles_and_is_capped() {
    let base = Duration::from_millis(100);
    let b1 = backoff(base, 1);
    let b3 = backoff(base, 3);
    assert!(b1 >= base && b1 <= base.mul_f64(1.25), "{b1:?}");
    assert!(b3 >= base * 4 && b3 <= (base * 4).mul_f64(1.25), "{b3:?}");
    assert!(backoff(Duration::from_secs(10), 20) <= MAX_BACKOFF.mul_f64(1.25));
}

/// What a scripted receiver got: the path, the `Content-Type`, the body, and when.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    content_type: Option<String>,
    body: Value,
    at: std::time::Instant,
}

/// An answer a scripted receiver gives: status, `Retry-After` header, body.
type Answer = (u16, Option<&'static str>, &'static str);

/// A receiver on any path that gives `answers` in order (then `200 {"ok":true}`).
async fn scripted(answers: &[Answer]) -> (String, Arc<Mutex<Vec<Request>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let queue = Arc::new(Mutex::new(answers.to_vec()));
    let (g, q) = (Arc::clone(&got), Arc::clone(&queue));
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (g, q) = (Arc::clone(&g), Arc::clone(&q));
            async move {
                g.lock().unwrap().push(Request {
                    path: uri.path().to_owned(),
                    content_type: headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    at: std::time::Instant::now(),
                });
                let (status, retry_after, text) = {
                    let mut q = q.lock().unwrap();
                    if q.is_empty() {
                        (200, None, "{\"ok\":true}")
                    } else {
                        q.remove(0)
                    }
                };
                let mut response = axum::response::Response::new(axum::body::Body::from(text));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                response.headers_mut().insert(
                    "content-type",
                    axum::http::HeaderValue::from_static("application/json"),
                );
                if let Some(v) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", axum::http::HeaderValue::from_static(v));
                }
                response
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, got)
}

fn with_runbook(event: NotifyEvent) -> Notification {
    let mut n = notification(event);
    n.runbook_url = Some("https://runbooks.example.com/runbook.md#api_errors".into());
    n
}

#[tokio::test]
async fn discord_gets_content_and_an_embed_without_mentions() {
    let (base, got) = scripted(&[]).await;
    let url = format!("{base}/api/webhooks/123/s3cr3tT0k3n");
    let c = channel(
        "[channels.dc]\nkind = \"discord\"\nurl_env = \"DISCORD\"\nusername = \"Faultline\"\n",
        &[("DISCORD", &url)],
    );
    let mut n = with_runbook(NotifyEvent::Firing);
    n.group = "meta.user=@everyone".into();
    let d = c.deliver(&ctx(), &n).await;
    assert_eq!(
        (d.status, d.attempts, d.code),
        (DeliveryStatus::Sent, 1, Some(200))
    );
    let r = got.lock().unwrap()[0].clone();
    assert_eq!(r.path, "/api/webhooks/123/s3cr3tT0k3n");
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let body = r.body;
    assert_eq!(
        body["content"],
        "[FIRING] api_errors [meta.user=@everyone] (critical): 7 ERROR+ records from api in 1m (threshold 5)"
    );
    assert_eq!(body["username"], "Faultline");
    assert_eq!(body["allowed_mentions"], serde_json::json!({ "parse": [] }));
    let embed = &body["embeds"][0];
    assert_eq!(embed["color"], 0xd4_0e0d);
    assert_eq!(embed["url"], "https://faultline.example.com");
    assert_eq!(embed["timestamp"], "2026-07-01T12:00:00.000Z");
    let fields = embed["fields"].as_array().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {fields:?}"))["value"]
            .clone()
    };
    assert_eq!(field("Value"), "7 (threshold 5)");
    assert_eq!(field("Group"), "meta.user=@everyone");
    assert_eq!(
        field("Runbook"),
        "https://runbooks.example.com/runbook.md#api_errors"
    );
    // Within Discord's limits, whatever the records said.
    n.summary = "x".repeat(5000);
    c.deliver(&ctx(), &n).await;
    let body = got.lock().unwrap()[1].body.clone();
    assert_eq!(body["content"].as_str().unwrap().chars().count(), 2000);
    assert_eq!(
        body["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        4096
    );
}

/// Discord's 429 says how long to wait in its JSON body (`retry_after`, seconds with a
/// fraction), not always in a header: the retry waits that long, not the backoff.
#[tokio::test]
async fn discord_429_is_retried_after_its_retry_after() {
    let (base, got) = scripted(&[(
        429,
        None,
        "{\"message\": \"You are being rate limited.\", \"retry_after\": 0.6, \"global\": false}",
    )])
    .await;
    let c = channel(
        "[channels.dc]\nkind = \"discord\"\nurl_env = \"DISCORD\"\nbackoff = \"10ms\"\n",
        &[("DISCORD", &format!("{base}/api/webhooks/1/t"))],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!(
        (d.status, d.attempts, d.code),
        (DeliveryStatus::Sent, 2, Some(200)),
        "{d:?}"
    );
    let waited = {
        let got = got.lock().unwrap();
        got[1].at - got[0].at
    };
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    // A Retry-After header wins, and a 429 that stays one fails after the retries.
    let (base, got) = scripted(&[(429, Some("1"), "{\"retry_after\": 0.01}"); 3]).await;
    let c = channel(
        "[channels.dc]\nkind = \"discord\"\nurl_env = \"DISCORD\"\nretries = 1\n",
        &[("DISCORD", &format!("{base}/api/webhooks/1/t"))],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!(
        (d.status, d.attempts, d.code),
        (DeliveryStatus::Failed, 2, Some(429))
    );
    assert!(d.error.unwrap().starts_with("HTTP 429"));
    let got = got.lock().unwrap();
    assert!(got[1].at - got[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn telegram_send_message_has_chat_id_text_and_parse_mode() {
    let (base, got) = scripted(&[]).await;
    let c = channel(
        &format!(
            "[channels.tg]\nkind = \"telegram\"\nbot_token_env = \"TG_TOKEN\"\nchat_id = -1001234567890\napi_url = \"{base}\"\n"
        ),
        &[("TG_TOKEN", "123456:s3cr3t-T0ken")],
    );
    let mut n = with_runbook(NotifyEvent::Firing);
    n.group = "meta.user=<b>&x".into();
    let d = c.deliver(&ctx(), &n).await;
    assert_eq!((d.status, d.code), (DeliveryStatus::Sent, Some(200)));
    let r = got.lock().unwrap()[0].clone();
    assert_eq!(r.path, "/bot123456:s3cr3t-T0ken/sendMessage");
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.body["chat_id"], -1_001_234_567_890_i64);
    assert_eq!(r.body["parse_mode"], "HTML");
    assert_eq!(r.body["disable_notification"], false);
    assert_eq!(
        r.body["text"],
        "<b>[FIRING] api_errors [meta.user=&lt;b&gt;&amp;x] (critical)</b>\n\
         7 ERROR+ records from api in 1m (threshold 5)\n\
         Runbook: https://runbooks.example.com/runbook.md#api_errors\n\
         Dashboard: https://faultline.example.com"
    );
}

#[tokio::test]
async fn telegram_errors_never_show_the_token_and_429_waits() {
    let (base, got) = scripted(&[
        (
            429,
            None,
            "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after 1\",\"parameters\":{\"retry_after\":1}}",
        ),
        (
            400,
            None,
            "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not found\"}",
        ),
    ])
    .await;
    let c = channel(
        &format!(
            "[channels.tg]\nkind = \"telegram\"\nbot_token_env = \"TG_TOKEN\"\nchat_id = \"@ops_alerts\"\napi_url = \"{base}/\"\nbackoff = \"10ms\"\n"
        ),
        &[("TG_TOKEN", "123456:s3cr3t-T0ken")],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    assert_eq!(
        (d.status, d.attempts, d.code),
        (DeliveryStatus::Failed, 2, Some(400))
    );
    let error = d.error.unwrap();
    assert!(error.contains("chat not found"), "{error}");
    {
        let got = got.lock().unwrap();
        assert_eq!(got[0].body["chat_id"], "@ops_alerts");
        assert!(got[1].at - got[0].at >= Duration::from_secs(1));
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = channel(
        &format!(
            "[channels.tg]\nkind = \"telegram\"\nbot_token_env = \"TG_TOKEN\"\nchat_id = 1\napi_url = \"http://127.0.0.1:{port}\"\nretries = 0\n"
        ),
        &[("TG_TOKEN", "123456:s3cr3t-T0ken")],
    );
    let d = c.deliver(&ctx(), &notification(NotifyEvent::Firing)).await;
    let error = d.error.unwrap();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(!error.contains("s3cr3t"), "the token is a secret: {error}");
    assert!(!format!("{c:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn templates_fill_each_channel_message_with_the_alert_fields() {
    let (base, got) = scripted(&[]).await;
    let template = "{event}: {rule} {group} is {value} of {threshold}. {summary} Runbook {runbook} on {dashboard} <{severity}>";
    let tg = channel(
        &format!(
            "[channels.tg]\nkind = \"telegram\"\nbot_token_env = \"T\"\nchat_id = 5\napi_url = \"{base}\"\ntemplate = \"{template}\"\n"
        ),
        &[("T", "1:t")],
    );
    let dc = channel(
        &format!("[channels.dc]\nkind = \"discord\"\nurl_env = \"D\"\ntemplate = \"{template}\"\n"),
        &[("D", &format!("{base}/dc"))],
    );
    let sl = channel(
        &format!("[channels.sl]\nkind = \"slack\"\nurl_env = \"S\"\ntemplate = \"{template}\"\n"),
        &[("S", &format!("{base}/sl"))],
    );
    let mut n = with_runbook(NotifyEvent::Firing);
    n.group = "meta.user=u_1".into();
    for c in [&tg, &dc, &sl] {
        assert_eq!(c.deliver(&ctx(), &n).await.status, DeliveryStatus::Sent);
    }
    let got = got.lock().unwrap();
    let want = "firing: api_errors meta.user=u_1 is 7 of 5. 7 ERROR+ records from api in 1m \
                (threshold 5) Runbook https://runbooks.example.com/runbook.md#api_errors on \
                https://faultline.example.com";
    // The template's own markup stays; values are escaped for the channel.
    assert_eq!(got[0].body["text"], format!("{want} <critical>"));
    assert_eq!(got[1].body["content"], format!("{want} <critical>"));
    assert_eq!(got[2].body["text"], format!("{want} <critical>"));
}

#[test]
fn templates_and_new_kinds_are_checked() {
    for (text, want) in [
        (
            "[channels.t]\nkind = \"telegram\"\nbot_token_env = \"T\"\nchat_id = 1\ntemplate = \"{rulez}\"\n",
            "alerts.channels.t: template: {rulez} is not a placeholder (it takes: title, event",
        ),
        (
            "[channels.w]\nkind = \"webhook\"\nurl = \"http://x\"\ntemplate = \"{rule}\"\n",
            "alerts.channels.w: template: a webhook channel sends every field as JSON",
        ),
        (
            "[channels.t]\nkind = \"telegram\"\nbot_token_env = \"T\"\n",
            "alerts.channels.t: chat_id: missing",
        ),
        (
            "[channels.t]\nkind = \"telegram\"\nchat_id = 1\n",
            "alerts.channels.t: bot_token_env: give exactly one",
        ),
        (
            "[channels.d]\nkind = \"discord\"\nurl = \"https://discord.com/api/webhooks/1/x\"\n",
            "alerts.channels.d: url: a webhook URL is a secret",
        ),
        (
            "[rules.r]\nkind = \"absence\"\nwindow = \"1m\"\nrunbook_url = \"docs/runbook.md\"\n",
            "alerts.rules.r: runbook_url: must be an http:// or https:// URL",
        ),
    ] {
        let config: AlertsConfig = toml::from_str(text).unwrap();
        let got = config.check().unwrap_err().to_string();
        assert!(got.starts_with(want), "{text}\n got: {got}\nwant: {want}");
    }
    let config: AlertsConfig = toml::from_str(
        "[channels.t]\nkind = \"telegram\"\nbot_token_env = \"NOPE_TOKEN\"\nchat_id = 1\n",
    )
    .unwrap();
    assert_eq!(
        Channel::new("t", &config.channels["t"], &|_| None)
            .unwrap_err()
            .to_string(),
        "alerts.channels.t: bot_token_env: environment variable NOPE_TOKEN is not set"
    );
}

#[tokio::test]
async fn the_runbook_is_in_every_kind_of_message() {
    let runbook = "https://runbooks.example.com/runbook.md#api_errors";
    let (base, got) = scripted(&[]).await;
    let n = with_runbook(NotifyEvent::Firing);
    for (toml_text, path) in [
        (
            "[channels.s]\nkind = \"slack\"\nurl_env = \"U\"\n",
            "/slack",
        ),
        (
            "[channels.w]\nkind = \"webhook\"\nurl_env = \"U\"\n",
            "/webhook",
        ),
    ] {
        let c = channel(toml_text, &[("U", &format!("{base}{path}"))]);
        assert_eq!(c.deliver(&ctx(), &n).await.status, DeliveryStatus::Sent);
    }
    let c = channel(
        &format!(
            "[channels.p]\nkind = \"pagerduty\"\nurl = \"{base}/pd\"\nrouting_key_env = \"K\"\n"
        ),
        &[("K", "k")],
    );
    assert_eq!(c.deliver(&ctx(), &n).await.status, DeliveryStatus::Sent);
    let got = got.lock().unwrap();
    let slack = got[0].body["attachments"][0]["fields"].as_array().unwrap();
    assert!(
        slack
            .iter()
            .any(|f| f["title"] == "Runbook" && f["value"] == runbook),
        "{slack:?}"
    );
    assert_eq!(got[1].body["runbook_url"], runbook);
    assert_eq!(got[1].body["threshold"], 5);
    assert_eq!(got[2].body["links"][0]["href"], runbook);
    assert_eq!(
        got[2].body["payload"]["custom_details"]["runbook_url"],
        runbook
    );
    let c = channel(
        "[channels.mail]\nkind = \"email\"\nsmtp_host = \"localhost\"\ntls = \"none\"\n\
         from = \"f@example.com\"\nto = [\"t@example.com\"]\n",
        &[],
    );
    let Target::Email(email) = &c.target else {
        panic!("an email channel")
    };
    let text = String::from_utf8(email.message(&n, None).unwrap().formatted()).unwrap();
    assert!(text.contains(&format!("Runbook:   {runbook}")), "{text}");
}

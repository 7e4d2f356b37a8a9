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
    let message = email.message(&notification(NotifyEvent::Resolved)).unwrap();
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

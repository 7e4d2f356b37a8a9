//! Silences and inhibition end to end (issue 28): the real `faultline` binary, a real
//! webhook receiver on loopback, the file store across a restart, and two nodes on one
//! PostgreSQL across a leader change.

use std::time::Duration;

use serde_json::{Value, json};

use crate::alerts::errors;
use crate::alerts_support::*;
use crate::pg::fresh_db;

/// Evaluation interval of these tests.
const INTERVAL_MS: u64 = 200;

/// `api_errors` (>= 3 ERROR from `api` in 60 s, a reminder every 3 s) and `db_down` (one
/// ERROR from `db` in `db_window`) to a webhook; `inhibit` is appended.
fn config(db_window: &str, inhibit: &str) -> String {
    format!(
        r#"
[alerts]
evaluation_interval = "{INTERVAL_MS}ms"

[alerts.channels.hook]
kind = "webhook"
url_env = "SILENCE_HOOK_URL"

[alerts.rules.api_errors]
kind = "threshold"
filter = {{ service = "api", level = "ERROR" }}
window = "60s"
threshold = 3
repeat_interval = "3s"
actions = ["hook"]

[alerts.rules.db_down]
kind = "threshold"
filter = {{ service = "db", level = "ERROR" }}
window = "{db_window}"
threshold = 1
repeat_interval = "0s"
actions = ["hook"]
{inhibit}
"#
    )
}

/// What the webhook got, as `rule event` strings.
fn events(capture: &Capture) -> Vec<String> {
    capture
        .hits("hook")
        .iter()
        .map(|h| {
            format!(
                "{} {}",
                h.body["rule"].as_str().unwrap_or_default(),
                h.body["event"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

async fn send(
    node: &Faultline,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", node.base))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `api_errors` alert's group in `GET /alerts` of `node`.
async fn api_alert(node: &Faultline) -> Value {
    node.rule("api_errors").await["groups"][0].clone()
}

/// Waits until `api_errors` fires on `node` and shows `key` set (`silenced_by`,
/// `inhibited_by`).
async fn firing_and(node: &Faultline, key: &str) -> Value {
    eventually(
        &format!("api_errors firing with {key}"),
        Duration::from_secs(15),
        || async {
            let g = api_alert(node).await;
            (g["status"] == "firing" && g[key].is_string()).then_some(g)
        },
    )
    .await
}

fn silence_body(duration: &str) -> Value {
    json!({
        "matchers": ["rule=api_errors", {"name": "group", "op": "=~", "value": ".*"}],
        "duration": duration,
        "comment": "database maintenance",
        "created_by": "ops@example.com",
    })
}

/// A silenced alert keeps firing (state, `silenced_by`, held notification) but sends
/// nothing, also across a restart of the server on the file store (the silence and the held
/// notification are on disk); when the silence ends while it still fires, exactly one
/// notification goes out (not its held reminders), and reminders count from there.
/// The API refuses a silence without a comment, an unknown id, a missing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_notifications_across_a_restart_and_its_end_sends_exactly_one() {
    let capture = Capture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(conf.path(), &config("5s", ""));
    let env = [("SILENCE_HOOK_URL", capture.url("hook/a"))];
    let node = Faultline::start(dir.path(), Some(&config), &env);

    let mut bad = silence_body("1h");
    bad["comment"] = json!("");
    let (status, body) = send(&node, reqwest::Method::POST, "/silences", Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("comment"),
        "{body}"
    );
    let (status, _) = send(
        &node,
        reqwest::Method::POST,
        "/silences",
        Some(json!({"matchers": ["rule=~("], "duration": "1h", "comment": "c", "created_by": "o"})),
    )
    .await;
    assert_eq!(status, 400, "a bad regular expression");
    let (status, _) = send(&node, reqwest::Method::DELETE, "/silences/nope", None).await;
    assert_eq!(status, 404);
    let anonymous = client()
        .get(format!("{}/silences", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let (status, silence) = send(
        &node,
        reqwest::Method::POST,
        "/silences",
        Some(silence_body("9s")),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    assert_eq!(silence["status"], "active");
    let id = silence["id"].as_str().unwrap().to_owned();

    node.post(KEY, None, errors("api", 3)).await;
    let g = firing_and(&node, "silenced_by").await;
    assert_eq!(g["silenced_by"], id.as_str());
    assert_eq!(g["held"], "firing", "{g}");
    // Reminders come due (every 3 s) and are held as well.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        events(&capture).is_empty(),
        "silenced: {:?}",
        events(&capture)
    );

    let (status, _) = node.terminate();
    assert!(status.success());
    let node = Faultline::start(dir.path(), Some(&config), &env);
    let listed = node.get("/silences").await;
    assert_eq!(listed["silences"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["silences"][0]["status"], "active");
    assert_eq!(listed["silences"][0]["comment"], "database maintenance");
    let g = firing_and(&node, "silenced_by").await;
    assert_eq!(g["held"], "firing", "{g}");
    assert!(
        events(&capture).is_empty(),
        "still silenced after the restart"
    );

    // The silence ends (by its time) while the alert fires: one firing, nothing held back.
    let hits = capture.wait_for("hook", 1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(events(&capture), ["api_errors firing"]);
    assert_eq!(hits[0].body["status"], "firing");
    let g = api_alert(&node).await;
    assert!(g["silenced_by"].is_null() && g["held"].is_null(), "{g}");
    let listed = node.get("/silences").await;
    assert_eq!(listed["silences"][0]["status"], "expired");
    assert!(node.terminate().0.success());
}

/// `[[alerts.inhibit]]`: while `db_down` fires, `api_errors` fires without notifying
/// (`inhibited_by` says why); once `db_down` resolves, `api_errors` (still firing) sends its
/// one firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inhibition_holds_the_target_while_the_source_fires_and_releases_it_after() {
    let capture = Capture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let inhibit = "[[alerts.inhibit]]\nsource = \"db_down\"\ntarget = [\"api_errors\"]\n";
    let config = write_config(conf.path(), &config("4s", inhibit));
    let env = [("SILENCE_HOOK_URL", capture.url("hook/a"))];
    let node = Faultline::start(dir.path(), Some(&config), &env);

    node.post(KEY, None, errors("db", 1)).await;
    capture.wait_for("hook", 1, Duration::from_secs(10)).await;
    node.post(KEY, None, errors("api", 3)).await;
    let g = firing_and(&node, "inhibited_by").await;
    assert_eq!(g["inhibited_by"], "db_down", "{g}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(events(&capture), ["db_down firing"], "the target is held");

    capture.wait_for("hook", 3, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Deliveries of two alerts may arrive in either order (in order per alert and channel).
    let mut got = events(&capture);
    got.sort();
    assert_eq!(
        got,
        ["api_errors firing", "db_down firing", "db_down resolved"]
    );
    let g = api_alert(&node).await;
    assert!(g["inhibited_by"].is_null(), "{g}");
    assert!(node.terminate().0.success());
}

/// Two nodes on one PostgreSQL: a silence made through the standby's API holds the leader's
/// alert; the leader is killed, the standby takes over from `alert_silences` and
/// `alert_state` (the alert still silenced, nothing sent); the silence expired through the
/// CLI (`faultline silence expire`) sends exactly one firing; `list` shows it expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_survive_a_leader_change_on_postgres_and_the_cli_expires_one() {
    let url = fresh_db().await;
    let capture = Capture::start().await;
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(conf.path(), &config("5s", ""));
    let env = [
        ("DATABASE_URL", url.clone()),
        ("SILENCE_HOOK_URL", capture.url("hook/a")),
    ];
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let leader = Faultline::start(dirs[0].path(), Some(&config), &env);
    let standby = Faultline::start(dirs[1].path(), Some(&config), &env);
    eventually("node 0 leads", Duration::from_secs(10), || async {
        let ready = leader.get("/readyz").await;
        (ready["alerts"]["leader"] == true).then_some(())
    })
    .await;

    let cli = |args: &[&str], base: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
            .arg("silence")
            .args(args)
            .args(["--server", base])
            .env("FAULTLINE_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(
        &[
            "add",
            "rule=api_errors",
            "--duration",
            "10m",
            "--comment",
            "failover drill",
            "--created-by",
            "drill",
        ],
        &standby.base,
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = out.trim().to_owned();
    assert_eq!(id.len(), 36, "{out}");
    let (code, out, _) = cli(&["list"], &leader.base);
    assert_eq!(code, 0);
    assert!(
        out.contains(&id)
            && out.contains("active")
            && out.contains("rule=api_errors")
            && out.contains("failover drill"),
        "{out}"
    );

    standby.post(KEY, None, errors("api", 3)).await;
    firing_and(&leader, "silenced_by").await;
    tokio::time::sleep(Duration::from_millis(4 * INTERVAL_MS)).await;

    leader.kill9();
    eventually(
        "the standby takes over",
        Duration::from_secs(10),
        || async {
            let ready = standby.get("/readyz").await;
            (ready["alerts"]["leader"] == true).then_some(())
        },
    )
    .await;
    let g = firing_and(&standby, "silenced_by").await;
    assert_eq!(g["silenced_by"], id.as_str());
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(events(&capture).is_empty(), "{:?}", events(&capture));

    let (code, out, err) = cli(&["expire", &id], &standby.base);
    assert_eq!(code, 0, "{out}{err}");
    capture.wait_for("hook", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(events(&capture), ["api_errors firing"], "exactly one");
    let (_, out, _) = cli(&["list"], &standby.base);
    assert!(!out.contains(&id), "expired ones only with --all: {out}");
    let (_, out, _) = cli(&["list", "--all"], &standby.base);
    assert!(out.contains(&id) && out.contains("expired"), "{out}");
    let (code, _, err) = cli(&["expire", "no-such-id"], &standby.base);
    assert_ne!(code, 0);
    assert!(err.contains("404"), "{err}");
    assert!(standby.terminate().0.success());
}

/// The shipped example holds the API error rule while the Redis rule fires.
#[test]
fn the_example_config_inhibits_api_errors_while_redis_is_down() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../faultline.example.toml");
    let config: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let alerts: faultline_alerts::AlertsConfig = config["alerts"].clone().try_into().unwrap();
    assert_eq!(alerts.inhibit.len(), 1);
    assert_eq!(alerts.inhibit[0].source.0, ["redis_down"]);
    assert_eq!(alerts.inhibit[0].target.0, ["api_errors"]);
    assert!(alerts.rules.contains_key("redis_down") && alerts.rules.contains_key("api_errors"));
}

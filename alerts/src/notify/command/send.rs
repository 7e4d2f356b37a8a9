//! A command channel: a program from the config file (never from the API), run without a
//! shell, with the notification as JSON on stdin and as `FAULTLINE_ALERT_*` environment
//! variables. Killed when it outlives its timeout; a non-zero exit is a failure.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::CommandConfig;
use crate::notify::notification::Notification;
use crate::notify::transport::Outcome;

pub(crate) struct Command {
    argv: Vec<String>,
}

impl Command {
    pub(crate) fn new(c: &CommandConfig) -> Command {
        Command {
            argv: c.command.clone(),
        }
    }

    pub(crate) async fn run(&self, n: &Notification, timeout: Duration) -> Outcome {
        let Some((program, args)) = self.argv.split_first() else {
            return Outcome::Fail {
                error: "no command configured".into(),
                code: None,
            };
        };
        let body = match serde_json::to_vec(n) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Fail {
                    error: e.to_string(),
                    code: None,
                };
            }
        };
        let mut child = match tokio::process::Command::new(program)
            .args(args)
            .env("FAULTLINE_ALERT_EVENT", n.event.as_str())
            .env("FAULTLINE_ALERT_STATUS", n.status)
            .env("FAULTLINE_ALERT_RULE", &n.rule)
            .env("FAULTLINE_ALERT_GROUP", &n.group)
            .env("FAULTLINE_ALERT_SEVERITY", n.severity.as_str())
            .env("FAULTLINE_ALERT_SUMMARY", &n.summary)
            .env("FAULTLINE_ALERT_DEDUP_KEY", &n.dedup_key)
            .env(
                "FAULTLINE_ALERT_RUNBOOK_URL",
                n.runbook_url.as_deref().unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                return Outcome::Fail {
                    error: format!("cannot start {program}: {e}"),
                    code: None,
                };
            }
        };
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        let work = async {
            if let Some(mut stdin) = stdin {
                // A program that does not read its input is fine: ignore a closed pipe.
                let _ = stdin.write_all(&body).await;
                drop(stdin);
            }
            let mut err = Vec::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_end(&mut err).await;
            }
            (child.wait().await, err)
        };
        match tokio::time::timeout(timeout, work).await {
            Err(_) => Outcome::Fail {
                error: format!("{program} did not finish within {timeout:?} and was killed"),
                code: None,
            },
            Ok((Err(e), _)) => Outcome::Fail {
                error: format!("{program}: {e}"),
                code: None,
            },
            Ok((Ok(status), stderr)) if status.success() => {
                let _ = stderr;
                Outcome::Sent {
                    code: status.code(),
                }
            }
            Ok((Ok(status), stderr)) => {
                let tail = String::from_utf8_lossy(&stderr);
                let tail = tail.trim();
                let tail: String = tail
                    .chars()
                    .rev()
                    .take(200)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                Outcome::Retry {
                    error: format!(
                        "{program} exited with {status}{}",
                        if tail.is_empty() {
                            String::new()
                        } else {
                            format!(": {tail}")
                        }
                    ),
                    code: status.code(),
                    after: None,
                }
            }
        }
    }
}

//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): a `text` line and
//! one colored attachment with the details.

use std::time::Duration;

use serde_json::{Value, json};

use super::SlackConfig;
use crate::alert_config::NotifyEvent;
use crate::error::AlertConfigError;
use crate::notify::notification::Notification;
use crate::notify::transport::{Context, Outcome, Secret, post_json, read_secret};

pub(crate) struct Slack {
    url: Secret,
    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
}

impl Slack {
    pub(crate) fn new(
        at: &str,
        c: &SlackConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Slack, AlertConfigError> {
        let url = read_secret(at, "url_env", c.url_env.as_ref(), c.url_file.as_ref(), env)?
            .ok_or_else(|| AlertConfigError {
                at: at.to_owned(),
                field: Some("url_env"),
                message: "give url_env or url_file".into(),
            })?;
        check_url(at, &url)?;
        Ok(Slack {
            url,
            channel: c.channel.clone(),
            username: c.username.clone(),
            icon_emoji: c.icon_emoji.clone(),
        })
    }

    pub(crate) async fn send(&self, ctx: &Context, n: &Notification, timeout: Duration) -> Outcome {
        post_json(ctx, self.url.expose(), &self.payload(ctx, n), timeout, None).await
    }

    pub(crate) fn payload(&self, ctx: &Context, n: &Notification) -> Value {
        let color = match n.event {
            NotifyEvent::Firing => "#d40e0d",
            NotifyEvent::Repeat => "#daa038",
            NotifyEvent::Resolved => "#2eb886",
        };
        let mut fields = vec![
            json!({ "title": "Severity", "value": n.severity.as_str(), "short": true }),
            json!({ "title": "Rule", "value": format!("{} ({})", n.rule, n.kind.as_str()), "short": true }),
        ];
        if !n.group.is_empty() {
            fields.push(json!({ "title": "Group", "value": n.group, "short": true }));
        }
        if let Some(t) = n.fired_at {
            fields.push(json!({ "title": "Firing since", "value": t.to_string(), "short": true }));
        }
        if let Some(t) = n.resolved_at.filter(|_| n.event == NotifyEvent::Resolved) {
            let value = match &n.resolve_reason {
                Some(reason) => format!("{t} ({reason})"),
                None => t.to_string(),
            };
            fields.push(json!({ "title": "Resolved", "value": value, "short": true }));
        }
        let mut text = n.summary.clone();
        if let Some(d) = &n.description {
            text.push('\n');
            text.push_str(d);
        }
        let mut attachment = json!({
            "color": color,
            "fallback": format!("{}: {}", n.title(), n.summary),
            "title": n.title(),
            "text": text,
            "fields": fields,
            "footer": "Faultline",
            "ts": n.sent_at.unix_millis() / 1000,
        });
        if let Some(url) = &ctx.dashboard_url {
            attachment["title_link"] = json!(url);
        }
        let mut body = json!({
            "text": format!("{}: {}", n.title(), n.summary),
            "attachments": [attachment],
        });
        for (key, value) in [
            ("channel", &self.channel),
            ("username", &self.username),
            ("icon_emoji", &self.icon_emoji),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        body
    }
}

/// A URL read from a secret must be a URL; the error never shows the value.
pub(crate) fn check_url(at: &str, url: &Secret) -> Result<(), AlertConfigError> {
    let u = url.expose();
    if (u.starts_with("http://") || u.starts_with("https://")) && reqwest::Url::parse(u).is_ok() {
        Ok(())
    } else {
        Err(AlertConfigError {
            at: at.to_owned(),
            field: Some("url_env"),
            message: "the configured value is not an http:// or https:// URL".into(),
        })
    }
}

//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): a `text` line and
//! one colored attachment with the details.

use std::time::Duration;

use serde_json::{Value, json};

use super::SlackConfig;
use crate::alert_config::NotifyEvent;
use crate::error::AlertConfigError;
use crate::notify::notification::Notification;
use crate::notify::transport::{Context, Outcome, Secret, post_json, read_url};

pub(crate) struct Slack {
    url: Secret,
    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
    template: Option<String>,
}

impl Slack {
    pub(crate) fn new(
        at: &str,
        c: &SlackConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Slack, AlertConfigError> {
        let url = read_url(at, c.url_env.as_ref(), c.url_file.as_ref(), env)?;
        Ok(Slack {
            url,
            channel: c.channel.clone(),
            username: c.username.clone(),
            icon_emoji: c.icon_emoji.clone(),
            template: c.delivery.template.clone(),
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
        // Every text Slack renders is escaped: a group, a summary or a description carries
        // what records said, and `<!channel>` or `<https://evil|click>` must show as text.
        let field = |title: &str, value: &str| json!({ "title": title, "value": escape(value), "short": true });
        let mut fields = vec![
            field("Severity", n.severity.as_str()),
            field("Rule", &format!("{} ({})", n.rule, n.kind.as_str())),
        ];
        if !n.group.is_empty() {
            fields.push(field("Group", &n.group));
        }
        if let Some(t) = n.fired_at {
            fields.push(field("Firing since", &t.to_string()));
        }
        if let Some(t) = n.resolved_at.filter(|_| n.event == NotifyEvent::Resolved) {
            let value = match &n.resolve_reason {
                Some(reason) => format!("{t} ({reason})"),
                None => t.to_string(),
            };
            fields.push(field("Resolved", &value));
        }
        if let Some(url) = &n.runbook_url {
            // Slack links a bare URL by itself.
            fields.push(json!({ "title": "Runbook", "value": escape(url), "short": false }));
        }
        let mut text = n.summary.clone();
        if let Some(d) = &n.description {
            text.push('\n');
            text.push_str(d);
        }
        let line = match &self.template {
            Some(t) => n.render(t, ctx.dashboard_url.as_deref(), escape),
            None => escape(&format!("{}: {}", n.title(), n.summary)),
        };
        let mut attachment = json!({
            "color": color,
            "fallback": line,
            "title": escape(&n.title()),
            "text": escape(&text),
            "fields": fields,
            "footer": "Faultline",
            "ts": n.sent_at.unix_millis() / 1000,
        });
        if let Some(url) = &ctx.dashboard_url {
            attachment["title_link"] = json!(url);
        }
        let mut body = json!({
            "text": line,
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

/// Text as Slack's message formatting wants it: `&`, `<` and `>` as `&amp;`, `&lt;` and
/// `&gt;` (those three only: they are what Slack parses for links and mentions).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

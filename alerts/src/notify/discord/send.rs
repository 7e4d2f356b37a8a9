//! Discord's execute-webhook: `content` (the template, or the title and summary) and one
//! colored embed with the details, within Discord's limits. Mentions are switched off
//! (`allowed_mentions`), so `@everyone` in a record's text shows as text and pings no one.
//! A 429's `retry_after` is honored by the shared retry loop.

use std::time::Duration;

use serde_json::{Value, json};

use super::DiscordConfig;
use crate::alert_config::NotifyEvent;
use crate::error::AlertConfigError;
use crate::notify::notification::Notification;
use crate::notify::transport::{Context, Outcome, Secret, cut, post_json, read_url};

/// Discord's limits: message content, embed title, description, field value.
const MAX_CONTENT: usize = 2000;
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 4096;
const MAX_FIELD: usize = 1024;

pub(crate) struct Discord {
    url: Secret,
    username: Option<String>,
    avatar_url: Option<String>,
    template: Option<String>,
}

impl Discord {
    pub(crate) fn new(
        at: &str,
        c: &DiscordConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Discord, AlertConfigError> {
        let url = read_url(at, c.url_env.as_ref(), c.url_file.as_ref(), env)?;
        Ok(Discord {
            url,
            username: c.username.clone(),
            avatar_url: c.avatar_url.clone(),
            template: c.delivery.template.clone(),
        })
    }

    pub(crate) async fn send(&self, ctx: &Context, n: &Notification, timeout: Duration) -> Outcome {
        post_json(ctx, self.url.expose(), &self.payload(ctx, n), timeout, None).await
    }

    pub(crate) fn payload(&self, ctx: &Context, n: &Notification) -> Value {
        let color = match n.event {
            NotifyEvent::Firing => 0xd4_0e0d,
            NotifyEvent::Repeat => 0xda_a038,
            NotifyEvent::Resolved => 0x2e_b886,
        };
        let content = match &self.template {
            Some(t) => n.render(t, ctx.dashboard_url.as_deref(), str::to_owned),
            None => format!("{}: {}", n.title(), n.summary),
        };
        let field = |name: &str, value: &str, inline: bool| json!({ "name": name, "value": cut(value, MAX_FIELD), "inline": inline });
        let mut fields = vec![
            field("Severity", n.severity.as_str(), true),
            field("Rule", &format!("{} ({})", n.rule, n.kind.as_str()), true),
        ];
        if !n.group.is_empty() {
            fields.push(field("Group", &n.group, true));
        }
        let value = match n.threshold {
            Some(t) => format!("{} (threshold {t})", n.value),
            None => n.value.to_string(),
        };
        fields.push(field("Value", &value, true));
        if let Some(t) = n.resolved_at.filter(|_| n.event == NotifyEvent::Resolved) {
            let value = match &n.resolve_reason {
                Some(reason) => format!("{t} ({reason})"),
                None => t.to_string(),
            };
            fields.push(field("Resolved", &value, true));
        }
        if let Some(url) = &n.runbook_url {
            fields.push(field("Runbook", url, false));
        }
        let mut description = n.summary.clone();
        if let Some(d) = &n.description {
            description.push('\n');
            description.push_str(d);
        }
        let mut embed = json!({
            "title": cut(&n.title(), MAX_TITLE),
            "description": cut(&description, MAX_DESCRIPTION),
            "color": color,
            "fields": fields,
            "footer": { "text": "Faultline" },
            "timestamp": n.fired_at.unwrap_or(n.sent_at).to_string(),
        });
        if let Some(url) = &ctx.dashboard_url {
            embed["url"] = json!(url);
        }
        let mut body = json!({
            "content": cut(&content, MAX_CONTENT),
            "embeds": [embed],
            "allowed_mentions": { "parse": [] },
        });
        if let Some(u) = &self.username {
            body["username"] = json!(u);
        }
        if let Some(u) = &self.avatar_url {
            body["avatar_url"] = json!(u);
        }
        body
    }
}

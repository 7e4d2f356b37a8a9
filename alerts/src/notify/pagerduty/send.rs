//! PagerDuty Events API v2: `trigger` on firing and reminders, `resolve` on resolution,
//! both with the alert's stable `dedup_key`, so PagerDuty keeps one incident per alert.

use std::time::Duration;

use serde_json::{Value, json};

use super::{PAGERDUTY_EVENTS_URL, PagerdutyConfig};
use crate::alert_config::NotifyEvent;
use crate::error::AlertConfigError;
use crate::notify::notification::Notification;
use crate::notify::transport::{Context, Outcome, Secret, post_json, read_secret};

/// PagerDuty's limit on `payload.summary`.
const MAX_SUMMARY: usize = 1024;

pub(crate) struct PagerDuty {
    url: String,
    routing_key: Secret,
    template: Option<String>,
}

impl PagerDuty {
    pub(crate) fn new(
        at: &str,
        c: &PagerdutyConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PagerDuty, AlertConfigError> {
        let routing_key = read_secret(
            at,
            "routing_key_env",
            c.routing_key_env.as_ref(),
            c.routing_key_file.as_ref(),
            env,
        )?
        .ok_or_else(|| AlertConfigError {
            at: at.to_owned(),
            field: Some("routing_key_env"),
            message: "give routing_key_env or routing_key_file".into(),
        })?;
        Ok(PagerDuty {
            url: c
                .url
                .clone()
                .unwrap_or_else(|| PAGERDUTY_EVENTS_URL.to_owned()),
            routing_key,
            template: c.delivery.template.clone(),
        })
    }

    pub(crate) async fn send(&self, ctx: &Context, n: &Notification, timeout: Duration) -> Outcome {
        post_json(ctx, &self.url, &self.payload(ctx, n), timeout, None).await
    }

    pub(crate) fn payload(&self, ctx: &Context, n: &Notification) -> Value {
        if n.event == NotifyEvent::Resolved {
            return json!({
                "routing_key": self.routing_key.expose(),
                "event_action": "resolve",
                "dedup_key": n.dedup_key,
            });
        }
        let summary = match &self.template {
            Some(t) => n.render(t, ctx.dashboard_url.as_deref(), str::to_owned),
            None => format!("{}: {}", n.title(), n.summary),
        };
        let summary: String = summary.chars().take(MAX_SUMMARY).collect();
        let mut body = json!({
            "routing_key": self.routing_key.expose(),
            "event_action": "trigger",
            "dedup_key": n.dedup_key,
            "client": "Faultline",
            "payload": {
                "summary": summary,
                "source": "faultline",
                "severity": n.severity.as_str(),
                "timestamp": n.fired_at.unwrap_or(n.sent_at).to_string(),
                "class": n.kind.as_str(),
                "group": n.rule,
                "custom_details": {
                    "rule": n.rule,
                    "group": n.group,
                    "labels": n.labels,
                    "event": n.event,
                    "value": n.value,
                    "threshold": n.threshold,
                    "detail": n.detail,
                    "description": n.description,
                    "runbook_url": n.runbook_url,
                },
            },
        });
        if let Some(url) = &n.runbook_url {
            body["links"] = json!([{ "href": url, "text": "Runbook" }]);
        }
        if let Some(url) = &ctx.dashboard_url {
            body["client_url"] = json!(url);
        }
        body
    }
}

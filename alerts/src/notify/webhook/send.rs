//! The generic webhook: a POST of the [`Notification`] as JSON (its `version` 1 form is
//! documented in docs/OPERATIONS.md), optionally with a bearer token. Used, for example, for
//! an application's `control/stop` endpoint or a supervisor's restart hook.

use std::time::Duration;

use super::WebhookConfig;
use crate::error::AlertConfigError;
use crate::notify::notification::Notification;
use crate::notify::transport::{Context, Outcome, Secret, check_url, post_json, read_secret};

pub(crate) struct Webhook {
    url: Secret,
    bearer: Option<Secret>,
}

impl Webhook {
    pub(crate) fn new(
        at: &str,
        c: &WebhookConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Webhook, AlertConfigError> {
        let url = match &c.url {
            Some(url) => Secret::new(url.clone()),
            None => read_secret(at, "url_env", c.url_env.as_ref(), c.url_file.as_ref(), env)?
                .ok_or_else(|| AlertConfigError {
                    at: at.to_owned(),
                    field: Some("url"),
                    message: "give url, url_env or url_file".into(),
                })?,
        };
        check_url(at, &url)?;
        let bearer = read_secret(
            at,
            "bearer_token_env",
            c.bearer_token_env.as_ref(),
            c.bearer_token_file.as_ref(),
            env,
        )?;
        Ok(Webhook { url, bearer })
    }

    pub(crate) async fn send(&self, ctx: &Context, n: &Notification, timeout: Duration) -> Outcome {
        let mut body = n.clone();
        body.dashboard_url.clone_from(&ctx.dashboard_url);
        post_json(ctx, self.url.expose(), &body, timeout, self.bearer.as_ref()).await
    }
}

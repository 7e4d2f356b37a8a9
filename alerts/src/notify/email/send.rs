//! Email over SMTP with `lettre`: STARTTLS (default), TLS from the first byte, or plain
//! text for a relay on localhost; a login when `smtp_username` is set. The message is plain
//! text: the title as subject, the summary, and the details.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{EmailConfig, SmtpTls};
use crate::alert_config::NotifyEvent;
use crate::error::AlertConfigError;
use crate::notify::notification::Notification;
use crate::notify::transport::{Context, Outcome, read_secret};

pub(crate) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    template: Option<String>,
}

impl Email {
    pub(crate) fn new(
        at: &str,
        c: &EmailConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Email, AlertConfigError> {
        let fail = |field: &'static str, message: String| AlertConfigError {
            at: at.to_owned(),
            field: Some(field),
            message,
        };
        let host = c.smtp_host.clone().unwrap_or_default();
        let tls = c.tls.unwrap_or(SmtpTls::Starttls);
        let builder = match tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(25)
            }
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .map_err(|e| fail("smtp_host", format!("cannot set up STARTTLS: {e}")))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| fail("smtp_host", format!("cannot set up TLS: {e}")))?,
        };
        let mut builder = builder.timeout(Some(
            c.delivery.timeout.map_or(Duration::from_secs(10), |t| t.0),
        ));
        if let Some(port) = c.smtp_port {
            builder = builder.port(port);
        }
        if let Some(user) = &c.smtp_username {
            let password = read_secret(
                at,
                "smtp_password_env",
                c.smtp_password_env.as_ref(),
                c.smtp_password_file.as_ref(),
                env,
            )?;
            let password = password.map(|p| p.expose().to_owned()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from = c
            .from
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| fail("from", format!("not an address: {e}")))?;
        let to =
            c.to.iter()
                .map(|t| t.parse().map_err(|e| fail("to", format!("{t:?}: {e}"))))
                .collect::<Result<_, _>>()?;
        Ok(Email {
            transport: builder.build(),
            from,
            to,
            template: c.delivery.template.clone(),
        })
    }

    pub(crate) fn message(
        &self,
        n: &Notification,
        dashboard: Option<&str>,
    ) -> Result<Message, String> {
        let subject: String = format!("{}: {}", n.title(), n.summary)
            .chars()
            .take(200)
            .collect();
        let mut builder = Message::builder().from(self.from.clone()).subject(subject);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(body(n, self.template.as_deref(), dashboard))
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    pub(crate) async fn send(&self, ctx: &Context, n: &Notification) -> Outcome {
        let message = match self.message(n, ctx.dashboard_url.as_deref()) {
            Ok(m) => m,
            Err(error) => return Outcome::Fail { error, code: None },
        };
        match self.transport.send(message).await {
            Ok(response) => Outcome::Sent {
                code: Some(i32::from(u16::from(response.code()))),
            },
            Err(e) => {
                let code = e.status().map(|c| i32::from(u16::from(c)));
                let error = format!("SMTP: {e}");
                if e.is_permanent() {
                    Outcome::Fail { error, code }
                } else {
                    Outcome::Retry {
                        error,
                        code,
                        after: None,
                    }
                }
            }
        }
    }
}

/// The text: the template (or what fired and the summary), then every detail.
fn body(n: &Notification, template: Option<&str>, dashboard: Option<&str>) -> String {
    let state = match n.event {
        NotifyEvent::Firing => "is FIRING",
        NotifyEvent::Repeat => "is STILL FIRING",
        NotifyEvent::Resolved => "has RESOLVED",
    };
    let mut text = match template {
        Some(t) => format!("{}\n\n", n.render(t, dashboard, str::to_owned)),
        None => format!(
            "{} {state} (severity {}).\n\n{}\n\n",
            n.rule,
            n.severity.as_str(),
            n.summary
        ),
    };
    let mut line = |label: &str, value: &str| {
        text.push_str(&format!("{label:<10} {value}\n"));
    };
    line("Rule:", &format!("{} ({})", n.rule, n.kind.as_str()));
    if !n.group.is_empty() {
        line("Group:", &n.group);
    }
    line("Condition:", &n.detail);
    if let Some(t) = n.fired_at {
        line("Firing:", &t.to_string());
    }
    if let Some(t) = n.resolved_at.filter(|_| n.event == NotifyEvent::Resolved) {
        line("Resolved:", &t.to_string());
    }
    if let Some(reason) = &n.resolve_reason {
        line("Reason:", reason);
    }
    if let Some(url) = &n.runbook_url {
        line("Runbook:", url);
    }
    if let Some(url) = dashboard {
        line("Dashboard:", url);
    }
    if let Some(d) = &n.description {
        text.push('\n');
        text.push_str(d);
        text.push('\n');
    }
    text.push_str("\n-- \nSent by Faultline.\n");
    text
}

//! Email over SMTP: its config, and the sender (`send.rs`).

mod send;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use send::Email;

use super::delivery::{DeliveryConfig, OtherFields};
use crate::error::{AlertConfigError, err};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text, for a relay on localhost or a trusted network.
    None,
    /// Plain, then upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte, usually port 465.
    Tls,
}

/// `kind = "email"`. The password is a secret: only the variable or file holding it is
/// written in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmailConfig {
    /// The SMTP server's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    /// The SMTP port (default 25 with `tls = "none"`, 587 with `starttls`, 465 with `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    /// `none`, `starttls` (default) or `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    /// The SMTP user, if the server wants a login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_username: Option<String>,
    /// The environment variable holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password_env: Option<String>,
    /// A file holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<PathBuf>,
    /// The sender address (`Faultline <faultline@example.com>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Retries, timeout, events.
    #[serde(flatten)]
    pub delivery: DeliveryConfig,
    /// Fields an email channel does not read (an error).
    #[serde(flatten)]
    pub other: OtherFields,
}

impl EmailConfig {
    pub(crate) const FIELDS: &[&str] = &[
        "smtp_host",
        "smtp_port",
        "tls",
        "smtp_username",
        "smtp_password_env",
        "smtp_password_file",
        "from",
        "to",
    ];

    pub(crate) fn check(&self, at: &str) -> Result<(), AlertConfigError> {
        if self.smtp_host.as_deref().is_none_or(str::is_empty) {
            return Err(err(
                at,
                Some("smtp_host"),
                "missing: the SMTP server's host",
            ));
        }
        let from = self.from.as_deref().unwrap_or("");
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                at,
                Some("from"),
                format!("{from:?} is not an address (faultline@example.com)"),
            ));
        }
        if self.to.is_empty() {
            return Err(err(at, Some("to"), "missing: at least one recipient"));
        }
        for to in &self.to {
            if to.parse::<lettre::message::Mailbox>().is_err() {
                return Err(err(at, Some("to"), format!("{to:?} is not an address")));
            }
        }
        if self.smtp_password_env.is_some() && self.smtp_password_file.is_some() {
            return Err(err(
                at,
                Some("smtp_password_env"),
                "give smtp_password_env or smtp_password_file, not both",
            ));
        }
        if (self.smtp_password_env.is_some() || self.smtp_password_file.is_some())
            && self.smtp_username.is_none()
        {
            return Err(err(
                at,
                Some("smtp_username"),
                "a password needs a user name",
            ));
        }
        Ok(())
    }
}

//! PagerDuty Events API v2: its config, and the sender (`send.rs`).

mod send;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use send::PagerDuty;

use super::delivery::{DeliveryConfig, OtherFields};
use crate::error::{AlertConfigError, err, is_http_url};

/// The PagerDuty Events API v2 endpoint.
pub(crate) const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// `kind = "pagerduty"`. The routing key is a secret: only the variable or file holding it
/// is written in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PagerdutyConfig {
    /// The Events API endpoint (default `https://events.pagerduty.com/v2/enqueue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the integration's routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_env: Option<String>,
    /// A file holding the routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<PathBuf>,
    /// Retries, timeout, events.
    #[serde(flatten)]
    pub delivery: DeliveryConfig,
    /// Fields a PagerDuty channel does not read (an error).
    #[serde(flatten)]
    pub other: OtherFields,
}

impl PagerdutyConfig {
    pub(crate) const FIELDS: &[&str] = &["url", "routing_key_env", "routing_key_file"];

    pub(crate) fn check(&self, at: &str) -> Result<(), AlertConfigError> {
        if self.routing_key_env.is_some() == self.routing_key_file.is_some() {
            return Err(err(
                at,
                Some("routing_key_env"),
                "give exactly one of routing_key_env or routing_key_file (the routing \
                 key is a secret and is never written in the config)",
            ));
        }
        if let Some(url) = &self.url
            && !is_http_url(url)
        {
            return Err(err(at, Some("url"), "must start with http:// or https://"));
        }
        Ok(())
    }
}

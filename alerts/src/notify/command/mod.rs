//! A program run for each notification: its config, and the runner (`send.rs`).

mod send;

use serde::{Deserialize, Serialize};

pub(crate) use send::Command;

use super::delivery::{DeliveryConfig, OtherFields};
use crate::error::{AlertConfigError, err};

/// `kind = "command"`: a program from the config file (never from the API), run without a
/// shell.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommandConfig {
    /// The program and its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Retries, timeout, events.
    #[serde(flatten)]
    pub delivery: DeliveryConfig,
    /// Fields a command channel does not read (an error).
    #[serde(flatten)]
    pub other: OtherFields,
}

impl CommandConfig {
    pub(crate) const FIELDS: &[&str] = &["command"];

    pub(crate) fn check(&self, at: &str) -> Result<(), AlertConfigError> {
        if self.command.first().is_none_or(String::is_empty) {
            return Err(err(
                at,
                Some("command"),
                "missing: the program and its arguments, [\"/usr/bin/systemctl\", \"restart\", \"worker\"]",
            ));
        }
        Ok(())
    }
}

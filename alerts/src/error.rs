//! A configuration problem, and the checks and reserved names every part of the alert config
//! shares.

/// The built-in action that records the rule's firing (`failed`) and resolution (`ok`) as
/// system checks.
pub(crate) const SYSTEM_CHECK_ACTION: &str = "system_check";
/// The built-in action that shows a firing alert as a notice on the dashboard.
pub(crate) const NOTICE_ACTION: &str = "notice";

/// A configuration problem, naming where (`alerts.rules.api_errors`), the field, and what
/// is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {}{message}", field.map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct AlertConfigError {
    /// The table: `alerts.rules.NAME`, `alerts.channels.NAME`, `alerts.probes.NAME`, or a
    /// file.
    pub at: String,
    /// The field, when one is at fault.
    pub field: Option<&'static str>,
    /// What is wrong and what to write instead.
    pub message: String,
}

pub(crate) fn err(
    at: &str,
    field: Option<&'static str>,
    message: impl Into<String>,
) -> AlertConfigError {
    AlertConfigError {
        at: at.to_owned(),
        field,
        message: message.into(),
    }
}

/// Rule, channel and probe names: what env var names and URLs can carry.
pub(crate) fn check_name(at: &str, name: &str) -> Result<(), AlertConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(err(
            at,
            None,
            "names are 1 to 64 of [a-z0-9_.-] (use underscores to keep them overridable \
             by environment variables)",
        ))
    }
}

/// A secret URL comes from exactly one of `url_env` and `url_file`.
pub(crate) fn check_url_source(at: &str, env: bool, file: bool) -> Result<(), AlertConfigError> {
    if env == file {
        return Err(err(
            at,
            Some("url_env"),
            "give exactly one of url_env or url_file",
        ));
    }
    Ok(())
}

pub(crate) fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

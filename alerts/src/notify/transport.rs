//! What every channel's sender shares: secrets read from the environment or files, the HTTP
//! client, one JSON POST classified into an [`Outcome`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::error::AlertConfigError;

/// A secret read from the environment or a file. Prints as `***`.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// A secret given in the config itself (a URL that holds none, say), kept unprinted.
    pub(crate) fn new(value: String) -> Secret {
        Secret(value)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(s: &str) -> Secret {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads a secret named by `<field>_env` or `<field>_file`; `None` if neither is set.
pub(crate) fn read_secret(
    at: &str,
    field: &'static str,
    var: Option<&String>,
    file: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, AlertConfigError> {
    let fail = |message: String| AlertConfigError {
        at: at.to_owned(),
        field: Some(field),
        message,
    };
    if let Some(var) = var {
        let value = env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(format!("environment variable {var} is not set")))?;
        return Ok(Some(Secret(value)));
    }
    if let Some(path) = file {
        let value = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(fail(format!("{} is empty", path.display())));
        }
        return Ok(Some(Secret(value)));
    }
    Ok(None)
}

/// A webhook URL that is a secret, from `url_env` or `url_file`, checked to be a URL.
pub(crate) fn read_url(
    at: &str,
    var: Option<&String>,
    file: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, AlertConfigError> {
    let url = read_secret(at, "url_env", var, file, env)?.ok_or_else(|| AlertConfigError {
        at: at.to_owned(),
        field: Some("url_env"),
        message: "give url_env or url_file".into(),
    })?;
    check_url(at, &url)?;
    Ok(url)
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

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Delivered; the receiver's code.
    Sent { code: Option<i32> },
    /// Failed in a way worth another attempt (network, timeout, 429, 5xx, SMTP 4xx), after
    /// `after` if the receiver said so.
    Retry {
        error: String,
        code: Option<i32>,
        after: Option<Duration>,
    },
    /// Failed for good (a 4xx, a permanent SMTP error, a bad message).
    Fail { error: String, code: Option<i32> },
}

/// What every attempt needs.
#[derive(Clone)]
pub(crate) struct Context {
    pub http: reqwest::Client,
    pub dashboard_url: Option<String>,
}

impl Context {
    pub(crate) fn new(dashboard_url: Option<String>) -> Context {
        let http = reqwest::Client::builder()
            // A notification is one request: a redirect is a misconfiguration, and
            // following it could carry the payload somewhere unexpected.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("faultline/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Context {
            http,
            dashboard_url,
        }
    }
}

/// POSTs JSON and classifies the answer: 2xx sent; 408, 429 and 5xx retried (honoring
/// `Retry-After`, or the `retry_after` of the JSON answer as Discord and Telegram send it);
/// other statuses failed. Errors never include the URL, which may be secret.
pub(crate) async fn post_json<T: Serialize + ?Sized>(
    ctx: &Context,
    url: &str,
    body: &T,
    timeout: Duration,
    bearer: Option<&Secret>,
) -> Outcome {
    let mut request = ctx.http.post(url).timeout(timeout).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token.expose());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                error: http_error(e),
                code: None,
                after: None,
            };
        }
    };
    let status = response.status();
    let code = Some(i32::from(status.as_u16()));
    if status.is_success() {
        return Outcome::Sent { code };
    }
    let header = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(seconds);
    let text = response.text().await.unwrap_or_default();
    let after = header.or_else(|| retry_after_in_body(&text));
    let error = format!("HTTP {}{}", status.as_u16(), snippet(&text));
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Outcome::Retry { error, code, after }
    } else {
        Outcome::Fail { error, code }
    }
}

/// Seconds as a `Retry-After` or `retry_after` gives them (`5`, `0.35`).
fn seconds(v: &str) -> Option<Duration> {
    let s: f64 = v.trim().parse().ok()?;
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(86_400.0)))
}

/// The wait a 429's JSON body asks for: Discord's `retry_after` (seconds, fractional) or
/// Telegram's `parameters.retry_after` (whole seconds).
fn retry_after_in_body(text: &str) -> Option<Duration> {
    let body: serde_json::Value = serde_json::from_str(text).ok()?;
    let v = body
        .get("retry_after")
        .or_else(|| body.get("parameters")?.get("retry_after"))?;
    seconds(&v.as_f64()?.to_string())
}

/// A reqwest error without its URL.
fn http_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    format!("{kind}: {detail}")
}

/// The start of a receiver's answer, on one line, for the delivery record.
fn snippet(text: &str) -> String {
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if one_line.is_empty() {
        String::new()
    } else {
        format!(": {one_line}")
    }
}

/// `text` cut to at most `max` characters, with `…` as the last one when cut (a receiver's
/// length limit, so a long summary does not turn a message into a 400).
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

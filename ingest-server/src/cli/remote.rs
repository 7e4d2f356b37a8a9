//! What the subcommands that talk to a running server share (`silence`, `sourcemaps`): the
//! `--server` and `--token` flags and an authenticated JSON client.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Which server to ask and with what token.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The server (`http://127.0.0.1:8080`).
    #[arg(
        long,
        global = true,
        env = "FAULTLINE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// The admin token (`sourcemaps` also takes a secret key with `sourcemaps = true`).
    #[arg(
        long,
        global = true,
        env = "FAULTLINE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl ServerArgs {
    /// A client for these flags; `no_token` is the error when no token was given.
    pub(super) fn client(&self, no_token: &str, timeout: Duration) -> anyhow::Result<Client> {
        let token = self.token.as_deref().context(no_token.to_owned())?;
        Ok(Client {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            base: reqwest::Url::parse(&self.server)
                .with_context(|| format!("--server {:?} is not a URL", self.server))?,
            token: token.to_owned(),
        })
    }
}

/// What a request carries.
pub(super) enum Body {
    /// Nothing.
    Empty,
    /// A JSON value.
    Json(Value),
    /// JSON already gzipped.
    GzipJson(Vec<u8>),
}

/// Requests to one server with a bearer token.
pub(super) struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

impl Client {
    /// The server's URL with `segments` as its path.
    pub(super) fn url(&self, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--server {} cannot have a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a request to the path `segments`; the JSON answer, or an error with the
    /// server's message.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        body: Body,
    ) -> anyhow::Result<Value> {
        self.send(method, self.url(segments)?, body).await
    }

    /// Sends a request to `url`; the JSON answer, or an error with the server's message.
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Body,
    ) -> anyhow::Result<Value> {
        let mut builder = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token);
        builder = match body {
            Body::Empty => builder,
            Body::Json(value) => builder.json(&value),
            Body::GzipJson(bytes) => builder
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(bytes),
        };
        let response = builder
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{status}: {}",
                answer["error"].as_str().unwrap_or("no error message")
            );
        }
        Ok(answer)
    }
}

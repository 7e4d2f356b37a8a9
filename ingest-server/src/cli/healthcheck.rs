//! `faultline healthcheck`: asks a running server's `/readyz` and exits 0 when it answers
//! 200, 1 otherwise: the container image's `HEALTHCHECK` (an image built `FROM scratch` has
//! no curl).

use std::process::ExitCode;
use std::time::Duration;

/// `faultline healthcheck` flags.
#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The URL to ask [default: /readyz on FAULTLINE_LISTEN, https when FAULTLINE_TLS_CERT
    /// is set]. The certificate is not verified for loopback addresses (it names the
    /// public host).
    #[arg(long)]
    pub url: Option<String>,
}

/// The check.
pub(crate) async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let url = args.url.unwrap_or_else(|| {
        let listen = std::env::var("FAULTLINE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
        let port = listen.rsplit(':').next().unwrap_or("8080");
        let scheme = if std::env::var_os("FAULTLINE_TLS_CERT").is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{port}/readyz")
    });
    let loopback =
        url.contains("://127.0.0.1") || url.contains("://localhost") || url.contains("://[::1]");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(4))
        .danger_accept_invalid_certs(loopback)
        .build();
    let answer = match client {
        Ok(c) => c.get(&url).send().await,
        Err(e) => {
            eprintln!("faultline healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match answer {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("faultline healthcheck: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("faultline healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

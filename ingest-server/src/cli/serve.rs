//! `faultline serve`: load the config, start the server, print where it listens (and the
//! secrets generated on a first start), serve until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Config, Overrides};

/// `faultline serve` flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML config file (optional: without it the embedded defaults apply).
    #[arg(long, env = "FAULTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "FAULTLINE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory [default: ./data].
    #[arg(long, env = "FAULTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PEM certificate chain for HTTPS (with --tls-key; reloaded on SIGHUP and on change).
    #[arg(long, env = "FAULTLINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "FAULTLINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
    };
    let config = Config::load(args.config.as_deref(), &overrides, &env)?;
    let mut server = crate::start(config, &env).await?;
    server.reload_on_sighup(args.config.clone(), overrides);
    if !server.generated.is_empty() {
        println!(
            "faultline: generated on first start (kept in {}; shown only this once):",
            server.secrets_file.display()
        );
        for (label, value) in &server.generated {
            println!("  {label:<36} {value}");
        }
    }
    // Before it says it listens: a stop request from then on is handled.
    let shutdown = crate::server::shutdown_signal();
    let config = &server.state.config;
    let store = if config.database_url.is_some() {
        format!(
            "PostgreSQL, outage spool in {}",
            config.data_dir.join("spool").display()
        )
    } else {
        format!("file store in {}", config.data_dir.display())
    };
    println!(
        "faultline: listening on {}://{} ({store})",
        server.scheme(),
        server.addr
    );
    server.run(shutdown).await
}

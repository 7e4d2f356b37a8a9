//! The `faultline` command line: one file per subcommand (`serve.rs`, `migrate.rs`,
//! `check_alerts.rs`, `summary.rs`, `sourcemaps.rs`, `silence.rs`, `import.rs`; `faultline
//! forward` is the `faultline-forward` crate).
//! Every flag also reads an environment variable.

mod check_alerts;
mod healthcheck;
mod import;
mod migrate;
mod remote;
mod serve;
mod silence;
mod sourcemaps;
mod summary;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

pub use check_alerts::CheckArgs;
pub use healthcheck::HealthcheckArgs;
pub use import::ImportArgs;
pub use migrate::MigrateArgs;
pub use remote::ServerArgs;
pub use serve::ServeArgs;
pub use silence::{SilenceArgs, SilenceCommand};
pub use sourcemaps::{SourcemapsArgs, SourcemapsCommand};
pub use summary::SummaryArgs;
pub use validate::ValidateArgs;

/// Faultline: errors and logs from browsers and services, stored, queried and alerted on.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (`info`, `faultline_server=debug`, ...).
    #[arg(long, global = true, env = "FAULTLINE_LOG", default_value = "info")]
    pub log: String,
    /// Log format: `text` or `json`.
    #[arg(
        long,
        global = true,
        env = "FAULTLINE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ingest server.
    Serve(serve::ServeArgs),
    /// Apply the PostgreSQL migrations and create the current partitions, then exit.
    Migrate(migrate::MigrateArgs),
    /// Evaluate the alert rules once against the store (for cron): exit 0 when all is
    /// well, 1 when something fires, 2 on error.
    CheckAlerts(check_alerts::CheckArgs),
    /// Records per service and level, firing alerts and the latest checks.
    Summary(summary::SummaryArgs),
    /// Ship a program's log lines (standard input, or a file it follows) to the server.
    Forward(faultline_forward::ForwardArgs),
    /// Upload, list or delete a release's source maps on a running server.
    Sourcemaps(sourcemaps::SourcemapsArgs),
    /// Add, list or expire silences (alerts that notify nobody for a while) on a running
    /// server.
    Silence(silence::SilenceArgs),
    /// Check a config file (values, keys, alert rules and channels, the environment
    /// variables and files they name, the TLS files): every problem listed, exit 0 or 1.
    Validate(validate::ValidateArgs),
    /// Bring archives (what retention wrote to `[retention] archive_dir`) back into the
    /// store: every file checked first, nothing stored twice.
    Import(import::ImportArgs),
    /// Ask a running server's /readyz (for a container HEALTHCHECK): exit 0 when ready.
    Healthcheck(healthcheck::HealthcheckArgs),
}

/// Where the config and the stores are, for the subcommands that open the stores themselves
/// (`check-alerts`, `summary`, `import`).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The TOML config file (its `[alerts]` section, storage and database).
    #[arg(long, env = "FAULTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, env = "FAULTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// The config these flags name, with their overrides, reading variables through `env`.
    fn load(&self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            ..Overrides::default()
        };
        Ok(Config::load(self.config.as_deref(), &overrides, env)?)
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::serve(args)),
        Command::Migrate(args) => runtime.block_on(migrate::migrate(args)),
        Command::CheckAlerts(args) => return runtime.block_on(check_alerts::check_alerts(args)),
        Command::Summary(args) => runtime.block_on(summary::summary(args)),
        Command::Sourcemaps(args) => runtime.block_on(sourcemaps::sourcemaps(args)),
        Command::Silence(args) => runtime.block_on(silence::silence(args)),
        Command::Import(args) => runtime.block_on(import::import(args)),
        Command::Validate(args) => return validate::validate(&args),
        Command::Healthcheck(args) => return runtime.block_on(healthcheck::healthcheck(args)),
        Command::Forward(args) => {
            // The signal handlers are installed in the runtime, now.
            let stop = {
                let _inside = runtime.enter();
                crate::server::shutdown_signal()
            };
            return faultline_forward::run(args, &runtime, stop);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

//! The `faultline` command line. Every flag also reads an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

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
    Serve(ServeArgs),
    /// Apply the PostgreSQL migrations and create the current partitions, then exit.
    Migrate(MigrateArgs),
    /// Evaluate the alert rules once against the store (for cron): exit 0 when all is
    /// well, 1 when something fires, 2 on error.
    CheckAlerts(crate::alerts::CheckArgs),
    /// Records per service and level, firing alerts and the latest checks.
    Summary(crate::alerts::SummaryArgs),
    /// Ship a program's log lines (standard input, or a file it follows) to the server.
    Forward(crate::forward::ForwardArgs),
}

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
}

/// `faultline migrate` flags.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The TOML config file (for `database_url` and `[postgres]`).
    #[arg(long, env = "FAULTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
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
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Migrate(args) => runtime.block_on(migrate(args)),
        Command::CheckAlerts(args) => return runtime.block_on(crate::alerts::check_alerts(args)),
        Command::Summary(args) => runtime.block_on(crate::alerts::summary(args)),
        Command::Forward(args) => return crate::forward::main(args, &runtime),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
    };
    let config = Config::load(args.config.as_deref(), &overrides, &env)?;
    let server = crate::start(config, &env).await?;
    if !server.generated.is_empty() {
        println!(
            "faultline: generated on first start (kept in {}; shown only this once):",
            server.secrets_file.display()
        );
        for (label, value) in &server.generated {
            println!("  {label:<36} {value}");
        }
    }
    let config = &server.state.config;
    let store = if config.database_url.is_some() {
        format!(
            "PostgreSQL, outage spool in {}",
            config.data_dir.join("spool").display()
        )
    } else {
        format!("file store in {}", config.data_dir.display())
    };
    println!("faultline: listening on http://{} ({store})", server.addr);
    server.run(crate::serve::shutdown_signal()).await
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let overrides = Overrides {
        database_url: args.database_url,
        ..Overrides::default()
    };
    let config = Config::load(args.config.as_deref(), &overrides, &env)?;
    let url = config.database_url.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "no database: pass --database-url, set DATABASE_URL, or database_url in the config"
        )
    })?;
    faultline_store::PostgresStore::migrate(url, config.postgres.partitions_ahead).await?;
    println!("faultline: migrations applied, partitions ready");
    Ok(())
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

//! `faultline migrate`: apply the PostgreSQL migrations and create the current partitions.

use std::path::PathBuf;

use crate::config::{Config, Overrides};

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

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
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

//! `faultline validate --config FILE`: every problem with a config before it is deployed
//! (or reloaded): the TOML and its types, the rules between values, the keys, alert rules
//! and channels, the environment variables and files they name (`*_env`, `*_file`), and the
//! TLS certificate and key. Prints each problem on its own line; exit 0 when there is none,
//! 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, Overrides};

/// `faultline validate` flags.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The TOML config file to check.
    #[arg(long, env = "FAULTLINE_CONFIG")]
    pub config: PathBuf,
}

/// Runs the check with the process environment.
pub(crate) fn validate(args: &ValidateArgs) -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let problems = problems(&args.config, &env);
    if problems.is_empty() {
        println!("{}: ok", args.config.display());
        return ExitCode::SUCCESS;
    }
    for problem in &problems {
        println!("{}: {problem}", args.config.display());
    }
    println!(
        "{}: {} problem{}",
        args.config.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    ExitCode::FAILURE
}

/// Every problem with the config at `path`, reading variables through `env`.
pub(crate) fn problems(
    path: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let config = match Config::load_unchecked(Some(path), &Overrides::default(), env) {
        Ok(c) => c,
        // Unreadable, not TOML, an unknown field or a wrong type: nothing further can be
        // checked.
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = config.problems();
    if let Ok(table) = toml::Table::try_from(&config) {
        let skip = config.alerts.skip_unconfigured_channels;
        named_secrets(&table, "", skip, env, &mut problems);
    }
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        let files = crate::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        };
        if let Err(e) = crate::tls::load(&files) {
            problems.push(format!("tls: {e:#}"));
        }
    }
    if let Some(target) = config.access_log.as_deref().filter(|t| *t != "stdout") {
        let dir = std::path::Path::new(target)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            problems.push(format!(
                "access_log: the directory of {target:?} does not exist: create it, or give \"stdout\""
            ));
        }
    }
    problems
}

/// Every `*_env` field must name a set, non-empty variable and every `*_file` field a
/// readable, non-empty file: keys, alert channels and probes name their secrets this way
/// (an alert channel's unset variable is no problem with `skip_unconfigured_channels`).
fn named_secrets(
    table: &toml::Table,
    at: &str,
    skip_unconfigured: bool,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) {
    for (field, value) in table {
        let here = if at.is_empty() {
            field.clone()
        } else {
            format!("{at}.{field}")
        };
        match value {
            toml::Value::Table(inner) => {
                named_secrets(inner, &here, skip_unconfigured, env, problems);
            }
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(inner) = item {
                        named_secrets(
                            inner,
                            &format!("{here}[{i}]"),
                            skip_unconfigured,
                            env,
                            problems,
                        );
                    }
                }
            }
            // With skip_unconfigured_channels such a channel is "not configured", not wrong.
            toml::Value::String(_)
                if field.ends_with("_env")
                    && at.starts_with("alerts.channels.")
                    && skip_unconfigured =>
            {
                continue;
            }
            toml::Value::String(name)
                if field.ends_with("_env") && env(name).is_none_or(|v| v.trim().is_empty()) =>
            {
                problems.push(format!(
                    "{here}: environment variable {name} is not set (or empty)"
                ));
            }
            toml::Value::String(file) if field.ends_with("_file") => {
                match std::fs::read_to_string(file) {
                    Ok(text) if text.trim().is_empty() => {
                        problems.push(format!("{here}: {file} is empty"));
                    }
                    Ok(_) => {}
                    Err(e) => problems.push(format!("{here}: cannot read {file}: {e}")),
                }
            }
            _ => {}
        }
    }
}

//! `faultline check-alerts`: one evaluation against the store, for cron
//! ([`faultline_alerts::check_once`] says how a run continues from the previous one), with
//! its result as a table or JSON.
//!
//! Exit status: 0 when nothing fires, 1 when an alert fires (or fired during the window),
//! 2 when the check itself failed (config, store).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use faultline_alerts::{CheckKind, CheckOptions, CheckStatus, Delivery, SystemCheck, check_once};
use faultline_schema::HumanDuration;
use serde_json::json;

use super::StoreArgs;
use crate::store::Purpose;

/// `faultline check-alerts` flags.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The config and the stores.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// How far back to look: seconds (`60`) or a duration (`15m`). A rule already checked
    /// more recently continues from its last check instead.
    #[arg(long, default_value = "60", value_parser = parse_window)]
    pub window: Duration,
    /// Reset this rule first (resolving its firing alerts, with notifications).
    #[arg(long, conflicts_with = "reset_all")]
    pub reset: Option<String>,
    /// Reset every rule first.
    #[arg(long)]
    pub reset_all: bool,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_window(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => HumanDuration::parse(s)?.0,
    };
    if d.is_zero() {
        return Err("the window must be above 0".into());
    }
    Ok(d)
}

/// Runs the command; prints errors itself, so the exit status stays meaningful.
pub(crate) async fn check_alerts(args: CheckArgs) -> ExitCode {
    match run(args).await {
        Ok(true) => ExitCode::from(1),
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `true` when something fires.
async fn run(args: CheckArgs) -> anyhow::Result<bool> {
    let env = |k: &str| std::env::var(k).ok();
    let config = args.stores.load(&env)?;
    let opened = crate::store::open(&config, Purpose::CheckAlerts).await?;
    let options = CheckOptions {
        window: args.window,
        reset: args.reset.clone(),
        reset_all: args.reset_all,
    };
    let outcome = check_once(
        &config.alerts,
        opened.records.as_ref(),
        opened.alerts.as_ref(),
        &options,
        &env,
    )
    .await?;
    opened
        .records
        .shutdown()
        .await
        .context("store shutdown failed")?;
    report(&args, &outcome.checks, &outcome.deliveries, outcome.firing);
    Ok(outcome.firing)
}

fn report(args: &CheckArgs, checks: &[SystemCheck], deliveries: &[Delivery], firing: bool) {
    if args.json {
        let body = json!({
            "status": if firing { "firing" } else { "ok" },
            "checks": checks,
            "deliveries": deliveries,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
        return;
    }
    for c in checks {
        let status = match c.status {
            CheckStatus::Ok => "ok",
            CheckStatus::Pending => "pending",
            CheckStatus::Failed => "FAILED",
        };
        let kind = match c.kind {
            CheckKind::Rule => "rule",
            CheckKind::Probe => "probe",
        };
        let group = c
            .group
            .as_deref()
            .map(|g| format!(" [{g}]"))
            .unwrap_or_default();
        println!("{status:<8} {kind:<6} {}{group}: {}", c.name, c.detail);
    }
    for d in deliveries {
        let outcome = match &d.error {
            None => "sent".to_owned(),
            Some(e) => format!("FAILED after {} attempt(s): {e}", d.attempts),
        };
        println!(
            "notify   {:<6} {} -> {}: {outcome}",
            d.event.as_str(),
            d.rule,
            d.channel
        );
    }
    println!(
        "faultline check-alerts: {}",
        if firing {
            "something fires (exit 1)"
        } else {
            "all ok"
        }
    );
}

//! `faultline check-alerts`: one evaluation against the store, for cron.
//!
//! Each rule continues from where the previous run stopped (or from `--window` ago, if that
//! is later): the records before that point refill its window without re-deciding anything,
//! and the records since are replayed at their own times with the clock ticking in between,
//! so a threshold crossed between two runs is caught even if it is no longer crossed now,
//! and nothing is counted twice by overlapping runs. Probes run once. Every rule's result
//! is recorded as a system check; notifications go out exactly as in the server.
//!
//! Exit status: 0 when nothing fires, 1 when an alert fires (or fired during the window),
//! 2 when the check itself failed (config, store).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use faultline_schema::Timestamp;
use serde_json::json;

use super::eval::{Evaluator, Interest};
use super::notify::{Context, Notification};
use super::rule::{Action, NotifyEvent};
use super::store::{CheckKind, CheckStatus, Delivery, SystemCheck};
use super::{AlertAccess, PRIME_MAX_RECORDS, build_targets, probe_rule_depths};
use crate::config::{Config, Overrides};
use crate::duration::HumanDuration;

/// `faultline check-alerts` flags.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The TOML config file with the `[alerts]` section.
    #[arg(long, env = "FAULTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, env = "FAULTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
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
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        ..Overrides::default()
    };
    let config = Config::load(args.config.as_deref(), &overrides, &env)?;
    let compiled = config.alerts.compile()?;
    let (channels, probes) = build_targets(&compiled, &env)?;
    let opened = crate::serve::open_store(&config).await?;
    let store = super::open_store(&config, &opened, AlertAccess::Evaluate).await?;
    let records = opened.store;

    let now = Timestamp::now();
    let mut engine = Evaluator::new(
        &compiled.rules,
        &compiled.meta_keys,
        compiled.settings.max_groups,
        "check-alerts",
        store.load().await?,
        now,
    );
    // Notifications an interrupted earlier run decided but did not deliver.
    let owed_before = engine.owed(now);
    let rule_names: Vec<String> = engine.rules().map(|r| r.name.clone()).collect();
    if let Some(rule) = &args.reset {
        let idx = engine.rule_index(rule).with_context(|| {
            format!("no rule named {rule:?} (rules: {})", rule_names.join(", "))
        })?;
        engine.reset(idx, now);
    }
    if args.reset_all {
        for idx in 0..rule_names.len() {
            engine.reset(idx, now);
        }
    }

    let window_ms = i64::try_from(args.window.as_millis()).unwrap_or(i64::MAX);
    let step = i64::try_from(compiled.settings.evaluation_interval.0.as_millis())
        .unwrap_or(1000)
        .max(1);
    let interest = Interest::new(compiled.rules.clone(), &compiled.meta_keys);
    let rules = compiled.rules.clone();
    for (idx, rule) in rules.iter().enumerate() {
        if rule.window_ms == 0 {
            continue;
        }
        let mut start = now.unix_millis() - window_ms;
        for t in [engine.evaluated_at(idx), engine.reset_at(idx)]
            .into_iter()
            .flatten()
        {
            start = start.max(t.unix_millis());
        }
        let start = start.min(now.unix_millis());
        let read_from = start - rule.horizon_ms();
        // A rule checked before continues from what was read; on its first run, silence is
        // counted from the start of the window, not from before the data.
        let baseline = if engine.evaluated_at(idx).is_some() {
            read_from
        } else {
            start
        };
        engine.set_baseline(idx, Timestamp::from_unix_millis(baseline));
        let mut query = rule.query();
        query.since = Some(Timestamp::from_unix_millis(read_from));
        query.until = Some(Timestamp::from_unix_millis(now.unix_millis() + 1));
        let records = records
            .scan(query, PRIME_MAX_RECORDS)
            .await
            .with_context(|| format!("cannot read the records of rule {}", rule.name))?;
        let mut t = start;
        for r in records.iter().rev() {
            let Some(obs) = interest.observe(r) else {
                continue;
            };
            if obs.ts.unix_millis() < start {
                engine.prime(idx, &obs);
                continue;
            }
            while t + step <= obs.ts.unix_millis() {
                t += step;
                engine.tick_rule(idx, Timestamp::from_unix_millis(t));
            }
            engine.replay(idx, &obs);
        }
        while t + step <= now.unix_millis() {
            t += step;
            engine.tick_rule(idx, Timestamp::from_unix_millis(t));
        }
        engine.set_evaluated_at(idx, now);
    }

    // Probes: their recent results first (a rule may need several failures in a row),
    // then one run each.
    let mut checks: Vec<SystemCheck> = Vec::new();
    for (name, failures) in probe_rule_depths(&rules) {
        for c in store.recent_checks(&name, failures).await?.iter().rev() {
            engine.probe_result(
                &name,
                c.status == CheckStatus::Failed,
                &c.detail,
                c.checked_at,
                false,
            );
        }
    }
    let ctx = Context::new(compiled.settings.dashboard_url.clone());
    let runs = probes.iter().map(|p| {
        let http = ctx.http.clone();
        let p = Arc::clone(p);
        async move { (p.clone(), p.run(&http).await) }
    });
    for (probe, result) in futures_join_all(runs).await {
        let at = Timestamp::now();
        checks.push(SystemCheck {
            name: probe.name.clone(),
            kind: CheckKind::Probe,
            status: if result.failed {
                CheckStatus::Failed
            } else {
                CheckStatus::Ok
            },
            detail: format!("{}: {}", probe.kind.as_str(), result.detail),
            group: None,
            source: "check-alerts".into(),
            checked_at: at,
        });
        engine.probe_result(&probe.name, result.failed, &result.detail, at, true);
    }
    let end = Timestamp::now();
    engine.tick(end);

    let effects = engine.take_effects();
    let fired = effects
        .notifications
        .iter()
        .any(|n| n.event == NotifyEvent::Firing);
    for idx in 0..rules.len() {
        if let Some(c) = engine.check(idx, end) {
            checks.push(c);
        }
    }
    store.save(engine.take_changes()).await?;
    // The `system_check` actions' records (firing and resolved, at their times), then this
    // run's result of every rule and probe.
    store.append_checks(effects.checks).await?;
    store.append_checks(checks.clone()).await?;

    // Notifications owed by an interrupted earlier run come first, then this run's, in
    // order, one channel after another.
    let mut deliveries: Vec<Delivery> = Vec::new();
    let mut decided: Vec<Notification> = owed_before;
    decided.extend(effects.notifications);
    for n in &decided {
        let Some(rule) = rules.iter().find(|r| r.name == n.rule) else {
            continue;
        };
        let mut round = Vec::new();
        for action in &rule.actions {
            match action {
                Action::Channel { name, on } if on.contains(&n.event) => {
                    if let Some(channel) = channels.get(name) {
                        round.push(channel.deliver(&ctx, n).await);
                    }
                }
                _ => {}
            }
        }
        engine.delivered(&n.rule, &n.group, n.event);
        deliveries.extend(round);
    }
    store.save(engine.take_changes()).await?;
    store.append_deliveries(deliveries.clone()).await?;
    records.shutdown().await.context("store shutdown failed")?;

    let firing = !engine.firing(end).is_empty() || fired;
    report(&args, &checks, &deliveries, firing);
    Ok(firing)
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
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

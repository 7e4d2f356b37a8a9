//! One evaluation against the store (`faultline check-alerts`, for cron).
//!
//! Each rule continues from where the previous run stopped (or from the window's start, if
//! that is later): the records before that point refill its window without re-deciding
//! anything, and the records since are replayed at their own times with the clock ticking in
//! between, so a threshold crossed between two runs is caught even if it is no longer crossed
//! now, and nothing is counted twice by overlapping runs. Probes run once. Every rule's
//! result is recorded as a system check; notifications go out exactly as in the server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use faultline_schema::Timestamp;
use faultline_store::RecordStore;

use crate::alert_config::{AlertsConfig, NotifyEvent};
use crate::eval::{Evaluator, Interest};
use crate::notify::{Context, Notification};
use crate::rule::Action;
use crate::service::{PRIME_MAX_RECORDS, Targets, build_targets, probe_rule_depths, skipped};
use crate::store::{AlertStore, CheckKind, CheckStatus, Delivery, SystemCheck};

/// What one evaluation is asked to do.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// How far back to look; a rule already checked more recently continues from its last
    /// check instead.
    pub window: Duration,
    /// Reset this rule first (resolving its firing alerts, with notifications).
    pub reset: Option<String>,
    /// Reset every rule first.
    pub reset_all: bool,
}

/// What one evaluation found and did.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// This run's result of every rule and probe.
    pub checks: Vec<SystemCheck>,
    /// Every notification sent (or failed), in order.
    pub deliveries: Vec<Delivery>,
    /// Whether an alert fires now or fired during the window.
    pub firing: bool,
}

/// Evaluates `config`'s rules once over `records`, continuing from the state in `store`
/// (opened exclusively by the caller), runs the probes, persists, and notifies. Channel and
/// probe secrets are read through `env`.
pub async fn check_once(
    config: &AlertsConfig,
    records: &dyn RecordStore,
    store: &dyn AlertStore,
    options: &CheckOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<CheckOutcome> {
    let compiled = config.compile()?;
    let Targets {
        channels,
        probes,
        unconfigured,
    } = build_targets(&compiled, env)?;

    let now = Timestamp::now();
    let mut engine = Evaluator::new(
        &compiled.rules,
        &compiled.meta_keys,
        compiled.settings.max_groups,
        "check-alerts",
        store.load().await?,
        now,
    );
    engine.set_inhibits(crate::silence::compile_inhibits(
        &compiled.settings.inhibit,
        |_| true,
    )?);
    engine.set_silences(store.silences().await?);
    // Notifications an interrupted earlier run decided but did not deliver.
    let owed_before = engine.owed(now);
    let rule_names: Vec<String> = engine.rules().map(|r| r.name.clone()).collect();
    if let Some(rule) = &options.reset {
        let idx = engine.rule_index(rule).with_context(|| {
            format!("no rule named {rule:?} (rules: {})", rule_names.join(", "))
        })?;
        engine.reset(idx, now);
    }
    if options.reset_all {
        for idx in 0..rule_names.len() {
            engine.reset(idx, now);
        }
    }

    let window_ms = i64::try_from(options.window.as_millis()).unwrap_or(i64::MAX);
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
    let archive = records.health().archive;
    let runs = probes.iter().map(|p| {
        let http = ctx.http.clone();
        let p = Arc::clone(p);
        let archive = archive.clone();
        async move { (p.clone(), p.run(&http, move || archive).await) }
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
                    } else if unconfigured.contains_key(name) {
                        skipped(name, n);
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

    let firing = !engine.firing(end).is_empty() || fired;
    Ok(CheckOutcome {
        checks,
        deliveries,
        firing,
    })
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

//! What the alert engine shows: the `GET /alerts` body ([`AlertsView`]) and a reset's answer
//! ([`ResetView`]), built from the running service's state; the HTTP layer only renders them.

use faultline_schema::Timestamp;
use serde::Serialize;

use crate::alert_config::{AlertsConfig, RuleConfig, RuleKind, Severity};
use crate::alert_state::AlertStatus;
pub use crate::eval::GroupView;
use crate::notify::ChannelKind;
use crate::store::{AlertStore, Delivery, SystemCheck};

/// The `GET /alerts` body.
#[derive(Debug, Clone, Serialize)]
pub struct AlertsView {
    /// Whether the server evaluates rules (`alerts.enabled`).
    pub enabled: bool,
    /// Whether this node leads (evaluates and notifies); a standby shows the persisted
    /// state, read again every evaluation interval.
    pub leader: bool,
    /// When this view was taken.
    pub now: Timestamp,
    /// Alerts firing now, over every rule and group.
    pub firing: usize,
    /// Records not evaluated because the evaluator's queue was full, since start.
    pub records_dropped: u64,
    /// Every rule, in name order.
    pub rules: Vec<RuleView>,
    /// Firing alerts of rules with the `notice` action: what the dashboard shows inline.
    pub notices: Vec<NoticeView>,
    /// The latest result of every probe.
    pub probes: Vec<SystemCheck>,
    /// The channels rules notify, in name order, and whether each is configured.
    pub channels: Vec<ChannelView>,
}

/// A channel in `GET /alerts`.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: ChannelKind,
    /// `false`: its secret's variable is not set, so it is skipped
    /// (`skip_unconfigured_channels`).
    pub configured: bool,
    /// The variable that is not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_env: Option<String>,
}

/// One rule in `GET /alerts`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    /// The rule's name.
    pub name: String,
    /// Its kind.
    pub kind: RuleKind,
    /// Its severity.
    pub severity: Severity,
    /// The worst state among its groups.
    pub status: AlertStatus,
    /// What it counts, in words.
    pub filter: String,
    /// Channel names and built-in actions.
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// When it was last reset.
    pub reset_at: Option<Timestamp>,
    /// Records skipped because the rule had `max_groups` groups.
    pub dropped_records: u64,
    /// Groups that are not `ok` or have records in their window, worst first.
    pub groups: Vec<GroupView>,
    /// The newest deliveries, newest first.
    pub deliveries: Vec<Delivery>,
    /// The rule as configured.
    pub config: RuleConfig,
}

/// An inline notice for the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeView {
    /// The rule.
    pub rule: String,
    /// The group (`meta.user=u_...`).
    pub group: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's summary for this alert.
    pub message: String,
    /// When it started firing.
    pub since: Option<Timestamp>,
}

/// The `POST /alerts/{rule}/reset` body.
#[derive(Debug, Clone, Serialize)]
pub struct ResetView {
    /// The rule reset.
    pub rule: String,
    /// When.
    pub reset_at: Timestamp,
    /// Firing alerts that were resolved by the reset (each sends its resolve).
    pub resolved: usize,
}

/// A firing alert as persisted, described by its rule (what `faultline summary` reports,
/// with or without a running server).
#[derive(Debug, Clone)]
pub struct FiringAlert {
    /// The rule's name.
    pub rule: String,
    /// The group (`meta.user=u_...`), empty for an ungrouped rule.
    pub group: String,
    /// The rule's severity (`warning` for a rule no longer configured).
    pub severity: Severity,
    /// The rule's summary for this alert (the stored detail for a rule no longer configured).
    pub summary: String,
    /// When it started firing.
    pub since: Option<Timestamp>,
}

/// The firing alerts persisted in `store`, described by `config`'s rules.
pub async fn firing_alerts(
    config: &AlertsConfig,
    store: &dyn AlertStore,
) -> anyhow::Result<Vec<FiringAlert>> {
    let compiled = config.compile()?;
    let mut out = Vec::new();
    for a in store.load().await?.alerts {
        if a.state.status != AlertStatus::Firing {
            continue;
        }
        let rule = compiled.rules.iter().find(|r| r.name == a.rule);
        out.push(FiringAlert {
            severity: rule.map_or(Severity::Warning, |r| r.severity),
            summary: rule.map_or_else(
                || a.state.detail.clone(),
                |r| r.render_summary(&a.group, a.state.value, &a.state.detail),
            ),
            rule: a.rule,
            group: a.group,
            since: a.state.fired_at,
        });
    }
    Ok(out)
}

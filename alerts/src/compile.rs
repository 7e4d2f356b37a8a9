//! Checking and compiling the alert configuration: every error names the table and the
//! field; what passes becomes [`CompiledAlerts`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::alert_config::*;
use crate::error::{check_name, err, is_http_url};
use crate::notify::ChannelKind;
use crate::rule::*;
use crate::template::{self, SUMMARY_PLACEHOLDERS};
use faultline_store::issues::IssueChangeKind;

impl AlertsConfig {
    /// Checks the rules, channels and probes written in the config itself (not the rules
    /// file, read at start). Needs no environment: secrets are looked up at start.
    pub fn check(&self) -> Result<(), AlertConfigError> {
        if self.evaluation_interval.0 < Duration::from_millis(10) {
            return Err(err(
                "alerts",
                Some("evaluation_interval"),
                "must be at least 10ms",
            ));
        }
        if self.queue_batches == 0 || self.max_groups == 0 {
            return Err(err(
                "alerts",
                Some("queue_batches"),
                "queue_batches and max_groups must be above 0",
            ));
        }
        if let Some(url) = &self.dashboard_url
            && !is_http_url(url)
        {
            return Err(err(
                "alerts",
                Some("dashboard_url"),
                "must start with http:// or https://",
            ));
        }
        compile(
            self.clone(),
            self.channels.clone(),
            self.probes.clone(),
            self.rules.clone(),
        )
        .map(|_| ())
    }

    /// Reads `rules_file` (if any), merges it, and compiles everything.
    pub(crate) fn compile(&self) -> Result<CompiledAlerts, AlertConfigError> {
        let mut channels = self.channels.clone();
        let mut probes = self.probes.clone();
        let mut rules = self.rules.clone();
        if let Some(path) = &self.rules_file {
            let file = read_rules_file(path)?;
            let at = path.display().to_string();
            merge(&mut channels, file.channels, &at, "channel")?;
            merge(&mut probes, file.probes, &at, "probe")?;
            merge(&mut rules, file.rules, &at, "rule")?;
        }
        compile(self.clone(), channels, probes, rules)
    }
}

fn read_rules_file(path: &Path) -> Result<RulesFile, AlertConfigError> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(&at, Some("rules_file"), format!("cannot read it: {e}")))?;
    toml::from_str(&text).map_err(|e| err(&at, None, e.to_string()))
}

fn merge<T>(
    into: &mut BTreeMap<String, T>,
    from: BTreeMap<String, T>,
    at: &str,
    what: &str,
) -> Result<(), AlertConfigError> {
    for (name, value) in from {
        if into.contains_key(&name) {
            return Err(err(
                at,
                None,
                format!("{what} {name:?} is also defined in the config file: names must be unique"),
            ));
        }
        into.insert(name, value);
    }
    Ok(())
}

fn compile(
    settings: AlertsConfig,
    channels: BTreeMap<String, ChannelConfig>,
    probes: BTreeMap<String, ProbeConfig>,
    rules: BTreeMap<String, RuleConfig>,
) -> Result<CompiledAlerts, AlertConfigError> {
    for (name, channel) in &channels {
        channel.check(&format!("alerts.channels.{name}"), name)?;
    }
    for (name, probe) in &probes {
        check_probe(&format!("alerts.probes.{name}"), name, probe)?;
    }
    let mut meta_keys = Vec::new();
    let mut compiled = Vec::with_capacity(rules.len());
    for (name, rule) in &rules {
        let at = format!("alerts.rules.{name}");
        let rule = compile_rule(&at, name, rule, &channels, &probes, &mut meta_keys)?;
        if rule.config.enabled {
            compiled.push(Arc::new(rule));
        }
    }
    crate::silence::compile_inhibits(&settings.inhibit, |n| rules.contains_key(n))?;
    Ok(CompiledAlerts {
        settings,
        rules: compiled,
        channels,
        probes,
        meta_keys,
    })
}

fn check_probe(at: &str, name: &str, p: &ProbeConfig) -> Result<(), AlertConfigError> {
    check_name(at, name)?;
    match p.kind {
        ProbeKind::Tcp | ProbeKind::Redis => {
            let Some(address) = &p.address else {
                return Err(err(at, Some("address"), "missing: host:port"));
            };
            if address
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            {
                return Err(err(
                    at,
                    Some("address"),
                    format!("{address:?} is not host:port"),
                ));
            }
            if p.url.is_some() || p.expect_status.is_some() {
                return Err(err(
                    at,
                    Some("url"),
                    format!("does not apply to a {} probe", p.kind.as_str()),
                ));
            }
        }
        ProbeKind::Http => {
            if !p.url.as_deref().is_some_and(is_http_url) {
                return Err(err(
                    at,
                    Some("url"),
                    "missing or not an http:// or https:// URL",
                ));
            }
            if p.address.is_some() {
                return Err(err(at, Some("address"), "does not apply to an http probe"));
            }
            if p.expect_status.is_some_and(|s| !(100..=599).contains(&s)) {
                return Err(err(at, Some("expect_status"), "must be 100 to 599"));
            }
        }
        ProbeKind::Archive => {
            if p.address.is_some() || p.url.is_some() || p.expect_status.is_some() {
                return Err(err(
                    at,
                    None,
                    "an archive probe asks the record store: address, url and expect_status \
                     do not apply",
                ));
            }
        }
    }
    if p.kind != ProbeKind::Redis && (p.password_env.is_some() || p.password_file.is_some()) {
        return Err(err(
            at,
            Some("password_env"),
            "only a redis probe sends a password",
        ));
    }
    if p.interval.0 < Duration::from_millis(100) {
        return Err(err(at, Some("interval"), "must be at least 100ms"));
    }
    if p.timeout.0.is_zero() {
        return Err(err(at, Some("timeout"), "must be above 0"));
    }
    Ok(())
}

const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);
const DEFAULT_MEMORY: Duration = Duration::from_secs(3600);
/// `new_issue` and `regression`: how long an alert stays firing after the issue's change,
/// unless `window` says.
const DEFAULT_ISSUE_WINDOW: Duration = Duration::from_secs(3600);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn compile_rule(
    at: &str,
    name: &str,
    c: &RuleConfig,
    channels: &BTreeMap<String, ChannelConfig>,
    probes: &BTreeMap<String, ProbeConfig>,
    meta_keys: &mut Vec<String>,
) -> Result<Rule, AlertConfigError> {
    check_name(at, name)?;
    let not_for = |field: &'static str| {
        err(
            at,
            Some(field),
            format!("does not apply to a {} rule", c.kind.as_str()),
        )
    };
    let positive = |v: Option<u32>, field: &'static str| -> Result<Option<u32>, AlertConfigError> {
        match v {
            Some(0) => Err(err(at, Some(field), "must be at least 1")),
            other => Ok(other),
        }
    };
    let threshold = positive(c.threshold, "threshold")?;
    if let Some(w) = c.window
        && w.0 < Duration::from_secs(1)
    {
        return Err(err(at, Some("window"), "must be at least 1s"));
    }
    let window = c.window.map(|w| w.0);

    let filter = Filter {
        services: c.filter.service.0.clone(),
        min_level: c.filter.level,
        events: c.filter.event.0.clone(),
        meta: c
            .filter
            .meta
            .iter()
            .map(|(k, v)| (meta_slot(meta_keys, k), v.clone()))
            .collect(),
    };
    for s in &filter.services {
        if faultline_schema::check_service(s).is_err() {
            return Err(err(
                at,
                Some("filter.service"),
                format!("{s:?} is not a service name ([a-z0-9_.-], 1 to 64)"),
            ));
        }
    }
    let filter_empty = c.filter == FilterConfig::default();

    let (condition, window_ms) = match c.kind {
        RuleKind::Threshold => {
            let threshold = threshold.ok_or_else(|| {
                err(
                    at,
                    Some("threshold"),
                    "missing: the least records that fire",
                )
            })?;
            let window = window.ok_or_else(|| {
                err(
                    at,
                    Some("window"),
                    "missing: the sliding window, such as 1m",
                )
            })?;
            if c.cycle_key.is_some() {
                return Err(not_for("cycle_key"));
            }
            (Condition::Threshold { threshold }, millis(window))
        }
        RuleKind::Consecutive => {
            let cycles = threshold.ok_or_else(|| {
                err(
                    at,
                    Some("threshold"),
                    "missing: how many cycles in a row fire",
                )
            })?;
            let key = c.cycle_key.as_deref().unwrap_or("meta.cycle");
            let cycle = Field::parse(key, meta_keys, at, "cycle_key")?;
            if filter_empty {
                return Err(err(
                    at,
                    Some("filter"),
                    "missing: which records make a cycle bad (event, level, service)",
                ));
            }
            (
                Condition::Consecutive { cycles, cycle },
                millis(window.unwrap_or(DEFAULT_MEMORY)),
            )
        }
        RuleKind::Health => {
            if c.cycle_key.is_some() {
                return Err(not_for("cycle_key"));
            }
            let failures = threshold.unwrap_or(1);
            match &c.probe {
                Some(probe) => {
                    if !probes.contains_key(probe) {
                        return Err(err(
                            at,
                            Some("probe"),
                            format!(
                                "no probe named {probe:?} under [alerts.probes] (probes: {})",
                                names(probes)
                            ),
                        ));
                    }
                    if !filter_empty {
                        return Err(err(
                            at,
                            Some("filter"),
                            "give a probe or a filter for health-check records, not both",
                        ));
                    }
                    if window.is_some() {
                        return Err(err(
                            at,
                            Some("window"),
                            "does not apply to a probe: it runs every probe interval",
                        ));
                    }
                    if !c.group_by.is_empty() {
                        return Err(err(
                            at,
                            Some("group_by"),
                            "does not apply to a probe: it has one result at a time",
                        ));
                    }
                    (
                        Condition::Health {
                            failures,
                            probe: Some(probe.clone()),
                        },
                        0,
                    )
                }
                None => {
                    if filter_empty {
                        return Err(err(
                            at,
                            Some("probe"),
                            "missing: a probe, or a filter for ingested health-check records \
                             (filter = { event = \"health_check\" })",
                        ));
                    }
                    // The status of a health-check record is read from meta.status.
                    meta_slot(meta_keys, HEALTH_STATUS_KEY);
                    (
                        Condition::Health {
                            failures,
                            probe: None,
                        },
                        millis(window.unwrap_or(DEFAULT_MEMORY)),
                    )
                }
            }
        }
        RuleKind::Absence => {
            let window = window.ok_or_else(|| {
                err(
                    at,
                    Some("window"),
                    "missing: the longest allowed silence, such as 5m",
                )
            })?;
            if threshold.is_some() {
                return Err(not_for("threshold"));
            }
            if c.cycle_key.is_some() {
                return Err(not_for("cycle_key"));
            }
            (Condition::Absence, millis(window))
        }
        RuleKind::NewIssue | RuleKind::Regression => {
            if threshold.is_some() {
                return Err(not_for("threshold"));
            }
            if c.cycle_key.is_some() {
                return Err(not_for("cycle_key"));
            }
            if !c.filter.event.0.is_empty() || !c.filter.meta.is_empty() {
                return Err(err(
                    at,
                    Some("filter"),
                    format!(
                        "a {} rule filters by service and level only",
                        c.kind.as_str()
                    ),
                ));
            }
            let change = if c.kind == RuleKind::NewIssue {
                IssueChangeKind::New
            } else {
                IssueChangeKind::Regression
            };
            (
                Condition::IssueChange { change },
                millis(window.unwrap_or(DEFAULT_ISSUE_WINDOW)),
            )
        }
    };
    if c.kind != RuleKind::Health && c.probe.is_some() {
        return Err(not_for("probe"));
    }
    let mut group_by = Vec::new();
    for g in &c.group_by.0 {
        group_by.push((g.clone(), Field::parse(g, meta_keys, at, "group_by")?));
    }
    if group_by.is_empty() && matches!(c.kind, RuleKind::NewIssue | RuleKind::Regression) {
        // One alert per issue, its title shown with it.
        group_by = vec![
            ("issue".to_owned(), Field::Issue),
            ("title".to_owned(), Field::Title),
        ];
    }
    let for_ms = c.for_.map_or(0, |d| millis(d.0));
    let repeat = c.repeat_interval.map_or(DEFAULT_REPEAT, |d| d.0);
    let repeat_ms = (!repeat.is_zero()).then(|| millis(repeat));
    if repeat_ms.is_some_and(|r| r < 1000) {
        return Err(err(
            at,
            Some("repeat_interval"),
            "must be at least 1s, or 0s for no reminders",
        ));
    }

    let mut actions = Vec::new();
    for a in &c.actions {
        let action = match a.channel.as_str() {
            SYSTEM_CHECK_ACTION | NOTICE_ACTION if a.on.is_some() => {
                return Err(err(
                    at,
                    Some("actions"),
                    format!("{:?} is built in and takes no `on`", a.channel),
                ));
            }
            SYSTEM_CHECK_ACTION => Action::SystemCheck,
            NOTICE_ACTION => Action::Notice,
            channel => {
                let Some(cfg) = channels.get(channel) else {
                    return Err(err(
                        at,
                        Some("actions"),
                        format!(
                            "no channel named {channel:?} under [alerts.channels] (channels: {}; \
                             built in: {SYSTEM_CHECK_ACTION}, {NOTICE_ACTION})",
                            names(channels)
                        ),
                    ));
                };
                let on = match (&a.on, &cfg.delivery().on) {
                    (Some(on), _) | (None, Some(on)) => on.clone(),
                    (None, None) if cfg.kind() == ChannelKind::Command => {
                        vec![NotifyEvent::Firing]
                    }
                    (None, None) => vec![
                        NotifyEvent::Firing,
                        NotifyEvent::Repeat,
                        NotifyEvent::Resolved,
                    ],
                };
                if on.is_empty() {
                    return Err(err(
                        at,
                        Some("actions"),
                        format!("{channel}: `on` lists no event"),
                    ));
                }
                Action::Channel {
                    name: channel.to_owned(),
                    on,
                }
            }
        };
        if actions.contains(&action) {
            return Err(err(
                at,
                Some("actions"),
                format!("{:?} is listed twice", a.channel),
            ));
        }
        actions.push(action);
    }
    if let Some(url) = &c.runbook_url
        && (!is_http_url(url) || url.chars().any(char::is_whitespace))
    {
        return Err(err(
            at,
            Some("runbook_url"),
            "must be an http:// or https:// URL without spaces",
        ));
    }
    if let Some(name) = c
        .summary
        .as_deref()
        .and_then(|s| template::unknown_placeholder(s, SUMMARY_PLACEHOLDERS))
    {
        return Err(err(
            at,
            Some("summary"),
            format!(
                "{{{name}}} is not a placeholder (it takes: {})",
                SUMMARY_PLACEHOLDERS.join(", ")
            ),
        ));
    }
    let filter_text = filter.describe(meta_keys);
    Ok(Rule {
        name: name.to_owned(),
        kind: c.kind,
        condition,
        filter,
        group_by,
        window_ms,
        for_ms,
        repeat_ms,
        severity: c.severity,
        summary: c.summary.clone(),
        description: c.description.clone(),
        actions,
        filter_text,
        config: c.clone(),
    })
}

fn names<T>(map: &BTreeMap<String, T>) -> String {
    if map.is_empty() {
        "none".to_owned()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;

    fn parse(text: &str) -> Result<CompiledAlerts, String> {
        let c: AlertsConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check().map_err(|e| e.to_string())?;
        c.compile().map_err(|e| e.to_string())
    }

    const CHANNELS: &str = r#"
[channels.ops]
kind = "slack"
url_env = "SLACK_URL"
[channels.pd]
kind = "pagerduty"
routing_key_env = "PD_KEY"
"#;

    #[test]
    fn a_threshold_rule_compiles_with_defaults() {
        let c = parse(&format!(
            "{CHANNELS}\n[rules.api_errors]\nkind = \"threshold\"\n\
             filter = {{ service = \"api\", level = \"error\" }}\nwindow = \"1m\"\n\
             threshold = 5\nactions = [\"ops\", \"system_check\"]\n"
        ))
        .unwrap();
        let r = &c.rules[0];
        assert_eq!(r.window_ms, 60_000);
        assert_eq!(r.for_ms, 0);
        assert_eq!(r.repeat_ms, Some(4 * 3_600_000));
        assert_eq!(r.severity, Severity::Warning);
        assert_eq!(r.filter.min_level, Some(Level::Error));
        assert_eq!(r.actions.len(), 2);
        assert_eq!(r.filter_text, "ERROR+ records from api");
    }

    #[test]
    fn errors_name_the_rule_and_the_field() {
        let cases = [
            (
                "[rules.a]\nkind = \"threshold\"\nwindow = \"1m\"\n",
                "alerts.rules.a: threshold: missing",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nthreshold = 5\n",
                "alerts.rules.a: window: missing",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nthreshold = 0\nwindow = \"1m\"\n",
                "alerts.rules.a: threshold: must be at least 1",
            ),
            (
                "[rules.a]\nkind = \"absence\"\nwindow = \"1m\"\nthreshold = 2\n",
                "alerts.rules.a: threshold: does not apply",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nwindow = \"1m\"\nthreshold = 1\nactions = [\"nope\"]\n",
                "alerts.rules.a: actions: no channel named \"nope\"",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nwindow = \"1m\"\nthreshold = 1\ngroup_by = \"meta\"\n",
                "alerts.rules.a: group_by:",
            ),
            (
                "[rules.a]\nkind = \"health\"\nprobe = \"redis\"\n",
                "alerts.rules.a: probe: no probe named \"redis\"",
            ),
            (
                "[rules.a]\nkind = \"health\"\n",
                "alerts.rules.a: probe: missing",
            ),
            (
                "[rules.Bad]\nkind = \"absence\"\nwindow = \"1m\"\n",
                "alerts.rules.Bad: names are",
            ),
            (
                "[channels.s]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n",
                "alerts.channels.s: url: a webhook URL is a secret",
            ),
            (
                "[channels.p]\nkind = \"pagerduty\"\n",
                "alerts.channels.p: routing_key_env: give exactly one",
            ),
            (
                "[channels.e]\nkind = \"email\"\nsmtp_host = \"x\"\nfrom = \"nope\"\nto = [\"a@b.c\"]\n",
                "alerts.channels.e: from:",
            ),
            (
                "[channels.w]\nkind = \"webhook\"\nurl = \"http://x\"\nsmtp_host = \"y\"\n",
                "alerts.channels.w: smtp_host: does not apply to a webhook channel",
            ),
            (
                "[probes.r]\nkind = \"redis\"\naddress = \"localhost\"\n",
                "alerts.probes.r: address: \"localhost\" is not host:port",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err();
            assert!(got.contains(want), "{text}\n  got: {got}\n  want: {want}");
        }
    }

    #[test]
    fn unknown_fields_name_the_rule() {
        let got = parse("[rules.api_errors]\nkind = \"threshold\"\ntreshold = 5\n").unwrap_err();
        assert!(
            got.contains("api_errors") && got.contains("treshold"),
            "{got}"
        );
    }

    #[test]
    fn actions_take_events_and_command_defaults_to_firing_only() {
        let c = parse(
            "[channels.restart]\nkind = \"command\"\ncommand = [\"true\"]\n\
             [channels.stop]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/stop\"\n\
             [rules.r]\nkind = \"absence\"\nwindow = \"1m\"\n\
             actions = [\"restart\", { channel = \"stop\", on = [\"firing\"] }, \"notice\"]\n",
        )
        .unwrap();
        let want = |name: &str| Action::Channel {
            name: name.into(),
            on: vec![NotifyEvent::Firing],
        };
        assert_eq!(
            c.rules[0].actions,
            [want("restart"), want("stop"), Action::Notice]
        );
    }

    #[test]
    fn issue_rules_group_by_issue_and_filter_by_service_and_level_only() {
        let c = parse(
            "[rules.new_ui]\nkind = \"new_issue\"\nfilter = { service = \"ui\", level = \"ERROR\" }\n\
             [rules.back]\nkind = \"regression\"\ngroup_by = [\"service\"]\nwindow = \"10m\"\n\
             [rules.per_issue]\nkind = \"threshold\"\nthreshold = 3\nwindow = \"1m\"\ngroup_by = [\"issue\"]\n",
        )
        .unwrap();
        let rule = |name: &str| c.rules.iter().find(|r| r.name == name).unwrap();
        assert!(matches!(
            rule("new_ui").condition,
            Condition::IssueChange {
                change: IssueChangeKind::New
            }
        ));
        assert_eq!(
            rule("new_ui").group_by,
            [
                ("issue".to_owned(), Field::Issue),
                ("title".to_owned(), Field::Title)
            ]
        );
        assert_eq!(rule("new_ui").window_ms, 3_600_000);
        assert_eq!(
            rule("back").group_by,
            [("service".to_owned(), Field::Service)]
        );
        assert_eq!(rule("back").window_ms, 600_000);
        assert_eq!(
            rule("per_issue").group_by,
            [("issue".to_owned(), Field::Issue)]
        );
        for (text, want) in [
            (
                "[rules.r]\nkind = \"new_issue\"\nfilter = { event = \"x\" }\n",
                "alerts.rules.r: filter: a new_issue rule filters by service and level only",
            ),
            (
                "[rules.r]\nkind = \"regression\"\nthreshold = 2\n",
                "alerts.rules.r: threshold: does not apply to a regression rule",
            ),
        ] {
            let got = parse(text).unwrap_err();
            assert!(got.contains(want), "{text}\n  got: {got}\n  want: {want}");
        }
    }

    #[test]
    fn disabled_rules_are_checked_but_not_run() {
        let c = parse("[rules.a]\nkind = \"absence\"\nwindow = \"1m\"\nenabled = false\n").unwrap();
        assert!(c.rules.is_empty());
        assert!(parse("[rules.a]\nkind = \"absence\"\nenabled = false\n").is_err());
    }

    struct ExampleConfig {
        alerts: AlertsConfig,
    }

    #[test]
    fn shipped_example_has_the_four_rules_of_the_issue() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../faultline.example.toml");
        // The `[alerts]` table as the server's config loader hands it over (the example names
        // secrets only by their environment variables, so no value is needed here).
        let text = std::fs::read_to_string(&path).unwrap();
        let mut file: toml::Table = toml::from_str(&text).unwrap();
        let config = ExampleConfig {
            alerts: file.remove("alerts").unwrap().try_into().unwrap(),
        };
        let c = config.alerts.compile().unwrap();
        let rule = |name: &str| c.rules.iter().find(|r| r.name == name).unwrap();
        let channels = |name: &str| -> Vec<String> {
            rule(name)
                .actions
                .iter()
                .map(|a| match a {
                    Action::Channel { name, .. } => name.clone(),
                    Action::SystemCheck => SYSTEM_CHECK_ACTION.into(),
                    Action::Notice => NOTICE_ACTION.into(),
                })
                .collect()
        };
        let api = rule("api_errors");
        assert!(matches!(
            api.condition,
            Condition::Threshold { threshold: 5 }
        ));
        assert_eq!(api.window_ms, 60_000);
        assert_eq!(channels("api_errors"), ["ops_slack", "system_check"]);
        let worker = rule("worker_behavior_engine");
        assert!(matches!(
            worker.condition,
            Condition::Consecutive { cycles: 3, .. }
        ));
        assert_eq!(
            channels("worker_behavior_engine"),
            ["worker_restart", "pagerduty"]
        );
        assert_eq!(worker.severity, Severity::Warning);
        let ui = rule("ui_user_errors");
        assert!(matches!(
            ui.condition,
            Condition::Threshold { threshold: 10 }
        ));
        assert_eq!(
            (ui.window_ms, ui.group_by[0].0.as_str()),
            (600_000, "meta.user")
        );
        assert_eq!(channels("ui_user_errors"), ["support_email", "notice"]);
        let redis = rule("redis_down");
        assert!(
            matches!(&redis.condition, Condition::Health { probe: Some(p), .. } if p == "redis")
        );
        assert_eq!(redis.severity, Severity::Critical);
        assert_eq!(channels("redis_down"), ["app_stop", "pagerduty"]);
        let defaults = AlertsConfig::default();
        assert_eq!(
            config.alerts.evaluation_interval,
            defaults.evaluation_interval
        );
        assert_eq!(config.alerts.queue_batches, defaults.queue_batches);
        assert_eq!(config.alerts.max_groups, defaults.max_groups);
    }

    #[test]
    fn summary_placeholders() {
        let c = parse(
            "[rules.u]\nkind = \"threshold\"\nwindow = \"10m\"\nthreshold = 10\n\
             group_by = \"meta.user\"\nsummary = \"{value} errors for {group} in {window} (>= {threshold})\"\n",
        )
        .unwrap();
        assert_eq!(
            c.rules[0].render_summary("meta.user=u_1", 12, "d"),
            "12 errors for meta.user=u_1 in 10m (>= 10)"
        );
    }
}

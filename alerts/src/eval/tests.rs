//! The rule logic on a fake clock: every kind at, below and past its threshold, windows
//! sliding, groups, `for`, reminders, resolution, reset and restarts.

use super::*;
use crate::alert_config::{AlertsConfig, NotifyEvent};

/// A clock the test moves by hand.
struct FakeClock(i64);

impl FakeClock {
    fn start() -> FakeClock {
        // 2026-07-01T12:00:00Z: any fixed instant will do.
        FakeClock(1_782_907_200_000)
    }
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0)
    }
    fn advance_ms(&mut self, ms: i64) -> Timestamp {
        self.0 += ms;
        self.now()
    }
    fn advance(&mut self, secs: i64) -> Timestamp {
        self.advance_ms(secs * 1000)
    }
}

struct Harness {
    engine: Evaluator,
    interest: Interest,
    clock: FakeClock,
    next_id: u128,
    /// The last cycle number sent per group ([`Harness::worker_cycle`]).
    cycles: HashMap<String, i64>,
}

fn harness(rules_toml: &str) -> Harness {
    harness_restored(rules_toml, StoredState::default(), FakeClock::start())
}

fn harness_restored(rules_toml: &str, state: StoredState, clock: FakeClock) -> Harness {
    let config: AlertsConfig = toml::from_str(&format!(
        "[channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n{rules_toml}"
    ))
    .unwrap();
    let compiled = config.compile().unwrap();
    Harness {
        engine: Evaluator::new(
            &compiled.rules,
            &compiled.meta_keys,
            compiled.settings.max_groups.min(100),
            "evaluator",
            state,
            clock.now(),
        ),
        interest: Interest::new(compiled.rules.clone(), &compiled.meta_keys),
        clock,
        next_id: 0,
        cycles: HashMap::new(),
    }
}

impl Harness {
    /// A record at the current time, observed as the server would.
    fn send(&mut self, service: &str, level: Level, event: &str, meta: &[(&str, &str)]) {
        let mut r = Record::new(self.clock.now(), service, level, event, "m");
        self.next_id += 1;
        r.id = Some(faultline_schema::Uuid::from_u128(self.next_id));
        for (k, v) in meta {
            let value = match v.parse::<i64>() {
                Ok(n) => serde_json::json!(n),
                Err(_) => serde_json::json!(v),
            };
            r.meta.insert((*k).into(), value);
        }
        if let Some(obs) = self.interest.observe(&r) {
            self.engine.observe(&obs, self.clock.now());
        }
    }

    fn error(&mut self, service: &str) {
        self.send(service, Level::Error, "e", &[]);
    }

    fn tick(&mut self) {
        self.engine.tick(self.clock.now());
    }

    /// The notifications since the last call, as (rule, group, event).
    fn sent(&mut self) -> Vec<(String, String, NotifyEvent)> {
        self.engine
            .take_effects()
            .notifications
            .into_iter()
            .map(|n| (n.rule, n.group, n.event))
            .collect()
    }

    fn status(&self, group: &str) -> AlertStatus {
        self.engine
            .groups(0, self.clock.now())
            .into_iter()
            .find(|g| g.group == group)
            .map_or(AlertStatus::Ok, |g| g.state.status)
    }
}

fn fired(rule: &str, group: &str) -> (String, String, NotifyEvent) {
    (rule.into(), group.into(), NotifyEvent::Firing)
}

fn resolved(rule: &str, group: &str) -> (String, String, NotifyEvent) {
    (rule.into(), group.into(), NotifyEvent::Resolved)
}

const API: &str = r#"
[rules.api]
kind = "threshold"
filter = { service = "api", level = "ERROR" }
window = "1m"
threshold = 5
actions = ["hook", "system_check"]
"#;

#[test]
fn threshold_fires_exactly_at_the_threshold_and_not_one_below() {
    let mut h = harness(API);
    for _ in 0..4 {
        h.error("api");
        h.clock.advance(1);
    }
    h.send("api", Level::Warning, "e", &[]);
    h.error("worker");
    h.tick();
    assert_eq!(h.sent(), [], "4 ERROR from api: one below");
    assert_eq!(h.status(""), AlertStatus::Ok);
    h.error("api");
    assert_eq!(
        h.sent(),
        [fired("api", "")],
        "the 5th fires at once, not at a tick"
    );
    assert_eq!(h.status(""), AlertStatus::Firing);
}

#[test]
fn critical_counts_as_error_or_worse() {
    let mut h = harness(API);
    for _ in 0..5 {
        h.send("api", Level::Critical, "e", &[]);
    }
    assert_eq!(h.sent(), [fired("api", "")]);
}

#[test]
fn one_notification_per_firing_however_many_records_match() {
    let mut h = harness(API);
    for _ in 0..500 {
        h.error("api");
        h.clock.advance_ms(10);
        h.tick();
    }
    assert_eq!(h.sent(), [fired("api", "")]);
}

#[test]
fn the_window_slides_and_the_alert_resolves_once() {
    let mut h = harness(API);
    let first = h.clock.now();
    for _ in 0..5 {
        h.error("api");
        h.clock.advance(1);
    }
    assert_eq!(h.sent(), [fired("api", "")]);
    // The first record is 60 s old exactly at first + 60 s: it no longer counts.
    h.clock.0 = first.unix_millis() + 59_999;
    h.tick();
    assert_eq!(h.sent(), [], "still 5 in the window one ms before");
    h.clock.0 = first.unix_millis() + 60_000;
    h.tick();
    assert_eq!(h.sent(), [resolved("api", "")]);
    assert_eq!(h.status(""), AlertStatus::Resolved);
    h.clock.advance(30);
    h.tick();
    assert_eq!(h.sent(), [], "resolved once");
    // A new crossing fires again.
    for _ in 0..5 {
        h.error("api");
    }
    assert_eq!(h.sent(), [fired("api", "")]);
}

#[test]
fn records_spread_wider_than_the_window_never_fire() {
    let mut h = harness(API);
    for _ in 0..50 {
        h.error("api");
        h.clock.advance(15);
        h.tick();
    }
    assert_eq!(h.sent(), [], "at most 4 records in any minute");
}

#[test]
fn groups_are_independent() {
    let mut h = harness(
        r#"
[rules.ui]
kind = "threshold"
filter = { service = "ui", level = "ERROR" }
group_by = "meta.user"
window = "10m"
threshold = 10
actions = ["hook", "notice"]
"#,
    );
    for i in 0..10 {
        h.send("ui", Level::Error, "window.onerror", &[("user", "u_a")]);
        if i < 9 {
            h.send("ui", Level::Error, "window.onerror", &[("user", "u_b")]);
        }
        // Without the grouping field, a record belongs to no group.
        h.send("ui", Level::Error, "window.onerror", &[]);
        h.clock.advance(30);
    }
    assert_eq!(h.sent(), [fired("ui", "meta.user=u_a")]);
    assert_eq!(h.status("meta.user=u_b"), AlertStatus::Ok);
    h.send("ui", Level::Error, "window.onerror", &[("user", "u_b")]);
    assert_eq!(h.sent(), [fired("ui", "meta.user=u_b")]);
    let view = h.engine.groups(0, h.clock.now());
    assert_eq!(view.len(), 2);
    assert_eq!(view[1].labels["meta.user"], "u_b");
}

#[test]
fn for_keeps_an_alert_pending_until_the_condition_held_long_enough() {
    let mut h = harness(&API.replace("threshold = 5", "threshold = 5\nfor = \"30s\""));
    for _ in 0..5 {
        h.error("api");
    }
    assert_eq!(h.sent(), []);
    assert_eq!(h.status(""), AlertStatus::Pending);
    h.clock.advance(29);
    h.tick();
    assert_eq!(h.sent(), []);
    h.clock.advance(1);
    h.tick();
    assert_eq!(h.sent(), [fired("api", "")], "fires at the tick after 30 s");

    // A burst shorter than `for` never fires.
    let mut h = harness(&API.replace("threshold = 5", "threshold = 5\nfor = \"2m\""));
    for _ in 0..5 {
        h.error("api");
    }
    for _ in 0..61 {
        h.clock.advance(1);
        h.tick();
    }
    assert_eq!(h.sent(), []);
    assert_eq!(
        h.status(""),
        AlertStatus::Ok,
        "pending cleared when the window emptied"
    );
}

#[test]
fn repeat_interval_reminds_while_firing() {
    let mut h = harness(&API.replace(
        "window = \"1m\"",
        "window = \"10m\"\nrepeat_interval = \"2m\"",
    ));
    for _ in 0..5 {
        h.error("api");
    }
    assert_eq!(h.sent(), [fired("api", "")]);
    let mut events = Vec::new();
    for _ in 0..(9 * 60) {
        h.clock.advance(1);
        h.tick();
        events.extend(h.sent().into_iter().map(|s| s.2));
    }
    assert_eq!(
        events,
        [
            NotifyEvent::Repeat,
            NotifyEvent::Repeat,
            NotifyEvent::Repeat,
            NotifyEvent::Repeat
        ],
        "at 2, 4, 6 and 8 minutes"
    );
    h.clock.advance(61);
    h.tick();
    assert_eq!(h.sent(), [resolved("api", "")]);
}

#[test]
fn reset_resolves_and_forgets_records_before_it() {
    let mut h = harness(API);
    for _ in 0..5 {
        h.error("api");
    }
    assert_eq!(h.sent(), [fired("api", "")]);
    h.clock.advance(1);
    assert_eq!(h.engine.reset(0, h.clock.now()), 1);
    let effects = h.engine.take_effects();
    let n = &effects.notifications[0];
    assert_eq!(
        (n.event, n.resolve_reason.as_deref()),
        (NotifyEvent::Resolved, Some("reset"))
    );
    h.tick();
    assert_eq!(h.sent(), [], "the old records no longer count");
    for _ in 0..4 {
        h.error("api");
    }
    h.tick();
    assert_eq!(h.sent(), [], "4 new records: below");
    h.error("api");
    assert_eq!(h.sent(), [fired("api", "")]);
}

#[test]
fn a_retried_batch_is_not_counted_twice() {
    let mut h = harness(API);
    let mut r = Record::new(h.clock.now(), "api", Level::Error, "e", "m");
    r.id = Some(faultline_schema::Uuid::from_u128(7));
    let obs = h.interest.observe(&r).unwrap();
    for _ in 0..10 {
        h.engine.observe(&obs, h.clock.now());
    }
    h.tick();
    assert_eq!(h.sent(), []);
}

#[test]
fn records_from_a_fast_clock_count_as_now() {
    let mut h = harness(API);
    let future = Timestamp::from_unix_millis(h.clock.now().unix_millis() + 3_600_000);
    for n in 0..5 {
        let mut r = Record::new(future, "api", Level::Error, "e", "m");
        r.id = Some(faultline_schema::Uuid::from_u128(100 + n));
        let obs = h.interest.observe(&r).unwrap();
        h.engine.observe(&obs, h.clock.now());
    }
    assert_eq!(h.sent(), [fired("api", "")]);
    h.clock.advance(60);
    h.tick();
    assert_eq!(
        h.sent(),
        [resolved("api", "")],
        "they leave the window a minute later, not an hour"
    );
}

#[test]
fn the_system_check_action_records_failed_then_ok() {
    let mut h = harness(API);
    for _ in 0..5 {
        h.error("api");
    }
    let checks = h.engine.take_effects().checks;
    assert_eq!(checks.len(), 1);
    assert_eq!(
        (checks[0].status, checks[0].name.as_str()),
        (CheckStatus::Failed, "api")
    );
    h.clock.advance(60);
    h.tick();
    let checks = h.engine.take_effects().checks;
    assert_eq!(checks[0].status, CheckStatus::Ok);
    // A rule without the action records nothing.
    let mut h = harness(&API.replace(", \"system_check\"", ""));
    for _ in 0..5 {
        h.error("api");
    }
    assert!(h.engine.take_effects().checks.is_empty());
}

const WORKER: &str = r#"
[rules.worker]
kind = "consecutive"
filter = { service = "worker", event = "behavior_engine", level = "ERROR" }
threshold = 3
actions = ["hook"]
"#;

impl Harness {
    fn cycle(&mut self, n: &str, exception: bool) {
        self.send("worker", Level::Info, "cycle_started", &[("cycle", n)]);
        if exception {
            self.send("worker", Level::Error, "behavior_engine", &[("cycle", n)]);
        }
        self.clock.advance(5);
    }
}

#[test]
fn consecutive_fires_on_three_bad_cycles_in_a_row() {
    let mut h = harness(WORKER);
    h.cycle("1", true);
    h.cycle("2", true);
    assert_eq!(h.sent(), [], "two in a row: one below");
    h.cycle("3", true);
    assert_eq!(h.sent(), [fired("worker", "")]);
    h.cycle("4", true);
    h.cycle("5", true);
    assert_eq!(h.sent(), [], "still the same firing");
}

#[test]
fn a_clean_cycle_resolves_once_it_is_over_and_a_gap_is_a_clean_cycle() {
    let mut h = harness(WORKER);
    for n in ["1", "2", "3"] {
        h.cycle(n, true);
    }
    assert_eq!(h.sent(), [fired("worker", "")]);
    // Cycle 4 has started without an exception yet: it may still get one.
    h.send("worker", Level::Info, "cycle_started", &[("cycle", "4")]);
    h.tick();
    assert_eq!(h.sent(), []);
    // Cycle 5 starts: 4 ended clean.
    h.send("worker", Level::Info, "cycle_started", &[("cycle", "5")]);
    assert_eq!(h.sent(), [resolved("worker", "")]);

    let mut h = harness(WORKER);
    // Exceptions in cycles 10, 11 and 13: 12 had no records at all, so it was clean.
    h.cycle("10", true);
    h.cycle("11", true);
    h.send(
        "worker",
        Level::Error,
        "behavior_engine",
        &[("cycle", "13")],
    );
    h.tick();
    assert_eq!(h.sent(), []);
}

#[test]
fn consecutive_cycles_may_be_named_in_order_of_appearance() {
    let mut h = harness(WORKER);
    for n in ["run-a", "run-b", "run-c"] {
        h.cycle(n, true);
    }
    assert_eq!(h.sent(), [fired("worker", "")]);
    let mut h = harness(WORKER);
    for (n, bad) in [
        ("run-a", true),
        ("run-b", false),
        ("run-c", true),
        ("run-d", true),
    ] {
        h.cycle(n, bad);
    }
    assert_eq!(h.sent(), []);
}

#[test]
fn consecutive_resolves_when_the_worker_goes_quiet_for_the_window() {
    let mut h = harness(&WORKER.replace("threshold = 3", "threshold = 3\nwindow = \"10m\""));
    for n in ["1", "2", "3"] {
        h.cycle(n, true);
    }
    let last = h.clock.0 - 5_000;
    assert_eq!(h.sent(), [fired("worker", "")]);
    h.clock.0 = last + 599_999;
    h.tick();
    assert_eq!(
        h.sent(),
        [],
        "the streak stands while the last cycle is in the window"
    );
    h.clock.0 = last + 600_000;
    h.tick();
    assert_eq!(h.sent(), [resolved("worker", "")]);
}

const REDIS: &str = r#"
[probes.redis]
kind = "redis"
address = "127.0.0.1:6379"
[rules.redis]
kind = "health"
probe = "redis"
threshold = 2
severity = "critical"
actions = ["hook"]
"#;

#[test]
fn health_fires_after_failures_in_a_row_and_resolves_on_the_first_success() {
    let mut h = harness(REDIS);
    let probe = |h: &mut Harness, failed: bool| {
        let now = h.clock.advance(10);
        h.engine.probe_result("redis", failed, "x", now, true);
        h.sent()
    };
    assert_eq!(probe(&mut h, true), [], "one failure: one below");
    assert_eq!(probe(&mut h, false), []);
    assert_eq!(probe(&mut h, true), [], "the streak restarted");
    assert_eq!(probe(&mut h, true), [fired("redis", "")]);
    assert_eq!(probe(&mut h, true), []);
    assert_eq!(probe(&mut h, false), [resolved("redis", "")]);
    assert_eq!(probe(&mut h, false), []);
}

#[test]
fn health_from_ingested_health_check_records() {
    let mut h = harness(
        r#"
[rules.checks]
kind = "health"
filter = { event = "health_check" }
group_by = "meta.check"
actions = ["hook"]
"#,
    );
    h.send(
        "monitor",
        Level::Info,
        "health_check",
        &[("check", "db"), ("status", "ok")],
    );
    h.send(
        "monitor",
        Level::Info,
        "health_check",
        &[("check", "queue"), ("status", "failed")],
    );
    assert_eq!(h.sent(), [fired("checks", "meta.check=queue")]);
    h.send("monitor", Level::Error, "health_check", &[("check", "db")]);
    assert_eq!(
        h.sent(),
        [fired("checks", "meta.check=db")],
        "ERROR without a status fails"
    );
    h.send(
        "monitor",
        Level::Info,
        "health_check",
        &[("check", "queue"), ("status", "UP")],
    );
    assert_eq!(h.sent(), [resolved("checks", "meta.check=queue")]);
}

const HEARTBEAT: &str = r#"
[rules.worker_alive]
kind = "absence"
filter = { service = "worker", event = "heartbeat" }
window = "5m"
actions = ["hook"]
"#;

#[test]
fn absence_fires_after_a_silent_window_and_resolves_on_a_record() {
    let mut h = harness(HEARTBEAT);
    h.send("worker", Level::Info, "heartbeat", &[]);
    h.clock.advance(299);
    h.tick();
    assert_eq!(h.sent(), []);
    h.send("worker", Level::Info, "heartbeat", &[]);
    h.clock.advance(299);
    h.tick();
    h.send("worker", Level::Info, "other", &[]);
    h.clock.advance(1);
    h.tick();
    assert_eq!(
        h.sent(),
        [fired("worker_alive", "")],
        "5 minutes without a heartbeat"
    );
    h.clock.advance(600);
    h.tick();
    assert_eq!(h.sent(), [], "one notification for the whole silence");
    h.send("worker", Level::Info, "heartbeat", &[]);
    assert_eq!(h.sent(), [resolved("worker_alive", "")]);
}

#[test]
fn absence_fires_for_a_source_that_never_reported() {
    // The clock starts when the evaluator starts watching.
    let mut h = harness(HEARTBEAT);
    h.tick();
    h.clock.advance(299);
    h.tick();
    assert_eq!(h.sent(), []);
    h.clock.advance(1);
    h.tick();
    assert_eq!(h.sent(), [fired("worker_alive", "")]);
    // A reset gives it a fresh window.
    h.engine.reset(0, h.clock.now());
    h.sent();
    h.clock.advance(299);
    h.tick();
    assert_eq!(h.sent(), []);
    h.clock.advance(1);
    h.tick();
    assert_eq!(h.sent(), [fired("worker_alive", "")]);
}

#[test]
fn a_firing_absence_stays_firing_across_a_restart_until_a_record_comes() {
    let mut h = harness(HEARTBEAT);
    h.clock.advance(300);
    h.tick();
    assert_eq!(h.sent(), [fired("worker_alive", "")]);
    h.engine.delivered("worker_alive", "", NotifyEvent::Firing);
    let changes = h.engine.take_changes();
    let state = StoredState {
        rules: changes.rules,
        alerts: changes.upsert,
    };
    let mut clock = FakeClock(h.clock.0);
    clock.advance(60);
    let mut h = harness_restored(HEARTBEAT, state, clock);
    h.tick();
    assert_eq!(h.sent(), [], "neither resolved nor fired again");
    h.send("worker", Level::Info, "heartbeat", &[]);
    assert_eq!(h.sent(), [resolved("worker_alive", "")]);
}

#[test]
fn grouped_absence_watches_each_source_seen() {
    let mut h = harness(&HEARTBEAT.replace(
        "window = \"5m\"",
        "window = \"5m\"\ngroup_by = \"meta.host\"",
    ));
    h.send("worker", Level::Info, "heartbeat", &[("host", "a")]);
    h.send("worker", Level::Info, "heartbeat", &[("host", "b")]);
    for _ in 0..10 {
        h.clock.advance(60);
        h.send("worker", Level::Info, "heartbeat", &[("host", "a")]);
        h.tick();
    }
    assert_eq!(h.sent(), [fired("worker_alive", "meta.host=b")]);
}

#[test]
fn restart_while_firing_neither_renotifies_nor_loses_the_resolve() {
    let mut h = harness(API);
    let mut stored = Vec::new();
    for _ in 0..5 {
        h.error("api");
        stored.push(h.clock.now());
    }
    assert_eq!(h.sent(), [fired("api", "")]);
    h.engine.delivered("api", "", NotifyEvent::Firing);
    let changes = h.engine.take_changes();
    assert_eq!(changes.upsert.len(), 1);
    let state = StoredState {
        rules: changes.rules,
        alerts: changes.upsert,
    };

    // Restart 10 s later: the window is read back from the store.
    let mut clock = FakeClock(h.clock.0);
    clock.advance(10);
    let mut h = harness_restored(API, state, clock);
    for (i, ts) in stored.iter().enumerate() {
        let mut r = Record::new(*ts, "api", Level::Error, "e", "m");
        r.id = Some(faultline_schema::Uuid::from_u128(i as u128 + 1));
        let obs = h.interest.observe(&r).unwrap();
        h.engine.prime(0, &obs);
    }
    h.tick();
    assert_eq!(h.sent(), [], "still firing: no second page");
    assert!(h.engine.owed(h.clock.now()).is_empty());
    h.clock.advance(50);
    h.tick();
    assert_eq!(h.sent(), [resolved("api", "")], "the resolve still comes");
}

#[test]
fn a_restart_after_the_condition_ended_resolves_at_once() {
    let mut h = harness(API);
    for _ in 0..5 {
        h.error("api");
    }
    h.sent();
    h.engine.delivered("api", "", NotifyEvent::Firing);
    let changes = h.engine.take_changes();
    let state = StoredState {
        rules: changes.rules,
        alerts: changes.upsert,
    };
    let mut clock = FakeClock(h.clock.0);
    clock.advance(3600);
    let mut h = harness_restored(API, state, clock);
    h.tick();
    assert_eq!(h.sent(), [resolved("api", "")]);
}

#[test]
fn undelivered_notifications_are_owed_after_a_restart() {
    let mut h = harness(API);
    for _ in 0..5 {
        h.error("api");
    }
    h.sent();
    let changes = h.engine.take_changes();
    assert_eq!(changes.upsert[0].state.owed, [NotifyEvent::Firing]);
    let state = StoredState {
        rules: changes.rules,
        alerts: changes.upsert,
    };
    let h = harness_restored(API, state, FakeClock(h.clock.0));
    let owed = h.engine.owed(h.clock.now());
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].event, NotifyEvent::Firing);
}

#[test]
fn changes_upsert_non_ok_alerts_and_delete_cleared_ones() {
    let mut h = harness(&API.replace("threshold = 5", "threshold = 5\nfor = \"1m\""));
    for _ in 0..5 {
        h.error("api");
    }
    let c = h.engine.take_changes();
    assert_eq!(c.upsert[0].state.status, AlertStatus::Pending);
    h.clock.advance(60);
    h.tick();
    let c = h.engine.take_changes();
    assert_eq!(
        (c.upsert.len(), c.delete.len()),
        (0, 1),
        "pending cleared: the row goes"
    );
    assert!(h.engine.take_changes().delete.is_empty(), "once");
}

#[test]
fn a_rule_tracks_at_most_max_groups() {
    let mut h = harness(
        r#"
[rules.users]
kind = "threshold"
filter = { service = "ui" }
group_by = "meta.user"
window = "1m"
threshold = 2
"#,
    );
    for i in 0..150 {
        let user = format!("u_{i}");
        h.send("ui", Level::Error, "e", &[("user", &user)]);
    }
    assert_eq!(h.engine.dropped(0), 50, "the harness caps groups at 100");
    h.clock.advance(61);
    h.tick();
    h.send("ui", Level::Error, "e", &[("user", "u_new")]);
    assert_eq!(h.engine.dropped(0), 50, "idle groups were forgotten");
}

#[test]
fn the_hot_path_builds_nothing_for_records_no_rule_reads() {
    let h = harness(&format!("{API}{WORKER}"));
    let r = Record::new(h.clock.now(), "ui", Level::Error, "e", "m");
    assert!(h.interest.observe(&r).is_none());
    let r = Record::new(h.clock.now(), "api", Level::Info, "e", "m");
    assert!(h.interest.observe(&r).is_none(), "below the level");
    let mut r = Record::new(h.clock.now(), "worker", Level::Info, "cycle_started", "m");
    assert!(h.interest.observe(&r).is_none(), "no cycle key");
    r.meta.insert("cycle".into(), serde_json::json!(4));
    assert!(
        h.interest.observe(&r).is_some(),
        "a clean cycle matters to `consecutive`"
    );
    assert!(harness("").interest.is_empty());
}

#[test]
fn health_results_older_than_the_window_no_longer_count() {
    let checks = r#"
[rules.checks]
kind = "health"
filter = { event = "health_check" }
window = "1m"
threshold = 2
actions = ["hook"]
"#;
    for (gap_ms, expect) in [(59_999, vec![fired("checks", "")]), (60_000, vec![])] {
        let mut h = harness(checks);
        h.health_check("a", "failed");
        assert_eq!(h.sent(), [], "one failure: one below");
        h.clock.advance_ms(gap_ms);
        h.health_check("a", "failed");
        assert_eq!(
            h.sent(),
            expect,
            "second failure {gap_ms} ms after the first"
        );
    }
}

// Every kind through the same paces: `for`, reminders, resolve, reset and groups. Each
// kind's functions act for one group, the value of `meta.host` (ignored when the rule
// does not group by it).

/// A rule of one kind and how to drive its condition.
struct Kind {
    rule: &'static str,
    toml: &'static str,
    /// Whether the rule may take `group_by = "meta.host"`.
    groups: bool,
    /// One short of the condition: nothing fires.
    below: fn(&mut Harness, &str),
    /// Makes the condition true (with `for = 0` it fires on the last step).
    fire: fn(&mut Harness, &str),
    /// Keeps it true while the clock moves (called every 5 s).
    keep: fn(&mut Harness, &str),
    /// Makes it false (by the next evaluation).
    stop: fn(&mut Harness, &str),
}

impl Harness {
    fn errors(&mut self, host: &str, n: usize) {
        for _ in 0..n {
            self.send("api", Level::Error, "e", &[("host", host)]);
        }
    }

    /// The next cycle of `host`'s worker, numbered per host, without moving the clock.
    fn worker_cycle(&mut self, host: &str, exception: bool) {
        let n = self.cycles.entry(host.to_owned()).or_insert(0);
        *n += 1;
        let n = n.to_string();
        let meta = [("cycle", n.as_str()), ("host", host)];
        self.send("worker", Level::Info, "cycle_started", &meta);
        if exception {
            self.send("worker", Level::Error, "behavior_engine", &meta);
        }
    }

    fn worker_cycles(&mut self, host: &str, exception: bool, n: usize) {
        for _ in 0..n {
            self.worker_cycle(host, exception);
        }
    }

    fn probe(&mut self, failed: bool, n: usize) {
        for _ in 0..n {
            let now = self.clock.now();
            self.engine.probe_result("redis", failed, "x", now, true);
        }
    }

    fn health_check(&mut self, host: &str, status: &str) {
        let meta = [("host", host), ("status", status)];
        self.send("monitor", Level::Info, "health_check", &meta);
    }

    fn heartbeat(&mut self, host: &str) {
        self.send("worker", Level::Info, "heartbeat", &[("host", host)]);
    }

    /// Moves the clock by `secs` and evaluates.
    fn wait(&mut self, secs: i64) {
        self.clock.advance(secs);
        self.tick();
    }
}

fn kinds() -> [Kind; 5] {
    [
        Kind {
            rule: "api",
            toml: API,
            groups: true,
            below: |h, g| h.errors(g, 4),
            fire: |h, g| h.errors(g, 5),
            keep: |h, g| h.errors(g, 1),
            // The window empties.
            stop: |h, _| {
                h.clock.advance(60);
            },
        },
        Kind {
            rule: "worker",
            toml: WORKER,
            groups: true,
            below: |h, g| h.worker_cycles(g, true, 2),
            fire: |h, g| h.worker_cycles(g, true, 3),
            keep: |h, g| h.worker_cycle(g, true),
            // A clean cycle, over once the next one starts.
            stop: |h, g| h.worker_cycles(g, false, 2),
        },
        Kind {
            rule: "redis",
            toml: REDIS,
            groups: false,
            below: |h, _| h.probe(true, 1),
            fire: |h, _| h.probe(true, 2),
            keep: |h, _| h.probe(true, 1),
            stop: |h, _| h.probe(false, 1),
        },
        Kind {
            rule: "checks",
            toml: r#"
[rules.checks]
kind = "health"
filter = { event = "health_check" }
threshold = 2
actions = ["hook"]
"#,
            groups: true,
            below: |h, g| h.health_check(g, "failed"),
            fire: |h, g| (0..2).for_each(|_| h.health_check(g, "failed")),
            keep: |h, g| h.health_check(g, "failed"),
            stop: |h, g| h.health_check(g, "ok"),
        },
        Kind {
            rule: "worker_alive",
            toml: HEARTBEAT,
            groups: true,
            // Silent one second short of the window.
            below: |h, _| h.wait(299),
            fire: |h, g| {
                h.heartbeat(g);
                h.wait(300);
            },
            keep: |_, _| {},
            stop: |h, g| h.heartbeat(g),
        },
    ]
}

/// `toml` with `extra` added to its rule (the last table).
fn with(toml: &str, extra: &str) -> String {
    format!("{toml}{extra}\n")
}

/// A harness for `kind`'s rule with `extra` added to it, its condition made true.
fn started(kind: &Kind, extra: &str) -> Harness {
    let mut h = harness(&with(kind.toml, extra));
    (kind.fire)(&mut h, "a");
    h
}

/// Moves the clock `secs` in 5 s steps, keeping `kind`'s condition true, evaluating at
/// each step; the events sent on the way.
fn hold(h: &mut Harness, kind: &Kind, secs: i64) -> Vec<NotifyEvent> {
    let mut events = Vec::new();
    for _ in 0..secs / 5 {
        h.clock.advance(5);
        (kind.keep)(h, "a");
        h.tick();
        events.extend(h.sent().into_iter().map(|s| s.2));
    }
    events
}

#[test]
fn every_kind_waits_for_before_firing_and_a_shorter_blip_never_fires() {
    for kind in kinds() {
        let rule = kind.rule;
        let mut h = started(&kind, "for = \"30s\"");
        assert_eq!(h.sent(), [], "{rule}: pending");
        assert_eq!(h.status(""), AlertStatus::Pending, "{rule}");
        assert_eq!(hold(&mut h, &kind, 25), [], "{rule}: 25 s of 30");
        assert_eq!(
            hold(&mut h, &kind, 5),
            [NotifyEvent::Firing],
            "{rule}: held for 30 s"
        );

        let mut h = started(&kind, "for = \"30s\"");
        hold(&mut h, &kind, 10);
        (kind.stop)(&mut h, "a");
        h.tick();
        assert_eq!(h.status(""), AlertStatus::Ok, "{rule}: pending cleared");
        h.wait(60);
        assert_eq!(h.sent(), [], "{rule}: a blip shorter than `for`");
    }
}

#[test]
fn every_kind_reminds_every_repeat_interval_and_resolves_once() {
    for kind in kinds() {
        let rule = kind.rule;
        let mut h = started(&kind, "repeat_interval = \"1m\"");
        assert_eq!(h.sent(), [fired(rule, "")], "{rule}");
        for minute in 1..=2 {
            assert_eq!(hold(&mut h, &kind, 55), [], "{rule}: before {minute} min");
            assert_eq!(
                hold(&mut h, &kind, 5),
                [NotifyEvent::Repeat],
                "{rule}: a reminder at {minute} min"
            );
        }
        (kind.stop)(&mut h, "a");
        h.tick();
        assert_eq!(h.sent(), [resolved(rule, "")], "{rule}");
        assert_eq!(h.status(""), AlertStatus::Resolved, "{rule}");
        for _ in 0..30 {
            h.wait(5);
        }
        assert_eq!(h.sent(), [], "{rule}: resolved once, no reminder after");
    }
}

#[test]
fn every_kind_resets_to_a_resolve_and_forgets_what_came_before() {
    for kind in kinds() {
        let rule = kind.rule;
        let mut h = started(&kind, "");
        assert_eq!(h.sent(), [fired(rule, "")], "{rule}");
        h.clock.advance(1);
        assert_eq!(
            h.engine.reset(0, h.clock.now()),
            1,
            "{rule}: one was firing"
        );
        let sent: Vec<_> = h
            .engine
            .take_effects()
            .notifications
            .into_iter()
            .map(|n| (n.event, n.resolve_reason))
            .collect();
        assert_eq!(
            sent,
            [(NotifyEvent::Resolved, Some("reset".to_owned()))],
            "{rule}"
        );
        h.tick();
        (kind.below)(&mut h, "a");
        h.tick();
        assert_eq!(
            h.sent(),
            [],
            "{rule}: what came before the reset counts no more"
        );
        assert_ne!(h.status(""), AlertStatus::Firing, "{rule}");
        (kind.fire)(&mut h, "a");
        assert_eq!(h.sent(), [fired(rule, "")], "{rule}: fires again");
    }
}

#[test]
fn every_kind_that_groups_keeps_its_groups_independent() {
    for kind in kinds().into_iter().filter(|k| k.groups) {
        let rule = kind.rule;
        let mut h = harness(&with(kind.toml, "group_by = \"meta.host\""));
        (kind.below)(&mut h, "b");
        assert_eq!(h.sent(), [], "{rule}: b one short");
        (kind.fire)(&mut h, "a");
        h.tick();
        assert_eq!(h.sent(), [fired(rule, "meta.host=a")], "{rule}: a alone");
        assert_eq!(h.status("meta.host=b"), AlertStatus::Ok, "{rule}");
        (kind.fire)(&mut h, "b");
        assert_eq!(h.sent(), [fired(rule, "meta.host=b")], "{rule}");
        assert_eq!(h.status("meta.host=a"), AlertStatus::Firing, "{rule}");
    }
}

fn silence(matchers: &[&str], from: Timestamp, secs: u64) -> Silence {
    crate::silence::NewSilence {
        matchers: matchers
            .iter()
            .map(|m| crate::silence::Matcher::parse(m).unwrap())
            .collect(),
        starts_at: Some(from),
        duration: Some(HumanDuration(std::time::Duration::from_secs(secs))),
        comment: "maintenance".into(),
        created_by: "test".into(),
        ..Default::default()
    }
    .build(from)
    .unwrap()
}

#[test]
fn a_silenced_alert_fires_without_notifying_and_sends_one_firing_when_the_silence_ends() {
    let mut h = harness(&format!("{API}repeat_interval = \"10s\"\n"));
    h.engine
        .set_silences(vec![silence(&["rule=api"], h.clock.now(), 60)]);
    for _ in 0..5 {
        h.error("api");
    }
    assert_eq!(h.status(""), AlertStatus::Firing, "the state goes on");
    assert!(h.sent().is_empty(), "silenced");
    let g = &h.engine.groups(0, h.clock.now())[0];
    assert!(g.silenced_by.is_some());
    for _ in 0..4 {
        h.clock.advance(11);
        h.error("api");
        h.error("api");
        h.error("api");
        h.error("api");
        h.error("api");
        h.tick();
    }
    assert!(h.sent().is_empty(), "reminders held too");
    h.clock.advance(20);
    for _ in 0..5 {
        h.error("api");
    }
    h.tick();
    assert_eq!(h.sent(), [fired("api", "")], "one firing, no burst");
    h.clock.advance(1);
    h.tick();
    assert!(h.sent().is_empty());
    assert!(h.engine.groups(0, h.clock.now())[0].silenced_by.is_none());
}

#[test]
fn fired_and_resolved_under_a_silence_sends_nothing() {
    let mut h = harness(API);
    h.engine
        .set_silences(vec![silence(&["rule=~a.i"], h.clock.now(), 120)]);
    for _ in 0..5 {
        h.error("api");
    }
    h.clock.advance(61);
    h.tick();
    assert_eq!(h.status(""), AlertStatus::Resolved);
    h.clock.advance(120);
    h.tick();
    assert!(h.sent().is_empty());
}

#[test]
fn a_firing_source_inhibits_its_targets_until_it_resolves() {
    let mut h = harness(&format!(
        "{API}\n[rules.worker]\nkind = \"threshold\"\nfilter = {{ service = \"worker\", level = \"ERROR\" }}\nwindow = \"1m\"\nthreshold = 1\n\n[[inhibit]]\nsource = \"worker\"\ntarget = [\"api\"]\n"
    ));
    let compiled: AlertsConfig = toml::from_str(&format!(
        "[channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n{API}\n[rules.worker]\nkind = \"threshold\"\nfilter = {{ service = \"worker\", level = \"ERROR\" }}\nwindow = \"1m\"\nthreshold = 1\n\n[[inhibit]]\nsource = \"worker\"\ntarget = [\"api\"]\n"
    ))
    .unwrap();
    h.engine
        .set_inhibits(crate::silence::compile_inhibits(&compiled.inhibit, |_| true).unwrap());
    h.error("worker");
    assert_eq!(h.sent(), [fired("worker", "")]);
    for _ in 0..5 {
        h.error("api");
    }
    assert!(h.sent().is_empty(), "inhibited while worker fires");
    assert_eq!(
        h.engine.groups(0, h.clock.now())[0].inhibited_by.as_deref(),
        Some("worker")
    );
    // The source's window passes; the target's records keep coming.
    h.clock.advance(61);
    for _ in 0..5 {
        h.error("api");
    }
    h.tick();
    assert_eq!(h.sent(), [resolved("worker", ""), fired("api", "")]);
}

#[test]
fn a_silence_until_resolved_ends_when_its_alert_resolves() {
    let mut h = harness(API);
    let mut s = silence(&["rule=api"], h.clock.now(), 3600);
    s.until_resolved = true;
    h.engine.set_silences(vec![s]);
    for _ in 0..5 {
        h.error("api");
    }
    assert!(
        h.engine.end_until_resolved(h.clock.now()).is_empty(),
        "it fires"
    );
    h.clock.advance(61);
    h.tick();
    assert_eq!(h.status(""), AlertStatus::Resolved);
    let ended = h.engine.end_until_resolved(h.clock.now());
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].status(h.clock.now()), SilenceStatus::Expired);
    assert!(
        h.engine.end_until_resolved(h.clock.now()).is_empty(),
        "once"
    );
    h.tick();
    assert!(
        h.sent().is_empty(),
        "fired and resolved under the silence: nothing"
    );
    // Firing again later is not silenced.
    for _ in 0..5 {
        h.error("api");
    }
    assert_eq!(h.sent(), [fired("api", "")]);
}

/// `POST /notices` reads one user's alerts only: the asked id's groups of `notice` rules,
/// within the key's services, not silenced, with the page's id in the summary.
#[test]
fn user_notices_are_the_asked_users_only() {
    use crate::user_notice::{UserNoticeQuery, user_notices};
    let mut h = harness(
        r#"
[rules.ui]
kind = "threshold"
filter = { service = "ui", level = "ERROR" }
group_by = "meta.user"
window = "10m"
threshold = 3
summary = "{value} errors for {group}"
actions = ["notice"]

[rules.api_users]
kind = "threshold"
filter = { service = "api", level = "ERROR" }
group_by = "meta.user"
window = "10m"
threshold = 3
actions = ["notice"]

[rules.ui_quiet]
kind = "threshold"
filter = { service = "ui", level = "ERROR" }
group_by = "meta.user"
window = "10m"
threshold = 3
actions = ["hook"]
"#,
    );
    for _ in 0..3 {
        for (service, user) in [("ui", "u_a"), ("api", "u_a"), ("ui", "u_b")] {
            h.send(service, Level::Error, "e", &[("user", user)]);
        }
    }
    let ask = |h: &Harness, stored: &str, services: Option<&[&str]>| {
        let query = UserNoticeQuery {
            stored: stored.into(),
            shown: "u_page".into(),
            services: services.map(|s| s.iter().map(|s| (*s).to_owned()).collect()),
        };
        user_notices(&h.engine, &query, h.clock.now())
            .into_iter()
            .map(|n| (n.rule, n.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ask(&h, "u_a", Some(&["ui"])),
        [("ui".to_owned(), "3 errors for meta.user=u_page".to_owned())]
    );
    let all: Vec<String> = ask(&h, "u_a", None).into_iter().map(|n| n.0).collect();
    assert_eq!(all, ["api_users", "ui"], "rules in name order");
    assert_eq!(ask(&h, "u_b", Some(&["ui"])).len(), 1);
    assert!(ask(&h, "u_c", None).is_empty(), "nobody else's");
    assert!(ask(&h, "u_", None).is_empty(), "no prefix match");
    h.engine.set_silences(vec![silence(
        &["rule=ui", "meta.user=u_a"],
        h.clock.now(),
        60,
    )]);
    assert_eq!(ask(&h, "u_a", Some(&["ui"])), []);
    assert_eq!(
        ask(&h, "u_b", Some(&["ui"])).len(),
        1,
        "only u_a's is silenced"
    );
}

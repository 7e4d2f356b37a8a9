//! `faultline-alerts`: the alert engine of the Faultline server. Rules evaluated as records
//! arrive, probes, notifications, and their persisted state.
//!
//! It knows records ([`faultline_schema`]) and the record store ([`faultline_store`]), and
//! nothing of HTTP, the command line or the server's configuration: the server hands it an
//! [`AlertsConfig`] (its `[alerts]` section), the stores it opened, and renders the
//! [`AlertsView`] it answers with.
//!
//! # The path of a record through the evaluator
//!
//! 1. **Ingest** asks [`AlertHandle::observe`] for the summaries of the records some rule
//!    looks at, before the record store takes the batch. Records no rule's service, level
//!    and event can match cost a few comparisons and allocate nothing.
//! 2. Once the store has acknowledged the batch, [`AlertHandle::submit`] hands the summaries
//!    to the service's bounded queue without waiting. If the queue is full they are dropped
//!    and counted (`faultline_alerts_records_dropped_total`): ingest never waits for alerts.
//! 3. The service ([`AlertService`], `service.rs`) feeds them to the evaluator (`eval.rs`),
//!    which updates each rule's groups and steps their state machines (`alert_state.rs`) at
//!    once; a timer ticks every `evaluation_interval` for windows that slide, `for`,
//!    reminders and silence; probes (`probe.rs`) report on their own schedule.
//! 4. Every change is persisted (`store.rs`, `pg_store.rs`) **before** its notifications
//!    leave; then each notification goes to the rule's channels (`notify/`), in order per
//!    alert and channel, with timeouts and retries (`outbox.rs`), and every outcome is
//!    recorded and shown in the [`AlertsView`].
//!
//! That is the streaming feed ([`Feed::Ingest`], the file store). On PostgreSQL
//! ([`Feed::Shared`]) several nodes ingest and one leads ([`Election`]): ingest submits
//! nothing, and the leader reads every node's records from `system_logs` on each tick, a
//! record being evaluated within one interval of its commit.
//!
//! On start the service loads the persisted state, re-reads each rule's window from the
//! store ([`RecordStore::scan`](faultline_store::RecordStore::scan)) so counts survive a
//! restart, evaluates once (so a condition that ended while the server was down resolves),
//! and sends notifications that were decided but not delivered before the restart.
//! [`check_once`] runs the same evaluator once over the stored records (`faultline
//! check-alerts`).
//!
//! # Layout
//!
//! From the leaves up; a file imports only files above it in this list.
//!
//! - `alert_config.rs`: the TOML shapes ([`AlertsConfig`], rules, probes), and
//!   `notify/*/mod.rs`, one config struct per channel kind (with `notify/delivery.rs`, the
//!   settings every kind takes); `error.rs`: [`AlertConfigError`] and the shared checks.
//! - `template.rs`: `{name}` placeholders filled in one pass (rule summaries, channel
//!   templates).
//! - `compile.rs`: checks and compiles them; `rule.rs`: the compiled `Rule` the
//!   evaluator runs.
//! - `alert_state.rs`: the per-alert state machine; `eval.rs`: the rule logic per kind,
//!   pure, driven by the `now` it is given.
//! - `store.rs`: [`AlertStore`] and the file implementation; `pg_store.rs`: PostgreSQL.
//! - `notify/`: the payload, and one folder per channel kind (its config and its sender).
//!   `probe.rs`: TCP, Redis, HTTP probes.
//! - `outbox.rs`: notifications being delivered, in order per channel and alert.
//! - `user_notice.rs`: one user's notices, for their own page ([`UserNotice`]).
//! - `service.rs`: [`AlertService`], [`AlertHandle`], [`spawn`]; `view.rs`: what the HTTP
//!   layer renders; `check.rs`: [`check_once`].

mod alert_config;
mod alert_state;
mod check;
mod compile;
mod error;
mod eval;
#[doc(hidden)]
pub mod fuzzing;
mod notify;
mod outbox;
mod pg_store;
mod probe;
mod rule;
mod service;
mod silence;
mod store;
mod template;
mod user_notice;
mod view;

pub use alert_config::{
    ActionConfig, AlertConfigError, AlertsConfig, FilterConfig, InhibitConfig, ProbeConfig,
    ProbeKind, RuleConfig, RuleKind, Severity, Strings,
};
pub use alert_state::{AlertState, AlertStatus};
pub use check::{CheckOptions, CheckOutcome, check_once};
pub use eval::CurrentView;
pub use eval::Observed;
pub use notify::{
    ChannelConfig, ChannelKind, ChatId, CommandConfig, DeliveryConfig, DiscordConfig, EmailConfig,
    NotifyEvent, OtherFields, PagerdutyConfig, SlackConfig, SmtpTls, TelegramConfig, WebhookConfig,
};
pub use pg_store::{PgAlertStore, PgLeaderLock};
pub use service::{
    AlertAccess, AlertHandle, AlertRunner, AlertService, Election, EvaluatorStopped, Feed,
    ReconfigureError, Reconfigured, SilenceError, open_store, spawn,
};
pub use silence::{MatchOp, Matcher, NewSilence, Silence, SilenceStatus, SilenceView};
pub use store::{
    AlertStore, AlertStoreError, CheckKind, CheckStatus, Delivery, DeliveryStatus, FileAlertStore,
    StateChanges, StoredAlert, StoredRule, StoredState, SystemCheck,
};
pub use user_notice::{UserNotice, UserNoticeQuery};
pub use view::{
    AlertsView, ChannelView, FiringAlert, GroupView, NoticeView, ResetView, RuleView, firing_alerts,
};

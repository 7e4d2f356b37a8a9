//! The running evaluator: [`AlertService`] (one task that decides, persists and notifies),
//! the [`AlertHandle`] ingest and the HTTP layer hold, and how a node comes to lead.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use faultline_schema::{Record, Timestamp};
use faultline_store::RecordStore;
use tokio::sync::{mpsc, oneshot, watch};

use crate::alert_config::{
    AlertConfigError, AlertsConfig, NOTICE_ACTION, NotifyEvent, SYSTEM_CHECK_ACTION,
};
use crate::alert_state::AlertStatus;
use crate::eval::{Evaluator, Interest, Observed};
use crate::notify::{Channel, Context, Notification};
use crate::outbox::{Finished, Outbox};
use crate::pg_store::{PgAlertStore, PgLeaderLock};
use crate::probe::{Probe, ProbeResult};
use crate::rule::{Action, CompiledAlerts, Condition, Rule};
use crate::silence::{NewSilence, SilenceView, compile_inhibits};
use crate::store::{
    AlertStore, CheckKind, CheckStatus, Delivery, DeliveryStatus, FileAlertStore, StoredState,
    SystemCheck,
};
use crate::user_notice::{UserNotice, UserNoticeQuery, user_notices};
use crate::view::{AlertsView, ChannelView, NoticeView, ResetView, RuleView};

/// Records read back per rule on start (the newest ones of its window).
pub(crate) const PRIME_MAX_RECORDS: usize = 100_000;
/// How long shutdown waits for notifications still being delivered.
const SHUTDOWN_DELIVERY_WAIT: Duration = Duration::from_secs(10);
/// Record batches taken from the queue before state is persisted.
const BATCHES_PER_STEP: usize = 64;
/// Reading the shared store: each read goes back this far before the newest `received_at`
/// already read, for records committed late (a node's batch in flight, clocks apart);
/// ids already seen are skipped.
const POLL_OVERLAP_MS: i64 = 30_000;
/// Reading the shared store: records per read, and reads per rule and interval.
const POLL_PAGE: usize = 10_000;
const POLL_PAGES: usize = 10;
/// Reading the shared store: records whose `ts` is older than this (or than the rule's
/// window, if longer) are not read (it bounds the partitions scanned).
const POLL_TS_FLOOR_MS: i64 = 3_600_000;

/// The cheap, cloneable side of the evaluator: what ingest and the HTTP handlers use.
#[derive(Clone)]
pub struct AlertHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    records: mpsc::Sender<Vec<Observed>>,
    control: mpsc::Sender<Control>,
    /// What ingest summarizes for the rules; replaced when the rules are (a reload).
    interest: RwLock<Arc<Interest>>,
    dropped: AtomicU64,
    /// Whether this process evaluates the rules now (always, alone on a file store).
    leader: AtomicBool,
}

/// Requests from the HTTP handlers, answered by the run loop.
enum Control {
    View(oneshot::Sender<AlertsView>),
    Reset {
        rule: String,
        reply: oneshot::Sender<Option<ResetView>>,
    },
    Checks(oneshot::Sender<Vec<SystemCheck>>),
    /// See `AlertHandle::user_notices`.
    UserNotices {
        query: UserNoticeQuery,
        reply: oneshot::Sender<Vec<UserNotice>>,
    },
    Silences(oneshot::Sender<Result<Vec<SilenceView>, SilenceError>>),
    AddSilence {
        new: NewSilence,
        reply: oneshot::Sender<Result<SilenceView, SilenceError>>,
    },
    ExpireSilence {
        id: String,
        reply: oneshot::Sender<Result<Option<SilenceView>, SilenceError>>,
    },
    Reconfigure {
        compiled: Box<CompiledAlerts>,
        targets: Targets,
        reply: oneshot::Sender<Reconfigured>,
    },
}

/// What [`AlertHandle::reconfigure`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Rules kept as they were: their alerts, `for` timers and windows go on.
    pub kept: Vec<String>,
    /// Rules new or changed: they start from nothing (their window refilled from the
    /// store, no alert firing).
    pub changed: Vec<String>,
    /// Rules gone: their stored alerts are deleted.
    pub removed: Vec<String>,
    /// Settings whose change takes a restart (`alerts.enabled`, `evaluation_interval`,
    /// `queue_batches`, `checks_kept`, `deliveries_kept`, `probes`): the running values
    /// are kept.
    pub restart_needed: Vec<String>,
}

/// Why [`AlertHandle::reconfigure`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReconfigureError {
    /// The new `[alerts]` section is wrong (a rule, a channel, an unset secret).
    #[error(transparent)]
    Config(#[from] AlertConfigError),
    /// The evaluator is not running.
    #[error(transparent)]
    Stopped(#[from] EvaluatorStopped),
}

/// Why a silence could not be listed, made or expired.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The request is wrong: what to fix.
    #[error("{0}")]
    Invalid(String),
    /// The alert store failed.
    #[error("{0}")]
    Store(#[from] crate::store::AlertStoreError),
    /// The evaluator is not running.
    #[error(transparent)]
    Stopped(#[from] EvaluatorStopped),
}

/// The service is not running (shutting down, or it failed).
#[derive(Debug, thiserror::Error)]
#[error("the alert evaluator is not running")]
pub struct EvaluatorStopped;

impl AlertHandle {
    /// Summaries of the records some rule looks at, or `None` (the common case, and always
    /// without rules). Call it before the record store takes the records.
    pub fn observe(&self, records: &[Record]) -> Option<Vec<Observed>> {
        let interest = Arc::clone(
            &self
                .inner
                .interest
                .read()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if interest.is_empty() {
            return None;
        }
        let mut out: Vec<Observed> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if let Some(obs) = interest.observe_after(r, out.last()) {
                if out.is_empty() {
                    // Room for the rest at once (a batch is mostly one kind of record).
                    out.reserve_exact(records.len() - i);
                }
                out.push(obs);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Hands acknowledged records to the evaluator without waiting. When its queue is full
    /// they are dropped and counted (`faultline_alerts_records_dropped_total`).
    pub fn submit(&self, batch: Vec<Observed>) {
        let n = batch.len() as u64;
        match self.inner.records.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.inner.dropped.fetch_add(n, Ordering::Relaxed);
                metrics::counter!("faultline_alerts_records_dropped_total").increment(n);
            }
            // Shutting down: the server no longer evaluates.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Records not evaluated because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Whether this process leads: it evaluates the rules and sends the notifications.
    /// On PostgreSQL only the holder of the evaluator's advisory lock does; the other
    /// nodes stand by.
    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::Relaxed)
    }

    fn set_interest(&self, interest: Interest) {
        *self
            .inner
            .interest
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(interest);
    }

    /// Replaces the rules, channels and inhibitions with `config`'s (a SIGHUP reload),
    /// reading channel secrets through `env`. Checked whole before anything changes: a
    /// wrong config or an unset secret is an error and the running rules go on. Rules whose
    /// definition is unchanged keep their state (alerts firing, `for` timers, windows);
    /// new and changed ones start afresh, their window refilled from the store.
    ///
    /// The config is compiled and `env` read before the returned future first waits, so
    /// the future holds neither.
    pub fn reconfigure(
        &self,
        config: &AlertsConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> impl Future<Output = Result<Reconfigured, ReconfigureError>> + Send + '_ {
        let prepared = config.compile().and_then(|compiled| {
            let targets = build_targets(&compiled, env)?;
            Ok((Box::new(compiled), targets))
        });
        async move {
            let (compiled, targets) = prepared?;
            Ok(self
                .ask(|reply| Control::Reconfigure {
                    compiled,
                    targets,
                    reply,
                })
                .await?)
        }
    }

    fn set_leader(&self, leader: bool) {
        self.inner.leader.store(leader, Ordering::Relaxed);
        metrics::gauge!("faultline_alerts_leader").set(if leader { 1.0 } else { 0.0 });
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, EvaluatorStopped> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .control
            .send(make(tx))
            .await
            .map_err(|_| EvaluatorStopped)?;
        rx.await.map_err(|_| EvaluatorStopped)
    }

    /// What `GET /alerts` shows, as the run loop sees it now.
    pub async fn view(&self) -> Result<AlertsView, EvaluatorStopped> {
        self.ask(Control::View).await
    }

    /// Resets `rule` (see `POST /alerts/{rule}/reset`); `None` if there is no such rule.
    pub async fn reset(&self, rule: &str) -> Result<Option<ResetView>, EvaluatorStopped> {
        let rule = rule.to_owned();
        self.ask(|reply| Control::Reset { rule, reply }).await
    }

    /// One user's notices (`POST /notices`): the firing, unmuted alerts of `notice` rules
    /// whose group's `meta.user` is the asked id, never any other group's.
    pub async fn user_notices(
        &self,
        query: UserNoticeQuery,
    ) -> Result<Vec<UserNotice>, EvaluatorStopped> {
        self.ask(|reply| Control::UserNotices { query, reply })
            .await
    }

    /// The latest result of every rule and probe (`GET /system/checks/latest`).
    pub async fn checks(&self) -> Result<Vec<SystemCheck>, EvaluatorStopped> {
        self.ask(Control::Checks).await
    }

    /// Every silence kept (`GET /silences`), from the store: every node sees the same.
    pub async fn silences(&self) -> Result<Vec<SilenceView>, SilenceError> {
        self.ask(Control::Silences).await?
    }

    /// Makes a silence (`POST /silences`), stored before it is answered; the leader holds
    /// the matching alerts' notifications from its next evaluation interval on (at once on
    /// this node if it leads).
    pub async fn add_silence(&self, new: NewSilence) -> Result<SilenceView, SilenceError> {
        self.ask(|reply| Control::AddSilence { new, reply }).await?
    }

    /// Ends silence `id` now (`DELETE /silences/{id}`); `None` if there is no such silence.
    pub async fn expire_silence(&self, id: &str) -> Result<Option<SilenceView>, SilenceError> {
        let id = id.to_owned();
        self.ask(|reply| Control::ExpireSilence { id, reply })
            .await?
    }
}

/// The running evaluator: owns the rules' state, the probes and the deliveries.
pub struct AlertService {
    pub(crate) compiled: CompiledAlerts,
    channels: Channels,
    /// Channels left out for an unset secret: name, variable.
    unconfigured: BTreeMap<String, String>,
    probes: Vec<Arc<Probe>>,
    ctx: Context,
    record_store: Arc<dyn RecordStore>,
    store: Arc<dyn AlertStore>,
    records: mpsc::Receiver<Vec<Observed>>,
    control: mpsc::Receiver<Control>,
    pub(crate) handle: AlertHandle,
    pub(crate) engine: Evaluator,
    /// The newest deliveries per rule, newest last.
    pub(crate) recent: HashMap<String, VecDeque<Delivery>>,
    /// The latest result of every probe.
    pub(crate) probe_results: HashMap<String, SystemCheck>,
    /// Notifications being delivered.
    outbox: Outbox,
    /// How this process comes to evaluate.
    election: Election,
    /// Where a leader's records come from.
    feed: Feed,
    /// Per rule, the newest `received_at` (ms) read from the shared store.
    cursors: Vec<i64>,
    /// Issue changes are read from here on (the store's clock, in milliseconds), back by
    /// [`POLL_OVERLAP_MS`].
    issue_cursor: i64,
}

/// Where a leader's records come from.
pub enum Feed {
    /// This process's ingest, as acknowledged: streaming, for a single node (the file store).
    Ingest,
    /// Every node's records, read from `system_logs` every evaluation interval (PostgreSQL,
    /// where several nodes ingest and one evaluates).
    Shared(faultline_store::PostgresStore),
}

/// How a server comes to evaluate the rules.
pub enum Election {
    /// Alone on its alert state (the file store, whose `alerts/LOCK` it holds): it leads
    /// from start to end.
    Sole,
    /// One node among several on PostgreSQL: it leads while it holds the evaluator's
    /// advisory lock, and otherwise stands by, trying again every evaluation interval.
    Postgres(PgLeaderLock),
}

impl Election {
    /// Whether this process leads now (see [`PgLeaderLock::try_lead`]).
    async fn try_lead(&mut self) -> bool {
        match self {
            Election::Sole => true,
            Election::Postgres(lock) => lock.try_lead().await,
        }
    }

    /// Whether this process led at the last check.
    fn held(&self) -> bool {
        match self {
            Election::Sole => true,
            Election::Postgres(lock) => lock.held(),
        }
    }

    /// Right after start: waits up to [`crate::store::LOCK_WAIT`] for a predecessor's session to
    /// end (a restart), then leads or stands by.
    async fn first_try(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + crate::store::LOCK_WAIT;
        loop {
            if self.try_lead().await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How a leader's term ended.
enum Term {
    /// A stop was requested.
    Stopped,
    /// The lock's session was lost: another node may lead now.
    Lost,
}

/// Stops the service and waits for it to drain. Dropping it leaves the service running.
pub struct AlertRunner {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AlertRunner {
    /// Stops the evaluator: it evaluates what is queued, persists, and waits (up to 10 s)
    /// for notifications being delivered. Call it after the HTTP server stopped.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "alert evaluator task failed");
        }
    }
}

/// Builds the evaluator for `config` over `record_store` and `store`, reading channel and probe
/// secrets through `env`, loads the persisted state, and starts it, leading or standing by
/// as `election` decides. Fails on a config or secret problem, or if the stored state
/// cannot be read.
pub async fn spawn(
    config: &AlertsConfig,
    record_store: Arc<dyn RecordStore>,
    store: Arc<dyn AlertStore>,
    mut election: Election,
    feed: Feed,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<(AlertHandle, AlertRunner)> {
    let streaming = matches!(feed, Feed::Ingest);
    let mut service = AlertService::new(config, record_store, store, streaming, env).await?;
    service.feed = feed;
    let leads = election.first_try().await;
    service.election = election;
    if leads {
        tracing::info!("this node leads: it evaluates the alert rules");
    }
    service.handle.set_leader(leads);
    let handle = service.handle.clone();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(service.run(stopped));
    Ok((handle, AlertRunner { stop, task }))
}

/// What a process opens the alert state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAccess {
    /// To decide and notify, exclusively (the server, `check-alerts`).
    Evaluate,
    /// To report, beside a process that may be evaluating (`summary`).
    Read,
}

/// The alert state, kept where the records are: in PostgreSQL when the record store is
/// `postgres` (so every node and every restart sees the same state), else in `data_dir`,
/// keeping the newest `config.checks_kept` checks and `config.deliveries_kept` deliveries.
pub async fn open_store(
    config: &AlertsConfig,
    postgres: Option<&faultline_store::PostgresStore>,
    data_dir: &std::path::Path,
    access: AlertAccess,
) -> anyhow::Result<Arc<dyn AlertStore>> {
    use anyhow::Context as _;
    if let Some(postgres) = postgres {
        let pool = postgres.pool().clone();
        let opened = match access {
            AlertAccess::Evaluate => PgAlertStore::open_locked(pool).await,
            AlertAccess::Read => Ok(PgAlertStore::new(pool)),
        };
        return Ok(Arc::new(
            opened.context("cannot open the alert state in PostgreSQL")?,
        ));
    }
    let dir = data_dir.to_owned();
    let (checks, deliveries) = (config.checks_kept, config.deliveries_kept);
    let opened = tokio::task::spawn_blocking(move || match access {
        AlertAccess::Evaluate => FileAlertStore::open_locked(&dir, checks, deliveries),
        AlertAccess::Read => FileAlertStore::open(&dir, checks, deliveries),
    })
    .await
    .context("alert store task failed")?
    .context("cannot open the alert state")?;
    Ok(Arc::new(opened))
}

/// Ready channels, by name.
type Channels = HashMap<String, Arc<Channel>>;

/// What `compiled`'s rules notify and probe, with their secrets read.
pub(crate) struct Targets {
    pub channels: Channels,
    pub probes: Vec<Arc<Probe>>,
    /// Channels skipped for a secret's unset variable (with
    /// `skip_unconfigured_channels`), by name: the variable.
    pub unconfigured: BTreeMap<String, String>,
}

/// Channels and probes of `compiled`, with their secrets read. A channel whose secret's
/// variable is unset stops the start, or with `skip_unconfigured_channels` is left out and
/// listed as not configured.
pub(crate) fn build_targets(
    compiled: &CompiledAlerts,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Targets, AlertConfigError> {
    // Only channels and probes something uses need their secrets.
    let mut channels = HashMap::new();
    let mut unconfigured = BTreeMap::new();
    let mut probes = Vec::new();
    for rule in &compiled.rules {
        for action in &rule.actions {
            if let Action::Channel { name, .. } = action
                && !channels.contains_key(name)
                && !unconfigured.contains_key(name)
                && let Some(c) = compiled.channels.get(name)
            {
                if compiled.settings.skip_unconfigured_channels
                    && let Some(var) = c.unset_secret(env)
                {
                    tracing::warn!(
                        channel = %name, variable = %var,
                        "alert channel not configured ({var} is not set): its notifications are skipped"
                    );
                    unconfigured.insert(name.clone(), var);
                    continue;
                }
                channels.insert(name.clone(), Arc::new(Channel::new(name, c, env)?));
            }
        }
    }
    for (name, p) in &compiled.probes {
        if p.enabled {
            probes.push(Arc::new(Probe::new(name, p, env)?));
        }
    }
    Ok(Targets {
        channels,
        probes,
        unconfigured,
    })
}

/// A rule's or probe's definition as written, to tell a changed one from the same.
fn definition(config: &impl serde::Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(config).ok()
}

/// Counts a notification not sent to `channel`, which is not configured.
pub(crate) fn skipped(channel: &str, n: &Notification) {
    metrics::counter!("faultline_alerts_notifications_skipped_total", "channel" => channel.to_owned())
        .increment(1);
    tracing::debug!(channel, rule = %n.rule, event = n.event.as_str(), "channel not configured: notification skipped");
}

impl AlertService {
    async fn new(
        config: &AlertsConfig,
        record_store: Arc<dyn RecordStore>,
        store: Arc<dyn AlertStore>,
        streaming: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<AlertService> {
        let compiled = config.compile()?;
        let Targets {
            channels,
            probes,
            unconfigured,
        } = build_targets(&compiled, env)?;
        // Read from the shared store instead, ingest hands nothing over.
        let interest = if config.enabled && streaming {
            Interest::new(compiled.rules.clone(), &compiled.meta_keys)
        } else {
            Interest::default()
        };
        let (records_tx, records) = mpsc::channel(compiled.settings.queue_batches);
        let (control_tx, control) = mpsc::channel(64);
        let handle = AlertHandle {
            inner: Arc::new(HandleInner {
                records: records_tx,
                control: control_tx,
                interest: RwLock::new(Arc::new(interest)),
                dropped: AtomicU64::new(0),
                leader: AtomicBool::new(false),
            }),
        };
        let engine = Evaluator::new(
            &compiled.rules,
            &compiled.meta_keys,
            compiled.settings.max_groups,
            "evaluator",
            StoredState::default(),
            Timestamp::now(),
        );
        let ctx = Context::new(compiled.settings.dashboard_url.clone());
        let mut service = AlertService {
            compiled,
            channels,
            unconfigured,
            probes,
            ctx,
            record_store,
            store,
            records,
            control,
            handle,
            engine,
            recent: HashMap::new(),
            probe_results: HashMap::new(),
            outbox: Outbox::default(),
            election: Election::Sole,
            feed: Feed::Ingest,
            cursors: Vec::new(),
            issue_cursor: 0,
        };
        service.reload().await?;
        Ok(service)
    }

    /// Reads the persisted state again (another node may have changed it): rules, alerts,
    /// recent deliveries and probe results.
    async fn reload(&mut self) -> anyhow::Result<()> {
        self.rebuild(&[]).await
    }

    /// [`AlertService::reload`], forgetting the persisted state of the rules named in
    /// `fresh` (changed by a reload: their old alerts are deleted on the next commit).
    async fn rebuild(&mut self, fresh: &[String]) -> anyhow::Result<()> {
        let mut restored = self.store.load().await?;
        let mut forgotten = Vec::new();
        restored.rules.retain(|r| !fresh.contains(&r.rule));
        restored.alerts.retain(|a| {
            let keep = !fresh.contains(&a.rule);
            if !keep {
                forgotten.push((a.rule.clone(), a.group.clone()));
            }
            keep
        });
        let recent_list = self
            .store
            .recent_deliveries(self.compiled.settings.deliveries_kept)
            .await?;
        let mut recent: HashMap<String, VecDeque<Delivery>> = HashMap::new();
        for d in recent_list.into_iter().rev() {
            recent.entry(d.rule.clone()).or_default().push_back(d);
        }
        let mut probe_results = HashMap::new();
        for c in self.store.latest_checks().await? {
            if c.kind == CheckKind::Probe && self.probes.iter().any(|p| p.name == c.name) {
                probe_results.insert(c.name.clone(), c);
            }
        }
        self.engine = Evaluator::new(
            &self.compiled.rules,
            &self.compiled.meta_keys,
            self.compiled.settings.max_groups,
            "evaluator",
            restored,
            Timestamp::now(),
        );
        self.engine.forget(forgotten);
        // Checked when the config was compiled.
        self.engine
            .set_inhibits(compile_inhibits(&self.compiled.settings.inhibit, |_| true)?);
        self.engine.set_silences(self.store.silences().await?);
        self.recent = recent;
        self.probe_results = probe_results;
        Ok(())
    }

    /// The run loop: leads or stands by until `shutdown` turns true; a leader then drains
    /// what is queued.
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if !self.election.held() {
                if !self.stand_by(&mut shutdown).await {
                    tracing::info!("alert evaluator stopped (standing by)");
                    return;
                }
                if let Err(e) = self.reload().await {
                    tracing::error!(error = %e, "cannot read the alert state to take over; standing by");
                    if let Election::Postgres(lock) = &mut self.election {
                        lock.release();
                    }
                    continue;
                }
                tracing::info!("took over: this node now evaluates the alert rules");
                self.handle.set_leader(true);
            }
            match self.lead(&mut shutdown).await {
                Term::Stopped => break,
                Term::Lost => self.handle.set_leader(false),
            }
        }
        self.drain().await;
    }

    /// While another process leads: answers the API from the persisted state (read again
    /// every interval), drops streamed records (the leader has them, from its own ingest
    /// or from the store) and tries the lock every evaluation interval. Returns true once
    /// this process leads, false when a stop is requested.
    async fn stand_by(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        self.handle.set_leader(false);
        tracing::info!("standing by: another node evaluates the alert rules");
        let every = self.compiled.settings.evaluation_interval.0;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = stop_requested(shutdown) => return false,
                Some(c) = self.control.recv() => self.answer(c).await,
                Some(_) = self.records.recv() => {}
                _ = tick.tick() => {
                    if self.election.try_lead().await {
                        return true;
                    }
                    if let Err(e) = self.reload().await {
                        tracing::debug!(error = %e, "cannot refresh the alert state while standing by");
                    }
                }
            }
        }
    }

    /// One term as the leader: from the persisted state, sends what is owed, refills the
    /// windows, then evaluates until a stop is requested or the lock is lost.
    async fn lead(&mut self, shutdown: &mut watch::Receiver<bool>) -> Term {
        let enabled = self.compiled.settings.enabled;
        let (probe_tx, mut probe_rx) = mpsc::channel::<(String, ProbeResult, Timestamp)>(64);
        if enabled {
            // Owed from before the restart: taken before anything new is decided.
            let owed = self.engine.owed(Timestamp::now());
            let started = Timestamp::now().unix_millis();
            self.prime().await;
            // The shared store is read from here on (back by the overlap: the records
            // primed are skipped by id).
            self.cursors = vec![started; self.compiled.rules.len()];
            self.issue_cursor = started;
            for probe in &self.probes {
                tokio::spawn(run_probe(
                    Arc::clone(probe),
                    self.ctx.http.clone(),
                    Arc::clone(&self.record_store),
                    probe_tx.clone(),
                    shutdown.clone(),
                ));
            }
            self.engine.tick(Timestamp::now());
            if !owed.is_empty() {
                tracing::info!(
                    notifications = owed.len(),
                    "sending notifications owed from before the restart"
                );
            }
            self.commit(owed).await;
        }
        drop(probe_tx);
        let mut tick = tokio::time::interval(self.compiled.settings.evaluation_interval.0);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = stop_requested(shutdown) => return Term::Stopped,
                Some(c) = self.control.recv() => self.answer(c).await,
                Some(batch) = self.records.recv() => {
                    self.take(batch);
                    for _ in 1..BATCHES_PER_STEP {
                        match self.records.try_recv() {
                            Ok(batch) => self.take(batch),
                            Err(_) => break,
                        }
                    }
                }
                Some((name, result, at)) = probe_rx.recv() => self.probed(&name, result, at).await,
                Some(done) = self.outbox.next_finished(), if self.outbox.in_flight() > 0 => {
                    self.delivered(done).await;
                }
                _ = tick.tick() => {
                    if !self.election.try_lead().await {
                        tracing::warn!("lost the alert leader lock: another node may evaluate now");
                        // The probes stop at their next result (their receiver is gone).
                        return Term::Lost;
                    }
                    if enabled {
                        // First: records read next are judged with the silences made
                        // before them (on any node).
                        self.refresh_silences().await;
                        self.poll().await;
                        self.poll_issues().await;
                        let now = Timestamp::now();
                        self.engine.tick(now);
                        for ended in self.engine.end_until_resolved(now) {
                            tracing::info!(silence = %ended.id, "silence ended: what it matched resolved");
                            if let Err(e) = self.store.put_silence(ended).await {
                                tracing::error!(error = %e, "cannot store a silence's end");
                            }
                        }
                    }
                }
            }
            self.commit(Vec::new()).await;
        }
    }

    /// Evaluates records as they arrive.
    fn take(&mut self, batch: Vec<Observed>) {
        metrics::counter!("faultline_alerts_records_observed_total").increment(batch.len() as u64);
        let now = Timestamp::now();
        for obs in &batch {
            self.engine.observe(obs, now);
        }
    }

    /// With the shared store: evaluates every node's records received since the last read
    /// (see [`POLL_OVERLAP_MS`]). A record is evaluated within one evaluation interval of
    /// its commit.
    async fn poll(&mut self) {
        let Feed::Shared(shared) = &self.feed else {
            return;
        };
        let now = Timestamp::now();
        let interest = Interest::new(self.compiled.rules.clone(), &self.compiled.meta_keys);
        let rules: Vec<Arc<Rule>> = self.engine.rules().cloned().collect();
        let mut observed = 0u64;
        for (idx, rule) in rules.iter().enumerate() {
            let Some(cursor) = self.cursors.get(idx).copied() else {
                continue;
            };
            if matches!(rule.condition, Condition::IssueChange { .. }) {
                continue;
            }
            let mut query = rule.query();
            query.since = Some(Timestamp::from_unix_millis(
                now.unix_millis() - rule.horizon_ms().max(POLL_TS_FLOOR_MS),
            ));
            query.limit = POLL_PAGE;
            let mut newest = cursor;
            for _ in 0..POLL_PAGES {
                let after = Timestamp::from_unix_millis(newest - POLL_OVERLAP_MS);
                let records = match shared.received_since(&query, after).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(rule = %rule.name, error = %e, "cannot read new records from the store; trying again next interval");
                        break;
                    }
                };
                let before = newest;
                for r in &records {
                    if let Some(at) = r.received_at {
                        newest = newest.max(at.unix_millis());
                    }
                    if let Some(obs) = interest.observe(r) {
                        observed += 1;
                        self.engine.observe(&obs, now);
                    }
                }
                if records.len() < POLL_PAGE || newest == before {
                    break;
                }
            }
            self.cursors[idx] = newest;
        }
        metrics::counter!("faultline_alerts_records_observed_total").increment(observed);
    }

    /// Rules `new_issue` and `regression`: evaluates the issues the store created or
    /// reopened since the last read (on either feed: every node's writes are in the store),
    /// within one evaluation interval. Changes read twice are counted once (by id).
    async fn poll_issues(&mut self) {
        if !self.has_issue_rules() {
            return;
        }
        let since = Timestamp::from_unix_millis(self.issue_cursor - POLL_OVERLAP_MS);
        let changes = match self.record_store.issue_changes(since).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read issue changes from the store; trying again next interval");
                return;
            }
        };
        let now = Timestamp::now();
        for change in &changes {
            self.issue_cursor = self.issue_cursor.max(change.at.unix_millis());
            self.engine.observe(&Observed::of_change(change), now);
        }
        metrics::counter!("faultline_alerts_records_observed_total")
            .increment(changes.len() as u64);
    }

    fn has_issue_rules(&self) -> bool {
        self.engine
            .rules()
            .any(|r| matches!(r.condition, Condition::IssueChange { .. }))
    }

    /// Refills each rule's window from the store, and each probe's recent results.
    async fn prime(&mut self) {
        let now = Timestamp::now();
        let interest = Interest::new(self.compiled.rules.clone(), &self.compiled.meta_keys);
        let rules: Vec<Arc<Rule>> = self.engine.rules().cloned().collect();
        for (idx, rule) in rules.iter().enumerate() {
            if rule.window_ms == 0 {
                continue;
            }
            if matches!(rule.condition, Condition::IssueChange { .. }) {
                let since = Timestamp::from_unix_millis(now.unix_millis() - rule.horizon_ms());
                match self.record_store.issue_changes(since).await {
                    Ok(changes) => {
                        for change in &changes {
                            self.engine.prime(idx, &Observed::of_change(change));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(rule = %rule.name, error = %e, "cannot read issue changes from the store; counting from now")
                    }
                }
                continue;
            }
            let mut since = now.unix_millis() - rule.horizon_ms();
            if let Some(reset) = self.engine.reset_at(idx) {
                since = since.max(reset.unix_millis());
            }
            let mut query = rule.query();
            query.since = Some(Timestamp::from_unix_millis(since));
            match self.record_store.scan(query, PRIME_MAX_RECORDS).await {
                Ok(records) => {
                    if records.len() >= PRIME_MAX_RECORDS {
                        tracing::warn!(rule = %rule.name, read = records.len(), "window refilled from the newest records only");
                    }
                    for r in records.iter().rev() {
                        if let Some(obs) = interest.observe(r) {
                            self.engine.prime(idx, &obs);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(rule = %rule.name, error = %e, "cannot read the rule's window from the store; counting from now")
                }
            }
        }
        for (name, failures) in probe_rule_depths(&rules) {
            match self.store.recent_checks(&name, failures).await {
                Ok(recent) => {
                    for c in recent.iter().rev() {
                        self.engine.probe_result(
                            &name,
                            c.status == CheckStatus::Failed,
                            &c.detail,
                            c.checked_at,
                            false,
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(probe = %name, error = %e, "cannot read recent probe results")
                }
            }
        }
    }

    async fn probed(&mut self, name: &str, result: ProbeResult, at: Timestamp) {
        if result.failed {
            metrics::counter!("faultline_alerts_probe_failures_total", "probe" => name.to_owned())
                .increment(1);
        }
        let kind = self.probes.iter().find(|p| p.name == name).map(|p| p.kind);
        tracing::debug!(probe = name, failed = result.failed, detail = %result.detail, "probe result");
        let check = SystemCheck {
            name: name.to_owned(),
            kind: CheckKind::Probe,
            status: if result.failed {
                CheckStatus::Failed
            } else {
                CheckStatus::Ok
            },
            detail: match kind {
                Some(k) => format!("{}: {}", k.as_str(), result.detail),
                None => result.detail.clone(),
            },
            group: None,
            source: "probe".into(),
            checked_at: at,
        };
        self.probe_results.insert(name.to_owned(), check.clone());
        if let Err(e) = self.store.append_checks(vec![check]).await {
            tracing::error!(error = %e, "cannot record a probe result");
        }
        self.engine
            .probe_result(name, result.failed, &result.detail, at, true);
    }

    /// Persists what changed, records system checks, then sends the notifications (and
    /// `extra`, owed from before a restart).
    async fn commit(&mut self, extra: Vec<Notification>) {
        if self.compiled.settings.enabled && self.engine.has_changes() {
            // The state persisted now reflects every record so far: a later `check-alerts`
            // continues from here instead of deciding those records again (which would
            // resolve a firing alert and fire it anew).
            self.engine.set_all_evaluated_at(Timestamp::now());
        }
        let effects = self.engine.take_effects();
        let changes = self.engine.take_changes();
        if !changes.is_empty()
            && let Err(e) = self.store.save(changes).await
        {
            metrics::counter!("faultline_alerts_store_errors_total").increment(1);
            tracing::error!(error = %e, "cannot persist alert state; notifications go out anyway");
        }
        if !effects.checks.is_empty()
            && let Err(e) = self.store.append_checks(effects.checks).await
        {
            metrics::counter!("faultline_alerts_store_errors_total").increment(1);
            tracing::error!(error = %e, "cannot record system checks");
        }
        let mut firing = 0;
        for n in extra.into_iter().chain(effects.notifications) {
            firing += 1;
            self.dispatch(n).await;
        }
        if firing > 0 {
            let now = Timestamp::now();
            metrics::gauge!("faultline_alerts_firing").set(self.engine.firing(now).len() as f64);
        }
    }

    /// Sends `n` to the rule's channels for its event; built-in actions are recorded.
    async fn dispatch(&mut self, n: Notification) {
        let Some(rule) = self.engine.rules().find(|r| r.name == n.rule).cloned() else {
            return;
        };
        let label = n.rule.clone();
        match n.event {
            NotifyEvent::Firing => {
                metrics::counter!("faultline_alerts_fired_total", "rule" => label).increment(1);
                tracing::warn!(rule = %n.rule, group = %n.group, summary = %n.summary, "alert firing");
            }
            NotifyEvent::Resolved => {
                metrics::counter!("faultline_alerts_resolved_total", "rule" => label).increment(1);
                tracing::info!(rule = %n.rule, group = %n.group, "alert resolved");
            }
            NotifyEvent::Repeat => {}
        }
        let mut built_in = Vec::new();
        let mut channels = Vec::new();
        for action in &rule.actions {
            match action {
                Action::Channel { name, on } if on.contains(&n.event) => {
                    if let Some(c) = self.channels.get(name) {
                        channels.push(Arc::clone(c));
                    } else if self.unconfigured.contains_key(name) {
                        skipped(name, &n);
                    }
                }
                Action::SystemCheck if n.event != NotifyEvent::Repeat => {
                    built_in.push(SYSTEM_CHECK_ACTION);
                }
                Action::Notice if n.event != NotifyEvent::Repeat => {
                    built_in.push(NOTICE_ACTION);
                }
                _ => {}
            }
        }
        let records: Vec<Delivery> = built_in
            .into_iter()
            .map(|name| Delivery {
                rule: n.rule.clone(),
                group: n.group.clone(),
                channel: name.to_owned(),
                event: n.event,
                status: DeliveryStatus::Sent,
                attempts: 1,
                error: None,
                code: None,
                at: Timestamp::now(),
                duration_ms: 0,
            })
            .collect();
        self.record_deliveries(records).await;
        if channels.is_empty() {
            self.engine.delivered(&n.rule, &n.group, n.event);
            return;
        }
        self.outbox.send(n, channels, &self.ctx);
    }

    /// A delivery finished: record it, start the next one for that channel and alert, and
    /// once every channel of a notification is done, it is no longer owed.
    async fn delivered(&mut self, done: Finished) {
        let (id, d) = match done {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "a delivery task failed");
                return;
            }
        };
        let status = match d.status {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        };
        metrics::counter!("faultline_alerts_notifications_total", "channel" => d.channel.clone(), "status" => status).increment(1);
        metrics::histogram!("faultline_alerts_delivery_seconds")
            .record(d.duration_ms as f64 / 1000.0);
        match &d.error {
            Some(error) => {
                tracing::warn!(channel = %d.channel, rule = %d.rule, event = d.event.as_str(), attempts = d.attempts, %error, "notification failed")
            }
            None => {
                tracing::info!(channel = %d.channel, rule = %d.rule, event = d.event.as_str(), ms = d.duration_ms, "notification sent")
            }
        }
        let done = self.outbox.finished(id, &d, &self.ctx);
        self.record_deliveries(vec![d]).await;
        if let Some(alert) = done {
            self.engine
                .delivered(&alert.rule, &alert.group, alert.event);
        }
    }

    async fn record_deliveries(&mut self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let kept = self.compiled.settings.deliveries_kept.max(1);
        for d in &deliveries {
            let q = self.recent.entry(d.rule.clone()).or_default();
            q.push_back(d.clone());
            while q.len() > kept {
                q.pop_front();
            }
        }
        if let Err(e) = self.store.append_deliveries(deliveries).await {
            tracing::error!(error = %e, "cannot record delivery results");
        }
    }

    /// Reads the silences again (any node's API may have changed them).
    async fn refresh_silences(&mut self) {
        match self.store.silences().await {
            Ok(silences) => self.engine.set_silences(silences),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the silences; keeping the ones read before")
            }
        }
    }

    async fn answer(&mut self, c: Control) {
        match c {
            Control::Silences(reply) => {
                let now = Timestamp::now();
                let answer = self.store.silences().await.map_err(SilenceError::from);
                let _ = reply.send(
                    answer.map(|list| list.into_iter().map(|s| SilenceView::at(s, now)).collect()),
                );
            }
            Control::AddSilence { new, reply } => {
                let now = Timestamp::now();
                let answer = match new.build(now) {
                    Ok(silence) => match self.store.put_silence(silence.clone()).await {
                        Ok(()) => {
                            tracing::info!(silence = %silence.id, by = %silence.created_by, "silence added");
                            self.refresh_silences().await;
                            Ok(SilenceView::at(silence, now))
                        }
                        Err(e) => Err(SilenceError::Store(e)),
                    },
                    Err(why) => Err(SilenceError::Invalid(why)),
                };
                let _ = reply.send(answer);
            }
            Control::ExpireSilence { id, reply } => {
                let now = Timestamp::now();
                let answer = self.expire_silence(&id, now).await;
                let _ = reply.send(answer);
            }
            Control::View(reply) => {
                let _ = reply.send(self.view());
            }
            Control::Checks(reply) => {
                let _ = reply.send(self.latest_checks().await);
            }
            Control::UserNotices { query, reply } => {
                let _ = reply.send(user_notices(&self.engine, &query, Timestamp::now()));
            }
            Control::Reset { rule, reply } => {
                let now = Timestamp::now();
                let answer = self.engine.rule_index(&rule).map(|idx| {
                    let resolved = self.engine.reset(idx, now);
                    tracing::info!(%rule, resolved, "alert rule reset");
                    ResetView {
                        rule: rule.clone(),
                        reset_at: now,
                        resolved,
                    }
                });
                let _ = reply.send(answer);
            }
            Control::Reconfigure {
                compiled,
                targets,
                reply,
            } => {
                let done = self.reconfigure(*compiled, targets).await;
                let _ = reply.send(done);
            }
        }
    }

    /// Swaps in new rules (see [`AlertHandle::reconfigure`]): what the old rules decided is
    /// persisted first, then the evaluator is rebuilt from the store with the state of the
    /// unchanged rules, and a leader refills the windows.
    async fn reconfigure(
        &mut self,
        mut compiled: CompiledAlerts,
        targets: Targets,
    ) -> Reconfigured {
        let old = &self.compiled;
        let mut restart_needed = Vec::new();
        let settings = &mut compiled.settings;
        let mut keep = |name: &str, same: bool| {
            if !same {
                restart_needed.push(format!("alerts.{name}"));
            }
        };
        keep("enabled", settings.enabled == old.settings.enabled);
        keep(
            "evaluation_interval",
            settings.evaluation_interval == old.settings.evaluation_interval,
        );
        keep(
            "queue_batches",
            settings.queue_batches == old.settings.queue_batches,
        );
        keep(
            "checks_kept",
            settings.checks_kept == old.settings.checks_kept,
        );
        keep(
            "deliveries_kept",
            settings.deliveries_kept == old.settings.deliveries_kept,
        );
        let same_probes = definition(&compiled.probes) == definition(&old.probes);
        keep("probes", same_probes);
        settings.enabled = old.settings.enabled;
        settings.evaluation_interval = old.settings.evaluation_interval;
        settings.queue_batches = old.settings.queue_batches;
        settings.checks_kept = old.settings.checks_kept;
        settings.deliveries_kept = old.settings.deliveries_kept;
        let probes = if same_probes {
            targets.probes
        } else {
            compiled.probes = old.probes.clone();
            self.probes.clone()
        };

        let before: HashMap<&str, Option<serde_json::Value>> = old
            .rules
            .iter()
            .map(|r| (r.name.as_str(), definition(&r.config)))
            .collect();
        let mut done = Reconfigured {
            restart_needed,
            ..Reconfigured::default()
        };
        for rule in &compiled.rules {
            match before.get(rule.name.as_str()) {
                Some(d) if *d == definition(&rule.config) => done.kept.push(rule.name.clone()),
                _ => done.changed.push(rule.name.clone()),
            }
        }
        done.removed = old
            .rules
            .iter()
            .filter(|r| !compiled.rules.iter().any(|n| n.name == r.name))
            .map(|r| r.name.clone())
            .collect();

        let same_groups = compiled.settings.max_groups == old.settings.max_groups;
        // Persisted now, so the rebuilt evaluator continues from every record so far.
        self.commit(Vec::new()).await;
        self.ctx = Context::new(compiled.settings.dashboard_url.clone());
        self.compiled = compiled;
        self.channels = targets.channels;
        self.unconfigured = targets.unconfigured;
        self.probes = probes;
        if self.compiled.settings.enabled && matches!(self.feed, Feed::Ingest) {
            self.handle.set_interest(Interest::new(
                self.compiled.rules.clone(),
                &self.compiled.meta_keys,
            ));
        }
        let same_rules = done.changed.is_empty() && done.removed.is_empty() && same_groups;
        if same_rules {
            // Nothing to rebuild (a SIGHUP for a certificate, a channel's URL): the rules
            // go on untouched; the inhibitions may have changed.
            match compile_inhibits(&self.compiled.settings.inhibit, |_| true) {
                Ok(inhibits) => self.engine.set_inhibits(inhibits),
                Err(e) => tracing::error!(error = %e, "cannot apply the reloaded inhibitions"),
            }
            return done;
        }
        if let Err(e) = self.rebuild(&done.changed).await {
            tracing::error!(error = %e, "cannot read the alert state after a reload; rules start afresh");
        }
        if self.election.held() && self.compiled.settings.enabled {
            let now = Timestamp::now();
            self.cursors = vec![now.unix_millis(); self.compiled.rules.len()];
            self.prime().await;
            self.engine.tick(now);
            self.commit(Vec::new()).await;
        }
        done
    }

    async fn expire_silence(
        &mut self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<SilenceView>, SilenceError> {
        let Some(mut silence) = self
            .store
            .silences()
            .await?
            .into_iter()
            .find(|s| s.id == id)
        else {
            return Ok(None);
        };
        if silence.expire(now) {
            self.store.put_silence(silence.clone()).await?;
            tracing::info!(silence = %silence.id, "silence expired");
            self.refresh_silences().await;
        }
        Ok(Some(SilenceView::at(silence, now)))
    }

    /// The latest result of every check: recorded ones, overridden by the live state of
    /// every rule (while the server evaluates) and probe.
    async fn latest_checks(&self) -> Vec<SystemCheck> {
        let now = Timestamp::now();
        let stored = match self.store.latest_checks().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read recorded system checks");
                Vec::new()
            }
        };
        let mut by_name: std::collections::BTreeMap<(String, bool), SystemCheck> = stored
            .into_iter()
            .map(|c| ((c.name.clone(), c.kind == CheckKind::Probe), c))
            .collect();
        let live = self
            .compiled
            .settings
            .enabled
            .then(|| (0..self.compiled.rules.len()).filter_map(|idx| self.engine.check(idx, now)))
            .into_iter()
            .flatten()
            .chain(self.probe_results.values().cloned());
        for c in live {
            by_name.insert((c.name.clone(), c.kind == CheckKind::Probe), c);
        }
        by_name.into_values().collect()
    }

    fn view(&self) -> AlertsView {
        self.view_at(Timestamp::now())
    }

    /// What `GET /alerts` shows at `now`.
    fn view_at(&self, now: Timestamp) -> AlertsView {
        let mut rules = Vec::new();
        let mut notices = Vec::new();
        let mut firing = 0;
        for (idx, rule) in self.engine.rules().enumerate() {
            let groups = self.engine.groups(idx, now);
            let status = groups
                .iter()
                .map(|g| g.state.status)
                .max()
                .unwrap_or(AlertStatus::Ok);
            for g in &groups {
                if g.state.status != AlertStatus::Firing {
                    continue;
                }
                firing += 1;
                if rule.has_action(&Action::Notice) {
                    notices.push(NoticeView {
                        rule: rule.name.clone(),
                        group: g.group.clone(),
                        severity: rule.severity,
                        message: rule.render_summary(&g.group, g.current.value, &g.current.detail),
                        since: g.state.fired_at,
                    });
                }
            }
            let actions = rule
                .actions
                .iter()
                .map(|a| match a {
                    Action::Channel { name, .. } => name.clone(),
                    Action::SystemCheck => SYSTEM_CHECK_ACTION.to_owned(),
                    Action::Notice => NOTICE_ACTION.to_owned(),
                })
                .collect();
            let deliveries = self
                .recent
                .get(&rule.name)
                .map(|q| q.iter().rev().cloned().collect())
                .unwrap_or_default();
            rules.push(RuleView {
                name: rule.name.clone(),
                kind: rule.kind,
                severity: rule.severity,
                status,
                filter: rule.filter_text.clone(),
                actions,
                reset_at: self.engine.reset_at(idx),
                dropped_records: self.engine.dropped(idx),
                groups,
                deliveries,
                config: rule.config.clone(),
            });
        }
        let mut probes: Vec<SystemCheck> = self.probe_results.values().cloned().collect();
        probes.sort_by(|a, b| a.name.cmp(&b.name));
        let channels = self
            .compiled
            .channels
            .iter()
            .filter(|(name, _)| {
                self.channels.contains_key(*name) || self.unconfigured.contains_key(*name)
            })
            .map(|(name, c)| ChannelView {
                name: name.clone(),
                kind: c.kind(),
                configured: !self.unconfigured.contains_key(name),
                missing_env: self.unconfigured.get(name).cloned(),
            })
            .collect();
        AlertsView {
            enabled: self.compiled.settings.enabled,
            leader: self.handle.is_leader(),
            now,
            firing,
            records_dropped: self.handle.dropped(),
            rules,
            notices,
            probes,
            channels,
        }
    }

    /// After the HTTP server stopped: evaluate what is queued, persist, and wait for
    /// deliveries in flight (bounded), so a resolve decided now is not lost.
    async fn drain(mut self) {
        self.records.close();
        while let Ok(batch) = self.records.try_recv() {
            self.take(batch);
        }
        self.commit(Vec::new()).await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DELIVERY_WAIT;
        while self.outbox.in_flight() > 0 {
            match tokio::time::timeout_at(deadline, self.outbox.next_finished()).await {
                Ok(Some(done)) => {
                    self.delivered(done).await;
                    self.commit(Vec::new()).await;
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = self.outbox.in_flight(),
                        "stopping with notifications still being delivered: they are sent again on the next start"
                    );
                    break;
                }
            }
        }
        if self.compiled.settings.enabled {
            self.engine.set_all_evaluated_at(Timestamp::now());
        }
        self.commit(Vec::new()).await;
        tracing::info!("alert evaluator stopped");
    }
}

/// The probes health rules read, with how many recent results each needs.
pub(crate) fn probe_rule_depths(rules: &[Arc<Rule>]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for r in rules {
        if let Condition::Health {
            failures,
            probe: Some(p),
        } = &r.condition
        {
            let n = *failures as usize;
            match out.iter_mut().find(|(name, _)| name == p) {
                Some(entry) => entry.1 = entry.1.max(n),
                None => out.push((p.clone(), n)),
            }
        }
    }
    out
}

/// Resolves once a stop is requested. A dropped [`AlertRunner`] requests nothing: the
/// evaluator then runs as long as the runtime does.
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs `probe` every interval until shutdown, sending each result.
async fn run_probe(
    probe: Arc<Probe>,
    http: reqwest::Client,
    records: Arc<dyn RecordStore>,
    results: mpsc::Sender<(String, ProbeResult, Timestamp)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(probe.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop_requested(&mut shutdown) => return,
        }
        let result = probe.run(&http, || records.health().archive).await;
        if results
            .send((probe.name.clone(), result, Timestamp::now()))
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;

    /// Guards the ingest hot path: a full evaluator queue drops (and counts) instead of
    /// making ingest wait.
    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let record_store: Arc<dyn RecordStore> = Arc::new(
            faultline_store::FileStore::open(faultline_store::FileStoreConfig::new(dir.path()))
                .unwrap(),
        );
        let store = Arc::new(FileAlertStore::open(dir.path(), 10, 10).unwrap());
        let config: AlertsConfig = toml::from_str(
            "queue_batches = 1\n[rules.api]\nkind = \"threshold\"\nwindow = \"1m\"\n\
             threshold = 5\nfilter = { service = \"api\" }\n",
        )
        .unwrap();
        // Built but not run: nothing takes from the queue.
        let service = AlertService::new(&config, record_store, store, true, &|_| None)
            .await
            .unwrap();
        let handle = service.handle.clone();
        let records: Vec<Record> = (0..3)
            .map(|_| Record::new(Timestamp::now(), "api", Level::Error, "e", "m"))
            .collect();
        let ignored = [Record::new(Timestamp::now(), "ui", Level::Error, "e", "m")];
        assert!(
            handle.observe(&ignored).is_none(),
            "no rule reads ui records"
        );
        let started = std::time::Instant::now();
        for _ in 0..3 {
            let batch = handle.observe(&records).unwrap();
            handle.submit(batch);
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(handle.dropped(), 6, "the second and third batches");
        drop(service);
    }
}

//! Where alert state, system checks and delivery results live: the [`AlertStore`] trait,
//! and [`FileAlertStore`], its implementation in the data dir.
//!
//! The trait is shaped for SQL as much as for files: `alert_state (rule, group_key, state
//! jsonb)` holds one row per (rule, group) ([`StoredAlert`], the ungrouped group being `''`),
//! and the per-rule fields ([`StoredRule`]) fit a row under a reserved group key; `save` is
//! one transaction of upserts and deletes; `system_checks (rule, status, detail jsonb,
//! checked_at)` and a delivery log are append-only tables read as "latest per name" and
//! "newest N per rule".
//!
//! The file store keeps `<data_dir>/alerts/state.json` (rewritten atomically: a temp file,
//! fsync, rename, fsync of the directory, so a crash leaves the old or the new state, never a
//! mix) and two append-only NDJSON logs, `checks.ndjson` and `deliveries.ndjson`, fsynced
//! on every append and compacted to what is kept once they grow. A torn last line (a crash
//! mid-append) is skipped when they are read.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use faultline_schema::Timestamp;
use faultline_store::{
    BoxFuture, create_private_dir_all, create_private_file, private_open_options,
};
use serde::{Deserialize, Serialize};

use crate::alert_config::NotifyEvent;
use crate::alert_state::AlertState;
use crate::silence::{self, Silence};

/// One alert (a rule and one group) as persisted: a row of `alert_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// The rule's name.
    pub rule: String,
    /// The group key (`meta.user=u_…`); empty for a rule without `group_by`.
    pub group: String,
    /// The group's fields and values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Its state.
    #[serde(flatten)]
    pub state: AlertState,
}

/// What is persisted per rule (in SQL: an `alert_state` row under a reserved group key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRule {
    /// The rule's name.
    pub rule: String,
    /// The last manual reset: records older than this no longer count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<Timestamp>,
    /// Where the last `check-alerts` run stopped (the next one continues from there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<Timestamp>,
}

/// Everything [`AlertStore::load`] returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredState {
    /// Per-rule rows.
    #[serde(default)]
    pub rules: Vec<StoredRule>,
    /// Alerts that are not `ok`.
    #[serde(default)]
    pub alerts: Vec<StoredAlert>,
}

/// One [`AlertStore::save`]: applied together or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateChanges {
    /// Per-rule rows to write.
    pub rules: Vec<StoredRule>,
    /// Alerts to insert or replace.
    pub upsert: Vec<StoredAlert>,
    /// Alerts to delete, by (rule, group).
    pub delete: Vec<(String, String)>,
}

impl StateChanges {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.upsert.is_empty() && self.delete.is_empty()
    }
}

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Healthy, or the rule's condition does not hold.
    Ok,
    /// The rule's condition holds, for less than its `for`.
    Pending,
    /// Unhealthy, or the rule is firing.
    Failed,
}

/// What produced a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// An alert rule.
    Rule,
    /// A probe (`[alerts.probes]`).
    Probe,
}

/// One row of `system_checks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemCheck {
    /// The rule's or the probe's name.
    pub name: String,
    /// Rule or probe.
    pub kind: CheckKind,
    /// The result.
    pub status: CheckStatus,
    /// The result in words.
    pub detail: String,
    /// The group, for a grouped rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Who recorded it: `evaluator` (the server), `check-alerts`, or `probe`.
    pub source: String,
    /// When.
    pub checked_at: Timestamp,
}

/// Whether a delivery arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Accepted by the receiver (2xx, SMTP 250, exit 0).
    Sent,
    /// Not accepted after every attempt; `error` says why.
    Failed,
}

/// One notification to one channel, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The rule.
    pub rule: String,
    /// The group (empty when ungrouped).
    pub group: String,
    /// The channel's name (or `system_check`, `notice`).
    pub channel: String,
    /// Firing, repeat or resolved.
    pub event: NotifyEvent,
    /// The outcome.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed (never contains a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The receiver's last HTTP status or SMTP reply code, or the command's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// When it finished.
    pub at: Timestamp,
    /// From the first attempt to the outcome.
    pub duration_ms: u64,
}

/// Why the alert store failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertStoreError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file exists but cannot be read as alert state.
    #[error("{}: {message}: fix it, or move it away to start with no alert state", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The store is unreachable (a database), or its worker failed.
    #[error("alert store unavailable: {0}")]
    Unavailable(String),
}

/// Persistence for the evaluator: alert state, system checks, delivery results.
///
/// Every method may block on I/O inside its future; callers await it. Implementations
/// must make `save` atomic (all of it or none) and durable before its future resolves.
pub trait AlertStore: Send + Sync + 'static {
    /// Every per-rule row and every alert that is not `ok`.
    fn load(&self) -> BoxFuture<'_, Result<StoredState, AlertStoreError>>;
    /// Applies `changes` atomically and durably.
    fn save(&self, changes: StateChanges) -> BoxFuture<'_, Result<(), AlertStoreError>>;
    /// Appends system checks.
    fn append_checks(&self, checks: Vec<SystemCheck>)
    -> BoxFuture<'_, Result<(), AlertStoreError>>;
    /// The newest check of every name.
    fn latest_checks(&self) -> BoxFuture<'_, Result<Vec<SystemCheck>, AlertStoreError>>;
    /// The newest `limit` checks named `name`, newest first.
    fn recent_checks(
        &self,
        name: &str,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<SystemCheck>, AlertStoreError>>;
    /// Appends delivery results.
    fn append_deliveries(
        &self,
        deliveries: Vec<Delivery>,
    ) -> BoxFuture<'_, Result<(), AlertStoreError>>;
    /// The newest `per_rule` deliveries of every rule, newest first.
    fn recent_deliveries(
        &self,
        per_rule: usize,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, AlertStoreError>>;
    /// Every silence kept (pending, active, and expired within a week), oldest first.
    fn silences(&self) -> BoxFuture<'_, Result<Vec<Silence>, AlertStoreError>>;
    /// Inserts or replaces `silence` (by id) durably; silences expired long ago are forgotten.
    fn put_silence(&self, silence: Silence) -> BoxFuture<'_, Result<(), AlertStoreError>>;
}

const STATE_FILE: &str = "state.json";
/// How long opening waits for a lock being released (a restarted server's predecessor).
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const CHECKS_FILE: &str = "checks.ndjson";
const DELIVERIES_FILE: &str = "deliveries.ndjson";
const SILENCES_FILE: &str = "silences.json";

/// [`AlertStore`] in files under `<data_dir>/alerts/`. Open one per data dir: the file
/// record store's lock on the data dir keeps a second process out.
#[derive(Clone)]
pub struct FileAlertStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The exclusive lock on `alerts/LOCK`, when opened to write.
    _lock: Option<File>,
    state: Mutex<StateMaps>,
    checks: Mutex<Log<SystemCheck>>,
    deliveries: Mutex<Log<Delivery>>,
    /// `silences.json`, as on disk.
    silences: Mutex<Vec<Silence>>,
}

#[derive(Default)]
struct StateMaps {
    rules: BTreeMap<String, StoredRule>,
    alerts: BTreeMap<(String, String), StoredAlert>,
}

/// An append-only NDJSON log with the newest `kept` entries per key in memory.
struct Log<T> {
    path: PathBuf,
    kept: usize,
    by_key: HashMap<String, VecDeque<T>>,
    /// Lines in the file, to know when to compact.
    lines: usize,
}

trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for SystemCheck {
    fn key(&self) -> &str {
        &self.name
    }
}

impl Keyed for Delivery {
    fn key(&self) -> &str {
        &self.rule
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AlertStoreError + '_ {
    move |source| AlertStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl<T: Keyed + Serialize + serde::de::DeserializeOwned + Clone> Log<T> {
    fn open(path: PathBuf, kept: usize) -> Result<Log<T>, AlertStoreError> {
        let mut log = Log {
            path,
            kept: kept.max(1),
            by_key: HashMap::new(),
            lines: 0,
        };
        let file = match File::open(&log.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(log),
            Err(e) => return Err(io(&log.path)(e)),
        };
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(&log.path))?;
            log.lines += 1;
            // A torn tail or a foreign line is skipped, not fatal: this is a log.
            if let Ok(entry) = serde_json::from_str::<T>(&line) {
                log.remember(entry);
            }
        }
        Ok(log)
    }

    fn remember(&mut self, entry: T) {
        let q = self.by_key.entry(entry.key().to_owned()).or_default();
        q.push_back(entry);
        while q.len() > self.kept {
            q.pop_front();
        }
    }

    fn append(&mut self, entries: Vec<T>) -> Result<(), AlertStoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for e in &entries {
            serde_json::to_writer(&mut text, e)
                .map_err(|e| AlertStoreError::Unavailable(e.to_string()))?;
            text.push(b'\n');
        }
        let mut file = private_open_options()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        file.write_all(&text).map_err(io(&self.path))?;
        file.sync_data().map_err(io(&self.path))?;
        self.lines += entries.len();
        for e in entries {
            self.remember(e);
        }
        let kept: usize = self.by_key.values().map(VecDeque::len).sum();
        if self.lines > 2 * kept + 1024 {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with only what is kept, atomically.
    fn compact(&mut self) -> Result<(), AlertStoreError> {
        let mut all: Vec<&T> = self.by_key.values().flatten().collect();
        // Order within a key is kept; across keys it does not matter for reading.
        all.sort_by(|a, b| a.key().cmp(b.key()));
        let mut text = Vec::new();
        for e in &all {
            serde_json::to_writer(&mut text, e)
                .map_err(|e| AlertStoreError::Unavailable(e.to_string()))?;
            text.push(b'\n');
        }
        write_atomic(&self.path, &text)?;
        self.lines = all.len();
        Ok(())
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old content or the new, whole.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AlertStoreError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = create_private_file(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        // The rename is durable only once the directory is.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

impl FileAlertStore {
    /// Opens `<data_dir>/alerts` to read (creating it): for reports, while a server may
    /// be writing. Blocking: call it from `spawn_blocking` or before serving.
    pub fn open(
        data_dir: &Path,
        checks_kept: usize,
        deliveries_kept: usize,
    ) -> Result<FileAlertStore, AlertStoreError> {
        Self::open_with(data_dir, checks_kept, deliveries_kept, None)
    }

    /// Opens `<data_dir>/alerts` to evaluate, holding an exclusive lock on `alerts/LOCK` so
    /// that one process at a time (the server, or `check-alerts`) decides and notifies. The
    /// OS releases the lock when the process exits, even on `kill -9`.
    pub fn open_locked(
        data_dir: &Path,
        checks_kept: usize,
        deliveries_kept: usize,
    ) -> Result<FileAlertStore, AlertStoreError> {
        let dir = data_dir.join("alerts");
        create_private_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join("LOCK");
        let file = private_open_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(AlertStoreError::Unavailable(format!(
                        "{} is in use by another process (a running server evaluates these \
                         rules already: use its API, or stop it first)",
                        dir.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
            }
        }
        Self::open_with(data_dir, checks_kept, deliveries_kept, Some(file))
    }

    fn open_with(
        data_dir: &Path,
        checks_kept: usize,
        deliveries_kept: usize,
        lock: Option<File>,
    ) -> Result<FileAlertStore, AlertStoreError> {
        let dir = data_dir.join("alerts");
        create_private_dir_all(&dir).map_err(io(&dir))?;
        let state_path = dir.join(STATE_FILE);
        let mut maps = StateMaps::default();
        match std::fs::read(&state_path) {
            Ok(bytes) => {
                let state: StoredState =
                    serde_json::from_slice(&bytes).map_err(|e| AlertStoreError::Corrupt {
                        path: state_path.clone(),
                        message: e.to_string(),
                    })?;
                for r in state.rules {
                    maps.rules.insert(r.rule.clone(), r);
                }
                for a in state.alerts {
                    maps.alerts.insert((a.rule.clone(), a.group.clone()), a);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&state_path)(e)),
        }
        let silences_path = dir.join(SILENCES_FILE);
        let silences: Vec<Silence> = match std::fs::read(&silences_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AlertStoreError::Corrupt {
                path: silences_path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&silences_path)(e)),
        };
        let checks = Log::open(dir.join(CHECKS_FILE), checks_kept)?;
        let deliveries = Log::open(dir.join(DELIVERIES_FILE), deliveries_kept)?;
        Ok(FileAlertStore {
            inner: Arc::new(Inner {
                dir,
                _lock: lock,
                state: Mutex::new(maps),
                checks: Mutex::new(checks),
                deliveries: Mutex::new(deliveries),
                silences: Mutex::new(silences),
            }),
        })
    }

    /// Runs `f` on a blocking thread with the shared inner state.
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, AlertStoreError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, AlertStoreError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&inner))
                .await
                .map_err(|e| {
                    AlertStoreError::Unavailable(format!("alert store task failed: {e}"))
                })?
        })
    }
}

impl AlertStore for FileAlertStore {
    fn load(&self) -> BoxFuture<'_, Result<StoredState, AlertStoreError>> {
        let maps = lock(&self.inner.state);
        let state = StoredState {
            rules: maps.rules.values().cloned().collect(),
            alerts: maps.alerts.values().cloned().collect(),
        };
        Box::pin(std::future::ready(Ok(state)))
    }

    fn save(&self, changes: StateChanges) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        if changes.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        self.blocking(move |inner| {
            let mut maps = lock(&inner.state);
            let mut next = StateMaps {
                rules: maps.rules.clone(),
                alerts: maps.alerts.clone(),
            };
            for r in changes.rules {
                next.rules.insert(r.rule.clone(), r);
            }
            for key in changes.delete {
                next.alerts.remove(&key);
            }
            for a in changes.upsert {
                next.alerts.insert((a.rule.clone(), a.group.clone()), a);
            }
            let state = StoredState {
                rules: next.rules.values().cloned().collect(),
                alerts: next.alerts.values().cloned().collect(),
            };
            let bytes = serde_json::to_vec_pretty(&state)
                .map_err(|e| AlertStoreError::Unavailable(e.to_string()))?;
            write_atomic(&inner.dir.join(STATE_FILE), &bytes)?;
            // Only what is on disk is in memory: a failed write changes nothing.
            *maps = next;
            Ok(())
        })
    }

    fn append_checks(
        &self,
        checks: Vec<SystemCheck>,
    ) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        self.blocking(move |inner| lock(&inner.checks).append(checks))
    }

    fn latest_checks(&self) -> BoxFuture<'_, Result<Vec<SystemCheck>, AlertStoreError>> {
        let log = lock(&self.inner.checks);
        let mut latest: Vec<SystemCheck> = log
            .by_key
            .values()
            .filter_map(|q| q.back().cloned())
            .collect();
        latest.sort_by(|a, b| a.name.cmp(&b.name));
        Box::pin(std::future::ready(Ok(latest)))
    }

    fn recent_checks(
        &self,
        name: &str,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<SystemCheck>, AlertStoreError>> {
        let log = lock(&self.inner.checks);
        let recent = log
            .by_key
            .get(name)
            .map(|q| q.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(recent)))
    }

    fn append_deliveries(
        &self,
        deliveries: Vec<Delivery>,
    ) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        self.blocking(move |inner| lock(&inner.deliveries).append(deliveries))
    }

    fn recent_deliveries(
        &self,
        per_rule: usize,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, AlertStoreError>> {
        let log = lock(&self.inner.deliveries);
        let mut out: Vec<Delivery> = log
            .by_key
            .values()
            .flat_map(|q| q.iter().rev().take(per_rule).cloned())
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.at));
        Box::pin(std::future::ready(Ok(out)))
    }

    fn silences(&self) -> BoxFuture<'_, Result<Vec<Silence>, AlertStoreError>> {
        let silences = lock(&self.inner.silences).clone();
        Box::pin(std::future::ready(Ok(silences)))
    }

    fn put_silence(&self, silence: Silence) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        self.blocking(move |inner| {
            let mut current = lock(&inner.silences);
            let mut next = current.clone();
            match next.iter_mut().find(|s| s.id == silence.id) {
                Some(s) => *s = silence,
                None => next.push(silence),
            }
            silence::prune(&mut next, Timestamp::now());
            next.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            let bytes = serde_json::to_vec_pretty(&next)
                .map_err(|e| AlertStoreError::Unavailable(e.to_string()))?;
            write_atomic(&inner.dir.join(SILENCES_FILE), &bytes)?;
            *current = next;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert_state::AlertStatus;

    fn alert(rule: &str, group: &str, status: AlertStatus) -> StoredAlert {
        let mut state = AlertState::new(Timestamp::from_unix_millis(1_000));
        state.status = status;
        StoredAlert {
            rule: rule.into(),
            group: group.into(),
            labels: BTreeMap::new(),
            state,
        }
    }

    fn check(name: &str, n: i64) -> SystemCheck {
        SystemCheck {
            name: name.into(),
            kind: CheckKind::Rule,
            status: CheckStatus::Ok,
            detail: format!("#{n}"),
            group: None,
            source: "evaluator".into(),
            checked_at: Timestamp::from_unix_millis(n),
        }
    }

    #[test]
    fn one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileAlertStore::open_locked(dir.path(), 10, 10).unwrap();
        let err = FileAlertStore::open_locked(dir.path(), 10, 10)
            .err()
            .unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
        assert!(
            FileAlertStore::open(dir.path(), 10, 10).is_ok(),
            "readers are fine"
        );
        drop(first);
        assert!(FileAlertStore::open_locked(dir.path(), 10, 10).is_ok());
    }

    #[tokio::test]
    async fn state_survives_reopening_and_deletes_stick() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileAlertStore::open(dir.path(), 10, 10).unwrap();
        store
            .save(StateChanges {
                rules: vec![StoredRule {
                    rule: "a".into(),
                    reset_at: Some(Timestamp::from_unix_millis(5)),
                    evaluated_at: None,
                }],
                upsert: vec![
                    alert("a", "", AlertStatus::Firing),
                    alert("b", "meta.user=u_1", AlertStatus::Pending),
                ],
                delete: vec![],
            })
            .await
            .unwrap();
        store
            .save(StateChanges {
                delete: vec![("b".into(), "meta.user=u_1".into())],
                ..StateChanges::default()
            })
            .await
            .unwrap();
        drop(store);
        let store = FileAlertStore::open(dir.path(), 10, 10).unwrap();
        let state = store.load().await.unwrap();
        assert_eq!(state.alerts, [alert("a", "", AlertStatus::Firing)]);
        assert_eq!(
            state.rules[0].reset_at,
            Some(Timestamp::from_unix_millis(5))
        );
        assert!(!dir.path().join("alerts/state.tmp").exists());
    }

    /// Guards the alert state readable by every user: `alerts/`, the state, the logs of
    /// checks and deliveries and the lock were created 0755 and 0644.
    #[cfg(unix)]
    #[tokio::test]
    async fn the_alert_state_is_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileAlertStore::open_locked(dir.path(), 10, 10).unwrap();
        store
            .save(StateChanges {
                upsert: vec![alert("a", "", AlertStatus::Firing)],
                ..StateChanges::default()
            })
            .await
            .unwrap();
        store.append_checks(vec![check("redis", 1)]).await.unwrap();
        let alerts = dir.path().join("alerts");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&alerts), 0o700);
        let mut files = 0;
        for entry in std::fs::read_dir(&alerts).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
        assert!(files >= 3, "the lock, the state and the checks");
    }

    #[tokio::test]
    async fn logs_keep_the_newest_per_key_skip_torn_lines_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileAlertStore::open(dir.path(), 3, 2).unwrap();
        for n in 0..5 {
            store
                .append_checks(vec![check("redis", n), check("api", n)])
                .await
                .unwrap();
        }
        let path = dir.path().join("alerts").join(CHECKS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"name\":\"torn").unwrap();
        drop(store);
        let store = FileAlertStore::open(dir.path(), 3, 2).unwrap();
        let latest = store.latest_checks().await.unwrap();
        assert_eq!(latest.len(), 2);
        assert!(latest.iter().all(|c| c.detail == "#4"));
        let recent = store.recent_checks("redis", 10).await.unwrap();
        let details: Vec<&str> = recent.iter().map(|c| c.detail.as_str()).collect();
        assert_eq!(details, ["#4", "#3", "#2"]);
        for n in 5..1000 {
            store.append_checks(vec![check("redis", n)]).await.unwrap();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 1100, "compacted: {lines} lines");
        let reopened = FileAlertStore::open(dir.path(), 3, 2).unwrap();
        let recent = reopened.recent_checks("redis", 1).await.unwrap();
        assert_eq!(recent[0].detail, "#999");
    }
}

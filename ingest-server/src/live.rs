//! The configuration a running server can change: keys, limits, sampling and the alert
//! rules, reloaded from the config file on SIGHUP ([`Reloader`]) and swapped as one
//! snapshot ([`Live`]).
//!
//! Every request reads the snapshot once, when it arrives (`AppState`'s `Clone`, which
//! axum's `State` runs per request), and keeps it to its end: a request in flight during a
//! reload finishes on the configuration it started with, the next one sees the new one, and
//! none is refused because of the swap. A file that does not load (bad TOML, a rule broken,
//! a key's variable unset) changes nothing: the reload is logged and counted as an error
//! (`faultline_config_reloads_total{result="error"}`) and the running configuration stays.
//!
//! What the server was built around at start cannot change this way ([`RESTART_ONLY`]: the
//! listen address, the store, the data dir, TLS file paths, ...): a reload that changes it
//! logs that it takes a restart and keeps the running value.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use faultline_alerts::{AlertHandle, Reconfigured};

use crate::auth::KeyRing;
use crate::config::{Config, Overrides};
use crate::quota::Quotas;
use crate::sampling::Sampler;
use crate::secrets;

/// One consistent configuration: what a request reads at its start.
pub(crate) struct Live {
    /// The configuration as loaded (restart-only fields at their running values).
    pub config: Arc<Config>,
    /// Ingest keys and the admin token, built from `config`.
    pub keys: Arc<KeyRing>,
    /// The sampler for `config.sampling`.
    pub sampler: Arc<Sampler>,
}

/// The current [`Live`] snapshot, replaced whole by a reload. A read takes the lock only to
/// clone an `Arc`.
pub(crate) struct LiveConfig {
    current: RwLock<Arc<Live>>,
}

impl LiveConfig {
    pub(crate) fn new(live: Live) -> LiveConfig {
        LiveConfig {
            current: RwLock::new(Arc::new(live)),
        }
    }

    /// The snapshot in force now.
    pub(crate) fn current(&self) -> Arc<Live> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn replace(&self, live: Live) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
    }
}

/// Settings only a restart changes, as `section.field` (or a whole section): the server
/// opened its store, listener and files with them.
pub(crate) const RESTART_ONLY: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "storage",
    "postgres",
    "tls",
    "shutdown_timeout",
    "sourcemaps",
    "issues",
    "privacy",
    "limits.max_in_flight_bytes",
    "limits.ingest_queue_batches",
    "access_log",
];

/// What a successful reload changed.
#[derive(Debug, Default)]
pub(crate) struct Reloaded {
    /// Restart-only settings the file changed, kept at their running values.
    pub restart_needed: Vec<String>,
    /// What the alert rules did.
    pub alerts: Reconfigured,
}

/// Reloads the config file the server started with.
pub(crate) struct Reloader {
    path: Option<PathBuf>,
    overrides: Overrides,
    live: Arc<LiveConfig>,
    alerts: AlertHandle,
    /// Where the keys' daily quotas are counted (the counts outlive a reload).
    quotas: Arc<Quotas>,
    /// One reload at a time (two SIGHUPs in a row).
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub(crate) fn new(
        path: Option<PathBuf>,
        overrides: Overrides,
        live: Arc<LiveConfig>,
        alerts: AlertHandle,
        quotas: Arc<Quotas>,
    ) -> Reloader {
        Reloader {
            path,
            overrides,
            live,
            alerts,
            quotas,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the file and, if all of it is good, swaps it in; logs and counts the outcome.
    pub(crate) async fn reload_and_report(&self, env: &(dyn Fn(&str) -> Option<String> + Sync)) {
        match self.reload(env).await {
            Ok(done) => {
                metrics::counter!("faultline_config_reloads_total", "result" => "ok").increment(1);
                metrics::gauge!("faultline_config_last_reload_successful").set(1.0);
                for setting in &done.restart_needed {
                    tracing::warn!(
                        setting = %setting,
                        "config reload: {setting} changed, which takes a restart; the running value is kept"
                    );
                }
                tracing::info!(
                    rules_kept = done.alerts.kept.len(),
                    rules_changed = ?done.alerts.changed,
                    rules_removed = ?done.alerts.removed,
                    "config reloaded: keys, limits, sampling and alert rules in force"
                );
            }
            Err(e) => {
                metrics::counter!("faultline_config_reloads_total", "result" => "error")
                    .increment(1);
                metrics::gauge!("faultline_config_last_reload_successful").set(0.0);
                tracing::error!(
                    error = format!("{e:#}"),
                    "config reload failed: the running configuration is kept"
                );
            }
        }
    }

    /// Loads, checks and swaps in the file; nothing changes on an error.
    pub(crate) async fn reload(
        &self,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> anyhow::Result<Reloaded> {
        let _one = self.running.lock().await;
        let old = self.live.current();
        let loaded = Config::load(self.path.as_deref(), &self.overrides, env)?;
        let (config, restart_needed) = keep_restart_only(&old.config, loaded)?;
        let resolved = secrets::resolve(&config, env)?;
        let mut keys = Vec::new();
        for key in config.keys.iter().chain(&resolved.shortcut_keys) {
            keys.push((key.clone(), secrets::key_value(key, env)?));
        }
        let mut ring = KeyRing::new(&config, keys, resolved.admin_token);
        ring.carry_over(&old.keys);
        ring.count_quotas_in(&self.quotas);
        // The last step that can fail: the alert evaluator checks the rules and channels
        // whole before it swaps them.
        let mut alerts = self.alerts.reconfigure(&config.alerts, env).await?;
        let sampler = if same(&config.sampling, &old.config.sampling) {
            Arc::clone(&old.sampler)
        } else {
            Arc::new(Sampler::new(config.sampling.clone()))
        };
        self.live.replace(Live {
            config: Arc::new(config),
            keys: Arc::new(ring),
            sampler,
        });
        let mut restart_needed = restart_needed;
        restart_needed.append(&mut alerts.restart_needed);
        Ok(Reloaded {
            restart_needed,
            alerts,
        })
    }
}

fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    match (toml::Value::try_from(a), toml::Value::try_from(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `loaded` with every [`RESTART_ONLY`] setting at its value in `running`, and the names of
/// those that differed.
fn keep_restart_only(running: &Config, loaded: Config) -> anyhow::Result<(Config, Vec<String>)> {
    let old = toml::Table::try_from(running)?;
    let mut new = toml::Table::try_from(&loaded)?;
    let mut changed = Vec::new();
    for path in RESTART_ONLY {
        let (section, field) = match path.split_once('.') {
            Some((s, f)) => (s, Some(f)),
            None => (*path, None),
        };
        let get = |t: &toml::Table| -> Option<toml::Value> {
            let v = t.get(section)?;
            match field {
                Some(f) => v.as_table()?.get(f).cloned(),
                None => Some(v.clone()),
            }
        };
        let (before, after) = (get(&old), get(&new));
        if before == after {
            continue;
        }
        changed.push((*path).to_owned());
        let target = match field {
            None => &mut new,
            Some(_) => match new.get_mut(section).and_then(toml::Value::as_table_mut) {
                Some(t) => t,
                None => continue,
            },
        };
        let name = field.unwrap_or(section);
        match before {
            Some(v) => {
                target.insert(name.to_owned(), v);
            }
            None => {
                target.remove(name);
            }
        }
    }
    let config: Config = new.try_into()?;
    Ok((config, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_settings_keep_their_running_values() {
        let running = Config::default();
        let mut loaded = Config {
            listen: "127.0.0.1:9999".parse().unwrap(),
            database_url: Some("postgres://elsewhere/db".into()),
            ..Config::default()
        };
        loaded.limits.max_in_flight_bytes *= 2;
        loaded.limits.max_batch_records = 7;
        loaded.storage.dedup_ids = 3;
        loaded.sampling.default_per_minute = 50;
        let (kept, changed) = keep_restart_only(&running, loaded).unwrap();
        assert_eq!(
            changed,
            [
                "listen",
                "database_url",
                "storage",
                "limits.max_in_flight_bytes"
            ]
        );
        assert_eq!(kept.listen, running.listen);
        assert_eq!(kept.database_url, None);
        assert_eq!(kept.storage.dedup_ids, running.storage.dedup_ids);
        assert_eq!(
            kept.limits.max_in_flight_bytes,
            running.limits.max_in_flight_bytes
        );
        // Reloadable settings take their new values.
        assert_eq!(kept.limits.max_batch_records, 7);
        assert_eq!(kept.sampling.default_per_minute, 50);
        let (_, none) = keep_restart_only(&running, Config::default()).unwrap();
        assert!(none.is_empty(), "{none:?}");
    }
}

//! [`AlertStore`] in PostgreSQL: `alert_state` (one row per alert that is not ok),
//! `alert_rules` (per-rule rows), `system_checks` and `alert_deliveries`. Every node of a
//! deployment sees the same state, which is what a leader taking over needs.
//!
//! The process that evaluates (the server, or `check-alerts`) holds a session-level
//! advisory lock on a connection of its own, the PostgreSQL counterpart of the file
//! store's `alerts/LOCK`: one process decides and notifies at a time, and the lock goes
//! with the session when that process exits or dies.
//!
//! Servers contend for that lock with [`PgLeaderLock`] instead of refusing to start: the one
//! holding it leads (evaluates and notifies), the others stand by and try again every
//! evaluation interval, so when the leader's session ends another node takes over.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use faultline_store::BoxFuture;
use sqlx::{Connection, PgConnection, PgPool, Row};

use super::store::{
    AlertStore, AlertStoreError, Delivery, LOCK_WAIT, StateChanges, StoredAlert, StoredRule,
    StoredState, SystemCheck,
};
use crate::silence::{EXPIRED_KEEP_MS, MAX_SILENCES, Silence};

/// Checks and deliveries older than this are deleted as new ones arrive.
const KEEP_DAYS: i32 = 30;

/// The advisory lock key of the evaluating process (the bytes of `faultlin`): advisory
/// locks are per database, so only other users of the same database could collide.
const EVALUATOR_LOCK: i64 = 0x6661_756c_746c_696e;

/// The PostgreSQL alert store, on the store's pool.
#[derive(Clone)]
pub struct PgAlertStore {
    pool: PgPool,
    /// The session holding the evaluator's advisory lock, when opened to evaluate.
    _lock: Option<Arc<Mutex<PgConnection>>>,
}

fn unavailable(e: impl std::fmt::Display) -> AlertStoreError {
    AlertStoreError::Unavailable(format!("PostgreSQL: {e}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, AlertStoreError> {
    serde_json::to_string(v).map_err(unavailable)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, AlertStoreError> {
    serde_json::from_str(text)
        .map_err(|e| AlertStoreError::Unavailable(format!("alert state row: {e}")))
}

/// Rows whose column `d` holds a value as JSON text.
fn parse_rows<T: serde::de::DeserializeOwned>(
    rows: &[sqlx::postgres::PgRow],
) -> Result<Vec<T>, AlertStoreError> {
    rows.iter()
        .map(|r| parse(&r.try_get::<String, _>("d").map_err(unavailable)?))
        .collect()
}

fn ms_sql(param: &str) -> String {
    format!("(timestamptz 'epoch' + {param}::bigint * interval '1 millisecond')")
}

impl PgAlertStore {
    /// A store on `pool` to read, beside a process that may be evaluating (the migrations
    /// must have run: `PostgresStore::open` runs them).
    pub fn new(pool: PgPool) -> PgAlertStore {
        PgAlertStore { pool, _lock: None }
    }

    /// A store on `pool` to evaluate: takes the evaluator's advisory lock on a connection of
    /// its own and keeps it while the store lives, so that one process at a time (a server,
    /// or `check-alerts`) decides and notifies. Waits briefly for a predecessor's session to
    /// end (a restart); fails if another process keeps the lock.
    pub async fn open_locked(pool: PgPool) -> Result<PgAlertStore, AlertStoreError> {
        let mut conn = PgConnection::connect_with(&pool.connect_options())
            .await
            .map_err(unavailable)?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(EVALUATOR_LOCK)
                .fetch_one(&mut conn)
                .await
                .map_err(unavailable)?;
            if locked {
                break;
            }
            if Instant::now() >= deadline {
                return Err(AlertStoreError::Unavailable(
                    "the alert state in PostgreSQL is in use by another process (a running \
                     server evaluates these rules already: use its API, or stop it first)"
                        .into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(PgAlertStore {
            pool,
            _lock: Some(Arc::new(Mutex::new(conn))),
        })
    }

    async fn load_rows(&self) -> Result<StoredState, AlertStoreError> {
        let rules = sqlx::query("SELECT state::text AS s FROM alert_rules ORDER BY rule")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let alerts =
            sqlx::query("SELECT state::text AS s FROM alert_state ORDER BY rule, group_key")
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        let mut state = StoredState::default();
        for row in rules {
            state.rules.push(parse::<StoredRule>(
                &row.try_get::<String, _>("s").map_err(unavailable)?,
            )?);
        }
        for row in alerts {
            state.alerts.push(parse::<StoredAlert>(
                &row.try_get::<String, _>("s").map_err(unavailable)?,
            )?);
        }
        Ok(state)
    }

    async fn save_rows(&self, changes: StateChanges) -> Result<(), AlertStoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for rule in &changes.rules {
            sqlx::query(
                "INSERT INTO alert_rules (rule, state, updated_at) VALUES ($1, $2::jsonb, now()) \
                 ON CONFLICT (rule) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
            )
            .bind(&rule.rule)
            .bind(json(rule)?)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for alert in &changes.upsert {
            sqlx::query(
                "INSERT INTO alert_state (rule, group_key, state, updated_at) VALUES ($1, $2, $3::jsonb, now()) \
                 ON CONFLICT (rule, group_key) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
            )
            .bind(&alert.rule)
            .bind(&alert.group)
            .bind(json(alert)?)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for (rule, group) in &changes.delete {
            sqlx::query("DELETE FROM alert_state WHERE rule = $1 AND group_key = $2")
                .bind(rule)
                .bind(group)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn checks(
        &self,
        sql: &str,
        name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SystemCheck>, AlertStoreError> {
        let rows = sqlx::query(sql)
            .bind(name)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| parse(&r.try_get::<String, _>("d").map_err(unavailable)?))
            .collect()
    }
}

impl AlertStore for PgAlertStore {
    fn load(&self) -> BoxFuture<'_, Result<StoredState, AlertStoreError>> {
        Box::pin(self.load_rows())
    }

    fn save(&self, changes: StateChanges) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        Box::pin(self.save_rows(changes))
    }

    fn append_checks(
        &self,
        checks: Vec<SystemCheck>,
    ) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        Box::pin(async move {
            if checks.is_empty() {
                return Ok(());
            }
            let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
            let statuses: Vec<String> = checks
                .iter()
                .map(|c| {
                    serde_json::to_value(c.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            let details = checks.iter().map(json).collect::<Result<Vec<_>, _>>()?;
            let at: Vec<i64> = checks.iter().map(|c| c.checked_at.unix_millis()).collect();
            sqlx::query(&format!(
                "INSERT INTO system_checks (rule, status, detail, checked_at) \
                 SELECT u.rule, u.status, u.detail::jsonb, {} \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[]) AS u(rule, status, detail, at)",
                ms_sql("u.at")
            ))
            .bind(names)
            .bind(statuses)
            .bind(details)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            sqlx::query(&format!(
                "DELETE FROM system_checks WHERE checked_at < now() - interval '{KEEP_DAYS} days'"
            ))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn latest_checks(&self) -> BoxFuture<'_, Result<Vec<SystemCheck>, AlertStoreError>> {
        Box::pin(self.checks(
            "SELECT DISTINCT ON (rule) detail::text AS d FROM system_checks \
             WHERE ($1::text IS NULL OR rule = $1) \
             ORDER BY rule, checked_at DESC, id DESC LIMIT $2",
            None,
            i64::MAX,
        ))
    }

    fn recent_checks(
        &self,
        name: &str,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<SystemCheck>, AlertStoreError>> {
        let name = name.to_owned();
        Box::pin(async move {
            self.checks(
                "SELECT detail::text AS d FROM system_checks WHERE rule = $1 \
                 ORDER BY checked_at DESC, id DESC LIMIT $2",
                Some(&name),
                i64::try_from(limit).unwrap_or(i64::MAX),
            )
            .await
        })
    }

    fn append_deliveries(
        &self,
        deliveries: Vec<Delivery>,
    ) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        Box::pin(async move {
            if deliveries.is_empty() {
                return Ok(());
            }
            let rules: Vec<&str> = deliveries.iter().map(|d| d.rule.as_str()).collect();
            let groups: Vec<&str> = deliveries.iter().map(|d| d.group.as_str()).collect();
            let channels: Vec<&str> = deliveries.iter().map(|d| d.channel.as_str()).collect();
            let bodies = deliveries.iter().map(json).collect::<Result<Vec<_>, _>>()?;
            let at: Vec<i64> = deliveries.iter().map(|d| d.at.unix_millis()).collect();
            sqlx::query(&format!(
                "INSERT INTO alert_deliveries (rule, group_key, channel, delivery, delivered_at) \
                 SELECT u.rule, u.g, u.channel, u.body::jsonb, {} \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) AS u(rule, g, channel, body, at)",
                ms_sql("u.at")
            ))
            .bind(rules)
            .bind(groups)
            .bind(channels)
            .bind(bodies)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            sqlx::query(&format!("DELETE FROM alert_deliveries WHERE delivered_at < now() - interval '{KEEP_DAYS} days'"))
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn recent_deliveries(
        &self,
        per_rule: usize,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, AlertStoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT delivery::text AS d FROM ( \
                   SELECT delivery, delivered_at, id, rule, \
                          row_number() OVER (PARTITION BY rule ORDER BY delivered_at DESC, id DESC) AS n \
                   FROM alert_deliveries) t \
                 WHERE n <= $1 ORDER BY rule, delivered_at DESC, id DESC",
            )
            .bind(i64::try_from(per_rule).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            parse_rows(&rows)
        })
    }

    fn silences(&self) -> BoxFuture<'_, Result<Vec<Silence>, AlertStoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT silence::text AS d FROM alert_silences ORDER BY created_at, id LIMIT $1",
            )
            .bind(i64::try_from(MAX_SILENCES).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            parse_rows(&rows)
        })
    }

    fn put_silence(&self, silence: Silence) -> BoxFuture<'_, Result<(), AlertStoreError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            sqlx::query(&format!(
                "INSERT INTO alert_silences (id, silence, ends_at, created_at, updated_at)                  VALUES ($1, $2::jsonb, {}, {}, now())                  ON CONFLICT (id) DO UPDATE SET silence = EXCLUDED.silence,                  ends_at = EXCLUDED.ends_at, updated_at = now()",
                ms_sql("$3"),
                ms_sql("$4")
            ))
            .bind(&silence.id)
            .bind(json(&silence)?)
            .bind(silence.ends_at.unix_millis())
            .bind(silence.created_at.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            sqlx::query(&format!(
                "DELETE FROM alert_silences WHERE ends_at < now() - interval '{EXPIRED_KEEP_MS} milliseconds'"
            ))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)
        })
    }
}

/// How long one attempt at the leader lock (connect, try-lock or check) may take.
const LEAD_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The evaluator's advisory lock as the servers of a deployment contend for it: taken
/// without waiting when it is free, kept on a session of its own, and checked while held.
pub struct PgLeaderLock {
    pool: PgPool,
    /// The lock's session, once connected.
    conn: Option<PgConnection>,
    /// Whether `conn` holds the lock.
    held: bool,
}

impl PgLeaderLock {
    /// Contends on the database of `pool`; holds nothing until [`PgLeaderLock::try_lead`].
    pub fn new(pool: PgPool) -> PgLeaderLock {
        PgLeaderLock {
            pool,
            conn: None,
            held: false,
        }
    }

    /// Whether this process leads now: if it holds the lock, checks that its session is
    /// still alive (a lost session has lost the lock: this process no longer leads);
    /// otherwise tries to take the lock without waiting. Errors count as not leading.
    pub async fn try_lead(&mut self) -> bool {
        let attempt = tokio::time::timeout(LEAD_ATTEMPT_TIMEOUT, self.attempt()).await;
        match attempt {
            Ok(Ok(lead)) => {
                self.held = lead;
                lead
            }
            Ok(Err(e)) => {
                if self.held {
                    tracing::error!(error = %e, "the alert leader lock's session failed: standing by");
                } else {
                    tracing::debug!(error = %e, "cannot try the alert leader lock");
                }
                self.release();
                false
            }
            Err(_) => {
                if self.held {
                    tracing::error!("the alert leader lock's session does not answer: standing by");
                }
                self.release();
                false
            }
        }
    }

    /// Whether this process held the lock at the last [`PgLeaderLock::try_lead`].
    pub fn held(&self) -> bool {
        self.held
    }

    /// Gives the lock up (closes its session).
    pub fn release(&mut self) {
        self.held = false;
        self.conn = None;
    }

    async fn attempt(&mut self) -> Result<bool, sqlx::Error> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let c = PgConnection::connect_with(&self.pool.connect_options()).await?;
                self.conn.insert(c)
            }
        };
        if self.held {
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            return Ok(true);
        }
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(EVALUATOR_LOCK)
            .fetch_one(&mut *conn)
            .await
    }
}

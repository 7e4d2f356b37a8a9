//! Daily record quotas: a key with `daily_quota = N` (or `limits.daily_quota` for every key
//! without its own) may send N records per UTC day; past it, ingest answers 429 with a
//! `Retry-After` to the next UTC midnight.
//!
//! Like Relay's quotas, this is a count per key and window checked before the work: a batch
//! that would take the day's count past the quota is refused whole, and its records are not
//! counted. Records are counted as the rate limit counts them: every record of a batch the
//! quota let through, rejected and sampled ones included.
//!
//! The counts live in memory and are persisted every second ([`FLUSH_EVERY`]) and at
//! shutdown, so they survive a restart: on the file store in `<data_dir>/quotas.json`
//! (written to a temporary file, synced and renamed over the old one), on PostgreSQL in the
//! `ingest_quotas` table, where each node adds what it counted since its last flush and
//! reads back every node's total. With several nodes a key can therefore overshoot its
//! quota by what the other nodes accept within one flush interval; a `kill -9` forgets at
//! most the last second's counts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// How often counts are persisted (and, on PostgreSQL, the other nodes' read back).
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The file counts are kept in on the file store, inside the data dir.
pub(crate) const QUOTAS_FILE: &str = "quotas.json";

const SECONDS_PER_DAY: u64 = 86_400;

/// Why counts could not be read or persisted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QuotaError {
    /// The file could not be read, parsed or written.
    #[error("quota counts in {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// PostgreSQL failed.
    #[error("quota counts in PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// Where the counts are persisted.
enum QuotaStore {
    /// `<data_dir>/quotas.json` (the file store: one node).
    File(PathBuf),
    /// The `ingest_quotas` table, shared by every node.
    Postgres(PgPool),
}

/// One UTC day's counts.
#[derive(Debug, Default)]
struct DayCounts {
    /// Days since 1970-01-01 (UTC).
    day: u64,
    /// Records counted today per key name: every node's as last read, plus this node's since.
    used: HashMap<String, u64>,
    /// This node's records not yet persisted, per key name.
    pending: HashMap<String, u64>,
}

impl DayCounts {
    /// Starts a new day if `today` is not the day counted.
    fn roll(&mut self, today: u64) {
        if self.day != today {
            *self = DayCounts {
                day: today,
                ..DayCounts::default()
            };
        }
    }
}

/// What `quotas.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct QuotaFile {
    /// Days since 1970-01-01 (UTC) the counts are for.
    day: u64,
    /// The date, for people reading the file.
    date: String,
    /// Records per key name.
    used: HashMap<String, u64>,
}

/// Every key's count for today, and where it is persisted.
pub(crate) struct Quotas {
    counts: Mutex<DayCounts>,
    store: QuotaStore,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas").finish_non_exhaustive()
    }
}

impl Quotas {
    /// Today's counts from `<data_dir>/quotas.json` (none if it is missing or of another day).
    pub(crate) async fn open_file(data_dir: &Path) -> Result<Quotas, QuotaError> {
        let path = data_dir.join(QUOTAS_FILE);
        let read = path.clone();
        let stored = tokio::task::spawn_blocking(move || read_file(&read))
            .await
            .map_err(|e| QuotaError::File {
                path: path.clone(),
                source: std::io::Error::other(e),
            })??;
        let today = today();
        let mut counts = DayCounts {
            day: today,
            ..DayCounts::default()
        };
        if let Some(file) = stored.filter(|f| f.day == today) {
            counts.used = file.used;
        }
        Ok(Quotas {
            counts: Mutex::new(counts),
            store: QuotaStore::File(path),
        })
    }

    /// Today's counts from the `ingest_quotas` table; rows older than a week are deleted.
    pub(crate) async fn open_postgres(pool: PgPool) -> Result<Quotas, QuotaError> {
        let today = today();
        sqlx::query("DELETE FROM ingest_quotas WHERE day < $1::date - 7")
            .bind(date_of(today))
            .execute(&pool)
            .await?;
        let quotas = Quotas {
            counts: Mutex::new(DayCounts {
                day: today,
                ..DayCounts::default()
            }),
            store: QuotaStore::Postgres(pool),
        };
        quotas.flush().await?;
        Ok(quotas)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DayCounts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` records against `key`'s `quota` for today, or counts nothing and says how
    /// long until the next UTC day when they would take it past the quota.
    pub(crate) fn take(&self, key: &str, quota: u64, n: u64) -> Result<(), Duration> {
        let now = unix_seconds();
        let mut counts = self.lock();
        counts.roll(now / SECONDS_PER_DAY);
        let used = counts.used.get(key).copied().unwrap_or(0);
        if used.saturating_add(n) > quota {
            return Err(until_tomorrow(now));
        }
        *counts.used.entry(key.to_owned()).or_default() += n;
        *counts.pending.entry(key.to_owned()).or_default() += n;
        Ok(())
    }

    /// Whether `key` has used all of its `quota` today: how long until the next UTC day.
    pub(crate) fn exhausted(&self, key: &str, quota: u64) -> Option<Duration> {
        let now = unix_seconds();
        let mut counts = self.lock();
        counts.roll(now / SECONDS_PER_DAY);
        let used = counts.used.get(key).copied().unwrap_or(0);
        (used >= quota).then(|| until_tomorrow(now))
    }

    /// Uncounts `n` records [`Quotas::take`] counted for a request refused after all (by
    /// the rate limit), if still today.
    pub(crate) fn give_back(&self, key: &str, n: u64) {
        let mut guard = self.lock();
        let counts = &mut *guard;
        for map in [&mut counts.used, &mut counts.pending] {
            if let Some(c) = map.get_mut(key) {
                *c = c.saturating_sub(n);
            }
        }
    }

    /// Records counted today for `key` (as this node knows them).
    #[cfg(test)]
    fn used(&self, key: &str) -> u64 {
        self.lock().used.get(key).copied().unwrap_or(0)
    }

    /// Persists the counts not yet persisted (on PostgreSQL: and reads back every node's).
    /// On an error the counts are kept to be persisted next time.
    pub(crate) async fn flush(&self) -> Result<(), QuotaError> {
        match &self.store {
            QuotaStore::File(path) => {
                let file = {
                    let mut counts = self.lock();
                    counts.roll(today());
                    if counts.pending.is_empty() {
                        return Ok(());
                    }
                    counts.pending.clear();
                    QuotaFile {
                        day: counts.day,
                        date: date_of(counts.day),
                        used: counts.used.clone(),
                    }
                };
                let path = path.clone();
                let written = tokio::task::spawn_blocking(move || write_file(&path, &file))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r);
                if let Err(source) = written {
                    // Not lost: marked pending again for the next flush.
                    let mut counts = self.lock();
                    let keys: Vec<String> = counts.used.keys().cloned().collect();
                    for key in keys {
                        counts.pending.entry(key).or_insert(0);
                    }
                    return Err(QuotaError::File {
                        path: self.file_path(),
                        source,
                    });
                }
                Ok(())
            }
            QuotaStore::Postgres(pool) => {
                let (day, pending) = {
                    let mut counts = self.lock();
                    counts.roll(today());
                    (counts.day, std::mem::take(&mut counts.pending))
                };
                let totals = match add_and_read(pool, day, &pending).await {
                    Ok(totals) => totals,
                    Err(e) => {
                        let mut counts = self.lock();
                        if counts.day == day {
                            for (key, n) in pending {
                                *counts.pending.entry(key).or_default() += n;
                            }
                        }
                        return Err(e.into());
                    }
                };
                let mut counts = self.lock();
                if counts.day == day {
                    let mut used = totals;
                    for (key, n) in &counts.pending {
                        *used.entry(key.clone()).or_default() += n;
                    }
                    counts.used = used;
                }
                Ok(())
            }
        }
    }

    fn file_path(&self) -> PathBuf {
        match &self.store {
            QuotaStore::File(path) => path.clone(),
            QuotaStore::Postgres(_) => PathBuf::new(),
        }
    }
}

/// Adds `pending` to today's rows and reads every key's total for the day.
async fn add_and_read(
    pool: &PgPool,
    day: u64,
    pending: &HashMap<String, u64>,
) -> Result<HashMap<String, u64>, sqlx::Error> {
    let date = date_of(day);
    if !pending.is_empty() {
        let (keys, counts): (Vec<String>, Vec<i64>) = pending
            .iter()
            .map(|(k, n)| (k.clone(), i64::try_from(*n).unwrap_or(i64::MAX)))
            .unzip();
        sqlx::query(
            "INSERT INTO ingest_quotas (key_name, day, records) \
             SELECT k, $1::date, n FROM UNNEST($2::text[], $3::int8[]) AS t(k, n) \
             ON CONFLICT (key_name, day) \
             DO UPDATE SET records = ingest_quotas.records + EXCLUDED.records",
        )
        .bind(&date)
        .bind(&keys)
        .bind(&counts)
        .execute(pool)
        .await?;
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT key_name, records FROM ingest_quotas WHERE day = $1::date")
            .bind(&date)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// Persists the counts every [`FLUSH_EVERY`] until the task is stopped.
pub(crate) async fn flush_every_second(quotas: std::sync::Arc<Quotas>) {
    let mut every = tokio::time::interval(FLUSH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = quotas.flush().await {
            tracing::warn!(error = %e, "cannot persist the daily quota counts; trying again");
        }
    }
}

fn read_file(path: &Path) -> Result<Option<QuotaFile>, QuotaError> {
    let bad = |source| QuotaError::File {
        path: path.to_owned(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| bad(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(bad(e)),
    }
}

/// Writes `file` beside `path`, syncs it and renames it over `path`: a crash leaves the old
/// counts or the new ones, never half a file.
fn write_file(path: &Path, file: &QuotaFile) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn today() -> u64 {
    unix_seconds() / SECONDS_PER_DAY
}

/// From `now` (Unix seconds) to the next UTC midnight.
fn until_tomorrow(now: u64) -> Duration {
    Duration::from_secs(SECONDS_PER_DAY - now % SECONDS_PER_DAY)
}

/// `YYYY-MM-DD` of a day number.
fn date_of(day: u64) -> String {
    let secs = i64::try_from(day.saturating_mul(SECONDS_PER_DAY)).unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_past_the_quota_is_refused_whole_until_the_next_utc_day() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quotas {
            counts: Mutex::new(DayCounts {
                day: today(),
                ..DayCounts::default()
            }),
            store: QuotaStore::File(dir.path().join(QUOTAS_FILE)),
        };
        assert!(q.take("k", 10, 6).is_ok());
        let wait = q.take("k", 10, 5).unwrap_err();
        assert!(wait <= Duration::from_secs(SECONDS_PER_DAY) && !wait.is_zero());
        assert_eq!(q.used("k"), 6, "a refused batch is not counted");
        assert!(q.take("k", 10, 4).is_ok(), "exactly the quota");
        assert!(q.exhausted("k", 10).is_some());
        assert!(q.exhausted("other", 10).is_none(), "per key");
        q.give_back("k", 4);
        assert_eq!(q.used("k"), 6);
        // A new day starts from nothing.
        q.lock().day -= 1;
        assert!(q.exhausted("k", 6).is_none());
    }

    #[test]
    fn retry_after_reaches_the_next_utc_midnight() {
        assert_eq!(until_tomorrow(0), Duration::from_secs(86_400));
        assert_eq!(until_tomorrow(86_399), Duration::from_secs(1));
        assert_eq!(
            until_tomorrow(86_400 * 3 + 3600),
            Duration::from_secs(82_800)
        );
        assert_eq!(date_of(20_429), "2025-12-07");
    }

    #[tokio::test]
    async fn counts_survive_a_reopen_of_the_same_day_only() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quotas::open_file(dir.path()).await.unwrap();
        q.take("k", 100, 40).unwrap();
        q.flush().await.unwrap();
        let again = Quotas::open_file(dir.path()).await.unwrap();
        assert_eq!(again.used("k"), 40);
        assert!(!dir.path().join("quotas.json.tmp").exists());
        // Yesterday's file counts nothing today.
        let path = dir.path().join(QUOTAS_FILE);
        let mut file: QuotaFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        file.day -= 1;
        write_file(&path, &file).unwrap();
        assert_eq!(Quotas::open_file(dir.path()).await.unwrap().used("k"), 0);
    }
}

//! Issues on PostgreSQL: lists, one issue, status changes, changes for alerts, retention.
//! (The records' writes append what they add to their issues, `write.rs`; every read here
//! folds those deltas in first, so it sees every batch acknowledged before it.)

use std::collections::HashMap;

use faultline_schema::{Level, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::schema::{ms_to_ts, ts_to_ms};
use crate::issues::{
    HOURLY_DAYS, Issue, IssueChange, IssueChangeKind, IssueCursor, IssueDetail, IssuePage,
    IssueQuery, IssueSort, IssueStatus, IssueSummary, MAX_ISSUE_LIMIT, hour_of, hour_series,
};

const HOUR_MS: i64 = 3_600_000;

/// Folds the pending issue deltas into `issues` and `issue_hours` ([`super::write::FOLD`]);
/// returns how many issues changed.
pub(crate) async fn fold(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let changed: i64 = sqlx::query_scalar(super::write::FOLD)
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(changed).unwrap_or(0))
}

fn columns() -> String {
    format!(
        "id, service, title, culprit, level, error_type, count, users, {} AS first_ms, \
         {} AS last_ms, status, release_first, release_last, {} AS created_ms, \
         {} AS regressed_ms, regressed_in, {} AS status_changed_ms",
        ts_to_ms("first_seen"),
        ts_to_ms("last_seen"),
        ts_to_ms("created_at"),
        ts_to_ms("regressed_at"),
        ts_to_ms("status_changed_at"),
    )
}

fn issue(row: &PgRow) -> Result<Issue, sqlx::Error> {
    let level: i16 = row.try_get("level")?;
    let status: String = row.try_get("status")?;
    let ts = |col: &str| -> Result<Option<Timestamp>, sqlx::Error> {
        Ok(row
            .try_get::<Option<i64>, _>(col)?
            .map(Timestamp::from_unix_millis))
    };
    Ok(Issue {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        culprit: row.try_get("culprit")?,
        service: row.try_get("service")?,
        level: Level::ALL
            .get(usize::try_from(level).unwrap_or(3))
            .copied()
            .unwrap_or(Level::Error),
        error_type: row.try_get("error_type")?,
        count: u64::try_from(row.try_get::<i64, _>("count")?).unwrap_or(0),
        users: u64::try_from(row.try_get::<i64, _>("users")?).unwrap_or(0),
        first_seen: Timestamp::from_unix_millis(row.try_get("first_ms")?),
        last_seen: Timestamp::from_unix_millis(row.try_get("last_ms")?),
        status: status.parse().unwrap_or_default(),
        release_first: row.try_get("release_first")?,
        release_last: row.try_get("release_last")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_ms")?),
        regressed_at: ts("regressed_ms")?,
        regressed_in: row.try_get("regressed_in")?,
        status_changed_at: ts("status_changed_ms")?,
    })
}

/// The column an order sorts by.
fn sort_column(sort: IssueSort) -> &'static str {
    match sort {
        IssueSort::LastSeen => "last_seen",
        IssueSort::FirstSeen => "first_seen",
        IssueSort::Count => "count",
        IssueSort::Users => "users",
    }
}

/// Sparse hourly counts of `ids` from the hour starting at `since_ms`.
async fn hours(
    pool: &PgPool,
    ids: &[String],
    since_ms: i64,
) -> Result<HashMap<String, Vec<(i64, u64)>>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT issue, {} AS hour_ms, count FROM issue_hours \
         WHERE issue = ANY($1) AND hour >= {}",
        ts_to_ms("hour"),
        ms_to_ts("$2")
    ))
    .bind(ids)
    .bind(since_ms)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<String, Vec<(i64, u64)>> = HashMap::new();
    for row in rows {
        let count = u64::try_from(row.try_get::<i64, _>("count")?).unwrap_or(0);
        out.entry(row.try_get("issue")?)
            .or_default()
            .push((row.try_get("hour_ms")?, count));
    }
    Ok(out)
}

/// The page of issues `q` asks for.
pub(crate) async fn list(pool: &PgPool, q: &IssueQuery) -> Result<IssuePage, sqlx::Error> {
    fold(pool).await?;
    let col = sort_column(q.sort);
    let mut b =
        QueryBuilder::<Postgres>::new(format!("SELECT {} FROM issues WHERE true", columns()));
    if let Some(s) = &q.service {
        b.push(" AND service = ").push_bind(s.clone());
    }
    if let Some(s) = q.status {
        b.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(t) = q.since {
        b.push(" AND last_seen >= (timestamptz 'epoch' + ")
            .push_bind(t.unix_millis())
            .push("::bigint * interval '1 millisecond')");
    }
    if let Some(IssueCursor { value, id }) = &q.cursor {
        let value_sql = match q.sort {
            IssueSort::LastSeen | IssueSort::FirstSeen => "(timestamptz 'epoch' + ",
            IssueSort::Count | IssueSort::Users => "(",
        };
        b.push(format!(" AND ({col}, id) < ({value_sql}"))
            .push_bind(*value);
        match q.sort {
            IssueSort::LastSeen | IssueSort::FirstSeen => {
                b.push("::bigint * interval '1 millisecond'), ")
            }
            IssueSort::Count | IssueSort::Users => b.push("::bigint), "),
        };
        b.push_bind(id.clone()).push(")");
    }
    let limit = q.limit.clamp(1, MAX_ISSUE_LIMIT);
    b.push(format!(" ORDER BY {col} DESC, id DESC LIMIT "))
        .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    let rows = b.build().fetch_all(pool).await?;
    let mut issues: Vec<Issue> = rows.iter().map(issue).collect::<Result<_, _>>()?;
    let next = (issues.len() > limit).then(|| {
        let last = &issues[limit - 1];
        IssueCursor {
            value: q.sort.key(last),
            id: last.id.clone(),
        }
        .to_string()
    });
    issues.truncate(limit);
    let now = Timestamp::now();
    let ids: Vec<String> = issues.iter().map(|i| i.id.clone()).collect();
    let mut hourly = hours(pool, &ids, hour_of(now) - 23 * HOUR_MS).await?;
    Ok(IssuePage {
        issues: issues
            .into_iter()
            .map(|issue| {
                let sparse = hourly.remove(&issue.id).unwrap_or_default();
                IssueSummary {
                    hourly_24h: hour_series(&sparse, now, 24)
                        .into_iter()
                        .map(|h| h.count)
                        .collect(),
                    issue,
                }
            })
            .collect(),
        next,
    })
}

/// One issue with its hourly counts.
pub(crate) async fn get(pool: &PgPool, id: &str) -> Result<Option<IssueDetail>, sqlx::Error> {
    fold(pool).await?;
    let row = sqlx::query(&format!("SELECT {} FROM issues WHERE id = $1", columns()))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let issue = issue(&row)?;
    let now = Timestamp::now();
    let hours_total = HOURLY_DAYS * 24;
    let sparse = hours(
        pool,
        std::slice::from_ref(&issue.id),
        hour_of(now) - (hours_total - 1) * HOUR_MS,
    )
    .await?
    .remove(&issue.id)
    .unwrap_or_default();
    Ok(Some(IssueDetail {
        issue,
        hourly: hour_series(&sparse, now, hours_total),
    }))
}

/// Sets a status; `None` if there is no such issue.
pub(crate) async fn set_status(
    pool: &PgPool,
    id: &str,
    status: IssueStatus,
) -> Result<Option<Issue>, sqlx::Error> {
    // Events acknowledged before the change count before it (they do not reopen it).
    fold(pool).await?;
    let row = sqlx::query(&format!(
        "UPDATE issues SET status = $2, status_changed_at = now() WHERE id = $1 RETURNING {}",
        columns()
    ))
    .bind(id)
    .bind(status.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(issue).transpose()
}

/// Issues created or regressed at or after `since`, oldest first.
pub(crate) async fn changes_since(
    pool: &PgPool,
    since: Timestamp,
) -> Result<Vec<IssueChange>, sqlx::Error> {
    fold(pool).await?;
    let rows = sqlx::query(&format!(
        "SELECT {} FROM issues WHERE created_at >= {t} OR regressed_at >= {t}",
        columns(),
        t = ms_to_ts("$1")
    ))
    .bind(since.unix_millis())
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let issue = issue(row)?;
        if issue.created_at >= since {
            out.push(IssueChange {
                kind: IssueChangeKind::New,
                at: issue.created_at,
                issue: issue.clone(),
            });
        }
        if let Some(at) = issue.regressed_at.filter(|t| *t >= since) {
            out.push(IssueChange {
                kind: IssueChangeKind::Regression,
                at,
                issue,
            });
        }
    }
    out.sort_by(|a, b| (a.at, &a.issue.id).cmp(&(b.at, &b.issue.id)));
    Ok(out)
}

/// Deletes issues whose last event is older than `cutoff` (with their users and hours) and
/// hourly counts older than [`HOURLY_DAYS`] plus a day. Returns how many issues went.
pub(crate) async fn apply_retention(pool: &PgPool, cutoff: Timestamp) -> Result<u64, sqlx::Error> {
    fold(pool).await?;
    let deleted: i64 = sqlx::query_scalar(&format!(
        "WITH gone AS (DELETE FROM issues WHERE last_seen < {} RETURNING id), \
         u AS (DELETE FROM issue_users WHERE issue IN (SELECT id FROM gone)), \
         h AS (DELETE FROM issue_hours WHERE issue IN (SELECT id FROM gone)) \
         SELECT count(*)::int8 FROM gone",
        ms_to_ts("$1")
    ))
    .bind(cutoff.unix_millis())
    .fetch_one(pool)
    .await?;
    let old_hours = Timestamp::now().unix_millis() - (HOURLY_DAYS + 1) * 24 * HOUR_MS;
    sqlx::query(&format!(
        "DELETE FROM issue_hours WHERE hour < {}",
        ms_to_ts("$1")
    ))
    .bind(old_hours)
    .execute(pool)
    .await?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::super::{PostgresConfig, PostgresStore, WriteMethod};
    use crate::RecordStore;
    use crate::issues::{IssueQuery, IssueStatus};
    use faultline_schema::{Level, Record, Timestamp, Uuid};
    use sqlx::Connection;

    async fn fresh_db() -> String {
        let base = std::env::var("FAULTLINE_TEST_DATABASE_URL")
            .expect("FAULTLINE_TEST_DATABASE_URL is not set (cargo xtask test sets it)");
        let name = format!("t_{}", Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        format!("{prefix}/{name}")
    }

    fn error(issue: &str, user: u64, release: &str) -> Record {
        let mut r = Record::new(Timestamp::now(), "ui", Level::Error, "e", "boom");
        r.id = Some(Uuid::now_v7());
        r.received_at = Some(Timestamp::now());
        r.issue = Some(issue.to_owned());
        r.meta
            .insert("user".into(), format!("u_{user:016x}").into());
        r.meta.insert("release".into(), release.into());
        r.meta.insert("count".into(), 2.into());
        r
    }

    /// Guards the issue upserts: only inserted rows count (a replay counts nothing), users
    /// are exact across concurrent writers of both methods, and a resolved issue regresses.
    #[tokio::test(flavor = "multi_thread")]
    async fn upserts_count_inserted_rows_once_across_writers() {
        let url = fresh_db().await;
        let tmp = tempfile::tempdir().unwrap();
        let open = |method: WriteMethod, dir: &str| {
            let mut c = PostgresConfig::new(url.clone(), tmp.path().join(dir));
            c.write_method = method;
            PostgresStore::open(c)
        };
        let (a, b) = (
            open(WriteMethod::Unnest, "a").await.unwrap(),
            open(WriteMethod::Copy, "b").await.unwrap(),
        );
        let issue = "00000000000000aa";
        let batches: Vec<Vec<Record>> = (0..40)
            .map(|i| {
                (0..25)
                    .map(|j| error(issue, (i * 25 + j) % 300, "1.0"))
                    .collect()
            })
            .collect();
        let mut tasks = Vec::new();
        for (i, batch) in batches.iter().cloned().enumerate() {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(
                async move { store.write(batch).await.unwrap() },
            ));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Replays of every batch, through the other method: nothing new.
        for (i, batch) in batches.iter().cloned().enumerate() {
            let store = if i % 2 == 0 { &b } else { &a };
            assert_eq!(store.write(batch).await.unwrap().written, 0);
        }
        let d = a.issue(issue.into()).await.unwrap().unwrap();
        assert_eq!((d.issue.count, d.issue.users), (2000, 300));
        assert_eq!(d.hourly.iter().map(|h| h.count).sum::<u64>(), 2000);
        assert_eq!(d.issue.release_first.as_deref(), Some("1.0"));

        b.set_issue_status(issue.into(), IssueStatus::Resolved)
            .await
            .unwrap()
            .unwrap();
        a.write(vec![error(issue, 1, "1.1")]).await.unwrap();
        let page = a.issues(IssueQuery::default()).await.unwrap();
        let got = &page.issues[0];
        assert_eq!(got.issue.status, IssueStatus::Unresolved);
        assert_eq!(got.issue.regressed_in.as_deref(), Some("1.1"));
        assert!(got.issue.regressed_at.is_some());
        assert_eq!(got.hourly_24h.iter().sum::<u64>(), 2002);
        let changes = a
            .issue_changes(Timestamp::from_unix_millis(0))
            .await
            .unwrap();
        assert_eq!(changes.len(), 2, "{changes:?}");
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    }
}

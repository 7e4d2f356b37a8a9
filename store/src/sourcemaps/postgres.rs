//! [`PostgresSourceMaps`]: source maps in PostgreSQL (`store/migrations/0003_sourcemaps.sql`),
//! so every node of a scale-out sees the same maps. An upload locks its release's row, so
//! two uploads to one release cannot both pass its size limit.

use faultline_schema::Timestamp;
use sqlx::{PgPool, Row};

use super::{
    ReleaseMaps, ReleaseSummary, SourceMapError, SourceMapFile, SourceMapStore, SourceMapUpload,
    next_version,
};
use crate::store::BoxFuture;

/// Milliseconds since the epoch of a `timestamptz` column, in SQL.
macro_rules! ms {
    ($col:literal) => {
        concat!("(extract(epoch FROM ", $col, ") * 1000)::bigint")
    };
}

/// Source maps in the record store's database. A cheap handle over the pool.
#[derive(Debug, Clone)]
pub struct PostgresSourceMaps {
    pool: PgPool,
}

impl PostgresSourceMaps {
    /// Source maps in the database `pool` reaches (the PostgreSQL store's pool, which applies
    /// the migrations).
    pub fn new(pool: PgPool) -> PostgresSourceMaps {
        PostgresSourceMaps { pool }
    }
}

fn file_from_row(row: &sqlx::postgres::PgRow) -> Result<SourceMapFile, sqlx::Error> {
    Ok(SourceMapFile {
        url: row.try_get("url")?,
        bytes: u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0),
        sources: u32::try_from(row.try_get::<i32, _>("sources")?).unwrap_or(0),
        sources_content: row.try_get("sources_content")?,
        uploaded_at: Timestamp::from_unix_millis(row.try_get("uploaded_ms")?),
    })
}

impl SourceMapStore for PostgresSourceMaps {
    fn put(
        &self,
        upload: SourceMapUpload,
        max_release_bytes: u64,
    ) -> BoxFuture<'_, Result<SourceMapFile, SourceMapError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO sourcemap_releases (release, version) VALUES ($1, 0) \
                 ON CONFLICT (release) DO NOTHING",
            )
            .bind(&upload.release)
            .execute(&mut *tx)
            .await?;
            let version: i64 = sqlx::query_scalar(
                "SELECT version FROM sourcemap_releases WHERE release = $1 FOR UPDATE",
            )
            .bind(&upload.release)
            .fetch_one(&mut *tx)
            .await?;
            let others: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(bytes), 0)::bigint FROM sourcemaps \
                 WHERE release = $1 AND url <> $2",
            )
            .bind(&upload.release)
            .bind(&upload.url)
            .fetch_one(&mut *tx)
            .await?;
            let would_hold = u64::try_from(others)
                .unwrap_or(0)
                .saturating_add(upload.map.len() as u64);
            if would_hold > max_release_bytes {
                return Err(SourceMapError::ReleaseFull {
                    release: upload.release,
                    would_hold,
                    limit: max_release_bytes,
                });
            }
            let row = sqlx::query(concat!(
                "INSERT INTO sourcemaps (release, url, map, bytes, sources, sources_content) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (release, url) DO UPDATE SET map = excluded.map, \
                 bytes = excluded.bytes, sources = excluded.sources, \
                 sources_content = excluded.sources_content, uploaded_at = now() \
                 RETURNING url, bytes, sources, sources_content, ",
                ms!("uploaded_at"),
                " AS uploaded_ms"
            ))
            .bind(&upload.release)
            .bind(&upload.url)
            .bind(&upload.map)
            .bind(i64::try_from(upload.map.len()).unwrap_or(i64::MAX))
            .bind(i32::try_from(upload.sources).unwrap_or(i32::MAX))
            .bind(upload.sources_content)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE sourcemap_releases SET version = $2 WHERE release = $1")
                .bind(&upload.release)
                .bind(next_version(version))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(file_from_row(&row)?)
        })
    }

    fn release<'a>(
        &'a self,
        release: &'a str,
    ) -> BoxFuture<'a, Result<Option<ReleaseMaps>, SourceMapError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let Some(version): Option<i64> =
                sqlx::query_scalar("SELECT version FROM sourcemap_releases WHERE release = $1")
                    .bind(release)
                    .fetch_optional(&mut *tx)
                    .await?
            else {
                return Ok(None);
            };
            let rows = sqlx::query(concat!(
                "SELECT url, bytes, sources, sources_content, ",
                ms!("uploaded_at"),
                " AS uploaded_ms FROM sourcemaps WHERE release = $1 ORDER BY url"
            ))
            .bind(release)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let files = rows
                .iter()
                .map(file_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            if files.is_empty() {
                return Ok(None);
            }
            Ok(Some(ReleaseMaps {
                release: release.to_owned(),
                version,
                files,
            }))
        })
    }

    fn version<'a>(
        &'a self,
        release: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, SourceMapError>> {
        Box::pin(async move {
            Ok(
                sqlx::query_scalar("SELECT version FROM sourcemap_releases WHERE release = $1")
                    .bind(release)
                    .fetch_optional(&self.pool)
                    .await?,
            )
        })
    }

    fn map<'a>(
        &'a self,
        release: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceMapError>> {
        Box::pin(async move {
            Ok(
                sqlx::query_scalar("SELECT map FROM sourcemaps WHERE release = $1 AND url = $2")
                    .bind(release)
                    .bind(url)
                    .fetch_optional(&self.pool)
                    .await?,
            )
        })
    }

    fn releases(&self) -> BoxFuture<'_, Result<Vec<ReleaseSummary>, SourceMapError>> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT r.release, count(m.url)::bigint AS files, \
                 coalesce(sum(m.bytes), 0)::bigint AS bytes, ",
                ms!("max(m.uploaded_at)"),
                " AS uploaded_ms, ",
                ms!("greatest(r.last_used, max(m.uploaded_at))"),
                " AS used_ms FROM sourcemap_releases r JOIN sourcemaps m USING (release) \
                 GROUP BY r.release, r.last_used ORDER BY uploaded_ms DESC, r.release"
            ))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(ReleaseSummary {
                        release: row.try_get("release")?,
                        files: usize::try_from(row.try_get::<i64, _>("files")?).unwrap_or(0),
                        bytes: u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0),
                        uploaded_at: Timestamp::from_unix_millis(row.try_get("uploaded_ms")?),
                        last_used: Timestamp::from_unix_millis(row.try_get("used_ms")?),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(Into::into)
        })
    }

    fn delete<'a>(&'a self, release: &'a str) -> BoxFuture<'a, Result<usize, SourceMapError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM sourcemaps WHERE release = $1")
                .bind(release)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM sourcemap_releases WHERE release = $1")
                .bind(release)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
        })
    }

    fn touch<'a>(
        &'a self,
        release: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<(), SourceMapError>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE sourcemap_releases SET last_used = to_timestamp($2::float8 / 1000) \
                 WHERE release = $1 AND last_used < to_timestamp($2::float8 / 1000)",
            )
            .bind(release)
            .bind(at.unix_millis())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn sweep(&self, cutoff: Timestamp) -> BoxFuture<'_, Result<Vec<String>, SourceMapError>> {
        Box::pin(async move {
            // The maps go with their release (ON DELETE CASCADE).
            Ok(sqlx::query_scalar(
                "DELETE FROM sourcemap_releases r \
                 WHERE r.last_used < to_timestamp($1::float8 / 1000) \
                 AND NOT EXISTS (SELECT 1 FROM sourcemaps m WHERE m.release = r.release \
                 AND m.uploaded_at >= to_timestamp($1::float8 / 1000)) \
                 RETURNING r.release",
            )
            .bind(cutoff.unix_millis())
            .fetch_all(&self.pool)
            .await?)
        })
    }
}

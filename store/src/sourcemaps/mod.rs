//! Source maps: the uploaded maps of each release, kept so stack frames can be read as the
//! original code (issue 22).
//!
//! A source map is stored under its release and the URL its *minified* file is served from
//! (`https://app.example.com/assets/app-5e1f0a.js`, or `~/assets/app-5e1f0a.js` for any scheme
//! and host); uploading the same (release, URL) again replaces it. The store keeps the map's
//! bytes as uploaded and a little about it (size, number of sources, whether it carries
//! `sourcesContent`); parsing and matching are `faultline-symbolicate`'s.
//!
//! Every change to a release (an upload, a delete) gives it a new `version`, so a node that
//! caches parsed maps learns from one cheap read that its copy is stale, including when
//! another node of a scale-out made the change (the PostgreSQL store).
//!
//! # Retention
//!
//! A release is kept while it is in use: symbolication *touches* it (`last_used`), and
//! [`SourceMapStore::sweep`] deletes the releases whose newest upload and last use are both
//! older than the cut-off the server passes (the records' retention unless configured).
//!
//! # Layout
//!
//! - `file.rs`: [`FileSourceMaps`], one index and one file per map under the data dir.
//! - `postgres.rs`: [`PostgresSourceMaps`], two tables shared by every node.

mod file;
mod postgres;

use faultline_schema::Timestamp;

pub use file::FileSourceMaps;
pub use postgres::PostgresSourceMaps;

use crate::store::BoxFuture;

/// A map to store: what the server checked before handing it over.
#[derive(Debug, Clone)]
pub struct SourceMapUpload {
    /// The release the map belongs to (checked by the server: no `/`, no `..`).
    pub release: String,
    /// Where the minified file is served: absolute, or `~/path` for any scheme and host.
    pub url: String,
    /// The map as uploaded (JSON, inflated).
    pub map: Vec<u8>,
    /// How many original sources it names.
    pub sources: u32,
    /// Whether it carries the original sources (`sourcesContent`).
    pub sources_content: bool,
}

/// One stored map, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMapFile {
    /// Where the minified file is served.
    pub url: String,
    /// The map's size in bytes.
    pub bytes: u64,
    /// How many original sources it names.
    pub sources: u32,
    /// Whether it carries `sourcesContent`.
    pub sources_content: bool,
    /// When it was uploaded.
    pub uploaded_at: Timestamp,
}

/// A release's maps: what a symbolicator needs to match frames to maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseMaps {
    /// The release.
    pub release: String,
    /// Changes with every upload and delete of this release.
    pub version: i64,
    /// Its maps, by URL.
    pub files: Vec<SourceMapFile>,
}

impl ReleaseMaps {
    /// The bytes of all its maps.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// One release in the list of releases with maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// The release.
    pub release: String,
    /// How many maps it has.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The newest upload.
    pub uploaded_at: Timestamp,
    /// When symbolication last used one of its maps (the upload time if never).
    pub last_used: Timestamp,
}

/// Why a source map operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceMapError {
    /// The release would hold more than its limit with this map; nothing was stored.
    #[error(
        "release {release:?} would hold {would_hold} bytes of source maps, more than the \
         {limit} allowed: delete the release's old maps or raise sourcemaps.max_release_bytes"
    )]
    ReleaseFull {
        /// The release.
        release: String,
        /// Its size with this map.
        would_hold: u64,
        /// The limit.
        limit: u64,
    },
    /// The storage failed (I/O error, database down); nothing changed.
    #[error("source map storage unavailable: {0}")]
    Unavailable(String),
}

impl From<std::io::Error> for SourceMapError {
    fn from(e: std::io::Error) -> SourceMapError {
        SourceMapError::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for SourceMapError {
    fn from(e: sqlx::Error) -> SourceMapError {
        SourceMapError::Unavailable(format!("PostgreSQL: {e}"))
    }
}

/// Where source maps are kept: the file store's data dir, or PostgreSQL.
pub trait SourceMapStore: Send + Sync + 'static {
    /// Stores a map, replacing the release's map for the same URL, unless the release would
    /// then hold more than `max_release_bytes`. Gives the release a new version.
    fn put(
        &self,
        upload: SourceMapUpload,
        max_release_bytes: u64,
    ) -> BoxFuture<'_, Result<SourceMapFile, SourceMapError>>;

    /// The release's maps (without their bytes), `None` when it has none.
    fn release<'a>(
        &'a self,
        release: &'a str,
    ) -> BoxFuture<'a, Result<Option<ReleaseMaps>, SourceMapError>>;

    /// The release's version, `None` when it has no maps: a cheap check of a cached
    /// [`ReleaseMaps`].
    fn version<'a>(
        &'a self,
        release: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, SourceMapError>>;

    /// The bytes of one map, `None` when there is none for (release, url).
    fn map<'a>(
        &'a self,
        release: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceMapError>>;

    /// Every release that has maps, newest upload first.
    fn releases(&self) -> BoxFuture<'_, Result<Vec<ReleaseSummary>, SourceMapError>>;

    /// Deletes a release's maps; returns how many there were.
    fn delete<'a>(&'a self, release: &'a str) -> BoxFuture<'a, Result<usize, SourceMapError>>;

    /// Records that symbolication used the release at `at` (keeps it from [`Self::sweep`]).
    fn touch<'a>(
        &'a self,
        release: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<(), SourceMapError>>;

    /// Deletes every release whose newest upload and last use are both before `cutoff`;
    /// returns their names.
    fn sweep(&self, cutoff: Timestamp) -> BoxFuture<'_, Result<Vec<String>, SourceMapError>>;
}

/// A new version after `previous`: the current time in microseconds, or one more than
/// `previous` when the clock has not moved past it (versions only need to differ, and
/// growing ones read better).
pub(crate) fn next_version(previous: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    now.max(previous.saturating_add(1))
}

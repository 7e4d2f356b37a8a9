//! Archives: what retention writes before it deletes, and what `faultline import` reads back.
//!
//! An archive file is gzip-compressed NDJSON of stored records: the form the file store keeps
//! and [`faultline_schema::Record::from_json`] reads, with `id`, `received_at` and `issue`, so
//! an import puts back exactly what was deleted. Files are per UTC day of the records' `ts`
//! and per source, and never overwrite each other:
//!
//! ```text
//! <archive_dir>/<yyyy-mm-dd>/<node>-segment-<seq>.ndjson.gz   a file store segment's records of that day
//! <archive_dir>/<yyyy-mm-dd>/postgres-<partition>.ndjson.gz   a dropped daily partition
//! <archive_dir>/<yyyy-mm-dd>/postgres-default.ndjson.gz       expired rows of the default partition
//! ```
//!
//! A name already taken (another node, the same records archived again after an import) gets
//! `-2`, `-3`, ... before `.ndjson.gz`. Every file is written as a hidden temporary
//! (`.<name>.<node>.<pid>.tmp`), fsynced, then linked to its final name (which fails rather
//! than replace an existing file) and the directory fsynced: a crash leaves a `.tmp` that
//! counts for nothing, never half an archive under a final name. Only once every file of a
//! segment or partition is durable do the stores delete it.
//!
//! # Layout
//!
//! - `write.rs`: [`ArchiveDir`] (where, and this node's name) and the day files.
//! - `read.rs`: [`ArchiveReader`], the records of one archive file with their line numbers.

mod read;
mod write;

pub use read::{ArchiveError, ArchiveReader, ArchiveSummary, check_archive};
pub use write::ArchiveDir;
pub(crate) use write::{ArchivedFile, DayFiles, is_day};

use std::sync::Mutex;

use crate::store::ArchiveHealth;

/// Metric names of archiving, one place so dashboards and code agree.
mod metrics_names {
    /// Counter: archive files made durable.
    pub(super) const FILES: &str = "faultline_archive_files_total";
    /// Counter: records archived.
    pub(super) const RECORDS: &str = "faultline_archive_records_total";
    /// Gauge: 1 while the last archive attempt failed (retention deletes nothing), else 0.
    pub(super) const FAILING: &str = "faultline_archive_failing";
}

/// How archiving goes, shared by a store's retention and its [`crate::RecordStore::health`].
#[derive(Debug, Default)]
pub(crate) struct ArchiveState(Mutex<ArchiveHealth>);

impl ArchiveState {
    /// A source archived: its files count, and a failure before is over.
    pub(crate) fn archived(&self, files: &[ArchivedFile]) {
        let records: u64 = files.iter().map(|f| f.records).sum();
        metrics::counter!(metrics_names::FILES).increment(files.len() as u64);
        metrics::counter!(metrics_names::RECORDS).increment(records);
        metrics::gauge!(metrics_names::FAILING).set(0.0);
        let mut health = self.lock();
        health.files += files.len() as u64;
        health.records += records;
        health.last_error = None;
    }

    /// A pass that archived nothing new but had no failure either.
    pub(crate) fn clear(&self) {
        if self.lock().last_error.take().is_some() {
            metrics::gauge!(metrics_names::FAILING).set(0.0);
        }
    }

    /// An archive could not be written: nothing was deleted.
    pub(crate) fn failed(&self, error: String) {
        tracing::error!(error = %error, "could not write an archive; retention deletes nothing until it can");
        metrics::gauge!(metrics_names::FAILING).set(1.0);
        self.lock().last_error = Some(error);
    }

    /// A copy for [`crate::StoreHealth::archive`].
    pub(crate) fn snapshot(&self) -> ArchiveHealth {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ArchiveHealth> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

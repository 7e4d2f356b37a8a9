//! What the forwarder did, printed to standard error when it stops.

use std::fmt;

use faultline_logger::Report;

use super::parse::Format;

/// Counts kept while forwarding, and the output's final report.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) lines: u64,
    pub(crate) records: u64,
    pub(crate) by_format: [u64; Format::ALL.len()],
    /// Records carrying `meta.stack_text` (a folded traceback, or a formatter's `exc_info`).
    pub(crate) tracebacks: u64,
    pub(crate) not_json: u64,
    /// Records a worker sent the collector that are not valid (skipped).
    pub(crate) invalid: u64,
    pub(crate) rotations: u64,
    pub(crate) truncations: u64,
    pub(crate) report: Option<Report>,
}

impl Summary {
    pub(crate) fn count(&mut self, format: Format) {
        self.records += 1;
        if let Some(i) = Format::ALL.iter().position(|f| *f == format) {
            self.by_format[i] += 1;
        }
    }

    /// Records that will never reach the server: dropped, or still in memory when the
    /// forwarder gave up waiting and had no spool to put them in.
    pub(crate) fn lost(&self) -> u64 {
        self.report
            .as_ref()
            .map_or(0, |r| r.dropped.total() + r.queued)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lines read, {} records", self.lines, self.records)?;
        let formats: Vec<String> = Format::ALL
            .iter()
            .zip(self.by_format)
            .filter(|(_, n)| *n > 0)
            .map(|(fmt, n)| format!("{} {n}", fmt.name()))
            .collect();
        if !formats.is_empty() {
            write!(f, " ({})", formats.join(", "))?;
        }
        write!(f, ", {} with a stack", self.tracebacks)?;
        if self.not_json > 0 {
            write!(f, ", {} lines were not JSON (sent as text)", self.not_json)?;
        }
        if self.invalid > 0 {
            write!(f, ", {} invalid records from workers skipped", self.invalid)?;
        }
        if self.rotations + self.truncations > 0 {
            write!(
                f,
                ", {} rotations, {} truncations",
                self.rotations, self.truncations
            )?;
        }
        if let Some(r) = &self.report {
            let d = r.dropped;
            write!(
                f,
                "; delivered {}, spooled {}, lost {}",
                r.written,
                r.spooled,
                self.lost()
            )?;
            if self.lost() > 0 {
                write!(
                    f,
                    " (rejected {}, failed {}, spool full {}, undelivered {})",
                    d.rejected, d.failed, d.spool_full, r.queued
                )?;
            }
            if let Some(e) = r.outputs.iter().find_map(|s| s.last_error.as_deref()) {
                write!(f, "; last error: {e}")?;
            }
        }
        Ok(())
    }
}

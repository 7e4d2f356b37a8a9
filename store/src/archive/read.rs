//! Reading archive files back: the records of one file, each checked, with its line number.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use faultline_schema::Record;
use flate2::read::MultiGzDecoder;

/// Why an archive file cannot be read: the file, the line (when one is to blame) and what
/// is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {reason}", path.display(), line.map(|n| format!(": line {n}")).unwrap_or_default())]
pub struct ArchiveError {
    /// The archive file.
    pub path: PathBuf,
    /// The 1-based line, if the problem is in one.
    pub line: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// The records of one archive file (gzip NDJSON, or plain NDJSON), in order.
///
/// Yields an [`ArchiveError`] naming the file and line for a line that is not a stored
/// record (not JSON, a broken rule, no `id`) and for a file that ends early (a truncated or
/// corrupt gzip stream); empty lines are skipped.
pub struct ArchiveReader {
    path: PathBuf,
    lines: Box<dyn BufRead + Send>,
    line: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl ArchiveReader {
    /// Opens `path`, telling gzip from plain NDJSON by its first bytes.
    pub fn open(path: &Path) -> Result<ArchiveReader, ArchiveError> {
        let fail = |e: io::Error| ArchiveError {
            path: path.to_path_buf(),
            line: None,
            reason: e.to_string(),
        };
        let mut file = BufReader::with_capacity(256 * 1024, File::open(path).map_err(fail)?);
        let gzip = file.fill_buf().map_err(fail)?.starts_with(&[0x1f, 0x8b]);
        let lines: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(file),
            ))
        } else {
            Box::new(file)
        };
        Ok(ArchiveReader {
            path: path.to_path_buf(),
            lines,
            line: 0,
            buf: Vec::new(),
            failed: false,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&mut self, reason: String) -> ArchiveError {
        self.failed = true;
        ArchiveError {
            path: self.path.clone(),
            line: Some(self.line),
            reason,
        }
    }
}

impl Iterator for ArchiveReader {
    type Item = Result<Record, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.buf.clear();
            self.line += 1;
            match self.lines.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    let reason = format!("the file is cut short or corrupt ({e})");
                    return Some(Err(self.error(reason)));
                }
            }
            let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let complete = self.buf.last() == Some(&b'\n');
            return Some(match Record::from_json(line) {
                Ok(record) if record.id.is_none() => {
                    Err(self
                        .error("no id: an archive holds stored records, which all have one".into()))
                }
                Ok(record) => Ok(record),
                Err(e) if !complete => {
                    let reason = format!("the last line is cut short ({e})");
                    Err(self.error(reason))
                }
                Err(e) => {
                    let reason = format!("not a stored record: {e}");
                    Err(self.error(reason))
                }
            });
        }
    }
}

/// Reads every record of `path` without keeping them: the count, or the first problem.
pub fn check_archive(path: &Path) -> Result<ArchiveSummary, ArchiveError> {
    let mut summary = ArchiveSummary::default();
    for record in ArchiveReader::open(path)? {
        let record = record?;
        summary.records += 1;
        summary.min_ts = Some(summary.min_ts.map_or(record.ts, |t| t.min(record.ts)));
        summary.max_ts = Some(summary.max_ts.map_or(record.ts, |t| t.max(record.ts)));
    }
    Ok(summary)
}

/// What [`check_archive`] found in a readable file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Records in the file.
    pub records: u64,
    /// The oldest `ts`, `None` for an empty file.
    pub min_ts: Option<faultline_schema::Timestamp>,
    /// The newest `ts`.
    pub max_ts: Option<faultline_schema::Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveDir, DayFiles};
    use faultline_schema::{Level, Timestamp, Uuid};

    fn line(n: u128) -> Vec<u8> {
        let mut r = Record::new(
            Timestamp::from_unix_millis(1_700_000_000_000 + n as i64),
            "api",
            Level::Error,
            "e",
            format!("m{n}"),
        );
        r.id = Some(Uuid::from_u128(n + 1));
        r.received_at = Some(Timestamp::from_unix_millis(1_700_000_000_000));
        r.issue = Some("0123456789abcdef".into());
        r.to_json().into_bytes()
    }

    fn archive_of(dir: &Path, n: u128) -> PathBuf {
        let archive = ArchiveDir::with_node(dir, "n");
        let mut files = DayFiles::new(&archive, "src");
        for i in 0..n {
            files.append("2023-11-14", &line(i)).unwrap();
        }
        files.finish().unwrap().remove(0).path
    }

    #[test]
    fn records_come_back_in_their_stored_form() {
        let tmp = tempfile::tempdir().unwrap();
        let path = archive_of(tmp.path(), 100);
        let records: Vec<Record> = ArchiveReader::open(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records.len(), 100);
        assert_eq!(
            records[7].to_json().into_bytes(),
            line(7),
            "issue, ids kept"
        );
        assert_eq!(check_archive(&path).unwrap().records, 100);
    }

    #[test]
    fn a_truncated_gzip_names_the_file_and_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = archive_of(tmp.path(), 2000);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = check_archive(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(err.line.is_some_and(|n| n > 1 && n <= 2000), "{text}");
        assert!(text.contains("cut short"), "{text}");
    }

    #[test]
    fn a_bad_line_names_the_file_and_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("plain.ndjson");
        let mut text = Vec::new();
        text.extend_from_slice(&line(1));
        text.extend_from_slice(b"\n\n");
        text.extend_from_slice(b"{\"ts\":\"2023-11-14T00:00:00.000Z\",\"service\":\"api\",\"level\":\"INFO\",\"event\":\"e\",\"message\":\"no id\"}\n");
        std::fs::write(&path, &text).unwrap();
        let err = check_archive(&path).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.to_string().contains("no id"), "{err}");

        std::fs::write(&path, b"{\"id\": 12}\n").unwrap();
        let err = check_archive(&path).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.to_string().contains("not a stored record"), "{err}");
    }
}

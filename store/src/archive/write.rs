//! Writing archive files: one gzip NDJSON file per day and source, atomically, never
//! replacing another.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::private::{create_private_dir_all, private_open_options, with_path};

/// The archive files' extension.
const EXT: &str = ".ndjson.gz";
/// A source whose records spread over more days than this finishes its oldest open file
/// to open the next (the day's later records go to a `-2` file): bounded memory and
/// descriptors whatever the timestamps.
const MAX_OPEN_DAYS: usize = 32;
/// Buffered before the compressor.
const BUFFER: usize = 256 * 1024;

/// Where retention writes archives, and the name this node puts in its file names so that
/// several nodes can share one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDir {
    /// The directory (`[retention] archive_dir`); created on first use.
    pub dir: PathBuf,
    /// This node's name in file names: letters, digits, `.`, `_` and `-` only.
    pub node: String,
}

impl ArchiveDir {
    /// Archives under `dir`, named after this host (`/proc/sys/kernel/hostname`, else
    /// `$HOSTNAME`, else `node`).
    pub fn new(dir: impl Into<PathBuf>) -> ArchiveDir {
        let host = fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        ArchiveDir::with_node(dir, &host)
    }

    /// Archives under `dir` for the node `name` (characters outside `[A-Za-z0-9._-]`
    /// become `_`; empty becomes `node`).
    pub fn with_node(dir: impl Into<PathBuf>, name: &str) -> ArchiveDir {
        let node: String = name
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        ArchiveDir {
            dir: dir.into(),
            node: if node.is_empty() { "node".into() } else { node },
        }
    }
}

/// One archive file made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchivedFile {
    /// Its final path.
    pub(crate) path: PathBuf,
    /// Records in it.
    pub(crate) records: u64,
    /// Uncompressed bytes (the NDJSON).
    pub(crate) raw_bytes: u64,
}

/// The day files of one source (a segment, a partition) while it is archived. Nothing counts
/// until [`DayFiles::finish`] returns: dropped or failed, it removes what it wrote.
pub(crate) struct DayFiles<'a> {
    archive: &'a ArchiveDir,
    source: String,
    open: BTreeMap<String, DayFile>,
    done: Vec<ArchivedFile>,
}

struct DayFile {
    dir: PathBuf,
    tmp: PathBuf,
    encoder: GzEncoder<BufWriter<File>>,
    records: u64,
    raw_bytes: u64,
}

/// `YYYY-MM-DD`, so a day can never be a path of its own.
pub(crate) fn is_day(day: &str) -> bool {
    let b = day.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

impl<'a> DayFiles<'a> {
    /// Archive files for `source` (a file name part: `[A-Za-z0-9._-]`).
    pub(crate) fn new(archive: &'a ArchiveDir, source: impl Into<String>) -> DayFiles<'a> {
        DayFiles {
            archive,
            source: source.into(),
            open: BTreeMap::new(),
            done: Vec::new(),
        }
    }

    /// Appends one stored record's JSON `line` (without its newline) to the file of `day`.
    pub(crate) fn append(&mut self, day: &str, line: &[u8]) -> io::Result<()> {
        if !self.open.contains_key(day) {
            if !is_day(day) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{day:?} is not a YYYY-MM-DD day"),
                ));
            }
            if self.open.len() >= MAX_OPEN_DAYS
                && let Some((_, oldest)) = self.open.pop_first()
            {
                let finished = self.finish_one(oldest)?;
                self.done.push(finished);
            }
            let file = self.create(day)?;
            self.open.insert(day.to_owned(), file);
        }
        let Some(file) = self.open.get_mut(day) else {
            return Err(io::Error::other("day file vanished"));
        };
        file.encoder.write_all(line)?;
        file.encoder.write_all(b"\n")?;
        file.records += 1;
        file.raw_bytes += line.len() as u64 + 1;
        Ok(())
    }

    fn create(&self, day: &str) -> io::Result<DayFile> {
        let dir = self.archive.dir.join(day);
        create_private_dir_all(&dir).map_err(|e| with_path(e, &dir))?;
        let tmp = dir.join(format!(
            ".{}{EXT}.{}.{}.tmp",
            self.source,
            self.archive.node,
            std::process::id()
        ));
        let file = private_open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| with_path(e, &tmp))?;
        Ok(DayFile {
            dir,
            tmp,
            encoder: GzEncoder::new(BufWriter::with_capacity(BUFFER, file), Compression::fast()),
            records: 0,
            raw_bytes: 0,
        })
    }

    /// Makes every file durable under its final name and returns them; on an error, removes
    /// what this source wrote (finished files included), so a retry starts clean.
    pub(crate) fn finish(mut self) -> io::Result<Vec<ArchivedFile>> {
        while let Some((_, file)) = self.open.pop_first() {
            match self.finish_one(file) {
                Ok(done) => self.done.push(done),
                Err(e) => {
                    self.remove_done();
                    return Err(e);
                }
            }
        }
        Ok(std::mem::take(&mut self.done))
    }

    fn remove_done(&mut self) {
        for done in self.done.drain(..) {
            let _ = fs::remove_file(&done.path);
        }
    }

    fn finish_one(&self, file: DayFile) -> io::Result<ArchivedFile> {
        let DayFile {
            dir,
            tmp,
            encoder,
            records,
            raw_bytes,
        } = file;
        let result = (|| {
            let written = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
            written.sync_all()?;
            drop(written);
            let path = self.link_free_name(&dir, &tmp)?;
            fs::remove_file(&tmp)?;
            File::open(&dir)?.sync_all()?;
            Ok(path)
        })();
        match result {
            Ok(path) => Ok(ArchivedFile {
                path,
                records,
                raw_bytes,
            }),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(with_path(e, &tmp))
            }
        }
    }

    /// Links `tmp` to the first free name of `<source>[-n].ndjson.gz` in `dir`. A link never
    /// replaces an existing file, so two nodes (or two passes) cannot clobber each other.
    fn link_free_name(&self, dir: &Path, tmp: &Path) -> io::Result<PathBuf> {
        for n in 1u32.. {
            let name = if n == 1 {
                format!("{}{EXT}", self.source)
            } else {
                format!("{}-{n}{EXT}", self.source)
            };
            let path = dir.join(name);
            match fs::hard_link(tmp, &path) {
                Ok(()) => return Ok(path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free archive name"))
    }
}

impl Drop for DayFiles<'_> {
    /// Abandoned (an error on the way): the temporaries and the finished files go.
    fn drop(&mut self) {
        for (_, file) in std::mem::take(&mut self.open) {
            let _ = fs::remove_file(&file.tmp);
        }
        self.remove_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_taken_gets_a_suffix_and_nothing_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = ArchiveDir::with_node(tmp.path(), "host a/1");
        assert_eq!(archive.node, "host_a_1");
        for n in 0..2 {
            let mut files = DayFiles::new(&archive, "src");
            files
                .append("2026-01-02", format!("{{\"n\":{n}}}").as_bytes())
                .unwrap();
            files.append("2026-01-03", b"{}").unwrap();
            let done = files.finish().unwrap();
            assert_eq!(done.len(), 2);
        }
        let day = tmp.path().join("2026-01-02");
        let mut names: Vec<String> = fs::read_dir(&day)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["src-2.ndjson.gz", "src.ndjson.gz"],
            "no temporaries left"
        );
    }

    #[test]
    fn an_abandoned_source_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = ArchiveDir::with_node(tmp.path(), "n");
        let mut files = DayFiles::new(&archive, "src");
        files.append("2026-01-02", b"{}").unwrap();
        assert!(files.append("../../etc", b"{}").is_err(), "not a day");
        drop(files);
        assert_eq!(
            fs::read_dir(tmp.path().join("2026-01-02")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("archive");
        fs::write(&file, b"not a dir").unwrap();
        let archive = ArchiveDir::with_node(&file, "n");
        let err = DayFiles::new(&archive, "src")
            .append("2026-01-02", b"{}")
            .unwrap_err();
        assert!(err.to_string().contains("archive"), "{err}");
    }
}

//! [`FileSourceMaps`]: source maps under the data dir, for the file store.
//!
//! `dir/index.json` lists every release and its maps; each map's bytes are in
//! `dir/maps/{n}.map`, named by a counter so no client text becomes a file name. A change
//! writes the new map file (fsynced, renamed into place), then the new index the same way,
//! then removes what the index no longer names: a crash leaves either the old or the new
//! index, and files no index names are removed on the next open. Files are 0600 in 0700
//! directories (`private.rs`). One process owns the directory (as with the file store).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use faultline_schema::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    ReleaseMaps, ReleaseSummary, SourceMapError, SourceMapFile, SourceMapStore, SourceMapUpload,
    next_version,
};
use crate::private::{create_private_dir_all, restrict_dir, write_atomically};
use crate::store::BoxFuture;

const INDEX: &str = "index.json";
const MAPS: &str = "maps";

/// Source maps in a directory (`<data_dir>/sourcemaps`). A cheap handle.
#[derive(Clone)]
pub struct FileSourceMaps {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    index: Mutex<Index>,
}

impl std::fmt::Debug for FileSourceMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSourceMaps")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    /// The number of the next map file.
    next_file: u64,
    releases: BTreeMap<String, IndexRelease>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexRelease {
    version: i64,
    last_used_ms: i64,
    files: Vec<IndexFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexFile {
    url: String,
    bytes: u64,
    sources: u32,
    sources_content: bool,
    uploaded_at_ms: i64,
    /// `maps/{file}.map`.
    file: u64,
}

impl IndexFile {
    fn view(&self) -> SourceMapFile {
        SourceMapFile {
            url: self.url.clone(),
            bytes: self.bytes,
            sources: self.sources,
            sources_content: self.sources_content,
            uploaded_at: Timestamp::from_unix_millis(self.uploaded_at_ms),
        }
    }
}

impl IndexRelease {
    fn uploaded_at_ms(&self) -> i64 {
        self.files
            .iter()
            .map(|f| f.uploaded_at_ms)
            .max()
            .unwrap_or(0)
    }
}

impl FileSourceMaps {
    /// Opens (creating) the directory, reads the index and removes map files it does not
    /// name (left by a crash mid-change).
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileSourceMaps, SourceMapError> {
        let dir = dir.into();
        create_private_dir_all(&dir.join(MAPS))?;
        restrict_dir(&dir)?;
        let index = match std::fs::read(dir.join(INDEX)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                SourceMapError::Unavailable(format!(
                    "{}: not a source map index: {e}",
                    dir.join(INDEX).display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(e.into()),
        };
        let store = FileSourceMaps {
            inner: Arc::new(Inner {
                dir,
                index: Mutex::new(index),
            }),
        };
        store.remove_unnamed()?;
        Ok(store)
    }

    fn map_path(&self, file: u64) -> PathBuf {
        self.inner.dir.join(MAPS).join(format!("{file}.map"))
    }

    fn remove_unnamed(&self) -> Result<(), SourceMapError> {
        let index = self.lock();
        let named: std::collections::HashSet<String> = index
            .releases
            .values()
            .flat_map(|r| r.files.iter().map(|f| format!("{}.map", f.file)))
            .collect();
        for entry in std::fs::read_dir(self.inner.dir.join(MAPS))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !named.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner
            .index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `index` as the new index (fsynced, renamed into place).
    fn save(&self, index: &Index) -> Result<(), SourceMapError> {
        let bytes = serde_json::to_vec(index)
            .map_err(|e| SourceMapError::Unavailable(format!("index: {e}")))?;
        write_atomically(&self.inner.dir.join(INDEX), &bytes)?;
        Ok(())
    }

    fn put_blocking(
        &self,
        upload: SourceMapUpload,
        max_release_bytes: u64,
    ) -> Result<SourceMapFile, SourceMapError> {
        let mut index = self.lock();
        let others: u64 = index.releases.get(&upload.release).map_or(0, |r| {
            r.files
                .iter()
                .filter(|f| f.url != upload.url)
                .map(|f| f.bytes)
                .sum()
        });
        let would_hold = others.saturating_add(upload.map.len() as u64);
        if would_hold > max_release_bytes {
            return Err(SourceMapError::ReleaseFull {
                release: upload.release,
                would_hold,
                limit: max_release_bytes,
            });
        }
        let mut next = index.clone();
        let file = next.next_file;
        next.next_file += 1;
        write_atomically(&self.map_path(file), &upload.map)?;
        let now = Timestamp::now().unix_millis();
        let entry = IndexFile {
            url: upload.url.clone(),
            bytes: upload.map.len() as u64,
            sources: upload.sources,
            sources_content: upload.sources_content,
            uploaded_at_ms: now,
            file,
        };
        let release = next
            .releases
            .entry(upload.release)
            .or_insert_with(|| IndexRelease {
                version: 0,
                last_used_ms: now,
                files: Vec::new(),
            });
        release.version = next_version(release.version);
        let replaced = release.files.iter().position(|f| f.url == upload.url);
        let old = match replaced {
            Some(i) => Some(std::mem::replace(&mut release.files[i], entry.clone()).file),
            None => {
                release.files.push(entry.clone());
                None
            }
        };
        if let Err(e) = self.save(&next) {
            let _ = std::fs::remove_file(self.map_path(file));
            return Err(e);
        }
        *index = next;
        if let Some(old) = old {
            let _ = std::fs::remove_file(self.map_path(old));
        }
        Ok(entry.view())
    }

    /// Removes the named releases from the index, then their files.
    fn remove_releases(&self, names: &[String]) -> Result<usize, SourceMapError> {
        let mut index = self.lock();
        let mut next = index.clone();
        let removed: Vec<IndexRelease> = names
            .iter()
            .filter_map(|n| next.releases.remove(n))
            .collect();
        if removed.is_empty() {
            return Ok(0);
        }
        self.save(&next)?;
        *index = next;
        drop(index);
        let mut count = 0;
        for file in removed.iter().flat_map(|r| &r.files) {
            let _ = std::fs::remove_file(self.map_path(file.file));
            count += 1;
        }
        Ok(count)
    }

    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(FileSourceMaps) -> Result<T, SourceMapError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, SourceMapError>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(this))
                .await
                .map_err(|e| SourceMapError::Unavailable(format!("source map task failed: {e}")))?
        })
    }
}

impl SourceMapStore for FileSourceMaps {
    fn put(
        &self,
        upload: SourceMapUpload,
        max_release_bytes: u64,
    ) -> BoxFuture<'_, Result<SourceMapFile, SourceMapError>> {
        self.blocking(move |s| s.put_blocking(upload, max_release_bytes))
    }

    fn release<'a>(
        &'a self,
        release: &'a str,
    ) -> BoxFuture<'a, Result<Option<ReleaseMaps>, SourceMapError>> {
        let found = self.lock().releases.get(release).map(|r| ReleaseMaps {
            release: release.to_owned(),
            version: r.version,
            files: r.files.iter().map(IndexFile::view).collect(),
        });
        Box::pin(async move { Ok(found) })
    }

    fn version<'a>(
        &'a self,
        release: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, SourceMapError>> {
        let version = self.lock().releases.get(release).map(|r| r.version);
        Box::pin(async move { Ok(version) })
    }

    fn map<'a>(
        &'a self,
        release: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceMapError>> {
        let file = self
            .lock()
            .releases
            .get(release)
            .and_then(|r| r.files.iter().find(|f| f.url == url))
            .map(|f| f.file);
        let Some(file) = file else {
            return Box::pin(async { Ok(None) });
        };
        let path = self.map_path(file);
        Box::pin(async move {
            match tokio::fs::read(&path).await {
                Ok(bytes) => Ok(Some(bytes)),
                // Replaced or deleted since the index was read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn releases(&self) -> BoxFuture<'_, Result<Vec<ReleaseSummary>, SourceMapError>> {
        let mut list: Vec<ReleaseSummary> = self
            .lock()
            .releases
            .iter()
            .map(|(name, r)| ReleaseSummary {
                release: name.clone(),
                files: r.files.len(),
                bytes: r.files.iter().map(|f| f.bytes).sum(),
                uploaded_at: Timestamp::from_unix_millis(r.uploaded_at_ms()),
                last_used: Timestamp::from_unix_millis(r.last_used_ms.max(r.uploaded_at_ms())),
            })
            .collect();
        list.sort_by_key(|r| std::cmp::Reverse(r.uploaded_at));
        Box::pin(async move { Ok(list) })
    }

    fn delete<'a>(&'a self, release: &'a str) -> BoxFuture<'a, Result<usize, SourceMapError>> {
        let names = vec![release.to_owned()];
        self.blocking(move |s| s.remove_releases(&names))
    }

    fn touch<'a>(
        &'a self,
        release: &'a str,
        at: Timestamp,
    ) -> BoxFuture<'a, Result<(), SourceMapError>> {
        let release = release.to_owned();
        self.blocking(move |s| {
            let mut index = s.lock();
            let mut next = index.clone();
            match next.releases.get_mut(&release) {
                Some(r) if r.last_used_ms < at.unix_millis() => r.last_used_ms = at.unix_millis(),
                _ => return Ok(()),
            }
            s.save(&next)?;
            *index = next;
            Ok(())
        })
    }

    fn sweep(&self, cutoff: Timestamp) -> BoxFuture<'_, Result<Vec<String>, SourceMapError>> {
        self.blocking(move |s| {
            let old: Vec<String> = s
                .lock()
                .releases
                .iter()
                .filter(|(_, r)| r.last_used_ms.max(r.uploaded_at_ms()) < cutoff.unix_millis())
                .map(|(name, _)| name.clone())
                .collect();
            s.remove_releases(&old)?;
            Ok(old)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(release: &str, url: &str, map: &[u8]) -> SourceMapUpload {
        SourceMapUpload {
            release: release.into(),
            url: url.into(),
            map: map.to_vec(),
            sources: 1,
            sources_content: true,
        }
    }

    #[tokio::test]
    async fn put_replace_limit_delete_sweep_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let maps = FileSourceMaps::open(dir.path().join("sourcemaps")).unwrap();
        maps.put(upload("r1", "~/a.js", b"{}"), 100).await.unwrap();
        let v1 = maps.version("r1").await.unwrap().unwrap();
        maps.put(upload("r1", "~/a.js", b"{ }"), 100).await.unwrap();
        maps.put(upload("r1", "~/b.js", b"{}"), 100).await.unwrap();
        let r1 = maps.release("r1").await.unwrap().unwrap();
        assert!(r1.version > v1, "every change is a new version");
        assert_eq!((r1.files.len(), r1.bytes()), (2, 5));
        assert_eq!(maps.map("r1", "~/a.js").await.unwrap().unwrap(), b"{ }");
        let full = maps.put(upload("r1", "~/c.js", &[b' '; 96]), 100).await;
        assert!(matches!(
            full,
            Err(SourceMapError::ReleaseFull {
                would_hold: 101,
                ..
            })
        ));
        // Replacing counts the new size, not both.
        maps.put(upload("r1", "~/a.js", &[b' '; 98]), 100)
            .await
            .unwrap();
        maps.put(upload("r2", "~/a.js", b"{}"), 100).await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("sourcemaps/maps"))
                .unwrap()
                .count(),
            3,
            "replaced maps' files are gone"
        );

        let reopened = FileSourceMaps::open(dir.path().join("sourcemaps")).unwrap();
        assert_eq!(reopened.releases().await.unwrap().len(), 2);
        assert_eq!(reopened.delete("r1").await.unwrap(), 2);
        assert_eq!(reopened.version("r1").await.unwrap(), None);
        assert_eq!(reopened.map("r1", "~/b.js").await.unwrap(), None);

        let future = Timestamp::from_unix_millis(Timestamp::now().unix_millis() + 60_000);
        reopened.touch("r2", future).await.unwrap();
        assert!(
            reopened.sweep(Timestamp::now()).await.unwrap().is_empty(),
            "used lately"
        );
        let later = Timestamp::from_unix_millis(future.unix_millis() + 1);
        assert_eq!(reopened.sweep(later).await.unwrap(), vec!["r2".to_owned()]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("sourcemaps/maps"))
                .unwrap()
                .count(),
            0
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("sourcemaps/index.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

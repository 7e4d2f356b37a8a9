//! Files and directories that only the owner may read.
//!
//! Segments, the outage spool and the alert state hold what clients sent (messages, stack
//! traces, URLs, user ids), so every store creates its files with mode 0600 and its
//! directories with 0700, whatever the process's umask would allow. (The mode bits are
//! Unix-only; elsewhere these are the plain `std::fs` calls.)

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The mode of files the stores create.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of directories the stores create.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// `std::fs::create_dir_all`, each directory it creates with mode 0700.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR_MODE);
    }
    builder.create(path)
}

/// `OpenOptions` whose `create` makes the file with mode 0600.
pub fn private_open_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    options
}

/// `File::create` (write, create, truncate) with mode 0600 for a new file.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    private_open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Adds the path to an I/O error's message, keeping its kind.
pub(crate) fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The temporary file [`write_atomically`] writes before renaming it to `path`:
/// `path` with `.tmp` appended.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one, never a
/// part: written to [`tmp_path`] (mode 0600), fsynced, renamed over `path`, and the
/// directory fsynced. A failed write removes the temporary file; errors name the path.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, bytes, File::sync_all, |dir| {
        File::open(dir)?.sync_all()
    })
}

/// [`write_atomically`] with the caller's fsyncs (the file store counts and times its own).
pub(crate) fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    sync_file: impl FnOnce(&File) -> io::Result<()>,
    sync_dir: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut file = create_private_file(&tmp)?;
        file.write_all(bytes)?;
        sync_file(&file)?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
            _ => sync_dir(Path::new(".")),
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| with_path(e, path))
}

/// Takes group and other access away from an existing directory (0700), so what older
/// versions created inside it with wider modes cannot be reached by other users either.
/// Returns whether the mode changed.
pub fn restrict_dir(path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077))?;
            return Ok(true);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(false)
}

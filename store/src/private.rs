//! Files and directories that only the owner may read.
//!
//! Segments, the outage spool and the alert state hold what clients sent (messages, stack
//! traces, URLs, user ids), so every store creates its files with mode 0600 and its
//! directories with 0700, whatever the process's umask would allow. (The mode bits are
//! Unix-only; elsewhere these are the plain `std::fs` calls.)

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

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

//! Replacing a file so that a crash or a power cut at any moment leaves
//! the old content or the new, never a mix: the state, its early copy,
//! the public status, the last-good configuration, this boot's decision
//! and the BLS entries are all written this way.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::failpoint::failpoint;

/// The write steps, in order, for failure-injection tests.
pub const WRITE_STEPS: &[&str] = &[
    "before-write",
    "mid-write",
    "before-fsync",
    "before-rename",
    "before-dir-fsync",
];

/// Atomically replaces `path` with `data`: temp file in the same directory,
/// fsync, rename, fsync the directory.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    failpoint("before-write")?;
    let (first, second) = data.split_at(data.len() / 2);
    tmp.write_all(first)?;
    failpoint("mid-write")?;
    tmp.write_all(second)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    failpoint("before-fsync")?;
    tmp.as_file().sync_all()?;
    failpoint("before-rename")?;
    tmp.persist(path).map_err(|e| e.error)?;
    failpoint("before-dir-fsync")?;
    File::open(dir)?.sync_all()
}

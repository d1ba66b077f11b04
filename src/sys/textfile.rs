//! `umm.prom` in node_exporter's textfile collector directory: replaced
//! atomically (a temporary file in the same directory, whose name does not
//! end in `.prom`, so the collector never reads half a file), and only
//! where the directory exists: without node_exporter there is nothing to
//! write for, and umm never creates another package's directory.
//!
//! The directory is opened once, without following a symbolic link in its
//! last component (`O_NOFOLLOW | O_DIRECTORY`), and every step after that
//! is relative to that descriptor: root never writes `umm.prom` wherever a
//! link planted in place of the directory points, nor into a directory
//! swapped in between the check and the write.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, renameat, OFlag};
use nix::sys::stat::{fchmod, Mode};

use super::failpoint::failpoint;
use super::paths::Root;

/// The file's name in the directory.
pub const FILE: &str = "umm.prom";

/// The temporary file's name: not `*.prom`, so the collector skips it.
const TEMPORARY: &str = ".umm.prom.tmp";

/// Writes `text` as `<dir>/umm.prom` under `root`; `Ok(None)` when the
/// directory does not exist, else the file written. A symbolic link in
/// place of the directory is refused with an error that says so.
pub fn write(root: &Root, dir: &Path, text: &str) -> io::Result<Option<PathBuf>> {
    let dir = root.join(dir);
    let Some(fd) = open_dir(&dir)? else {
        return Ok(None);
    };
    write_in(&fd, text.as_bytes())?;
    Ok(Some(dir.join(FILE)))
}

/// The directory, opened without following a link; None when absent.
fn open_dir(dir: &Path) -> io::Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match open(dir, flags, Mode::empty()) {
        // SAFETY: `open` just returned this descriptor; nothing else owns it.
        Ok(raw) => Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) })),
        Err(Errno::ENOENT) => Ok(None),
        // O_NOFOLLOW on a link: ELOOP; a link to a directory with
        // O_DIRECTORY may also give ENOTDIR on some systems.
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) if is_symlink(dir) => Err(io::Error::other(
            "is a symbolic link: umm does not follow it (root would write wherever it points); \
             make textfile_dir the real directory",
        )),
        Err(e) => Err(e.into()),
    }
}

fn is_symlink(p: &Path) -> bool {
    p.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

/// Temporary file, fsync, rename over `umm.prom`, fsync the directory: all
/// relative to `dir`.
fn write_in(dir: &OwnedFd, data: &[u8]) -> io::Result<()> {
    let dirfd = dir.as_raw_fd();
    // A stale temporary file (a crash mid-write) is replaced: O_TRUNC.
    // O_NOFOLLOW: a link planted under the temporary name is not followed.
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let raw = openat(
        Some(dirfd),
        TEMPORARY,
        flags,
        Mode::from_bits_truncate(0o644),
    )?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    let mut tmp = unsafe { File::from_raw_fd(raw) };
    failpoint("before-write")?;
    tmp.write_all(data)?;
    // The mode whatever the umask.
    fchmod(tmp.as_raw_fd(), Mode::from_bits_truncate(0o644))?;
    failpoint("before-fsync")?;
    tmp.sync_all()?;
    drop(tmp);
    failpoint("before-rename")?;
    renameat(Some(dirfd), TEMPORARY, Some(dirfd), FILE)?;
    failpoint("before-dir-fsync")?;
    nix::unistd::fsync(dir.as_fd().as_raw_fd())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_written_without_the_directory_and_the_file_replaced_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let dir = Path::new("/var/lib/prometheus/node-exporter");
        assert_eq!(write(&root, dir, "a 1\n").unwrap(), None);
        assert!(!root.join(dir).exists());
        std::fs::create_dir_all(root.join(dir)).unwrap();
        let path = write(&root, dir, "a 1\n").unwrap().unwrap();
        assert_eq!(path, root.join(dir).join("umm.prom"));
        write(&root, dir, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn a_symlinked_directory_is_refused_and_nothing_written_where_it_points() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let elsewhere = tmp.path().join("etc");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let dir = Path::new("/var/lib/prom");
        std::fs::create_dir_all(root.join(Path::new("/var/lib"))).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join(dir)).unwrap();
        let e = write(&root, dir, "a 1\n").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}

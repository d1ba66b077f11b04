//! Reading a file that may not be what it seems, in one place.
//!
//! Every file umm reads (configuration, state and its early copy, this
//! boot's decision, the kernel command line, uptime and boot id, boot-menu
//! files, unit files) may be replaced by something else: a FIFO (opening or
//! reading it would wait forever, holding the lock or the boot), a device
//! (`/dev/zero` reads without end), a symbolic-link loop, or a file far
//! larger than umm ever writes. So every read here:
//!
//! - opens with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC` (opening a FIFO or a
//!   terminal returns at once and never becomes our controlling tty);
//! - checks with `fstat` on the opened file that it is a regular file;
//! - reads at most a cap (`CONFIG_MAX`, `STATE_MAX`, `SMALL_MAX`), and says
//!   so when the file is larger;
//! - tells "absent" (`ENOENT` on the path itself) from everything else: a
//!   dangling symbolic link is not an absent file, it is a broken one.
//!
//! Each error is one line that names the path and what to do.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Configuration files (umm.toml, drop-ins, the legacy umm.conf, unit
/// files, boot entries, grub.cfg): real ones are a few KiB.
pub const CONFIG_MAX: u64 = 256 * 1024;
/// The state and its copies: umm bounds every list it keeps, so its own
/// files stay well under 1 MiB.
pub const STATE_MAX: u64 = 4 * 1024 * 1024;
/// Small kernel and runtime files: /proc/cmdline, /proc/uptime, the boot
/// id, /run/umm/boot.json.
pub const SMALL_MAX: u64 = 64 * 1024;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Nothing at that path (ENOENT on the path itself).
    Absent(PathBuf),
    /// A symbolic link whose target does not exist.
    Dangling(PathBuf),
    /// Something other than a regular file (FIFO, device, socket, directory).
    NotRegular(PathBuf, &'static str),
    /// Larger than the cap for its kind.
    TooBig(PathBuf, u64),
    /// Any other error from the system (EIO, EACCES, ELOOP, ...).
    Io(PathBuf, io::Error),
}

impl ReadError {
    pub fn is_absent(&self) -> bool {
        matches!(self, ReadError::Absent(_))
    }

    /// Content problems (a file that is there and is a regular file, but
    /// too big to be umm's): as opposed to the file's kind or the system.
    pub fn is_too_big(&self) -> bool {
        matches!(self, ReadError::TooBig(..))
    }

    /// The path, and the error as a one-line message after it.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Absent(p)
            | ReadError::Dangling(p)
            | ReadError::NotRegular(p, _)
            | ReadError::TooBig(p, _)
            | ReadError::Io(p, _) => p,
        }
    }

    /// The kind of I/O error, for hints (ENOSPC, EROFS, EACCES).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            ReadError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

impl ReadError {
    /// What is wrong and what to do, without the path (it follows the path
    /// in messages: "<path> is a FIFO ...").
    pub fn what(&self) -> String {
        match self {
            ReadError::Absent(_) => "does not exist".into(),
            ReadError::Dangling(_) => {
                "is a symbolic link to a file that does not exist; fix or remove the link".into()
            }
            ReadError::NotRegular(_, kind) => {
                format!("is {kind}, not a regular file; remove it or put a regular file there")
            }
            ReadError::TooBig(_, cap) => format!(
                "is larger than {} KiB, more than umm ever writes or reads there; move it away",
                cap / 1024
            ),
            ReadError::Io(_, e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                "cannot be read: a loop of symbolic links; fix or remove the link".into()
            }
            ReadError::Io(_, e) => format!("cannot be read: {e}"),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path().display(), self.what())
    }
}

impl std::error::Error for ReadError {}

/// What a file type is called in messages.
pub fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without ever blocking, and checks that what
/// was opened is a regular file.
pub fn open_regular(path: &Path) -> Result<File, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                // ENOENT through a symbolic link that exists: the link dangles.
                if std::fs::symlink_metadata(path).is_ok() {
                    ReadError::Dangling(path.to_path_buf())
                } else {
                    ReadError::Absent(path.to_path_buf())
                }
            }
            _ => ReadError::Io(path.to_path_buf(), e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| ReadError::Io(path.to_path_buf(), e))?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(
            path.to_path_buf(),
            kind_name(meta.file_type()),
        ));
    }
    Ok(file)
}

/// Reads a regular file of at most `cap` bytes.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path)?;
    // /proc files say 0 here and still have content: the size is a hint,
    // the cap is enforced on what is actually read.
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > cap {
        return Err(ReadError::TooBig(path.to_path_buf(), cap));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(path.to_path_buf(), e))?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooBig(path.to_path_buf(), cap));
    }
    Ok(bytes)
}

/// Reads a regular text file of at most `cap` bytes; bytes that are not
/// UTF-8 are an error naming the file.
pub fn read_string(path: &Path, cap: u64) -> Result<String, ReadError> {
    let bytes = read(path, cap)?;
    String::from_utf8(bytes).map_err(|_| {
        ReadError::Io(
            path.to_path_buf(),
            io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
        )
    })
}

/// Like `read_string`, for files whose absence is normal: `Ok(None)`.
pub fn read_string_if_present(path: &Path, cap: u64) -> Result<Option<String>, ReadError> {
    match read_string(path, cap) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.is_absent() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn reads_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_string(&p, 10).unwrap(), "hello");
    }

    #[test]
    fn absent_and_dangling_differ() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none");
        assert!(read(&p, 10).unwrap_err().is_absent());
        assert_eq!(read_string_if_present(&p, 10).unwrap(), None);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("gone"), &link).unwrap();
        let e = read(&link, 10).unwrap_err();
        assert!(matches!(e, ReadError::Dangling(_)), "{e}");
        assert!(read_string_if_present(&link, 10).is_err());
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_absence() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = read(&a, 10).unwrap_err();
        assert!(!e.is_absent());
        assert!(e.to_string().contains("loop of symbolic links"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let started = Instant::now();
        let e = read(&p, 10).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        assert_eq!(e.to_string().lines().count(), 1);
    }

    #[test]
    fn a_device_is_refused_and_too_big_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read(&link, 1024).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        let e = read(&big, 1024).unwrap_err();
        assert!(e.is_too_big(), "{e}");
        assert!(e.to_string().contains("larger than 1 KiB"), "{e}");
    }
}

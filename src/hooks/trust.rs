//! Whether a hook may run as root, checked on what runs: every directory
//! from `/` down to the hook directory, and each hook, is opened without
//! following symbolic links and checked with `fstat` on the open file; the
//! caller executes that very file.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::sys::paths::Root;

/// Names run-parts also skips: editor and package-manager leftovers.
pub(super) fn skipped_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [
            ".dpkg-old",
            ".dpkg-dist",
            ".dpkg-new",
            ".dpkg-tmp",
            ".rpmsave",
            ".rpmnew",
            ".disabled",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Why an opened file or directory may not be trusted to run as root, if
/// it may not: checked on the open file (`fstat`), so what is checked is
/// what is used.
fn untrusted(fd: &OwnedFd, shown: &Path) -> Option<String> {
    let st = match fstat(fd.as_raw_fd()) {
        Ok(st) => st,
        Err(e) => return Some(format!("{} cannot be examined: {e}", shown.display())),
    };
    if st.st_uid != 0 {
        return Some(format!(
            "{} is not owned by root; chown root it",
            shown.display()
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Some(format!(
            "{} is writable by group or others; chmod go-w it",
            shown.display()
        ));
    }
    None
}

/// Opens `name` in `dir` without following a symbolic link, and without
/// blocking (a FIFO put there).
fn open_at(dir: &OwnedFd, name: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The opened hook directory, each directory from `/` down to it checked
/// (owned by root, not writable by group or others, not a symbolic link):
/// whoever may change one of them may change the hooks. `None` when it
/// does not exist: no hooks. Under a test root the walk starts at the root
/// prefix (the system's /tmp above it is world-writable).
pub(super) fn open_hook_dir(root: &Root, dir: &Path) -> Result<Option<OwnedFd>, String> {
    let top = root.path("/");
    let mut fd = match nix::fcntl::open(
        &top,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        // SAFETY: open just returned this descriptor, owned by no one else.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) => return Err(format!("/ cannot be opened: {e}")),
    };
    if let Some(why) = untrusted(&fd, Path::new("/")) {
        return Err(why);
    }
    let mut shown = PathBuf::from("/");
    for part in dir.components().skip(1) {
        let name = part.as_os_str().to_string_lossy().into_owned();
        shown.push(&name);
        fd = match open_at(&fd, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(format!(
                    "{} is a symbolic link; hooks run only from the real directory",
                    shown.display()
                ))
            }
            // O_DIRECTORY | O_NOFOLLOW on a link says ENOTDIR: tell which.
            Err(Errno::ENOTDIR) => {
                let link = nix::sys::stat::fstatat(
                    Some(fd.as_raw_fd()),
                    name.as_str(),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits());
                return Err(if link {
                    format!(
                        "{} is a symbolic link; hooks run only from the real directory",
                        shown.display()
                    )
                } else {
                    format!("{} is not a directory", shown.display())
                });
            }
            Err(e) => return Err(format!("{} cannot be opened: {e}", shown.display())),
        };
        if let Some(why) = untrusted(&fd, &shown) {
            return Err(why);
        }
    }
    Ok(Some(fd))
}

/// The names in an opened directory, without `.` and `..`.
pub(super) fn names_in(dir: &OwnedFd) -> nix::Result<Vec<String>> {
    let mut listing = nix::dir::Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// A hook file, opened and checked.
pub(super) enum Opened {
    /// Trusted and executable: run this file.
    Run(OwnedFd),
    /// May not run, and why: a failed record.
    Refused(String),
    /// Trusted, but not executable: skipped, as run-parts does.
    NotExecutable,
    /// Nothing to run: a subdirectory, or gone since the listing.
    Nothing,
}

/// Opens hook `name` of the opened directory `dir` (shown as `shown`) and
/// checks it: a regular file (not a link, FIFO or device), owned by root,
/// not writable by group or others.
pub(super) fn open_hook(dir: &OwnedFd, name: &str, shown: &Path) -> Opened {
    let file = match open_at(dir, name, OFlag::O_RDONLY) {
        Ok(file) => file,
        Err(Errno::ELOOP) => {
            return Opened::Refused(format!(
                "{} is a symbolic link; install the hook itself there, not a link",
                shown.display()
            ))
        }
        // Renamed away since the listing.
        Err(Errno::ENOENT) => return Opened::Nothing,
        Err(e) => return Opened::Refused(format!("{} cannot be opened: {e}", shown.display())),
    };
    let st = match fstat(file.as_raw_fd()) {
        Ok(st) => st,
        Err(e) => return Opened::Refused(format!("{} cannot be examined: {e}", shown.display())),
    };
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind == SFlag::S_IFDIR {
        return Opened::Nothing;
    }
    if kind != SFlag::S_IFREG {
        return Opened::Refused(format!("{} is not a regular file", shown.display()));
    }
    if let Some(why) = untrusted(&file, shown) {
        return Opened::Refused(why);
    }
    if st.st_mode & 0o111 == 0 {
        return Opened::NotExecutable;
    }
    Opened::Run(file)
}

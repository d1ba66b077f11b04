//! kexec: the facts `rules::reboot` chooses from, and loading the kernel
//! with the `kexec_file_load` system call (no kexec-tools needed; the
//! kernel checks the image's signature itself under Secure Boot).
//!
//! The kernel loaded is the boot loader's default entry's, the one a
//! firmware reboot would boot, not necessarily the running one: a kernel
//! installed during maintenance is booted by `umm off reboot` either way.
//! A load is recorded in /run/umm/kexec-loaded (`LOADED`), the marker
//! that this reboot's kernel is umm's: on sysvinit, `umm internal
//! kexec-exec` (the umm-kexec script, last in runlevel 6) boots a loaded
//! kernel only when the marker is there (`pending`, `exec`).
//! Under a test root nothing reaches the kernel: loading only writes the
//! marker, and fails with the errno written in
//! `<root>/run/umm/kexec-load-fails`, if that file exists; `exec` records
//! itself in `<root>/run/umm/kexec-executed`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::model::reboot::{Image, KEXEC_SCRIPT};
use crate::sys::fsread::{self, SMALL_MAX};
use crate::sys::paths::Root;

/// The kernel and initramfs to load, as system paths (not under the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
}

/// A kernel or initramfs written this recently may still be being written
/// (a package upgrade's postinst rebuilds the initramfs).
const SETTLE_SECONDS: i64 = 60;

/// Package managers' locks: held while they install (fcntl locks).
const PACKAGE_LOCKS: &[&str] = &[
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/rpm/.rpm.lock",
];

fn read_small(root: &Root, path: &str) -> Option<String> {
    fsread::read_string(&root.path(path), SMALL_MAX).ok()
}

/// The kernel has kexec at all (CONFIG_KEXEC_CORE).
pub fn kernel_has_kexec(root: &Root) -> bool {
    root.path("/sys/kernel/kexec_loaded").exists()
}

/// `kernel.kexec_load_disabled = 1`.
pub fn load_disabled(root: &Root) -> bool {
    read_small(root, "/proc/sys/kernel/kexec_load_disabled").is_some_and(|v| v.trim() == "1")
}

/// Lockdown is active (`[integrity]` or `[confidentiality]` selected):
/// the kernel takes only a signed image.
pub fn lockdown(root: &Root) -> bool {
    read_small(root, "/sys/kernel/security/lockdown")
        .is_some_and(|v| v.contains("[integrity]") || v.contains("[confidentiality]"))
}

/// MemAvailable from /proc/meminfo, in bytes.
pub fn mem_available(root: &Root) -> Option<u64> {
    let text = read_small(root, "/proc/meminfo")?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// This boot's command line (empty if unreadable: the kexec'd kernel then
/// boots with umm's word only, so the caller refuses an empty one).
pub fn running_cmdline(root: &Root) -> String {
    read_small(root, crate::sys::paths::CMDLINE).unwrap_or_default()
}

/// A link's target as a system path (`/vmlinuz` -> `boot/vmlinuz-6.1.0`
/// is `/boot/vmlinuz-6.1.0`), followed once; a plain file is itself.
fn resolve(root: &Root, link: &str) -> Option<PathBuf> {
    let path = Path::new(link);
    match std::fs::read_link(root.path(link)) {
        Ok(target) if target.is_absolute() => Some(target),
        Ok(target) => Some(path.parent().unwrap_or(Path::new("/")).join(target)),
        Err(_) => root.path(link).is_file().then(|| path.to_path_buf()),
    }
}

/// Debian's and Ubuntu's links to the newest kernel, the one GRUB's first
/// entry boots: `/vmlinuz` and `/initrd.img`, or the same in /boot.
fn debian_links(root: &Root) -> Option<Target> {
    ["/", "/boot/"].iter().find_map(|dir| {
        let kernel = resolve(root, &format!("{dir}vmlinuz"))?;
        let initrd = resolve(root, &format!("{dir}initrd.img"));
        Some(Target { kernel, initrd })
    })
}

/// The BLS entry GRUB's environment names (`saved_entry`, set by grubby
/// on the RHEL family when a kernel is installed).
fn bls_saved_entry(root: &Root) -> Option<Target> {
    let env = super::grubenv::read_block(root, super::grubenv::GRUB2ENV).ok()?;
    let id = env.get("saved_entry")?.trim();
    if id.is_empty() || id.contains('/') {
        return None;
    }
    let entry = format!("/boot/loader/entries/{id}.conf");
    let text = fsread::read_string(&root.path(&entry), fsread::CONFIG_MAX).ok()?;
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.trim().split_once([' ', '\t'])?;
            (k == key).then(|| v.trim().to_string())
        })
    };
    let on_boot = |p: String| {
        // Paths are relative to the partition holding the entries: /boot
        // when it is one of its own, / otherwise.
        let in_boot = PathBuf::from(format!("/boot{p}"));
        if root.join(&in_boot).is_file() {
            in_boot
        } else {
            PathBuf::from(p)
        }
    };
    Some(Target {
        kernel: on_boot(value("linux")?),
        initrd: value("initrd").map(on_boot),
    })
}

/// The running kernel's files, by its release.
fn running_kernel(root: &Root) -> Option<Target> {
    let release = read_small(root, "/proc/sys/kernel/osrelease")?;
    let release = release.trim();
    if release.is_empty() || release.contains('/') {
        return None;
    }
    let kernel = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    let initrd = [
        format!("/boot/initrd.img-{release}"),
        format!("/boot/initramfs-{release}.img"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| root.join(p).is_file());
    Some(Target { kernel, initrd })
}

/// What GRUB's environment block chooses for the next boot that a kexec
/// would bypass: a one-time entry (`grub-reboot` sets `next_entry`), or a
/// kernel that never reached userspace (`umm_failed`: GRUB boots the last
/// good kernel instead of the default, which the links still name). A
/// block that cannot be read counts too: what GRUB does is then unknown.
pub fn boot_loader_choice(root: &Root) -> Option<String> {
    let env = match super::grubenv::read(root) {
        Ok(env) => env,
        Err(why) => return Some(why),
    };
    let set = |name: &str| env.get(name).filter(|v| !v.is_empty()).map(str::to_string);
    if let Some(entry) = set("next_entry") {
        return Some(format!("a one-time entry from grub-reboot: {entry}"));
    }
    set("umm_failed").map(|kernel| {
        format!("kernel {kernel} did not reach userspace; GRUB boots the last good one")
    })
}

/// The default entry's kernel and initramfs: Debian's links, else the BLS
/// entry GRUB saved, else the running kernel's files.
pub fn default_target(root: &Root) -> Option<Target> {
    debian_links(root)
        .or_else(|| bls_saved_entry(root))
        .or_else(|| running_kernel(root))
}

/// Is `path` (a system path) a whole, settled regular file? Its size.
fn settled_size(root: &Root, path: &Path, now: i64) -> Result<u64, Image> {
    let file = fsread::open_regular(&root.join(path))
        .map_err(|e| Image::Missing(format!("the kernel to kexec: {}", e.what())))?;
    let meta = file
        .metadata()
        .map_err(|e| Image::Missing(format!("{}: {e}", path.display())))?;
    if meta.len() == 0 {
        return Err(Image::Missing(format!("{} is empty", path.display())));
    }
    let modified = std::os::unix::fs::MetadataExt::mtime(&meta);
    if now.saturating_sub(modified) < SETTLE_SECONDS {
        return Err(Image::Changing(format!(
            "{} changed less than {SETTLE_SECONDS}s ago (a package upgrade may be writing it)",
            path.display()
        )));
    }
    Ok(meta.len())
}

/// A package manager holds its lock: it may be replacing the kernel.
fn package_manager_busy(root: &Root) -> Option<&'static str> {
    PACKAGE_LOCKS.iter().copied().find(|lock| {
        File::open(root.path(lock)).is_ok_and(|f| {
            let mut query = nix::libc::flock {
                l_type: nix::libc::F_WRLCK as i16,
                l_whence: nix::libc::SEEK_SET as i16,
                l_start: 0,
                l_len: 0,
                l_pid: 0,
            };
            nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_GETLK(&mut query)).is_ok()
                && query.l_type != nix::libc::F_UNLCK as i16
        })
    })
}

/// What `rules::reboot` needs to know of the images.
pub fn image(root: &Root, target: Option<&Target>, now: i64) -> Image {
    let Some(target) = target else {
        return Image::Missing("no default boot entry's kernel was found".into());
    };
    if let Some(lock) = package_manager_busy(root) {
        return Image::Changing(format!(
            "a package manager holds {lock} (it may be replacing the kernel)"
        ));
    }
    let kernel = match settled_size(root, &target.kernel, now) {
        Ok(n) => n,
        Err(why) => return why,
    };
    let initrd = match &target.initrd {
        Some(p) => match settled_size(root, p, now) {
            Ok(n) => n,
            Err(why) => return why,
        },
        None => 0,
    };
    Image::Found {
        bytes: kernel.saturating_add(initrd),
    }
}

/// Why loading failed: the errno and its text.
#[derive(Debug)]
pub struct LoadError {
    pub errno: i32,
    pub text: String,
}

/// Loads `target` with `cmdline` for the next kexec and writes the marker
/// (`LOADED`); without the marker the load is undone. Under a test root,
/// only writes the marker (see the module's documentation).
pub fn load(root: &Root, target: &Target, cmdline: &str) -> Result<(), LoadError> {
    let kernel = fsread::open_regular(&root.join(&target.kernel)).map_err(|e| LoadError {
        errno: nix::libc::ENOENT,
        text: e.what(),
    })?;
    let initrd = match &target.initrd {
        Some(p) => Some(fsread::open_regular(&root.join(p)).map_err(|e| LoadError {
            errno: nix::libc::ENOENT,
            text: e.what(),
        })?),
        None => None,
    };
    if !root.is_system() {
        if let Some(errno) = read_small(root, LOAD_FAILS) {
            let errno = errno.trim().parse().unwrap_or(nix::libc::EINVAL);
            return Err(LoadError {
                errno,
                text: nix::errno::Errno::from_raw(errno).desc().to_string(),
            });
        }
    } else {
        let mut line = cmdline.as_bytes().to_vec();
        line.push(0);
        kexec_file_load(&kernel, initrd.as_ref(), &line, 0)?;
    }
    write_marker(root, target, cmdline).inspect_err(|_| unload(root))
}

/// Unloads what `load` loaded, and its marker (a fallback to the
/// firmware after a load).
pub fn unload(root: &Root) {
    let _ = std::fs::remove_file(root.path(LOADED));
    if !root.is_system() {
        return;
    }
    if let Ok(kernel) = File::open("/dev/null") {
        let _ = kexec_file_load(&kernel, None, b"\0", KEXEC_FILE_UNLOAD);
    }
}

/// The marker of a load by umm for this reboot: `kernel initrd cmdline`.
/// In /run, so no later boot ever sees it.
pub const LOADED: &str = "/run/umm/kexec-loaded";
/// The test root's switch: loading fails with the errno this file holds.
pub const LOAD_FAILS: &str = "/run/umm/kexec-load-fails";
/// The test root's record of `exec`.
pub const EXECUTED: &str = "/run/umm/kexec-executed";

fn write_marker(root: &Root, target: &Target, cmdline: &str) -> Result<(), LoadError> {
    let initrd = target
        .initrd
        .as_ref()
        .map_or("-".into(), |p| p.display().to_string());
    let text = format!("{} {initrd} {cmdline}\n", target.kernel.display());
    let path = root.path(LOADED);
    let io_error = |e: std::io::Error| LoadError {
        errno: e.raw_os_error().unwrap_or(nix::libc::EIO),
        text: format!("cannot write {}: {e}", path.display()),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    super::atomic::atomic_write(&path, text.as_bytes(), 0o644).map_err(io_error)
}

/// The umm-kexec script is installed and linked to run in runlevel 6
/// (`K<nn>umm-kexec` in /etc/rc6.d, as update-rc.d makes it).
pub fn kexec_script_installed(root: &Root) -> bool {
    let script = root.path(KEXEC_SCRIPT);
    let executable = std::fs::metadata(&script).is_ok_and(|m| {
        m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
    });
    let linked = std::fs::read_dir(root.path("/etc/rc6.d"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with('K') && name.ends_with("umm-kexec") && e.path().exists()
        });
    executable && linked
}

/// Whether a kernel is loaded for kexec now, and whose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Loaded by umm for this reboot (the marker's text).
    Ours(String),
    /// Nothing loaded (or /sys/kernel/kexec_loaded unreadable).
    Nothing,
    /// Loaded, but not by umm: someone else's business.
    NotOurs,
    /// umm's marker, but the kernel no longer has it loaded.
    Unloaded,
}

/// What `exec` would boot, if anything.
pub fn pending(root: &Root) -> Pending {
    let loaded = read_small(root, "/sys/kernel/kexec_loaded").is_some_and(|v| v.trim() == "1");
    match (loaded, read_small(root, LOADED)) {
        (true, Some(marker)) => Pending::Ours(marker.trim().to_string()),
        (true, None) => Pending::NotOurs,
        (false, Some(_)) => Pending::Unloaded,
        (false, None) => Pending::Nothing,
    }
}

/// Boots the loaded kernel now: `reboot(RB_KEXEC)` after a sync. Returns
/// only if the kernel refused. Under a test root, records the call.
pub fn exec(root: &Root) -> std::io::Result<()> {
    if !root.is_system() {
        return std::fs::write(root.path(EXECUTED), "kexec\n");
    }
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

const KEXEC_FILE_UNLOAD: nix::libc::c_ulong = 0x1;
const KEXEC_FILE_NO_INITRAMFS: nix::libc::c_ulong = 0x4;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn kexec_file_load(
    kernel: &File,
    initrd: Option<&File>,
    cmdline: &[u8],
    flags: nix::libc::c_ulong,
) -> Result<(), LoadError> {
    let (initrd_fd, flags) = match initrd {
        Some(f) => (f.as_raw_fd(), flags),
        None => (-1, flags | KEXEC_FILE_NO_INITRAMFS),
    };
    // SAFETY: the descriptors are open for the call's duration, and
    // `cmdline` is a live buffer of the length given, NUL-terminated.
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd_fd,
            cmdline.len() as nix::libc::c_ulong,
            cmdline.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let errno = nix::errno::Errno::last();
    Err(LoadError {
        errno: errno as i32,
        text: errno.desc().to_string(),
    })
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn kexec_file_load(
    _kernel: &File,
    _initrd: Option<&File>,
    _cmdline: &[u8],
    _flags: nix::libc::c_ulong,
) -> Result<(), LoadError> {
    Err(LoadError {
        errno: nix::libc::ENOSYS,
        text: "umm loads kernels on x86_64 and aarch64 only".into(),
    })
}

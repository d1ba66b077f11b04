//! What a planned reboot by kexec needs to know of the images it would
//! load (found by `sys::kexec`, judged by `rules::reboot`).

/// The kernel and initramfs of the entry the boot loader would boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    /// Found, whole: their size together, in bytes.
    Found { bytes: u64 },
    /// Not found, or not a regular file (what, where).
    Missing(String),
    /// Being replaced (a package upgrade is writing it, or just did).
    Changing(String),
}

/// The sysvinit script that boots the kernel umm loaded, last in
/// runlevel 6 (units/sysvinit/umm-kexec).
pub const KEXEC_SCRIPT: &str = "/etc/init.d/umm-kexec";

/// How the init system finishes a reboot into a loaded kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KexecPath {
    /// systemd: kexec.target, then systemd-shutdown boots the kernel.
    Native,
    /// sysvinit: an ordinary runlevel-6 reboot, whose stop script
    /// umm-kexec boots the kernel once the root is read-only.
    /// `script_installed`: the script is in /etc/init.d and linked in
    /// /etc/rc6.d (without it the reboot would go through the firmware).
    Runlevel6 { script_installed: bool },
    /// No kexec path in umm (upstart).
    Unsupported,
}

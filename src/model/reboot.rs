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

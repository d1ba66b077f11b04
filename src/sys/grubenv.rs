//! The GRUB environment block on disk (`/boot/grub/grubenv`; the RHEL
//! family's /boot/grub2/grubenv, which kexec reads, only read): read, and
//! replaced atomically (temp file, fsync, rename, fsync the directory, as
//! `grub-editenv` itself renames a new block into place). A block that
//! cannot be parsed is never rewritten: the caller reports it.
//!
//! umm's writers of the block (umm-boot each boot, `umm boot retry`) hold
//! the writers' lock (`sys::store::lock`, /var/lib/umm/lock) across the
//! read and the write of `update`: two of them never lose each other's
//! change. umm-boot waits for it at most `store::LOCK_WAIT`, then writes
//! without it and says so (a boot never hangs on it).

use std::path::PathBuf;

use super::atomic::atomic_write;
use super::failpoint::failpoint;
use super::fsread;
use super::paths::Root;
use crate::model::grubenv::GrubEnv;

pub const GRUBENV: &str = "/boot/grub/grubenv";
/// The block of the RHEL family's GRUB (grub2-*), read only: its
/// `saved_entry` names the BLS entry booted by default.
pub const GRUB2ENV: &str = "/boot/grub2/grubenv";

/// The block; a default (empty, 1 KiB) one when there is none yet.
/// Err: one line saying what is wrong with it and where.
pub fn read(root: &Root) -> Result<GrubEnv, String> {
    read_block(root, GRUBENV)
}

/// `read` for the block at `block` (`GRUBENV`, `GRUB2ENV`).
pub fn read_block(root: &Root, block: &str) -> Result<GrubEnv, String> {
    let path = root.path(block);
    match fsread::read(&path, fsread::SMALL_MAX) {
        Ok(bytes) => GrubEnv::parse(&bytes).map_err(|e| {
            format!(
                "{}: {e}; umm leaves it alone (recreate it with `grub-editenv {block} create`)",
                path.display()
            )
        }),
        Err(e) if e.is_absent() => Ok(GrubEnv::default()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sets `changes` in the block and writes it (nothing when `changes` is
/// empty). Err: one line, the block unchanged.
pub fn update(root: &Root, changes: &[(&str, String)]) -> Result<bool, String> {
    if changes.is_empty() {
        return Ok(false);
    }
    let mut env = read(root)?;
    failpoint("grubenv-update").map_err(|e| e.to_string())?;
    for (name, value) in changes {
        env.set(name, value);
    }
    let path: PathBuf = root.path(GRUBENV);
    let bytes = env
        .encode()
        .map_err(|e| format!("{}: {e}; umm did not change it", path.display()))?;
    atomic_write(&path, &bytes, 0o644)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}

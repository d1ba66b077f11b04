//! Boot-menu entries that boot into maintenance (`umm=on`) or skip it
//! (`umm=off`).
//!
//! - GRUB with a generated menu (Debian, Ubuntu): `grub.d/42_umm`, installed
//!   as /etc/grub.d/42_umm, adds them each time grub-mkconfig runs.
//! - GRUB reading Boot Loader Specification entries (RHEL family,
//!   `GRUB_ENABLE_BLSCFG=true`): `bls_sync` writes a copy of every entry in
//!   /boot/loader/entries for each argument; `umm internal bls-sync` runs it
//!   from the rpm scriptlets, the kernel-install plugin (`grub.d/99-umm.install`)
//!   and 42_umm.
//! - For `umm status`: `menu_entries` lists umm's entries, `boot_from_entry`
//!   tells whether this boot was started from one.
//!
//! While umm is disabled the entries are dropped, unless
//! `[grub] entries_when_disabled = true`.
//!
//! BLS entry names: `<entry>~umm_on.conf` and `<entry>~umm_off.conf` next to
//! `<entry>.conf`. GRUB's blscfg, grubby and `sort -V` order entries by
//! version, newest first, where a `~` sorts before everything, even the end
//! of the name: each kernel's normal entry stays first, followed by its
//! umm=on then umm=off entries. A `-` suffix would sort umm's entries before
//! the normal one, and then "the first entry for this kernel" (grubby
//! --set-default, GRUB's entry 0) would boot into maintenance. No `-` in the
//! suffix, so that splitting a name at its last two `-` (older blscfg) still
//! sees the kernel's own version.

use crate::rules::CmdlineRequest;
use crate::sys::paths::{self, Root};
use crate::sys::{config, store};

mod bls;
mod grub_cfg;
mod menu;
pub mod sdboot;

pub use bls::{bls_sync, bls_variant, bls_variant_name, bls_variant_of, Report, BLS_DIR};
pub use grub_cfg::{grub_cfg_entries, GRUB_CFGS};
pub use menu::{boot_counting, counting_in_grub_cfg, menu_entries, Counting, COUNTING_MARKER};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Boots with `umm=on`: maintenance for that boot.
    On,
    /// Boots with `umm=off`: skips maintenance for that boot.
    Off,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::On, Kind::Off];

    /// The kernel argument.
    pub fn arg(self) -> &'static str {
        match self {
            Kind::On => "umm=on",
            Kind::Off => "umm=off",
        }
    }

    /// Appended to the title of the entry it copies (as 42_umm does).
    pub fn title_suffix(self) -> &'static str {
        match self {
            Kind::On => ", maintenance mode (umm)",
            Kind::Off => ", skip maintenance (umm=off)",
        }
    }

    /// Prefix of the menu ids 42_umm gives its entries.
    pub(crate) fn id_prefix(self) -> &'static str {
        match self {
            Kind::On => "umm-on-",
            Kind::Off => "umm-off-",
        }
    }

    /// Appended to the BLS file stem (see the module comment for the order).
    pub(crate) fn bls_suffix(self) -> &'static str {
        match self {
            Kind::On => "~umm_on",
            Kind::Off => "~umm_off",
        }
    }
}

/// One of umm's boot-menu entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MenuEntry {
    /// The title shown in the menu.
    pub title: String,
    pub kind: Kind,
    /// What `grub-reboot` / `grub2-reboot` accepts to boot it once: the menu
    /// ids (titles where an entry has none) joined by `>`, or the BLS id.
    pub id: String,
}

/// `umm=on` or `umm=off` when this boot's command line (/proc/cmdline)
/// carries umm's argument, as umm reads it (the last one wins).
pub fn boot_from_entry(cmdline: &str) -> Option<&'static str> {
    match CmdlineRequest::parse(cmdline) {
        CmdlineRequest::On => Some(Kind::On.arg()),
        CmdlineRequest::Off => Some(Kind::Off.arg()),
        CmdlineRequest::None => None,
    }
}

// ---------------------------------------------------------------------------
// BLS entries

/// Whether umm's entries belong in the menu: umm is enabled (configuration
/// and switch), or `[grub] entries_when_disabled` keeps them anyway.
pub fn entries_wanted(root: &Root) -> bool {
    let settings = config::load_or_defaults(root);
    let switch_on = store::read(&root.path(paths::STATE)).state.switch_on;
    (settings.enabled && switch_on) || settings.grub_entries_when_disabled
}

#[cfg(test)]
mod tests;

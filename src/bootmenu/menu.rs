//! Listing umm's entries in the boot menu, for `umm status`.

use std::fs;

use super::bls::{bls_key_value, bls_variant_of, BLS_DIR};
use super::grub_cfg::{grub_cfg_entries, GRUB_CFGS};
use super::MenuEntry;
use crate::sys::fsread;
use crate::sys::paths::Root;

/// A generated grub.cfg lists every kernel, each with its submenu entries.
const MENU_MAX: u64 = 4 * 1024 * 1024;

/// umm's entries in the GRUB menu (/boot/grub/grub.cfg, /boot/grub2/grub.cfg)
/// and in /boot/loader/entries, each once.
pub fn menu_entries(root: &Root) -> Vec<MenuEntry> {
    let mut entries: Vec<MenuEntry> = Vec::new();
    let mut push = |e: MenuEntry| {
        if !entries.iter().any(|x| x.id == e.id && x.kind == e.kind) {
            entries.push(e);
        }
    };
    for cfg in GRUB_CFGS {
        if let Ok(text) = fsread::read_string(&root.path(cfg), MENU_MAX) {
            grub_cfg_entries(&text).into_iter().for_each(&mut push);
        }
    }
    let dir = root.path(BLS_DIR);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let Some((_, kind)) = bls_variant_of(&name) else {
            continue;
        };
        let Ok(text) = fsread::read_string(&dir.join(&name), fsread::CONFIG_MAX) else {
            continue;
        };
        let id = name.trim_end_matches(".conf").to_string();
        let title = text
            .lines()
            .map(bls_key_value)
            .find(|(key, _)| *key == "title")
            .map_or_else(|| id.clone(), |(_, title)| title.to_string());
        push(MenuEntry { title, kind, id });
    }
    entries
}

/// Whether the boot loader counts boots that never reach userspace
/// (docs/boot-flow.md): the line `grub.d/42_umm` wrote in grub.cfg, or
/// systemd-boot's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Counting {
    /// GRUB counts in its environment block.
    On,
    /// systemd-boot counts in the names of the entries in this directory
    /// (`rules::sdboot`).
    Entries(String),
    /// Not here; why, in one line.
    Off(String),
}

impl Counting {
    pub fn is_on(&self) -> bool {
        !matches!(self, Counting::Off(_))
    }

    /// GRUB counts (its environment block).
    pub fn is_grub(&self) -> bool {
        *self == Counting::On
    }

    /// Which boot loader counts, and where; None when none does.
    pub fn by(&self) -> Option<String> {
        match self {
            Counting::On => Some("GRUB environment block".to_string()),
            Counting::Entries(dir) => Some(format!("systemd-boot entries in {dir}")),
            Counting::Off(_) => None,
        }
    }
}

/// The marker `grub.d/42_umm` writes in grub.cfg.
pub const COUNTING_MARKER: &str = "# umm: boot-loader counting ";

/// What a grub.cfg's text says about counting, if it says anything.
pub fn counting_in_grub_cfg(text: &str) -> Option<Counting> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(COUNTING_MARKER)?;
        Some(match rest.strip_prefix("off: ") {
            Some(why) => Counting::Off(why.to_string()),
            None if rest.trim() == "on" => Counting::On,
            None => Counting::Off(format!("unknown marker in grub.cfg: {rest}")),
        })
    })
}

/// Whether a boot loader counts boots on this system: GRUB, from its
/// grub.cfg, or systemd-boot where it is installed.
pub fn boot_counting(root: &Root) -> Counting {
    let grub = grub_counting(root);
    if grub.is_grub() {
        return grub;
    }
    match super::sdboot::entries_dir(root) {
        Some((dir, _)) => Counting::Entries(dir.to_string()),
        None => grub,
    }
}

/// Whether GRUB counts boots on this system, from its grub.cfg.
fn grub_counting(root: &Root) -> Counting {
    for cfg in GRUB_CFGS {
        if let Ok(text) = fsread::read_string(&root.path(cfg), MENU_MAX) {
            if let Some(c) = counting_in_grub_cfg(&text) {
                return c;
            }
            if root.path(BLS_DIR).is_dir() && text.contains("blscfg") {
                break;
            }
            return Counting::Off(format!(
                "{cfg} has no counting code from umm (run update-grub)"
            ));
        }
    }
    if root.path(BLS_DIR).is_dir() {
        return Counting::Off(
            "GRUB reads Boot Loader Specification entries (blscfg), where umm does not count; it counts with GRUB's generated menu and with systemd-boot"
                .to_string(),
        );
    }
    Counting::Off("no GRUB menu (/boot/grub/grub.cfg) was found".to_string())
}

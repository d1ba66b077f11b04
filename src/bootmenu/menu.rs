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

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

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::rules::CmdlineRequest;
use crate::sys::atomic::atomic_write;
use crate::sys::paths::{self, Root};
use crate::sys::{config, fsread, store};

pub const BLS_DIR: &str = "/boot/loader/entries";
/// A generated grub.cfg lists every kernel, each with its submenu entries.
const MENU_MAX: u64 = 4 * 1024 * 1024;
pub const GRUB_CFGS: &[&str] = &["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

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
    fn id_prefix(self) -> &'static str {
        match self {
            Kind::On => "umm-on-",
            Kind::Off => "umm-off-",
        }
    }

    /// Appended to the BLS file stem (see the module comment for the order).
    fn bls_suffix(self) -> &'static str {
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

/// The file name of an entry's umm variant: `x.conf` -> `x~umm_on.conf`.
pub fn bls_variant_name(base: &str, kind: Kind) -> String {
    let stem = base.strip_suffix(".conf").unwrap_or(base);
    format!("{stem}{}.conf", kind.bls_suffix())
}

/// For a variant's file name, the base entry's file name and the kind.
pub fn bls_variant_of(name: &str) -> Option<(String, Kind)> {
    let stem = name.strip_suffix(".conf")?;
    Kind::ALL.into_iter().find_map(|kind| {
        let base = stem.strip_suffix(kind.bls_suffix())?;
        (!base.is_empty()).then(|| (format!("{base}.conf"), kind))
    })
}

/// Whether umm makes variants of this entry: not of its own, nor of the
/// rescue entry (a generic kernel kept for emergencies).
fn wants_variants(name: &str) -> bool {
    name.ends_with(".conf")
        && !name.starts_with('.')
        && bls_variant_of(name).is_none()
        && !name.contains("-0-rescue")
}

/// A BLS line's key and value (separated by spaces or tabs).
fn bls_key_value(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    line.split_once([' ', '\t'])
        .map_or((line, ""), |(k, v)| (k, v.trim()))
}

/// The text of the `kind` variant of the BLS entry `base` (file `base_name`):
/// the title gets umm's suffix, `options` gets the argument (any umm argument
/// already there is dropped), `id` gets the file suffix; every other line is
/// kept as it is.
pub fn bls_variant(base: &str, base_name: &str, kind: Kind) -> String {
    let mut out = format!(
        "# Written by umm (umm internal bls-sync) from {base_name}; changes are overwritten.\n"
    );
    let (mut title, mut options) = (false, false);
    for line in base.lines() {
        let (key, value) = bls_key_value(line);
        match key {
            "title" if !title => {
                title = true;
                out += &format!("title {value}{}\n", kind.title_suffix());
            }
            "options" if !options => {
                options = true;
                let mut words: Vec<&str> = value
                    .split_ascii_whitespace()
                    .filter(|w| *w != "umm" && !w.starts_with("umm="))
                    .collect();
                words.push(kind.arg());
                out += &format!("options {}\n", words.join(" "));
            }
            "id" => out += &format!("id {value}{}\n", kind.bls_suffix()),
            _ => {
                out += line;
                out.push('\n');
            }
        }
    }
    if !title {
        let stem = base_name.strip_suffix(".conf").unwrap_or(base_name);
        out += &format!("title {stem}{}\n", kind.title_suffix());
    }
    if !options {
        out += &format!("options {}\n", kind.arg());
    }
    out
}

/// What `bls_sync` changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub written: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    pub unchanged: usize,
}

/// Whether umm's entries belong in the menu: umm is enabled (configuration
/// and switch), or `[grub] entries_when_disabled` keeps them anyway.
pub fn entries_wanted(root: &Root) -> bool {
    let settings = config::load_or_defaults(root);
    let switch_on = store::read(&root.path(paths::STATE)).state.switch_on;
    (settings.enabled && switch_on) || settings.grub_entries_when_disabled
}

/// Brings umm's entries in /boot/loader/entries up to date: both variants
/// of every entry (written only when they differ), none for entries that
/// are gone, and none at all when `remove` is set or umm's entries are not
/// wanted. Nothing to do without that directory (not a BLS system).
pub fn bls_sync(root: &Root, remove: bool) -> Result<Report> {
    let dir = root.path(BLS_DIR);
    let mut report = Report::default();
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let names: BTreeSet<String> = listing
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let keep = !remove && entries_wanted(root);
    for name in &names {
        if let Some((base, _)) = bls_variant_of(name) {
            if !keep || !names.contains(&base) || !wants_variants(&base) {
                let path = dir.join(name);
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                report.removed.push(path);
            }
        }
    }
    if !keep {
        return Ok(report);
    }
    for base in names.iter().filter(|n| wants_variants(n)) {
        let base_path = dir.join(base);
        let (text, mode) = match fsread::read_string(&base_path, fsread::CONFIG_MAX)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                let mode = fs::metadata(&base_path)
                    .map_err(|e| e.to_string())?
                    .permissions()
                    .mode()
                    & 0o777;
                Ok((text, mode))
            }) {
            Ok(read) => read,
            Err(e) => {
                log::warn!("skipping {}: {e}", base_path.display());
                continue;
            }
        };
        for kind in Kind::ALL {
            let path = dir.join(bls_variant_name(base, kind));
            let variant = bls_variant(&text, base, kind);
            if fsread::read_string(&path, fsread::CONFIG_MAX)
                .ok()
                .as_deref()
                == Some(variant.as_str())
            {
                report.unchanged += 1;
                continue;
            }
            atomic_write(&path, variant.as_bytes(), mode)
                .with_context(|| format!("cannot write {}", path.display()))?;
            report.written.push(path);
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// Listing umm's entries

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

/// umm's entries in the text of a grub.cfg: menu entries whose id has umm's
/// prefix or whose title has umm's suffix.
pub fn grub_cfg_entries(text: &str) -> Vec<MenuEntry> {
    // Open blocks: Some(path component) for menu entries and submenus.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line == "}" {
            stack.pop();
            continue;
        }
        let entry = line.strip_prefix("menuentry ").map(|rest| (rest, true));
        let submenu = line.strip_prefix("submenu ").map(|rest| (rest, false));
        let Some((rest, is_entry)) = entry.or(submenu) else {
            if line.ends_with('{') {
                stack.push(None);
            }
            continue;
        };
        let Some((title, after)) = grub_word(rest) else {
            continue;
        };
        let id = after
            .split_once("$menuentry_id_option")
            .and_then(|(_, r)| grub_word(r))
            .map(|(id, _)| id);
        let component = id.clone().unwrap_or_else(|| title.replace('>', ">>"));
        if is_entry {
            let kind = Kind::ALL.into_iter().find(|k| {
                id.as_deref().is_some_and(|i| i.starts_with(k.id_prefix()))
                    || title.ends_with(k.title_suffix())
            });
            if let Some(kind) = kind {
                let mut path: Vec<&str> = stack.iter().flatten().map(String::as_str).collect();
                path.push(&component);
                found.push(MenuEntry {
                    title: title.clone(),
                    kind,
                    id: path.join(">"),
                });
            }
        }
        if line.ends_with('{') {
            stack.push(Some(component));
        }
    }
    found
}

/// The first word of a GRUB script line, unquoted ('...', "...", \x), and
/// the rest of the line.
fn grub_word(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let mut word = String::new();
    let mut chars = s.char_indices();
    let mut quote: Option<char> = None;
    let mut end = s.len();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                end = i;
                break;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None | Some('"'), '\\') => word.extend(chars.next().map(|(_, c)| c)),
            (_, c) => word.push(c),
        }
    }
    (!word.is_empty() || end > 0).then(|| (word, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RHEL_ENTRY: &str = include_str!("../../tests/fixtures/rhel9-bls-entry.conf");
    const RHEL_NAME: &str = "3f5c8a1e2b7d4c6f9a0b1c2d3e4f5a6b-5.14.0-362.8.1.el9_3.x86_64.conf";

    #[test]
    fn bls_variants_change_title_and_options_and_keep_the_rest() {
        let on = bls_variant(RHEL_ENTRY, RHEL_NAME, Kind::On);
        let lines: Vec<&str> = on.lines().collect();
        assert!(lines[0].starts_with("# Written by umm") && lines[0].contains(RHEL_NAME));
        assert_eq!(
            lines[1],
            "title Red Hat Enterprise Linux (5.14.0-362.8.1.el9_3.x86_64) 9.3 (Plow), maintenance mode (umm)"
        );
        assert_eq!(
            lines[5],
            "options root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M \
             resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap $tuned_params umm=on"
        );
        // version, linux, initrd and the grub_* keys are kept as they are.
        let base: Vec<&str> = RHEL_ENTRY.lines().collect();
        for i in [1, 2, 3, 5, 6, 7] {
            assert_eq!(lines[i + 1], base[i]);
        }
        assert_eq!(lines.len(), base.len() + 1);

        let off = bls_variant(RHEL_ENTRY, RHEL_NAME, Kind::Off);
        assert!(off.contains("9.3 (Plow), skip maintenance (umm=off)\n"));
        assert!(off.contains(" $tuned_params umm=off\n"));
    }

    #[test]
    fn bls_variant_replaces_umm_arguments_and_suffixes_ids() {
        let base = "title T\nid rhel-20231101-5.14\noptions $kernelopts umm=off umm quiet\n";
        let on = bls_variant(base, "x.conf", Kind::On);
        assert!(on.contains("\noptions $kernelopts quiet umm=on\n"), "{on}");
        assert!(on.contains("\nid rhel-20231101-5.14~umm_on\n"), "{on}");
        // Without title or options, both are added.
        let bare = bls_variant("linux /vmlinuz-1\n", "m-1.conf", Kind::Off);
        assert!(bare.ends_with(
            "linux /vmlinuz-1\ntitle m-1, skip maintenance (umm=off)\noptions umm=off\n"
        ));
    }

    #[test]
    fn bls_names_round_trip_and_sort_after_their_kernel() {
        let on = bls_variant_name(RHEL_NAME, Kind::On);
        assert!(on.ends_with("x86_64~umm_on.conf"));
        assert_eq!(bls_variant_of(&on), Some((RHEL_NAME.to_string(), Kind::On)));
        assert_eq!(
            bls_variant_of(&bls_variant_name(RHEL_NAME, Kind::Off)),
            Some((RHEL_NAME.to_string(), Kind::Off))
        );
        assert_eq!(bls_variant_of(RHEL_NAME), None);
        assert_eq!(bls_variant_of("~umm_on.conf"), None);
        assert!(!on.trim_end_matches(".conf").contains("~umm-"));
        assert!(!wants_variants(&on));
        assert!(!wants_variants("3f5c-0-rescue-3f5c.conf"));
        assert!(wants_variants(RHEL_NAME));
    }

    fn bls_root(entries: &[(&str, &str)]) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        fs::create_dir_all(root.path(BLS_DIR)).unwrap();
        for (name, text) in entries {
            fs::write(root.path(BLS_DIR).join(name), text).unwrap();
        }
        (dir, root)
    }

    fn listing(root: &Root) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.path(BLS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn bls_sync_writes_variants_and_removes_orphans() {
        let old = "m-5.14.0-70.el9.x86_64.conf";
        let (_d, root) = bls_root(&[
            (RHEL_NAME, RHEL_ENTRY),
            (
                "m-0-rescue-m.conf",
                "title rescue\nlinux /vmlinuz-0-rescue-m\n",
            ),
            (&bls_variant_name(old, Kind::On), "title stale\n"),
        ]);
        let r = bls_sync(&root, false).unwrap();
        assert_eq!((r.written.len(), r.removed.len(), r.unchanged), (2, 1, 0));
        assert_eq!(
            listing(&root),
            [
                RHEL_NAME.to_string(),
                bls_variant_name(RHEL_NAME, Kind::Off),
                bls_variant_name(RHEL_NAME, Kind::On),
                "m-0-rescue-m.conf".to_string(),
            ]
        );
        let on = fs::read_to_string(
            root.path(BLS_DIR)
                .join(bls_variant_name(RHEL_NAME, Kind::On)),
        );
        assert_eq!(on.unwrap(), bls_variant(RHEL_ENTRY, RHEL_NAME, Kind::On));
        // A second run changes nothing.
        let r = bls_sync(&root, false).unwrap();
        assert_eq!((r.written.len(), r.removed.len(), r.unchanged), (0, 0, 2));
        // The kernel goes: so do its variants.
        fs::remove_file(root.path(BLS_DIR).join(RHEL_NAME)).unwrap();
        let r = bls_sync(&root, false).unwrap();
        assert_eq!(r.removed.len(), 2);
        assert_eq!(listing(&root), ["m-0-rescue-m.conf"]);
    }

    #[test]
    fn bls_sync_removes_everything_when_disabled_or_asked() {
        let (_d, root) = bls_root(&[(RHEL_NAME, RHEL_ENTRY)]);
        bls_sync(&root, false).unwrap();
        assert_eq!(listing(&root).len(), 3);
        assert_eq!(bls_sync(&root, true).unwrap().removed.len(), 2);
        assert_eq!(listing(&root), [RHEL_NAME]);

        let config = root.path(paths::CONFIG);
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(&config, "enabled = false\n").unwrap();
        assert!(!entries_wanted(&root));
        assert!(bls_sync(&root, false).unwrap().written.is_empty());
        fs::write(
            &config,
            "enabled = false\n[grub]\nentries_when_disabled = true\n",
        )
        .unwrap();
        assert!(entries_wanted(&root));
        assert_eq!(bls_sync(&root, false).unwrap().written.len(), 2);
    }

    #[test]
    fn bls_sync_without_entries_dir_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            bls_sync(&Root::new(dir.path()), false).unwrap(),
            Report::default()
        );
    }

    const GRUB_CFG: &str = r#"
### BEGIN /etc/grub.d/10_linux ###
function gfxmode {
	set gfxpayload="${1}"
}
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option 'gnulinux-simple-0e9f' {
	linux	/vmlinuz-6.1.0-2-amd64 root=UUID=0e9f ro quiet
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-0e9f' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-2-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-2-amd64-advanced-0e9f' {
		linux	/vmlinuz-6.1.0-2-amd64 root=UUID=0e9f ro quiet
	}
}
### END /etc/grub.d/10_linux ###
### BEGIN /etc/grub.d/42_umm ###
menuentry 'Debian GNU/Linux, maintenance mode (umm)' --class debian $menuentry_id_option 'umm-on-gnulinux-simple-0e9f' {
	linux	/vmlinuz-6.1.0-2-amd64 root=UUID=0e9f ro quiet umm=on
}
submenu 'Advanced options for Debian GNU/Linux, maintenance mode (umm)' $menuentry_id_option 'umm-on-gnulinux-advanced-0e9f' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-2-amd64, maintenance mode (umm)' --class debian $menuentry_id_option 'umm-on-gnulinux-6.1.0-2-amd64-advanced-0e9f' {
		if [ x$grub_platform = xxen ]; then insmod xzio; fi
		linux	/vmlinuz-6.1.0-2-amd64 root=UUID=0e9f ro quiet umm=on
	}
}
menuentry 'Bob'\''s GNU/Linux, skip maintenance (umm=off)' --class bob {
	linux	/vmlinuz-6.1.0-2-amd64 root=UUID=0e9f ro quiet umm=off
}
### END /etc/grub.d/42_umm ###
"#;

    #[test]
    fn grub_cfg_lists_umm_entries_with_their_reboot_ids() {
        let found = grub_cfg_entries(GRUB_CFG);
        assert_eq!(
            found,
            [
                MenuEntry {
                    title: "Debian GNU/Linux, maintenance mode (umm)".into(),
                    kind: Kind::On,
                    id: "umm-on-gnulinux-simple-0e9f".into(),
                },
                MenuEntry {
                    title: "Debian GNU/Linux, with Linux 6.1.0-2-amd64, maintenance mode (umm)"
                        .into(),
                    kind: Kind::On,
                    id: "umm-on-gnulinux-advanced-0e9f>umm-on-gnulinux-6.1.0-2-amd64-advanced-0e9f"
                        .into(),
                },
                MenuEntry {
                    title: "Bob's GNU/Linux, skip maintenance (umm=off)".into(),
                    kind: Kind::Off,
                    id: "Bob's GNU/Linux, skip maintenance (umm=off)".into(),
                },
            ]
        );
    }

    #[test]
    fn menu_entries_reads_grub_cfg_and_bls_once_each() {
        let (_d, root) = bls_root(&[(RHEL_NAME, RHEL_ENTRY)]);
        bls_sync(&root, false).unwrap();
        fs::create_dir_all(root.path("/boot/grub2")).unwrap();
        fs::create_dir_all(root.path("/boot/grub")).unwrap();
        fs::write(root.path("/boot/grub/grub.cfg"), GRUB_CFG).unwrap();
        std::os::unix::fs::symlink("../grub/grub.cfg", root.path("/boot/grub2/grub.cfg")).unwrap();
        let found = menu_entries(&root);
        assert_eq!(found.len(), 5, "{found:#?}");
        let stem = RHEL_NAME.trim_end_matches(".conf");
        assert_eq!(found[3].id, format!("{stem}~umm_off"));
        assert_eq!(found[3].kind, Kind::Off);
        assert!(found[4]
            .title
            .ends_with("9.3 (Plow), maintenance mode (umm)"));
        assert_eq!(found[4].kind, Kind::On);
        assert!(menu_entries(&Root::new("/nonexistent-umm-root")).is_empty());
    }

    #[test]
    fn boot_from_entry_reads_the_command_line() {
        let cmdline = "BOOT_IMAGE=/vmlinuz-6.1.0-2-amd64 root=UUID=0e9f ro quiet";
        assert_eq!(boot_from_entry(cmdline), None);
        assert_eq!(
            boot_from_entry(&format!("{cmdline} umm=on")),
            Some("umm=on")
        );
        assert_eq!(
            boot_from_entry(&format!("{cmdline} umm=off\n")),
            Some("umm=off")
        );
        assert_eq!(boot_from_entry("umm=off umm"), Some("umm=on"));
        assert_eq!(boot_from_entry("dummy=on"), None);
    }

    #[test]
    fn grub_word_unquotes() {
        assert_eq!(
            grub_word(" 'a b'\\''c' --class x"),
            Some(("a b'c".into(), " --class x"))
        );
        assert_eq!(grub_word("\"x\\\"y\" z"), Some(("x\"y".into(), " z")));
        assert_eq!(grub_word("plain{"), Some(("plain{".into(), "")));
        assert_eq!(grub_word("   "), None);
    }
}

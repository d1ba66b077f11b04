//! The boot menu's tests: BLS variants and their sync, grub.cfg, listing.

use super::bls::wants_variants;
use super::grub_cfg::grub_word;
use super::*;
use std::fs;

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
    assert!(bare
        .ends_with("linux /vmlinuz-1\ntitle m-1, skip maintenance (umm=off)\noptions umm=off\n"));
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
                title: "Debian GNU/Linux, with Linux 6.1.0-2-amd64, maintenance mode (umm)".into(),
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

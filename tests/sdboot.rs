//! Boot counting with systemd-boot (docs/boot-flow.md, "systemd-boot"):
//! umm's side against entry directories built in a temporary root. There
//! is no UEFI VM lab: systemd-boot's own part (renaming an entry on each
//! attempt, the menu order) is played here from its source, as
//! `umm::rules::sdboot` implements it (`boot_entry_compare`,
//! `boot_entry_parse_tries` in src/boot/efi/boot.c), and the order is
//! asserted on the directory umm leaves.

mod common;

use std::fs;

use common::Node;
use umm::rules::sdboot::{menu_order, split_name, Entry};

const DIR: &str = "/boot/loader/entries";

fn entry_text(version: &str) -> String {
    format!(
        "title      Debian GNU/Linux 12 (bookworm)\nversion    {version}\nmachine-id abc123\nsort-key   debian\noptions    root=/dev/vda1 ro quiet\nlinux      /abc123/{version}/linux\ninitrd     /abc123/{version}/initrd.img-{version}\n"
    )
}

/// A node with systemd-boot installed, one kernel's entry, running it.
fn sdboot_node(kernel: &str) -> Node {
    let node = Node::new();
    node.write("/boot/efi/loader/loader.conf", "timeout 3\n");
    node.write(&format!("{DIR}/abc123-{kernel}.conf"), &entry_text(kernel));
    node.write("/proc/sys/kernel/osrelease", &format!("{kernel}\n"));
    node
}

/// kernel-install adds a kernel's entry, then runs umm's plugin.
fn install_kernel(node: &Node, kernel: &str) {
    node.write(&format!("{DIR}/abc123-{kernel}.conf"), &entry_text(kernel));
    node.expect(0, &["internal", "bls-sync"]);
}

/// systemd-boot's menu as it would order this directory; the first is
/// what it boots.
fn menu(node: &Node) -> Vec<String> {
    let entries: Vec<Entry> = node
        .names(DIR)
        .into_iter()
        .filter(|n| n.ends_with(".conf"))
        .map(|n| Entry::parse(&n, &node.read(&format!("{DIR}/{n}"))))
        .collect();
    menu_order(&entries)
        .iter()
        .map(|e| e.name.clone())
        .collect()
}

/// systemd-boot boots the first entry: a counted one is renamed
/// `+LEFT-DONE` -> `+(LEFT-1)-(DONE+1)` before the kernel starts.
fn attempt(node: &Node) -> String {
    let first = menu(node).remove(0);
    let (stem, counter) = split_name(&first).unwrap();
    if let Some(c) = counter {
        let next = format!("{stem}+{}-{}.conf", c.left.saturating_sub(1), c.done + 1);
        fs::rename(
            node.path(&format!("{DIR}/{first}")),
            node.path(&format!("{DIR}/{next}")),
        )
        .unwrap();
        return next;
    }
    first
}

/// The first boot records the running kernel as the last good one; then
/// a new kernel is installed.
fn node_with_new_kernel() -> Node {
    let mut node = sdboot_node("6.1.0-2-amd64");
    node.boot();
    install_kernel(&node, "6.1.0-3-amd64");
    node
}

#[test]
fn a_new_kernel_gets_its_tries_and_the_fallback_sits_below_it() {
    let node = node_with_new_kernel();
    let m = menu(&node);
    assert_eq!(m[0], "abc123-6.1.0-3-amd64+3.conf", "{m:?}");
    assert_eq!(m[1], "abc123-6.1.0-3-amd64~umm_fallback.conf", "{m:?}");
    assert_eq!(m[2], "abc123-6.1.0-2-amd64.conf", "{m:?}");
    // No variants of a kernel not proven yet.
    assert!(
        !m.iter()
            .any(|n| n.starts_with("abc123-6.1.0-3-amd64~umm_o")),
        "{m:?}"
    );
    let fallback = node.read(&format!("{DIR}/abc123-6.1.0-3-amd64~umm_fallback.conf"));
    assert!(
        fallback.contains("linux      /abc123/6.1.0-2-amd64/linux\n"),
        "{fallback}"
    );
    assert!(
        fallback.contains("options root=/dev/vda1 ro quiet umm=on umm.why=boot-failure\n"),
        "{fallback}"
    );
    assert!(
        fallback.contains("version 6.1.0-3-amd64~umm\n"),
        "{fallback}"
    );
    // Running it again changes nothing.
    let before = node.names(DIR);
    node.expect(0, &["internal", "bls-sync"]);
    assert_eq!(node.names(DIR), before);
    let s = node.status();
    assert_eq!(
        s["boot_menu"]["counting"]["by"],
        "systemd-boot entries in /boot/loader/entries"
    );
    let text = node.expect(0, &["status"]);
    assert!(text.contains("Boot loader:  counts boots that never reach userspace (systemd-boot entries in /boot/loader/entries)"), "{text}");
}

#[test]
fn a_good_new_kernel_is_blessed_and_becomes_the_last_good_one() {
    let mut node = node_with_new_kernel();
    assert_eq!(attempt(&node), "abc123-6.1.0-3-amd64+2-1.conf");
    node.write("/proc/sys/kernel/osrelease", "6.1.0-3-amd64\n");
    node.boot();
    let m = menu(&node);
    assert_eq!(m[0], "abc123-6.1.0-3-amd64.conf", "{m:?}");
    // Its variants come back; the fallback is now 6.1.0-3's maintenance.
    node.expect(0, &["internal", "bls-sync"]);
    let m = menu(&node);
    assert_eq!(
        &m[..4],
        [
            "abc123-6.1.0-3-amd64.conf",
            "abc123-6.1.0-3-amd64~umm_on.conf",
            "abc123-6.1.0-3-amd64~umm_off.conf",
            "abc123-6.1.0-3-amd64~umm_fallback.conf",
        ],
        "{m:?}"
    );
    let fallback = node.read(&format!("{DIR}/abc123-6.1.0-3-amd64~umm_fallback.conf"));
    assert!(
        fallback.contains("/abc123/6.1.0-3-amd64/linux"),
        "{fallback}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&node.read("/var/lib/umm/sd-boot.json")).unwrap();
    assert_eq!(record["good"], "6.1.0-3-amd64");
    assert!(node.status()["boot_menu"]["boot_failure"].is_null());
}

#[test]
fn a_new_kernel_that_never_reaches_userspace_ends_in_maintenance_on_the_good_one() {
    let mut node = node_with_new_kernel();
    // Three attempts that never reach userspace: umm-boot never runs.
    for left in [2, 1, 0] {
        assert_eq!(
            attempt(&node),
            format!("abc123-6.1.0-3-amd64+{left}-{}.conf", 3 - left)
        );
    }
    // The bad entry went last: the fallback is the default.
    let m = menu(&node);
    assert_eq!(m[0], "abc123-6.1.0-3-amd64~umm_fallback.conf", "{m:?}");
    assert_eq!(m.last().unwrap(), "abc123-6.1.0-3-amd64+0-3.conf", "{m:?}");
    fs::create_dir_all(node.path("/var/lib/prometheus/node-exporter")).unwrap();
    node.write(
        "/proc/cmdline",
        "root=/dev/vda1 ro quiet umm=on umm.why=boot-failure\n",
    );
    node.boot();
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["reason"].as_str()),
        (Some("maintenance"), Some("boot-failure"))
    );
    let failure = &s["boot_menu"]["boot_failure"];
    assert_eq!(failure["kernel"], "6.1.0-3-amd64");
    assert_eq!(failure["attempts"], 3);
    assert_eq!(failure["good_kernel"], "6.1.0-2-amd64");
    assert!(failure["since"].is_string(), "{failure}");
    let text = node.expect(0, &["status"]);
    assert!(
        text.contains("systemd-boot boots 6.1.0-2-amd64 instead"),
        "{text}"
    );
    let journal = node.read("/run/umm/journal.log");
    assert!(
        journal.contains("systemd-boot gave up on kernel 6.1.0-3-amd64 after 3 attempts"),
        "{journal}"
    );
    let prom = node.read("/var/lib/prometheus/node-exporter/umm.prom");
    assert!(
        prom.contains("umm_maintenance_entered_total{reason=\"boot-failure\"} 1\n"),
        "{prom}"
    );
    // No new loop: after umm off the fallback boots the good kernel normally.
    node.write("/proc/cmdline", "root=/dev/vda1 ro quiet\n");
    node.expect(0, &["off"]);
    let m = menu(&node);
    assert_eq!(m[0], "abc123-6.1.0-3-amd64~umm_fallback.conf", "{m:?}");
    let fallback = node.read(&format!("{DIR}/{}", m[0]));
    assert!(
        fallback.contains("options root=/dev/vda1 ro quiet\n"),
        "{fallback}"
    );
    assert!(fallback.contains(", last good kernel (umm)"), "{fallback}");
    // umm boot retry: a fresh count, the fallback armed again.
    let out = node.expect(0, &["boot", "retry"]);
    assert!(
        out.contains("systemd-boot boots the maintenance entry of 6.1.0-2-amd64 again"),
        "{out}"
    );
    let m = menu(&node);
    assert_eq!(m[0], "abc123-6.1.0-3-amd64+3.conf", "{m:?}");
    assert!(node
        .read(&format!("{DIR}/{}", m[1]))
        .contains("umm.why=boot-failure"));
    assert!(node.status()["boot_menu"]["boot_failure"].is_null());
}

#[test]
fn disabled_umm_removes_its_counters_and_its_fallback_and_keeps_an_admins() {
    let node = node_with_new_kernel();
    // The administrator counts a kernel of their own.
    node.write(
        &format!("{DIR}/abc123-6.1.0-4-amd64+5.conf"),
        &entry_text("6.1.0-4-amd64"),
    );
    node.expect(0, &["internal", "bls-sync"]);
    assert!(node.exists(&format!("{DIR}/abc123-6.1.0-4-amd64+5.conf")));
    assert!(node.exists(&format!("{DIR}/abc123-6.1.0-4-amd64~umm_fallback.conf")));
    node.expect(0, &["disable"]);
    let names = node.names(DIR);
    assert!(
        names.contains(&"abc123-6.1.0-3-amd64.conf".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"abc123-6.1.0-4-amd64+5.conf".to_string()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("~umm_fallback")),
        "{names:?}"
    );
    // A disabled umm counts nothing new either.
    install_kernel(&node, "6.1.0-5-amd64");
    assert!(node.exists(&format!("{DIR}/abc123-6.1.0-5-amd64.conf")));
}

#[test]
fn an_unreadable_entry_is_left_alone_and_reported_and_a_corrupt_record_set_aside() {
    let mut node = sdboot_node("6.1.0-2-amd64");
    node.boot();
    let mut junk = b"title \xff\xfe\n".to_vec();
    junk.extend_from_slice(b"version 6.1.0-9\n");
    fs::write(node.path(&format!("{DIR}/abc123-6.1.0-9.conf")), &junk).unwrap();
    node.write("/var/lib/umm/sd-boot.json", "{not json");
    install_kernel(&node, "6.1.0-3-amd64");
    assert_eq!(
        fs::read(node.path(&format!("{DIR}/abc123-6.1.0-9.conf"))).unwrap(),
        junk
    );
    let log = node.log();
    assert!(log.contains("abc123-6.1.0-9.conf"), "{log}");
    assert!(log.contains("leaves that entry as it is"), "{log}");
    assert!(log.contains("set aside"), "{log}");
    assert_eq!(
        node.names_starting("/var/lib/umm", "sd-boot.json.corrupt")
            .len(),
        1
    );
    // Without a last good kernel recorded, the new one is not counted.
    assert!(node.exists(&format!("{DIR}/abc123-6.1.0-3-amd64.conf")));
}

#[test]
fn check_names_the_boot_loader_that_counts() {
    let node = sdboot_node("6.1.0-2-amd64");
    let out = node.run(&["on", "--dry-run"]).out;
    assert!(out.contains("Boot loader: counts boots that never reach userspace (systemd-boot entries in /boot/loader/entries)"), "{out}");
    // Without systemd-boot installed, one line why none counts.
    fs::remove_file(node.path("/boot/efi/loader/loader.conf")).unwrap();
    let out = node.run(&["on", "--dry-run"]).out;
    assert!(
        out.contains("Boot loader: does not count boots that never reach userspace: "),
        "{out}"
    );
}

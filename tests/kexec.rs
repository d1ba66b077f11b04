//! Planned reboots by kexec, end to end in a temporary root: what umm
//! loads (the test root's record of `kexec_file_load`), what it asks of
//! the init system (`kexec` or `reboot`), and the one line that says why
//! it fell back to the firmware.

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use common::Node;
use rstest::rstest;

const OLD: &str = "6.1.0-2-amd64";
const NEW: &str = "6.1.0-3-amd64";
const RUNNING: &str = "BOOT_IMAGE=/vmlinuz-6.1.0-2-amd64 root=/dev/vda1 ro console=ttyS0 quiet";

/// Sets a file's modification time to a day before the tests' clock
/// (`common::NOW`): installed long ago, not being written.
fn settle(node: &Node, path: &str) {
    let now: u64 = common::NOW.parse().unwrap();
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(now - 86_400);
    let f = fs::File::options()
        .write(true)
        .open(node.path(path))
        .unwrap();
    f.set_modified(when).unwrap();
}

fn install_kernel(node: &Node, release: &str) {
    for (path, size) in [
        (format!("/boot/vmlinuz-{release}"), 8 << 20),
        (format!("/boot/initrd.img-{release}"), 30 << 20),
    ] {
        node.write(&path, &"k".repeat(size));
        settle(node, &path);
    }
}

/// Debian's links to the newest kernel (GRUB's default entry).
fn point_links_at(node: &Node, release: &str) {
    for (link, file) in [("vmlinuz", "vmlinuz"), ("initrd.img", "initrd.img")] {
        let link = node.path(&format!("/{link}"));
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("boot/{file}-{release}"), link).unwrap();
    }
}

/// A node where everything allows kexec: the running kernel is the
/// default entry's.
fn kexec_node() -> Node {
    let mut node = Node::new();
    node.write("/sys/kernel/kexec_loaded", "0\n");
    node.write("/proc/sys/kernel/kexec_load_disabled", "0\n");
    node.write(
        "/proc/meminfo",
        "MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n",
    );
    node.write("/proc/cmdline", &format!("{RUNNING}\n"));
    install_kernel(&node, OLD);
    point_links_at(&node, OLD);
    node.boot();
    node
}

fn loaded(node: &Node) -> String {
    node.read("/run/umm/kexec-loaded")
}

#[test]
fn on_by_kexec_loads_the_default_kernel_with_umm_on() {
    let node = kexec_node();
    let out = node.expect(0, &["on"]);
    assert!(
        out.contains("umm on: rebooting by kexec into /boot/vmlinuz-6.1.0-2-amd64"),
        "{out}"
    );
    assert_eq!(node.actions(), ["kexec"]);
    assert_eq!(
        loaded(&node),
        format!("/boot/vmlinuz-{OLD} /boot/initrd.img-{OLD} root=/dev/vda1 ro console=ttyS0 quiet umm=on\n")
    );
    assert_eq!(node.status()["state"], "pending");
}

/// A kernel installed during maintenance: `umm off reboot` boots what the
/// boot loader would (the new one), without umm's word.
#[test]
fn off_reboot_by_kexec_boots_the_default_entry_not_the_running_one() {
    let mut node = kexec_node();
    node.expect(0, &["on"]);
    node.expect(0, &["internal", "clean-shutdown"]);
    node.write("/proc/cmdline", &format!("{RUNNING} umm=on\n"));
    node.boot();
    assert_eq!(node.status()["state"], "maintenance");
    install_kernel(&node, NEW);
    point_links_at(&node, NEW);
    let out = node.expect(0, &["off", "reboot"]);
    assert!(out.contains("rebooting by kexec"), "{out}");
    assert_eq!(node.actions(), ["kexec", "kexec"]);
    assert_eq!(
        loaded(&node),
        format!(
            "/boot/vmlinuz-{NEW} /boot/initrd.img-{NEW} root=/dev/vda1 ro console=ttyS0 quiet\n"
        )
    );
}

/// The RHEL family has no Debian links: the kernel loaded is the BLS entry
/// that GRUB's environment block (/boot/grub2/grubenv) names as saved.
#[test]
fn without_debian_links_the_saved_bls_entry_is_loaded() {
    let node = kexec_node();
    for link in ["/vmlinuz", "/initrd.img"] {
        fs::remove_file(node.path(link)).unwrap();
    }
    install_kernel(&node, NEW);
    node.write(
        &format!("/boot/loader/entries/abc-{NEW}.conf"),
        &format!("title New\nlinux /vmlinuz-{NEW}\ninitrd /initrd.img-{NEW}\n"),
    );
    node.write(
        "/boot/grub2/grubenv",
        &grubenv(&format!("saved_entry=abc-{NEW}\n")),
    );
    node.expect(0, &["on"]);
    let line = loaded(&node);
    let target = format!("/boot/vmlinuz-{NEW} /boot/initrd.img-{NEW} ");
    assert!(line.starts_with(&target), "{line}");
}

/// A GRUB environment block holding `vars`, padded with `#` to 1 KiB.
fn grubenv(vars: &str) -> String {
    let head = format!("# GRUB Environment Block\n{vars}");
    format!("{head}{}", "#".repeat(1024 - head.len()))
}

/// Each case breaks one thing kexec needs: umm reboots through the
/// firmware and says why in one line.
#[rstest]
#[case::load_disabled(
    |n: &Node| n.write("/proc/sys/kernel/kexec_load_disabled", "1\n"),
    "kernel.kexec_load_disabled = 1"
)]
#[case::no_kexec_in_the_kernel(
    |n: &Node| fs::remove_file(n.path("/sys/kernel/kexec_loaded")).unwrap(),
    "this kernel has no kexec"
)]
#[case::init_without_kexec(
    |n: &Node| n.write("/run/umm/init-no-kexec", ""),
    "umm does not kexec under test-recorder"
)]
#[case::setting(
    |n: &Node| n.write("/etc/umm/umm.toml", "[reboot]\nmethod = \"firmware\"\n"),
    "[reboot] method = \"firmware\""
)]
#[case::no_kernel_found(
    |n: &Node| {
        fs::remove_file(n.path("/vmlinuz")).unwrap();
        fs::remove_file(n.path("/initrd.img")).unwrap();
    },
    "no default boot entry's kernel was found"
)]
#[case::dangling_link(
    |n: &Node| fs::remove_file(n.path(&format!("/boot/vmlinuz-{OLD}"))).unwrap(),
    "the kernel to kexec: "
)]
#[case::initramfs_being_written(
    |n: &Node| n.write(&format!("/boot/initrd.img-{OLD}"), "new"),
    "/boot/initrd.img-6.1.0-2-amd64 changed less than 60s ago (a package upgrade may be writing it)"
)]
#[case::too_little_memory(
    |n: &Node| n.write("/proc/meminfo", "MemAvailable: 50000 kB\n"),
    "too little memory to load the kernel (48 MiB available, 102 MiB needed)"
)]
#[case::grub_reboot_pending(
    |n: &Node| n.write("/boot/grub/grubenv", &grubenv("next_entry=umm-off-entry\n")),
    "GRUB chooses the next boot itself (a one-time entry from grub-reboot: umm-off-entry)"
)]
#[case::a_kernel_failed_to_boot(
    |n: &Node| n.write("/boot/grub/grubenv", &grubenv("umm_failed=6.99.0-bad\n")),
    "GRUB chooses the next boot itself (kernel 6.99.0-bad did not reach userspace; GRUB boots the last good one)"
)]
#[case::signature_refused(
    |n: &Node| n.write("/run/umm/kexec-load-fails", "129\n"),
    "the kernel refused the image's signature (Secure Boot lockdown)"
)]
fn without_kexec_it_reboots_through_the_firmware_and_says_why(
    #[case] breaking: fn(&Node),
    #[case] why: &str,
) {
    let node = kexec_node();
    breaking(&node);
    let out = node.expect(0, &["on"]);
    assert!(
        out.contains(&format!("umm on: rebooting through the firmware: {why}")),
        "{out}"
    );
    assert!(!out.contains("warning"), "auto falls back quietly: {out}");
    assert_eq!(node.actions(), ["reboot"]);
    assert!(
        !node.exists("/run/umm/kexec-loaded"),
        "a kernel stays loaded"
    );
    assert_eq!(node.status()["state"], "pending");
}

#[test]
fn the_init_system_refusing_the_kexec_unloads_and_reboots() {
    let node = kexec_node();
    node.write("/run/umm/init-kexec-fails", "");
    let out = node.expect(0, &["on"]);
    assert!(out.contains("rebooting by kexec"), "{out}");
    assert!(
        out.contains("rebooting through the firmware: the init system did not start the kexec"),
        "{out}"
    );
    assert_eq!(node.actions(), ["reboot"]);
    assert!(!node.exists("/run/umm/kexec-loaded"), "left loaded");
}

#[rstest]
#[case::flag_over_auto(&["on", "--firmware"], "", "reboot")]
#[case::flag_over_the_setting(&["on", "--kexec"], "[reboot]\nmethod = \"firmware\"\n", "kexec")]
#[case::flag_firmware_over_kexec(&["on", "--firmware"], "[reboot]\nmethod = \"kexec\"\n", "reboot")]
fn a_flag_overrides_the_setting_once(
    #[case] args: &[&str],
    #[case] config: &str,
    #[case] action: &str,
) {
    let node = kexec_node();
    node.write("/etc/umm/umm.toml", config);
    node.expect(0, args);
    assert_eq!(node.actions(), [action]);
}

/// kexec asked for and not possible: still a reboot, and a warning.
#[test]
fn a_fallback_from_an_asked_for_kexec_is_a_warning() {
    let node = kexec_node();
    node.write("/proc/sys/kernel/kexec_load_disabled", "1\n");
    let out = node.expect(0, &["on", "--kexec"]);
    assert!(
        out.contains("umm on: warning: rebooting through the firmware: kernel.kexec_load_disabled"),
        "{out}"
    );
    assert_eq!(node.actions(), ["reboot"]);
}

/// A crash loop's boots must pass the boot loader and its counter.
#[test]
fn a_crash_loop_is_left_through_the_firmware_even_with_kexec() {
    let mut node = kexec_node();
    for _ in 0..3 {
        node.crash_and_boot();
    }
    assert_eq!(node.status()["reason"], "crash-loop");
    let out = node.expect(0, &["off", "reboot", "--kexec"]);
    assert!(
        out.contains("umm off reboot: warning: rebooting through the firmware: a crash loop is left through the boot loader"),
        "{out}"
    );
    assert_eq!(node.actions(), ["reboot"]);
    assert!(!node.exists("/run/umm/kexec-loaded"));
}

#[rstest]
#[case::both(&["on", "--kexec", "--firmware"])]
#[case::off_without_reboot(&["off", "--kexec"])]
#[case::bad_setting_is_not_a_flag(&["on", "--kexec=yes"])]
fn flags_out_of_place_are_usage_errors(#[case] args: &[&str]) {
    let node = kexec_node();
    node.expect(2, args);
    assert!(node.actions().is_empty());
}

#[test]
fn an_unknown_method_is_one_line_naming_the_file_and_line() {
    let node = kexec_node();
    node.write("/etc/umm/umm.toml", "[reboot]\nmethod = \"fast\"\n");
    let out = node.expect(1, &["on"]);
    assert!(out.contains("umm.toml:2: reboot.method"), "{out}");
    assert!(out.contains("\"auto\", \"kexec\" or \"firmware\""), "{out}");
    assert!(node.actions().is_empty());
}

/// sysvinit (the recording init system in its runlevel-6 mode): kexec
/// needs umm's umm-kexec script, in /etc/init.d and linked in rc6.d.
fn sysvinit_node(script: bool, linked: bool) -> Node {
    let node = kexec_node();
    node.write("/run/umm/init-kexec-runlevel6", "");
    if script {
        node.write("/etc/init.d/umm-kexec", "#!/bin/sh\nexit 0\n");
        let path = node.path("/etc/init.d/umm-kexec");
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    if linked {
        fs::create_dir_all(node.path("/etc/rc6.d")).unwrap();
        std::os::unix::fs::symlink("../init.d/umm-kexec", node.path("/etc/rc6.d/K03umm-kexec"))
            .unwrap();
    }
    node
}

#[test]
fn sysvinit_with_the_script_reboots_by_kexec_and_marks_the_load_as_umms() {
    let node = sysvinit_node(true, true);
    let out = node.expect(0, &["on"]);
    assert!(out.contains("umm on: rebooting by kexec into"), "{out}");
    assert_eq!(node.actions(), ["kexec"]);
    assert!(loaded(&node).ends_with(" umm=on\n"), "{}", loaded(&node));
}

#[rstest]
#[case::no_script(false, true)]
#[case::script_not_in_runlevel_6(true, false)]
fn sysvinit_without_the_script_reboots_through_the_firmware_and_says_why(
    #[case] script: bool,
    #[case] linked: bool,
) {
    let node = sysvinit_node(script, linked);
    let out = node.expect(0, &["on"]);
    assert!(
        out.contains(
            "umm on: rebooting through the firmware: /etc/init.d/umm-kexec is not installed in runlevel 6"
        ),
        "{out}"
    );
    assert_eq!(node.actions(), ["reboot"]);
    assert!(!node.exists("/run/umm/kexec-loaded"), "a kernel was loaded");
}

/// The last step of sysvinit's runlevel 6: boots umm's kernel, and only
/// umm's, only while it is still loaded; in every case exits 0, so the
/// ordinary reboot goes on.
#[rstest]
#[case::umms_kernel_loaded("1\n", true, true, "rebooting by kexec")]
#[case::no_marker("1\n", false, false, "left alone")]
#[case::nothing_loaded("0\n", false, false, "no kernel loaded for kexec")]
#[case::marker_but_unloaded("0\n", true, false, "no longer loaded")]
#[case::kexec_loaded_empty("", true, false, "no longer loaded")]
fn kexec_exec_boots_only_the_kernel_umm_loaded(
    #[case] kexec_loaded: &str,
    #[case] marker: bool,
    #[case] execs: bool,
    #[case] said: &str,
) {
    let node = sysvinit_node(true, true);
    if marker {
        node.expect(0, &["on"]);
    }
    node.write("/sys/kernel/kexec_loaded", kexec_loaded);
    let out = node.expect(0, &["internal", "kexec-exec"]);
    assert!(out.contains(said), "{out}");
    assert_eq!(node.exists("/run/umm/kexec-executed"), execs, "{out}");
}

/// A crash loop is left through the boot loader on sysvinit too: nothing
/// is loaded, so runlevel 6's umm-kexec has nothing to boot.
#[test]
fn sysvinit_crash_loop_leaves_nothing_for_kexec_exec() {
    let mut node = sysvinit_node(true, true);
    for _ in 0..3 {
        node.crash_and_boot();
    }
    assert_eq!(node.status()["reason"], "crash-loop");
    node.expect(0, &["off", "reboot", "--kexec"]);
    assert_eq!(node.actions(), ["reboot"]);
    node.write("/sys/kernel/kexec_loaded", "1\n");
    let out = node.expect(0, &["internal", "kexec-exec"]);
    assert!(out.contains("left alone"), "{out}");
    assert!(!node.exists("/run/umm/kexec-executed"));
}

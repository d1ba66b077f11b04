//! Boot-loader counting, userspace side: what `umm internal boot` (umm-boot)
//! writes to GRUB's environment block in a root prefix, checked with the real
//! `grub-editenv`, and what `umm status` says about it.

mod common;

use std::fs;
use std::process::Command;

use common::{assert_boot_failure_status, Node};

const GRUBENV: &str = "/boot/grub/grubenv";

/// A node whose grub.cfg carries 42_umm's counting code, running `kernel`.
fn counting_node(kernel: &str) -> Node {
    let node = Node::new();
    node.write(
        "/boot/grub/grub.cfg",
        "### BEGIN /etc/grub.d/42_umm ###\n# umm: boot-loader counting on\n",
    );
    node.write("/proc/sys/kernel/osrelease", &format!("{kernel}\n"));
    node
}

fn editenv(node: &Node, args: &[&str]) -> String {
    let out = Command::new("grub-editenv")
        .arg(node.path(GRUBENV))
        .args(args)
        .output()
        .expect("grub-editenv (grub-common) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The block as grub-editenv reads it, one `name=value` per line, sorted.
fn listed(node: &Node) -> Vec<String> {
    let mut lines: Vec<String> = editenv(node, &["list"]).lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn a_boot_that_reached_userspace_clears_grubs_count_and_keeps_the_rest() {
    let mut node = counting_node("6.1.0-2-amd64");
    editenv(&node, &["create"]);
    editenv(
        &node,
        &[
            "set",
            "saved_entry=gnulinux-advanced>x",
            "umm_tries=xx",
            "umm_enabled=1",
        ],
    );
    node.boot();
    assert_eq!(
        listed(&node),
        [
            "saved_entry=gnulinux-advanced>x",
            "umm_enabled=1",
            "umm_good=6.1.0-2-amd64",
            "umm_max_tries=xxx",
            "umm_tries=",
        ]
    );
    assert_eq!(fs::metadata(node.path(GRUBENV)).unwrap().len(), 1024);
}

#[test]
fn a_kernel_upgrade_that_comes_up_becomes_the_last_good_kernel_and_says_so_once() {
    let mut node = counting_node("6.1.0-3-amd64");
    editenv(&node, &["create"]);
    // GRUB counted the new kernel's first attempt.
    editenv(&node, &["set", "umm_good=6.1.0-2-amd64", "umm_tries=x"]);
    let first = node.boot();
    assert!(
        first.contains(
            "kernel 6.1.0-3-amd64 reached userspace after 1 attempt(s) counted by GRUB; it is now the last good kernel (was 6.1.0-2-amd64)"
        ),
        "{first}"
    );
    assert!(listed(&node).contains(&"umm_good=6.1.0-3-amd64".to_string()));
    editenv(&node, &["set", "umm_tries=x"]);
    let second = node.boot();
    assert!(!second.contains("last good kernel"), "{second}");
}

#[test]
fn a_missing_block_is_created_as_grub_editenv_would() {
    let mut node = counting_node("6.1.0-2-amd64");
    node.write("/etc/umm/umm.toml", "reboot_count = 0\n");
    node.boot();
    assert_eq!(fs::metadata(node.path(GRUBENV)).unwrap().len(), 1024);
    assert_eq!(
        listed(&node),
        ["umm_enabled=1", "umm_good=6.1.0-2-amd64", "umm_max_tries=x"]
    );
}

#[test]
fn without_counting_code_in_grub_cfg_the_block_is_not_touched() {
    let mut node = counting_node("6.1.0-2-amd64");
    node.write(
        "/boot/grub/grub.cfg",
        "# umm: boot-loader counting off: umm is disabled\n",
    );
    node.boot();
    assert!(!node.exists(GRUBENV));
    let s = node.status();
    assert_eq!(s["boot_menu"]["counting"]["on"], false);
    assert_eq!(s["boot_menu"]["counting"]["detail"], "umm is disabled");
}

#[test]
fn a_disabled_umm_tells_grub_not_to_redirect() {
    let mut node = counting_node("6.1.0-2-amd64");
    node.write("/etc/umm/umm.toml", "enabled = false\n");
    editenv(&node, &["create"]);
    editenv(
        &node,
        &["set", "umm_enabled=1", "umm_tries=xxx", "umm_max_tries=xxx"],
    );
    node.boot();
    let env = listed(&node);
    assert!(env.contains(&"umm_enabled=0".to_string()), "{env:?}");
    assert!(env.contains(&"umm_tries=".to_string()), "{env:?}");
}

#[test]
fn a_full_block_is_left_alone_and_the_boot_goes_on() {
    let mut node = counting_node("6.1.0-2-amd64");
    editenv(&node, &["create"]);
    // GRUB's own variables fill the block: no room for umm's.
    let filler = format!("other={}", "y".repeat(1024 - 25 - 70 - 8));
    editenv(&node, &["set", &filler]);
    let before = fs::read(node.path(GRUBENV)).unwrap();
    node.boot();
    assert_eq!(fs::read(node.path(GRUBENV)).unwrap(), before);
    let log = node.log();
    assert!(log.contains("it is full"), "{log}");
    assert!(log.contains("grub-editenv unset"), "{log}");
    // The boot itself was recorded.
    assert_eq!(node.status()["state"], "operational");
}

#[test]
fn a_corrupt_block_is_never_rewritten() {
    let mut node = counting_node("6.1.0-2-amd64");
    let mut junk = b"# GRUB Environment Block\nsaved_entry".to_vec();
    junk.resize(1024, 0);
    fs::create_dir_all(node.path("/boot/grub")).unwrap();
    fs::write(node.path(GRUBENV), &junk).unwrap();
    node.boot();
    assert_eq!(fs::read(node.path(GRUBENV)).unwrap(), junk);
    let log = node.log();
    assert!(log.contains("umm leaves it alone"), "{log}");
    assert!(
        log.contains(&node.path(GRUBENV).display().to_string()),
        "{log}"
    );
}

#[test]
fn status_names_the_kernel_that_failed_and_the_failed_kernel_booting_clears_it() {
    let mut node = counting_node("6.1.0-1-amd64");
    after_grub_gave_up(&node);
    node.boot();
    let s = node.status();
    let failure = &s["boot_menu"]["boot_failure"];
    assert_eq!(failure["kernel"], "6.1.0-2-amd64");
    assert_eq!(failure["attempts"], 3);
    assert_eq!(failure["good_kernel"], "6.1.0-1-amd64");
    assert!(failure["since"].is_string(), "{failure}");
    let text = node.expect(0, &["status"]);
    assert!(
        text.contains("Boot failure: kernel 6.1.0-2-amd64 did not reach userspace in 3 attempts"),
        "{text}"
    );
    assert!(text.contains("GRUB boots 6.1.0-1-amd64 instead"), "{text}");
    // The failed kernel does reach userspace after all (picked by hand).
    node.write("/proc/sys/kernel/osrelease", "6.1.0-2-amd64\n");
    node.boot();
    assert!(node.status()["boot_menu"]["boot_failure"].is_null());
    assert!(listed(&node).contains(&"umm_failed=".to_string()));
}

/// The block as GRUB leaves it when it gives up on 6.1.0-2 (three attempts)
/// and boots 6.1.0-1's maintenance entry.
fn after_grub_gave_up(node: &Node) {
    editenv(node, &["create"]);
    editenv(
        node,
        &[
            "set",
            "umm_enabled=1",
            "umm_tries=xxx",
            "umm_max_tries=xxx",
            "umm_good=6.1.0-1-amd64",
            "umm_failed=6.1.0-2-amd64",
        ],
    );
}

/// The journal entries with `UMM_EVENT` = `event`.
fn journal_events(node: &Node, event: &str) -> Vec<serde_json::Value> {
    let text = if node.exists("/run/umm/journal.log") {
        node.read("/run/umm/journal.log")
    } else {
        String::new()
    };
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["UMM_EVENT"] == event)
        .collect()
}

#[test]
fn the_boot_grub_fell_back_to_is_a_boot_failure_maintenance() {
    let mut node = counting_node("6.1.0-1-amd64");
    fs::create_dir_all(node.path("/var/lib/prometheus/node-exporter")).unwrap();
    after_grub_gave_up(&node);
    node.write(
        "/proc/cmdline",
        "root=/dev/vda1 ro quiet umm=on umm.why=boot-failure\n",
    );
    node.boot();
    assert_boot_failure_status(&node.status(), "6.1.0-2-amd64", "6.1.0-1-amd64");
    let text = node.expect(0, &["status"]);
    assert!(text.contains("MAINTENANCE (boot-failure)"), "{text}");
    assert!(
        text.contains("Boot failure: kernel 6.1.0-2-amd64 did not reach userspace in 3 attempts in a row (seen "),
        "{text}"
    );
    assert!(text.contains("this boot runs 6.1.0-1-amd64"), "{text}");
    // The journal: the episode entered for its reason, and what failed.
    let entered = journal_events(&node, "entered");
    assert_eq!(entered.len(), 1, "{entered:?}");
    assert_eq!(entered[0]["UMM_REASON"], "boot-failure");
    let failed = journal_events(&node, "boot-failure");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["UMM_KERNEL"], "6.1.0-2-amd64");
    assert_eq!(failed[0]["UMM_ATTEMPTS"], "3");
    assert_eq!(failed[0]["UMM_GOOD_KERNEL"], "6.1.0-1-amd64");
    assert_eq!(failed[0]["UMM_EPISODE"], entered[0]["UMM_EPISODE"]);
    // The metric counts it under its own reason.
    let prom = node.read("/var/lib/prometheus/node-exporter/umm.prom");
    assert!(
        prom.contains("umm_maintenance_entered_total{reason=\"boot-failure\"} 1\n"),
        "{prom}"
    );
    assert!(
        prom.contains("umm_maintenance_entered_total{reason=\"cmdline\"} 0\n"),
        "{prom}"
    );
    // The episode goes to the history with that reason.
    node.write("/proc/cmdline", "root=/dev/vda1 ro quiet\n");
    node.expect(0, &["off"]);
    node.expect(0, &["internal", "after-resume"]);
    let history: serde_json::Value =
        serde_json::from_str(&node.expect(0, &["history", "--json"])).unwrap();
    assert_eq!(history[0]["reason"], "boot-failure", "{history}");
}

#[test]
fn an_operators_own_pick_of_the_maintenance_entry_is_no_boot_failure() {
    // The failure is recorded and the count is full, but this command line
    // has no marker: the operator picked the entry (GRUB did not fall back).
    let mut node = counting_node("6.1.0-1-amd64");
    after_grub_gave_up(&node);
    node.write("/proc/cmdline", "root=/dev/vda1 ro quiet umm=on\n");
    node.boot();
    let s = node.status();
    assert_eq!(s["reason"], "cmdline");
    assert!(journal_events(&node, "boot-failure").is_empty());
    // The block still says what failed.
    assert_eq!(s["boot_menu"]["boot_failure"]["kernel"], "6.1.0-2-amd64");
}

#[test]
fn boot_retry_clears_the_failure_keeps_every_other_line_and_refuses_twice() {
    let mut node = counting_node("6.1.0-1-amd64");
    after_grub_gave_up(&node);
    editenv(
        &node,
        &[
            "set",
            "saved_entry=gnulinux-advanced>x",
            "other_tool=keep\\me",
        ],
    );
    node.write(
        "/proc/cmdline",
        "root=/dev/vda1 ro umm=on umm.why=boot-failure\n",
    );
    node.boot();
    let before = fs::read(node.path(GRUBENV)).unwrap();
    let out = node.expect(0, &["boot", "retry"]);
    assert!(
        out.contains("Boot failure of kernel 6.1.0-2-amd64 cleared: the next boot tries it again"),
        "{out}"
    );
    assert!(
        out.contains("If it fails again (3 attempts in a row that never reach userspace), GRUB boots the maintenance entry of 6.1.0-1-amd64 again."),
        "{out}"
    );
    // GRUB's own tool reads the failure gone and the count fresh.
    let listed = listed(&node);
    for cleared in ["umm_failed=", "umm_failed_since=", "umm_tries="] {
        assert!(listed.contains(&cleared.to_string()), "{listed:?}");
    }
    assert!(
        listed.contains(&"umm_good=6.1.0-1-amd64".to_string()),
        "{listed:?}"
    );
    // Every other line byte for byte, the block's size kept: only the
    // three values changed.
    let after = fs::read(node.path(GRUBENV)).unwrap();
    assert_eq!(after.len(), before.len());
    let strip = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .trim_end_matches('#')
            .lines()
            .filter(|l| {
                !["umm_failed=", "umm_failed_since=", "umm_tries="]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(String::from)
            .collect()
    };
    assert_eq!(strip(&after), strip(&before));
    assert!(String::from_utf8_lossy(&after).contains("\nother_tool=keep\\\\me\n"));
    // umm status no longer reports it.
    assert!(node.status()["boot_menu"]["boot_failure"].is_null());
    // Nothing left to retry: one line, exit 1, the block untouched.
    let again = node.run(&["boot", "retry"]);
    assert_eq!(again.code, Some(1), "{}", again.out);
    assert!(
        again.out.contains("records no kernel that failed to boot"),
        "{}",
        again.out
    );
    assert_eq!(again.out.trim().lines().count(), 1, "{}", again.out);
    assert_eq!(fs::read(node.path(GRUBENV)).unwrap(), after);
}

#[test]
fn boot_retry_refuses_where_the_boot_loader_does_not_count_or_the_block_is_corrupt() {
    // No counting code in grub.cfg: refused, naming why.
    let node = Node::new();
    node.write(
        "/boot/grub/grub.cfg",
        "### BEGIN /etc/grub.d/42_umm ###\n# umm: boot-loader counting off: the environment block is on lvm, which GRUB cannot write\n",
    );
    let ran = node.run(&["boot", "retry"]);
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(ran.out.contains("does not count boots here"), "{}", ran.out);
    assert!(ran.out.contains("on lvm"), "{}", ran.out);
    // A block umm cannot parse is never rewritten.
    let node = counting_node("6.1.0-1-amd64");
    let junk = b"not a grub block\numm_failed=6.1.0-2-amd64\n".to_vec();
    fs::create_dir_all(node.path("/boot/grub")).unwrap();
    fs::write(node.path(GRUBENV), &junk).unwrap();
    let ran = node.run(&["boot", "retry"]);
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(ran.out.contains("umm leaves it alone"), "{}", ran.out);
    assert_eq!(fs::read(node.path(GRUBENV)).unwrap(), junk);
    // Not root: refused before anything is read.
    let ran = node.as_nobody(&["boot", "retry"]);
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(ran.out.contains("needs root"), "{}", ran.out);
}

#[test]
fn boot_retry_waits_for_umm_boot_writing_the_block_and_both_changes_survive() {
    let mut node = counting_node("6.1.0-3-amd64");
    after_grub_gave_up(&node);
    node.boots += 1;
    node.write("/proc/sys/kernel/random/boot_id", "boot-race\n");
    // umm-boot stops between its read of the block and its write.
    let boot = common::stopped::run_until(&node, "grubenv-update", "", &["internal", "boot"]);
    let out = fs::File::create(node.path("/.out-retry")).unwrap();
    let mut retry = node
        .command(&["boot", "retry"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    // Give a retry that did not wait the chance to write first (it must
    // not: it waits for the writers' lock umm-boot holds).
    let started = std::time::Instant::now();
    while retry.try_wait().unwrap().is_none() && started.elapsed().as_secs() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, said) = boot.resume();
    assert_eq!(code, Some(0), "{said}");
    let status = common::wait_bounded(&mut retry, std::time::Duration::from_secs(60))
        .expect("umm boot retry did not end");
    assert!(status.success(), "{}", node.read("/.out-retry"));
    let listed = listed(&node);
    // umm-boot's change: this kernel is the last good one.
    assert!(
        listed.contains(&"umm_good=6.1.0-3-amd64".to_string()),
        "{listed:?}"
    );
    // The retry's: the failure is cleared.
    assert!(listed.contains(&"umm_failed=".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"umm_failed_since=".to_string()),
        "{listed:?}"
    );
}

#[test]
fn umm_boot_that_cannot_take_the_lock_still_marks_the_boot_and_says_so() {
    let mut node = counting_node("6.1.0-2-amd64");
    editenv(&node, &["create"]);
    editenv(&node, &["set", "umm_enabled=1", "umm_tries=xx"]);
    let ran = node.boot_with_failpoints("read-state=return(eio)");
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    let listed = listed(&node);
    assert!(listed.contains(&"umm_tries=".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"umm_good=6.1.0-2-amd64".to_string()),
        "{listed:?}"
    );
    let log = node.log();
    assert!(log.contains("without the writers' lock"), "{log}");
}

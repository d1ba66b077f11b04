//! Faults injected at named steps: a writer killed at each step of a state
//! write, and I/O errors reading the state or writing it and its early
//! copy. They need umm built with the `failpoints` feature (Cargo.toml
//! requires it for this file; `cargo test` turns it on, the shipped binary
//! has none). Each test runs the `umm` binary in a temporary root
//! with `FAILPOINTS` (see src/sys/failpoint.rs).

mod common;

use std::fs;

use common::{bounded_node, node_in_maintenance, Node};
use rstest::rstest;

/// A writer killed at each step of a state write leaves the old state or
/// the new one, never a mix; the next writer goes on normally.
#[rstest]
fn a_writer_killed_mid_write_leaves_old_or_new_state(
    #[values(
        "before-write",
        "mid-write",
        "before-fsync",
        "before-rename",
        "before-dir-fsync"
    )]
    step: &str,
) {
    let mut node = Node::new();
    node.boot();
    node.crash_and_boot();
    assert_eq!(node.status()["unclean_boots"], 1);
    node.write("/proc/sys/kernel/random/boot_id", "boot-killed\n");
    let out = node.run_cmd({
        let mut c = node.command(&["internal", "boot"]);
        c.env("FAILPOINTS", format!("{step}=return(abort)"));
        c
    });
    assert_eq!(out.signal, Some(6), "{step}: the writer was not killed");
    let counter = node.status()["unclean_boots"].as_u64();
    let expect_new = step == "before-dir-fsync";
    assert_eq!(counter, Some(if expect_new { 2 } else { 1 }), "{step}");
    assert!(
        node.status()["state_problem"].is_null(),
        "{step}: state unreadable"
    );
    // The next writer cleans up and carries on.
    node.boot();
    assert!(fs::read_dir(node.path("/var/lib/umm"))
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with(".tmp-")));
}

#[test]
fn an_io_error_on_the_state_is_reported_and_changes_nothing() {
    let mut node = node_in_maintenance();
    let before = fs::read(node.path("/var/lib/umm/state.json")).unwrap();
    let ran = node.boot_with_failpoints("read-state=return(eio)");
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(ran.out.contains("Input/output error"), "{}", ran.out);
    assert_eq!(
        fs::read(node.path("/var/lib/umm/state.json")).unwrap(),
        before,
        "the state was rewritten"
    );
    assert!(
        node.names_starting("/var/lib/umm", "state.json.corrupt")
            .is_empty(),
        "an unreadable state was set aside"
    );
    // The boot went the way the early copy says: still maintenance.
    assert!(
        node.read("/run/umm/boot.json").contains("\"maintenance\""),
        "{}",
        node.read("/run/umm/boot.json")
    );
    // Commands refuse in one line and change nothing.
    let ran = node.run_cmd({
        let mut c = node.command(&["off"]);
        c.env("FAILPOINTS", "read-state=return(eio)");
        c
    });
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert!(
        ran.out.contains("changes nothing until it can be read"),
        "{}",
        ran.out
    );
    // Once readable again, the maintenance is still there.
    assert_eq!(node.status()["state"], "maintenance");
}

#[rstest]
#[case::full("enospc", "free space on / (the root filesystem)")]
#[case::read_only("erofs", "/ is read-only: remount it read-write")]
fn an_early_copy_that_cannot_be_refreshed_is_said_on_stderr(
    #[case] errno: &str,
    #[case] hint: &str,
) {
    let mut node = bounded_node();
    node.boot();
    let ran = node.run_cmd({
        let mut c = node.command(&["disable"]);
        c.env("FAILPOINTS", format!("early-copy=return({errno})"));
        c
    });
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(ran.out.contains("cannot refresh"), "{}", ran.out);
    assert!(ran.out.contains("early-state.json"), "{}", ran.out);
    assert!(ran.out.contains(hint), "{}", ran.out);
}

#[test]
fn a_full_var_is_one_line_saying_what_to_do() {
    let mut node = bounded_node();
    node.boot();
    let ran = node.run_cmd({
        let mut c = node.command(&["disable"]);
        c.env("FAILPOINTS", "before-write=return(enospc)");
        c
    });
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    assert_eq!(ran.out.trim().lines().count(), 1, "{}", ran.out);
    assert!(
        ran.out
            .contains("No space left on device (os error 28); free space"),
        "{}",
        ran.out
    );
    assert_eq!(node.status()["enabled"], true);
}

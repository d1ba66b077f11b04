//! `umm on --then off|reboot`, end to end with the real binary in a
//! temporary root (the recording init system, tests/common): once the
//! scheduled command succeeded and the on.d hooks passed, the maintenance
//! boot leaves by itself through the same transaction as `umm off`; when
//! the work failed it stays, keeps its fleet slot and halts the group's
//! roll (against a real etcd: tests/common/etcd.rs).

mod common;

use std::time::Duration;

use common::etcd::{one_etcd, raw_get};
use common::Node;
use serde_json::Value;
use umm::fleet::etcd::halt_key;

const PROM: &str = "/var/lib/prometheus/node-exporter/umm.prom";

fn state(node: &Node) -> Value {
    serde_json::from_str(&node.read("/var/lib/umm/state.json")).unwrap()
}

/// A node whose off.d and pre-off hooks append a line to /hooks.log.
fn node_with_hooks() -> Node {
    let mut node = Node::new().bounded(Duration::from_secs(60));
    // umm writes umm.prom only where the directory exists.
    std::fs::create_dir_all(node.path("/var/lib/prometheus/node-exporter")).unwrap();
    node.boot();
    let log = node.path("/hooks.log");
    for phase in ["pre-off", "off"] {
        node.hook(
            phase,
            "10-log",
            &format!("echo {phase} >> {}", log.display()),
        );
    }
    node
}

/// `umm on ARGS`, then the reboot into maintenance.
fn into_maintenance(node: &mut Node, args: &[&str]) {
    let mut on = vec!["on"];
    on.extend_from_slice(args);
    node.expect(0, &on);
    node.clean_reboot();
    assert_eq!(node.status()["state"], "maintenance");
}

/// The last episode of the history.
fn last_episode(node: &Node) -> Value {
    let s = state(node);
    s["history"]
        .as_array()
        .and_then(|h| h.last().cloned())
        .unwrap_or(Value::Null)
}

fn hook_lines(node: &Node) -> Vec<String> {
    if !node.exists("/hooks.log") {
        return Vec::new();
    }
    node.read("/hooks.log").lines().map(String::from).collect()
}

#[test]
fn then_off_leaves_by_itself_once_the_command_succeeded() {
    let mut node = node_with_hooks();
    into_maintenance(&mut node, &["--then", "off", "--", "true"]);
    node.expect(0, &["internal", "maintenance"]);
    let s = node.status();
    assert_eq!(s["state"], "operational", "{s}");
    assert_eq!(hook_lines(&node), ["pre-off", "off"]);
    assert!(
        node.actions().contains(&"resume".to_string()),
        "{:?}",
        node.actions()
    );
    let last = &last_episode(&node);
    assert_eq!(last["end"], "resumed", "{last}");
    assert_eq!(last["command"]["run"]["exit_code"], 0, "{last}");
    assert!(
        node.log().contains(
            "leaving maintenance (reason manual, episode 1) by itself (umm on --then off)"
        ),
        "{}",
        node.log()
    );
    // Run again (the unit restarted): nothing more happens.
    node.expect(0, &["internal", "maintenance"]);
    assert_eq!(hook_lines(&node), ["pre-off", "off"]);
}

#[test]
fn without_then_the_node_stays_after_the_command() {
    let mut node = node_with_hooks();
    into_maintenance(&mut node, &["--", "true"]);
    node.expect(0, &["internal", "maintenance"]);
    assert_eq!(node.status()["state"], "maintenance");
    assert!(hook_lines(&node).is_empty());
}

#[test]
fn then_off_without_a_command_leaves_once_the_on_d_hooks_passed() {
    let mut node = node_with_hooks();
    node.hook("on", "10-ok", "exit 0");
    into_maintenance(&mut node, &["--then", "off"]);
    node.expect(0, &["internal", "maintenance"]);
    assert_eq!(node.status()["state"], "operational");
    assert_eq!(hook_lines(&node), ["pre-off", "off"]);
}

#[test]
fn then_reboot_asks_for_the_planned_reboot() {
    let mut node = node_with_hooks();
    into_maintenance(&mut node, &["--then", "reboot", "--", "true"]);
    let before = node.actions().len();
    node.expect(0, &["internal", "maintenance"]);
    let actions = node.actions();
    assert_eq!(actions[before..], ["reboot"], "{actions:?}");
    // Leaving; the normal boot's umm-after finishes it, off.d once.
    assert_eq!(node.status()["state"], "resuming");
    assert_eq!(hook_lines(&node), ["pre-off"]);
    node.clean_reboot();
    node.expect(0, &["internal", "after-resume"]);
    assert_eq!(node.status()["state"], "operational");
    assert_eq!(hook_lines(&node), ["pre-off", "off"]);
    assert_eq!(last_episode(&node)["end"], "rebooted");
}

#[test]
fn a_failed_command_or_on_d_hook_keeps_the_node_in_maintenance() {
    for (command, hook) in [
        (Some("false"), "exit 0"),
        (Some("true"), "exit 4"),
        (None, "exit 4"),
    ] {
        let mut node = node_with_hooks();
        node.hook("on", "10-drain", hook);
        let mut args = vec!["--then", "off"];
        if let Some(c) = command {
            args.extend(["--", c]);
        }
        into_maintenance(&mut node, &args);
        node.expect(0, &["internal", "maintenance"]);
        assert_eq!(node.status()["state"], "maintenance", "{command:?} {hook}");
        assert!(hook_lines(&node).is_empty(), "{command:?} {hook}");
        assert!(
            node.log().contains("the maintenance work failed"),
            "{}",
            node.log()
        );
        assert!(
            node.read(PROM)
                .contains("\numm_roll_halted{cause=\"work\"} 1\n"),
            "{command:?} {hook}"
        );
        let out = node.expect(0, &["status"]);
        assert!(out.contains("Roll halted:  by this node"), "{out}");
        assert!(node.status()["roll_halted"].is_string());
        node.expect(0, &["off"]);
        assert!(node
            .read(PROM)
            .contains("\numm_roll_halted{cause=\"\"} 0\n"));
        assert_eq!(node.status()["roll_halted"], Value::Null);
    }
}

/// umm killed after the command's result was saved, before leaving began;
/// then after leaving began (phase resuming), before the resume: the next
/// run finishes it, and the off.d hooks run once.
#[test]
fn a_self_leave_cut_short_is_finished_by_the_next_run_once() {
    for step in ["then-leave", "leave-begun"] {
        let mut node = node_with_hooks();
        into_maintenance(&mut node, &["--then", "off", "--", "true"]);
        let mut c = node.command(&["internal", "maintenance"]);
        c.env("FAILPOINTS", format!("{step}=return(abort)"));
        let r = node.run_cmd(c);
        assert_ne!(r.code, Some(0), "{step}: {}", r.out);
        assert_ne!(node.status()["state"], "operational", "{step}");
        assert_eq!(
            state(&node)["maintenance"]["command"]["run"]["exit_code"],
            0
        );
        node.expect(0, &["internal", "maintenance"]);
        assert_eq!(node.status()["state"], "operational", "{step}");
        assert_eq!(hook_lines(&node), ["pre-off", "off"], "{step}");
        node.expect(0, &["internal", "maintenance"]);
        assert_eq!(hook_lines(&node), ["pre-off", "off"], "{step}");
    }
}

/// A node of etcd group `group` with off.d and pre-off hooks, booted.
fn fleet_node(endpoint: &str, group: &str, id: &str) -> Node {
    let node = node_with_hooks();
    node.write(
        "/etc/umm/umm.toml",
        &format!(
            "[fleet]\nbackend = \"etcd\"\ngroup = \"{group}\"\nid = \"{id}\"\nendpoints = [\"{endpoint}\"]\nslots = 1\ntimeout = \"10s\"\n"
        ),
    );
    node
}

/// The halt recorded for `group`, as JSON; Null when none.
fn halt(endpoint: &str, group: &str) -> Value {
    raw_get(endpoint, &halt_key(group))
        .map_or(Value::Null, |(v, _)| serde_json::from_slice(&v).unwrap())
}

#[test]
fn then_off_gives_the_slot_back_and_a_failure_halts_the_group_until_umm_off() {
    let Some(etcd) = one_etcd("then_halt") else {
        return;
    };
    let ep = etcd.endpoint(0);
    // Success: the slot goes back by itself, nothing halted.
    let mut a = fleet_node(&ep, "h", "node-a");
    into_maintenance(&mut a, &["--then", "off", "--", "true"]);
    assert_eq!(etcd.holders("h"), ["node-a"]);
    a.expect(0, &["internal", "maintenance"]);
    assert_eq!(a.status()["state"], "operational");
    assert!(etcd.holders("h").is_empty());
    assert_eq!(halt(&ep, "h"), Value::Null);
    // Failure: the node stays, keeps the slot, and the halt names it.
    let mut b = fleet_node(&ep, "h", "node-b");
    into_maintenance(&mut b, &["--then", "off", "--", "sh", "-c", "exit 3"]);
    b.expect(0, &["internal", "maintenance"]);
    assert_eq!(b.status()["state"], "maintenance");
    assert_eq!(etcd.holders("h"), ["node-b"]);
    let h = halt(&ep, "h");
    assert_eq!(h["node"], "node-b", "{h}");
    assert_eq!(h["why"], "the scheduled command exited 3", "{h}");
    assert!(
        b.log().contains("roll is halted by this node"),
        "{}",
        b.log()
    );
    // The next node cannot enter: the slot is held.
    let c = fleet_node(&ep, "h", "node-c");
    let out = c.expect(1, &["on", "--then", "off"]);
    assert!(out.contains("node-b"), "{out}");
    // b fixed: its clean `umm off` gives the slot back and clears the halt.
    b.expect(0, &["off"]);
    assert_eq!(b.status()["state"], "operational");
    assert!(etcd.holders("h").is_empty());
    assert_eq!(halt(&ep, "h"), Value::Null, "a clean umm off clears it");
}

#[test]
fn only_the_node_that_halted_clears_the_halt() {
    let Some(etcd) = one_etcd("then_halt_owner") else {
        return;
    };
    let ep = etcd.endpoint(0);
    let mut b = fleet_node(&ep, "o", "node-b");
    into_maintenance(&mut b, &["--then", "off", "--", "false"]);
    b.expect(0, &["internal", "maintenance"]);
    assert_eq!(halt(&ep, "o")["node"], "node-b");
    // node-c has its own (clean) round with --force: b's halt stays.
    let mut c = fleet_node(&ep, "o", "node-c");
    into_maintenance(&mut c, &["--force"]);
    c.expect(0, &["off"]);
    assert_eq!(halt(&ep, "o")["node"], "node-b");
    // b's `umm fleet release --force` (it is still in maintenance) clears it.
    b.expect(0, &["fleet", "release", "--force"]);
    assert_eq!(halt(&ep, "o"), Value::Null);
}

//! `umm on --queue` and `umm internal queue`, end to end with the real
//! binary in a temporary root, the recording init system and the test's
//! clock (`UMM_NOW`): queued, shown, waiting outside a window, its turn
//! inside one (a request pending with COMMAND and `then`, and the reboot),
//! expiry (event and counter), and `umm off` cancelling it.

mod common;

use std::time::Duration;

use common::{Node, NOW};
use serde_json::Value;

/// `common::NOW` (Saturday 2026-11-21 19:42:00 UTC) plus `secs`.
fn at(secs: i64) -> String {
    (NOW.parse::<i64>().unwrap() + secs).to_string()
}

/// Monday 2026-11-23 22:30 UTC: inside "Mon 22:00-23:00".
const MONDAY_2230: i64 = 2 * 86400 + 2 * 3600 + 48 * 60;

fn node_with(config: &str) -> Node {
    let node = Node::new().bounded(Duration::from_secs(60));
    node.write("/etc/umm/umm.toml", config);
    std::fs::create_dir_all(node.path("/var/lib/prometheus/node-exporter")).unwrap();
    node
}

/// The same node's runs at another time.
fn run_at(node: &mut Node, secs: i64, args: &[&str]) -> (Option<i32>, String) {
    node.env.retain(|(k, _)| k != "UMM_NOW");
    node.env.push(("UMM_NOW".into(), at(secs)));
    let ran = node.run(args);
    node.env.retain(|(k, _)| k != "UMM_NOW");
    (ran.code, ran.out)
}

fn state(node: &Node) -> Value {
    serde_json::from_str(&node.read("/var/lib/umm/state.json")).unwrap()
}

fn events(node: &Node) -> Vec<String> {
    if !node.exists("/run/umm/journal.log") {
        return Vec::new();
    }
    node.read("/run/umm/journal.log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["UMM_EVENT"].as_str().map(String::from))
        .collect()
}

fn rebooted(node: &Node) -> bool {
    node.exists("/run/umm/init-actions") && node.actions().iter().any(|a| a.contains("reboot"))
}

#[test]
fn a_queued_request_returns_at_once_and_status_shows_it() {
    let node = node_with("[rolling]\nwindows = [\"Mon 22:00-23:00\"]\n");
    let out = node.expect(
        0,
        &[
            "on",
            "--queue=3d",
            "--then",
            "off",
            "--",
            "apt-get",
            "-y",
            "upgrade",
        ],
    );
    assert!(out.contains("Maintenance queued"), "{out}");
    assert!(out.contains("an open maintenance window"), "{out}");
    assert!(out.contains("`umm off` cancels it"), "{out}");
    assert!(!rebooted(&node), "no reboot while queued");
    assert!(events(&node).contains(&"queued".to_string()));
    let status = node.status();
    assert_eq!(status["state"], "operational", "queued is not pending");
    let q = &status["queued"];
    assert_eq!(q["then"], "off");
    assert_eq!(q["command"][0], "apt-get");
    assert_eq!(q["since"], "2026-11-21T19:42:00Z");
    assert_eq!(q["expires"], "2026-11-24T19:42:00Z");
    let text = node.expect(0, &["status"]);
    assert!(
        text.contains("Queued:       since 2026-11-21T19:42:00Z"),
        "{text}"
    );
    assert!(text.contains("command: apt-get with 2 arguments"), "{text}");
    assert!(text.contains("Waiting for:  not tried yet"), "{text}");
    let others = node.as_nobody(&["status", "--json"]);
    let others: Value = serde_json::from_str(&others.out).unwrap();
    assert!(others["queued"]["since"].is_string());
    assert!(others["queued"].get("command").is_none(), "root only");
    // Queued once; a plain umm on meanwhile is refused too.
    let out = node.expect(1, &["on", "--queue"]);
    assert!(out.contains("already waiting for its turn"), "{out}");
    node.expect(1, &["on"]);
    let prom = node.read("/var/lib/prometheus/node-exporter/umm.prom");
    assert!(prom.contains("\numm_queued 1\n"), "{prom}");
}

#[test]
fn outside_a_window_it_waits_and_says_so_inside_it_takes_its_turn() {
    let mut node = node_with("[rolling]\nwindows = [\"Mon 22:00-23:00\"]\n");
    node.expect(0, &["on", "--queue=3d", "--then", "off", "--", "true"]);
    let out = node.expect(0, &["internal", "queue"]);
    assert!(
        out.contains(
            "Queued maintenance waits for: window: the next opens at 2026-11-23T22:00:00Z"
        ),
        "{out}"
    );
    assert!(!rebooted(&node));
    let q = &node.status()["queued"];
    assert_eq!(q["tries"], 1);
    assert_eq!(
        q["waiting_for"][0],
        "window: the next opens at 2026-11-23T22:00:00Z"
    );
    assert!(q["next_try"].as_str().unwrap() > "2026-11-21T19:42:29Z");
    // Backing off: a run a second later does nothing.
    let (code, out) = run_at(&mut node, 1, &["internal", "queue"]);
    assert_eq!((code, out.as_str()), (Some(0), ""));
    // Monday evening: its turn.
    let (code, out) = run_at(&mut node, MONDAY_2230, &["internal", "queue"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Rebooting cleanly into maintenance mode"),
        "{out}"
    );
    assert!(rebooted(&node), "{:?}", node.actions());
    let s = state(&node);
    assert!(s.get("queued").is_none_or(Value::is_null), "{s}");
    let m = &s["maintenance"];
    assert_eq!(m["phase"], "pending", "{m}");
    assert_eq!(m["then"], "off", "{m}");
    assert_eq!(m["command"]["argv"][0], "true", "{m}");
    assert_eq!(node.status()["state"], "pending");
    assert!(events(&node).contains(&"requested".to_string()));
}

#[test]
fn a_failing_check_hook_keeps_it_waiting_named() {
    let node = node_with("");
    node.hook("check", "50-quorum", "echo no quorum; exit 3");
    node.expect(0, &["on", "--queue"]);
    let out = node.expect(0, &["internal", "queue"]);
    assert!(out.contains("check/50-quorum failed"), "{out}");
    assert!(!rebooted(&node));
    assert_eq!(
        node.status()["queued"]["waiting_for"][0],
        "check/50-quorum failed"
    );
}

#[test]
fn a_request_still_waiting_after_its_span_expires_with_an_event_and_a_counter() {
    let mut node = node_with("[rolling]\nwindows = [\"Mon 22:00-23:00\"]\n");
    node.expect(0, &["on", "--queue=1h", "--", "true"]);
    node.expect(0, &["internal", "queue"]);
    let (code, out) = run_at(&mut node, 3600, &["internal", "queue"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("expired unserved"), "{out}");
    assert!(out.contains("window: the next opens"), "{out}");
    assert!(!rebooted(&node));
    assert!(node.status().get("queued").is_none());
    assert!(events(&node).contains(&"queue-expired".to_string()));
    let prom = node.read("/var/lib/prometheus/node-exporter/umm.prom");
    assert!(prom.contains("\numm_queue_expired_total 1\n"), "{prom}");
    assert!(prom.contains("\numm_queued 0\n"), "{prom}");
}

#[test]
fn umm_off_cancels_a_queued_request() {
    let node = node_with("");
    node.expect(0, &["on", "--queue", "--", "true"]);
    let out = node.expect(0, &["off"]);
    assert!(
        out.contains("Cancelled the queued maintenance request"),
        "{out}"
    );
    assert!(node.status().get("queued").is_none());
    assert!(events(&node).contains(&"queue-cancelled".to_string()));
    // Nothing left to try: the timer's run is silent, and nothing entered.
    let out = node.expect(0, &["internal", "queue"]);
    assert_eq!(out, "");
    assert!(!rebooted(&node));
    node.expect(1, &["off"]);
}

#[test]
fn a_turn_the_rules_refuse_drops_the_request_and_says_why() {
    let node = node_with("");
    node.expect(0, &["on", "--queue"]);
    node.expect(0, &["disable"]);
    let out = node.expect(1, &["internal", "queue"]);
    assert!(out.contains("the queued request was dropped"), "{out}");
    assert!(!rebooted(&node));
    assert!(node.status().get("queued").is_none());
    assert!(events(&node).contains(&"queue-dropped".to_string()));
}

/// A node of fleet group "one" (1 slot) on `endpoint`, booted once.
fn fleet_node(endpoint: &str, id: &str) -> Node {
    let mut node = node_with(&format!(
        "[fleet]\nbackend = \"etcd\"\ngroup = \"one\"\nid = \"{id}\"\nendpoints = [\"{endpoint}\"]\nslots = 1\ntimeout = \"10s\"\n"
    ));
    node.boot();
    node
}

/// Against a real etcd: the one slot held by node-a, node-b's queued
/// request waits naming the holder; once node-a is back in service and
/// gave the slot back, node-b's next try takes it and its turn.
#[test]
fn with_the_slot_held_it_waits_naming_the_holder_then_takes_it_when_freed() {
    let Some(etcd) = common::etcd::one_etcd("queue_waits_for_the_slot") else {
        return;
    };
    let mut a = fleet_node(&etcd.endpoint(0), "node-a");
    let mut b = fleet_node(&etcd.endpoint(0), "node-b");
    a.expect(0, &["on"]);
    assert_eq!(etcd.holders("one"), ["node-a"]);
    let out = b.expect(0, &["on", "--queue", "--then", "off", "--", "true"]);
    assert!(out.contains("a free slot of fleet group \"one\""), "{out}");
    let out = b.expect(0, &["internal", "queue"]);
    assert!(
        out.contains("slot: no free slot in fleet group \"one\""),
        "{out}"
    );
    assert!(out.contains("node-a"), "{out}");
    assert!(!rebooted(&b));
    let fleet = b.expect(0, &["fleet", "status"]);
    assert!(fleet.contains("Queued since"), "{fleet}");
    assert!(fleet.contains("node-a"), "{fleet}");
    assert_eq!(etcd.holders("one"), ["node-a"]);
    // node-a through maintenance and back: the slot goes back.
    a.clean_reboot();
    let out = a.expect(0, &["off"]);
    assert!(out.contains("Normal target reached"), "{out}");
    assert!(etcd.holders("one").is_empty());
    let (code, out) = run_at(&mut b, 600, &["internal", "queue"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Took a slot of fleet group \"one\""), "{out}");
    assert!(rebooted(&b));
    assert_eq!(etcd.holders("one"), ["node-b"]);
    let s = state(&b);
    assert_eq!(s["maintenance"]["phase"], "pending");
    assert_eq!(s["maintenance"]["fleet"]["slot"], true);
    assert_eq!(s["fleet"]["held"]["id"], "node-b");
}

/// A try killed between recording its take and sending it
/// (`fleet-take-sent`) leaves the intent ("may hold") in the state; the
/// reconcile (`umm internal fleet-retry`) settles it, and the request is
/// still queued for its next try.
#[test]
fn a_try_killed_during_the_take_leaves_the_intent_that_the_reconcile_settles() {
    let Some(etcd) = common::etcd::one_etcd("queue_killed_during_the_take") else {
        return;
    };
    let b = fleet_node(&etcd.endpoint(0), "node-b");
    b.expect(0, &["on", "--queue", "--", "true"]);
    let mut c = b.command(&["internal", "queue"]);
    c.env("FAILPOINTS", "fleet-take-sent=1*return(stop)")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let stat = format!("/proc/{}/stat", child.id());
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&stat).unwrap();
        if text.rsplit(") ").next().unwrap().starts_with('T') {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let s = state(&b);
    assert_eq!(s["fleet"]["taking"]["group"], "one", "{s}");
    assert!(s["queued"].is_object(), "{s}");
    b.expect(0, &["internal", "fleet-retry"]);
    let s = state(&b);
    assert!(s["fleet"].get("taking").is_none_or(Value::is_null), "{s}");
    assert!(s["queued"].is_object(), "still queued: {s}");
    assert!(etcd.holders("one").is_empty());
    assert!(!rebooted(&b));
}

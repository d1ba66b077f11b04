//! Rolling maintenance's conditions on `umm on`, end to end with the real
//! binary in a temporary root: `[rolling] windows` in the node's local
//! zone, and the health gate against a real Prometheus started here on
//! loopback (Debian's `prometheus`, killed by PID), with a rule that fires
//! and then clears.
//!
//! When prometheus is not installed, the gate tests print a SKIPPED line
//! and pass, unless `UMM_METRICS_REQUIRE_PROMTOOL=1` (as CI sets it: the
//! same package ships promtool).

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::prometheus::{until, Prometheus, CLEAR, FIRING};
use common::Node;

/// The test's clock (`common::NOW`) is Saturday 2026-11-21 19:42:00 UTC.
fn node_with(config: &str) -> Node {
    let node = Node::new().bounded(Duration::from_secs(60));
    node.write("/etc/umm/umm.toml", config);
    node
}

fn pending(node: &Node) -> bool {
    node.status()["state"] == "pending"
}

#[test]
fn umm_on_outside_every_window_is_refused_with_the_next_start_unless_forced() {
    let node = node_with("[rolling]\nwindows = [\"Mon..Fri 22:00-05:00\"]\n");
    let out = node.expect(1, &["on"]);
    assert!(
        out.contains("outside the maintenance windows; the next opens at 2026-11-23T22:00:00"),
        "{out}"
    );
    assert!(out.contains("--force overrides"), "{out}");
    assert!(!pending(&node), "nothing was requested");
    assert!(
        !node.exists("/run/umm/init-actions"),
        "no reboot was asked for"
    );
    let out = node.expect(0, &["on", "--force"]);
    assert!(
        out.contains("Entering anyway (--force): outside the maintenance windows"),
        "{out}"
    );
    assert!(pending(&node));
}

#[test]
fn umm_on_inside_a_window_enters() {
    // Friday's window runs into Saturday 05:00; Saturday's evening one is open.
    let node = node_with("[rolling]\nwindows = [\"Fri 22:00-05:00\", \"Sat 19:00-20:00\"]\n");
    node.expect(0, &["on"]);
    assert!(pending(&node));
}

/// The window is the node's local time: one hour east of UTC, 19:42Z is
/// 20:42, inside "Sat 20:00-21:00"; in UTC it is not.
#[test]
fn windows_are_read_in_the_zone_of_etc_localtime() {
    let config = "[rolling]\nwindows = [\"Sat 20:00-21:00\"]\n";
    let utc = node_with(config);
    let out = utc.expect(1, &["on"]);
    assert!(
        out.contains("the next opens at 2026-11-21T20:00:00 ("),
        "{out}"
    );
    let east = node_with(config);
    std::fs::write(east.path("/etc/localtime"), tzif_plus_one_hour()).unwrap();
    east.expect(0, &["on"]);
    assert!(pending(&east));
}

/// A TZif (version 1) file for a fixed zone, UTC+1.
fn tzif_plus_one_hour() -> Vec<u8> {
    let mut f = b"TZif".to_vec();
    f.extend([0u8; 16]);
    for count in [0u32, 0, 0, 0, 1, 4] {
        f.extend(count.to_be_bytes());
    }
    f.extend(3600i32.to_be_bytes());
    f.extend([0, 0]);
    f.extend(b"PLS\0");
    f
}

#[test]
fn rolling_settings_that_do_not_fit_together_are_errors_at_their_line() {
    // (umm.toml, part of the error)
    let cases = [
        (
            "[rolling]\ngate_alerts = \".*\"\n",
            "umm.toml:2: rolling.gate_alerts: needs gate_url",
        ),
        (
            "[rolling]\n\ngate_url = \"http://127.0.0.1:9\"\n",
            "umm.toml:3: rolling.gate_url: set gate_alerts or gate_expr too",
        ),
        (
            "[rolling]\nwindows = [\"Mon..Fri 22:00\"]\n",
            "expected DAYS HH:MM-HH:MM",
        ),
        (
            "[rolling]\nwindows = \"Mon 01:00-02:00\"\n",
            "expected a list of windows",
        ),
        (
            "[rolling]\ngate_expr = \"\"\n",
            "empty: remove the key instead",
        ),
        ("[rolling]\ngate = 1\n", "gate"),
    ];
    for (config, want) in cases {
        let node = node_with(config);
        let out = node.expect(1, &["on"]);
        assert!(out.contains(want), "{config:?}: {out}");
        assert!(!pending(&node));
    }
}

// -- the health gate, against a real Prometheus -----------------------------

#[test]
fn a_firing_alert_keeps_umm_on_out_until_it_clears() {
    let Some(prom) = Prometheus::start("a_firing_alert_keeps_umm_on_out", FIRING) else {
        return;
    };
    let wait = until(Duration::from_secs(60), || prom.firing());
    assert!(wait, "the rule never fired: {}", prom.log());
    let node = node_with(&format!(
        "[rolling]\ngate_url = \"{}\"\ngate_alerts = \"UmmTest.*\"\n",
        prom.url
    ));
    let out = node.expect(1, &["on"]);
    assert!(out.contains("gate_alerts: UmmTestDown"), "{out}");
    assert!(!pending(&node));
    // An alert the regex does not match does not close the gate.
    let other = node_with(&format!(
        "[rolling]\ngate_url = \"{}\"\ngate_alerts = \"Ceph.*\"\n",
        prom.url
    ));
    other.expect(0, &["on"]);
    prom.rules(CLEAR, false);
    node.expect(0, &["on"]);
    assert!(pending(&node));
}

#[test]
fn the_gate_expression_must_return_nothing_and_the_gate_fails_closed() {
    let Some(prom) = Prometheus::start("the_gate_expression_must_return_nothing", CLEAR) else {
        return;
    };
    // (gate_expr, refused, part of the output)
    let cases = [
        ("vector(1) < 0", false, ""),
        (
            "label_replace(vector(1), \"osd\", \"7\", \"\", \"\")",
            true,
            "gate_expr: {osd=\"7\"}",
        ),
        (
            "1",
            true,
            "gate_expr: could not be checked (the query returned a scalar",
        ),
        (
            "sum(",
            true,
            "gate_expr: could not be checked (Prometheus answered an error",
        ),
    ];
    for (expr, refused, want) in cases {
        let node = node_with(&format!(
            "[rolling]\ngate_url = \"{}\"\ngate_expr = '{expr}'\n",
            prom.url
        ));
        let out = node.expect(if refused { 1 } else { 0 }, &["on"]);
        assert!(out.contains(want), "{expr}: {out}");
        assert_eq!(pending(&node), !refused, "{expr}");
    }
    // Nothing answers at gate_url: closed, and --force goes on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = node_with(&format!(
        "[rolling]\ngate_url = \"http://127.0.0.1:{port}\"\ngate_alerts = \".*\"\ngate_timeout = \"2s\"\n"
    ));
    let out = node.expect(1, &["on"]);
    assert!(out.contains("gate_alerts: could not be checked"), "{out}");
    assert!(out.contains("the gate stays closed"), "{out}");
    let out = node.expect(0, &["on", "--force"]);
    assert!(out.contains("Overriding the closed health gate"), "{out}");
    assert!(pending(&node));
}

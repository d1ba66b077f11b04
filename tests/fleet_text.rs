//! What the fleet shows of text it does not own (issue #22, items 7 and
//! 9): an endpoint URL's user information never leaves root's files (not
//! in status.json, the log, stderr or `umm fleet status`), and holder ids
//! and host names other nodes wrote are shown escaped and on one line.
//! Nodes are temporary roots (tests/common) against a real etcd on
//! loopback where one is needed (SKIPPED without it, unless
//! `UMM_FLEET_REQUIRE_ETCD=1`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::etcd::{free_port, one_etcd, raw_put};
use common::Node;
use umm::fleet::etcd::{holder_key, semaphore_key};

const PASSWORD: &str = "hunter2-s3cret";

/// A node whose `[fleet]` is in a root-only drop-in naming `endpoint` with
/// user information.
fn node_with_credentials(endpoint_host: &str) -> Node {
    let mut node = Node::new().bounded(Duration::from_secs(120));
    let url = format!("http://umm:{PASSWORD}@{endpoint_host}");
    node.write(
        "/etc/umm/umm.toml.d/50-fleet.toml",
        &format!(
            "[fleet]\nbackend = \"etcd\"\ngroup = \"g\"\nid = \"node-a\"\nendpoints = [\"{url}\"]\ntimeout = \"1s\"\n"
        ),
    );
    let dropin = node.path("/etc/umm/umm.toml.d/50-fleet.toml");
    std::fs::set_permissions(dropin, std::fs::Permissions::from_mode(0o600)).unwrap();
    node.boot();
    node
}

/// Everything a user or the log can see of `node`.
fn visible(node: &Node, said: &str) -> Vec<(&'static str, String)> {
    let nobody = node.as_nobody(&["status", "--json"]);
    vec![
        ("what umm said", said.to_string()),
        ("status.json", node.read("/var/lib/umm/status.json")),
        ("the log", node.log()),
        ("the journal records", node.read("/run/umm/journal.log")),
        ("umm status as nobody", nobody.out),
        (
            "umm.prom",
            node.read("/var/lib/prometheus/node-exporter/umm.prom"),
        ),
        ("last-good", node.read("/var/lib/umm/last-good-config.json")),
    ]
}

fn assert_no_password(node: &Node, said: &str) {
    for (what, text) in visible(node, said) {
        assert!(
            !text.contains(PASSWORD),
            "the password reached {what}:\n{text}"
        );
    }
}

#[test]
fn an_endpoints_password_never_reaches_status_the_log_or_stderr() {
    let port = free_port();
    let node = node_with_credentials(&format!("127.0.0.1:{port}"));
    // Nothing listens: the take fails, naming the endpoint.
    let out = node.expect(1, &["on"]);
    assert!(out.contains("no etcd endpoint answered"), "{out}");
    assert!(
        out.contains(&format!("http://***@127.0.0.1:{port}")),
        "{out}"
    );
    assert_no_password(&node, &out);
    // --force goes on without a slot; the episode records why.
    let out = node.expect(0, &["on", "--force"]);
    assert_no_password(&node, &out);
    let r = node.run(&["fleet", "status"]);
    assert!(r.out.contains("127.0.0.1"), "{}", r.out);
    assert_no_password(&node, &r.out);
    let r = node.run(&["fleet", "status", "--json"]);
    assert_no_password(&node, &r.out);
}

/// etcd without authentication answers a URL with user information (sent
/// as basic auth) with 401: the release fails, stays pending, and its
/// error, which names the endpoint, is kept and shown.
#[test]
fn a_release_that_fails_keeps_the_password_out_of_the_pending_error() {
    let Some(etcd) = one_etcd("fleet_text_release") else {
        return;
    };
    let endpoint = etcd.endpoint(0);
    let mut node = Node::new().bounded(Duration::from_secs(120));
    node.write(
        "/etc/umm/umm.toml",
        &format!(
            "[fleet]\nbackend = \"etcd\"\ngroup = \"g\"\nid = \"node-a\"\nendpoints = [\"{endpoint}\"]\ntimeout = \"1s\"\n"
        ),
    );
    node.boot();
    let out = node.expect(0, &["on"]);
    assert!(out.contains("Took a slot"), "{out}");
    node.clean_reboot();
    // Credentials arrive in a root-only drop-in while in maintenance.
    let host = endpoint.trim_start_matches("http://");
    node.write(
        "/etc/umm/umm.toml.d/50-fleet.toml",
        &format!("[fleet]\nendpoints = [\"http://umm:{PASSWORD}@{host}\"]\n"),
    );
    let dropin = node.path("/etc/umm/umm.toml.d/50-fleet.toml");
    std::fs::set_permissions(dropin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = node.expect(0, &["off"]);
    assert!(out.contains("could not be given back"), "{out}");
    assert!(out.contains("http://***@"), "{out}");
    let status = node.read("/var/lib/umm/status.json");
    assert!(status.contains("***@"), "{status}");
    assert_no_password(&node, &out);
    let r = node.run(&["fleet", "status"]);
    assert_no_password(&node, &r.out);
}

/// A holder id and a host name with a colour escape and a newline, as a
/// hostile or broken peer could write them into the group's keys.
#[test]
fn holder_ids_and_hosts_from_peers_are_shown_escaped_on_one_line() {
    let Some(etcd) = one_etcd("fleet_text_escaped") else {
        return;
    };
    let endpoint = etcd.endpoint(0);
    let evil = "evil\u{1b}[31m\nid";
    let value = serde_json::json!({"total_slots": 1, "holders": [evil]});
    raw_put(&endpoint, &semaphore_key("g"), value.to_string().as_bytes());
    let record = serde_json::json!({
        "id": evil, "host": "web\u{1b}]0;owned\u{7}\n1",
        "since": "2026-11-21T19:42:00Z", "since_unix": 1795290120_i64
    });
    raw_put(
        &endpoint,
        &holder_key("g", evil),
        record.to_string().as_bytes(),
    );
    let mut node = Node::new().bounded(Duration::from_secs(120));
    node.write(
        "/etc/umm/umm.toml",
        &format!(
            "[fleet]\nbackend = \"etcd\"\ngroup = \"g\"\nid = \"node-a\"\nendpoints = [\"{endpoint}\"]\ntimeout = \"5s\"\n"
        ),
    );
    node.boot();
    let out = node.expect(1, &["on"]);
    assert_eq!(
        out.trim().lines().count(),
        1,
        "the refusal was split:\n{out}"
    );
    assert!(out.contains(r"evil\u{1b}[31m\nid"), "{out}");
    let r = node.as_nobody(&["fleet", "status"]);
    assert_eq!(r.code, Some(0), "{}", r.out);
    assert!(
        r.out
            .contains(r"  evil\u{1b}[31m\nid on web\u{1b}]0;owned\u{7}\n1"),
        "{}",
        r.out
    );
    let log = node.log();
    for (what, text) in [
        ("the refusal", &out),
        ("fleet status", &r.out),
        ("the log", &log),
    ] {
        assert!(
            !text.contains('\u{1b}'),
            "an escape reached {what}:\n{text}"
        );
        assert!(
            !text.contains("\nid"),
            "a newline from a peer reached {what}:\n{text}"
        );
    }
    // The JSON view keeps the id as it is (JSON escapes it).
    let r = node.as_nobody(&["fleet", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["holders"][0]["id"], evil);
}

//! `umm.prom`, the metrics umm writes for node_exporter's textfile
//! collector, through a crash loop, an `umm on` with a failing on.d hook and
//! services that do not come back; and the example alerting rules
//! (`packaging/examples/umm-alerts.yml`).
//!
//! Every file umm writes is checked with `promtool check metrics`, and the
//! rules with `promtool check rules` and `promtool test rules`. When
//! promtool is not installed (Debian package `prometheus`), those checks
//! print a SKIPPED line and pass, unless `UMM_METRICS_REQUIRE_PROMTOOL=1`
//! (as CI sets it), when they fail.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::fleetlock::{LockServer, GROUP};
use common::Node;

const PROM: &str = "/var/lib/prometheus/node-exporter/umm.prom";

/// promtool, or `None` (after a SKIPPED line) when it is missing and not
/// required (UMM_METRICS_REQUIRE_PROMTOOL).
fn promtool(test: &str) -> Option<PathBuf> {
    common::require_tool(
        test,
        "promtool",
        "prometheus",
        "UMM_METRICS_REQUIRE_PROMTOOL",
    )
}

/// `promtool check metrics` on `text` (its lint included): panics with
/// what promtool said when it finds a problem.
fn check_metrics(promtool: &Path, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of `series` (name and labels, as written) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .map(|(_, v)| v.parse().unwrap())
}

fn node_with_collector() -> Node {
    let node = Node::new();
    std::fs::create_dir_all(node.path("/var/lib/prometheus/node-exporter")).unwrap();
    node
}

/// The file as umm wrote it last, checked by promtool when it is there.
fn metrics(node: &Node, promtool: Option<&Path>) -> String {
    let text = node.read(PROM);
    if let Some(p) = promtool {
        check_metrics(p, &text);
    }
    text
}

#[test]
fn a_crash_loop_and_its_resume_show_in_the_metrics() {
    let promtool = promtool("a_crash_loop_and_its_resume_show_in_the_metrics");
    let p = promtool.as_deref();
    let mut node = node_with_collector();
    node.services("cron.service active enabled\ndb.service active enabled\n");
    node.boot();
    let m = metrics(&node, p);
    assert_eq!(
        value(&m, r#"umm_state{state="operational",reason=""}"#),
        Some(1.0)
    );
    assert_eq!(value(&m, "umm_enabled"), Some(1.0));
    assert_eq!(value(&m, "umm_unclean_boots_threshold"), Some(2.0));
    for n in 1..=2 {
        node.crash_and_boot();
        let m = metrics(&node, p);
        assert_eq!(value(&m, "umm_unclean_boots"), Some(f64::from(n)));
        assert_eq!(
            value(&m, r#"umm_state{state="operational",reason=""}"#),
            Some(1.0)
        );
    }
    node.crash_and_boot();
    let m = metrics(&node, p);
    assert_eq!(
        value(&m, r#"umm_state{state="maintenance",reason="crash-loop"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&m, r#"umm_state{state="operational",reason=""}"#),
        Some(0.0)
    );
    assert_eq!(
        value(&m, r#"umm_maintenance_entered_total{reason="crash-loop"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "umm_maintenance_start_timestamp_seconds"),
        Some(common::NOW.parse().unwrap())
    );
    // A crash in maintenance holds it: the same episode, not counted again.
    node.crash_and_boot();
    let m = metrics(&node, p);
    assert_eq!(
        value(&m, r#"umm_maintenance_entered_total{reason="crash-loop"}"#),
        Some(1.0)
    );
    // db.service does not come back.
    node.services("cron.service active enabled\ndb.service inactive enabled\n");
    node.expect(1, &["off"]);
    let m = metrics(&node, p);
    assert_eq!(
        value(&m, r#"umm_state{state="operational",reason=""}"#),
        Some(1.0)
    );
    assert_eq!(value(&m, "umm_services_not_back"), Some(1.0));
    assert_eq!(value(&m, "umm_unclean_boots"), Some(0.0));
    assert_eq!(value(&m, "umm_maintenance_start_timestamp_seconds"), None);
    assert_eq!(
        value(&m, "umm_maintenance_end_timestamp_seconds"),
        Some(common::NOW.parse().unwrap())
    );
    // The counter survives the reboots (it is kept in the state).
    node.clean_reboot();
    let m = metrics(&node, p);
    assert_eq!(
        value(&m, r#"umm_maintenance_entered_total{reason="crash-loop"}"#),
        Some(1.0)
    );
}

#[test]
fn a_scheduled_command_and_a_failing_on_hook_show_in_the_metrics() {
    let promtool = promtool("a_scheduled_command_and_a_failing_on_hook_show_in_the_metrics");
    let p = promtool.as_deref();
    let mut node = node_with_collector();
    node.hook("on", "10-fails", "exit 3");
    node.boot();
    node.expect(0, &["on", "--", "sh", "-c", "exit 7"]);
    let m = metrics(&node, p);
    assert_eq!(
        value(&m, r#"umm_state{state="pending",reason="manual"}"#),
        Some(1.0)
    );
    node.clean_reboot();
    node.expect(0, &["internal", "maintenance"]);
    let m = metrics(&node, p);
    assert_eq!(
        value(&m, r#"umm_state{state="maintenance",reason="manual"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&m, r#"umm_maintenance_entered_total{reason="manual"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&m, r#"umm_hook_failures_total{phase="on"}"#),
        Some(1.0)
    );
    assert_eq!(value(&m, "umm_scheduled_command_exit_code"), Some(7.0));
    node.expect(0, &["off"]);
    let m = metrics(&node, p);
    // Still the last command's, after the episode closed.
    assert_eq!(value(&m, "umm_scheduled_command_exit_code"), Some(7.0));
    assert_eq!(
        value(&m, r#"umm_hook_failures_total{phase="on"}"#),
        Some(1.0)
    );
}

/// Issue 24: a leave whose check is not clean keeps the slot and halts
/// the group's roll, by itself (`umm on --then off`) or by `umm off`: the
/// metric says so with its cause (as promtool reads the file
/// node_exporter serves), and `umm status` (text and JSON) says why and
/// what resumes it, until `umm fleet release`.
#[test]
fn a_check_that_is_not_clean_halts_the_roll_until_fleet_release() {
    let promtool = promtool("a_check_that_is_not_clean_halts_the_roll_until_fleet_release");
    let p = promtool.as_deref();
    let server = LockServer::start(1);
    let why = "the check after leaving was not clean (umm history)";
    for on in [&["on", "--then", "off", "--", "true"][..], &["on"]] {
        let mut node = node_with_collector();
        node.write(
            "/etc/umm/umm.toml",
            &format!(
                "[fleet]\nbackend = \"fleetlock\"\ngroup = \"{GROUP}\"\nid = \"node-a\"\nurl = \"{}\"\ntimeout = \"2s\"\n",
                server.url
            ),
        );
        node.boot();
        node.services("cron.service active enabled\n");
        node.expect(0, on);
        node.clean_reboot();
        node.services("cron.service failed enabled\n");
        let leave = if on.len() > 1 {
            &["internal", "maintenance"][..]
        } else {
            &["off"]
        };
        let _ = node.run(leave);
        assert_eq!(node.status()["state"], "operational", "{on:?}");
        assert_eq!(server.holders(), ["node-a"], "{on:?}");
        let m = metrics(&node, p);
        assert_eq!(
            value(&m, r#"umm_roll_halted{cause="check"}"#),
            Some(1.0),
            "{m}"
        );
        let out = node.expect(0, &["status"]);
        let line = format!("Roll halted:  by this node: {why}; it keeps its fleet slot; fix it, then `umm fleet release` resumes the roll");
        assert!(out.lines().any(|l| l == line), "{out}");
        assert_eq!(node.status()["roll_halted"], why);
        assert!(node
            .log()
            .contains("the group's roll is halted by this node"));
        // Fixed: the release resumes the roll.
        node.services("cron.service active enabled\n");
        node.expect(0, &["fleet", "release"]);
        let m = metrics(&node, p);
        assert_eq!(value(&m, r#"umm_roll_halted{cause=""}"#), Some(0.0), "{m}");
        assert_eq!(node.status()["roll_halted"], serde_json::Value::Null);
        assert!(!node.expect(0, &["status"]).contains("Roll halted"));
        assert!(server.holders().is_empty());
    }
}

#[test]
fn nothing_is_written_without_the_collector_directory_or_when_turned_off() {
    let mut node = Node::new();
    node.boot();
    assert!(!node.exists("/var/lib/prometheus"));
    let mut node = node_with_collector();
    node.write("/etc/umm/umm.toml", "[metrics]\ntextfile_dir = \"\"\n");
    node.boot();
    assert!(!node.exists(PROM));
    let mut node = Node::new();
    std::fs::create_dir_all(node.path("/srv/prom")).unwrap();
    node.write(
        "/etc/umm/umm.toml",
        "[metrics]\ntextfile_dir = \"/srv/prom\"\n",
    );
    node.boot();
    assert!(node.read("/srv/prom/umm.prom").contains("umm_state{"));
}

fn examples(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/examples")
        .join(name)
}

/// `promtool <args>`; panics with what it said when it fails.
fn promtool_ok(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(examples(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_example_alerting_rules_check_and_pass_their_tests() {
    let Some(p) = promtool("the_example_alerting_rules_check_and_pass_their_tests") else {
        return;
    };
    promtool_ok(&p, &["check", "rules", "umm-alerts.yml"]);
    promtool_ok(&p, &["test", "rules", "umm-alerts.test.yml"]);
}

#[test]
fn the_example_rules_name_only_metrics_umm_writes() {
    let rules = std::fs::read_to_string(examples("umm-alerts.yml")).unwrap();
    let names: Vec<&str> = umm::output::metrics::METRICS
        .iter()
        .map(|m| m.name)
        .collect();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("umm_") {
            assert!(names.contains(&word), "{word} is not a metric umm writes");
        }
    }
}

/// docs/monitoring.md lists every example alert, and no other.
#[test]
fn the_docs_list_the_example_alerts() {
    let rules = std::fs::read_to_string(examples("umm-alerts.yml")).unwrap();
    let mut shipped: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    let doc = include_str!("../docs/monitoring.md");
    let (_, alerts) = doc.split_once("## Alerts").unwrap();
    let mut listed: Vec<&str> = alerts
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name))
        .collect();
    shipped.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        listed, shipped,
        "docs/monitoring.md (left), umm-alerts.yml (right)"
    );
}

#[test]
fn a_symlinked_textfile_directory_is_not_followed_and_said_in_one_line() {
    let mut node = Node::new();
    // The collector directory replaced by a link to a directory root must
    // not write into.
    std::fs::create_dir_all(node.path("/var/lib/prometheus")).unwrap();
    std::fs::create_dir_all(node.path("/etc/cron.d")).unwrap();
    std::os::unix::fs::symlink(
        node.path("/etc/cron.d"),
        node.path("/var/lib/prometheus/node-exporter"),
    )
    .unwrap();
    node.boot();
    assert_eq!(
        node.names("/etc/cron.d"),
        Vec::<String>::new(),
        "umm wrote through the link"
    );
    let log = node.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("symbolic link"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("/var/lib/prometheus/node-exporter"),
        "{log}"
    );
    // A real directory again: written.
    std::fs::remove_file(node.path("/var/lib/prometheus/node-exporter")).unwrap();
    std::fs::create_dir(node.path("/var/lib/prometheus/node-exporter")).unwrap();
    node.boot();
    assert!(node.read(PROM).contains("umm_state"));
}

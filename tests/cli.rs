//! End-to-end tests of the `umm` binary in a temporary root: every path goes
//! through `UMM_ROOT`, the init system is the test recorder, and boots are
//! simulated by changing the boot id in `<root>/proc` and running the same
//! entry points the units run.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use common::Node;
use rstest::rstest;
use serde_json::Value;

#[test]
fn status_of_a_fresh_node_has_the_documented_fields() {
    let node = Node::new();
    let s = node.status();
    assert_eq!(s["state"], "operational");
    assert_eq!(s["enabled"], true);
    assert_eq!(s["reason"], Value::Null);
    assert_eq!(s["since"], Value::Null);
    assert_eq!(s["unclean_boots"], 0);
    assert_eq!(s["reboot_count"], 2);
    assert_eq!(s["counter_reset_time"], 600);
    assert_eq!(s["command"], Value::Null);
    let text = node.expect(0, &["status"]);
    assert!(text.contains("State:        operational"), "{text}");
}

#[test]
fn a_crash_loop_stops_in_maintenance_and_off_resumes() {
    let mut node = Node::new();
    node.boot();
    for expected in 1..=2 {
        node.crash_and_boot();
        assert_eq!(node.status()["unclean_boots"], expected);
        assert_eq!(node.status()["state"], "operational");
    }
    node.crash_and_boot();
    let s = node.status();
    assert_eq!(s["state"], "maintenance");
    assert_eq!(s["reason"], "crash-loop");
    assert_eq!(s["since"], "2026-11-21T19:42:00Z");
    assert_eq!(s["unclean_boots"], 3);
    let ids: Vec<_> = s["crash_boots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["boot_id"].clone())
        .collect();
    assert_eq!(ids, ["boot-1", "boot-2", "boot-3"]);
    assert!(node.read("/run/motd.d/umm").contains("MAINTENANCE MODE"));
    assert!(node.read("/run/issue.d/umm.issue").contains("umm off"));
    // Further crashes keep it in maintenance.
    node.crash_and_boot();
    assert_eq!(node.status()["state"], "maintenance");
    let out = node.expect(0, &["off"]);
    assert!(out.contains("Normal target reached"), "{out}");
    assert_eq!(node.actions(), ["resume"]);
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["unclean_boots"].as_u64()),
        (Some("operational"), Some(0))
    );
    assert_eq!(s["this_boot"]["resumed"], true);
    assert!(!node.path("/run/motd.d/umm").exists(), "banner left behind");
    let log = node.log();
    for line in [
        "unclean boot(s) in a row",
        "entering maintenance mode (reason crash-loop)",
        "leaving maintenance (umm off)",
        "left maintenance (reason crash-loop): episode closed",
    ] {
        assert!(log.contains(line), "missing {line:?} in the log:\n{log}");
    }
}

#[test]
fn clean_reboots_never_count() {
    let mut node = Node::new();
    node.boot();
    for _ in 0..5 {
        node.clean_reboot();
    }
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["unclean_boots"].as_u64()),
        (Some("operational"), Some(0))
    );
}

#[test]
fn uptime_past_counter_reset_time_resets_the_count() {
    let mut node = Node::new();
    node.write("/etc/umm/umm.toml", "counter_reset_time = \"90s\"\n");
    node.boot();
    node.crash_and_boot();
    node.crash_and_boot();
    assert_eq!(node.status()["unclean_boots"], 2);
    node.write("/proc/uptime", "89.00 1.00\n");
    node.expect(0, &["internal", "uptime-reached"]);
    assert_eq!(node.status()["unclean_boots"], 2, "reset before the time");
    node.write("/proc/uptime", "90.50 1.00\n");
    node.expect(0, &["internal", "uptime-reached"]);
    assert_eq!(node.status()["unclean_boots"], 0);
    // The boot that reached the reset time and then crashed is not unclean.
    node.crash_and_boot();
    assert_eq!(node.status()["unclean_boots"], 0);
}

#[test]
fn on_records_the_command_and_who_asked_then_reboots() {
    let mut node = Node::new();
    node.env.push(("SUDO_USER".into(), "alice".into()));
    node.env.push((
        "SSH_CONNECTION".into(),
        "192.0.2.7 51000 192.0.2.1 22".into(),
    ));
    node.boot();
    let out = node.expect(
        0,
        &["on", "--", "sh", "-c", "echo from maintenance; exit 3"],
    );
    assert!(out.contains("Rebooting"), "{out}");
    assert_eq!(node.actions(), ["reboot"]);
    let s = node.status();
    assert_eq!(s["state"], "pending");
    assert_eq!(s["reason"], "manual");
    assert_eq!(s["requested_by"]["user"], "alice");
    assert_eq!(s["requested_by"]["from"], "192.0.2.7");
    assert_eq!(
        s["command"]["argv"],
        serde_json::json!(["sh", "-c", "echo from maintenance; exit 3"])
    );
    assert_eq!(s["command"]["exit_code"], Value::Null);
    assert!(node
        .log()
        .contains("maintenance requested by alice from 192.0.2.7"));
    // A second request is refused in one line.
    let refusal = node.expect(1, &["on"]);
    assert_eq!(refusal.trim().lines().count(), 1, "{refusal}");
    assert!(refusal.contains("already requested"), "{refusal}");

    node.clean_reboot();
    assert_eq!(node.status()["state"], "maintenance");
    node.expect(0, &["internal", "maintenance"]);
    let s = node.status();
    assert_eq!(s["command"]["exit_code"], 3);
    assert_eq!(s["command"]["output"], "/var/lib/umm/command.log");
    assert!(s["command"]["ended"].is_string());
    assert_eq!(node.read("/var/lib/umm/command.log"), "from maintenance\n");
    assert!(node.expect(1, &["on"]).contains("already in maintenance"));

    // A crash during maintenance boots back into it; the command is not run twice.
    fs::remove_file(node.path("/var/lib/umm/command.log")).unwrap();
    node.crash_and_boot();
    node.expect(0, &["internal", "maintenance"]);
    assert_eq!(node.status()["state"], "maintenance");
    assert!(
        !node.path("/var/lib/umm/command.log").exists(),
        "the command ran twice"
    );

    node.expect(0, &["off", "reboot"]);
    assert_eq!(node.actions(), ["reboot", "reboot"]);
    // The episode closes once the normal boot reaches its target (umm-after).
    assert_eq!(node.status()["state"], "resuming");
    node.clean_reboot();
    assert_eq!(node.status()["state"], "resuming");
    assert_eq!(node.status()["this_boot"]["mode"], "normal");
    node.expect(0, &["internal", "after-resume"]);
    let s = node.status();
    assert_eq!(s["state"], "operational");
    assert_eq!(s["last_episode"]["end"], "rebooted");
    assert_eq!(s["last_episode"]["command"]["exit_code"], 3);
}

#[test]
fn on_without_double_dash_is_refused_with_a_hint() {
    let mut node = Node::new();
    node.boot();
    let out = node.expect(2, &["on", "touch", "/tmp/x"]);
    assert!(out.contains("put the command after --"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert_eq!(node.status()["state"], "operational");
    assert!(node.actions().is_empty());
    node.expect(0, &["on", "--", "touch", "/tmp/x"]);
    assert_eq!(
        node.status()["command"]["argv"],
        serde_json::json!(["touch", "/tmp/x"])
    );
}

/// Issue #16 item 7: a mistyped option was taken as the scheduled command
/// and the node rebooted for it.
#[rstest]
#[case::dryrun(&["on", "--dryrun"])]
#[case::dry_underscore(&["on", "--dry_run"])]
#[case::short_n(&["on", "-n"])]
#[case::short_f(&["on", "-f"])]
#[case::forse(&["on", "--forse"])]
#[case::force_then_dryrun(&["on", "--force", "--dryrun"])]
#[case::dryrun_then_command(&["on", "--dryrun", "--", "true"])]
#[case::word_without_dashes(&["on", "sh", "-c", "x"])]
fn a_mistyped_on_is_a_usage_error_and_changes_nothing(#[case] args: &[&str]) {
    let mut node = Node::new();
    node.boot();
    let before = node.read("/var/lib/umm/state.json");
    let out = node.expect(2, args);
    assert!(out.contains("--"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    assert_eq!(
        node.read("/var/lib/umm/state.json"),
        before,
        "state changed"
    );
    assert!(
        node.actions().is_empty(),
        "asked init for {:?}",
        node.actions()
    );
}

#[test]
fn off_when_operational_is_refused() {
    let mut node = Node::new();
    node.boot();
    let out = node.expect(1, &["off"]);
    assert!(out.contains("not in maintenance"), "{out}");
    assert!(node.actions().is_empty());
}

#[test]
fn off_cancels_a_pending_request_without_rebooting() {
    let mut node = Node::new();
    node.boot();
    node.expect(0, &["on"]);
    let out = node.expect(0, &["off"]);
    assert!(out.contains("Cancelled"), "{out}");
    assert_eq!(node.actions(), ["reboot"]);
    assert_eq!(node.status()["state"], "operational");
}

#[test]
fn off_reports_a_resume_that_did_not_reach_the_normal_target() {
    let mut node = Node::new();
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    assert_eq!(node.status()["reason"], "cmdline");
    node.write("/run/umm/init-resume-fails", "");
    let out = node.expect(1, &["off"]);
    assert!(out.contains("broken.service"), "{out}");
    assert!(out.contains("not reached"), "{out}");
}

#[test]
fn off_no_wait_returns_at_once() {
    let mut node = Node::new();
    node.write("/proc/cmdline", "umm=on\n");
    node.boot();
    node.expect(0, &["off", "--no-wait"]);
    assert_eq!(node.actions(), ["resume --no-wait"]);
}

#[test]
fn kernel_command_line_off_skips_but_keeps_the_request() {
    let mut node = Node::new();
    node.boot();
    node.expect(0, &["on"]);
    node.write("/proc/cmdline", "ro umm=off\n");
    node.clean_reboot();
    let s = node.status();
    assert_eq!(s["state"], "pending");
    assert_eq!(s["this_boot"]["mode"], "normal");
    assert_eq!(s["this_boot"]["skipped_by_cmdline"], true);
    node.write("/proc/cmdline", "ro\n");
    node.clean_reboot();
    assert_eq!(node.status()["state"], "maintenance");
}

#[test]
fn disabled_never_enters_and_refuses_on() {
    let mut node = Node::new();
    node.boot();
    node.expect(0, &["disable"]);
    for _ in 0..5 {
        node.crash_and_boot();
    }
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["enabled"].as_bool()),
        (Some("operational"), Some(false))
    );
    assert_eq!(s["unclean_boots"], 0);
    assert!(node.expect(1, &["on"]).contains("umm enable"));
    node.expect(0, &["enable"]);
    assert_eq!(node.status()["enabled"], true);
}

#[test]
fn disable_in_maintenance_is_refused_with_a_hint() {
    let mut node = Node::new();
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    let out = node.expect(1, &["disable"]);
    assert!(out.contains("run `umm off` first"), "{out}");
    assert_eq!(node.status()["enabled"], true);
}

#[test]
fn enable_refused_when_the_configuration_disables_umm() {
    let node = Node::new();
    node.write("/etc/umm/umm.toml", "# site policy\nenabled = false\n");
    let out = node.expect(1, &["enable"]);
    assert!(out.contains("etc/umm/umm.toml:2"), "{out}");
    assert_eq!(node.status()["enabled"], false);
}

#[test]
fn mutating_commands_need_root_and_status_does_not() {
    let mut node = Node::new();
    node.boot();
    let out = node.as_nobody(&["status", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.out);
    for cmd in [&["on"][..], &["off"], &["enable"], &["disable"]] {
        let out = node.as_nobody(cmd);
        assert_eq!(out.code, Some(1));
        let err = out.out;
        assert!(err.contains("needs root"), "{cmd:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[rstest]
#[case(&["bogus"])]
#[case(&["off", "sideways"])]
#[case(&["status", "--yaml"])]
#[case(&["off", "--timeout", "soon"])]
#[case(&["off", "--timeout", "0"])]
#[case(&["off", "--timeout", "0s"])]
#[case(&["off", "--timeout", "31d"])]
#[case(&["off", "--timeout", "18446744073709551615"])]
fn usage_errors_exit_2(#[case] args: &[&str]) {
    Node::new().expect(2, args);
}

#[rstest]
#[case::syntax("reboot_count = \n", 1, "reboot_count")]
#[case::unknown_key("enabled = true\nreboot_cuont = 3\n", 2, "reboot_cuont")]
#[case::bad_value("counter_reset_time = \"ten\"\n", 1, "counter_reset_time")]
#[case::wrong_type("reboot_count = \"2\"\n", 1, "reboot_count")]
fn bad_configuration_is_one_clear_line(#[case] text: &str, #[case] line: usize, #[case] key: &str) {
    let mut node = Node::new();
    node.write("/etc/umm/umm.toml", text);
    let out = node.expect(1, &["on"]);
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(
        out.contains(&format!("etc/umm/umm.toml:{line}: {key}: ")),
        "{out}"
    );
    assert!(
        node.actions().is_empty(),
        "rebooted despite the bad configuration"
    );
    // status reports it; the boot goes on with the defaults.
    let s = node.status();
    assert!(s["config"]["error"].as_str().unwrap().contains(key));
    node.boot();
    assert!(node.log().contains("using the defaults"));
}

#[test]
fn legacy_configuration_is_honoured_and_named() {
    let mut node = Node::new();
    node.write(
        "/etc/umm.conf",
        "UMM=yes\nREBOOT_COUNT=0\nCOUNTER_RESET_TIME=5\n",
    );
    let s = node.status();
    assert_eq!(
        (s["reboot_count"].as_u64(), s["counter_reset_time"].as_u64()),
        (Some(0), Some(300))
    );
    assert_eq!(s["config"]["legacy"], true);
    assert!(node
        .expect(0, &["status"])
        .contains("the original tool's format"));
    node.boot();
    node.crash_and_boot();
    assert_eq!(node.status()["reason"], "crash-loop");
}

#[rstest]
#[case::truncated(&b"{\"version\": 1, \"switch_on\": true, \"unclean_bo"[..])]
#[case::random_bytes(&[0x9c, 0xff, 0x00, 0x13, 0x37, 0xfe, 0x80][..])]
#[case::empty(&b""[..])]
#[case::wrong_types(&b"{\"version\": 1, \"switch_on\": \"yes\", \"unclean_boots\": -4, \"unclean_records\": {}, \"last_boot\": null, \"maintenance\": null}"[..])]
#[case::future_version(&b"{\"version\": 99}"[..])]
fn corrupt_state_is_reported_set_aside_and_the_boot_is_normal(#[case] bytes: &[u8]) {
    let mut node = Node::new();
    node.write("/var/lib/umm/state.json", "");
    fs::write(node.path("/var/lib/umm/state.json"), bytes).unwrap();
    let s = node.status();
    assert!(
        s["state_problem"].as_str().unwrap().contains("corrupt"),
        "{s}"
    );
    assert_eq!(s["state"], "operational");
    node.boot();
    let aside: Vec<_> = fs::read_dir(node.path("/var/lib/umm"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "not set aside");
    assert_eq!(
        fs::read(aside[0].path()).unwrap(),
        bytes,
        "the corrupt file was altered"
    );
    assert!(node.log().contains("set aside as"), "{}", node.log());
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["state_problem"].as_str()),
        (Some("operational"), None)
    );
}

#[test]
fn generator_points_default_target_at_maintenance_and_back() {
    let mut node = Node::new();
    node.write("/usr/lib/systemd/system/umm.target", "[Unit]\n");
    node.write(
        "/usr/lib/systemd/system/ssh.service",
        "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    );
    node.write(
        "/etc/systemd/system/multi-user.target.wants/ssh.service",
        "",
    );
    node.write(
        "/usr/lib/systemd/system/cron.service",
        "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    );
    node.write(
        "/etc/umm/umm.toml",
        "counter_reset_time = \"15min\"\nkeep_units = [\"cron.service\"]\n",
    );
    node.boot();
    node.expect(0, &["on"]);
    node.expect(0, &["internal", "clean-shutdown"]);
    // Next boot: the generator runs before /var is mounted, from the early copy.
    node.write("/proc/sys/kernel/random/boot_id", "boot-gen\n");
    fs::rename(node.path("/var/lib/umm"), node.path("/var-unmounted")).unwrap();
    let gen = node.path("/run/systemd/generator");
    let early = node.path("/run/systemd/generator.early");
    let (g, e) = (gen.to_str().unwrap(), early.to_str().unwrap());
    node.expect(0, &["internal", "generator", g, e, "/nonexistent"]);
    let link = fs::read_link(early.join("default.target")).unwrap();
    assert_eq!(link, PathBuf::from("/usr/lib/systemd/system/umm.target"));
    assert!(fs::read_link(early.join("umm.target.wants/ssh.service")).is_ok());
    // Configured extras are kept only if they would run normally.
    assert!(!early.join("umm.target.wants/cron.service").exists());
    let dropin =
        fs::read_to_string(gen.join("umm-uptime.timer.d/counter-reset-time.conf")).unwrap();
    assert!(dropin.contains("OnBootSec=900s"), "{dropin}");
    // /var is mounted; the boot unit agrees and records.
    fs::rename(node.path("/var-unmounted"), node.path("/var/lib/umm")).unwrap();
    node.expect(0, &["internal", "boot"]);
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["this_boot"]["decided_by"].as_str()),
        (Some("maintenance"), Some("generator"))
    );
    // umm off: the generator, re-run by daemon-reload, no longer redirects.
    node.expect(0, &["off"]);
    fs::remove_dir_all(&early).unwrap();
    node.expect(0, &["internal", "generator", g, e, "/nonexistent"]);
    assert!(!early.join("default.target").exists());
}

#[test]
fn generator_leaves_a_normal_boot_alone() {
    let mut node = Node::new();
    node.write("/usr/lib/systemd/system/umm.target", "[Unit]\n");
    node.boot();
    node.write("/proc/sys/kernel/random/boot_id", "boot-normal\n");
    let early = node.path("/run/gen-early");
    node.expect(
        0,
        &[
            "internal",
            "generator",
            "/tmp/unused-normal",
            early.to_str().unwrap(),
        ],
    );
    assert!(!early.join("default.target").exists());
}

#[test]
fn version_names_the_revision() {
    let out = Node::new().expect(0, &["--version"]);
    assert!(out.starts_with("umm 0."), "{out}");
    assert!(out.contains('('), "{out}");
}

#[test]
fn a_failing_check_vetoes_on_and_changes_nothing() {
    let mut node = Node::new();
    node.boot();
    let trace = node.path("/trace");
    node.hook(
        "check",
        "10-quorum",
        "echo 'only 1 of 3 controllers up'; exit 1",
    );
    node.hook(
        "pre-on",
        "10-standby",
        &format!("echo standby >> {}", trace.display()),
    );
    let out = node.expect(1, &["on", "--", "true"]);
    assert!(out.contains("vetoed by check/10-quorum"), "{out}");
    assert!(out.contains("only 1 of 3 controllers up"), "{out}");
    assert_eq!(node.status()["state"], "operational");
    assert!(node.actions().is_empty(), "rebooted despite the veto");
    assert!(!trace.exists(), "pre-on ran despite the veto");
    // --force overrides, and says which checks it overrode.
    let out = node.expect(0, &["on", "--force", "--", "true"]);
    assert!(
        out.contains("Overriding the failed checks: check/10-quorum"),
        "{out}"
    );
    assert_eq!(fs::read_to_string(&trace).unwrap(), "standby\n");
    let hooks = node.status()["hooks"].clone();
    assert_eq!(hooks[0]["name"], "10-quorum");
    assert_eq!(hooks[0]["ok"], false);
}

#[test]
fn hooks_run_in_their_phases_with_their_environment_and_verify_reports() {
    let mut node = Node::new();
    let trace = node.path("/trace");
    let t = trace.display();
    for phase in ["pre-on", "on", "pre-off", "off"] {
        node.hook(
            phase,
            "50-trace",
            &format!("echo $UMM_PHASE $UMM_REASON >> {t}; echo $UMM_PHASE >> $UMM_STATE_DIR/seen"),
        );
    }
    node.services("cron.service active enabled\nnova-compute.service active enabled\nsystemd-journald.service active enabled early\n");
    node.boot();
    node.expect(0, &["on", "--", "true"]);
    node.clean_reboot();
    node.expect(0, &["internal", "maintenance"]);
    // Back from maintenance, nova-compute does not come back and another unit failed.
    node.services("cron.service active enabled\nnova-compute.service inactive enabled\nbroken.service failed\nsystemd-journald.service active enabled early\n");
    let out = node.expect(1, &["off"]);
    assert!(
        out.contains("Not running again (active before maintenance): nova-compute.service\n"),
        "{out}"
    );
    assert!(out.contains("Failed units: broken.service"), "{out}");
    assert_eq!(
        fs::read_to_string(&trace).unwrap(),
        "pre-on manual\non manual\npre-off manual\noff manual\n"
    );
    let seen = node.read("/var/lib/umm/hooks/50-trace/seen");
    assert_eq!(
        seen, "pre-on\non\npre-off\noff\n",
        "the state directory is not shared across phases"
    );
    let history = node.expect(0, &["history", "--json"]);
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(
        history[0]["verify"]["not_back"],
        serde_json::json!(["nova-compute.service"])
    );
    assert_eq!(history[0]["end"], "resumed");
    assert!(node
        .expect(0, &["history"])
        .contains("not back: nova-compute.service"));
    assert!(node.log().contains("not running again"), "{}", node.log());
}

#[test]
fn a_failing_pre_off_hook_vetoes_off_unless_forced() {
    let mut node = Node::new();
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    node.hook("pre-off", "10-not-yet", "echo 'rebalancing'; exit 2");
    let out = node.expect(1, &["off"]);
    assert!(out.contains("vetoed by pre-off/10-not-yet"), "{out}");
    assert_eq!(node.status()["state"], "maintenance");
    node.expect(0, &["off", "--force"]);
    assert_eq!(node.status()["state"], "operational");
}

#[test]
fn after_a_crash_loop_verify_compares_with_enabled_services() {
    let mut node = Node::new();
    node.boot();
    for _ in 0..3 {
        node.crash_and_boot();
    }
    node.services("cron.service active enabled\nsetup.service inactive finished-ok enabled\ndb.service inactive enabled\n");
    node.expect(0, &["off", "--no-wait"]);
    assert_eq!(node.status()["after_resume_pending"], true);
    // The normal boot's umm-after.service does the work.
    node.expect(0, &["internal", "after-resume"]);
    let v = node.status()["last_episode"]["verify"].clone();
    assert_eq!(v["compared_with"], "enabled services");
    assert_eq!(v["not_back"], serde_json::json!(["db.service"]));
    assert_eq!(node.status()["after_resume_pending"], false);
}

#[test]
fn dry_run_shows_what_would_happen_and_changes_nothing() {
    let mut node = Node::new();
    node.boot();
    node.hook("check", "10-ok", "exit 0");
    node.hook("check", "20-ceph", "echo 'pgs degraded'; exit 1");
    node.services("cron.service active enabled\nssh.service active enabled\nsystemd-journald.service active early\n");
    let out = node.expect(1, &["on", "--dry-run", "--", "apt-get", "upgrade"]);
    assert!(out.contains("vetoed by check/20-ceph"), "{out}");
    assert!(out.contains("pgs degraded"), "{out}");
    assert!(out.contains("    cron.service"), "{out}");
    assert!(
        !out.contains("    ssh.service"),
        "ssh is in the keep-set: {out}"
    );
    assert!(!out.contains("journald"), "{out}");
    assert!(out.contains("Scheduled command: apt-get upgrade"), "{out}");
    let json = node.expect(1, &["check", "--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(
        v["services_not_running_in_maintenance"],
        serde_json::json!(["cron.service"])
    );
    assert_eq!(node.status()["state"], "operational");
    assert!(node.actions().is_empty());
    fs::remove_file(node.path("/etc/umm/check.d/20-ceph")).unwrap();
    assert!(node
        .expect(0, &["check"])
        .contains("Entering maintenance: allowed"));
}

#[test]
fn a_hook_writable_by_others_is_refused_and_vetoes() {
    let mut node = Node::new();
    node.boot();
    let trace = node.path("/trace");
    node.hook("check", "10-open", &format!("touch {}", trace.display()));
    fs::set_permissions(
        node.path("/etc/umm/check.d/10-open"),
        fs::Permissions::from_mode(0o757),
    )
    .unwrap();
    let out = node.expect(1, &["on"]);
    assert!(out.contains("writable by group or others"), "{out}");
    assert!(!trace.exists());
}

#[test]
fn status_lists_the_boot_menu_entries_and_whether_this_boot_used_one() {
    let mut node = Node::new();
    node.write(
        "/boot/grub/grub.cfg",
        "menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-abc' {\n}\n\
         menuentry 'Debian GNU/Linux, maintenance mode (umm)' --class debian $menuentry_id_option 'umm-on-gnulinux-simple-abc' {\n}\n\
         menuentry 'Debian GNU/Linux, skip maintenance (umm=off)' --class debian $menuentry_id_option 'umm-off-gnulinux-simple-abc' {\n}\n",
    );
    node.write(
        "/proc/cmdline",
        "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro umm=on\n",
    );
    node.boot();
    let s = node.status();
    let kinds: Vec<_> = s["boot_menu"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, ["umm=on", "umm=off"]);
    assert_eq!(s["boot_menu"]["this_boot_cmdline"], "umm=on");
    assert_eq!(s["reason"], "cmdline");
    assert!(node
        .expect(0, &["status"])
        .contains("1 maintenance and 1 skip entries; this boot has umm=on"));
}

/// Issue #16 item 9: a span out of bounds is refused where it is written,
/// for the flag as for the configuration, and nothing happens.
#[rstest]
#[case::zero("0", "too short")]
#[case::u64_max("18446744073709551615", "too long")]
#[case::u64_max_seconds("18446744073709551615s", "too long")]
fn off_timeout_out_of_bounds_names_the_flag_and_changes_nothing(
    #[case] span: &str,
    #[case] why: &str,
) {
    let mut node = Node::new();
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    let out = node.expect(2, &["off", "--timeout", span]);
    assert!(out.contains("--timeout") && out.contains(why), "{out}");
    assert_eq!(node.status()["state"], "maintenance");
    assert!(node.actions().is_empty());
}

#[test]
fn a_huge_hook_timeout_is_one_clear_line_not_an_abort() {
    let mut node = Node::new();
    node.boot();
    node.hook("check", "10-ok", "exit 0");
    node.write(
        "/etc/umm/umm.toml",
        "[hooks]\ncheck_timeout = 9223372036854775807\n",
    );
    let out = node.expect(1, &["check"]);
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(
        out.contains("umm.toml:2: hooks.check_timeout: ") && out.contains("at most 30d"),
        "{out}"
    );
}

#[test]
fn a_huge_command_timeout_does_not_kill_the_worker() {
    let mut node = Node::new();
    node.boot();
    node.expect(0, &["on", "--", "true"]);
    node.clean_reboot();
    node.write(
        "/etc/umm/umm.toml",
        "command_timeout = \"18446744073709551615s\"\n",
    );
    node.expect(0, &["internal", "maintenance"]);
    let s = node.status();
    assert_eq!(s["command"]["exit_code"], 0, "{s}");
    assert!(s["command"]["ended"].is_string(), "{s}");
}

impl Node {
    /// Runs umm with stdout and stderr on pipes whose readers are gone:
    /// every write fails with EPIPE (`umm status | true`, an ssh session
    /// that dropped).
    fn umm_with_closed_output(&self, args: &[&str]) -> std::process::ExitStatus {
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let (err_r, err_w) = nix::unistd::pipe().unwrap();
        drop(out_r);
        drop(err_r);
        self.command(args)
            .stdout(std::process::Stdio::from(out_w))
            .stderr(std::process::Stdio::from(err_w))
            .status()
            .unwrap()
    }
}

/// Issue #16 item 8: println! on a closed pipe panicked (abort in the
/// release build), sometimes between saving the state and acting on it.
#[rstest]
#[case::status(&["status"], 0)]
#[case::status_json(&["status", "--json"], 0)]
#[case::history(&["history"], 0)]
#[case::history_json(&["history", "--json"], 0)]
#[case::check(&["check"], 0)]
#[case::help(&["--help"], 0)]
#[case::usage_error(&["on", "--dryrun"], 2)]
fn read_only_commands_exit_quietly_on_a_closed_pipe(#[case] args: &[&str], #[case] code: i32) {
    let mut node = Node::new();
    node.boot();
    let status = node.umm_with_closed_output(args);
    assert_eq!(status.signal(), None, "{args:?}: killed by a signal");
    assert_eq!(status.code(), Some(code), "{args:?}");
}

#[test]
fn on_with_a_closed_pipe_saves_and_reboots() {
    let mut node = Node::new();
    node.boot();
    let status = node.umm_with_closed_output(&["on", "--", "true"]);
    assert_eq!((status.code(), status.signal()), (Some(0), None));
    assert_eq!(node.status()["state"], "pending");
    assert_eq!(node.actions(), ["reboot"]);
}

#[test]
fn off_with_a_closed_pipe_resumes_and_finishes() {
    let mut node = Node::new();
    let trace = node.path("/trace");
    node.hook(
        "off",
        "10-trace",
        &format!("echo off >> {}", trace.display()),
    );
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    let status = node.umm_with_closed_output(&["off"]);
    assert_eq!((status.code(), status.signal()), (Some(0), None));
    assert_eq!(node.actions(), ["resume"]);
    assert_eq!(node.status()["state"], "operational");
    assert_eq!(node.read("/trace"), "off\n");
    assert!(!node.path("/run/motd.d/umm").exists());
}

/// Issue #16 item 10: data from outside never panics umm.
#[test]
fn a_non_utf8_dropin_name_does_not_break_status() {
    use std::os::unix::ffi::OsStrExt;
    let mut node = Node::new();
    node.boot();
    let dir = node.path("/etc/umm/umm.toml.d");
    fs::create_dir_all(&dir).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"50-\xff\xfe.toml");
    fs::write(dir.join(name), "reboot_count = 4\n").unwrap();
    let s = node.status();
    assert_eq!(s["reboot_count"], 4, "{s}");
    let files = s["config"]["files"].to_string();
    assert!(files.contains("50-"), "{files}");
    assert!(node.expect(0, &["status"]).contains("50-"));
}

#[test]
fn an_empty_scheduled_command_in_a_hand_edited_state_does_not_panic() {
    let mut node = Node::new();
    node.boot();
    node.expect(0, &["on", "--", "true"]);
    node.clean_reboot();
    let mut state: Value = serde_json::from_str(&node.read("/var/lib/umm/state.json")).unwrap();
    state["maintenance"]["command"]["argv"] = serde_json::json!([]);
    node.write("/var/lib/umm/state.json", &state.to_string());
    node.expect(0, &["internal", "maintenance"]);
    let s = node.status();
    assert_eq!(s["state"], "maintenance");
    assert_eq!(s["command"]["exit_code"], 127, "{s}");
    assert!(node.log().contains("empty"), "{}", node.log());
    node.expect(0, &["status"]);
}

/// Issue #16 item 2: leaving is a transaction. A resume that does not reach
/// the normal target leaves the episode open (`resuming`), `umm off` can be
/// retried (the pre-off hooks do not run again), and the off.d hooks and
/// the check run exactly once, after the normal target is reached.
#[test]
fn an_interrupted_resume_keeps_the_episode_open_until_off_is_retried() {
    let mut node = Node::new();
    let trace = node.path("/trace");
    for phase in ["pre-off", "off"] {
        node.hook(
            phase,
            "10-trace",
            &format!("echo $UMM_PHASE >> {}", trace.display()),
        );
    }
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    node.write("/run/umm/init-paused", "");
    node.write("/run/umm/init-resume-fails", "");
    let out = node.expect(1, &["off", "--timeout", "5s"]);
    assert!(out.contains("still leaving maintenance"), "{out}");
    assert!(out.contains("run `umm off` again"), "{out}");
    let s = node.status();
    assert_eq!(s["state"], "resuming", "{s}");
    assert_eq!(s["leaving"]["tries"], 1);
    assert_eq!(s["after_resume_pending"], true);
    let text = node.expect(0, &["status"]);
    assert!(text.contains("State:        RESUMING"), "{text}");
    assert!(text.contains("umm off (again"), "{text}");
    // umm-after.service in a boot that did not reach the normal target.
    node.expect(0, &["internal", "after-resume"]);
    assert_eq!(node.status()["state"], "resuming");
    assert_eq!(node.read("/trace"), "pre-off\n", "off.d ran too early");
    assert!(node
        .expect(1, &["on"])
        .contains("still leaving maintenance"));
    // The retry resumes again and finishes.
    fs::remove_file(node.path("/run/umm/init-resume-fails")).unwrap();
    let out = node.expect(0, &["off"]);
    assert!(out.contains("Normal target reached"), "{out}");
    assert_eq!(node.actions(), ["resume", "resume"]);
    assert_eq!(node.read("/trace"), "pre-off\noff\n");
    let s = node.status();
    assert_eq!(s["state"], "operational", "{s}");
    assert_eq!(s["last_episode"]["end"], "resumed");
    assert_eq!(s["history_entries"], 1);
    // Nothing is left for umm-after, nor for another retry.
    node.expect(0, &["internal", "after-resume"]);
    assert!(node.expect(1, &["off"]).contains("not in maintenance"));
    assert_eq!(node.read("/trace"), "pre-off\noff\n");
}

/// A node rebooted (or crashed) while resuming boots normally and finishes
/// there, once its normal target is reached.
#[test]
fn a_node_rebooted_while_resuming_finishes_in_the_next_boot() {
    let mut node = Node::new();
    let trace = node.path("/trace");
    node.hook(
        "off",
        "10-trace",
        &format!("echo off >> {}", trace.display()),
    );
    node.boot();
    for _ in 0..3 {
        node.crash_and_boot();
    }
    assert_eq!(node.status()["state"], "maintenance");
    node.write("/run/umm/init-resume-fails", "");
    node.expect(1, &["off", "--timeout", "2s"]);
    fs::remove_file(node.path("/run/umm/init-resume-fails")).unwrap();
    node.crash_and_boot();
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["this_boot"]["mode"].as_str()),
        (Some("resuming"), Some("normal")),
        "{s}"
    );
    assert_eq!(s["unclean_boots"], 1);
    assert!(node
        .log()
        .contains("was being left when the last boot ended"));
    node.expect(0, &["internal", "after-resume"]);
    let s = node.status();
    assert_eq!(s["state"], "operational");
    assert_eq!(s["last_episode"]["end"], "resumed");
    assert_eq!(s["last_episode"]["reason"], "crash-loop");
    assert_eq!(node.read("/trace"), "off\n");
}

/// Two finishers at once (umm-after.service and a retried `umm off`, or
/// two of either): the off.d hooks run once.
#[test]
fn two_finishers_never_both_run_the_off_hooks() {
    let mut node = Node::new();
    let trace = node.path("/trace");
    node.hook(
        "off",
        "10-slow",
        &format!("echo off >> {}; sleep 2", trace.display()),
    );
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    node.expect(0, &["off", "--no-wait"]);
    assert_eq!(node.status()["state"], "resuming");
    let first = node.command(&["internal", "after-resume"]).spawn().unwrap();
    let second = node.command(&["internal", "after-resume"]).spawn().unwrap();
    let retry = node.run(&["off"]);
    for mut child in [first, second] {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(retry.code, Some(0), "{}", retry.out);
    assert_eq!(node.read("/trace"), "off\n", "the off.d hooks ran twice");
    assert_eq!(node.status()["state"], "operational");
    assert_eq!(node.status()["history_entries"], 1);
}

/// A finisher that is gone (another boot, or a dead process) is taken over.
#[rstest]
#[case::earlier_boot("boot-0", 1)]
#[case::dead_process("boot-1", u32::MAX / 2)]
fn a_gone_finisher_is_taken_over(#[case] boot_id: &str, #[case] pid: u32) {
    let mut node = Node::new();
    let trace = node.path("/trace");
    node.hook(
        "off",
        "10-trace",
        &format!("echo off >> {}", trace.display()),
    );
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    node.expect(0, &["off", "--no-wait"]);
    let mut state: Value = serde_json::from_str(&node.read("/var/lib/umm/state.json")).unwrap();
    state["maintenance"]["leaving"]["finisher"] = serde_json::json!({
        "boot_id": boot_id, "pid": pid, "pid_start": 1, "since": 1795290000
    });
    node.write("/var/lib/umm/state.json", &state.to_string());
    node.expect(0, &["internal", "after-resume"]);
    assert_eq!(node.status()["state"], "operational");
    assert_eq!(node.read("/trace"), "off\n");
    assert!(node.log().contains("taking over"), "{}", node.log());
}

/// Issue #16 item 4: `umm off` while the on.d hooks run: the scheduled
/// command must not start afterwards.
#[test]
fn off_during_the_on_hooks_never_starts_the_command() {
    let mut node = Node::new();
    let ran = node.path("/command-ran");
    node.hook("on", "10-slow", "sleep 3");
    node.boot();
    node.expect(0, &["on", "--", "touch", ran.to_str().unwrap()]);
    node.clean_reboot();
    let mut worker = node.command(&["internal", "maintenance"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    node.expect(0, &["off"]);
    assert!(worker.wait().unwrap().success());
    assert!(!ran.exists(), "the command started after umm off");
    let s = node.status();
    assert_eq!(s["state"], "operational");
    assert_eq!(s["last_episode"]["command"]["started"], Value::Null);
    assert!(
        s["last_episode"]["hooks"].to_string().contains("10-slow"),
        "the on.d result is lost: {s}"
    );
    assert!(node.log().contains("the scheduled command is not started"));
}

/// Issue #16 item 3: `umm off` while the scheduled command runs returns and
/// says the command keeps running.
#[test]
fn off_reports_a_scheduled_command_that_keeps_running() {
    let mut node = Node::new();
    node.boot();
    node.expect(0, &["on", "--", "sleep", "30"]);
    node.clean_reboot();
    let mut worker = node.command(&["internal", "maintenance"]).spawn().unwrap();
    let mut pid = None;
    for _ in 0..100 {
        pid = node.status()["command"]["pid"].as_u64();
        if pid.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = node.status();
    let pid = pid.unwrap_or_else(|| panic!("no pid recorded for the running command: {status}"));
    let text = node.expect(0, &["status"]);
    assert!(text.contains(&format!("pid {pid}")), "{text}");
    let out = node.expect(0, &["off"]);
    // umm off returned while the command runs (it did not wait for its end).
    let command = nix::unistd::Pid::from_raw(pid as i32);
    assert!(
        nix::sys::signal::kill(command, None).is_ok(),
        "the command ended before umm off returned"
    );
    assert!(
        out.contains(&format!(
            "The scheduled command is still running (pid {pid}, since 2026-11-21T19:42:00Z); it keeps running"
        )),
        "{out}"
    );
    assert_eq!(node.status()["state"], "operational");
    // Ours to stop: the command's process group (it is its leader), by PID.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(worker.wait().unwrap().success());
    let s = node.status();
    assert_eq!(s["last_episode"]["command"]["signal"], 9, "{s}");
}

/// Issue #16 item 6a: on sysvinit the paused boot runs the console gettys
/// itself; one that exits (a logout) must start again, or console login is
/// gone after the first session. They are stopped when the boot resumes.
#[test]
fn sysvinit_pause_restarts_a_getty_that_exited_and_stops_it_on_resume() {
    let mut node = Node::new();
    let trace = node.path("/getty-starts");
    node.executable(
        "/sbin/fake-getty",
        &format!("#!/bin/sh\necho \"$$ $1\" >> {}\n", trace.display()),
    );
    // Inittab's paths, as on the node: under a test root umm runs the
    // root's programs, never the host's.
    node.write(
        "/etc/inittab",
        "id:2:initdefault:\n1:2345:respawn:/sbin/fake-getty tty1\n",
    );
    node.write("/proc/cmdline", "umm\n");
    node.boot();
    let mut pause = node
        .command(&["internal", "pause"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let starts = node.read("/getty-starts").lines().count();
    assert!(
        // Restarted, and not spinning (at most 10 starts a minute).
        (2..=10).contains(&starts),
        "{starts} getty start(s) in 4.5 s:\n{}",
        node.log()
    );
    node.expect(0, &["off", "--no-wait"]);
    let status = common::wait_bounded(&mut pause, std::time::Duration::from_secs(10))
        .expect("the pause did not end");
    assert!(status.success());
    assert!(node.log().contains("exited"), "{}", node.log());
}

/// Under a test root (UMM_ROOT) without a test init system, umm must never
/// reach the host's: it refuses at once, in one line, and runs nothing
/// (no shutdown, no init script, no update-grub: neither through PATH nor
/// under the root).
#[rstest]
#[case::on(&["on", "--", "true"])]
#[case::on_force(&["on", "--force"])]
#[case::off_reboot(&["off", "reboot"])]
#[case::enable(&["enable"])]
#[case::boot(&["internal", "boot"])]
#[case::pause(&["internal", "pause"])]
fn a_test_root_without_a_test_init_system_runs_nothing(#[case] args: &[&str]) {
    let node = Node::new();
    let trace = node.path("/trapped");
    let trap = format!("#!/bin/sh\necho \"$0 $*\" >> {}\n", trace.display());
    let host_tools = [
        "shutdown",
        "reboot",
        "systemctl",
        "telinit",
        "init",
        "initctl",
        "runlevel",
        "service",
        "invoke-rc.d",
        "update-grub",
        "grub-mkconfig",
        "grub-reboot",
    ];
    for tool in host_tools {
        node.executable(&format!("/trap-bin/{tool}"), &trap);
    }
    for program in [
        "/sbin/shutdown",
        "/sbin/initctl",
        "/sbin/runlevel",
        "/etc/init.d/ssh",
        "/usr/sbin/update-grub",
    ] {
        node.executable(program, &trap);
    }
    // No /run/systemd/system here: should the refusal ever break, umm
    // takes the root for sysvinit and runs the traps, never the host's
    // systemd over D-Bus.
    node.write(
        "/etc/inittab",
        "id:2:initdefault:\n1:2345:respawn:/sbin/shutdown\n",
    );
    let ran = node.run_cmd({
        let mut c = node.command(args);
        c.env_remove("UMM_INIT").env("PATH", node.path("/trap-bin"));
        c
    });
    assert_eq!(ran.code, Some(1), "{args:?}: {}", ran.out);
    // One line (the init system's entry points also log it to a console).
    let lines: std::collections::BTreeSet<&str> = ran.out.trim().lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", ran.out);
    assert!(
        ran.out.contains("test root") && ran.out.contains("UMM_INIT=record"),
        "{}",
        ran.out
    );
    assert_eq!(node.read("/trapped"), "", "{args:?} ran a program");
    assert!(node.actions().is_empty());
    assert!(
        !node.exists("/var/lib/umm/state.json"),
        "{args:?} changed the state"
    );
}

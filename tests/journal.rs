//! The state changes umm logs carry their MESSAGE_ID and UMM_* fields.
//! Under a test root the fields go to `/run/umm/journal.log` (one JSON
//! object a line, as `journalctl -o json` shows a journal entry); the same
//! lines still go to the plain log (`/run/umm/log`), as they go to syslog
//! on a system without the journal. The lab's `journal` scenario checks
//! the real journal of a VM.

mod common;

use common::Node;
use serde_json::Value;
use umm::sys::journal::Kind;

/// The entries of `kind` logged so far.
fn entries(node: &Node, kind: Kind) -> Vec<Value> {
    let text = if node.exists("/run/umm/journal.log") {
        node.read("/run/umm/journal.log")
    } else {
        String::new()
    };
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["MESSAGE_ID"] == kind.message_id())
        .collect()
}

#[test]
fn a_crash_loop_is_counted_entered_and_left_with_ids_and_fields() {
    let mut node = Node::new();
    node.boot();
    for _ in 0..3 {
        node.crash_and_boot();
    }
    let counted = entries(&node, Kind::Counted);
    assert_eq!(counted.len(), 3, "{counted:?}");
    assert_eq!(counted[2]["UMM_UNCLEAN_BOOTS"], "3");
    assert_eq!(counted[2]["UMM_REBOOT_COUNT"], "2");
    assert_eq!(counted[1]["UMM_STATE"], "operational");
    assert_eq!(counted[2]["UMM_STATE"], "maintenance");
    let entered = entries(&node, Kind::Entered);
    assert_eq!(entered.len(), 1, "{entered:?}");
    let e = &entered[0];
    assert_eq!(e["UMM_EVENT"], "entered");
    assert_eq!(e["UMM_STATE"], "maintenance");
    assert_eq!(e["UMM_REASON"], "crash-loop");
    assert_eq!(e["UMM_EPISODE"], "1");
    assert_eq!(
        e["MESSAGE"],
        "entering maintenance mode (reason crash-loop)"
    );
    // The same line in the plain log (syslog's, without the journal).
    assert!(node
        .log()
        .contains("entering maintenance mode (reason crash-loop)"));

    node.crash_and_boot();
    let held = entries(&node, Kind::Held);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["UMM_EPISODE"], "1");

    node.expect(0, &["off"]);
    let resuming = entries(&node, Kind::Resuming);
    assert_eq!(resuming.len(), 1);
    assert_eq!(resuming[0]["UMM_ACTION"], "resume");
    assert_eq!(resuming[0]["UMM_STATE"], "resuming");
    let resumed = entries(&node, Kind::Resumed);
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0]["UMM_STATE"], "operational");
    assert_eq!(resumed[0]["UMM_REASON"], "crash-loop");
    assert_eq!(resumed[0]["UMM_SERVICES_NOT_BACK"], "0");
}

#[test]
fn a_clean_reboot_after_a_crash_resets_the_counter_with_its_cause() {
    let mut node = Node::new();
    node.boot();
    node.crash_and_boot();
    node.clean_reboot();
    let reset = entries(&node, Kind::CounterReset);
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(reset[0]["UMM_CAUSE"], "clean shutdown");
}

#[test]
fn requests_refusals_hooks_and_the_switch_have_their_ids() {
    let mut node = Node::new();
    node.boot();
    node.hook("pre-off", "50-drain", "exit 3");
    node.expect(0, &["on"]);
    let requested = entries(&node, Kind::Requested);
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["UMM_STATE"], "pending");
    assert_eq!(requested[0]["UMM_EPISODE"], "1");
    assert!(requested[0]["UMM_REQUESTED_BY"].is_string());

    node.expect(1, &["on"]);
    let refused = entries(&node, Kind::Refused);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["UMM_COMMAND"], "on");

    node.clean_reboot();
    node.expect(1, &["off"]);
    let failed = entries(&node, Kind::HookFailed);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["UMM_PHASE"], "pre-off");
    assert_eq!(failed[0]["UMM_HOOK"], "50-drain");
    assert_eq!(failed[0]["UMM_RESULT"], "exited 3");
    assert_eq!(entries(&node, Kind::Refused).len(), 2);
    assert_eq!(entries(&node, Kind::Refused)[1]["UMM_COMMAND"], "off");

    node.expect(0, &["off", "--force"]);
    node.expect(0, &["disable"]);
    node.expect(0, &["enable"]);
    assert_eq!(entries(&node, Kind::Disabled).len(), 1);
    assert_eq!(entries(&node, Kind::Enabled).len(), 1);

    node.expect(0, &["on"]);
    node.expect(0, &["off"]);
    let cancelled = entries(&node, Kind::Cancelled);
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["UMM_EPISODE"], "2");
    assert_eq!(cancelled[0]["UMM_STATE"], "operational");
}

/// journalctl compiles the catalog (into a scratch root) and lists every
/// message umm logs. Skipped, with a line that says so, without journalctl.
#[test]
fn journalctl_reads_the_catalog() {
    use std::path::Path;
    use std::process::Command;
    let Some(journalctl) = common::require_tool(
        "journalctl_reads_the_catalog",
        "journalctl",
        "systemd",
        "UMM_JOURNAL_REQUIRE_JOURNALCTL",
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("usr/lib/systemd/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/umm.catalog"),
        dir.join("umm.catalog"),
    )
    .unwrap();
    let root_arg = format!("--root={}", root.path().display());
    let run = |arg: &str| {
        let out = Command::new(&journalctl)
            .args([root_arg.as_str(), arg])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "journalctl {arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run("--update-catalog");
    let list = run("--list-catalog");
    for kind in Kind::ALL {
        assert!(
            list.lines()
                .any(|l| l.starts_with(kind.message_id()) && l.contains(" umm: ")),
            "{kind:?} ({}) not in the catalog:\n{list}",
            kind.message_id()
        );
    }
}

/// The VM lab (a crate of its own) names two of the ids: they are these.
#[test]
fn the_lab_looks_for_these_ids() {
    let lab = include_str!("vm/src/scenarios/common.rs");
    for (name, kind) in [
        ("ENTERED_ID", Kind::Entered),
        ("RESUMED_ID", Kind::Resumed),
        ("COUNTED_ID", Kind::Counted),
    ] {
        let line = format!("pub const {name}: &str = \"{}\";", kind.message_id());
        assert!(
            lab.contains(&line),
            "tests/vm/src/scenarios/common.rs lacks `{line}`"
        );
    }
}

#[test]
fn the_scheduled_commands_arguments_stay_out_of_the_log_and_the_journal() {
    let mut node = Node::new();
    node.boot();
    let token = "s3cr3t-t0ken-4711";
    let out = node.expect(
        0,
        &[
            "on",
            "--",
            "sh",
            "-c",
            "exit 0",
            "upload",
            &format!("--token={token}"),
        ],
    );
    // The operator's own terminal may show what they typed.
    assert!(out.contains("Rebooting"), "{out}");
    node.clean_reboot();
    node.expect(0, &["internal", "maintenance"]);
    assert_eq!(node.status()["command"]["exit_code"], 0);
    let log = node.log();
    let journal = node.read("/run/umm/journal.log");
    for (name, text) in [("log", &log), ("journal", &journal)] {
        assert!(
            !text.contains(token),
            "the token reached the {name}:\n{text}"
        );
        assert!(
            !text.contains("exit 0"),
            "an argument reached the {name}:\n{text}"
        );
    }
    assert!(
        log.contains("for the next boot; scheduled command: sh with 4 arguments"),
        "{log}"
    );
    assert!(
        log.contains("running the scheduled command: sh with 4 arguments"),
        "{log}"
    );
}

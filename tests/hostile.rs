//! Broken and hostile inputs (issue #11): files that are not what they
//! seem, state and configuration that cannot be used, hooks that cannot be
//! trusted, children that must not inherit umm's signal handling. Each
//! test runs the `umm` binary in a temporary root (`UMM_ROOT`) with the
//! recording init system, through the shared harness (tests/common).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::{bounded_node, node_in_maintenance, Node};
use rstest::rstest;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Item 4: files that are not what they seem

/// A FIFO at each file umm reads: every entry point returns at once and
/// names the file (on its output or in the log).
#[rstest]
#[case::state_status("/var/lib/umm/state.json", "status")]
#[case::state_boot("/var/lib/umm/state.json", "boot")]
#[case::state_enable("/var/lib/umm/state.json", "enable")]
#[case::early_generator("/etc/umm/early-state.json", "generator")]
#[case::config_status("/etc/umm/umm.toml", "status")]
#[case::config_boot("/etc/umm/umm.toml", "boot")]
#[case::config_generator("/etc/umm/umm.toml", "generator")]
#[case::config_enable("/etc/umm/umm.toml", "enable")]
#[case::dropin_status("/etc/umm/umm.toml.d/50-site.toml", "status")]
#[case::dropin_boot("/etc/umm/umm.toml.d/50-site.toml", "boot")]
#[case::decision_status("/run/umm/boot.json", "status")]
#[case::decision_boot("/run/umm/boot.json", "boot")]
#[case::decision_generator("/run/umm/boot.json", "generator")]
#[case::cmdline_status("/proc/cmdline", "status")]
#[case::cmdline_boot("/proc/cmdline", "boot")]
#[case::cmdline_generator("/proc/cmdline", "generator")]
#[case::lock_boot("/var/lib/umm/lock", "boot")]
#[case::lock_enable("/var/lib/umm/lock", "enable")]
fn a_fifo_never_hangs_umm(#[case] file: &str, #[case] entry: &str) {
    let mut node = bounded_node();
    node.write("/usr/lib/systemd/system/umm.target", "[Unit]\n");
    node.boot();
    node.expect(0, &["disable"]);
    node.boots += 1;
    node.write("/proc/sys/kernel/random/boot_id", "boot-fifo\n");
    node.fifo(file);
    let ran = match entry {
        "status" => node.run(&["status"]),
        "boot" => node.run(&["internal", "boot"]),
        "enable" => node.run(&["enable"]),
        "generator" => node.generator(),
        other => unreachable!("{other}"),
    };
    println!("{file} / {entry}: {:?} in {:?}", ran.code, ran.elapsed);
    // A hang is caught by the node's bound (HANG); the behaviour is that
    // umm saw the FIFO for what it is, by its type, without opening it.
    let said = format!("{}{}", ran.out, node.log());
    assert!(
        said.contains(&format!("{file} is a FIFO")),
        "{file} not named as a FIFO:\n{said}"
    );
    // status also answers a user who is not root.
    if entry == "status" {
        let ran = node.as_nobody(&["status"]);
        assert_eq!(ran.code, Some(0), "{}", ran.out);
    }
}

#[test]
fn a_config_linked_to_dev_zero_is_refused_quickly_in_bounded_memory() {
    let node = bounded_node();
    fs::create_dir_all(node.path("/etc/umm")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", node.path("/etc/umm/umm.toml")).unwrap();
    let ran = node.run(&["status"]);
    let rss = ran.max_rss_kib;
    println!(
        "status with umm.toml -> /dev/zero: {:?}, peak RSS {rss} KiB",
        ran.elapsed
    );
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(rss < 50 * 1024, "peak RSS {rss} KiB");
    assert!(
        ran.out.contains("umm.toml is a character device"),
        "{}",
        ran.out
    );
}

#[test]
fn a_config_larger_than_the_cap_is_refused() {
    let node = bounded_node();
    node.write("/etc/umm/umm.toml", &"# padding\n".repeat(40_000));
    let out = node.expect(1, &["on"]);
    assert!(out.contains("umm.toml is larger than 256 KiB"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
}

// ---------------------------------------------------------------------------
// Item 5: a dangling or looping umm.toml is not "no file"

#[rstest]
#[case::dangling(false)]
#[case::looping(true)]
fn a_broken_config_symlink_is_reported_not_ignored(#[case] looping: bool) {
    let node = bounded_node();
    // The legacy file would be used if umm.toml counted as absent.
    node.write("/etc/umm.conf", "UMM=no\n");
    fs::create_dir_all(node.path("/etc/umm")).unwrap();
    let link = node.path("/etc/umm/umm.toml");
    if looping {
        std::os::unix::fs::symlink(node.path("/etc/umm/other.toml"), &link).unwrap();
        std::os::unix::fs::symlink(&link, node.path("/etc/umm/other.toml")).unwrap();
    } else {
        std::os::unix::fs::symlink(node.path("/etc/umm/gone.toml"), &link).unwrap();
    }
    let s = node.status();
    let error = s["config"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("umm.toml"), "{s}");
    assert_eq!(s["config"]["legacy"], false, "{s}");
    let out = node.expect(1, &["on"]);
    assert!(out.contains("umm.toml"), "{out}");
    assert!(
        out.contains(if looping { "loop" } else { "does not exist" }),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// Item 6: setting the state aside only for content that cannot be parsed

#[test]
fn a_state_from_a_newer_umm_is_used_and_its_fields_kept() {
    let mut node = node_in_maintenance();
    let path = node.path("/var/lib/umm/state.json");
    let mut v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    v["version"] = 2.into();
    v["fleet_lock"] = serde_json::json!({"group": "controllers"});
    v["maintenance"]["ticket"] = "OPS-42".into();
    fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let s = node.status();
    assert_eq!(s["state"], "maintenance", "{s}");
    assert!(s["state_problem"].is_null(), "{s}");
    node.boot();
    assert_eq!(node.status()["state"], "maintenance");
    let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["version"], 2, "{v}");
    assert_eq!(v["fleet_lock"]["group"], "controllers", "{v}");
    assert_eq!(v["maintenance"]["ticket"], "OPS-42", "{v}");
    assert!(node.log().contains("newer umm"), "{}", node.log());
    assert!(node
        .names_starting("/var/lib/umm", "state.json.corrupt")
        .is_empty());
}

#[test]
fn set_aside_never_replaces_an_earlier_file() {
    let mut node = bounded_node();
    node.boot();
    // Files set aside earlier, under every name the next seconds could give.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for t in now..now + 5 {
        node.write(&format!("/var/lib/umm/state.json.corrupt-{t}"), "earlier\n");
    }
    for garbage in ["{garbage one", "{garbage two"] {
        node.write("/var/lib/umm/state.json", garbage);
        node.boot();
    }
    let mut kept: Vec<String> = node
        .names_starting("/var/lib/umm", "state.json.corrupt")
        .iter()
        .map(|n| node.read(&format!("/var/lib/umm/{n}")))
        .collect();
    kept.sort();
    let mut expected = vec!["earlier\n".to_string(); 5];
    expected.extend(["{garbage one".to_string(), "{garbage two".to_string()]);
    expected.sort();
    assert_eq!(kept, expected);
}

// ---------------------------------------------------------------------------
// Item 8: bounds on load; temporary files swept in both directories

#[test]
fn an_oversized_state_is_bounded_on_load_and_saved_small() {
    let mut node = bounded_node();
    node.boot();
    let path = node.path("/var/lib/umm/state.json");
    let mut v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let episode = serde_json::json!({
        "reason": "manual", "requested": 1, "since": 2, "ended": 3,
        "requested_by": {"user": "x".repeat(3000), "from": null},
        "command": {"argv": vec!["a"; 300], "run": null},
        "end": "resumed", "hooks": [], "verify": null
    });
    v["history"] = Value::Array(vec![episode; 500]);
    v["unclean_records"] = Value::Array(vec![
        serde_json::json!({"boot_id": "b", "started": 1});
        5000
    ]);
    let bytes = serde_json::to_vec(&v).unwrap();
    assert!(bytes.len() < 4 << 20, "{}", bytes.len());
    fs::write(&path, &bytes).unwrap();
    let ran = node.run(&["status", "--json"]);
    println!(
        "status of a {} byte state: {:?}, peak RSS {} KiB",
        bytes.len(),
        ran.elapsed,
        ran.max_rss_kib
    );
    assert!(ran.max_rss_kib < 100 * 1024, "{} KiB", ran.max_rss_kib);
    let s: Value = serde_json::from_str(&ran.out).unwrap();
    assert_eq!(s["history_entries"], 20, "history not bounded on load");
    node.boot();
    let saved = fs::metadata(&path).unwrap().len();
    println!("state of {} bytes saved back as {saved} bytes", bytes.len());
    assert!(saved < 64 * 1024, "saved back at {saved} bytes");
    assert!(
        node.log().contains("kept the last 20 of 500"),
        "{}",
        node.log()
    );
}

#[test]
fn a_state_larger_than_the_cap_is_set_aside() {
    let mut node = bounded_node();
    node.boot();
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(5 << 20));
    node.write("/var/lib/umm/state.json", &big);
    node.boot();
    assert_eq!(
        node.names_starting("/var/lib/umm", "state.json.corrupt")
            .len(),
        1
    );
    assert!(
        node.log().contains("larger than 4096 KiB"),
        "{}",
        node.log()
    );
}

#[test]
fn stale_temporary_files_are_swept_from_both_directories() {
    let mut node = bounded_node();
    node.boot();
    node.write("/etc/umm/.tmp-early1", "half an early copy");
    node.write("/var/lib/umm/.tmp-state1", "half a state");
    node.boot();
    assert!(
        node.names_starting("/etc/umm", ".tmp-").is_empty(),
        "left in /etc/umm"
    );
    assert!(node.names_starting("/var/lib/umm", ".tmp-").is_empty());
}

// ---------------------------------------------------------------------------
// Item 2: what operators put in the state is root's only

#[test]
fn state_files_are_root_only_and_status_shows_others_the_public_part() {
    let mut node = bounded_node();
    node.boot();
    node.write(
        "/etc/umm/check.d/10-secret",
        "#!/bin/sh\necho hook-says-s3cret\nexit 0\n",
    );
    fs::set_permissions(
        node.path("/etc/umm/check.d/10-secret"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let ran = node.run_cmd({
        let mut c = node.command(&["on", "--", "deploy", "--token=T0KEN"]);
        c.env("SUDO_USER", "alice")
            .env("SSH_CONNECTION", "192.0.2.7 51000 192.0.2.1 22");
        c
    });
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    node.expect(0, &["internal", "clean-shutdown"]);
    node.boot();
    node.expect(0, &["internal", "maintenance"]);
    for file in [
        "/var/lib/umm/state.json",
        "/etc/umm/early-state.json",
        "/var/lib/umm/command.log",
    ] {
        assert_eq!(node.mode(file), 0o600, "{file}");
    }
    assert_eq!(
        node.mode("/var/lib/umm/hooks/10-secret/.last-output"),
        0o600
    );
    // Root sees everything.
    let s = node.status();
    assert_eq!(s["requested_by"]["from"], "192.0.2.7");
    // Anyone else: state, reason, since, counter, what to do; no secrets.
    for args in [
        &["status", "--json"][..],
        &["status"],
        &["history", "--json"],
    ] {
        let ran = node.as_nobody(args);
        assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.out);
        for secret in ["T0KEN", "192.0.2.7", "alice", "s3cret", "deploy"] {
            assert!(
                !ran.out.contains(secret),
                "{args:?} shows {secret}:\n{}",
                ran.out
            );
        }
    }
    let out = node.as_nobody(&["status", "--json"]).out;
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["state"], "maintenance", "{s}");
    assert_eq!(s["reason"], "manual");
    assert!(s["since"].is_string());
    assert_eq!(s["unclean_boots"], 0);
    assert_eq!(s["restricted"], true);
    for field in ["requested_by", "command", "hooks"] {
        assert!(s.get(field).is_none(), "{field} given to a user: {s}");
    }
    // Nor the banners any login (or the console, before login) shows.
    for banner in ["/run/motd.d/umm", "/run/issue.d/umm.issue"] {
        assert!(!node.read(banner).contains("192.0.2.7"), "{banner}");
    }
    let text = node.as_nobody(&["status"]).out;
    assert!(text.contains("MAINTENANCE (manual)"), "{text}");
    assert!(text.contains("umm off"), "{text}");
}

// ---------------------------------------------------------------------------
// Item 3: children start with default signal handling

#[test]
fn hooks_start_with_default_signal_dispositions_and_an_empty_mask() {
    let node = bounded_node();
    let trace = node.path("/trace");
    node.hook(
        "check",
        "10-signals",
        &format!(
            "while read -r key value; do case $key in SigIgn:|SigBlk:) echo \"$key $value\";; esac; done < /proc/$$/status > {}",
            trace.display()
        ),
    );
    // umm itself ignores SIGHUP and SIGTTOU (as the sysvinit pause does)
    // and blocks SIGUSR1.
    let mut c = node.command(&["check"]);
    // SAFETY: only signal-handling calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
            signal(Signal::SIGHUP, SigHandler::SigIgn)?;
            signal(Signal::SIGTTOU, SigHandler::SigIgn)?;
            let mut set = SigSet::empty();
            set.add(Signal::SIGUSR1);
            sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
            Ok(())
        });
    }
    let ran = node.run_cmd(c);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    let seen = fs::read_to_string(&trace).unwrap();
    println!("{seen}");
    assert_eq!(seen, "SigBlk: 0000000000000000\nSigIgn: 0000000000000000\n");
}

// ---------------------------------------------------------------------------
// Item 9: hook output is streamed, bounded, and kept when not UTF-8

#[test]
fn a_byte_that_is_not_utf8_does_not_hide_the_veto() {
    let node = bounded_node();
    node.hook(
        "check",
        "10-quorum",
        "printf 'only 1 of 3 controllers up \\377\\n'; exit 1",
    );
    let out = node.expect(1, &["check"]);
    assert!(out.contains("only 1 of 3 controllers up \u{fffd}"), "{out}");
}

#[test]
fn a_hook_printing_100_mb_runs_in_bounded_memory_and_files() {
    let node = bounded_node();
    node.hook(
        "check",
        "10-chatty",
        "yes 'a line of output from a chatty hook' | head -c 100000000\n\
         head -c 5000000 /dev/zero | tr '\\0' x; echo\n\
         echo 'veto: the end is what counts'; exit 1",
    );
    let ran = node.run(&["check"]);
    assert_eq!(ran.code, Some(1), "{}", ran.out);
    let (out, rss) = (ran.out, ran.max_rss_kib);
    let last = fs::metadata(node.path("/var/lib/umm/hooks/10-chatty/.last-output"))
        .map(|m| m.len())
        .unwrap_or(0);
    let log = fs::metadata(node.path("/run/umm/log"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "100 MB of hook output: {:?}, peak RSS {rss} KiB, .last-output {last} bytes, log {log} bytes",
        ran.elapsed
    );
    assert!(out.contains("veto: the end is what counts"), "{out}");
    assert!(rss < 50 * 1024, "peak RSS {rss} KiB");
    assert!(last <= 64 * 1024, ".last-output is {last} bytes");
    assert!(log < 1024 * 1024, "the log grew by {log} bytes");
}

// ---------------------------------------------------------------------------
// Item 1: what is checked is what runs

fn timeouts(secs: u64) -> umm::model::settings::HookTimeouts {
    let d = Duration::from_secs(secs);
    umm::model::settings::HookTimeouts {
        check: d,
        pre_on: d,
        on: d,
        pre_off: d,
        off: d,
    }
}

fn check_hooks(node: &Node) -> Vec<umm::model::hook::HookRecord> {
    umm::hooks::run_phase(
        &umm::sys::paths::Root::new(node.root()),
        umm::model::hook::HookPhase::Check,
        None,
        &timeouts(10),
    )
}

#[test]
fn a_symlinked_hook_is_refused_even_to_a_root_script() {
    let node = bounded_node();
    let trace = node.path("/trace");
    node.hook("check", "00-real", "exit 0");
    node.write(
        "/opt/site/check",
        &format!("#!/bin/sh\ntouch {}\n", trace.display()),
    );
    fs::set_permissions(
        node.path("/opt/site/check"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        node.path("/opt/site/check"),
        node.path("/etc/umm/check.d/10-link"),
    )
    .unwrap();
    let out = node.expect(1, &["check"]);
    assert!(!trace.exists(), "the linked hook ran");
    assert!(out.contains("10-link is a symbolic link"), "{out}");
    assert!(out.contains("vetoed by check/10-link"), "{out}");
}

#[rstest]
#[case::hook_dir("/etc/umm/check.d", 0o777)]
#[case::etc_umm("/etc/umm", 0o777)]
#[case::etc_umm_group("/etc/umm", 0o775)]
#[case::etc("/etc", 0o757)]
fn a_hook_under_a_writable_directory_is_refused(#[case] dir: &str, #[case] mode: u32) {
    let node = bounded_node();
    let trace = node.path("/trace");
    node.hook("check", "10-fine", &format!("touch {}", trace.display()));
    fs::set_permissions(node.path(dir), fs::Permissions::from_mode(mode)).unwrap();
    let out = node.expect(1, &["check"]);
    assert!(!trace.exists(), "a hook ran under a writable {dir}");
    assert!(
        out.contains(&format!("{dir} is writable by group or others")),
        "{out}"
    );
    assert!(!out.contains("Checks: none"), "{out}");
    assert!(out.contains("vetoes"), "{out}");
    // umm on is vetoed too, and nothing changes.
    let out = node.expect(1, &["on"]);
    assert!(out.contains("vetoed by check.d"), "{out}");
}

#[test]
fn a_symlinked_hook_directory_is_refused() {
    let node = bounded_node();
    let trace = node.path("/trace");
    node.write(
        "/srv/hooks/10-x",
        &format!("#!/bin/sh\ntouch {}\n", trace.display()),
    );
    fs::set_permissions(
        node.path("/srv/hooks/10-x"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(node.path("/etc/umm")).unwrap();
    std::os::unix::fs::symlink(node.path("/srv/hooks"), node.path("/etc/umm/check.d")).unwrap();
    let out = node.expect(1, &["check"]);
    assert!(!trace.exists());
    assert!(out.contains("check.d is a symbolic link"), "{out}");
}

/// Files swapped under umm's feet while it checks and runs hooks, many
/// times: a foreign script never runs, and the checks never vanish.
#[test]
fn swapping_hooks_during_the_check_never_runs_a_foreign_script() {
    let node = bounded_node();
    let marker = node.path("/foreign-ran");
    let good = "#!/bin/sh\nexit 0\n";
    let bad = format!("#!/bin/sh\ntouch {}\nexit 0\n", marker.display());
    // Sources of the swaps: a root script and one owned by nobody.
    node.write("/src/good", good);
    node.write("/src/bad", &bad);
    for f in ["/src/good", "/src/bad"] {
        fs::set_permissions(node.path(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::chown(node.path("/src/bad"), Some(65534), Some(65534)).unwrap();
    // (a) A trusted directory whose hook is replaced by rename.
    node.hook("check", "10-swapped", "exit 0");
    // (b) A hook linked into a world-writable, non-sticky directory.
    node.write("/evil/hook", good);
    fs::set_permissions(node.path("/evil"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(node.path("/evil/hook"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(
        node.path("/evil/hook"),
        node.path("/etc/umm/check.d/20-linked"),
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (src, check_d, evil) = (
            node.path("/src"),
            node.path("/etc/umm/check.d"),
            node.path("/evil"),
        );
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for from in ["bad", "good"] {
                    for (dir, name) in [(&check_d, "10-swapped"), (&evil, "hook")] {
                        let tmp = dir.join(".swap");
                        let _ = fs::remove_file(&tmp);
                        fs::hard_link(src.join(from), &tmp).unwrap();
                        fs::rename(&tmp, dir.join(name)).unwrap();
                    }
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let runs = 150;
    let mut ran_good = 0;
    for _ in 0..runs {
        let records = check_hooks(&node);
        assert!(!records.is_empty(), "the checks vanished (\"none\")");
        for r in &records {
            if r.ok {
                ran_good += 1;
            } else {
                assert!(r.result.starts_with("refused: "), "{r:?}");
            }
        }
        assert!(
            !marker.exists(),
            "a script owned by nobody ran as root: {records:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    println!(
        "{runs} runs of the checks during {swaps} swaps; the root script ran {ran_good} times"
    );
    assert!(!marker.exists());
}

// ---------------------------------------------------------------------------
// Item 7: a broken configuration never turns a disabled umm on

#[test]
fn a_broken_dropin_keeps_a_disabled_umm_disabled() {
    let mut node = bounded_node();
    node.write("/etc/umm/umm.toml", "enabled = false\n");
    node.boot();
    // Later, a drop-in with a typo.
    node.write("/etc/umm/umm.toml.d/50-site.toml", "reboot_cuont = 5\n");
    for _ in 0..4 {
        node.boot();
    }
    let s = node.status();
    assert_eq!(s["state"], "operational", "{s}");
    assert_eq!(s["enabled"], false, "{s}");
    assert_eq!(s["config"]["in_use"], "last-good", "{s}");
    assert!(
        s["config"]["error"]
            .as_str()
            .unwrap()
            .contains("50-site.toml"),
        "{s}"
    );
    let log = node.log();
    assert!(log.contains("the last configuration that loaded"), "{log}");
    let text = node.expect(0, &["status"]);
    assert!(
        text.contains("the last configuration that loaded"),
        "{text}"
    );
    // The generator, before /var is mounted, uses the early copy.
    assert!(node.path("/etc/umm/last-good-config.json").exists());
}

/// Configuration management pushes `enabled = false` together with a
/// drop-in holding a syntax error; the last configuration that loaded is
/// the defaults recorded at install (enabled). Crashes must not turn umm on.
#[rstest]
#[case::in_umm_toml("/etc/umm/umm.toml", "enabled = false\n", "/etc/umm/umm.toml:1")]
#[case::in_a_dropin_with_an_unknown_key(
    "/etc/umm/umm.toml.d/10-off.toml",
    "# off for the migration\nenabled = false\nreboot_cuont = 3\n",
    "/etc/umm/umm.toml.d/10-off.toml:2"
)]
fn a_file_that_parses_and_disables_wins_over_the_last_good_configuration(
    #[case] file: &str,
    #[case] text: &str,
    #[case] at: &str,
) {
    let mut node = bounded_node();
    node.boot();
    assert!(node.exists("/var/lib/umm/last-good-config.json"));
    node.write(file, text);
    node.write("/etc/umm/umm.toml.d/50-site.toml", "reboot_count = [\n");
    for _ in 0..4 {
        node.crash_and_boot();
    }
    let s = node.status();
    assert_eq!(s["state"], "operational", "{s}");
    assert_eq!(s["enabled"], false, "{s}");
    assert_eq!(s["config"]["in_use"], "last-good", "{s}");
    let disabled_by = s["config"]["disabled_by"].as_str().unwrap_or_default();
    assert!(disabled_by.ends_with(at), "{s}");
    let text = node.expect(0, &["status"]);
    assert!(
        text.contains("says enabled = false, and that holds"),
        "{text}"
    );
    assert!(node.log().contains("umm stays disabled"), "{}", node.log());
    // A later file that parses and says true takes it back: the fallback
    // applies as before.
    node.write("/etc/umm/umm.toml.d/60-on.toml", "enabled = true\n");
    node.crash_and_boot();
    let s = node.status();
    assert_eq!(s["enabled"], true, "{s}");
    assert_eq!(s["config"]["disabled_by"], Value::Null, "{s}");
}

#[test]
fn with_no_configuration_ever_loaded_a_broken_one_counts_but_never_enters() {
    let mut node = bounded_node();
    node.write("/etc/umm/umm.toml", "enabled = fals\n");
    node.boot();
    for _ in 0..5 {
        node.boot();
    }
    let s = node.status();
    assert_eq!(s["state"], "operational", "{s}");
    assert_eq!(s["unclean_boots"], 5, "{s}");
    assert_eq!(s["config"]["in_use"], "counting-only", "{s}");
    assert!(
        node.log().contains("never entering maintenance"),
        "{}",
        node.log()
    );
    let text = node.expect(0, &["status"]);
    assert!(text.contains("counted only"), "{text}");
    // Fixed, the configuration loads and the counting rules apply again.
    node.write("/etc/umm/umm.toml", "enabled = true\n");
    node.boot();
    let s = node.status();
    assert_eq!(
        (s["state"].as_str(), s["config"]["in_use"].as_str()),
        (Some("maintenance"), Some("loaded")),
        "{s}"
    );
}

// Item 10 (a full or read-only root filesystem is said where the operator
// looks) and the I/O errors of item 6 are injected at fail points:
// tests/failpoints.rs.

// ---------------------------------------------------------------------------
// Issue #22: a signal on `umm off` while an off.d hook runs

/// Ctrl-C (SIGINT), a dropped ssh session (SIGHUP) or SIGTERM on `umm off`
/// while its off.d hook runs, then `umm off` again: the hook has run
/// exactly once, and the episode is closed with its result.
#[rstest]
#[case::ctrl_c(nix::sys::signal::Signal::SIGINT)]
#[case::hang_up(nix::sys::signal::Signal::SIGHUP)]
#[case::terminate(nix::sys::signal::Signal::SIGTERM)]
fn a_signal_during_the_off_hooks_never_runs_them_twice(#[case] signal: nix::sys::signal::Signal) {
    let mut node = bounded_node();
    let marker = node.path("/off-hook-runs");
    let started = node.path("/off-hook-started");
    node.hook(
        "off",
        "10-slow",
        &format!(
            "echo run >> {}\ntouch {}\nsleep 2",
            marker.display(),
            started.display()
        ),
    );
    node.boot();
    node.expect(0, &["on"]);
    node.clean_reboot();
    assert_eq!(node.status()["state"], "maintenance");
    let mut off = node.command(&["off"]);
    // The signal's default action, whatever this test inherited: under
    // `nohup` SIGHUP is ignored, umm rightly keeps it so, and finishes (exit 0).
    // SAFETY: between fork and exec, only async-signal-safe signal(2).
    unsafe {
        off.pre_exec(move || {
            nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut off = off
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !started.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the off.d hook never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = nix::unistd::Pid::from_raw(off.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    let status = common::wait_bounded(&mut off, Duration::from_secs(60)).expect("umm off hung");
    // The signal still counts: umm ends by it, once the work is recorded.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(signal as i32), "{status:?}");
    node.run(&["off"]);
    // Any hook still running (it would be a second run) has time to write.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "run\n",
        "off.d ran more than once"
    );
    let s = node.status();
    assert_eq!(s["state"], "operational", "{s}");
    assert!(
        s["last_episode"]["hooks"].to_string().contains("10-slow"),
        "the off.d result is lost: {s}"
    );
}

//! Checks of the init files that no VM here can boot (upstart) and of the
//! sysvinit scripts' LSB headers: each file against its documented grammar,
//! and against the original tool's bugs (REFERENCE: jobs without a start
//! condition never ran; a disabled or missing umm must never hold a boot).

use std::fs;
use std::path::Path;

/// upstart 1.x stanzas (init(5)).
const UPSTART_STANZAS: &[&str] = &[
    "description",
    "author",
    "version",
    "usage",
    "start",
    "stop",
    "task",
    "respawn",
    "instance",
    "expect",
    "exec",
    "script",
    "pre-start",
    "post-start",
    "pre-stop",
    "post-stop",
    "console",
    "env",
    "export",
    "emits",
    "normal",
    "kill",
    "manual",
    "nice",
    "oom",
    "limit",
    "umask",
    "chroot",
    "chdir",
    "setuid",
    "setgid",
    "apparmor",
    "cgroup",
];

/// Events an upstart system (Ubuntu 14.04) emits, and the jobs whose
/// starting/stopped events umm's jobs wait for.
const UPSTART_EVENTS: &[&str] = &[
    "runlevel",
    "filesystem",
    "local-filesystems",
    "static-network-up",
    "startup",
];
const UPSTART_JOBS: &[&str] = &["rc-sysinit", "rc"];

fn files(dir: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no files in {dir}");
    out
}

/// Checks one upstart job; returns its `start on` condition.
fn check_upstart_job(name: &str, text: &str) -> String {
    let mut in_script = false;
    let mut start_on = None;
    let mut has_body = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = format!("{name}:{}", i + 1);
        if in_script {
            if line == "end script" {
                in_script = false;
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let stanza = line.split_whitespace().next().unwrap();
        assert!(
            UPSTART_STANZAS.contains(&stanza),
            "{at}: unknown stanza {stanza:?}"
        );
        match stanza {
            "script" | "pre-start" | "post-start" | "pre-stop" | "post-stop"
                if line.ends_with("script") =>
            {
                in_script = true;
                has_body |= stanza == "script";
            }
            "exec" => has_body = true,
            "start" | "stop" => {
                let cond = line.strip_prefix(stanza).unwrap().trim();
                let cond = cond
                    .strip_prefix("on ")
                    .unwrap_or_else(|| panic!("{at}: expected `{stanza} on`"));
                check_condition(&at, cond);
                if stanza == "start" {
                    start_on = Some(cond.to_string());
                }
            }
            _ => {}
        }
    }
    assert!(!in_script, "{name}: `script` without `end script`");
    assert!(has_body, "{name}: neither exec nor script");
    start_on.unwrap_or_else(|| panic!("{name}: no `start on`: the job would never run"))
}

fn check_condition(at: &str, cond: &str) {
    let words: Vec<&str> = cond
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty() && *w != "and" && *w != "or")
        .collect();
    let mut i = 0;
    while i < words.len() {
        let event = words[i];
        if ["starting", "started", "stopping", "stopped"].contains(&event) {
            let job = words
                .get(i + 1)
                .unwrap_or_else(|| panic!("{at}: {event} needs a job"));
            assert!(
                UPSTART_JOBS.contains(job),
                "{at}: waits for unknown job {job}"
            );
            i += 2;
        } else if UPSTART_EVENTS.contains(&event) {
            i += 1;
        } else if event.contains('=') || event.starts_with('[') {
            // Environment matches: RUNLEVEL=[2345], or runlevel's [!2345].
            let value = event.split('=').next_back().unwrap();
            assert!(
                value.starts_with('[') && value.ends_with(']'),
                "{at}: bad match {event}"
            );
            i += 1;
        } else {
            panic!("{at}: unknown event {event:?}");
        }
    }
}

#[test]
fn upstart_jobs_follow_the_grammar_and_all_have_start_conditions() {
    for (name, text) in files("units/upstart") {
        assert!(
            name.ends_with(".conf"),
            "{name}: upstart only reads .conf files"
        );
        check_upstart_job(&name, &text);
    }
}

#[test]
fn upstart_pause_blocks_rc_sysinit_and_never_holds_without_umm() {
    let jobs = files("units/upstart");
    let (_, pause) = jobs.iter().find(|(n, _)| n == "umm-pause.conf").unwrap();
    assert_eq!(
        check_upstart_job("umm-pause.conf", pause),
        "starting rc-sysinit"
    );
    assert!(
        pause.lines().any(|l| l.trim() == "task"),
        "only a task holds rc-sysinit until it ends"
    );
    // The pause is umm's own bounded logic, never an event a disabled umm
    // would have to emit; and no umm binary means no pause at all.
    assert!(!pause.lines().any(|l| l.trim_start().starts_with("emits")));
    assert!(pause.contains("[ -x /usr/bin/umm ] || exit 0"));
    let (_, shutdown) = jobs.iter().find(|(n, _)| n == "umm-shutdown.conf").unwrap();
    assert_eq!(
        check_upstart_job("umm-shutdown.conf", shutdown),
        "starting rc RUNLEVEL=[06]"
    );
}

#[test]
fn the_grammar_check_catches_the_original_bugs() {
    let no_start = "description \"x\"\ntask\nexec /bin/true\n";
    assert!(std::panic::catch_unwind(|| check_upstart_job("x.conf", no_start)).is_err());
    let bad_event = "start on umm-resume\nexec /bin/true\n";
    assert!(std::panic::catch_unwind(|| check_upstart_job("x.conf", bad_event)).is_err());
    let open_script = "start on runlevel [2345]\nscript\n  true\n";
    assert!(std::panic::catch_unwind(|| check_upstart_job("x.conf", open_script)).is_err());
}

#[test]
fn sysvinit_scripts_have_lsb_headers_and_guard_a_missing_binary() {
    for (name, text) in files("units/sysvinit") {
        let header: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "### BEGIN INIT INFO")
            .take_while(|l| *l != "### END INIT INFO")
            .collect();
        assert!(!header.is_empty(), "{name}: no LSB header");
        let field = |key: &str| {
            header
                .iter()
                .find_map(|l| l.strip_prefix(&format!("# {key}:")).map(str::trim))
                .unwrap_or_else(|| panic!("{name}: no {key}"))
        };
        assert_eq!(field("Provides"), name);
        field("Required-Start");
        field("Default-Start");
        field("Short-Description");
        assert!(
            text.contains("[ -x \"$UMM\" ] || exit 0"),
            "{name}: must not fail without the binary"
        );
        assert!(
            text.trim_end().ends_with("exit 0"),
            "{name}: start must not fail the boot"
        );
    }
}

/// The stop dependencies of Debian 12's shutdown scripts (initscripts
/// 3.06-4, runlevels 0 and 6), and of an ordinary service, as their LSB
/// headers declare them: (provides, Required-Stop + Should-Stop,
/// X-Stop-After). Facilities as /etc/insserv.conf defines them.
const DEBIAN_STOP_SCRIPTS: &[(&str, &[&str], &[&str])] = &[
    ("cron", &["$remote_fs", "$syslog"], &[]),
    ("sendsigs", &["umountnfs"], &[]),
    ("umountnfs", &["umountfs"], &[]),
    ("umountfs", &["umountroot"], &[]),
    ("umountroot", &["halt", "reboot"], &[]),
    ("urandom", &["$local_fs"], &[]),
    ("halt", &[], &[]),
    ("reboot", &[], &[]),
];
const INSSERV_FACILITIES: &[(&str, &[&str])] = &[
    ("$local_fs", &["umountfs"]),
    ("$remote_fs", &["umountfs", "umountnfs", "sendsigs"]),
    ("$syslog", &[]),
];

/// insserv's order of stop scripts as edges "stops before": a script stops
/// before what its Required-Stop and Should-Stop name, and after what its
/// X-Stop-After names.
fn stops_before(scripts: &[(String, Vec<String>, Vec<String>)]) -> Vec<(String, String)> {
    let expand = |name: &String| -> Vec<String> {
        match INSSERV_FACILITIES.iter().find(|(f, _)| f == name) {
            Some((_, members)) => members.iter().map(|m| m.to_string()).collect(),
            None => vec![name.clone()],
        }
    };
    let mut edges = Vec::new();
    for (name, needs, after) in scripts {
        for n in needs.iter().flat_map(expand) {
            edges.push((name.clone(), n));
        }
        for a in after.iter().flat_map(expand) {
            edges.push((a, name.clone()));
        }
    }
    edges
}

fn ordered_before(edges: &[(String, String)], from: &str, to: &str) -> bool {
    let mut seen = vec![from.to_string()];
    let mut queue = vec![from.to_string()];
    while let Some(x) = queue.pop() {
        for (a, b) in edges {
            if *a == x && !seen.contains(b) {
                if b == to {
                    return true;
                }
                seen.push(b.clone());
                queue.push(b.clone());
            }
        }
    }
    false
}

/// Issue #16 item 6b: the clean-shutdown record was ordered only before
/// umountfs, so insserv could run it while services still ran, and a
/// shutdown that then hung counted as clean. It must come after sendsigs
/// (every process killed) and before /var can be unmounted.
#[test]
fn sysvinit_clean_shutdown_record_is_the_last_stop_before_unmounting() {
    let text = sysvinit_script("umm-boot");
    assert_eq!(lsb_field(&text, "Default-Stop"), ["0", "6"]);
    assert_stop_order(&[
        ("cron", "umm-boot"),
        ("sendsigs", "umm-boot"),
        ("umm-boot", "umountnfs"),
        ("umm-boot", "umountfs"),
        ("umm-boot", "umountroot"),
    ]);
}

/// One of umm's sysvinit scripts.
fn sysvinit_script(name: &str) -> String {
    let (_, text) = files("units/sysvinit")
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap();
    text
}

/// insserv's order over Debian's stop scripts with umm's: each `(first,
/// then)` pair stops in that order, and no script is in a loop.
fn assert_stop_order(pairs: &[(&str, &str)]) {
    let scripts = stop_scripts_with_umms();
    let edges = stops_before(&scripts);
    for (first, then) in pairs {
        assert!(
            ordered_before(&edges, first, then),
            "{first} must stop before {then}: {edges:?}"
        );
    }
    for (name, _, _) in &scripts {
        assert!(!ordered_before(&edges, name, name), "a loop through {name}");
    }
}

/// An LSB header's field as words (empty when absent).
fn lsb_field(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != "### BEGIN INIT INFO")
        .take_while(|l| *l != "### END INIT INFO")
        .find_map(|l| l.strip_prefix(&format!("# {key}:")))
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Debian's stop scripts with umm's own, as insserv reads their headers.
fn stop_scripts_with_umms() -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut scripts: Vec<(String, Vec<String>, Vec<String>)> = DEBIAN_STOP_SCRIPTS
        .iter()
        .map(|(n, needs, after)| {
            (
                n.to_string(),
                needs.iter().map(|s| s.to_string()).collect(),
                after.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    for (name, text) in files("units/sysvinit") {
        if lsb_field(&text, "Default-Stop").is_empty() {
            continue;
        }
        let needs = lsb_field(&text, "Required-Stop")
            .into_iter()
            .chain(lsb_field(&text, "Should-Stop"))
            .collect();
        scripts.push((name, needs, lsb_field(&text, "X-Stop-After")));
    }
    scripts
}

/// A reboot by kexec on sysvinit is a clean reboot: umm-kexec boots the
/// loaded kernel only after umm-boot recorded the clean shutdown and the
/// root is read-only (umountroot), and before Debian's reboot script
/// reboots through the firmware. Runlevel 6 only: halting stays a halt.
#[test]
fn sysvinit_kexec_runs_after_the_clean_shutdown_record_and_before_reboot() {
    let text = sysvinit_script("umm-kexec");
    assert_eq!(lsb_field(&text, "Default-Stop"), ["6"]);
    assert!(lsb_field(&text, "Default-Start").is_empty());
    assert_stop_order(&[
        ("sendsigs", "umm-kexec"),
        ("umm-boot", "umm-kexec"),
        ("umountfs", "umm-kexec"),
        ("umountroot", "umm-kexec"),
        ("umm-kexec", "reboot"),
    ]);
    assert!(
        text.contains("\"$UMM\" internal kexec-exec || true"),
        "umm-kexec must never fail the reboot"
    );
}

/// The cron entries (sysvinit, upstart): the retry of a pending fleet
/// release every 10 minutes and the queue's try every minute, as root,
/// doing nothing under systemd (the timers do it there) nor without the
/// binary, and mailing nothing.
#[test]
fn the_cron_entries_run_only_without_systemd() {
    let jobs: Vec<String> = files("units/cron")
        .into_iter()
        .flat_map(|(_, text)| {
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.contains('='))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let mut seen = Vec::new();
    for job in &jobs {
        let fields: Vec<&str> = job.splitn(7, ' ').collect();
        let command = fields[6];
        assert!(
            command.starts_with("if [ ! -d /run/systemd/system ] && [ -x /usr/bin/umm ]; then "),
            "{command}"
        );
        for (every, internal) in [("*/10", "fleet-retry"), ("*", "queue")] {
            if command.contains(&format!(
                "/usr/bin/umm internal {internal} >/dev/null 2>&1; fi"
            )) {
                assert_eq!(fields[..6], [every, "*", "*", "*", "*", "root"], "{job}");
                seen.push(internal);
            }
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, ["fleet-retry", "queue"], "{jobs:?}");
}

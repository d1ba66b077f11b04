//! What the scenarios share (the lab's libtest): starting from an installed
//! guest, reading umm's status, journal and metrics, crashing and rebooting,
//! and the checks that prove a maintenance boot or a resume.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::ctx::Ctx;
use crate::vm::{Vm, BOOT_TIMEOUT};

/// Units a maintenance boot may start on top of sysinit.target: the
/// keep-set (as installed in the base image) and umm's own.
pub const KEEP: &[&str] = &[
    "networking.service",
    "ssh.service",
    "ssh.socket",
    "getty.target",
    "getty@tty1.service",
    "serial-getty@ttyS0.service",
    "dbus.socket",
    "dbus.service",
    "systemd-logind.service",
    "systemd-user-sessions.service",
    "umm.target",
    "umm-maintenance.service",
    "umm-uptime.timer",
    "network-online.target",
    "network.target",
];

pub fn status(vm: &Vm) -> Result<Value> {
    let out = vm.ssh_ok("umm status --json")?;
    serde_json::from_str(&out).with_context(|| format!("umm status --json is not JSON: {out}"))
}

/// Checks `state` (and `reason`) in umm status; returns the whole status.
pub fn expect_state(vm: &Vm, state: &str, reason: Option<&str>) -> Result<Value> {
    let s = status(vm)?;
    ensure!(
        s["state"] == state && reason.is_none_or(|r| s["reason"] == r),
        "expected state {state} reason {reason:?}, umm status says {} {} (unclean_boots {})",
        s["state"],
        s["reason"],
        s["unclean_boots"]
    );
    Ok(s)
}

/// A guest with the .deb installed, in a boot that umm ran from the start
/// of: the variant's ready state, resumed.
pub fn installed(ctx: &mut Ctx) -> Result<&mut Vm> {
    let vm = ctx.resume_installed()?;
    expect_state(vm, "operational", None)?;
    Ok(vm)
}

/// Like [`installed`], for a variant with a single short scenario: the bare
/// base image booted, the .deb installed with `dpkg -i`, then a clean
/// reboot (so umm runs from the start of a boot). About 120 s, where
/// making a ready state (the same, settled and saved) took 190 to 230 s.
pub fn installed_here(ctx: &mut Ctx) -> Result<&mut Vm> {
    let deb = ctx.deb()?;
    let vm = ctx.boot_fresh_direct()?;
    install_deb(vm, &deb, true)?;
    expect_state(vm, "operational", None)?;
    Ok(vm)
}

/// Like [`installed`], then powered off and booted again through the BIOS
/// and GRUB, with the menu the package's postinst made: for what GRUB's
/// menu must show and boot. (Installing in a GRUB-booted guest instead
/// cost a boot and a `dpkg -i` of about 100 s under TCG, and `update-grub`
/// reads the disk, not how the running system was booted.)
pub fn installed_via_grub(ctx: &mut Ctx) -> Result<&mut Vm> {
    installed(ctx)?;
    let vm = ctx.boot_via_grub()?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(
        s["unclean_boots"] == 0,
        "the power-off before the GRUB boot counted as unclean: {s}"
    );
    Ok(vm)
}

pub fn is_active(vm: &Vm, unit: &str) -> Result<String> {
    let out = vm.ssh(&format!("systemctl is-active {unit}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Is cron running once a normal boot's start-up has ended? The lab waits
/// for sshd, which systemd and rc2 start beside cron, not after it.
pub fn cron_up(vm: &Vm) -> Result<bool> {
    vm.settle()?;
    Ok(is_active(vm, "cron")? == "active")
}

/// Every unit systemd queued a start job for in this boot, from PID 1's
/// journal entries (a job that was cancelled is listed too).
pub fn units_started_this_boot(vm: &Vm) -> Result<Vec<String>> {
    let out = vm.ssh_ok("journalctl -b _PID=1 -o json --output-fields=UNIT,JOB_TYPE --no-pager")?;
    let mut units: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["JOB_TYPE"] == "start")
        .filter_map(|e| e["UNIT"].as_str().map(String::from))
        .collect();
    units.sort();
    units.dedup();
    Ok(units)
}

/// The proof that a maintenance boot started nothing outside the keep-set:
/// no unit that multi-user.target, basic.target, timers.target or
/// sockets.target pulls in was even queued in this boot.
pub fn assert_nothing_else_started(vm: &Vm) -> Result<Vec<String>> {
    let started = units_started_this_boot(vm)?;
    ensure!(!started.is_empty(), "no start jobs found in the journal");
    for target in [
        "multi-user.target",
        "basic.target",
        "timers.target",
        "sockets.target",
        "graphical.target",
    ] {
        ensure!(
            !started.iter().any(|u| u == target),
            "{target} was started in maintenance"
        );
    }
    ensure!(
        !started.iter().any(|u| u == "cron.service"),
        "cron.service was started in maintenance"
    );
    let wanted = vm.ssh_ok(
        "systemctl show -p Wants -p Requires --value multi-user.target basic.target timers.target sockets.target",
    )?;
    // umm.target's own dependency tree: sysinit.target (the system's base)
    // and the keep-set the generator linked in.
    let inside = vm.ssh_ok("systemctl list-dependencies --plain --no-pager umm.target")?;
    let outside: Vec<&String> = started
        .iter()
        .filter(|u| wanted.split_whitespace().any(|w| w == u.as_str()))
        .filter(|u| {
            !KEEP.contains(&u.as_str()) && !inside.split_whitespace().any(|w| w == u.as_str())
        })
        .collect();
    ensure!(
        outside.is_empty(),
        "started in maintenance outside the keep-set: {outside:?}"
    );
    ensure!(
        is_active(vm, "ssh.service")? == "active" || is_active(vm, "ssh.socket")? == "active",
        "sshd is not running in maintenance"
    );
    Ok(started)
}

/// After resuming: the system is running (not degraded) and every enabled
/// service is active, or a oneshot that finished successfully.
pub fn assert_all_enabled_services_up(vm: &Vm) -> Result<()> {
    let state = vm.settle()?;
    let failed = vm.ssh_ok("systemctl --failed --no-legend --plain")?;
    ensure!(
        state == "running",
        "system is {state:?}; failed units:\n{failed}"
    );
    let enabled =
        vm.ssh_ok("systemctl list-unit-files --state=enabled --type=service --no-legend --plain")?;
    let mut down = Vec::new();
    for unit in enabled.lines().filter_map(|l| l.split_whitespace().next()) {
        if unit.contains('@') {
            continue;
        }
        let show = vm.ssh_ok(&format!(
            "systemctl show -p ActiveState -p Result -p Type -p ConditionResult {unit}"
        ))?;
        let prop = |key: &str| {
            show.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .unwrap_or_default()
                .to_string()
        };
        // Active, or a oneshot that finished well, or skipped by its condition.
        let ok = prop("ActiveState") == "active"
            || (prop("Result") == "success"
                && (prop("Type") == "oneshot" || prop("ConditionResult") == "no"));
        if !ok {
            down.push(format!("{unit} ({})", show.replace('\n', " ")));
        }
    }
    ensure!(
        down.is_empty(),
        "enabled services not running after resume: {down:?}"
    );
    Ok(())
}

/// A drop-in with `reboot_count = 0`: the first unclean boot stops in
/// maintenance, so scenarios that are not about the threshold need one crash.
pub fn strict(vm: &Vm) -> Result<()> {
    vm.ssh_ok("mkdir -p /etc/umm/umm.toml.d && echo 'reboot_count = 0' > /etc/umm/umm.toml.d/40-lab-strict.toml && sync")?;
    Ok(())
}

/// Crashes the guest (QMP system_reset) `n` times. A test's own setup must
/// be synced before: a hard reset loses what is only in the page cache.
pub fn crash_times(vm: &mut Vm, n: usize) -> Result<()> {
    for _ in 0..n {
        vm.crash()?;
    }
    Ok(())
}

/// Runs a command that reboots the guest, then waits for the new boot.
pub fn run_then_wait_reboot(vm: &mut Vm, cmd: &str) -> Result<String> {
    let old = vm.boot_id()?;
    let out = vm.ssh(cmd)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    vm.wait_new_boot(&old, BOOT_TIMEOUT)
        .with_context(|| format!("no reboot after `{cmd}`, which said: {text}"))?;
    Ok(text)
}

/// Waits for a condition on umm status (bounded).
pub fn wait_status(
    vm: &Vm,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status(vm)?;
        if ok(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}; umm status: {s}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn umm_off_resumes(vm: &Vm) -> Result<String> {
    let out = vm.ssh_timeout("umm off", Duration::from_secs(900))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.code() == Some(0), "umm off failed: {text}");
    ensure!(
        text.contains("Normal target reached"),
        "umm off said: {text}"
    );
    Ok(text)
}

/// `umm off` and returns its exit code and everything it said.
pub fn umm_off(vm: &Vm, args: &str, timeout: Duration) -> Result<(Option<i32>, String)> {
    let out = vm.ssh_timeout(&format!("umm off {args}"), timeout)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), text))
}

/// Lines of a file in the guest (0 when it does not exist).
pub fn line_count(vm: &Vm, path: &str) -> Result<usize> {
    let n = vm.ssh_ok(&format!("cat {path} 2>/dev/null | wc -l"))?;
    Ok(n.trim().parse().unwrap_or(0))
}

pub fn running(vm: &Vm, program: &str) -> Result<bool> {
    Ok(vm.ssh(&format!("pidof {program}"))?.status.code() == Some(0))
}

/// `MESSAGE_ID` of umm's journal entries (src/sys/journal.rs, `Kind`).
pub const ENTERED_ID: &str = "705a2a9089de48c1a261e47f58e427f8";

pub const RESUMED_ID: &str = "99959cd78dc54e20a8705c065d7312de";

pub const COUNTED_ID: &str = "fb4345c27c0a4a60a31be33cd5a3174d";

/// The journal entries of this boot with `message_id`, as `journalctl -o json`
/// gives them.
pub fn journal_entries(vm: &Vm, message_id: &str) -> Result<Vec<Value>> {
    let out = vm.ssh_ok(&format!(
        "journalctl -b -o json --no-pager MESSAGE_ID={message_id}"
    ))?;
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("journalctl -o json: {l}")))
        .collect()
}

/// The directory node_exporter's textfile collector reads (created by
/// hand: the image has no prometheus-node-exporter), and umm's file in it.
pub const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";

/// The value of `series` in the guest's umm.prom.
pub fn metric(vm: &Vm, series: &str) -> Result<Option<String>> {
    let text = vm.ssh_ok(&format!("cat {TEXTFILE_DIR}/umm.prom"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .map(|(_, v)| v.to_string()))
}

pub fn expect_metric(vm: &Vm, series: &str, value: &str) -> Result<()> {
    let got = metric(vm, series)?;
    ensure!(
        got.as_deref() == Some(value),
        "umm.prom: {series} is {got:?}, expected {value}"
    );
    Ok(())
}

/// Install a .deb the way a user would: copy it to /root, `dpkg -i` it.
/// With `reboot`, reboot cleanly afterwards and wait for the new boot.
pub fn install_deb(vm: &mut Vm, deb: &Path, reboot: bool) -> Result<()> {
    let name = deb
        .file_name()
        .context("--deb path has no file name")?
        .to_string_lossy();
    let remote = format!("/root/{name}");
    vm.scp_to(deb, &remote)?;
    vm.ssh_ok(&format!("DEBIAN_FRONTEND=noninteractive dpkg -i {remote}"))?;
    if reboot {
        vm.reboot_clean()?;
    }
    Ok(())
}

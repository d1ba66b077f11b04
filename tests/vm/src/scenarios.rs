//! umm's scenarios: each boots real Debian guests with the .deb installed
//! the way a user installs it, and checks what a user would check: states
//! from `umm status --json`, units from systemctl and the journal, files the
//! scheduled command wrote, the kernel command line.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::vm::{Vm, BOOT_TIMEOUT};
use crate::{install_deb, Ctx};

/// Units a maintenance boot may start on top of sysinit.target: the
/// keep-set (as installed in the base image) and umm's own.
const KEEP: &[&str] = &[
    "networking.service",
    "ssh.service",
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

/// Boots a fresh guest, installs the .deb, reboots cleanly so that umm runs
/// from the start of a boot.
pub fn installed(ctx: &mut Ctx) -> Result<&mut Vm> {
    let deb = ctx.deb()?;
    let vm = ctx.boot()?;
    install_deb(vm, &deb, true)?;
    expect_state(vm, "operational", None)?;
    Ok(vm)
}

fn is_active(vm: &Vm, unit: &str) -> Result<String> {
    let out = vm.ssh(&format!("systemctl is-active {unit}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Every unit systemd queued a start job for in this boot, from PID 1's
/// journal entries (a job that was cancelled is listed too).
fn units_started_this_boot(vm: &Vm) -> Result<Vec<String>> {
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
    for target in ["multi-user.target", "basic.target", "timers.target", "sockets.target", "graphical.target"] {
        ensure!(!started.iter().any(|u| u == target), "{target} was started in maintenance");
    }
    ensure!(!started.iter().any(|u| u == "cron.service"), "cron.service was started in maintenance");
    let wanted = vm.ssh_ok(
        "systemctl show -p Wants -p Requires --value multi-user.target basic.target timers.target sockets.target",
    )?;
    let outside: Vec<&String> = started
        .iter()
        .filter(|u| wanted.split_whitespace().any(|w| w == u.as_str()) && !KEEP.contains(&u.as_str()))
        .collect();
    ensure!(outside.is_empty(), "started in maintenance outside the keep-set: {outside:?}");
    ensure!(is_active(vm, "ssh")? == "active", "sshd is not running in maintenance");
    Ok(started)
}

/// After resuming: the system is running (not degraded) and every enabled
/// service is active, or a oneshot that finished successfully.
pub fn assert_all_enabled_services_up(vm: &Vm) -> Result<()> {
    let state = vm.ssh_timeout("systemctl is-system-running --wait", Duration::from_secs(300))?;
    let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
    let failed = vm.ssh_ok("systemctl --failed --no-legend --plain")?;
    ensure!(state == "running", "system is {state:?}; failed units:\n{failed}");
    let enabled = vm.ssh_ok("systemctl list-unit-files --state=enabled --type=service --no-legend --plain")?;
    let mut down = Vec::new();
    for unit in enabled.lines().filter_map(|l| l.split_whitespace().next()) {
        if unit.contains('@') {
            continue;
        }
        let show = vm.ssh_ok(&format!("systemctl show -p ActiveState -p Result -p Type --value {unit}"))?;
        let fields: Vec<&str> = show.lines().collect();
        let ok = match fields.as_slice() {
            ["active", ..] => true,
            [_, result, kind] => *result == "success" && (*kind == "oneshot"),
            _ => false,
        } || fields.first() == Some(&"active");
        // Order of `systemctl show` output is Type, Result, ActiveState by property table; normalise.
        let ok = ok || (show.contains("active") && !show.contains("inactive") && !show.contains("failed"))
            || (show.contains("oneshot") && show.contains("success"));
        if !ok {
            down.push(format!("{unit} ({})", show.replace('\n', " ")));
        }
    }
    ensure!(down.is_empty(), "enabled services not running after resume: {down:?}");
    Ok(())
}

/// Crashes the guest (QMP system_reset) `n` times.
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
fn wait_status(vm: &Vm, what: &str, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status(vm)?;
        if ok(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}; umm status: {s}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn umm_off_resumes(vm: &Vm) -> Result<String> {
    let out = vm.ssh_timeout("umm off", Duration::from_secs(900))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.code() == Some(0), "umm off failed: {text}");
    ensure!(text.contains("Normal target reached"), "umm off said: {text}");
    Ok(text)
}

// ----------------------------------------------------------------- systemd

/// Crash loop -> maintenance with nothing outside the keep-set started ->
/// `umm off` -> every enabled service running.
pub fn crash_loop(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    crash_times(vm, 2)?;
    expect_state(vm, "operational", None)?;
    ensure!(status(vm)?["unclean_boots"] == 2, "two crashes were not counted");
    vm.crash()?;
    let s = expect_state(vm, "maintenance", Some("crash-loop"))?;
    ensure!(s["crash_boots"].as_array().map(Vec::len) == Some(3), "crash boots: {}", s["crash_boots"]);
    let started = assert_nothing_else_started(vm)?;
    eprintln!("  maintenance boot started: {}", started.join(" "));
    let motd = vm.ssh_ok("cat /run/motd.d/umm")?;
    ensure!(motd.contains("MAINTENANCE MODE") && motd.contains("crash-loop"), "banner: {motd}");
    // A crash during maintenance boots back into maintenance.
    vm.crash()?;
    expect_state(vm, "maintenance", Some("crash-loop"))?;
    assert_nothing_else_started(vm)?;
    let said = umm_off_resumes(vm)?;
    eprintln!("  umm off: {}", said.lines().last().unwrap_or_default());
    expect_state(vm, "operational", None)?;
    ensure!(is_active(vm, "cron")? == "active", "cron is not running after umm off");
    assert_all_enabled_services_up(vm)?;
    Ok(())
}

/// /var on its own filesystem: the generator decides from the early copy.
pub fn sepvar(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    let var = vm.ssh_ok("findmnt -n -o SOURCE /var")?;
    ensure!(!var.trim().is_empty() && var != vm.ssh_ok("findmnt -n -o SOURCE /")?, "/var is not separate");
    crash_times(vm, 3)?;
    let s = expect_state(vm, "maintenance", Some("crash-loop"))?;
    ensure!(s["this_boot"]["decided_by"] == "generator", "decided by {}", s["this_boot"]["decided_by"]);
    assert_nothing_else_started(vm)?;
    umm_off_resumes(vm)?;
    ensure!(is_active(vm, "cron")? == "active", "cron is not running after umm off");
    Ok(())
}

/// Clean reboots never count.
pub fn clean_reboots(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.crash()?;
    ensure!(status(vm)?["unclean_boots"] == 1, "the crash was not counted");
    for _ in 0..3 {
        vm.reboot_clean()?;
        let s = expect_state(vm, "operational", None)?;
        ensure!(s["unclean_boots"] == 0, "a clean reboot counted: {}", s["unclean_boots"]);
    }
    let blame = vm.ssh_ok("systemd-analyze blame --no-pager | grep -E 'umm' || true")?;
    eprintln!("  boot cost (systemd-analyze blame): {}", blame.split_whitespace().collect::<Vec<_>>().join(" "));
    let generator = vm.ssh_ok(
        "d=$(mktemp -d); s=$(date +%s%N); /usr/lib/systemd/system-generators/umm-generator $d $d $d; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))ms; rm -rf $d",
    )?;
    eprintln!("  generator run time: {}", generator.trim());
    Ok(())
}

/// counter_reset_time of uptime (a drop-in: 40s) resets the count.
pub fn uptime_reset(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.ssh_ok("mkdir -p /etc/umm/umm.toml.d && echo 'counter_reset_time = \"40s\"' > /etc/umm/umm.toml.d/50-lab.toml")?;
    crash_times(vm, 2)?;
    let timer = vm.ssh_ok("systemctl cat umm-uptime.timer | grep OnBootSec= | tail -1")?;
    ensure!(timer.contains("OnBootSec=40s"), "the timer does not follow counter_reset_time: {timer}");
    ensure!(status(vm)?["unclean_boots"] == 2, "crashes not counted");
    wait_status(vm, "the uptime reset", Duration::from_secs(180), |s| s["unclean_boots"] == 0)?;
    // That boot reached the reset time: its crash is not unclean.
    vm.crash()?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(s["unclean_boots"] == 0, "a crash after the reset time counted");
    Ok(())
}

/// `umm on -- CMD`: maintenance, CMD ran with its exit code in status,
/// banner; `umm off reboot` -> normal.
pub fn on_command(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    run_then_wait_reboot(vm, "umm on -- sh -c 'echo from-maintenance > /root/cmd.out; exit 7'")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    let s = wait_status(vm, "the scheduled command", Duration::from_secs(120), |s| !s["command"]["exit_code"].is_null())?;
    ensure!(s["command"]["exit_code"] == 7, "exit code {}", s["command"]["exit_code"]);
    ensure!(vm.ssh_ok("cat /root/cmd.out")?.trim() == "from-maintenance", "the command's file is missing");
    ensure!(s["requested_by"]["user"] == "root", "requested by {}", s["requested_by"]);
    assert_nothing_else_started(vm)?;
    let issue = vm.ssh_ok("cat /run/issue.d/umm.issue")?;
    ensure!(issue.contains("umm off"), "console banner: {issue}");
    run_then_wait_reboot(vm, "umm off reboot")?;
    expect_state(vm, "operational", None)?;
    ensure!(is_active(vm, "cron")? == "active", "cron is not running after umm off reboot");
    let history = vm.ssh_ok("umm history")?;
    ensure!(history.contains("rebooted"), "history: {history}");
    Ok(())
}

/// Disabled: a crash loop never enters, and `umm on` is refused.
pub fn disabled(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.ssh_ok("umm disable")?;
    crash_times(vm, 4)?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(s["enabled"] == false && s["unclean_boots"] == 0, "status: {s}");
    let out = vm.ssh("umm on")?;
    ensure!(out.status.code() == Some(1), "umm on was not refused while disabled");
    ensure!(is_active(vm, "cron")? == "active", "cron is not running");
    Ok(())
}

/// The umm binary removed: the node still boots normally and says why.
pub fn binary_removed(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.ssh_ok("rm /usr/sbin/umm")?;
    crash_times(vm, 4)?;
    assert_all_enabled_services_up(vm).or_else(|e| {
        // umm-boot.service itself fails (no binary): that is the journal saying why.
        let failed = vm.ssh_ok("systemctl --failed --no-legend --plain")?;
        ensure!(failed.lines().all(|l| l.starts_with("umm-")), "{e:#}");
        Ok(())
    })?;
    ensure!(is_active(vm, "cron")? == "active", "cron is not running");
    let journal = vm.ssh_ok("journalctl -b -u umm-boot.service --no-pager")?;
    ensure!(journal.contains("umm"), "the journal does not say why: {journal}");
    Ok(())
}

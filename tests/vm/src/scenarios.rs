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
    crate::install_deb(vm, &deb, true)?;
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

fn is_active(vm: &Vm, unit: &str) -> Result<String> {
    let out = vm.ssh(&format!("systemctl is-active {unit}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Is cron running once a normal boot's start-up has ended? The lab waits
/// for sshd, which systemd and rc2 start beside cron, not after it.
fn cron_up(vm: &Vm) -> Result<bool> {
    vm.settle()?;
    Ok(is_active(vm, "cron")? == "active")
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
fn wait_status(
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

fn umm_off_resumes(vm: &Vm) -> Result<String> {
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

// ----------------------------------------------------------------- systemd

/// `MESSAGE_ID` of umm's journal entries (src/sys/journal.rs, `Kind`).
const ENTERED_ID: &str = "705a2a9089de48c1a261e47f58e427f8";
const RESUMED_ID: &str = "99959cd78dc54e20a8705c065d7312de";
const COUNTED_ID: &str = "fb4345c27c0a4a60a31be33cd5a3174d";

/// The journal entries of this boot with `message_id`, as `journalctl -o json`
/// gives them.
fn journal_entries(vm: &Vm, message_id: &str) -> Result<Vec<Value>> {
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
const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";

/// The value of `series` in the guest's umm.prom.
fn metric(vm: &Vm, series: &str) -> Result<Option<String>> {
    let text = vm.ssh_ok(&format!("cat {TEXTFILE_DIR}/umm.prom"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .map(|(_, v)| v.to_string()))
}

fn expect_metric(vm: &Vm, series: &str, value: &str) -> Result<()> {
    let got = metric(vm, series)?;
    ensure!(
        got.as_deref() == Some(value),
        "umm.prom: {series} is {got:?}, expected {value}"
    );
    Ok(())
}

/// Crash loop -> maintenance with nothing outside the keep-set started ->
/// `umm off` -> every enabled service running. On the way: the journal's
/// crash-loop entry with its MESSAGE_ID and fields, and umm.prom.
pub fn crash_loop(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.ssh_ok(&format!("mkdir -p {TEXTFILE_DIR} && sync"))?;
    crash_times(vm, 2)?;
    expect_state(vm, "operational", None)?;
    expect_metric(vm, "umm_unclean_boots", "2")?;
    expect_metric(vm, r#"umm_state{state="operational",reason=""}"#, "1")?;
    ensure!(
        status(vm)?["unclean_boots"] == 2,
        "two crashes were not counted"
    );
    vm.crash()?;
    let s = expect_state(vm, "maintenance", Some("crash-loop"))?;
    ensure!(
        s["crash_boots"].as_array().map(Vec::len) == Some(3),
        "crash boots: {}",
        s["crash_boots"]
    );
    let started = assert_nothing_else_started(vm)?;
    eprintln!("  maintenance boot started: {}", started.join(" "));
    let motd = vm.ssh_ok("cat /run/motd.d/umm")?;
    ensure!(
        motd.contains("MAINTENANCE MODE") && motd.contains("crash-loop"),
        "banner: {motd}"
    );
    let entered = journal_entries(vm, ENTERED_ID)?;
    ensure!(
        entered.iter().any(|e| e["UMM_REASON"] == "crash-loop"
            && e["UMM_STATE"] == "maintenance"
            && e["UMM_EPISODE"].is_string()
            && e["UMM_UNCLEAN_BOOTS"] == "3"
            && e["SYSLOG_IDENTIFIER"] == "umm"),
        "journalctl MESSAGE_ID={ENTERED_ID}: no crash-loop entry with its fields: {entered:?}"
    );
    expect_metric(
        vm,
        r#"umm_state{state="maintenance",reason="crash-loop"}"#,
        "1",
    )?;
    expect_metric(
        vm,
        r#"umm_maintenance_entered_total{reason="crash-loop"}"#,
        "1",
    )?;
    ensure!(
        metric(vm, "umm_maintenance_start_timestamp_seconds")?.is_some(),
        "umm.prom has no start time in maintenance"
    );
    // A crash during maintenance boots back into maintenance.
    vm.crash()?;
    expect_state(vm, "maintenance", Some("crash-loop"))?;
    assert_nothing_else_started(vm)?;
    expect_metric(
        vm,
        r#"umm_maintenance_entered_total{reason="crash-loop"}"#,
        "1",
    )?;
    let said = umm_off_resumes(vm)?;
    eprintln!("  umm off: {}", said.lines().last().unwrap_or_default());
    expect_state(vm, "operational", None)?;
    let resumed = journal_entries(vm, RESUMED_ID)?;
    ensure!(
        resumed
            .iter()
            .any(|e| e["UMM_REASON"] == "crash-loop" && e["UMM_STATE"] == "operational"),
        "journalctl MESSAGE_ID={RESUMED_ID}: no entry for the closed episode: {resumed:?}"
    );
    expect_metric(vm, r#"umm_state{state="operational",reason=""}"#, "1")?;
    expect_metric(vm, "umm_unclean_boots", "0")?;
    expect_metric(vm, "umm_services_not_back", "0")?;
    ensure!(
        is_active(vm, "cron")? == "active",
        "cron is not running after umm off"
    );
    assert_all_enabled_services_up(vm)?;
    Ok(())
}

/// /var on its own filesystem: the generator decides from the early copy.
pub fn sepvar(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_here(ctx)?;
    let var = vm.ssh_ok("findmnt -n -o SOURCE /var")?;
    ensure!(
        !var.trim().is_empty() && var != vm.ssh_ok("findmnt -n -o SOURCE /")?,
        "/var is not separate"
    );
    strict(vm)?;
    vm.crash()?;
    let s = expect_state(vm, "maintenance", Some("crash-loop"))?;
    ensure!(
        s["this_boot"]["decided_by"] == "generator",
        "decided by {}",
        s["this_boot"]["decided_by"]
    );
    assert_nothing_else_started(vm)?;
    // The system bus goes away in maintenance (stopped, restarting, or a
    // minimal node that has none): umm falls back to systemd's private
    // socket, where zbus 5 would panic on the messages' sender field.
    vm.ssh_ok("systemctl stop dbus.socket dbus.service")?;
    let bus = vm.ssh_ok("systemctl is-active dbus.socket dbus.service || true")?;
    ensure!(
        bus.lines().all(|l| l == "inactive"),
        "the system bus is still there: {bus}"
    );
    umm_off_resumes(vm)?;
    ensure!(
        is_active(vm, "cron")? == "active",
        "cron is not running after umm off"
    );
    Ok(())
}

/// Clean reboots never count.
pub fn clean_reboots(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.crash()?;
    ensure!(
        status(vm)?["unclean_boots"] == 1,
        "the crash was not counted"
    );
    for _ in 0..2 {
        vm.reboot_clean()?;
        let s = expect_state(vm, "operational", None)?;
        ensure!(
            s["unclean_boots"] == 0,
            "a clean reboot counted: {}",
            s["unclean_boots"]
        );
    }
    let blame = vm.ssh_ok("systemd-analyze blame --no-pager | grep -E 'umm' || true")?;
    eprintln!(
        "  boot cost (systemd-analyze blame): {}",
        blame.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let generator = vm.ssh_ok(
        "d=$(mktemp -d); s=$(date +%s%N); /usr/lib/systemd/system-generators/umm-generator $d $d $d; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))ms; rm -rf $d",
    )?;
    eprintln!("  generator run time: {}", generator.trim());
    // umm's own files broken: the boot goes on, normally, and says why.
    vm.ssh_ok("echo 'reboot_count = [' > /etc/umm/umm.toml && head -c 100 /dev/urandom > /var/lib/umm/state.json")?;
    vm.reboot_clean()?;
    ensure!(
        cron_up(vm)?,
        "no normal boot with a broken configuration and state"
    );
    // The corrupt state is found by the first writer: the clean-shutdown
    // record of the previous boot, or the boot unit.
    let journal = vm.ssh_ok("journalctl -u umm-boot.service -u umm-shutdown.service --no-pager")?;
    ensure!(
        journal.contains("the last configuration that loaded") && journal.contains("set aside"),
        "the journal does not say why: {journal}"
    );
    let s = status(vm)?;
    ensure!(
        !s["config"]["error"].is_null() && s["config"]["in_use"] == "last-good",
        "status does not report the configuration error and what is used: {s}"
    );
    Ok(())
}

/// counter_reset_time of uptime (a drop-in: 40s) resets the count.
///
/// The crashes to count happen under a long reset time: a boot to ssh takes
/// more than 40 s of uptime when the host is busy (seen in CI: the kernel
/// alone took 46 s), and the count would be reset before the next crash.
/// The short time takes effect from the third boot on.
pub fn uptime_reset(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    let dropin = |reset: &str| {
        format!(
            "mkdir -p /etc/umm/umm.toml.d && printf 'reboot_count = 5\\ncounter_reset_time = \"{reset}\"\\n' > /etc/umm/umm.toml.d/50-lab.toml && sync"
        )
    };
    vm.ssh_ok(&dropin("30min"))?;
    crash_times(vm, 2)?;
    ensure!(status(vm)?["unclean_boots"] == 2, "crashes not counted");
    vm.ssh_ok(&dropin("40s"))?;
    vm.crash()?;
    let timer = vm.ssh_ok("systemctl cat umm-uptime.timer | grep OnBootSec= | tail -1")?;
    ensure!(
        timer.contains("OnBootSec=40s"),
        "the timer does not follow counter_reset_time: {timer}"
    );
    wait_status(vm, "the uptime reset", Duration::from_secs(180), |s| {
        s["unclean_boots"] == 0
    })?;
    // The count the reset cleared: this boot's counted entry.
    let counted = journal_entries(vm, COUNTED_ID)?;
    ensure!(
        counted.iter().any(|e| e["UMM_UNCLEAN_BOOTS"] == "3"),
        "the third crash was not counted before the reset: {counted:?}"
    );
    // That boot reached the reset time: its crash is not unclean.
    vm.crash()?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(
        s["unclean_boots"] == 0,
        "a crash after the reset time counted"
    );
    Ok(())
}

/// `umm on -- CMD`: maintenance, CMD ran with its exit code in status,
/// banner; `umm off reboot` -> normal.
pub fn on_command(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    run_then_wait_reboot(
        vm,
        "umm on -- sh -c 'echo from-maintenance > /root/cmd.out; exit 7'",
    )?;
    expect_state(vm, "maintenance", Some("manual"))?;
    let s = wait_status(vm, "the scheduled command", Duration::from_secs(120), |s| {
        !s["command"]["exit_code"].is_null()
    })?;
    ensure!(
        s["command"]["exit_code"] == 7,
        "exit code {}",
        s["command"]["exit_code"]
    );
    ensure!(
        vm.ssh_ok("cat /root/cmd.out")?.trim() == "from-maintenance",
        "the command's file is missing"
    );
    ensure!(
        s["requested_by"]["user"] == "root",
        "requested by {}",
        s["requested_by"]
    );
    assert_nothing_else_started(vm)?;
    let issue = vm.ssh_ok("cat /run/issue.d/umm.issue")?;
    ensure!(issue.contains("umm off"), "console banner: {issue}");
    run_then_wait_reboot(vm, "umm off reboot")?;
    // The episode stays `resuming` until umm-after, after the normal
    // target, has finished it: sshd answers before that.
    vm.settle()?;
    expect_state(vm, "operational", None)?;
    ensure!(
        is_active(vm, "cron")? == "active",
        "cron is not running after umm off reboot"
    );
    let history = vm.ssh_ok("umm history")?;
    ensure!(history.contains("rebooted"), "history: {history}");
    Ok(())
}

/// Disabled: a crash loop never enters, and `umm on` is refused.
pub fn disabled(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    strict(vm)?;
    vm.ssh_ok("umm disable")?;
    crash_times(vm, 2)?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(
        s["enabled"] == false && s["unclean_boots"] == 0,
        "status: {s}"
    );
    let out = vm.ssh("umm on")?;
    ensure!(
        out.status.code() == Some(1),
        "umm on was not refused while disabled"
    );
    ensure!(cron_up(vm)?, "cron is not running");
    Ok(())
}

/// The umm binary removed: the node still boots normally and says why.
pub fn binary_removed(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    strict(vm)?;
    vm.ssh_ok("rm /usr/bin/umm && sync")?;
    vm.crash()?;
    assert_all_enabled_services_up(vm).or_else(|e| {
        // umm-boot.service itself fails (no binary): that is the journal saying why.
        let failed = vm.ssh_ok("systemctl --failed --no-legend --plain")?;
        ensure!(failed.lines().all(|l| l.starts_with("umm-")), "{e:#}");
        Ok(())
    })?;
    ensure!(is_active(vm, "cron")? == "active", "cron is not running");
    let journal = vm.ssh_ok("journalctl -b -u umm-boot.service --no-pager")?;
    ensure!(
        journal.contains("umm"),
        "the journal does not say why: {journal}"
    );
    Ok(())
}

// ----------------------------------------------------------------- GRUB

/// Ids of umm's menu entries from `umm status` (top level: no `>`).
fn menu_entry(s: &Value, kind: &str) -> Result<String> {
    s["boot_menu"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == kind && !e["id"].as_str().unwrap_or(">").contains('>'))
        .and_then(|e| e["id"].as_str().map(String::from))
        .with_context(|| {
            format!(
                "no top-level {kind} entry in umm status: {}",
                s["boot_menu"]
            )
        })
}

/// GRUB entries for every kernel; the maintenance entry boots to
/// maintenance (reason cmdline); the skip entry boots normally and keeps a
/// pending request.
pub fn grub_entries(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    // A second kernel, as GRUB's 10_linux sees one: another vmlinuz/initrd pair.
    vm.ssh_ok(
        "k=$(uname -r); cp /boot/vmlinuz-$k /boot/vmlinuz-6.1.0-0.lab-amd64; \
         cp /boot/initrd.img-$k /boot/initrd.img-6.1.0-0.lab-amd64; update-grub 2>&1",
    )?;
    let cfg = vm.ssh_ok("cat /boot/grub/grub.cfg")?;
    let count = |needle: &str| {
        cfg.lines()
            .filter(|l| l.trim_start().starts_with("menuentry") && l.contains(needle))
            .count()
    };
    ensure!(
        count("maintenance mode (umm)") == 3,
        "maintenance entries (want top + 2 kernels):\n{cfg}"
    );
    ensure!(
        count("skip maintenance (umm=off)") == 3,
        "skip entries (want top + 2 kernels):\n{cfg}"
    );
    let linux_on = cfg
        .lines()
        .filter(|l| l.trim_start().starts_with("linux") && l.contains("umm=on"))
        .count();
    ensure!(linux_on == 3, "kernel lines with umm=on: {linux_on}");
    ensure!(
        cfg.contains("with Linux 6.1.0-0.lab-amd64, maintenance mode (umm)"),
        "no maintenance entry for the second kernel"
    );
    let s = status(vm)?;
    ensure!(
        s["boot_menu"]["entries"].as_array().map(Vec::len) == Some(6),
        "status: {}",
        s["boot_menu"]
    );

    let on_id = menu_entry(&s, "umm=on")?;
    vm.ssh_ok(&format!("grub-reboot '{on_id}'"))?;
    run_then_wait_reboot(vm, "systemctl reboot")?;
    let s = expect_state(vm, "maintenance", Some("cmdline"))?;
    ensure!(
        s["boot_menu"]["this_boot_cmdline"] == "umm=on",
        "status: {}",
        s["boot_menu"]
    );
    ensure!(
        vm.ssh_ok("cat /proc/cmdline")?.contains("umm=on"),
        "umm=on is not on the kernel command line"
    );
    assert_nothing_else_started(vm)?;
    umm_off_resumes(vm)?;

    let off_id = menu_entry(&status(vm)?, "umm=off")?;
    vm.ssh_ok(&format!("grub-reboot '{off_id}'"))?;
    run_then_wait_reboot(vm, "umm on")?;
    let s = expect_state(vm, "pending", Some("manual"))?;
    ensure!(
        s["this_boot"]["skipped_by_cmdline"] == true,
        "this boot: {}",
        s["this_boot"]
    );
    ensure!(cron_up(vm)?, "the skip entry did not boot normally");
    // The request kept through the skip: the next boot is maintenance.
    // (`umm off reboot` back to normal is on-command's, not GRUB's.)
    vm.reboot_clean()?;
    expect_state(vm, "maintenance", Some("manual"))?;
    Ok(())
}

// ----------------------------------------------------------------- packaging

/// The units the package enables (UNITS in the installed postinst, so
/// that this list cannot drift from the package's): `disabled` ones
/// disabled, every other one enabled.
fn ensure_unit_states(vm: &Vm, disabled: &[&str]) -> Result<()> {
    let listed =
        vm.ssh_ok(r#"sed -n 's/^UNITS="\(.*\)"$/\1/p' /var/lib/dpkg/info/umm.postinst"#)?;
    let units: Vec<&str> = listed.split_whitespace().collect();
    ensure!(
        !units.is_empty() && disabled.iter().all(|d| units.contains(d)),
        "the installed postinst's UNITS ({listed:?}) lacks one of {disabled:?}"
    );
    // is-enabled exits 1 when one is disabled: its output is what counts.
    let out = vm.ssh(&format!("systemctl is-enabled {}", units.join(" ")))?;
    let states = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = states.lines().collect();
    let want: Vec<&str> = units
        .iter()
        .map(|u| {
            if disabled.contains(u) {
                "disabled"
            } else {
                "enabled"
            }
        })
        .collect();
    ensure!(
        got == want,
        "unit states {:?}, want {:?} for {units:?}",
        got,
        want
    );
    Ok(())
}

fn umm_entries_in_grub(vm: &Vm) -> Result<usize> {
    let n = vm.ssh_ok("grep -c '(umm' /boot/grub/grub.cfg || true")?;
    Ok(n.trim().parse().unwrap_or(0))
}

/// Upgrade from a package of the first release's layout (the binary in
/// /usr/sbin), with a clean reboot between unpack and configure; what a
/// user without root sees; an upgrade over itself keeps state and config.
pub fn package_upgrade(ctx: &mut Ctx) -> Result<()> {
    let deb = ctx.deb()?;
    let old = old_layout_deb(&deb, &ctx.work_dir())?;
    let vm = ctx.boot_fresh_direct()?;
    // A node with a package of the first release's layout (the binary in
    // /usr/sbin, every unit naming it there).
    install_deb(vm, &old, true)?;
    expect_state(vm, "operational", None)?;
    ensure!(
        vm.ssh_ok("readlink -f $(command -v umm)")? == "/usr/sbin/umm",
        "the old layout is not what is installed"
    );
    // The upgrade window: the new files unpacked, systemd still running
    // the old units (ExecStop=/usr/sbin/umm ...), then a clean reboot. The
    // shutdown must still be recorded as clean.
    let name = deb.file_name().context("deb name")?.to_string_lossy();
    vm.scp_to(&deb, &format!("/root/{name}"))?;
    vm.ssh_ok(&format!(
        "DEBIAN_FRONTEND=noninteractive dpkg --unpack /root/{name} >/dev/null"
    ))?;
    vm.reboot_clean()?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(
        s["unclean_boots"] == 0,
        "a clean reboot during the upgrade counted as unclean: {s}"
    );
    vm.ssh_ok("DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null")?;
    ensure!(
        vm.ssh_ok("readlink /usr/sbin/umm; test -x /usr/bin/umm && echo bin")? == "../bin/umm\nbin",
        "after the upgrade, /usr/sbin/umm is not a link to ../bin/umm"
    );
    let stop = vm.ssh_ok("systemctl show -p ExecStop --value umm-shutdown.service")?;
    ensure!(
        stop.contains("/usr/bin/umm"),
        "umm-shutdown.service still runs {stop}"
    );
    // What a user without root sees (Debian's PATH for users has no sbin).
    let op = |cmd: &str| -> Result<(Option<i32>, String)> {
        let out = vm.ssh_as("op", cmd, Duration::from_secs(60))?;
        Ok((
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    };
    let (code, path) = op("command -v umm")?;
    ensure!(
        code == Some(0) && path.trim() == "/usr/bin/umm",
        "a user's shell finds umm at {path:?}"
    );
    let (code, said) = op("umm status")?;
    ensure!(
        code == Some(0) && said.contains("operational"),
        "umm status as a user: exit {code:?}: {said}"
    );
    let (code, said) = op("umm on")?;
    ensure!(
        code == Some(1) && said.contains("needs root"),
        "umm on as a user: exit {code:?}: {said}"
    );
    ensure_unit_states(vm, &[])?;
    ensure!(
        umm_entries_in_grub(vm)? > 0,
        "no umm entries in grub.cfg after install"
    );
    // An administrator's `systemctl disable` of one unit survives an
    // upgrade (postinst's was-enabled, and deb-systemd-helper's enable,
    // which adds no link to a unit that has none on an upgrade).
    vm.ssh_ok("mkdir -p /etc/umm/umm.toml.d && echo 'reboot_count = 5' > /etc/umm/umm.toml.d/50-site.toml && umm disable && systemctl disable --quiet umm-fleet-retry.timer")?;
    install_deb(vm, &deb, false)?;
    let s = status(vm)?;
    ensure!(
        s["enabled"] == false && s["reboot_count"] == 5,
        "upgrade lost state or config: {s}"
    );
    ensure_unit_states(vm, &["umm-fleet-retry.timer"]).context("after an upgrade over itself")?;
    vm.reboot_clean()?;
    ensure!(cron_up(vm)?, "no normal boot after the upgrade");
    vm.ssh_ok("umm enable")?;
    Ok(())
}

/// Remove keeps the configuration and the state and takes umm's GRUB
/// entries away; purge removes everything; the node boots normally after
/// each.
pub fn package_remove(ctx: &mut Ctx) -> Result<()> {
    let deb = ctx.deb()?;
    // Installed by `dpkg -i` when the ready state was made.
    let vm = installed(ctx)?;
    ensure!(
        umm_entries_in_grub(vm)? > 0,
        "no umm entries in grub.cfg after install"
    );
    vm.ssh_ok("mkdir -p /etc/umm/umm.toml.d && echo 'reboot_count = 5' > /etc/umm/umm.toml.d/50-site.toml && umm status >/dev/null")?;
    vm.ssh_ok("DEBIAN_FRONTEND=noninteractive dpkg -r umm")?;
    ensure!(
        umm_entries_in_grub(vm)? == 0,
        "umm entries left in grub.cfg after remove"
    );
    vm.ssh_ok("test -f /etc/umm/umm.toml && test -f /etc/umm/umm.toml.d/50-site.toml && test -f /var/lib/umm/state.json")
        .context("remove must keep configuration and state")?;
    vm.reboot_clean()?;
    assert_all_enabled_services_up(vm)?;

    install_deb(vm, &deb, false)?;
    ensure_unit_states(vm, &[]).context("installed again after a remove")?;
    vm.ssh_ok("DEBIAN_FRONTEND=noninteractive dpkg -P umm")?;
    vm.ssh_ok("! test -e /etc/umm && ! test -e /var/lib/umm")
        .context("purge must remove /etc/umm and /var/lib/umm")?;
    vm.ssh_ok("! test -e /usr/bin/umm && ! test -L /usr/sbin/umm")
        .context("purge must remove the binary and its /usr/sbin link")?;
    ensure!(
        umm_entries_in_grub(vm)? == 0,
        "umm entries left in grub.cfg after purge"
    );
    vm.reboot_clean()?;
    assert_all_enabled_services_up(vm)?;
    Ok(())
}

/// A package of the first release's layout, made from the .deb under test:
/// the binary in /usr/sbin and every unit, script and snippet naming it
/// there, version 0.0.1 so that the .deb under test is an upgrade.
fn old_layout_deb(deb: &std::path::Path, work: &std::path::Path) -> Result<std::path::PathBuf> {
    let tree = work.join("old-layout");
    let out = work.join("umm_0.0.1_amd64.deb");
    let script = format!(
        r#"set -e
        rm -rf {t}; dpkg-deb -R {deb} {t}
        rm -f {t}/usr/sbin/umm; mv {t}/usr/bin/umm {t}/usr/sbin/umm; rmdir {t}/usr/bin 2>/dev/null || true
        grep -rlI /usr/bin/umm {t} | xargs -r sed -i 's|/usr/bin/umm|/usr/sbin/umm|g'
        sed -i 's/^Version: .*/Version: 0.0.1/' {t}/DEBIAN/control
        dpkg-deb --root-owner-group -b {t} {out} >/dev/null"#,
        t = tree.display(),
        deb = deb.display(),
        out = out.display()
    );
    let made = crate::vm::run_with_deadline(
        std::process::Command::new("sh").args(["-c", &script]),
        Duration::from_secs(120),
    )?;
    ensure!(
        made.status.success(),
        "making the old-layout package failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    Ok(out)
}

// ----------------------------------------------------------------- hooks

/// A failing check vetoes `umm on` and nothing changes; pre-on, on and off
/// hooks run in the right boot with the right environment; a hung hook is
/// killed at its timeout and maintenance goes on; `umm off` reports a
/// service that did not come back.
pub fn hooks(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.ssh_ok(
        r#"set -e
        for d in check pre-on on off; do install -d -m 755 /etc/umm/$d.d; done
        printf '#!/bin/sh\necho "quorum: not today"; exit 1\n' > /etc/umm/check.d/10-veto
        for d in pre-on on off; do
          printf '#!/bin/sh\necho "$UMM_PHASE $UMM_REASON cron=$(systemctl is-active cron)" >> /root/hooks.log\necho $UMM_PHASE >> "$UMM_STATE_DIR/seen"\n' > /etc/umm/$d.d/20-log
        done
        printf '#!/bin/sh\nsleep 1000\n' > /etc/umm/on.d/30-hang
        chmod 755 /etc/umm/*.d/*
        mkdir -p /etc/umm/umm.toml.d
        printf '[hooks]\non_timeout = "10s"\n' > /etc/umm/umm.toml.d/50-hooks.toml
        printf '[Unit]\nDescription=lab: fails once /etc/flaky exists\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c "! test -e /etc/flaky"\n[Install]\nWantedBy=multi-user.target\n' > /etc/systemd/system/flaky.service
        systemctl daemon-reload
        systemctl enable --now flaky.service"#,
    )?;
    let before = vm.boot_id()?;
    let out = vm.ssh("umm on -- touch /root/cmd-ran")?;
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        out.status.code() == Some(1),
        "umm on was not vetoed: {said}"
    );
    ensure!(
        said.contains("vetoed by check/10-veto") && said.contains("quorum: not today"),
        "veto: {said}"
    );
    ensure!(
        vm.boot_id()? == before,
        "the node rebooted despite the veto"
    );
    expect_state(vm, "operational", None)?;
    ensure!(
        vm.ssh("test -e /root/hooks.log")?.status.code() == Some(1),
        "pre-on ran despite the veto"
    );

    vm.ssh_ok("rm /etc/umm/check.d/10-veto")?;
    run_then_wait_reboot(vm, "umm on -- touch /root/cmd-ran")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    let s = wait_status(vm, "the scheduled command", Duration::from_secs(180), |s| {
        !s["command"]["exit_code"].is_null()
    })?;
    ensure!(s["command"]["exit_code"] == 0, "command: {}", s["command"]);
    let hang = s["hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["name"] == "30-hang")
        .cloned();
    ensure!(
        hang.as_ref().is_some_and(
            |h| h["ok"] == false && h["result"].as_str().unwrap_or("").contains("timeout")
        ),
        "the hung hook: {hang:?}"
    );
    vm.ssh_ok("touch /etc/flaky")?;
    let out = vm.ssh_timeout("umm off", Duration::from_secs(900))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.code() == Some(1),
        "umm off did not report the failed service: {said}"
    );
    ensure!(
        said.contains("flaky.service"),
        "umm off does not name flaky.service: {said}"
    );
    let log = vm.ssh_ok("cat /root/hooks.log")?;
    let lines: Vec<&str> = log.lines().collect();
    ensure!(
        lines
            == [
                "pre-on manual cron=active",
                "on manual cron=inactive",
                "off manual cron=active"
            ],
        "hook phases, reasons and boots: {log}"
    );
    ensure!(
        vm.ssh_ok("cat /var/lib/umm/hooks/20-log/seen")?
            .lines()
            .count()
            == 3,
        "state dir not shared"
    );
    Ok(())
}

// ----------------------------------------------------------------- sysvinit

fn running(vm: &Vm, program: &str) -> Result<bool> {
    Ok(vm.ssh(&format!("pidof {program}"))?.status.code() == Some(0))
}

/// sysvinit: crash loop -> maintenance with cron not started, sshd up;
/// `umm off` -> the runlevel starts, cron running.
pub fn sysvinit_crash_loop(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    let s = status(vm)?;
    ensure!(s["init"] == "sysvinit", "init system: {}", s["init"]);
    strict(vm)?;
    vm.crash()?;
    expect_state(vm, "maintenance", Some("crash-loop"))?;
    ensure!(!running(vm, "cron")?, "cron runs in maintenance");
    ensure!(running(vm, "sshd")?, "sshd does not run in maintenance");
    let runlevel = vm.ssh_ok("runlevel || true")?;
    ensure!(
        !runlevel.contains(" 2"),
        "runlevel 2 was entered in maintenance: {runlevel}"
    );
    // A console login ends (the getty's session exits): a new getty must
    // take its place, or the console has no login for the rest of the
    // maintenance.
    let getty = |vm: &Vm| -> Result<String> {
        Ok(vm
            .ssh_ok("pgrep -f '^/sbin/getty .*ttyS0' || true")?
            .trim()
            .to_string())
    };
    let first = getty(vm)?;
    ensure!(!first.is_empty(), "no getty on ttyS0 in maintenance");
    vm.ssh_ok(&format!("kill {first}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = getty(vm)?;
        if !now.is_empty() && now != first {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the ttyS0 getty was not started again after it exited (was pid {first})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    umm_off_resumes(vm)?;
    ensure!(running(vm, "cron")?, "cron does not run after umm off");
    expect_state(vm, "operational", None)?;
    Ok(())
}

/// sysvinit: `umm on -- CMD`, clean reboots not counted, disable.
pub fn sysvinit_on_command(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    // The clean-shutdown record is the last thing before the filesystems
    // are unmounted: after sendsigs has killed every process, before
    // umountfs. A shutdown that hangs before then must not count as clean.
    for rc in ["/etc/rc0.d", "/etc/rc6.d"] {
        let links = vm.ssh_ok(&format!("ls {rc}"))?;
        // K<NN><name>: scripts with the same NN may run at the same time.
        let order = |name: &str| {
            links.lines().find_map(|l| {
                let rest = l.strip_prefix('K')?;
                (rest.get(2..)? == name).then(|| rest.get(..2)?.parse::<u32>().ok())?
            })
        };
        let (umm, sendsigs, umountfs) = (order("umm-boot"), order("sendsigs"), order("umountfs"));
        ensure!(
            matches!((umm, sendsigs, umountfs), (Some(u), Some(s), Some(f)) if s < u && u < f),
            "in {rc}, umm-boot's stop is not strictly between sendsigs and umountfs:\n{links}"
        );
    }
    run_then_wait_reboot(vm, "umm on -- sh -c 'echo sysv > /root/cmd.out; exit 3'")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    let s = wait_status(vm, "the scheduled command", Duration::from_secs(120), |s| {
        !s["command"]["exit_code"].is_null()
    })?;
    ensure!(
        s["command"]["exit_code"] == 3,
        "exit code {}",
        s["command"]["exit_code"]
    );
    ensure!(!running(vm, "cron")?, "cron runs in maintenance");
    run_then_wait_reboot(vm, "umm off reboot")?;
    // `resuming` until umm-after, the last of rc2's scripts, finished it:
    // sshd answers before that (once in CI, 1 vCPU: "resuming").
    let runlevel = vm.settle()?;
    expect_state(vm, "operational", None).with_context(|| format!("runlevel {runlevel}"))?;
    ensure!(
        running(vm, "cron")?,
        "cron does not run after umm off reboot"
    );
    strict(vm)?;
    vm.reboot_clean()?;
    expect_state(vm, "operational", None).context("a clean reboot counted")?;
    vm.ssh_ok("umm disable")?;
    vm.crash()?;
    // rc2 starts cron and sshd side by side: wait for it to finish.
    vm.settle()?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(
        s["unclean_boots"] == 0 && running(vm, "cron")?,
        "disabled umm still acted: {s}"
    );
    Ok(())
}

// ----------------------------------------------------------------- demo

fn say(step: &str) {
    println!("demo: {step}");
}

fn show(vm: &Vm, cmd: &str) -> Result<()> {
    let out = vm.ssh(cmd)?;
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        println!("      | {line}");
    }
    Ok(())
}

/// `make demo`: the main job, narrated.
pub fn demo(ctx: &mut Ctx) -> Result<()> {
    say("booting a throwaway Debian 12 VM and installing umm from its .deb, as a user would");
    let vm = installed(ctx)?;
    say("umm's defaults: maintenance after more than 2 unclean boots in a row (reboot_count = 2)");
    for i in 1..=3 {
        say(&format!(
            "crash {i}: hard reset of the VM (QMP system_reset), no clean shutdown"
        ));
        vm.crash()?;
        let s = status(vm)?;
        say(&format!(
            "   booted again: state {}, unclean boots in a row: {}",
            s["state"], s["unclean_boots"]
        ));
    }
    say("the third unclean boot stopped in maintenance mode; `umm status` over ssh:");
    show(vm, "umm status")?;
    say(&format!(
        "cron (an ordinary service) is {}: nothing outside networking, sshd and consoles started",
        is_active(vm, "cron")?
    ));
    assert_nothing_else_started(vm)?;
    say("the operator fixes the node, then leaves maintenance with `umm off`:");
    show(vm, "umm off")?;
    say(&format!(
        "back to normal without a reboot: cron is {}; `umm status`:",
        is_active(vm, "cron")?
    ));
    show(vm, "umm status")?;
    expect_state(vm, "operational", None)?;
    say("done");
    Ok(())
}

// ----------------------------------------------------------------- bad days

/// `umm off` and returns its exit code and everything it said.
fn umm_off(vm: &Vm, args: &str, timeout: Duration) -> Result<(Option<i32>, String)> {
    let out = vm.ssh_timeout(&format!("umm off {args}"), timeout)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), text))
}

/// Lines of a file in the guest (0 when it does not exist).
fn line_count(vm: &Vm, path: &str) -> Result<usize> {
    let n = vm.ssh_ok(&format!("cat {path} 2>/dev/null | wc -l"))?;
    Ok(n.trim().parse().unwrap_or(0))
}

/// A minimal node without the dbus package (debootstrap's minbase with
/// systemd has none; systemd does not need it): umm talks to systemd on its
/// private socket. Checks, entering, the scheduled command and leaving all
/// work, and nothing outside the keep-set starts.
pub fn no_dbus(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.ssh_ok(
        "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q dbus dbus-daemon dbus-bin \
         dbus-system-bus-common dbus-session-bus-common libpam-systemd >/dev/null 2>&1; \
         ! dpkg -l dbus-daemon 2>/dev/null | grep -q '^ii' && sync",
    )
    .context("purging dbus")?;
    vm.reboot_clean()?;
    ensure!(
        vm.ssh("test -e /run/dbus/system_bus_socket")?.status.code() == Some(1),
        "a system bus is still running without the dbus package"
    );
    let dry = vm.ssh("umm on --dry-run")?;
    let said =
        String::from_utf8_lossy(&dry.stdout).to_string() + &String::from_utf8_lossy(&dry.stderr);
    ensure!(
        dry.status.code() == Some(0) && said.contains("allowed"),
        "umm on --dry-run without dbus: exit {:?}: {said}",
        dry.status.code()
    );
    ensure!(
        said.contains("cron.service"),
        "the dry run does not list what would stop: {said}"
    );
    run_then_wait_reboot(vm, "umm on -- touch /root/nodbus-cmd")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    wait_status(vm, "the scheduled command", Duration::from_secs(120), |s| {
        !s["command"]["exit_code"].is_null()
    })?;
    ensure!(
        vm.ssh("test -e /root/nodbus-cmd")?.status.success(),
        "the scheduled command did not run"
    );
    assert_nothing_else_started(vm)?;
    umm_off_resumes(vm)?;
    expect_state(vm, "operational", None)?;
    ensure!(
        is_active(vm, "cron")? == "active",
        "cron is not running after umm off"
    );
    Ok(())
}

/// Units for the leaving scenarios: an off.d hook that counts its runs, and
/// a service of the normal target that takes `secs` to start, so that the
/// resume can be cut short.
fn slow_normal_target(vm: &Vm, secs: u32) -> Result<()> {
    vm.ssh_ok(&format!(
        r#"set -e
        install -d -m 755 /etc/umm/off.d
        printf '#!/bin/sh\necho "$UMM_PHASE $UMM_REASON" >> /root/off.log\n' > /etc/umm/off.d/10-count
        chmod 755 /etc/umm/off.d/10-count
        printf '[Unit]\nDescription=lab: slow to start\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep {secs}\n[Install]\nWantedBy=multi-user.target\n' > /etc/systemd/system/slow.service
        systemctl daemon-reload
        systemctl enable slow.service 2>/dev/null
        sync"#
    ))?;
    Ok(())
}

/// Leaving is a transaction: a resume that times out or is interrupted
/// leaves the node `resuming`, `umm off` may be retried, and the off.d hooks
/// run exactly once when the normal target is reached, whoever gets there:
/// the retry, or the next boot after a power cut in the middle.
pub fn off_interrupted(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    slow_normal_target(vm, 30)?;
    run_then_wait_reboot(vm, "umm on")?;
    expect_state(vm, "maintenance", Some("manual"))?;

    // 1. The wait runs out before the normal target is reached.
    let (code, said) = umm_off(vm, "--timeout 5s", Duration::from_secs(120))?;
    ensure!(
        code == Some(1),
        "umm off --timeout 5s: exit {code:?}: {said}"
    );
    let s = expect_state(vm, "resuming", None)?;
    ensure!(
        line_count(vm, "/root/off.log")? == 0,
        "off.d hooks ran before the normal target was reached"
    );
    eprintln!("  after a timed-out umm off: {}", s["state"]);
    // 2. Interrupted (Ctrl-C) while waiting: still resuming.
    let out = vm.ssh_timeout("timeout -s INT 3 umm off; echo $?", Duration::from_secs(60))?;
    eprintln!(
        "  umm off interrupted by SIGINT: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    // 3. The retry reaches the normal target; the hooks run once.
    let (code, said) = umm_off(vm, "", Duration::from_secs(600))?;
    ensure!(
        code == Some(0) && said.contains("Normal target reached"),
        "the retried umm off: exit {code:?}: {said}"
    );
    expect_state(vm, "operational", None)?;
    // umm-after.service (after multi-user.target) may also try: still once.
    vm.settle()?;
    ensure!(
        line_count(vm, "/root/off.log")? == 1,
        "off.d hooks did not run exactly once: {}",
        vm.ssh_ok("cat /root/off.log")?
    );

    // 4. Power cut while resuming: the next boot is normal and finishes the
    // work there, once.
    run_then_wait_reboot(vm, "umm on")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    let (code, said) = umm_off(vm, "--timeout 5s", Duration::from_secs(120))?;
    ensure!(
        code == Some(1),
        "umm off --timeout 5s: exit {code:?}: {said}"
    );
    expect_state(vm, "resuming", None)?;
    vm.ssh_ok("sync")?;
    vm.crash()?;
    vm.settle()?;
    expect_state(vm, "operational", None)?;
    ensure!(
        is_active(vm, "cron")? == "active",
        "the boot after a power cut while resuming is not normal"
    );
    let runs = line_count(vm, "/root/off.log")?;
    ensure!(
        runs == 2,
        "off.d hooks of the second episode did not run exactly once after the power cut ({runs} lines in all)"
    );
    let history = vm.ssh_ok("umm history --json")?;
    let episodes: Value = serde_json::from_str(&history)?;
    ensure!(
        episodes.as_array().map(Vec::len) == Some(2),
        "history: {history}"
    );
    Ok(())
}

/// `umm off` while the scheduled command runs returns once the normal
/// target is reached (not after the command), and says the command still
/// runs; `umm off` during the on.d hooks means the command never starts.
pub fn off_during_command(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    run_then_wait_reboot(vm, "umm on -- sleep 900")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    wait_status(
        vm,
        "the scheduled command to start",
        Duration::from_secs(120),
        |s| !s["command"]["started"].is_null(),
    )?;
    let started = Instant::now();
    let (code, said) = umm_off(vm, "", Duration::from_secs(900))?;
    let took = started.elapsed();
    ensure!(code == Some(0), "umm off: exit {code:?}: {said}");
    ensure!(
        took < Duration::from_secs(120),
        "umm off waited {took:?} for the scheduled command"
    );
    ensure!(
        said.contains("still running"),
        "umm off does not say the command still runs: {said}"
    );
    ensure!(
        vm.ssh("pgrep -x sleep")?.status.success(),
        "the scheduled command was stopped by umm off"
    );
    eprintln!("  umm off with the command running returned in {took:.1?}");

    // umm off while the on.d hooks run: the command must never start.
    vm.ssh_ok(
        r#"set -e
        install -d -m 755 /etc/umm/on.d
        printf '#!/bin/sh\ntouch /root/on-hook-started\nsleep 20\n' > /etc/umm/on.d/10-slow
        chmod 755 /etc/umm/on.d/10-slow
        sync"#,
    )?;
    run_then_wait_reboot(vm, "umm on -- touch /root/cmd-started")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !vm.ssh("test -e /root/on-hook-started")?.status.success() {
        ensure!(Instant::now() < deadline, "the on.d hook never started");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (code, said) = umm_off(vm, "", Duration::from_secs(900))?;
    ensure!(
        code == Some(0),
        "umm off during on.d: exit {code:?}: {said}"
    );
    // The worker goes on once the hook (20 s) is done: wait for it to end.
    let deadline = Instant::now() + Duration::from_secs(120);
    while is_active(vm, "umm-maintenance.service")? == "activating" {
        ensure!(
            Instant::now() < deadline,
            "the maintenance worker did not finish"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    vm.settle()?;
    ensure!(
        vm.ssh("test -e /root/cmd-started")?.status.code() == Some(1),
        "the scheduled command started after umm off had ended its maintenance"
    );
    Ok(())
}

/// sshd started by its socket (Ubuntu 22.10+, and Debian when an operator
/// chose it): ssh still answers in maintenance, and nothing outside the
/// keep-set starts.
pub fn ssh_socket(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    vm.ssh_ok("systemctl disable ssh.service 2>/dev/null && systemctl enable ssh.socket 2>/dev/null && sync")?;
    vm.reboot_clean()?;
    // Debian's ssh.socket (Accept=no) starts ssh.service on the first
    // connection: socket-activated means the socket is what is enabled.
    let enabled = vm.ssh_ok("systemctl is-enabled ssh.service ssh.socket || true")?;
    ensure!(
        enabled.lines().collect::<Vec<_>>() == ["disabled", "enabled"]
            && is_active(vm, "ssh.socket")? == "active",
        "sshd is not socket-activated in the normal boot: {enabled}"
    );
    // The reboot into maintenance only comes back if ssh answers there.
    run_then_wait_reboot(vm, "umm on")?;
    expect_state(vm, "maintenance", Some("manual"))?;
    ensure!(
        is_active(vm, "ssh.socket")? == "active",
        "ssh.socket is not active in maintenance"
    );
    assert_nothing_else_started(vm)?;
    umm_off_resumes(vm)?;
    ensure!(is_active(vm, "cron")? == "active", "cron is not running");
    Ok(())
}

/// A site disables umm in its configuration; later a drop-in with a typo
/// arrives. Boots use the last configuration that loaded, so a crash loop
/// never enters maintenance on a node whose site turned umm off.
pub fn broken_dropin(ctx: &mut Ctx) -> Result<()> {
    let vm = installed(ctx)?;
    strict(vm)?;
    vm.ssh_ok("echo 'enabled = false' > /etc/umm/umm.toml.d/10-site.toml && sync")?;
    // The boot loads it (and records it as the last that loaded); later, a
    // drop-in with a typo arrives.
    vm.reboot_clean()?;
    vm.ssh_ok("echo 'reboot_count = [' > /etc/umm/umm.toml.d/20-typo.toml && sync")?;
    crash_times(vm, 2)?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(
        s["config"]["in_use"] == "last-good" && s["enabled"] == false,
        "status: {s}"
    );
    let journal = vm.ssh_ok("journalctl -b -u umm-boot.service --no-pager")?;
    ensure!(
        journal.contains("20-typo.toml") && journal.contains("last configuration that loaded"),
        "the journal does not say which configuration the boot used: {journal}"
    );
    ensure!(is_active(vm, "cron")? == "active", "cron is not running");
    Ok(())
}

// ----------------------------------------------------------------- fleet

/// An etcd on the host's loopback, which the guests reach at 10.0.2.2
/// (qemu's user network), from a temporary data directory; killed by its
/// PID when dropped.
struct HostEtcd {
    /// `None` while stopped (`stop`, then `restart`).
    child: Option<std::process::Child>,
    port: u16,
    peer: u16,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl HostEtcd {
    fn start(work: &std::path::Path) -> Result<HostEtcd> {
        let free = || -> Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let (port, peer) = (free()?, free()?);
        let dir = work.join("etcd");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut etcd = HostEtcd {
            child: None,
            port,
            peer,
            dir,
            log: work.join("etcd.log"),
        };
        etcd.restart()?;
        Ok(etcd)
    }

    /// Kills it by its PID; its data stay for `restart`.
    fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            crate::vm::wait_or_kill(&mut child, Duration::ZERO, Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// Starts it (again) on the same ports and data, and waits until it
    /// answers.
    fn restart(&mut self) -> Result<()> {
        let (port, peer) = (self.port, self.peer);
        let dir = &self.dir;
        let client = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = std::process::Command::new("etcd")
            .args(["--name", "lab", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("lab={peer_url}")])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting etcd on the host (Debian's etcd-server; make deps installs it)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.ctl(&["endpoint", "health"]).is_err() {
            ensure!(Instant::now() < deadline, "etcd did not come up");
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(())
    }

    fn ctl(&self, args: &[&str]) -> Result<String> {
        let out = crate::vm::run_with_deadline(
            std::process::Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints=http://127.0.0.1:{}", self.port))
                .args(args),
            Duration::from_secs(20),
        )?;
        ensure!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// The holders of `group`'s semaphore, as airlock stores it.
    fn holders(&self, group: &str) -> Result<Vec<String>> {
        let key = format!("com.coreos.airlock/groups/{group}/v1/semaphore");
        let out = self.ctl(&["get", "--print-value-only", &key])?;
        if out.trim().is_empty() {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(out.trim())
            .with_context(|| format!("the semaphore is not JSON: {out}"))?;
        Ok(v["holders"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(String::from))
            .collect())
    }
}

impl Drop for HostEtcd {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The [fleet] drop-in for a lab guest: both guests are resumed from the
/// same saved VM (same /etc/machine-id), so each gets its own id.
fn join_fleet(vm: &Vm, id: &str, port: u16) -> Result<()> {
    vm.ssh_ok(&format!(
        "printf '[fleet]\\nbackend = \"etcd\"\\ngroup = \"lab\"\\nid = \"{id}\"\\nendpoints = [\"http://10.0.2.2:{port}\"]\\nslots = 1\\ntimeout = \"3s\"\\n' \
         > /etc/umm/umm.toml.d/60-fleet.toml && umm fleet status && sync"
    ))
    .map(|_| ())
}

/// umm-fleet-retry.timer every 15 s instead of every 10 min (a drop-in of
/// the test's own), so that the lab sees it retry within seconds.
fn fleet_retry_every_15s(vm: &Vm) -> Result<()> {
    vm.ssh_ok(
        "mkdir -p /etc/systemd/system/umm-fleet-retry.timer.d && \
         printf '[Timer]\\nOnBootSec=\\nOnBootSec=15s\\nOnUnitActiveSec=15s\\nRandomizedDelaySec=0\\nAccuracySec=1s\\n' \
         > /etc/systemd/system/umm-fleet-retry.timer.d/lab.conf && \
         systemctl daemon-reload && systemctl is-enabled umm-fleet-retry.timer && \
         systemctl restart umm-fleet-retry.timer && sync",
    )
    .map(|_| ())
}

/// Two nodes of one group with one slot, an etcd on the host: `umm on` on
/// A takes the slot and enters; on B it is refused naming A; B's `umm on
/// --wait`, started while A holds it, enters once A is back (normal
/// target, verify clean) and its slot is released. etcd is down while A
/// leaves: A resumes anyway with the release pending, and once etcd is
/// back umm-fleet-retry.timer gives the slot back, with no umm command run
/// by the test on A.
pub fn fleet(ctx: &mut Ctx) -> Result<()> {
    let mut etcd = HostEtcd::start(&ctx.work_dir())?;
    let mut b = ctx.resume_another("b")?;
    let a = installed(ctx)?;
    join_fleet(a, "node-a", etcd.port)?;
    join_fleet(&b, "node-b", etcd.port)?;
    fleet_retry_every_15s(a)?;

    run_then_wait_reboot(a, "umm on")?;
    expect_state(a, "maintenance", Some("manual"))?;
    ensure!(
        etcd.holders("lab")? == ["node-a"],
        "holders after A entered: {:?}",
        etcd.holders("lab")?
    );
    let before = b.boot_id()?;
    let out = b.ssh("umm on")?;
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1) && said.contains("node-a"),
        "umm on on B while A holds the only slot: exit {:?}: {said}",
        out.status.code()
    );
    ensure!(b.boot_id()? == before, "B rebooted although refused");
    expect_state(&b, "operational", None)?;

    // B waits for a slot, detached from this ssh session.
    b.ssh_ok("nohup umm on --wait 15min > /root/wait.log 2>&1 &")?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(b.boot_id()? == before, "B entered while A held the slot");

    // The coordinator goes down before A leaves: A resumes anyway, and
    // the release stays pending.
    etcd.stop()?;
    umm_off_resumes(a)?;
    // The finisher (`umm off`, or umm-after.service when it sees the
    // normal target first) tries the release, bounded by [fleet] timeout:
    // its failure is in the state file (read with cat: a umm command run
    // as root would try again itself).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state: Value = serde_json::from_str(&a.ssh_ok("cat /var/lib/umm/state.json")?)?;
        // umm-after.service also retries it, 3 times, before it ends: the
        // timer is what must give the slot back, so it is over first.
        let after = a.ssh("systemctl is-active umm-after.service")?;
        let after = String::from_utf8_lossy(&after.stdout).trim().to_string();
        if !state["fleet"]["pending_release"]["last_error"].is_null() && after != "activating" {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "A's release did not fail with etcd down: {}",
            state["fleet"]
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let status: Value = serde_json::from_str(&a.ssh_ok("umm status --json")?)?;
    ensure!(
        status["fleet"]["pending_release"]["id"] == "node-a",
        "A's release is not pending after umm off with etcd down: {}",
        status["fleet"]
    );
    eprintln!("  A: back in service, release pending");
    // etcd back: A's timer gives the slot back by itself (the test runs no
    // umm command on A until it did).
    etcd.restart()?;
    let back = Instant::now();
    let deadline = back + Duration::from_secs(75);
    while etcd.holders("lab")?.iter().any(|h| h == "node-a") {
        ensure!(
            Instant::now() < deadline,
            "umm-fleet-retry.timer did not give A's slot back within 75 s of etcd's return: {}",
            a.ssh_ok("systemctl status --no-pager umm-fleet-retry.timer umm-fleet-retry.service; journalctl -b --no-pager -u umm-fleet-retry.service | tail -n 20")
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "  A: the timer gave the slot back {:.0} s after etcd's return",
        back.elapsed().as_secs_f64()
    );
    let journal = a.ssh_ok("journalctl -b --no-pager -u umm-fleet-retry.service")?;
    ensure!(
        journal.contains("given back (node-a)"),
        "umm-fleet-retry.service's journal does not say it gave the slot back: {journal}"
    );
    let status: Value = serde_json::from_str(&a.ssh_ok("umm status --json")?)?;
    ensure!(
        status["fleet"]["pending_release"].is_null(),
        "A still shows a pending release: {}",
        status["fleet"]
    );
    // B got the slot and rebooted into maintenance.
    b.wait_new_boot(&before, Duration::from_secs(600))?;
    expect_state(&b, "maintenance", Some("manual"))?;
    ensure!(
        etcd.holders("lab")? == ["node-b"],
        "holders after B entered: {:?}",
        etcd.holders("lab")?
    );
    umm_off_resumes(&b)?;
    ensure!(
        etcd.holders("lab")?.is_empty(),
        "holders after both are back: {:?}",
        etcd.holders("lab")?
    );
    ctx.absorb(b);
    Ok(())
}

// ---------------------------------------------------------- node_exporter

/// Debian's prometheus-node-exporter .deb, fetched on the host with
/// `apt-get download` into `dir` once (the base image does not have it,
/// and adding it there would rebuild every variant's image).
fn node_exporter_deb(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let find = || -> Result<Option<std::path::PathBuf>> {
        Ok(std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("prometheus-node-exporter_") && n.ends_with(".deb")
                })
            }))
    };
    std::fs::create_dir_all(dir)?;
    if let Some(deb) = find()? {
        return Ok(deb);
    }
    let out = std::process::Command::new("apt-get")
        .args(["download", "prometheus-node-exporter"])
        .current_dir(dir)
        .output()
        .context("apt-get download prometheus-node-exporter")?;
    ensure!(
        out.status.success(),
        "apt-get download prometheus-node-exporter failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    find()?.context("apt-get download left no prometheus-node-exporter .deb")
}

/// `GET http://localhost:9100/metrics` in the guest (bash's /dev/tcp: the
/// image has no curl), retried until node_exporter answers (60 s at most).
fn scrape(vm: &Vm) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = vm.ssh(
            "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET /metrics HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && cat <&3",
        )?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && text.contains("\nnode_textfile_scrape_error") {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!(
                "node_exporter did not answer on localhost:9100: {}{text}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The value of the series `name` whose labels include every `labels`
/// pair (written as `key="value"`), as node_exporter serves it.
fn scraped(text: &str, name: &str, labels: &[&str]) -> Option<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.to_string())
}

fn expect_scraped(text: &str, name: &str, labels: &[&str], value: &str) -> Result<()> {
    let got = scraped(text, name, labels);
    ensure!(
        got.as_deref() == Some(value),
        "node_exporter: {name}{labels:?} is {got:?}, expected {value}; umm's series:\n{}",
        text.lines()
            .filter(|l| l.starts_with("umm_") || l.starts_with("node_textfile"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

/// node_exporter (Debian's package) serves umm.prom through its textfile
/// collector: scraped at localhost:9100 through a crash loop and a resume.
/// node_exporter is kept in maintenance (`keep_units`), as a fleet that
/// watches its nodes in maintenance would configure it.
pub fn node_exporter(ctx: &mut Ctx) -> Result<()> {
    let deb = node_exporter_deb(&ctx.work_dir())?;
    let vm = installed(ctx)?;
    crate::install_deb(vm, &deb, false)?;
    vm.ssh_ok(
        "test -d /var/lib/prometheus/node-exporter && \
         printf 'keep_units = [\"prometheus-node-exporter.service\"]\\n' > /etc/umm/umm.toml.d/50-node-exporter.toml && sync",
    )?;
    // umm writes umm.prom at its next state change: this boot.
    vm.reboot_clean()?;
    let m = scrape(vm)?;
    expect_scraped(&m, "node_textfile_scrape_error", &[], "0")?;
    expect_scraped(&m, "umm_state", &[r#"state="operational""#], "1")?;
    expect_scraped(&m, "umm_state", &[r#"state="maintenance""#], "0")?;
    expect_scraped(&m, "umm_enabled", &[], "1")?;
    expect_scraped(&m, "umm_unclean_boots_threshold", &[], "2")?;
    crash_times(vm, 2)?;
    let m = scrape(vm)?;
    expect_scraped(&m, "umm_unclean_boots", &[], "2")?;
    vm.crash()?;
    expect_state(vm, "maintenance", Some("crash-loop"))?;
    let m = scrape(vm)?;
    expect_scraped(
        &m,
        "umm_state",
        &[r#"state="maintenance""#, r#"reason="crash-loop""#],
        "1",
    )?;
    expect_scraped(&m, "umm_state", &[r#"state="operational""#], "0")?;
    expect_scraped(
        &m,
        "umm_maintenance_entered_total",
        &[r#"reason="crash-loop""#],
        "1",
    )?;
    expect_scraped(&m, "umm_unclean_boots", &[], "3")?;
    ensure!(
        scraped(&m, "umm_maintenance_start_timestamp_seconds", &[]).is_some(),
        "no umm_maintenance_start_timestamp_seconds in maintenance"
    );
    umm_off_resumes(vm)?;
    expect_state(vm, "operational", None)?;
    let m = scrape(vm)?;
    expect_scraped(&m, "umm_state", &[r#"state="operational""#], "1")?;
    expect_scraped(&m, "umm_unclean_boots", &[], "0")?;
    expect_scraped(&m, "umm_services_not_back", &[], "0")?;
    expect_scraped(
        &m,
        "umm_maintenance_entered_total",
        &[r#"reason="crash-loop""#],
        "1",
    )?;
    ensure!(
        scraped(&m, "umm_maintenance_start_timestamp_seconds", &[]).is_none(),
        "umm_maintenance_start_timestamp_seconds still served after umm off"
    );
    Ok(())
}

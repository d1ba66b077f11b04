//! `umm on` and `umm off` as an operator runs them: a scheduled command,
//! `umm off reboot`, and leaving cut short (timed out, interrupted, power
//! cut, during the command or its hooks).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::Value;

use super::common::{
    assert_nothing_else_started, expect_state, installed, is_active, line_count,
    run_then_wait_reboot, umm_off, wait_status,
};
use super::Scenario;
use crate::ctx::Ctx;
use crate::vm::Vm;

pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("on-command", "systemd", on_command)
        .about("umm on -- CMD: maintenance, CMD's exit code in status; umm off reboot -> normal"),
    Scenario::new("off-interrupted", "systemd", off_interrupted)
        .about("umm off timed out / interrupted: resuming, retry works, off.d once; power cut while resuming"),
    Scenario::new("off-during-command", "systemd", off_during_command)
        .about("umm off returns while the command runs (and says so); off during on.d: the command never starts"),
];

/// `umm on -- CMD`: maintenance, CMD ran with its exit code in status,
/// banner; `umm off reboot` -> normal.
fn on_command(ctx: &mut Ctx) -> Result<()> {
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

/// Leaving is a transaction: a resume that times out or is interrupted
/// leaves the node `resuming`, `umm off` may be retried, and the off.d hooks
/// run exactly once when the normal target is reached, whoever gets there:
/// the retry, or the next boot after a power cut in the middle.
fn off_interrupted(ctx: &mut Ctx) -> Result<()> {
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
fn off_during_command(ctx: &mut Ctx) -> Result<()> {
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

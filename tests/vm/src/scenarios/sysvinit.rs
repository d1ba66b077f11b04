//! sysvinit as PID 1: the same promises without systemd (no journal; rc
//! scripts and runlevels).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::common::{
    expect_state, installed, run_then_wait_reboot, running, status, strict, umm_off_resumes,
    wait_status,
};
use super::Scenario;
use crate::ctx::Ctx;
use crate::vm::Vm;

pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("sysvinit-crash-loop", "sysvinit", sysvinit_crash_loop)
        .about("sysvinit: crash loop -> maintenance, cron not started; umm off -> cron running"),
    Scenario::new("sysvinit-on-command", "sysvinit", sysvinit_on_command)
        .about("sysvinit: umm on -- CMD, off reboot, clean reboots not counted, disable"),
];

/// sysvinit: crash loop -> maintenance with cron not started, sshd up;
/// `umm off` -> the runlevel starts, cron running.
fn sysvinit_crash_loop(ctx: &mut Ctx) -> Result<()> {
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
fn sysvinit_on_command(ctx: &mut Ctx) -> Result<()> {
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

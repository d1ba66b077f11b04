//! Planned reboots by kexec (docs/reboot.md). The guests boot through the
//! BIOS and GRUB here, so the kernel command line tells the two paths
//! apart: GRUB adds `BOOT_IMAGE=`, and umm's kexec command line never has
//! it (and has `umm=on` when entering). A firmware reboot always passes
//! GRUB; a kexec'd boot never does.

use anyhow::{ensure, Result};

use super::common::{
    expect_state, installed_via_grub, run_then_wait_reboot, status, strict,
    umm_off_resumes,
};
use super::Scenario;
use crate::ctx::Ctx;
use crate::vm::Vm;

pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("kexec", "systemd", kexec)
        .about("umm on by kexec: maintenance, ssh, new boot id, no GRUB (cmdline); umm off reboot by kexec -> normal, clean; --firmware goes through GRUB"),
    Scenario::new("kexec-disabled", "systemd", kexec_disabled)
        .about("kernel.kexec_load_disabled=1: umm on and umm off reboot go through the firmware and GRUB, and say why")
        .candidate(),
    Scenario::new("kexec-crash-loop", "systemd", kexec_crash_loop)
        .about("a crash loop is left through GRUB even with umm off reboot --kexec, and says so"),
    Scenario::new("sysvinit-kexec", "sysvinit", sysvinit_kexec)
        .about("sysvinit: umm on by kexec (runlevel 6, umm-kexec): maintenance, ssh, new boot id, no GRUB; umm off reboot by kexec -> normal, not counted"),
];

fn cmdline(vm: &Vm) -> Result<String> {
    Ok(vm.ssh_ok("cat /proc/cmdline")?.trim().to_string())
}

/// This boot came through GRUB (a firmware reboot), or not (kexec).
fn through_grub(vm: &Vm) -> Result<bool> {
    Ok(cmdline(vm)?.split_whitespace().any(|w| w.starts_with("BOOT_IMAGE=")))
}

/// `umm on` by kexec reaches maintenance with ssh and a new boot that
/// never passed GRUB; `umm off reboot` by kexec reaches normal, counted
/// clean; `--firmware` goes through GRUB again.
fn kexec(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    ensure!(through_grub(vm)?, "the first boot did not come through GRUB: {}", cmdline(vm)?);
    let old = vm.boot_id()?;
    let said = run_then_wait_reboot(vm, "umm on")?;
    ensure!(said.contains("rebooting by kexec into /boot/vmlinuz-"), "umm on said: {said}");
    ensure!(vm.boot_id()? != old, "the boot id did not change");
    expect_state(vm, "maintenance", Some("manual"))?;
    let line = cmdline(vm)?;
    ensure!(!through_grub(vm)?, "the maintenance boot came through GRUB: {line}");
    ensure!(line.split_whitespace().any(|w| w == "umm=on"), "no umm=on: {line}");
    let said = run_then_wait_reboot(vm, "umm off reboot")?;
    ensure!(said.contains("rebooting by kexec"), "umm off reboot said: {said}");
    vm.settle()?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(s["unclean_boots"] == 0, "the kexec reboot counted as unclean: {s}");
    let line = cmdline(vm)?;
    ensure!(!through_grub(vm)?, "the normal boot came through GRUB: {line}");
    ensure!(!line.split_whitespace().any(|w| w.starts_with("umm")), "umm's word left: {line}");
    let said = run_then_wait_reboot(vm, "umm on --firmware")?;
    ensure!(
        said.contains("rebooting through the firmware: --firmware was given"),
        "umm on --firmware said: {said}"
    );
    expect_state(vm, "maintenance", Some("manual"))?;
    ensure!(through_grub(vm)?, "--firmware did not go through GRUB: {}", cmdline(vm)?);
    umm_off_resumes(vm)?;
    Ok(())
}

/// `kernel.kexec_load_disabled = 1`: the same commands reboot through the
/// firmware and say why.
fn kexec_disabled(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    vm.ssh_ok("sysctl -w kernel.kexec_load_disabled=1")?;
    let said = run_then_wait_reboot(vm, "umm on")?;
    ensure!(
        said.contains("rebooting through the firmware: kernel.kexec_load_disabled = 1"),
        "umm on said: {said}"
    );
    expect_state(vm, "maintenance", Some("manual"))?;
    ensure!(through_grub(vm)?, "not through GRUB: {}", cmdline(vm)?);
    // The setting does not survive a reboot: set again.
    vm.ssh_ok("sysctl -w kernel.kexec_load_disabled=1")?;
    let said = run_then_wait_reboot(vm, "umm off reboot --kexec")?;
    ensure!(
        said.contains("warning: rebooting through the firmware: kernel.kexec_load_disabled = 1"),
        "umm off reboot --kexec said: {said}"
    );
    vm.settle()?;
    expect_state(vm, "operational", None)?;
    ensure!(through_grub(vm)?, "not through GRUB: {}", cmdline(vm)?);
    Ok(())
}

/// A crash loop's maintenance is left through GRUB, where boots are
/// counted, even when kexec is asked for.
fn kexec_crash_loop(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    strict(vm)?;
    vm.crash()?;
    expect_state(vm, "maintenance", Some("crash-loop"))?;
    let said = run_then_wait_reboot(vm, "umm off reboot --kexec")?;
    ensure!(
        said.contains("a crash loop is left through the boot loader"),
        "umm off reboot --kexec said: {said}"
    );
    vm.settle()?;
    expect_state(vm, "operational", None)?;
    ensure!(through_grub(vm)?, "not through GRUB: {}", cmdline(vm)?);
    Ok(())
}

/// sysvinit: `umm on` loads the kernel and asks for runlevel 6, whose
/// last stop script (umm-kexec, after umm-boot's clean-shutdown record and
/// umountroot) boots it: maintenance with ssh, a new boot id, no GRUB.
/// `umm off reboot` the same way back to normal, never counted.
fn sysvinit_kexec(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    ensure!(status(vm)?["init"] == "sysvinit", "not sysvinit");
    vm.ssh_ok("ls /etc/rc6.d/ | grep -q '^K[0-9]*umm-kexec$'")
        .map_err(|e| anyhow::anyhow!("umm-kexec is not linked in /etc/rc6.d: {e:#}"))?;
    ensure!(through_grub(vm)?, "the first boot did not come through GRUB: {}", cmdline(vm)?);
    let old = vm.boot_id()?;
    let said = run_then_wait_reboot(vm, "umm on")?;
    ensure!(said.contains("rebooting by kexec into /boot/vmlinuz-"), "umm on said: {said}");
    ensure!(vm.boot_id()? != old, "the boot id did not change");
    expect_state(vm, "maintenance", Some("manual"))?;
    let line = cmdline(vm)?;
    ensure!(!through_grub(vm)?, "the maintenance boot came through GRUB: {line}");
    ensure!(line.split_whitespace().any(|w| w == "umm=on"), "no umm=on: {line}");
    let old = vm.boot_id()?;
    let said = run_then_wait_reboot(vm, "umm off reboot")?;
    ensure!(said.contains("rebooting by kexec"), "umm off reboot said: {said}");
    ensure!(vm.boot_id()? != old, "the boot id did not change");
    vm.settle()?;
    let s = expect_state(vm, "operational", None)?;
    ensure!(s["unclean_boots"] == 0, "the kexec reboot counted as unclean: {s}");
    let line = cmdline(vm)?;
    ensure!(!through_grub(vm)?, "the normal boot came through GRUB: {line}");
    ensure!(!line.split_whitespace().any(|w| w.starts_with("umm")), "umm's word left: {line}");
    Ok(())
}

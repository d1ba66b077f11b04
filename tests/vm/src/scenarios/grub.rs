//! GRUB's menu as a machine boots it: through the BIOS and the GRUB on the
//! disk, with the entries the package's postinst generated.

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use super::common::{
    assert_nothing_else_started, cron_up, expect_state, installed_via_grub,
    run_then_wait_reboot, status, umm_off_resumes,
};
use super::Scenario;
use crate::ctx::Ctx;

pub const SCENARIOS: &[Scenario] = &[Scenario::new("grub-entries", "systemd", grub_entries)
    .about("GRUB entries for every kernel; umm=on entry -> maintenance (cmdline); umm=off entry skips and keeps the request")];

/// GRUB entries for every kernel; the maintenance entry boots to
/// maintenance (reason cmdline); the skip entry boots normally and keeps a
/// pending request.
fn grub_entries(ctx: &mut Ctx) -> Result<()> {
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

//! The Debian package's life: an upgrade from the first release's layout,
//! an upgrade over itself, remove and purge.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use super::common::{
    assert_all_enabled_services_up, cron_up, expect_state, install_deb, installed, status,
};
use super::Scenario;
use crate::ctx::Ctx;
use crate::vm::{run_with_deadline, Vm};

pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("package-upgrade", "systemd", package_upgrade)
        .bare()
        .about("upgrade from the /usr/sbin layout (reboot between unpack and configure), umm for a user, upgrade over itself"),
    Scenario::new("package-remove", "systemd", package_remove)
        .about("remove (config and state kept, GRUB entries gone), purge (all gone), a normal boot after each"),
];

/// Upgrade from a package of the first release's layout (the binary in
/// /usr/sbin), with a clean reboot between unpack and configure; what a
/// user without root sees; an upgrade over itself keeps state and config.
fn package_upgrade(ctx: &mut Ctx) -> Result<()> {
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
fn package_remove(ctx: &mut Ctx) -> Result<()> {
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

/// A package of the first release's layout, made from the .deb under test:
/// the binary in /usr/sbin and every unit, script and snippet naming it
/// there, version 0.0.1 so that the .deb under test is an upgrade.
fn old_layout_deb(deb: &Path, work: &Path) -> Result<PathBuf> {
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
    let made = run_with_deadline(
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

//! Nodes unlike the default image: no D-Bus, sshd started by its socket,
//! /var on its own filesystem.

use std::time::Duration;

use anyhow::{ensure, Context, Result};

use super::common::{
    assert_nothing_else_started, expect_state, installed, installed_here, is_active,
    run_then_wait_reboot, strict, umm_off_resumes, wait_status,
};
use super::Scenario;
use crate::ctx::Ctx;

pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("no-dbus", "systemd", no_dbus)
        .about("no dbus package: umm on --dry-run, on -- CMD, maintenance, off over systemd's private socket"),
    Scenario::new("ssh-socket", "systemd", ssh_socket)
        .about("sshd started by ssh.socket: ssh answers in maintenance, nothing else starts"),
    // The only scenario of its variant: an install in its own boot costs
    // less than making a ready state.
    Scenario::new("sepvar", "sepvar", sepvar)
        .bare()
        .about("/var on its own filesystem: crash loop -> maintenance -> umm off"),
];

/// A minimal node without the dbus package (debootstrap's minbase with
/// systemd has none; systemd does not need it): umm talks to systemd on its
/// private socket. Checks, entering, the scheduled command and leaving all
/// work, and nothing outside the keep-set starts.
fn no_dbus(ctx: &mut Ctx) -> Result<()> {
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

/// sshd started by its socket (Ubuntu 22.10+, and Debian when an operator
/// chose it): ssh still answers in maintenance, and nothing outside the
/// keep-set starts.
fn ssh_socket(ctx: &mut Ctx) -> Result<()> {
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

/// /var on its own filesystem: the generator decides from the early copy.
fn sepvar(ctx: &mut Ctx) -> Result<()> {
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

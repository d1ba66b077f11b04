//! The administrator's hooks (check.d, pre-on.d, on.d, off.d) in the boots
//! they belong to.

use std::time::Duration;

use anyhow::{ensure, Result};

use super::common::{expect_state, installed, run_then_wait_reboot, wait_status};
use super::Scenario;
use crate::ctx::Ctx;

pub const SCENARIOS: &[Scenario] = &[Scenario::new("hooks", "systemd", hooks)
    .about("check veto; pre-on/on/off hooks in their boots; hung hook killed; umm off reports a failed service")];

/// A failing check vetoes `umm on` and nothing changes; pre-on, on and off
/// hooks run in the right boot with the right environment; a hung hook is
/// killed at its timeout and maintenance goes on; `umm off` reports a
/// service that did not come back.
fn hooks(ctx: &mut Ctx) -> Result<()> {
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

//! Metrics as a monitoring system reads them: Debian's node_exporter
//! serving umm.prom through its textfile collector.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use super::common::{crash_times, expect_state, install_deb, installed, umm_off_resumes};
use super::Scenario;
use crate::ctx::Ctx;
use crate::vm::Vm;

pub const SCENARIOS: &[Scenario] = &[Scenario::new("node-exporter", "systemd", node_exporter)
    .about("Debian's node_exporter serves umm.prom: scraped through a crash loop and umm off")];

/// node_exporter (Debian's package) serves umm.prom through its textfile
/// collector: scraped at localhost:9100 through a crash loop and a resume.
/// node_exporter is kept in maintenance (`keep_units`), as a fleet that
/// watches its nodes in maintenance would configure it.
fn node_exporter(ctx: &mut Ctx) -> Result<()> {
    let deb = node_exporter_deb(&ctx.work_dir())?;
    let vm = installed(ctx)?;
    install_deb(vm, &deb, false)?;
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

/// Debian's prometheus-node-exporter .deb, fetched on the host with
/// `apt-get download` into `dir` once (the base image does not have it,
/// and adding it there would rebuild every variant's image).
fn node_exporter_deb(dir: &Path) -> Result<PathBuf> {
    let find = || -> Result<Option<PathBuf>> {
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

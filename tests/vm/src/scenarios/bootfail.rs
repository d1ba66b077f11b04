//! Boots that never reach userspace (docs/boot-flow.md, "Boots that never
//! reach userspace"): a newer kernel whose initramfs is junk becomes GRUB's
//! default; it panics before userspace, and only GRUB's counting in its
//! environment block can stop the loop. The "newer kernel" is a copy of
//! the installed one under a higher version name with a junk initramfs:
//! what GRUB's 10_linux sees as a kernel; it cannot prove a real kernel
//! package's postinst or a DKMS failure.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};

use super::common::{expect_state, installed_via_grub, run_then_wait_reboot, status};
use super::Scenario;
use crate::ctx::Ctx;
use crate::image::cache_root;
use crate::vm::Vm;

pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("boot-failure", "systemd", boot_failure)
        .about("a newer default kernel with a junk initramfs panics: after reboot_count+1 attempts GRUB boots the maintenance entry of the good kernel; status names the failed kernel; umm off reboot boots the good kernel again, no new loop")
        .candidate(),
    Scenario::new("boot-failure-disabled", "systemd", boot_failure_disabled)
        .about("umm disabled: GRUB never redirects, the bad kernel panics again and again")
        .candidate(),
    Scenario::new("boot-failure-sysvinit", "sysvinit", boot_failure)
        .about("sysvinit: the same as boot-failure (the boot-loader part does not depend on the init system)")
        .candidate(),
    Scenario::new("boot-kernel-upgrade", "systemd", kernel_upgrade)
        .about("a real newer Debian kernel package installed with dpkg: its first boot is counted once, reaches userspace, becomes the last good kernel; no maintenance")
        .candidate(),
];

/// Higher than any Debian 12 kernel: 10_linux sorts it first, so it is
/// GRUB's default entry (GRUB_DEFAULT=0).
const BAD: &str = "6.99.0-0.lab-amd64";
/// reboot_count + 1 attempts that panic, then the maintenance boot; each
/// attempt is a kernel start and a panic=10 wait under TCG.
const FAILURE_TIMEOUT: Duration = Duration::from_secs(1200);

/// Installs the bad kernel as GRUB's default; returns the good one.
fn install_bad_kernel(vm: &Vm) -> Result<String> {
    let good = vm.ssh_ok("uname -r")?.trim().to_string();
    vm.ssh_ok(&format!(
        "cp /boot/vmlinuz-{good} /boot/vmlinuz-{BAD} && \
         head -c 65536 /dev/urandom >/boot/initrd.img-{BAD} && update-grub 2>&1 && sync"
    ))?;
    Ok(good)
}

/// a newer default kernel with a junk initramfs: maintenance on the previous
/// kernel within reboot_count + 1 failed attempts; status names the failed
/// kernel; after `umm off reboot` the good kernel boots again, twice.
fn boot_failure(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    let good = install_bad_kernel(vm)?;
    let cfg = vm.ssh_ok("cat /boot/grub/grub.cfg")?;
    ensure!(
        cfg.contains("# umm: boot-loader counting on"),
        "no counting code in grub.cfg"
    );
    let bad_linux: Vec<&str> = cfg
        .lines()
        .filter(|l| l.trim_start().starts_with("linux") && l.contains(&format!("vmlinuz-{BAD} ")))
        // Recovery entries take GRUB_CMDLINE_LINUX only: no panic= there, by
        // design (docs/boot-flow.md), for a person at the console.
        .filter(|l| !l.contains(" single"))
        .collect();
    ensure!(
        !bad_linux.is_empty() && bad_linux.iter().all(|l| l.contains(" panic=10")),
        "panic=10 is not on the bad kernel's entries (/etc/default/grub.d/umm.cfg): {bad_linux:?}"
    );
    let env = vm.ssh_ok("grub-editenv list")?;
    ensure!(env.contains("umm_max_tries=xxx"), "grubenv: {env}");
    reboot_through_three_panics(vm, &good, "(reboot_count 2, + 1) before maintenance")?;
    expect_boot_failure(vm, &good)?;
    // No new loop: out of maintenance, the good kernel boots, and again.
    run_then_wait_reboot(vm, "umm off reboot")?;
    for _ in 0..2 {
        ensure!(vm.ssh_ok("uname -r")?.trim() == good, "the failed kernel booted again");
        // umm-after finishes the leave once start-up is over (seen on
        // sysvinit: `resuming` until then).
        vm.settle()?;
        expect_state(vm, "operational", None)?;
        let env = vm.ssh_ok("grub-editenv list")?;
        ensure!(
            env.contains(&format!("umm_failed={BAD}")) && env.contains("umm_tries=\n"),
            "grubenv: {env}"
        );
        ensure!(status(vm)?["boot_menu"]["boot_failure"]["kernel"] == BAD);
        vm.reboot_clean()?;
    }
    retry_fails_again(vm, &good)
}

/// `umm boot retry`: the failure is cleared in the block (a second run is
/// refused), and the next boot tries the bad kernel again: it panics
/// again, and GRUB falls back to the good kernel's maintenance again.
fn retry_fails_again(vm: &mut Vm, good: &str) -> Result<()> {
    let out = vm.ssh_ok("umm boot retry")?;
    ensure!(
        out.contains(&format!("Boot failure of kernel {BAD} cleared")),
        "{out}"
    );
    let env = vm.ssh_ok("grub-editenv list")?;
    ensure!(
        env.contains("umm_failed=\n") && env.contains("umm_tries=\n"),
        "grubenv: {env}"
    );
    let again = vm.ssh("umm boot retry")?;
    ensure!(
        again.status.code() == Some(1),
        "a second umm boot retry was not refused: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    reboot_through_three_panics(vm, good, "again after umm boot retry")?;
    expect_boot_failure(vm, good)
}

/// A reboot onto the bad default kernel: it panics three times
/// (reboot_count 2, + 1) and GRUB falls back to the `good` kernel.
fn reboot_through_three_panics(vm: &mut Vm, good: &str, when: &str) -> Result<()> {
    let serial_from = serial_len(vm);
    let old = vm.boot_id()?;
    vm.detached("if [ -d /run/systemd/system ]; then systemctl reboot; else reboot; fi")?;
    vm.wait_new_boot(&old, FAILURE_TIMEOUT)?;
    let panics = panics_since(vm, serial_from);
    ensure!(
        panics == 3,
        "want 3 panicking attempts {when}, the serial console shows {panics}"
    );
    ensure!(vm.ssh_ok("uname -r")?.trim() == good, "not the good kernel");
    Ok(())
}

/// umm disabled: no counting code, GRUB never redirects: the bad kernel
/// panics more than reboot_count + 1 times in a row.
fn boot_failure_disabled(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    vm.ssh_ok("umm disable")?;
    install_bad_kernel(vm)?;
    let cfg = vm.ssh_ok("cat /boot/grub/grub.cfg")?;
    ensure!(
        cfg.contains("# umm: boot-loader counting off: umm is disabled") && !cfg.contains("save_env umm_tries"),
        "counting code in grub.cfg while disabled"
    );
    let serial_from = serial_len(vm);
    vm.detached("systemctl reboot")?;
    let deadline = Instant::now() + FAILURE_TIMEOUT;
    while panics_since(vm, serial_from) < 5 {
        ensure!(
            Instant::now() < deadline,
            "only {} panics in {} s",
            panics_since(vm, serial_from),
            FAILURE_TIMEOUT.as_secs()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok(())
}

/// This boot is the maintenance GRUB fell back to: GRUB's marker on the
/// command line, reason boot-failure, and `umm status` names the failed
/// kernel, the attempts and the kernel running.
fn expect_boot_failure(vm: &Vm, good: &str) -> Result<()> {
    let cmdline = vm.ssh_ok("cat /proc/cmdline")?;
    ensure!(
        cmdline.contains("umm=on umm.why=boot-failure"),
        "GRUB's marker is not on the command line: {cmdline}"
    );
    let s = expect_state(vm, "maintenance", Some("boot-failure"))?;
    let failure = &s["boot_menu"]["boot_failure"];
    ensure!(
        failure["kernel"] == BAD
            && failure["attempts"] == 3
            && failure["good_kernel"] == good
            && failure["running_kernel"] == good,
        "status: {}",
        s["boot_menu"]
    );
    let text = vm.ssh_ok("umm status")?;
    ensure!(text.contains("MAINTENANCE (boot-failure)"), "{text}");
    ensure!(
        text.contains(&format!("Boot failure: kernel {BAD} did not reach userspace in 3 attempts"))
            && text.contains(&format!("this boot runs {good}")),
        "{text}"
    );
    // The journal event, where there is a journal (not under sysvinit).
    let journal = vm.ssh_ok(
        "if [ -d /run/systemd/system ]; then journalctl -o cat UMM_EVENT=boot-failure; else echo no journal; fi",
    )?;
    ensure!(
        journal.trim() == "no journal" || journal.contains(&format!("GRUB gave up on kernel {BAD}")),
        "journal: {journal}"
    );
    Ok(())
}

fn serial_len(vm: &Vm) -> usize {
    fs::read(vm.serial_log()).map_or(0, |b| b.len())
}

/// Kernel panics the serial console showed after byte `from`.
fn panics_since(vm: &Vm, from: usize) -> usize {
    let log = fs::read(vm.serial_log()).unwrap_or_default();
    let tail = String::from_utf8_lossy(log.get(from..).unwrap_or_default());
    tail.matches("Kernel panic - not syncing").count()
}

/// dpkg, update-initramfs and update-grub of a real kernel package under TCG.
const KERNEL_INSTALL_TIMEOUT: Duration = Duration::from_secs(1200);

/// A good kernel upgrade (the issue's case c): the newest kernel package
/// the machine's apt sources offer, newer than the image's, installed with
/// dpkg as an upgrade would. Its first boot is counted by GRUB, reaches
/// userspace, and becomes the last good kernel; nothing enters maintenance.
fn kernel_upgrade(ctx: &mut Ctx) -> Result<()> {
    let vm = installed_via_grub(ctx)?;
    let old = vm.ssh_ok("uname -r")?.trim().to_string();
    let (package, deb) = newer_kernel_deb(&old)?;
    let new = package.trim_start_matches("linux-image-").to_string();
    vm.scp_to(&deb, "/root/kernel.deb")?;
    let out = vm.ssh_timeout("dpkg -i /root/kernel.deb 2>&1 && rm /root/kernel.deb && sync", KERNEL_INSTALL_TIMEOUT)?;
    ensure!(out.status.success(), "dpkg -i {package}: {}", String::from_utf8_lossy(&out.stdout));
    let env = vm.ssh_ok("grub-editenv list")?;
    ensure!(env.contains(&format!("umm_good={old}")), "grubenv before: {env}");
    vm.reboot_clean()?;
    ensure!(vm.ssh_ok("uname -r")?.trim() == new, "the new kernel {new} is not the one booted");
    vm.settle()?;
    expect_state(vm, "operational", None)?;
    let env = vm.ssh_ok("grub-editenv list")?;
    let lines: Vec<&str> = env.lines().collect();
    ensure!(
        lines.contains(&format!("umm_good={new}").as_str()) && lines.contains(&"umm_tries="),
        "grubenv after the new kernel's first boot: {env}"
    );
    let said = format!("kernel {new} reached userspace after 1 attempt(s) counted by GRUB; it is now the last good kernel (was {old})");
    ensure!(vm.ssh_ok("journalctl -b -o cat")?.contains(&said), "umm-boot did not say: {said}");
    // Counted once: the next boot of the same kernel says nothing new.
    vm.reboot_clean()?;
    expect_state(vm, "operational", None)?;
    let again = vm.ssh_ok("journalctl -b -o cat")?;
    ensure!(!again.contains("it is now the last good kernel"), "said again: {again}");
    Ok(())
}

/// The newest `linux-image-*-amd64` the machine's apt sources offer (the
/// candidate of `linux-image-amd64`), downloaded once into the lab cache;
/// fails if it is not newer than `running`.
fn newer_kernel_deb(running: &str) -> Result<(String, PathBuf)> {
    let out = Command::new("apt-cache").args(["depends", "linux-image-amd64"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(package) = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
    else {
        bail!("apt-cache depends linux-image-amd64 names no kernel package: {text}");
    };
    ensure!(
        package != format!("linux-image-{running}"),
        "the apt sources offer no kernel newer than the image's {running}"
    );
    let dir = cache_root().join("debs");
    fs::create_dir_all(&dir)?;
    let found = |dir: &PathBuf| -> Option<PathBuf> {
        fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
    };
    if let Some(deb) = found(&dir) {
        return Ok((package.to_string(), deb));
    }
    let ok = Command::new("apt-get")
        .args(["download", package])
        .current_dir(&dir)
        .status()
        .context("apt-get download")?
        .success();
    ensure!(ok, "apt-get download {package} failed");
    let deb = found(&dir).with_context(|| format!("no {package} .deb in {}", dir.display()))?;
    Ok((package.to_string(), deb))
}

//! The boot menu's umm entries, kept in step with the switch:
//! `umm internal bls-sync` and the menu refresh after enable/disable.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;

use super::{Context, Outcome};
use crate::bootmenu;
use crate::output::message::{say, Message};
use crate::rules::sdboot::PlanInput;
use crate::sys::clock::{Clock, SystemClock};
use crate::sys::paths::Root;
use crate::sys::run::run_bounded;
use crate::sys::{config, store};

/// The boot menu's umm entries follow the switch (see `[grub]
/// entries_when_disabled`): regenerate them after enable/disable.
pub fn refresh_boot_menu(root: &Root) {
    sync_sdboot(root, false);
    if !root.is_system() {
        return;
    }
    if root.path(bootmenu::BLS_DIR).is_dir() {
        if let Err(e) = bootmenu::bls_sync(root, false) {
            say(&Message::MenuNotUpdated(format!(
                "cannot update the boot entries: {e:#}"
            )));
        }
        return;
    }
    let update_grub = root.path("/usr/sbin/update-grub");
    if !update_grub.exists() || !root.path("/boot/grub/grub.cfg").exists() {
        return;
    }
    let mut cmd = Command::new(update_grub);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    match run_bounded(cmd, Duration::from_secs(300)) {
        Ok(f) if f.success() => say(&Message::MenuUpdated),
        Ok(f) => say(&Message::MenuNotUpdated(format!(
            "update-grub {}; run it by hand",
            f.describe()
        ))),
        Err(e) => say(&Message::MenuNotUpdated(format!(
            "cannot run update-grub: {e}; run it by hand"
        ))),
    }
}

/// `umm internal bls-sync [--remove]` (the kernel-install plugin, the rpm
/// scriptlets, /etc/grub.d/42_umm).
pub fn bls_sync(ctx: &Context, remove: bool) -> Result<Outcome> {
    // First the counters (renames), then the variants of the names left.
    if bootmenu::sdboot::entries_dir(&ctx.root).is_some() {
        match store::lock(&ctx.root) {
            Ok(_locked) => sync_sdboot(&ctx.root, remove),
            Err(e) => log::error!("{e:#}; systemd-boot's entries were not brought in step"),
        }
    }
    let report = bootmenu::bls_sync(&ctx.root, remove)?;
    for path in &report.written {
        log::info!("boot entry written: {}", path.display());
    }
    for path in &report.removed {
        log::info!("boot entry removed: {}", path.display());
    }
    Ok(Outcome::Done)
}

/// systemd-boot (`rules::sdboot`): a new kernel's entry gets its tries and
/// the fallback follows the newest entry; while umm is disabled, or with
/// `remove`, umm's counters and its fallback go. Under the writers' lock.
fn sync_sdboot(root: &Root, remove: bool) {
    let settings = config::load_or_defaults(root);
    let input = PlanInput {
        enabled: !remove && bootmenu::sdboot::umm_enabled(root),
        tries: super::boot::sdboot_tries(&settings),
        kernel: None,
        failure_seen: false,
        now: SystemClock::new(root).now(),
    };
    if let Err(e) = bootmenu::sdboot::sync(root, &input) {
        say(&Message::MenuNotUpdated(format!(
            "cannot update systemd-boot's entries: {e}"
        )));
    }
}

//! The boot menu's umm entries, kept in step with the switch:
//! `umm internal bls-sync` and the menu refresh after enable/disable.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;

use super::{Context, Outcome};
use crate::bootmenu;
use crate::output::message::{say, Message};
use crate::sys::paths::Root;
use crate::sys::run::run_bounded;

/// The boot menu's umm entries follow the switch (see `[grub]
/// entries_when_disabled`): regenerate them after enable/disable.
pub fn refresh_boot_menu(root: &Root) {
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
    let report = bootmenu::bls_sync(&ctx.root, remove)?;
    for path in &report.written {
        log::info!("boot entry written: {}", path.display());
    }
    for path in &report.removed {
        log::info!("boot entry removed: {}", path.display());
    }
    Ok(Outcome::Done)
}

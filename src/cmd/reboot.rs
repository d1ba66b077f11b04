//! A planned reboot (`umm on`, `umm off reboot`): by kexec when
//! `rules::reboot` allows it, through the firmware otherwise, said in one
//! line either way. Whatever goes wrong with kexec ends in the firmware
//! reboot, never in no reboot.

use anyhow::Result;

use super::Context;
use crate::model::settings::{RebootMethod, Settings};
use crate::output::message::{say, Message};
use crate::rules::reboot::{self, Choice, Facts, Fallback, Transition};
use crate::sys::kexec::{self, Target};

/// The facts, as this node has them now.
fn facts(
    ctx: &Context,
    settings: &Settings,
    flag: Option<RebootMethod>,
    transition: Transition,
    target: Option<&Target>,
    cmdline: &str,
) -> Facts {
    let root = &ctx.root;
    Facts {
        setting: settings.reboot_method,
        flag,
        transition,
        init_kexec: ctx.init.kexec_path(),
        kernel_has_kexec: kexec::kernel_has_kexec(root),
        load_disabled: kexec::load_disabled(root),
        image: kexec::image(root, target, ctx.clock.now()),
        mem_available: kexec::mem_available(root),
        cmdline_bytes: cmdline.len(),
        boot_loader_choice: kexec::boot_loader_choice(root),
    }
}

/// Reboots for `command` (as the messages name it).
pub(super) fn planned_reboot(
    ctx: &Context,
    settings: &Settings,
    flag: Option<RebootMethod>,
    transition: Transition,
    command: &str,
) -> Result<()> {
    let target = kexec::default_target(&ctx.root);
    let running = kexec::running_cmdline(&ctx.root);
    let cmdline = reboot::cmdline(&running, transition);
    let facts = facts(ctx, settings, flag, transition, target.as_ref(), &cmdline);
    let why = match (reboot::choose(&facts, ctx.init.name()), target) {
        (Choice::Kexec, Some(target)) if !running.trim().is_empty() => {
            match by_kexec(ctx, &target, &cmdline, command) {
                Ok(()) => return Ok(()),
                Err(why) => why,
            }
        }
        (Choice::Kexec, _) => Fallback::Image("cannot read this boot's command line".into()),
        (Choice::Firmware { why, .. }, _) => why,
    };
    let loud = facts.kexec_asked() && !matches!(why, Fallback::Flag | Fallback::Setting);
    let line = why.to_string();
    if loud {
        log::warn!("umm {command}: rebooting through the firmware: {line}");
    } else {
        log::info!("umm {command}: rebooting through the firmware: {line}");
    }
    say(&Message::RebootBy {
        command,
        kexec: None,
        firmware: Some(line),
        loud,
    });
    ctx.init.reboot()
}

/// Loads the kernel and asks the init system for the kexec; on failure,
/// unloads it and says why, for the firmware reboot that follows.
fn by_kexec(ctx: &Context, target: &Target, cmdline: &str, command: &str) -> Result<(), Fallback> {
    if let Err(e) = kexec::load(&ctx.root, target, cmdline) {
        let lockdown = kexec::lockdown(&ctx.root);
        return Err(Fallback::Load(reboot::load_failure(
            e.errno, &e.text, lockdown,
        )));
    }
    let kernel = target.kernel.display().to_string();
    log::info!("umm {command}: rebooting by kexec into {kernel} with: {cmdline}");
    say(&Message::RebootBy {
        command,
        kexec: Some(&kernel),
        firmware: None,
        loud: false,
    });
    ctx.init.kexec().map_err(|e| {
        kexec::unload(&ctx.root);
        Fallback::Start(format!("{e:#}"))
    })
}

/// `umm internal kexec-exec`, from the umm-kexec script last in sysvinit's
/// runlevel 6 (the root is read-only by then): boots the kernel umm loaded
/// for this reboot. Anything else (no kernel loaded, one loaded by someone
/// else, the kernel refusing) leaves the ordinary reboot to go on: always
/// Done, each case said in one line.
pub fn kexec_exec(ctx: &Context) -> Result<super::Outcome> {
    match kexec::pending(&ctx.root) {
        kexec::Pending::Ours(loaded) => {
            log::info!("umm: rebooting by kexec ({loaded})");
            if let Err(e) = kexec::exec(&ctx.root) {
                log::warn!(
                    "umm: the kernel refused the kexec ({e}); rebooting through the firmware"
                );
            }
        }
        kexec::Pending::Nothing => {
            log::info!("umm: no kernel loaded for kexec; rebooting through the firmware")
        }
        kexec::Pending::NotOurs => log::info!(
            "umm: a kernel loaded for kexec by something other than umm is left alone; \
             rebooting through the firmware"
        ),
        kexec::Pending::Unloaded => log::warn!(
            "umm: the kernel umm loaded for kexec is no longer loaded \
             (/sys/kernel/kexec_loaded is 0); rebooting through the firmware"
        ),
    }
    Ok(super::Outcome::Done)
}

//! `umm internal pause` (sysvinit and upstart): hold a maintenance boot
//! before the runlevel's services until `umm off`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;

use super::{Context, Outcome};
use crate::init::sysv::{self, Flavour, Sysv};
use crate::model::state::Mode;
use crate::sys::{boot_decision, config, run};

/// `umm internal pause` (sysvinit and upstart): in a maintenance boot, start
/// the keep-set and the maintenance work, then hold the boot until `umm off`
/// marks it resumed. Returns at once in any other boot, and when the
/// decision is missing: a broken umm never holds a boot.
pub fn pause(ctx: &Context) -> Result<Outcome> {
    let boot_id = ctx.clock.boot_id()?;
    let Some(decision) = boot_decision::read(&ctx.root, &boot_id) else {
        log::warn!("no decision recorded for this boot (did umm-boot run?); not pausing");
        return Ok(Outcome::Done);
    };
    if decision.mode != Mode::Maintenance || decision.resumed {
        return Ok(Outcome::Done);
    }
    let settings = config::load_or_defaults(&ctx.root);
    let sysv = Sysv {
        flavour: if sysv::is_upstart(&ctx.root) {
            Flavour::Upstart
        } else {
            Flavour::Sysvinit
        },
        root: ctx.root.clone(),
    };
    sysv::ignore_terminal_signals();
    log::warn!("maintenance mode: the boot waits here until `umm off` (or `umm off reboot`)");
    let mut gettys = sysv.start_keep_set(&settings.all_keep_units());
    // The banner, hooks and scheduled command run beside the wait, so that
    // `umm off` is answered at once even while the command runs.
    let worker = std::env::current_exe().and_then(|exe| {
        run::command(exe)
            .args(["internal", "maintenance"])
            .stdin(Stdio::null())
            .spawn()
    });
    if let Err(e) = &worker {
        log::error!("cannot start the maintenance work: {e}");
    }
    while boot_decision::read(&ctx.root, &boot_id).is_some_and(|d| !d.resumed) {
        // As init's `respawn` would: a logout must not end console logins.
        gettys.supervise();
        std::thread::sleep(Duration::from_secs(1));
    }
    // Ours, by PID: init starts its own gettys for the runlevel.
    gettys.stop();
    log::info!("resumed by umm off: the boot continues into the runlevel");
    Ok(Outcome::Done)
}

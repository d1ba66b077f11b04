//! `umm boot retry`: clear the boot failure GRUB recorded (docs/boot-flow.md,
//! "No new loop"), so that the next boot tries the default entry's kernel
//! again with a fresh count. The block is written as umm-boot writes it
//! (`sys::grubenv::update`: atomic, never a block it cannot parse).

use anyhow::Result;
use log::Level;

use super::{lock, refused, require_root, Context, Outcome};
use crate::bootmenu::{self, Counting};
use crate::model::state::State;
use crate::output::message::{say, Message};
use crate::rules::sdboot::PlanInput;
use crate::rules::{self, bootcount};
use crate::sys::config;
use crate::sys::grubenv::{self, GRUBENV};

const COMMAND: &str = "boot retry";

pub fn retry(ctx: &Context) -> Result<Outcome> {
    require_root(COMMAND)?;
    let counting = bootmenu::boot_counting(&ctx.root);
    if let Counting::Off(why) = &counting {
        return Ok(refused(
            COMMAND,
            format!(
                "the boot loader does not count boots here ({why}), so no boot failure is recorded"
            ),
        ));
    }
    // Under the state's lock: one umm command at a time changes the node's boot.
    let locked = lock(&ctx.root, COMMAND)?;
    if let Counting::Entries(dir) = &counting {
        return retry_entries(ctx, &locked.state, dir);
    }
    let env = match grubenv::read(&ctx.root) {
        Ok(env) => env,
        Err(e) => return Ok(refused(COMMAND, e)),
    };
    let Some(failure) = bootcount::boot_failure(&env) else {
        return Ok(refused(
            COMMAND,
            format!("{GRUBENV} records no kernel that failed to boot; nothing to retry"),
        ));
    };
    if let Err(e) = grubenv::update(&ctx.root, &bootcount::retry(&env)) {
        return Ok(refused(COMMAND, e));
    }
    log::log!(
        Level::Info,
        "boot failure of kernel {} cleared by umm boot retry: the next boot tries it again",
        failure.kernel
    );
    say(&Message::BootRetry {
        kernel: &failure.kernel,
        good: failure.good.as_deref(),
        attempts: failure.attempts,
        loader: "GRUB",
    });
    Ok(Outcome::Done)
}

/// systemd-boot: the failed kernel's entry gets a fresh count, the
/// fallback goes back to maintenance (`bootmenu::sdboot::retry`).
fn retry_entries(ctx: &Context, state: &State, dir: &str) -> Result<Outcome> {
    let settings = config::load_or_defaults(&ctx.root);
    let tries = super::boot::sdboot_tries(&settings);
    let input = PlanInput {
        enabled: rules::effective_enabled(state, settings.policy()),
        tries,
        kernel: None,
        failure_seen: false,
        now: ctx.clock.now(),
    };
    let failure = match bootmenu::sdboot::retry(&ctx.root, &input) {
        Ok(Some(failure)) => failure,
        Ok(None) => {
            return Ok(refused(
                COMMAND,
                format!(
                "no entry in {dir} failed to boot and umm recorded no failure; nothing to retry"
            ),
            ))
        }
        Err(e) => return Ok(refused(COMMAND, e)),
    };
    log::info!(
        "boot failure of kernel {} cleared by umm boot retry: its entry has {tries} tries again",
        failure.kernel
    );
    say(&Message::BootRetry {
        kernel: &failure.kernel,
        good: failure.good.as_deref(),
        attempts: tries as usize,
        loader: "systemd-boot",
    });
    Ok(Outcome::Done)
}

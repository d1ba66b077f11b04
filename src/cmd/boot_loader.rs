//! `umm boot retry`: clear the boot failure GRUB recorded (docs/boot-flow.md,
//! "No new loop"), so that the next boot tries the default entry's kernel
//! again with a fresh count. The block is written as umm-boot writes it
//! (`sys::grubenv::update`: atomic, never a block it cannot parse).

use anyhow::Result;
use log::Level;

use super::{lock, refused, require_root, Context, Outcome};
use crate::bootmenu::{self, Counting};
use crate::output::message::{say, Message};
use crate::rules::bootcount;
use crate::sys::grubenv::{self, GRUBENV};

const COMMAND: &str = "boot retry";

pub fn retry(ctx: &Context) -> Result<Outcome> {
    require_root(COMMAND)?;
    if let Counting::Off(why) = bootmenu::boot_counting(&ctx.root) {
        return Ok(refused(
            COMMAND,
            format!(
                "the boot loader does not count boots here ({why}), so no boot failure is recorded"
            ),
        ));
    }
    // Under the state's lock: one umm command at a time changes the node's boot.
    let _locked = lock(&ctx.root, COMMAND)?;
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
    });
    Ok(Outcome::Done)
}

//! `umm status` and `umm history`: what the node is doing, and did, for
//! any user (who asked, the scheduled command and the hooks' results:
//! root only).

use anyhow::Result;

use super::boot::{cmdline_text, running_kernel};
use super::{read_public, Context, Outcome};
use crate::bootmenu::{self, Counting};
use crate::output::history;
use crate::output::json;
use crate::output::status::{self, StatusView};
use crate::rules::bootcount;
use crate::sys::paths;
use crate::sys::{boot_decision, config, grubenv, store};

pub fn status(ctx: &Context, json: bool) -> Result<Outcome> {
    // What the boot would use: with a broken configuration, the last one
    // that loaded, or counting only.
    let (settings, sources, in_use, config_error) = config::load_at_boot(&ctx.root);
    let restricted = !nix::unistd::geteuid().is_root();
    let loaded = if restricted {
        read_public(&ctx.root)
    } else {
        store::read(&ctx.root.path(paths::STATE))
    };
    let this_boot = ctx
        .clock
        .boot_id()
        .ok()
        .and_then(|id| boot_decision::read(&ctx.root, &id));
    let menu = bootmenu::menu_entries(&ctx.root);
    let cmdline = cmdline_text(&ctx.root);
    let counting = bootmenu::boot_counting(&ctx.root);
    let boot_failure = match counting {
        Counting::On => grubenv::read(&ctx.root)
            .ok()
            .and_then(|env| bootcount::boot_failure(&env)),
        Counting::Entries(_) => bootmenu::sdboot::boot_failure(&ctx.root),
        Counting::Off(_) => None,
    };
    let inputs = status::Inputs {
        menu: &menu,
        cmdline_arg: bootmenu::boot_from_entry(&cmdline),
        counting: &counting,
        boot_failure: boot_failure.as_ref(),
        running_kernel: &running_kernel(&ctx.root),
        state: &loaded.state,
        state_problem: loaded.problem.as_deref(),
        settings: &settings,
        sources: &sources,
        config_error: config_error.map(|e| e.to_string()),
        config_in_use: &in_use,
        this_boot: this_boot.as_ref(),
        init: ctx.init.name(),
        restricted,
    };
    let view = StatusView::new(&inputs);
    if json {
        outln!("{}", json::pretty(&view)?);
    } else {
        outln!("{}", view.text());
    }
    Ok(Outcome::Done)
}

/// `umm history`: the last maintenance episodes, oldest first.
pub fn history(ctx: &Context, json: bool) -> Result<Outcome> {
    let restricted = !nix::unistd::geteuid().is_root();
    let state = if restricted {
        read_public(&ctx.root).state
    } else {
        store::read(&ctx.root.path(paths::STATE)).state
    };
    let episodes = history::episodes(&state.history, restricted);
    if json {
        outln!("{}", json::pretty(&episodes)?);
    } else {
        outln!("{}", history::text(&episodes));
    }
    Ok(Outcome::Done)
}

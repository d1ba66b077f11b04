//! The operator's switch: `umm enable` and `umm disable`.

use std::process::ExitCode;

use anyhow::Result;

use super::boot_entries::refresh_boot_menu;
use super::{refused, require_root, save, settings_or_fallback, warn_problem, Context};
use crate::rules;
use crate::sys::store;

pub fn enable(ctx: &Context) -> Result<ExitCode> {
    require_root("enable")?;
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, "enable");
    if !settings.enabled {
        let r#where = sources
            .enabled_from
            .map(|(f, l)| format!(" ({}:{l})", f.display()))
            .unwrap_or_default();
        errln!(
            "umm enable: refused: the configuration disables umm{where}; set enabled = true there"
        );
        return Ok(ExitCode::from(1));
    }
    let mut locked = store::lock(&ctx.root)?;
    warn_problem("enable", &locked);
    if loaded {
        locked.record_config(&settings, &sources, ctx.clock.now());
    }
    if locked.state.switch_on {
        outln!("umm is already enabled.");
        return Ok(ExitCode::SUCCESS);
    }
    let next = rules::enable(&locked.state);
    save(&mut locked, next)?;
    log::info!("umm enabled: unclean boots are counted from now on");
    outln!("umm enabled: unclean boots are counted and crash loops stop in maintenance.");
    refresh_boot_menu(&ctx.root);
    Ok(ExitCode::SUCCESS)
}

pub fn disable(ctx: &Context) -> Result<ExitCode> {
    require_root("disable")?;
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, "disable");
    let mut locked = store::lock(&ctx.root)?;
    warn_problem("disable", &locked);
    if loaded {
        locked.record_config(&settings, &sources, ctx.clock.now());
    }
    if !locked.state.switch_on {
        outln!("umm is already disabled.");
        return Ok(ExitCode::SUCCESS);
    }
    let next = match rules::disable(&locked.state) {
        Ok(next) => next,
        Err(r) => return Ok(refused("disable", &r)),
    };
    save(&mut locked, next)?;
    log::info!("umm disabled: nothing is counted or enforced, boots are not delayed");
    outln!("umm disabled: nothing is counted or enforced, and boots are never delayed.");
    refresh_boot_menu(&ctx.root);
    Ok(ExitCode::SUCCESS)
}

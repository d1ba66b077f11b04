//! The operator's switch: `umm enable` and `umm disable`.

use anyhow::Result;
use log::Level;

use super::boot_entries::refresh_boot_menu;
use super::{lock, refused, require_root, save, settings_or_fallback, Context, Outcome};
use crate::output::message::{say, Message};
use crate::rules;
use crate::sys::journal::{self, Change};

pub fn enable(ctx: &Context) -> Result<Outcome> {
    require_root("enable")?;
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, "enable");
    if !settings.enabled {
        let place = sources
            .enabled_from
            .map(|(f, l)| format!(" ({}:{l})", f.display()))
            .unwrap_or_default();
        say(&Message::EnableRefusedByConfig { place });
        return Ok(Outcome::Refused);
    }
    let mut locked = lock(&ctx.root, "enable")?;
    if loaded {
        locked.record_config(&settings, &sources, ctx.clock.now());
    }
    if locked.state.switch_on {
        say(&Message::AlreadyEnabled);
        return Ok(Outcome::Done);
    }
    let next = rules::enable(&locked.state);
    save(&mut locked, next)?;
    journal::log(
        Level::Info,
        &Change::Enabled,
        format_args!("umm enabled: unclean boots are counted from now on"),
    );
    say(&Message::Enabled);
    refresh_boot_menu(&ctx.root);
    Ok(Outcome::Done)
}

pub fn disable(ctx: &Context) -> Result<Outcome> {
    require_root("disable")?;
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, "disable");
    let mut locked = lock(&ctx.root, "disable")?;
    if loaded {
        locked.record_config(&settings, &sources, ctx.clock.now());
    }
    if !locked.state.switch_on {
        say(&Message::AlreadyDisabled);
        return Ok(Outcome::Done);
    }
    let next = match rules::disable(&locked.state) {
        Ok(next) => next,
        Err(r) => return Ok(refused("disable", r)),
    };
    save(&mut locked, next)?;
    journal::log(
        Level::Info,
        &Change::Disabled,
        format_args!("umm disabled: nothing is counted or enforced, boots are not delayed"),
    );
    say(&Message::Disabled);
    refresh_boot_menu(&ctx.root);
    Ok(Outcome::Done)
}

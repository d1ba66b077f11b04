//! The group's halt (`umm on --then`): a node whose maintenance work failed
//! stays in maintenance and keeps its slot, and says so to the group (etcd:
//! a key beside the semaphore, `fleet::etcd::halt_key`); `umm off` that
//! ends clean and `umm fleet release` clear it, only when this node set it.
//! Every call is bounded by `[fleet] timeout`; none is a reason to fail
//! the command that made it: the slot kept is the halt that counts.

use log::Level;

use super::Context;
use crate::fleet::{self, Halt};
use crate::model::settings::Settings;
use crate::model::timefmt::rfc3339;
use crate::sys::journal::{self, Change};

/// Records that this node halted its group's roll, and says why.
pub(super) fn record(ctx: &Context, settings: &Settings, episode: u64, why: &str) {
    journal::log(
        Level::Error,
        &Change::RollHalted { episode, why },
        format_args!(
            "the group's roll is halted by this node: {why}; it keeps its fleet slot; fix it, then `umm off` (or `umm fleet release` once back in service)"
        ),
    );
    let recorded = coordinator(ctx, settings).and_then(|(c, node)| {
        let now = ctx.clock.now();
        let halt = Halt {
            node,
            why: why.into(),
            since: rfc3339(now),
            since_unix: now,
        };
        c.record_halt(&halt).map_err(|e| e.to_string())
    });
    match recorded {
        Ok(true) => log::info!("fleet: the halt is recorded for the group"),
        Ok(false) => {}
        Err(e) => log::warn!(
            "fleet: the halt could not be recorded ({e}); the slot kept still halts the roll"
        ),
    }
}

/// Clears the group's halt if this node recorded it.
pub(super) fn clear(ctx: &Context, settings: &Settings) {
    let cleared = coordinator(ctx, settings)
        .and_then(|(c, node)| c.clear_halt(&node).map_err(|e| e.to_string()));
    match cleared {
        Ok(true) => log::info!("fleet: this node's halt of the group's roll is cleared"),
        Ok(false) => {}
        Err(e) => log::warn!(
            "fleet: this node's halt could not be cleared ({e}); `umm fleet release` tries again"
        ),
    }
}

/// Is the group's roll halted? `(node, why)`; a halt that cannot be read
/// counts as one (fail-closed), and says why in its line.
pub fn roll_halted(ctx: &Context, settings: &Settings) -> Option<(String, String)> {
    let read =
        coordinator(ctx, settings).and_then(|(c, _)| c.read_halt().map_err(|e| e.to_string()));
    match read {
        Ok(halt) => halt.map(|h| (h.node, h.why)),
        Err(e) if e.is_empty() => None,
        Err(e) => {
            log::warn!("fleet: cannot read the group's halt ({e}); counted as halted");
            Some((
                "an unknown node".into(),
                format!("the halt could not be read: {e}"),
            ))
        }
    }
}

/// The coordinator and this node's id; `Err("")` when none is configured.
fn coordinator(
    ctx: &Context,
    settings: &Settings,
) -> Result<(Box<dyn fleet::Coordinator>, String), String> {
    let c = fleet::from_settings(&settings.fleet)
        .map_err(|e| e.to_string())?
        .ok_or_else(String::new)?;
    let node = fleet::node_id(&settings.fleet, &ctx.root).map_err(|e| e.to_string())?;
    Ok((c, node))
}

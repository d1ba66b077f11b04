//! The group's halt: a node whose `umm on --then` work failed stays in
//! maintenance and keeps its slot; one whose check after leaving was not
//! clean is back in service and keeps its slot. Either halts its group's
//! roll, and says so: in the state (`fleet.halt`, for `umm status`, the
//! metric and the journal) and to the group (etcd: a key beside the
//! semaphore, `fleet::etcd::halt_key`). A clean `umm off` and `umm fleet
//! release` clear it; the key only when this node wrote it.
//!
//! The key follows the rule of the slots: the call is recorded in the
//! state (`fleet.halt_sending`) under the state lock before it is sent, in
//! the same save as the halt, and settled by its answer under the fleet
//! lock; a call that failed or whose run was killed is sent again by the
//! next reconcile (`cmd::fleet::reconcile`), once. Every call is bounded
//! by `[fleet] timeout`; none is a reason to fail the command that made
//! it: the slot kept is the halt that counts.

use anyhow::Result;
use log::Level;

use super::{save, Context};
use crate::fleet::{self, Halt};
use crate::model::fleet::{Backend, FleetSettings};
use crate::model::settings::Settings;
use crate::model::state::{HaltOp, HaltSend, RollHalt, State};
use crate::model::timefmt::rfc3339;
use crate::rules;
use crate::sys::journal::{self, Change};
use crate::sys::{failpoint::failpoint, paths, store};

/// The halt call to this node's group as configured; `None` where the
/// back-end keeps no halt key (none, FleetLock: the slot kept is the
/// whole halt) or this node has no id (logged).
fn call(ctx: &Context, settings: &Settings, op: HaltOp, why: &str, since: i64) -> Option<HaltSend> {
    if settings.fleet.backend != Backend::Etcd {
        return None;
    }
    match fleet::node_id(&settings.fleet, &ctx.root) {
        Ok(node) => Some(HaltSend {
            op,
            backend: settings.fleet.backend.name().into(),
            group: settings.fleet.group.clone(),
            node,
            why: why.into(),
            since,
            tries: 0,
            last_error: None,
            extra: Default::default(),
        }),
        Err(e) => {
            log::warn!("fleet: the group's halt key cannot be written or cleared: {e}");
            None
        }
    }
}

/// `state` with this node halting its group's roll (for the caller to
/// save under its lock), the key's write recorded with it.
pub(super) fn halted(
    ctx: &Context,
    settings: &Settings,
    state: &State,
    (episode, why): (u64, &str),
) -> State {
    let now = ctx.clock.now();
    let halt = RollHalt {
        why: why.into(),
        since: now,
        episode,
        extra: Default::default(),
    };
    let send = call(ctx, settings, HaltOp::Record, why, now);
    rules::halt::halted(state, halt, send)
}

/// `state` with this node halting nothing (for the caller to save under
/// its lock), the delete of its key recorded with it (also when the state
/// recorded no halt: a key written by an older umm goes too).
pub(super) fn unhalted(ctx: &Context, settings: &Settings, state: &State) -> State {
    let send = call(ctx, settings, HaltOp::Clear, "", 0);
    rules::halt::unhalted(state, send)
}

/// The journal event of a halt newly recorded.
pub(super) fn said(episode: u64, why: &str, in_maintenance: bool) {
    let resume = if in_maintenance {
        "fix it, then `umm off`"
    } else {
        "fix it, then `umm fleet release`"
    };
    journal::log(
        Level::Error,
        &Change::RollHalted {
            episode,
            why,
            in_maintenance,
        },
        format_args!(
            "the group's roll is halted by this node: {why}; it keeps its fleet slot; {resume} resumes the roll"
        ),
    );
}

/// The maintenance work failed: this node halts the roll (recorded,
/// said once), and the key is written.
pub(super) fn record(ctx: &Context, settings: &Settings, episode: u64, why: &str) {
    let recorded = store::lock(&ctx.root).and_then(|mut locked| {
        let next = halted(ctx, settings, &locked.state, (episode, why));
        let new = next != locked.state;
        if new {
            save(&mut locked, next)?;
        }
        Ok(new)
    });
    match recorded {
        Ok(true) => said(episode, why, true),
        Ok(false) => {}
        Err(e) => {
            said(episode, why, true);
            log::warn!("the halt could not be recorded in the state ({e:#}); the slot kept still halts the roll");
        }
    }
    settle(ctx, settings);
}

/// Sends the halt call the state records, if any, under the fleet lock.
/// True when none is left; otherwise the reconcile sends it.
pub(super) fn settle(ctx: &Context, settings: &Settings) -> bool {
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    if state.fleet.halt_sending.is_none() {
        return true;
    }
    let wait = fleet::lock_wait(&settings.fleet);
    let settled = store::fleet_lock(&ctx.root, wait).and_then(|lock| match lock {
        Some(_fleet_lock) => settle_locked(ctx, settings),
        None => {
            log::info!("fleet: another umm is talking to the coordinator; the halt call waits for the reconcile");
            Ok(false)
        }
    });
    settled.unwrap_or_else(|e| {
        log::warn!("fleet: the halt call: {e:#}; the reconcile sends it");
        false
    })
}

/// `settle` with the fleet lock held by the caller: the call recorded is
/// sent once, and its answer saved. True when none is left.
pub(super) fn settle_locked(ctx: &Context, settings: &Settings) -> Result<bool> {
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    let Some(sending) = state.fleet.halt_sending else {
        return Ok(true);
    };
    let result = failpoint("fleet-halt-sent")
        .map_err(|e| e.to_string())
        .and_then(|()| send(&settings.fleet, &sending));
    failpoint("fleet-halt-answered")?;
    let mut locked = store::lock(&ctx.root)?;
    let what = match sending.op {
        HaltOp::Record => "written",
        HaltOp::Clear => "cleared",
    };
    match result {
        Ok(changed) => {
            let next = rules::halt::halt_sent(&locked.state, &sending);
            save(&mut locked, next)?;
            if changed {
                log::info!("fleet: the halt of group {:?} is {what}", sending.group);
            }
            Ok(true)
        }
        Err(error) => {
            let next = rules::halt::halt_send_failed(&locked.state, &sending, &error);
            save(&mut locked, next)?;
            log::warn!(
                "fleet: the halt of group {:?} could not be {what} ({error}); it stays recorded and the reconcile (umm-fleet-retry, every umm run as root) sends it again; the slot kept still halts the roll",
                sending.group
            );
            Ok(false)
        }
    }
}

/// One halt call, to the group and node it was recorded for (the back-end
/// configured must still be the one it was recorded for).
fn send(settings: &FleetSettings, h: &HaltSend) -> Result<bool, String> {
    if settings.backend.name() != h.backend {
        return Err(format!(
            "the halt was recorded for {} but fleet.backend is {:?} now",
            h.backend,
            settings.backend.name()
        ));
    }
    let for_group = FleetSettings {
        group: h.group.clone(),
        id: Some(h.node.clone()),
        ..settings.clone()
    };
    let c = fleet::from_settings(&for_group)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no fleet back-end is configured".to_string())?;
    let answer = match h.op {
        HaltOp::Record => c.record_halt(&Halt {
            node: h.node.clone(),
            why: h.why.clone(),
            since: rfc3339(h.since),
            since_unix: h.since,
        }),
        HaltOp::Clear => c.clear_halt(&h.node),
    };
    answer.map_err(|e| e.to_string())
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

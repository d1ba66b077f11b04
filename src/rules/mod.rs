//! The rules, as pure functions from a `State` (and plain inputs) to a new
//! `State`. No I/O, no clock, no configuration files: every input is a
//! parameter (`model::settings::Policy`, the boot id, the time, the hook
//! and verify records the caller got), so the tables in the tests cover
//! them exhaustively.
//!
//! - `boot`: the counting rules (listed at its top, where docs/state.md
//!   and the man page are generated from) and the boot-time decision.
//! - `request`: what operators ask (`umm on`, `enable`, `disable`).
//! - `leave`: leaving is a transaction (`leave`, `claim_finish`, `finish`):
//!   `umm off` puts the episode in phase `resuming`, and it stays open until
//!   the normal target is reached and one finisher has run the off.d hooks
//!   and the check; a boot that finds it `resuming` boots normally and
//!   finishes it there.
//! - `verify`: did every service come back?
//! - `fleet`: what a slot taken or owed back does to the state; `halt`:
//!   this node halting its group's roll, and the halt key's call.
//! - Rolling maintenance: `window` (open now? next start? in the node's
//!   time zone), `gate` (the health gate's verdict, fail-closed) and
//!   `queue` (`umm on --queue`: due, waiting with backoff, expiry, turn).
//! - `then`: after the maintenance work of `umm on --then`, leave by
//!   itself, wait, or halt the group's roll.
//! - `reboot`: a planned reboot by kexec or through the firmware, and the
//!   command line a kexec'd kernel boots with.

use crate::model::limits;
use crate::model::state::{BootRecord, Episode, EpisodeEnd, Maintenance, Phase, Reason, State};
use crate::model::verify::VerifyResult;

pub mod boot;
pub mod bootcount;
pub mod fleet;
pub mod gate;
pub mod halt;
pub mod leave;
pub mod queue;
pub mod reboot;
pub mod request;
pub mod sdboot;
pub mod then;
pub mod verify;
pub mod window;

pub use boot::{
    adopt_early_decision, boot, effective_enabled, record_reset, BootInputs, BootOutcome,
    CmdlineRequest, Event, ResetCause,
};
pub use leave::{
    claim_finish, finish, leave, may_start_command, upgrade, ClaimOutcome, Leave, NotFinished,
};
pub use request::{disable, enable, request};

/// Why a command was refused; each says what to do instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    DisabledByPolicy,
    DisabledBySwitch,
    AlreadyPending,
    AlreadyInMaintenance,
    NotInMaintenance,
    DisableInMaintenance,
    StillLeaving,
    AlreadyQueued,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::DisabledByPolicy => {
                "umm is disabled by the configuration (enabled = false); set enabled = true first"
            }
            Refusal::DisabledBySwitch => "umm is disabled; run `umm enable` first",
            Refusal::AlreadyPending => {
                "maintenance is already requested for the next boot; `umm off` cancels the request"
            }
            Refusal::AlreadyInMaintenance => {
                "the node is already in maintenance; `umm off` resumes normal operation"
            }
            Refusal::NotInMaintenance => "the node is not in maintenance and none is pending",
            Refusal::DisableInMaintenance => {
                "maintenance is pending or in force; run `umm off` first, then `umm disable`"
            }
            Refusal::StillLeaving => {
                "the node is still leaving maintenance (umm status: resuming); run `umm off` to finish leaving first"
            }
            Refusal::AlreadyQueued => {
                "a queued request is already waiting for its turn (umm status); `umm off` cancels it"
            }
        })
    }
}

/// A new episode's id.
pub(crate) fn next_episode(s: &mut State) -> u64 {
    s.episodes = s.episodes.saturating_add(1);
    s.episodes
}

pub(crate) fn entered(
    s: &mut State,
    reason: Reason,
    now: i64,
    crash_boots: Vec<BootRecord>,
) -> Maintenance {
    Maintenance {
        id: next_episode(s),
        phase: Phase::Active,
        reason,
        requested: now,
        since: Some(now),
        requested_by: None,
        command: None,
        crash_boots,
        services_before: None,
        hooks: Vec::new(),
        leaving: None,
        fleet: None,
        then: Default::default(),
        extra: Default::default(),
    }
}

/// Moves an episode to the history (bounded), ended at `now` as `end`.
pub(crate) fn close(
    s: &mut State,
    m: Maintenance,
    now: i64,
    end: EpisodeEnd,
    verify: Option<VerifyResult>,
) {
    s.history.push(Episode {
        id: m.id,
        reason: m.reason,
        requested: m.requested,
        since: m.since,
        ended: now,
        requested_by: m.requested_by,
        command: m.command,
        end: end.into(),
        hooks: m.hooks,
        verify,
        fleet: m.fleet,
        extra: Default::default(),
    });
    let excess = s.history.len().saturating_sub(limits::HISTORY);
    s.history.drain(..excess);
}

pub(crate) fn reset_counter(s: &mut State) {
    s.unclean_boots = 0;
    s.unclean_records.clear();
}

#[cfg(test)]
mod testing;

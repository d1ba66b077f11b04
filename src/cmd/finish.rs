//! Finishing leaving maintenance: one finisher (`umm off` waiting, a
//! retried `umm off`, umm-after.service, or a later boot) claims the work,
//! runs the off.d hooks and the check, and closes the episode.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{save, Context, Outcome};
use crate::hooks;
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::settings::Settings;
use crate::model::state::{Claim, Episode, Maintenance, Phase, State};
use crate::model::verify::VerifyResult;
use crate::output::message::{say, Message};
use crate::rules::{self, ClaimOutcome, NotFinished};
use crate::sys::paths;
use crate::sys::{config, store};

/// Is there a process with this PID? (signal 0 only checks.)
pub(super) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // It exists, and is not ours to signal.
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// A process's start time, clock ticks after boot (field 22 of
/// /proc/PID/stat, after the command name in parentheses).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Is the process that made `claim` still running? (its PID, started at
/// the same time: not a later process that got the same PID.)
fn claim_alive(claim: &Claim) -> bool {
    process_alive(claim.pid)
        && (claim.pid_start.is_none() || process_start(claim.pid) == claim.pid_start)
}

/// The closed episode, as the history has it.
pub(super) struct Closed {
    pub episode: Episode,
    /// This process ran the off.d hooks (and printed their failures).
    pub finished_here: bool,
}

impl Closed {
    pub fn off_hooks(&self) -> impl Iterator<Item = &HookRecord> {
        self.episode
            .hooks
            .iter()
            .filter(|h| h.phase.is(HookPhase::Off))
    }
}

pub(super) enum Finish {
    /// Closed, here or by another finisher.
    Done(Box<Closed>),
    /// Another live process is finishing it still.
    HeldBy(Claim),
    /// Nothing was leaving (and no closed episode to show).
    Nothing,
}

/// Claims the work left when leaving (one finisher: a live claim is
/// waited for, up to `wait_for_other`; a gone one is taken over), runs the
/// off.d hooks and the check, and closes the episode. `episode` is the one
/// the caller expects, to report it when another finisher closed it.
pub(super) fn finish_leaving(
    ctx: &Context,
    settings: &Settings,
    episode: Option<u64>,
    wait_for_other: Duration,
) -> Result<Finish> {
    let me = this_process(ctx)?;
    let m = match claim(ctx, &me, episode, wait_for_other)? {
        Claimed::Work(m) => m,
        Claimed::Finished(finish) => return Ok(finish),
    };
    // From the claim to the save that records the hooks ran: a Ctrl-C or a
    // hang-up waits (off.d runs exactly once; see `sys::interrupt`).
    crate::sys::interrupt::deferred(|| run_and_close(ctx, settings, &me, &m))
}

/// The off.d hooks and the check, then the close of the episode under the
/// lock, and the fleet slot given back.
fn run_and_close(
    ctx: &Context,
    settings: &Settings,
    me: &Claim,
    m: &Maintenance,
) -> Result<Finish> {
    let off_hooks = hooks::run_phase(
        &ctx.root,
        HookPhase::Off,
        Some(m.reason),
        &settings.hook_timeouts,
    );
    say(&Message::HookFailures(&off_hooks));
    let verify = check_services(ctx, m);
    let clean = verify.as_ref().is_some_and(VerifyResult::ok);
    let mut locked = store::lock(&ctx.root)?;
    let now = ctx.clock.now();
    match rules::finish(&locked.state, me, now, off_hooks, verify) {
        Ok(next) => {
            let episode = next.history.last().cloned();
            // Back in service: a fleet slot held is owed back, in the same
            // save that closes the episode (a crash after it leaves the
            // release pending, never lost), when the check was clean.
            let held = next.fleet.held.clone();
            let next = rules::fleet::back_in_service(&next, clean, now);
            let next = halt_on_close(ctx, settings, next, held.is_some() && !clean, m.id);
            let newly_halted =
                next.fleet.halt.is_some() && next.fleet.halt != locked.state.fleet.halt;
            save(&mut locked, next)?;
            drop(locked);
            log_closed(m, episode.as_ref());
            if newly_halted {
                super::halt::said(m.id, NOT_CLEAN, false);
            }
            give_back(ctx, settings, held, clean)?;
            super::halt::settle(ctx, settings);
            Ok(match episode {
                Some(episode) => Finish::Done(Box::new(Closed {
                    episode,
                    finished_here: true,
                })),
                None => Finish::Nothing,
            })
        }
        Err(why) => {
            log::warn!(
                "the off.d hooks and the check ran, but the episode was {} meanwhile; their results are in this log only",
                match why {
                    NotFinished::Closed => "closed",
                    NotFinished::TakenOver => "taken over by another finisher",
                }
            );
            Ok(Finish::Nothing)
        }
    }
}

/// The halt in the save that closes the episode: the slot kept (`halts`:
/// held, and the check not clean) halts the group's roll; back in service
/// without one (clean, or no slot held), the roll this node halted goes
/// on. Its key's call is sent after the save, or by the reconcile.
fn halt_on_close(
    ctx: &Context,
    settings: &Settings,
    next: State,
    halts: bool,
    episode: u64,
) -> State {
    if halts {
        super::halt::halted(ctx, settings, &next, (episode, NOT_CLEAN))
    } else {
        super::halt::unhalted(ctx, settings, &next)
    }
}

/// Why a node back in service halts its group's roll.
const NOT_CLEAN: &str = "the check after leaving was not clean (umm history)";

/// This process as the finisher of an episode.
fn this_process(ctx: &Context) -> Result<Claim> {
    let pid = std::process::id();
    Ok(Claim {
        boot_id: ctx.clock.boot_id()?,
        pid,
        pid_start: process_start(pid),
        since: ctx.clock.now(),
        extra: Default::default(),
    })
}

/// The journal record of a closed episode.
fn log_closed(m: &Maintenance, episode: Option<&Episode>) {
    let not_back = episode
        .and_then(|e| e.verify.as_ref())
        .map_or(0, |v| v.not_back.len());
    crate::sys::journal::log(
        log::Level::Info,
        &crate::sys::journal::Change::Resumed {
            reason: m.reason,
            episode: m.id,
            not_back,
        },
        format_args!(
            "left maintenance (reason {}): episode closed",
            m.reason.as_str()
        ),
    );
}

/// The slot the closed episode held goes back when the check was clean;
/// otherwise the node keeps it and says so.
fn give_back(
    ctx: &Context,
    settings: &Settings,
    held: Option<crate::model::state::FleetSlot>,
    clean: bool,
) -> Result<()> {
    match held {
        Some(_) if clean => {
            super::fleet::release_owed(ctx, settings, super::fleet::Loud::Stdout)?;
        }
        Some(slot) => say(&Message::FleetKept { group: &slot.group }),
        None => {}
    }
    Ok(())
}

/// What claiming the work gave.
enum Claimed {
    /// `me` is the finisher of this episode now.
    Work(Box<Maintenance>),
    /// Nothing for `me` to do: see why.
    Finished(Finish),
}

/// Claims the work under the lock: waits (up to `wait_for_other`) while a
/// live finisher holds it, takes it over from a gone one.
fn claim(
    ctx: &Context,
    me: &Claim,
    episode: Option<u64>,
    wait_for_other: Duration,
) -> Result<Claimed> {
    let until = Instant::now() + wait_for_other;
    loop {
        let mut locked = store::lock(&ctx.root)?;
        let state = rules::upgrade(locked.state.clone());
        let holder_alive = state
            .maintenance
            .as_ref()
            .and_then(|m| m.leaving.as_ref())
            .and_then(|l| l.finisher.as_ref())
            .is_some_and(claim_alive);
        match rules::claim_finish(&state, me, holder_alive) {
            (_, ClaimOutcome::NothingToFinish) => {
                // Closed by another finisher: the caller reports it.
                let closed = state
                    .history
                    .iter()
                    .rev()
                    .find(|e| episode.is_some_and(|id| id == e.id))
                    .cloned();
                return Ok(Claimed::Finished(match closed {
                    Some(episode) => Finish::Done(Box::new(Closed {
                        episode,
                        finished_here: false,
                    })),
                    None => Finish::Nothing,
                }));
            }
            (_, ClaimOutcome::HeldBy(c)) => {
                drop(locked);
                if Instant::now() >= until {
                    return Ok(Claimed::Finished(Finish::HeldBy(c)));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            (next, ClaimOutcome::Claimed { took_over }) => {
                if let Some(c) = took_over {
                    log::warn!(
                        "taking over leaving maintenance from pid {} (boot {}), which is gone",
                        c.pid,
                        c.boot_id
                    );
                }
                let m = next.maintenance.clone();
                save(&mut locked, next)?;
                return Ok(match m {
                    Some(m) => Claimed::Work(Box::new(m)),
                    None => Claimed::Finished(Finish::Nothing),
                });
            }
        }
    }
}

/// Did every service come back? Against what ran before `umm on`, or the
/// enabled services after an unplanned maintenance. Logged either way.
fn check_services(ctx: &Context, m: &Maintenance) -> Option<VerifyResult> {
    let verify = match (ctx.init.services(), ctx.init.enabled_services()) {
        (Ok(now), Ok(enabled)) => Some(rules::verify::compare(
            m.services_before.as_deref(),
            &enabled,
            &now,
        )),
        (Err(e), _) | (_, Err(e)) => {
            log::error!("cannot check that the services came back: {e:#}");
            None
        }
    };
    match &verify {
        Some(v) if v.ok() => log::info!(
            "every service came back after maintenance ({})",
            v.compared_with
        ),
        Some(v) => log::error!(
            "after maintenance, not running again ({}): {:?}; failed: {:?}",
            v.compared_with,
            v.not_back,
            v.failed
        ),
        None => {}
    }
    verify
}

/// How long umm-after.service waits for the default target: it is ordered
/// after multi-user.target and graphical.target, so this is only a margin.
const AFTER_RESUME_REACH: Duration = Duration::from_secs(60);

/// How long it waits for another live finisher (`umm off` running the
/// off.d hooks) before leaving the work to it.
const AFTER_RESUME_OTHERS: Duration = Duration::from_secs(3600);

/// `umm internal after-resume` (umm-after.service, in every normal boot):
/// finishes leaving maintenance when an episode is leaving and the normal
/// target is reached; a finisher that is gone is taken over.
pub fn after_resume(ctx: &Context) -> Result<Outcome> {
    let state = rules::upgrade(store::read(&ctx.root.path(paths::STATE)).state);
    if !state
        .maintenance
        .as_ref()
        .is_some_and(|m| m.phase == Phase::Resuming)
    {
        if state.maintenance.is_none() && rules::fleet::needs_reconcile(&state) {
            // A fleet release still owed: tried again, bounded.
            let settings = config::load_or_defaults(&ctx.root);
            super::fleet::retry_owed_at_boot(ctx, &settings);
        }
        return Ok(Outcome::Done);
    }
    if !ctx.init.normal_reached(AFTER_RESUME_REACH)? {
        log::warn!(
            "leaving maintenance is not finished: the normal target is not reached; `umm off` again (or the next boot) finishes it"
        );
        return Ok(Outcome::Done);
    }
    let settings = config::load_or_defaults(&ctx.root);
    match finish_leaving(ctx, &settings, None, AFTER_RESUME_OTHERS)? {
        Finish::HeldBy(c) => log::warn!(
            "pid {} still runs the off.d hooks and the check; leaving the work to it",
            c.pid
        ),
        Finish::Done(_) | Finish::Nothing => {
            let state = store::read(&ctx.root.path(paths::STATE)).state;
            if state.maintenance.is_none() && rules::fleet::needs_reconcile(&state) {
                super::fleet::retry_owed_at_boot(ctx, &settings);
            }
        }
    }
    Ok(Outcome::Done)
}

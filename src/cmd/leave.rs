//! `umm off` and `umm off reboot`: cancel a pending request, or start
//! (or retry) leaving maintenance; after a resume, wait for the normal
//! target and finish leaving (`finish`).

use std::time::{Duration, Instant};

use anyhow::Result;
use log::Level;

use super::finish::{finish_leaving, process_alive, Finish};
use super::{
    hooks_allow, lock, refused, require_root, save, settings_or_fallback, Context, Outcome,
};
use crate::hooks;
use crate::model::boot_decision::{BootDecision, DecidedBy};
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::settings::{RebootMethod, Settings};
use crate::model::state::{Mode, OffAction, Phase, Reason, State};
use crate::model::timefmt::{rfc3339, seconds_tenths};
use crate::output::message::{say, Message, Overridden};
use crate::rules::reboot::Transition;
use crate::rules::{self, Leave};
use crate::sys::journal::{self, Change};
use crate::sys::paths::{self, Root};
use crate::sys::{boot_decision, store};

/// `umm off` and `umm off reboot`. A pending request is cancelled at once.
/// Otherwise the episode starts leaving (phase `resuming`: pre-off hooks
/// first), or, when it is leaving already, `umm off` retries: the resume is
/// issued again (no pre-off hooks). The episode closes only once the
/// normal target is reached and the off.d hooks and the check have run,
/// by whoever gets there first (this command waiting, a retry,
/// umm-after.service, or a later boot).
pub fn off(
    ctx: &Context,
    action: OffAction,
    force: bool,
    wait: Option<Duration>,
    method: Option<RebootMethod>,
) -> Result<Outcome> {
    require_root("off")?;
    leave_as(ctx, action, By::Operator { force, method }, wait)
}

/// Who leaves: an operator's `umm off`, or the maintenance boot by itself
/// (`umm on --then`), which never overrides a pre-off veto.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum By {
    Operator {
        force: bool,
        method: Option<RebootMethod>,
    },
    Itself,
}

impl By {
    /// How the journal and the log say who left.
    fn words(self, action: OffAction) -> &'static str {
        match (self, action) {
            (By::Operator { .. }, OffAction::Resume) => "by umm off",
            (By::Operator { .. }, OffAction::Reboot) => "by umm off reboot",
            (By::Itself, OffAction::Resume) => "by itself (umm on --then off)",
            (By::Itself, OffAction::Reboot) => "by itself (umm on --then reboot)",
        }
    }
}

/// The one transaction of leaving, whoever asks for it: pre-off hooks,
/// the leaving phase, then the resume (or the reboot) and the finisher.
pub(super) fn leave_as(
    ctx: &Context,
    action: OffAction,
    by: By,
    wait: Option<Duration>,
) -> Result<Outcome> {
    let (force, method) = match by {
        By::Operator { force, method } => (force, method),
        By::Itself => (false, None),
    };
    let command = command_name(action);
    // A queued request (and no maintenance) is cancelled at once.
    if let Some(outcome) = super::queue::cancel(ctx, command)? {
        return Ok(outcome);
    }
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, command);
    let boot_id = ctx.clock.boot_id()?;
    let Some(pre_off) = pre_off_hooks(ctx, &settings, force, command) else {
        return Ok(Outcome::Refused);
    };
    let begun = {
        let mut locked = lock(&ctx.root, command)?;
        if loaded {
            locked.record_config(&settings, &sources, ctx.clock.now());
        }
        match begin(ctx, &settings, &mut locked, &boot_id, action, pre_off)? {
            Ok(begun) => begun,
            Err(r) => return Ok(refused(command, r)),
        }
    };
    // A test kills umm here: leaving has begun, nothing of it is done.
    crate::sys::failpoint::failpoint("leave-begun")?;
    remove_banners(&ctx.root);
    let episode_id = begun.episode.unwrap_or(0);
    match (begun.leave, action) {
        (Leave::Cancelled, OffAction::Resume) => {
            cancel_pending(ctx, &settings, begun.cancelled, begun.owed)
        }
        (_, OffAction::Reboot) => {
            reboot_out(ctx, &settings, method, begun.reason, (episode_id, by))
        }
        (_, OffAction::Resume) => {
            journal::log(
                Level::Info,
                &Change::Resuming {
                    reason: begun.reason,
                    episode: episode_id,
                    action: "resume",
                },
                format_args!(
                    "leaving maintenance (reason {}, episode {episode_id}) {}: resuming",
                    begun.reason.as_str(),
                    by.words(action),
                ),
            );
            resume(ctx, &settings, wait, begun.leave, begun.episode)
        }
    }
}

/// The command as the user typed it, for messages.
fn command_name(action: OffAction) -> &'static str {
    match action {
        OffAction::Reboot => "off reboot",
        OffAction::Resume => "off",
    }
}

/// What `begin` saved, for the steps after the lock.
struct Begun {
    leave: Leave,
    /// The episode leaving (none: nothing was pending or in force).
    episode: Option<u64>,
    reason: Reason,
    /// A cancelled request's slot is owed back.
    owed: bool,
    /// The id of the request a cancel dropped.
    cancelled: u64,
}

/// Under the state lock: the leave rule, saved; a cancelled request gives
/// its fleet slot back, and with it the halt that slot kept (a node back
/// in service after a check that was not clean, asked in again). The
/// inner error is the rules' refusal.
fn begin(
    ctx: &Context,
    settings: &Settings,
    locked: &mut store::Locked,
    boot_id: &str,
    action: OffAction,
    pre_off: Vec<HookRecord>,
) -> Result<Result<Begun, rules::Refusal>> {
    let state = rules::upgrade(locked.state.clone());
    let (next, leave) = match rules::leave(&state, ctx.clock.now(), boot_id, action, pre_off) {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    let episode = next.maintenance.as_ref().map(|m| m.id);
    let reason = next
        .maintenance
        .as_ref()
        .map_or(state_reason(&state), |m| m.reason);
    let next = match leave {
        Leave::Cancelled if next.fleet.halt.is_some() => super::halt::unhalted(
            ctx,
            settings,
            &rules::fleet::cancelled(&next, ctx.clock.now()),
        ),
        Leave::Cancelled => rules::fleet::cancelled(&next, ctx.clock.now()),
        _ => next,
    };
    let owed = next.fleet.pending_release.is_some();
    save(locked, next)?;
    Ok(Ok(Begun {
        leave,
        episode,
        reason,
        owed,
        cancelled: state.maintenance.as_ref().map_or(0, |m| m.id),
    }))
}

/// A pending request was cancelled: say so, and give back the slot it
/// held (`owed`).
fn cancel_pending(ctx: &Context, settings: &Settings, episode: u64, owed: bool) -> Result<Outcome> {
    journal::log(
        Level::Info,
        &Change::Cancelled { episode },
        format_args!("pending maintenance request cancelled by umm off"),
    );
    say(&Message::Cancelled);
    if owed {
        super::fleet::release_owed(ctx, settings, super::fleet::Loud::Stdout)?;
    }
    super::halt::settle(ctx, settings);
    Ok(Outcome::Done)
}

/// `umm off reboot`: the episode is leaving; the next boot is normal.
fn reboot_out(
    ctx: &Context,
    settings: &Settings,
    method: Option<RebootMethod>,
    reason: Reason,
    (episode, by): (u64, By),
) -> Result<Outcome> {
    journal::log(
        Level::Info,
        &Change::Resuming {
            reason,
            episode,
            action: "reboot",
        },
        format_args!(
            "leaving maintenance {}; rebooting into normal operation",
            by.words(OffAction::Reboot)
        ),
    );
    say(&Message::RebootingOut);
    // A crash loop's boots (and a boot failure's) must pass the boot
    // loader, where they are counted.
    let transition = Transition::Leave {
        crash_loop: matches!(reason, Reason::CrashLoop | Reason::BootFailure),
    };
    super::reboot::planned_reboot(ctx, settings, method, transition, "off reboot")?;
    Ok(Outcome::Done)
}

/// The reason of the episode in `state` (manual when there is none).
fn state_reason(state: &State) -> Reason {
    state
        .maintenance
        .as_ref()
        .map_or(Reason::Manual, |m| m.reason)
}

/// The pre-off hooks, when maintenance is in force (not on a retry, nor
/// for a pending request), able to stop `umm off` (unless --force): their
/// records, or None when refused.
fn pre_off_hooks(
    ctx: &Context,
    settings: &Settings,
    force: bool,
    command: &str,
) -> Option<Vec<HookRecord>> {
    let current = rules::upgrade(store::read(&ctx.root.path(paths::STATE)).state);
    let Some(m) = current
        .maintenance
        .as_ref()
        .filter(|m| m.phase == Phase::Active)
    else {
        return Some(Vec::new());
    };
    let pre_off = hooks::run_phase(
        &ctx.root,
        HookPhase::PreOff,
        Some(m.reason),
        &settings.hook_timeouts,
    );
    let vetoed = |failed| Message::VetoedByPreOff { command, failed };
    hooks_allow(&pre_off, force, vetoed, Overridden::PreOff).then_some(pre_off)
}

/// How long `umm off` waits for another finisher (umm-after.service) that
/// got to the off.d hooks first, when --timeout leaves less.
const OTHER_FINISHER_WAIT: Duration = Duration::from_secs(30);

/// Continues the paused boot into the normal target (unless it is there
/// already), then finishes leaving and reports.
fn resume(
    ctx: &Context,
    settings: &Settings,
    wait: Option<Duration>,
    leave: Leave,
    episode: Option<u64>,
) -> Result<Outcome> {
    let started = Instant::now();
    let failed_units = match reach_normal_target(ctx, wait, leave)? {
        Reach::Reached { failed_units } => failed_units,
        Reach::Stopped(outcome) => return Ok(outcome),
    };
    report_running_command(ctx);
    let others = wait
        .map(|w| w.saturating_sub(started.elapsed()))
        .unwrap_or_default()
        .max(OTHER_FINISHER_WAIT);
    finish_and_report(ctx, settings, episode, others, failed_units)
}

/// Where getting to the normal target left `umm off`.
enum Reach {
    /// There (units failed on the way, if any).
    Reached { failed_units: Vec<String> },
    /// Not there, or not waited for: the command ends here.
    Stopped(Outcome),
}

fn reach_normal_target(ctx: &Context, wait: Option<Duration>, leave: Leave) -> Result<Reach> {
    let boot_id = ctx.clock.boot_id()?;
    // This boot is the paused one, unless its decision says normal: then
    // `umm off` had begun in an earlier boot, and this one boots normally.
    let paused_here =
        boot_decision::read(&ctx.root, &boot_id).is_none_or(|d| d.mode == Mode::Maintenance);
    let retry = leave == Leave::Retried;
    if retry {
        log::info!("umm off again: the node is still leaving maintenance");
    }
    let reached_now = || ctx.init.normal_reached(Duration::ZERO).unwrap_or(false);
    // A retry after the normal target was reached (the first `umm off` was
    // interrupted after it) must not isolate the running system again.
    if retry && reached_now() {
        say(&Message::AlreadyReached);
        return Ok(Reach::Reached {
            failed_units: Vec::new(),
        });
    }
    if paused_here {
        return resume_here(ctx, wait);
    }
    if !reached_now() {
        say(&Message::NotReachedYet);
        return Ok(Reach::Stopped(Outcome::Failed));
    }
    Ok(Reach::Reached {
        failed_units: Vec::new(),
    })
}

/// Resumes this paused boot and waits for the normal target.
fn resume_here(ctx: &Context, wait: Option<Duration>) -> Result<Reach> {
    mark_resumed(ctx)?;
    log::info!("leaving maintenance (umm off): resuming the normal target");
    say(&Message::Resuming);
    let r = ctx.init.resume(wait).map_err(|e| {
        anyhow::anyhow!(
            "{e:#}; the node is still leaving maintenance (umm status: resuming): run `umm off` again, or `umm off reboot`"
        )
    })?;
    if !r.waited {
        say(&Message::ResumeStarted);
        report_running_command(ctx);
        return Ok(Reach::Stopped(Outcome::Done));
    }
    let seconds = seconds_tenths(r.elapsed);
    if !r.reached {
        log::error!(
            "normal target not reached {seconds}s after umm off; failed units: {:?}; still leaving maintenance",
            r.failed_units
        );
        say(&Message::NotReached {
            seconds: &seconds,
            failed_units: &r.failed_units,
        });
        report_running_command(ctx);
        return Ok(Reach::Stopped(Outcome::Failed));
    }
    log::info!("normal target reached {seconds}s after umm off");
    say(&Message::Reached { seconds: &seconds });
    Ok(Reach::Reached {
        failed_units: r.failed_units,
    })
}

/// Finishes leaving (here, or by waiting for another finisher) and says
/// whether every service came back.
fn finish_and_report(
    ctx: &Context,
    settings: &Settings,
    episode: Option<u64>,
    wait_for_other: Duration,
    failed_units: Vec<String>,
) -> Result<Outcome> {
    let verify = match finish_leaving(ctx, settings, episode, wait_for_other)? {
        Finish::Done(e) => {
            if !e.finished_here {
                let hooks: Vec<_> = e.off_hooks().cloned().collect();
                say(&Message::HookFailures(&hooks));
            }
            e.episode.verify
        }
        Finish::HeldBy(c) => {
            say(&Message::FinishedElsewhere { pid: c.pid });
            return Ok(Outcome::Done);
        }
        Finish::Nothing => None,
    };
    let failed_units = verify.as_ref().map_or(failed_units, |v| v.failed.clone());
    say(&Message::AfterLeaving {
        failed_units: &failed_units,
        verify: verify.as_ref(),
    });
    Ok(match verify {
        Some(v) if !v.ok() => Outcome::Failed,
        _ if !failed_units.is_empty() => Outcome::Failed,
        _ => Outcome::Done,
    })
}

/// Says so when the scheduled command is still running: leaving
/// maintenance does not stop it (docs/commands.md: it keeps running).
pub(super) fn report_running_command(ctx: &Context) {
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    let command = match state.maintenance.as_ref() {
        Some(m) => m.command.as_ref(),
        None => state.history.last().and_then(|e| e.command.as_ref()),
    };
    let Some(run) = command
        .and_then(|c| c.run.as_ref())
        .filter(|r| r.ended.is_none())
    else {
        return;
    };
    let pid = match run.pid {
        Some(pid) if process_alive(pid) => Some(pid),
        Some(_) => return, // gone without a result: a crashed worker
        None => None,
    };
    say(&Message::CommandStillRunning {
        pid,
        since: &rfc3339(run.started),
    });
}

/// Records in /run that this boot was resumed, so that the generator (run
/// again by daemon-reload) stops pointing default.target at maintenance.
fn mark_resumed(ctx: &Context) -> Result<()> {
    let boot_id = ctx.clock.boot_id()?;
    let mut decision = boot_decision::read(&ctx.root, &boot_id).unwrap_or(BootDecision {
        boot_id,
        mode: Mode::Maintenance,
        reason: None,
        decided_by: DecidedBy::Boot.into(),
        skipped_by_cmdline: false,
        resumed: false,
    });
    decision.resumed = true;
    boot_decision::write(&ctx.root, &decision)
}

/// The maintenance banners go with the maintenance.
pub fn remove_banners(root: &Root) {
    for banner in [paths::MOTD, paths::ISSUE] {
        let _ = std::fs::remove_file(root.path(banner));
    }
}

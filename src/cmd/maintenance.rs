//! `umm internal maintenance` (umm-maintenance.service, or beside the
//! sysvinit pause): once maintenance is reached, the banners, then once per
//! episode the on.d hooks and the scheduled command.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::leave::{leave_as, By};
use super::{save, Context, Outcome};
use crate::hooks;
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::settings::Settings;
use crate::model::state::{
    CommandRun, Maintenance, OffAction, Phase, Reason, ScheduledCommand, State,
};
use crate::output::history::program_and_count;
use crate::output::message::{banner_text, say, Message};
use crate::rules;
use crate::rules::then::AfterWork;
use crate::sys::paths::{self, Root};
use crate::sys::run::{self, run_bounded_then, Finished};
use crate::sys::{config, store};

/// The console (agetty's /run/issue.d) and ssh login (pam_motd's
/// /run/motd.d) banners; both live in /run, so they vanish with the boot.
pub(super) fn write_banners(root: &Root, m: &Maintenance) {
    let text = banner_text(m);
    for path in [paths::MOTD, paths::ISSUE] {
        let p = root.path(path);
        let written = p
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&p, &text));
        if let Err(e) = written {
            log::warn!("cannot write the banner {}: {e}", p.display());
        }
    }
}

/// `umm internal maintenance`: once maintenance is reached, show the
/// banner, then, once per maintenance, run the on.d hooks and the scheduled
/// command, recording their results.
pub fn maintenance(ctx: &Context) -> Result<Outcome> {
    let settings = config::load_or_defaults(&ctx.root);
    let locked = store::lock(&ctx.root)?;
    let Some(m) = locked
        .state
        .maintenance
        .clone()
        .filter(|m| m.phase == Phase::Active)
    else {
        drop(locked);
        log::info!("not in maintenance; nothing to do");
        // Unless leaving by itself was cut short: finish it.
        return after_work(ctx, &settings);
    };
    write_banners(&ctx.root, &m);
    say(&Message::Banner(&banner_text(&m)));
    let first_time = m.command.as_ref().is_none_or(|c| c.run.is_none())
        && !m.hooks.iter().any(|h| h.phase.is(HookPhase::On));
    drop(locked);
    // A crash loop, or a boot failure (a crash loop GRUB counted): the node
    // is out of service anyway; the group is told (a slot taken if one is
    // free), bounded, after the on.d hooks, never a reason to leave
    // maintenance.
    let crash_loop_take = || {
        if matches!(m.reason, Reason::CrashLoop | Reason::BootFailure) {
            if let Err(e) = super::fleet::take_in_crash_loop(ctx, &settings) {
                log::warn!("fleet: crash-loop maintenance: {e:#}");
            }
        }
    };
    if !first_time {
        crash_loop_take();
        return after_work(ctx, &settings);
    }
    // The on.d hooks run once per maintenance, before the scheduled command.
    let on_hooks = hooks::run_phase(
        &ctx.root,
        HookPhase::On,
        Some(m.reason),
        &settings.hook_timeouts,
    );
    let Some(started) = start_command(ctx, &m, on_hooks)? else {
        crash_loop_take();
        return after_work(ctx, &settings);
    };
    log::info!(
        "running the scheduled command: {}",
        program_and_count(&started.argv)
    );
    let result = run_command(
        &started.argv,
        &started.output,
        settings.command_timeout,
        |pid| record_pid(ctx, m.id, pid),
    );
    record_result(ctx, m.id, started.run, &result)?;
    after_work(ctx, &settings)
}

/// How long leaving by itself waits for the normal target (as `umm off`).
const LEAVE_WAIT: Duration = Duration::from_secs(600);

/// `umm on --then off|reboot`: once the work is done, the maintenance
/// boot leaves by itself when it succeeded (the same transaction as `umm
/// off`), or halts the group's roll when it failed. Decided from the state
/// as saved, so a run after a crash finishes what one before began.
fn after_work(ctx: &Context, settings: &Settings) -> Result<Outcome> {
    let state = rules::upgrade(store::read(&ctx.root.path(paths::STATE)).state);
    let Some(m) = state.maintenance else {
        return Ok(Outcome::Done);
    };
    let alive = m
        .command
        .as_ref()
        .and_then(|c| c.run.as_ref())
        .and_then(|r| r.pid)
        .is_some_and(super::finish::process_alive);
    let (action, retry) = match rules::then::after_work(&m, alive) {
        AfterWork::Stay | AfterWork::Wait => return Ok(Outcome::Done),
        AfterWork::Halt(why) => return halt(ctx, settings, &m, &why),
        AfterWork::Leave(action) => (action, false),
        AfterWork::Retry(action) => (action, true),
    };
    // A test kills umm here: the work is done and recorded, leaving is not
    // begun.
    crate::sys::failpoint::failpoint("then-leave")?;
    log::info!(
        "{}: leaving maintenance by itself (umm on --then {})",
        if retry {
            "leaving by itself was cut short"
        } else {
            "the maintenance work succeeded"
        },
        if action == OffAction::Reboot {
            "reboot"
        } else {
            "off"
        }
    );
    match leave_as(ctx, action, By::Itself, Some(LEAVE_WAIT))? {
        Outcome::Refused => halt(ctx, settings, &m, "a pre-off hook vetoed leaving"),
        outcome => Ok(outcome),
    }
}

/// The work failed: the node stays in maintenance and keeps its slot.
fn halt(ctx: &Context, settings: &Settings, m: &Maintenance, why: &str) -> Result<Outcome> {
    log::error!(
        "the maintenance work failed ({why}): the node stays in maintenance (episode {}); `umm off` leaves once it is fixed",
        m.id
    );
    super::halt::record(ctx, settings, m.id, why);
    // Not a failed unit: the check after `umm off` would count it.
    Ok(Outcome::Done)
}

/// The scheduled command, recorded as started.
struct Started {
    argv: Vec<String>,
    /// Where its output goes (under the root prefix).
    output: PathBuf,
    run: CommandRun,
}

/// Records the on.d hooks' results and, under the same lock, decides again
/// from the state as it is now whether the scheduled command starts: `umm
/// off` may have ended this episode while the hooks ran, and then its
/// command must not start. A command that starts is recorded first: a
/// crash during it must not run it again.
fn start_command(
    ctx: &Context,
    m: &Maintenance,
    on_hooks: Vec<HookRecord>,
) -> Result<Option<Started>> {
    let mut locked = store::lock(&ctx.root)?;
    let mut next = locked.state.clone();
    next.counters.hook_failures.add_failed(&on_hooks);
    on_episode(&mut next, m.id, |hooks, _| hooks.extend(on_hooks));
    let command = m.command.as_ref().filter(|c| c.run.is_none());
    if command.is_some() && !rules::may_start_command(&next, m.id) {
        log::warn!(
            "maintenance ended while the on.d hooks ran (umm off): the scheduled command is not started"
        );
    }
    let Some(command) = command.filter(|_| rules::may_start_command(&next, m.id)) else {
        save(&mut locked, next)?;
        return Ok(None);
    };
    let run = CommandRun {
        started: ctx.clock.now(),
        pid: None,
        ended: None,
        exit_code: None,
        signal: None,
        output: paths::COMMAND_OUTPUT.to_string(),
        extra: Default::default(),
    };
    set_command_run(&mut next, m.id, run.clone());
    save(&mut locked, next)?;
    Ok(Some(Started {
        argv: command.argv.clone(),
        output: ctx.root.path(paths::COMMAND_OUTPUT),
        run,
    }))
}

/// The running command's PID, for `umm status` and `umm off`.
fn record_pid(ctx: &Context, id: u64, pid: u32) {
    let saved = store::lock(&ctx.root).and_then(|mut locked| {
        let mut next = locked.state.clone();
        on_episode(&mut next, id, |_, c| {
            if let Some(r) = c.and_then(|c| c.run.as_mut()) {
                r.pid = Some(pid);
            }
        });
        save(&mut locked, next)
    });
    if let Err(e) = saved {
        log::warn!("cannot record the scheduled command's pid {pid}: {e:#}");
    }
}

/// How the scheduled command ended, on its episode.
fn record_result(
    ctx: &Context,
    id: u64,
    mut run: CommandRun,
    result: &Result<Finished>,
) -> Result<()> {
    let mut locked = store::lock(&ctx.root)?;
    let mut next = locked.state.clone();
    run.ended = Some(ctx.clock.now());
    match result {
        Ok(f) => {
            run.exit_code = f.exit_code;
            run.signal = f.signal;
            log::info!(
                "the scheduled command {}; output in {}",
                f.describe(),
                paths::COMMAND_OUTPUT
            );
        }
        Err(e) => {
            run.exit_code = Some(127);
            log::error!("the scheduled command could not run: {e:#}");
        }
    }
    set_command_run(&mut next, id, run);
    save(&mut locked, next)
}

/// Changes episode `id`'s hooks and command wherever it is now: still
/// open, or already in the history (`umm off` ended it meanwhile). Never
/// another episode's.
fn on_episode(
    state: &mut State,
    id: u64,
    change: impl FnOnce(&mut Vec<HookRecord>, Option<&mut ScheduledCommand>),
) {
    if let Some(m) = state.maintenance.as_mut().filter(|m| m.id == id) {
        change(&mut m.hooks, m.command.as_mut());
    } else if let Some(e) = state.history.iter_mut().rev().find(|e| e.id == id) {
        change(&mut e.hooks, e.command.as_mut());
    }
}

/// Records the run on the episode it belongs to.
fn set_command_run(state: &mut State, id: u64, run: CommandRun) {
    on_episode(state, id, |_, c| {
        if let Some(c) = c {
            c.run = Some(run);
        }
    });
}

fn run_command(
    argv: &[String],
    output: &Path,
    timeout: Duration,
    spawned: impl FnOnce(u32),
) -> Result<Finished> {
    // The state file may have been edited by hand: never index into argv.
    let Some((program, args)) = argv.split_first() else {
        bail!("the scheduled command is empty (argv [] in the state file)");
    };
    let out = run::create_private(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir("/");
    run_bounded_then(cmd, timeout, spawned).with_context(|| format!("cannot start {program}"))
}

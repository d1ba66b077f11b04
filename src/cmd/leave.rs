//! `umm off` and `umm off reboot`: cancel a pending request, or start
//! (or retry) leaving maintenance; after a resume, wait for the normal
//! target and finish leaving (`finish`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::enter::{hooks_allow, print_failures};
use super::finish::{finish_leaving, process_alive, Finish};
use super::{refused, require_root, save, settings_or_fallback, warn_problem, Context};
use crate::hooks;
use crate::model::boot_decision::{BootDecision, DecidedBy};
use crate::model::hook::HookPhase;
use crate::model::settings::Settings;
use crate::model::state::{Mode, OffAction, Phase};
use crate::model::timefmt::{rfc3339, seconds_tenths};
use crate::rules::{self, Leave};
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
) -> Result<ExitCode> {
    require_root("off")?;
    let what = if action == OffAction::Reboot {
        "off reboot"
    } else {
        "off"
    };
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, what);
    let boot_id = ctx.clock.boot_id()?;
    let current = rules::upgrade(store::read(&ctx.root.path(paths::STATE)).state);
    let mut pre_off = Vec::new();
    if let Some(m) = current
        .maintenance
        .as_ref()
        .filter(|m| m.phase == Phase::Active)
    {
        pre_off = hooks::run_phase(
            &ctx.root,
            HookPhase::PreOff,
            Some(m.reason),
            &settings.hook_timeouts,
        );
        let vetoed = |f: &str| {
            format!("umm {what}: refused: vetoed by {f}; still in maintenance (--force overrides)")
        };
        if !hooks_allow(
            &pre_off,
            force,
            vetoed,
            "Overriding the failed pre-off hooks",
        ) {
            return Ok(ExitCode::from(1));
        }
    }
    let mut locked = store::lock(&ctx.root)?;
    warn_problem(what, &locked);
    if loaded {
        locked.record_config(&settings, &sources, ctx.clock.now());
    }
    let state = rules::upgrade(locked.state.clone());
    let (next, leave) = match rules::leave(&state, ctx.clock.now(), &boot_id, action, pre_off) {
        Ok(r) => r,
        Err(r) => return Ok(refused(what, &r)),
    };
    let episode = next.maintenance.as_ref().map(|m| m.id);
    save(&mut locked, next)?;
    drop(locked);
    remove_banners(&ctx.root);
    match (leave, action) {
        (Leave::Cancelled, OffAction::Resume) => {
            log::info!("pending maintenance request cancelled by umm off");
            outln!("Cancelled the maintenance request; the next boot will be normal.");
            Ok(ExitCode::SUCCESS)
        }
        (_, OffAction::Reboot) => {
            log::info!("leaving maintenance by umm off reboot; rebooting into normal operation");
            outln!(
                "Leaving maintenance: rebooting cleanly into normal operation. The off.d hooks and the check run once the normal boot reaches its target."
            );
            ctx.init.reboot()?;
            Ok(ExitCode::SUCCESS)
        }
        (_, OffAction::Resume) => resume(ctx, &settings, wait, leave, episode),
    }
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
) -> Result<ExitCode> {
    let started = Instant::now();
    let boot_id = ctx.clock.boot_id()?;
    // This boot is the paused one, unless its decision says normal: then
    // `umm off` had begun in an earlier boot, and this one boots normally.
    let paused_here =
        boot_decision::read(&ctx.root, &boot_id).is_none_or(|d| d.mode == Mode::Maintenance);
    let retry = leave == Leave::Retried;
    if retry {
        log::info!("umm off again: the node is still leaving maintenance");
    }
    // A retry after the normal target was reached (the first `umm off` was
    // interrupted after it) must not isolate the running system again.
    let reached_already = retry && ctx.init.normal_reached(Duration::ZERO).unwrap_or(false);
    let mut failed_units = Vec::new();
    if reached_already {
        outln!("The normal target is reached; finishing leaving maintenance.");
    } else if paused_here {
        mark_resumed(ctx)?;
        log::info!("leaving maintenance (umm off): resuming the normal target");
        outln!("Leaving maintenance: resuming the boot into the normal target...");
        let r = ctx.init.resume(wait).map_err(|e| {
            anyhow::anyhow!(
                "{e:#}; the node is still leaving maintenance (umm status: resuming): run `umm off` again, or `umm off reboot`"
            )
        })?;
        if !r.waited {
            outln!(
                "Resume started; not waiting (--no-wait). The off.d hooks and the check run once the normal target is reached (umm-after.service). Check with: umm status"
            );
            report_running_command(ctx);
            return Ok(ExitCode::SUCCESS);
        }
        let secs = seconds_tenths(r.elapsed);
        if !r.reached {
            log::error!(
                "normal target not reached {secs}s after umm off; failed units: {:?}; still leaving maintenance",
                r.failed_units
            );
            errln!(
                "umm off: the normal target was not reached after {secs} s; failed units: {}; the node is still leaving maintenance (umm status: resuming): see `systemctl --failed` and the journal, then run `umm off` again, or `umm off reboot`",
                if r.failed_units.is_empty() { "none".into() } else { r.failed_units.join(", ") }
            );
            report_running_command(ctx);
            return Ok(ExitCode::from(1));
        }
        log::info!("normal target reached {secs}s after umm off");
        outln!("Normal target reached in {secs} s.");
        failed_units = r.failed_units;
    } else if !ctx.init.normal_reached(Duration::ZERO).unwrap_or(false) {
        errln!(
            "umm off: this boot has not reached its normal target yet; umm-after.service finishes leaving maintenance once it has (or run `umm off` again then)"
        );
        return Ok(ExitCode::from(1));
    }
    report_running_command(ctx);
    let others = wait
        .map(|w| w.saturating_sub(started.elapsed()))
        .unwrap_or_default()
        .max(OTHER_FINISHER_WAIT);
    let verify = match finish_leaving(ctx, settings, episode, others)? {
        Finish::Done(e) => {
            if !e.finished_here {
                let hooks: Vec<_> = e.off_hooks().cloned().collect();
                print_failures(&hooks);
            }
            e.episode.verify
        }
        Finish::HeldBy(c) => {
            outln!(
                "The off.d hooks and the check are being run by pid {} (umm-after.service or another umm off); see `umm history` once they are done.",
                c.pid
            );
            return Ok(ExitCode::SUCCESS);
        }
        Finish::Nothing => None,
    };
    let failed_units = match &verify {
        Some(v) => v.failed.clone(),
        None => failed_units,
    };
    outln!(
        "Failed units: {}",
        if failed_units.is_empty() {
            "none".into()
        } else {
            failed_units.join(", ")
        }
    );
    match verify {
        Some(v) if !v.ok() => {
            if !v.not_back.is_empty() {
                outln!(
                    "Not running again ({}): {}",
                    v.compared_with,
                    v.not_back.join(", ")
                );
            }
            Ok(ExitCode::from(1))
        }
        _ if !failed_units.is_empty() => Ok(ExitCode::from(1)),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Says so when the scheduled command is still running: leaving
/// maintenance does not stop it (README: it keeps running).
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
        Some(pid) if process_alive(pid) => format!("pid {pid}, "),
        Some(_) => return, // gone without a result: a crashed worker
        None => String::new(),
    };
    outln!(
        "The scheduled command is still running ({pid}since {}); it keeps running. Its result: umm status, umm history.",
        rfc3339(run.started)
    );
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

pub fn remove_banners(root: &Root) {
    for banner in [paths::MOTD, paths::ISSUE] {
        let _ = std::fs::remove_file(root.path(banner));
    }
}

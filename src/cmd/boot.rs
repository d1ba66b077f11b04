//! The init system's entry points around every boot: the boot-time
//! decision and counting (`umm internal boot`), and the clean-shutdown and
//! uptime records. None of them may stop a boot: a broken configuration
//! falls back to the last one that loaded (or counting only), and failures
//! are logged and reported in the exit status of the unit, which nothing
//! else depends on.

use anyhow::Result;
use log::Level;

use super::maintenance::write_banners;
use super::{save, Context, Outcome};
use crate::bootmenu::{self, Counting};
use crate::model::boot_decision::{BootDecision, DecidedBy};
use crate::model::settings::Settings;
use crate::model::state::{Mode, NodeState, Reason, State};
use crate::model::timefmt::format_span;
use crate::rules::{self, BootInputs, BootOutcome, CmdlineRequest, Event, ResetCause};
use crate::sys::journal::{self, Change};
use crate::sys::paths::{self, Root};
use crate::sys::{boot_decision, config, fsread, grubenv, store};

/// The kernel command line's `umm=` request, and whether GRUB's
/// boot-failure marker is there (`rules::boot::BOOT_FAILURE_MARKER`).
pub fn read_cmdline(root: &Root) -> (CmdlineRequest, bool) {
    let text = cmdline_text(root);
    (
        CmdlineRequest::parse(&text),
        rules::boot::boot_failure_marker(&text),
    )
}

/// The kernel command line; when it cannot be read (logged), an empty one.
pub fn cmdline_text(root: &Root) -> String {
    fsread::read(&root.path(paths::CMDLINE), fsread::SMALL_MAX)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|e| {
            log::error!("{e}; going on without the kernel command line's umm= argument");
            String::new()
        })
}

/// This boot's decision as `rules::boot` took it.
pub(super) fn decision(boot_id: String, outcome: &BootOutcome, by: DecidedBy) -> BootDecision {
    BootDecision {
        boot_id,
        mode: outcome.mode,
        reason: outcome.reason,
        decided_by: by.into(),
        skipped_by_cmdline: outcome.events.contains(&Event::SkippedByCmdline),
        resumed: false,
    }
}

/// Logs what the boot rules did; `state` is the state saved after them
/// (the episode's id), `threshold` the reboot_count in force.
pub(super) fn log_events(events: &[Event], state: &State, threshold: u32) {
    let episode = state.maintenance.as_ref().map_or(0, |m| m.id);
    let node = NodeState::of(state.maintenance.as_ref());
    for e in events {
        match e {
            Event::AlreadyRecorded => log::info!("this boot was already recorded; nothing to do"),
            Event::Counted(n) => journal::log(
                Level::Warn,
                &Change::Counted {
                    unclean_boots: *n,
                    threshold,
                    state: node,
                },
                format_args!("the previous boot ended uncleanly; {n} unclean boot(s) in a row"),
            ),
            Event::CounterReset(cause) => journal::log(
                Level::Info,
                &Change::CounterReset {
                    cause: &cause.to_string(),
                    state: node,
                },
                format_args!("unclean-boot counter reset to 0 ({cause})"),
            ),
            Event::Entered(r) => journal::log(
                Level::Warn,
                &Change::Entered {
                    reason: *r,
                    episode,
                    unclean_boots: state.unclean_boots,
                },
                format_args!("entering maintenance mode (reason {})", r.as_str()),
            ),
            Event::Held(r) => journal::log(
                Level::Warn,
                &Change::Held {
                    reason: *r,
                    episode,
                },
                format_args!(
                    "maintenance mode (reason {}) holds until umm off",
                    r.as_str()
                ),
            ),
            Event::SkippedByCmdline => {
                log::warn!("maintenance skipped for this boot by umm=off on the kernel command line; the request is kept")
            }
            Event::Disabled => log::info!("umm is disabled: nothing counted or enforced"),
            Event::StillLeaving(r) => log::warn!(
                "maintenance (reason {}) was being left when the last boot ended: this boot is normal, and umm-after finishes leaving once the normal target is reached",
                r.as_str()
            ),
            Event::LeavingInterrupted(r) => log::warn!(
                "maintenance (reason {}) was being left, but this boot stops in maintenance again: that episode is closed as interrupted (its off.d hooks did not run)",
                r.as_str()
            ),
        }
    }
}

/// `umm internal boot`: count the previous boot, decide this one, record.
pub fn boot(ctx: &Context) -> Result<Outcome> {
    let (settings, sources, in_use, _) = config::load_logged(&ctx.root);
    let boot_id = ctx.clock.boot_id()?;
    let now = ctx.clock.now();
    let mut locked = match store::lock(&ctx.root) {
        Ok(locked) => locked,
        Err(e) => {
            let early = keep_early_decision(ctx, &settings, &boot_id, now);
            log::warn!("{e:#}: GRUB's environment block is written without the writers' lock (a `umm boot retry` running now may be lost: run it again)");
            mark_reached_userspace(ctx, &settings, &early, now);
            return Err(e.context("this boot was not counted and the state was not changed"));
        }
    };
    if in_use == config::InUse::Loaded {
        locked.record_config(&settings, &sources, now);
    }
    let (cmdline, boot_failure) = read_cmdline(&ctx.root);
    let input = BootInputs {
        boot_id: &boot_id,
        now,
        cmdline,
        boot_failure,
        policy: settings.policy(),
    };
    let (next, outcome) = rules::boot(&locked.state, &input);
    let early =
        boot_decision::read(&ctx.root, &boot_id).filter(|d| d.decided_by.is(DecidedBy::Generator));
    let (next, outcome, late) = match &early {
        Some(e) => rules::adopt_early_decision(next, outcome, e.mode, e.reason, now),
        None => (next, outcome, false),
    };
    if early
        .as_ref()
        .is_some_and(|e| e.mode != outcome.mode || late)
    {
        log::warn!(
            "the early copy of the state ({}) was stale or missing",
            paths::EARLY_STATE
        );
    }
    save(&mut locked, next)?;
    let state = locked.state.clone();
    announce(ctx, &settings, &state, &outcome, early.is_some(), boot_id)?;
    // Still under the writers' lock: `umm boot retry` writes the same block.
    mark_reached_userspace(ctx, &settings, &state, now);
    drop(locked);
    if late {
        log::warn!("entering maintenance late: isolating the maintenance target");
        ctx.init.enter_maintenance_late()?;
    }
    Ok(Outcome::Done)
}

/// What the decision saved means outside the state: the journal events,
/// the boot decision for the other units, the banners of a maintenance.
fn announce(
    ctx: &Context,
    settings: &Settings,
    state: &State,
    outcome: &BootOutcome,
    early: bool,
    boot_id: String,
) -> Result<()> {
    log_events(&outcome.events, state, settings.reboot_count);
    if outcome
        .events
        .contains(&Event::Entered(Reason::BootFailure))
    {
        log_boot_failure(ctx, state);
    }
    let decided_by = if early {
        DecidedBy::Generator
    } else {
        DecidedBy::Boot
    };
    boot_decision::write(&ctx.root, &decision(boot_id, outcome, decided_by))?;
    if outcome.mode == Mode::Maintenance {
        if let Some(m) = &state.maintenance {
            write_banners(&ctx.root, m);
        }
    }
    Ok(())
}

/// Boot-loader counting (`rules::bootcount`): this boot reached userspace,
/// so GRUB's count of attempts goes back to zero and this kernel is the last
/// good one. Only where 42_umm put counting code in grub.cfg; a block that
/// cannot be parsed or written is reported and left alone, never a reason to
/// fail the boot. Called under the writers' lock (sys::grubenv), or after
/// waiting for it in vain.
fn mark_reached_userspace(ctx: &Context, settings: &Settings, state: &State, now: i64) {
    match bootmenu::boot_counting(&ctx.root) {
        Counting::On => mark_in_grubenv(ctx, settings, state, now),
        Counting::Entries(_) => mark_in_entries(ctx, settings, state, now),
        Counting::Off(_) => {}
    }
}

/// systemd-boot (`rules::sdboot`): this boot's entry is blessed, its kernel
/// is the last good one, and a boot through the fallback records the
/// failure; a problem is logged, never a reason to fail the boot.
fn mark_in_entries(ctx: &Context, settings: &Settings, state: &State, now: i64) {
    let kernel = running_kernel(&ctx.root);
    let input = rules::sdboot::PlanInput {
        enabled: rules::effective_enabled(state, settings.policy()),
        tries: sdboot_tries(settings),
        kernel: Some(kernel.as_str()).filter(|k| !k.is_empty()),
        failure_seen: read_cmdline(&ctx.root).1,
        now,
    };
    match bootmenu::sdboot::sync(&ctx.root, &input) {
        // A blessed entry gets its variants (GRUB-style BLS directory).
        Ok(Some(report)) if !report.plan.renames.is_empty() => {
            if let Err(e) = bootmenu::bls_sync(&ctx.root, false) {
                log::error!("cannot update umm's boot entries: {e:#}");
            }
        }
        Ok(_) => {}
        Err(e) => log::error!("{e}; boot-loader counting does not work until it is fixed"),
    }
}

/// The tries a new kernel's entry gets: `reboot_count + 1`, at most
/// `rules::bootcount::MAX_TRIES_CAP` as with GRUB.
pub fn sdboot_tries(settings: &Settings) -> u32 {
    settings
        .reboot_count
        .saturating_add(1)
        .min(rules::bootcount::MAX_TRIES_CAP)
}

/// GRUB (`rules::bootcount`).
fn mark_in_grubenv(ctx: &Context, settings: &Settings, state: &State, now: i64) {
    let kernel = running_kernel(&ctx.root);
    let env = match grubenv::read(&ctx.root) {
        Ok(env) => env,
        Err(e) => return log::error!("{e}; boot-loader counting does not work until it is fixed"),
    };
    let input = rules::bootcount::Reached {
        enabled: rules::effective_enabled(state, settings.policy()),
        reboot_count: settings.reboot_count,
        kernel: &kernel,
        now,
    };
    let changes = rules::bootcount::reached_userspace(&env, &input);
    if let Err(e) = grubenv::update(&ctx.root, &changes) {
        return log::error!("{e}; boot-loader counting does not work until it is fixed");
    }
    if let Some(new) = rules::bootcount::new_good(&env, &kernel) {
        log::info!(
            "boot loader: kernel {kernel} reached userspace after {} attempt(s) counted by GRUB; it is now the last good kernel (was {})",
            new.attempts,
            new.previous.as_deref().unwrap_or("none")
        );
    }
}

/// This boot's kernel (`uname -r`); empty when it cannot be read.
pub fn running_kernel(root: &Root) -> String {
    fsread::read(&root.path(paths::OSRELEASE), fsread::SMALL_MAX)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default()
}

/// A maintenance entered because GRUB gave up on a kernel: the journal
/// event names the kernel and the attempts, as GRUB's block records them
/// (read before this boot's write; a block that cannot be read leaves
/// them unknown, never a reason to fail the boot).
fn log_boot_failure(ctx: &Context, state: &State) {
    let episode = state.maintenance.as_ref().map_or(0, |m| m.id);
    let grub = grubenv::read(&ctx.root)
        .ok()
        .and_then(|env| rules::bootcount::boot_failure(&env));
    let sdboot = grub
        .is_none()
        .then(|| bootmenu::sdboot::boot_failure(&ctx.root))
        .flatten();
    let loader = if sdboot.is_some() {
        "systemd-boot"
    } else {
        "GRUB"
    };
    let failure = grub.or(sdboot);
    let kernel = failure.as_ref().map_or("unknown", |f| f.kernel.as_str());
    let attempts = failure.as_ref().map_or(0, |f| f.attempts);
    let good = running_kernel(&ctx.root);
    journal::log(
        Level::Warn,
        &Change::BootFailure {
            episode,
            kernel,
            attempts,
            good: &good,
        },
        format_args!(
            "{loader} gave up on kernel {kernel} after {attempts} attempts that never reached userspace and booted {good}'s maintenance entry"
        ),
    );
}

/// The state cannot be read (an I/O error, a FIFO put there) or locked:
/// nothing is counted or written, and this boot goes the way the early
/// decision says. Under systemd the generator took it from the early copy;
/// elsewhere it is taken here from the same copy, so that sysvinit and
/// systemd agree. Returns the early copy's state.
fn keep_early_decision(ctx: &Context, settings: &Settings, boot_id: &str, now: i64) -> State {
    let early = store::read(&ctx.root.path(paths::EARLY_STATE));
    if let Some(d) = boot_decision::read(&ctx.root, boot_id) {
        log::error!(
            "the state cannot be used: this boot stays {} as the generator decided from the early copy",
            mode_name(d.mode)
        );
        return early.state;
    }
    if let Some(p) = &early.problem {
        log::error!("{p}; this boot is a normal one");
    }
    let (cmdline, boot_failure) = read_cmdline(&ctx.root);
    let input = BootInputs {
        boot_id,
        now,
        cmdline,
        boot_failure,
        policy: settings.policy(),
    };
    let (_, outcome) = rules::boot(&early.state, &input);
    log::error!(
        "the state cannot be used: this boot is {} as decided from the early copy {}",
        mode_name(outcome.mode),
        paths::EARLY_STATE
    );
    let decision = decision(boot_id.to_string(), &outcome, DecidedBy::Boot);
    if let Err(e) = boot_decision::write(&ctx.root, &decision) {
        log::error!("{e:#}");
    }
    early.state
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Normal => "normal",
        Mode::Maintenance => "in maintenance",
    }
}

/// `umm internal clean-shutdown` and `umm internal uptime-reached`. With
/// `wait` (init systems without timers), first sleeps until the uptime
/// reaches counter_reset_time.
pub fn record_reset(ctx: &Context, cause: ResetCause, wait: bool) -> Result<Outcome> {
    let boot_id = ctx.clock.boot_id()?;
    if cause == ResetCause::UptimeReached {
        let settings = config::load_or_defaults(&ctx.root);
        let mut uptime = ctx.clock.uptime()?;
        if wait && uptime < settings.counter_reset_time {
            std::thread::sleep(
                settings.counter_reset_time - uptime + std::time::Duration::from_secs(1),
            );
            uptime = ctx.clock.uptime()?;
        }
        if uptime < settings.counter_reset_time {
            log::info!(
                "uptime {} has not reached counter_reset_time {} yet",
                format_span(uptime),
                format_span(settings.counter_reset_time)
            );
            return Ok(Outcome::Done);
        }
    }
    let mut locked = store::lock(&ctx.root)?;
    let was = locked.state.unclean_boots;
    let (next, events) = rules::record_reset(&locked.state, &boot_id, ctx.clock.now(), cause);
    save(&mut locked, next)?;
    // Records of a shutdown or of uptime reset the counter, never count.
    log_events(&events, &locked.state, 0);
    if events.is_empty() {
        log::info!("{cause} recorded (unclean-boot counter was {was})");
    }
    Ok(Outcome::Done)
}

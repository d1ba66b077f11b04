//! The init system's entry points: the boot-time decision and counting, the
//! clean-shutdown and uptime records, and the work done once maintenance is
//! reached. None of them may stop a boot: a broken configuration falls back
//! to the defaults, and failures are logged and reported in the exit status
//! of the unit, which nothing else depends on.

use std::fs;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::commands::Ctx;
use crate::config;
use crate::decide::{self, BootInputs, CmdlineRequest, Event, ResetCause};
use crate::fsread;
use crate::hooks::{self, HookPhase};
use crate::init::sysv::{self, Flavour, Sysv};
use crate::paths::{self, Root};
use crate::run::run_bounded_then;
use crate::state::{CommandRun, Maintenance, Mode, Phase, ScheduledCommand, State};
use crate::status::shell_words;
use crate::store::{self, BootDecision};
use crate::timefmt::{format_span, rfc3339};

pub fn read_cmdline(root: &Root) -> CmdlineRequest {
    CmdlineRequest::parse(&cmdline_text(root))
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

fn log_events(events: &[Event]) {
    for e in events {
        match e {
            Event::AlreadyRecorded => log::info!("this boot was already recorded; nothing to do"),
            Event::Counted(n) => {
                log::warn!("the previous boot ended uncleanly; {n} unclean boot(s) in a row")
            }
            Event::CounterReset(cause) => log::info!("unclean-boot counter reset to 0 ({cause})"),
            Event::Entered(r) => log::warn!("entering maintenance mode (reason {})", r.as_str()),
            Event::Held(r) => log::warn!(
                "maintenance mode (reason {}) holds until umm off",
                r.as_str()
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
pub fn boot(ctx: &Ctx) -> Result<ExitCode> {
    let (settings, sources, in_use, _) = config::load_logged(&ctx.root);
    let boot_id = ctx.clock.boot_id()?;
    let now = ctx.clock.now();
    let mut locked = match store::lock(&ctx.root) {
        Ok(locked) => locked,
        Err(e) => {
            keep_early_decision(ctx, &settings, &boot_id, now);
            return Err(e.context("this boot was not counted and the state was not changed"));
        }
    };
    if in_use == config::InUse::Loaded {
        locked.record_config(&settings, &sources, now);
    }
    let input = BootInputs {
        boot_id: &boot_id,
        now,
        cmdline: read_cmdline(&ctx.root),
        policy: settings.policy(),
    };
    let (next, outcome) = decide::boot(&locked.state, &input);
    let early =
        store::read_boot_decision(&ctx.root, &boot_id).filter(|d| d.decided_by == "generator");
    let (next, outcome, late) = match &early {
        Some(e) => decide::adopt_early_decision(next, outcome, e.mode, e.reason, now),
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
    locked.save(next)?;
    let state = locked.state.clone();
    drop(locked);
    log_events(&outcome.events);
    let decision = BootDecision {
        boot_id,
        mode: outcome.mode,
        reason: outcome.reason,
        decided_by: if early.is_some() { "generator" } else { "boot" }.into(),
        skipped_by_cmdline: outcome.events.contains(&Event::SkippedByCmdline),
        resumed: false,
    };
    store::write_boot_decision(&ctx.root, &decision)?;
    if outcome.mode == Mode::Maintenance {
        if let Some(m) = &state.maintenance {
            write_banners(&ctx.root, m);
        }
    }
    if late {
        log::warn!("entering maintenance late: isolating the maintenance target");
        ctx.init.enter_maintenance_late()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The state cannot be read (an I/O error, a FIFO put there) or locked:
/// nothing is counted or written, and this boot goes the way the early
/// decision says. Under systemd the generator took it from the early copy;
/// elsewhere it is taken here from the same copy, so that sysvinit and
/// systemd agree.
fn keep_early_decision(ctx: &Ctx, settings: &config::Settings, boot_id: &str, now: i64) {
    if let Some(d) = store::read_boot_decision(&ctx.root, boot_id) {
        log::error!(
            "the state cannot be used: this boot stays {} as the generator decided from the early copy",
            mode_name(d.mode)
        );
        return;
    }
    let early = store::read(&ctx.root.path(paths::EARLY_STATE));
    if let Some(p) = &early.problem {
        log::error!("{p}; this boot is a normal one");
    }
    let input = BootInputs {
        boot_id,
        now,
        cmdline: read_cmdline(&ctx.root),
        policy: settings.policy(),
    };
    let (_, outcome) = decide::boot(&early.state, &input);
    log::error!(
        "the state cannot be used: this boot is {} as decided from the early copy {}",
        mode_name(outcome.mode),
        paths::EARLY_STATE
    );
    let decision = BootDecision {
        boot_id: boot_id.to_string(),
        mode: outcome.mode,
        reason: outcome.reason,
        decided_by: "boot".into(),
        skipped_by_cmdline: outcome.events.contains(&Event::SkippedByCmdline),
        resumed: false,
    };
    if let Err(e) = store::write_boot_decision(&ctx.root, &decision) {
        log::error!("{e:#}");
    }
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
pub fn record_reset(ctx: &Ctx, cause: ResetCause, wait: bool) -> Result<ExitCode> {
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
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut locked = store::lock(&ctx.root)?;
    let was = locked.state.unclean_boots;
    let (next, events) = decide::record_reset(&locked.state, &boot_id, ctx.clock.now(), cause);
    locked.save(next)?;
    log_events(&events);
    if events.is_empty() {
        log::info!("{cause} recorded (unclean-boot counter was {was})");
    }
    Ok(ExitCode::SUCCESS)
}

fn banner(m: &Maintenance) -> String {
    let since = rfc3339(m.since.unwrap_or(m.requested));
    // Not where from: the console banner is shown before anyone logs in,
    // and the address is root's to see (`umm status`).
    let by = m
        .requested_by
        .as_ref()
        .map(|r| format!(", requested by {}", r.user))
        .unwrap_or_default();
    format!(
        "\n*** MAINTENANCE MODE (umm) ***\n\
         This node is in maintenance since {since}, reason: {}{by}.\n\
         Only networking, sshd and console logins run; the normal services are NOT started.\n\
         Leave with: umm off          (continue this boot into normal operation)\n\
         \x20       or: umm off reboot   (reboot into normal operation)\n\
         Details:    umm status\n\n",
        m.reason.as_str()
    )
}

/// The console (agetty's /run/issue.d) and ssh login (pam_motd's
/// /run/motd.d) banners; both live in /run, so they vanish with the boot.
fn write_banners(root: &Root, m: &Maintenance) {
    let text = banner(m);
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
pub fn maintenance(ctx: &Ctx) -> Result<ExitCode> {
    let settings = config::load_or_defaults(&ctx.root);
    let locked = store::lock(&ctx.root)?;
    let Some(m) = locked
        .state
        .maintenance
        .clone()
        .filter(|m| m.phase == Phase::Active)
    else {
        log::info!("not in maintenance; nothing to do");
        return Ok(ExitCode::SUCCESS);
    };
    write_banners(&ctx.root, &m);
    out!("{}", banner(&m));
    let first_time = m.command.as_ref().is_none_or(|c| c.run.is_none())
        && !m.hooks.iter().any(|h| h.phase == "on");
    if !first_time {
        return Ok(ExitCode::SUCCESS);
    }
    // The on.d hooks run once per maintenance, before the scheduled command.
    drop(locked);
    let on_hooks = hooks::run_phase(
        &ctx.root,
        HookPhase::On,
        Some(m.reason),
        &settings.hook_timeouts,
    );
    let mut locked = store::lock(&ctx.root)?;
    let mut next = locked.state.clone();
    on_episode(&mut next, m.id, |hooks, _| hooks.extend(on_hooks));
    // Decided again under the lock, from the state as it is now: `umm off`
    // may have ended this episode while the hooks ran, and then its command
    // must not start.
    let command = m.command.filter(|c| c.run.is_none());
    if command.is_some() && !decide::may_start_command(&next, m.id) {
        log::warn!(
            "maintenance ended while the on.d hooks ran (umm off): the scheduled command is not started"
        );
    }
    let Some(command) = command.filter(|_| decide::may_start_command(&next, m.id)) else {
        locked.save(next)?;
        return Ok(ExitCode::SUCCESS);
    };
    let output = ctx.root.path(paths::COMMAND_OUTPUT);
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
    // Recorded before it starts: a crash during the command must not run it again.
    locked.save(next)?;
    drop(locked);
    log::info!(
        "running the scheduled command: {}",
        shell_words(&command.argv)
    );
    let record_pid = |pid: u32| {
        let saved = store::lock(&ctx.root).and_then(|mut locked| {
            let mut next = locked.state.clone();
            on_episode(&mut next, m.id, |_, c| {
                if let Some(r) = c.and_then(|c| c.run.as_mut()) {
                    r.pid = Some(pid);
                }
            });
            locked.save(next)
        });
        if let Err(e) = saved {
            log::warn!("cannot record the scheduled command's pid {pid}: {e:#}");
        }
    };
    let result = run_command(&command.argv, &output, settings.command_timeout, record_pid);
    let mut locked = store::lock(&ctx.root)?;
    let mut next = locked.state.clone();
    let mut run = run;
    run.ended = Some(ctx.clock.now());
    match &result {
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
    set_command_run(&mut next, m.id, run);
    locked.save(next)?;
    Ok(ExitCode::SUCCESS)
}

/// Changes episode `id`'s hooks and command wherever it is now: still
/// open, or already in the history (`umm off` ended it meanwhile). Never
/// another episode's.
fn on_episode(
    state: &mut State,
    id: u64,
    change: impl FnOnce(&mut Vec<crate::hooks::HookRecord>, Option<&mut ScheduledCommand>),
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
    output: &std::path::Path,
    timeout: std::time::Duration,
    spawned: impl FnOnce(u32),
) -> Result<crate::run::Finished> {
    // The state file may have been edited by hand: never index into argv.
    let Some((program, args)) = argv.split_first() else {
        anyhow::bail!("the scheduled command is empty (argv [] in the state file)");
    };
    let out = crate::run::create_private(output)
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

/// `umm internal pause` (sysvinit and upstart): in a maintenance boot, start
/// the keep-set and the maintenance work, then hold the boot until `umm off`
/// marks it resumed. Returns at once in any other boot, and when the
/// decision is missing: a broken umm never holds a boot.
pub fn pause(ctx: &Ctx) -> Result<ExitCode> {
    let boot_id = ctx.clock.boot_id()?;
    let Some(decision) = store::read_boot_decision(&ctx.root, &boot_id) else {
        log::warn!("no decision recorded for this boot (did umm-boot run?); not pausing");
        return Ok(ExitCode::SUCCESS);
    };
    if decision.mode != Mode::Maintenance || decision.resumed {
        return Ok(ExitCode::SUCCESS);
    }
    let settings = config::load_or_defaults(&ctx.root);
    let sysv = Sysv {
        flavour: if sysv::is_upstart(&ctx.root) {
            Flavour::Upstart
        } else {
            Flavour::Sysvinit
        },
        root: ctx.root.clone(),
    };
    sysv::ignore_terminal_signals();
    log::warn!("maintenance mode: the boot waits here until `umm off` (or `umm off reboot`)");
    let mut gettys = sysv.start_keep_set(&settings.all_keep_units());
    // The banner, hooks and scheduled command run beside the wait, so that
    // `umm off` is answered at once even while the command runs.
    let worker = std::env::current_exe().and_then(|exe| {
        crate::run::command(exe)
            .args(["internal", "maintenance"])
            .stdin(Stdio::null())
            .spawn()
    });
    if let Err(e) = &worker {
        log::error!("cannot start the maintenance work: {e}");
    }
    while store::read_boot_decision(&ctx.root, &boot_id).is_some_and(|d| !d.resumed) {
        // As init's `respawn` would: a logout must not end console logins.
        gettys.supervise();
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    // Ours, by PID: init starts its own gettys for the runlevel.
    gettys.stop();
    log::info!("resumed by umm off: the boot continues into the runlevel");
    Ok(ExitCode::SUCCESS)
}

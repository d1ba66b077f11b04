//! The operator's commands: status, on, off, enable, disable. Each loads
//! what it needs, applies a rule from `decide`, saves, and tells the init
//! system what to do.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::clock::Clock;
use crate::config::{self, InUse, Settings, Sources};
use crate::decide::{self, ClaimOutcome, Leave, NotFinished, OffAction, Refusal};
use crate::grub;
use crate::hooks::{self, HookPhase, HookRecord};
use crate::init::InitSystem;
use crate::paths::{self, Root};
use crate::state::{Claim, Episode, Phase, Reason, Requester};
use crate::status::{self, shell_words};
use crate::store;
use crate::verify;

/// What every command works with: the root prefix, the clock, the init system.
pub struct Ctx {
    pub root: Root,
    pub clock: Box<dyn Clock>,
    pub init: Box<dyn InitSystem>,
}

/// A refusal: printed as one line, exit status 1.
fn refused(what: &str, r: &Refusal) -> ExitCode {
    log::warn!("refused umm {what}: {r}");
    errln!("umm {what}: refused: {r}");
    ExitCode::from(1)
}

fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("umm {what} changes the node's boot and needs root; try: sudo umm {what}");
    }
    Ok(())
}

/// Settings for commands that must work even with a broken configuration
/// (leaving maintenance, switching umm off): warn, and use what the boot
/// would use (the last configuration that loaded, or the defaults).
fn settings_or_fallback(root: &Root, what: &str) -> (Settings, Sources, bool) {
    let (settings, sources, in_use, err) = config::load_at_boot(root);
    if let Some(e) = err {
        errln!("umm {what}: warning: {e}; {}", in_use.describe());
    }
    (settings, sources, in_use == InUse::Loaded)
}

fn warn_problem(what: &str, locked: &store::Locked) {
    for p in locked.problem.iter().chain(&locked.notes) {
        errln!("umm {what}: warning: {p}");
    }
}

/// Who asked: the user behind sudo, and the ssh client's address.
fn requester() -> Requester {
    let user = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
    let from = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| c.split_whitespace().next().map(str::to_string));
    Requester {
        user,
        from,
        extra: Default::default(),
    }
}

pub fn status(ctx: &Ctx, json: bool) -> Result<ExitCode> {
    // What the boot would use: with a broken configuration, the last one
    // that loaded, or counting only.
    let (settings, sources, in_use, config_error) = config::load_at_boot(&ctx.root);
    let config_error = config_error.map(|e| e.to_string());
    let restricted = !nix::unistd::geteuid().is_root();
    let loaded = if restricted {
        read_public(&ctx.root)
    } else {
        store::read(&ctx.root.path(paths::STATE))
    };
    let this_boot = ctx
        .clock
        .boot_id()
        .ok()
        .and_then(|id| store::read_boot_decision(&ctx.root, &id));
    let menu = grub::menu_entries(&ctx.root);
    let cmdline = crate::boot::cmdline_text(&ctx.root);
    let inputs = status::Inputs {
        menu: &menu,
        cmdline_arg: grub::boot_from_entry(&cmdline),
        state: &loaded.state,
        state_problem: loaded.problem.as_deref(),
        settings: &settings,
        sources: &sources,
        config_error: config_error.as_deref(),
        config_in_use: &in_use,
        this_boot: this_boot.as_ref(),
        init: ctx.init.name(),
        restricted,
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status::to_json(&inputs))?
        );
    } else {
        outln!("{}", status::to_text(&inputs));
    }
    Ok(ExitCode::SUCCESS)
}

/// The state as a user who is not root may see it: the public summary
/// every save writes; before the first save by this umm, the public part
/// of state.json if it is readable (older umm wrote it for everyone).
fn read_public(root: &Root) -> store::Loaded {
    let public = store::read(&root.path(paths::PUBLIC_STATUS));
    if public.problem.is_some() || root.path(paths::PUBLIC_STATUS).exists() {
        return public;
    }
    let mut loaded = store::read(&root.path(paths::STATE));
    if loaded.unreadable {
        // Not readable by this user, and nothing public written yet.
        return store::Loaded::default();
    }
    loaded.state = loaded.state.public();
    loaded
}

pub fn on(ctx: &Ctx, force: bool, argv: Vec<String>) -> Result<ExitCode> {
    require_root("on")?;
    use crate::state::limits;
    if argv.len() > limits::ARGS || argv.iter().any(|a| a.len() > limits::ARG) {
        bail!(
            "umm on: the command is longer than umm keeps ({} arguments of at most {} bytes); put it in a script and schedule the script",
            limits::ARGS,
            limits::ARG
        );
    }
    let (settings, sources) = config::load(&ctx.root)?;
    // Refuse before running any hook if the request cannot be taken.
    let current = store::read(&ctx.root.path(paths::STATE)).state;
    if let Err(r) = decide::request(&current, settings.policy(), 0, None, vec![]) {
        return Ok(refused("on", &r));
    }
    let t = &settings.hook_timeouts;
    let checks = hooks::run_phase(&ctx.root, HookPhase::Check, Some(Reason::Manual), t);
    let vetoed = |f: &str| {
        format!("umm on: refused: vetoed by {f}; nothing was changed (--force overrides)")
    };
    if !hooks_allow(&checks, force, vetoed, "Overriding the failed checks") {
        return Ok(ExitCode::from(1));
    }
    let pre_on = hooks::run_phase(&ctx.root, HookPhase::PreOn, Some(Reason::Manual), t);
    let ran: Vec<_> = pre_on.iter().map(|h| h.name.as_str()).collect();
    let failed_pre_on = |f: &str| {
        format!(
            "umm on: refused: {f} failed; nothing was requested (pre-on hooks that ran: {}; undo them by hand) (--force overrides)",
            ran.join(", ")
        )
    };
    if !hooks_allow(
        &pre_on,
        force,
        failed_pre_on,
        "Going on despite the failed pre-on hooks",
    ) {
        return Ok(ExitCode::from(1));
    }
    let services_before = match ctx.init.services() {
        Ok(services) => Some(
            services
                .into_iter()
                .filter(|s| s.active == "active")
                .map(|s| s.name)
                .collect(),
        ),
        Err(e) => {
            log::warn!("cannot list the active services (verify after umm off will use the enabled ones): {e:#}");
            None
        }
    };

    let mut locked = store::lock(&ctx.root)?;
    warn_problem("on", &locked);
    locked.record_config(&settings, &sources, ctx.clock.now());
    let who = requester();
    let mut next = match decide::request(
        &locked.state,
        settings.policy(),
        ctx.clock.now(),
        Some(who.clone()),
        argv,
    ) {
        Ok(next) => next,
        Err(r) => return Ok(refused("on", &r)),
    };
    // `request` always sets the maintenance it returns.
    let mut scheduled = String::new();
    if let Some(m) = next.maintenance.as_mut() {
        m.services_before = services_before;
        m.hooks = checks.into_iter().chain(pre_on).collect();
        if let Some(c) = &m.command {
            scheduled = format!("; scheduled command: {}", shell_words(&c.argv));
        }
    }
    locked.save(next)?;
    drop(locked);
    let from = who.from.map(|f| format!(" from {f}")).unwrap_or_default();
    log::info!(
        "maintenance requested by {}{from} for the next boot{scheduled}",
        who.user
    );
    outln!("Maintenance requested{scheduled}. Rebooting cleanly into maintenance mode.");
    if let Err(e) = ctx.init.reboot() {
        log::error!("reboot into maintenance failed: {e:#}");
        bail!("{e:#}; the request is saved: reboot by hand to enter maintenance, or run `umm off` to cancel it");
    }
    Ok(ExitCode::SUCCESS)
}

/// A hook phase that may stop the command (check, pre-on, pre-off): prints
/// the failures; without --force, refuses with `refusal(failed hooks)` and
/// returns false; with it, says it goes on anyway. Both are logged.
fn hooks_allow(
    records: &[HookRecord],
    force: bool,
    refusal: impl Fn(&str) -> String,
    overriding: &str,
) -> bool {
    let failed = hooks::failed_names(records).join(", ");
    if failed.is_empty() {
        return true;
    }
    print_failures(records);
    if !force {
        let message = refusal(&failed);
        log::warn!("{message}");
        errln!("{message}");
        return false;
    }
    log::warn!("--force: {overriding}: {failed}");
    outln!("{overriding}: {failed}");
    true
}

fn print_failures(records: &[HookRecord]) {
    for r in records.iter().filter(|r| !r.ok) {
        errln!("{}/{}: {}", r.phase, r.name, r.result);
        for line in &r.output_tail {
            errln!("    {line}");
        }
    }
}

/// `umm check` and `umm on --dry-run`: the checks, and what entering would
/// do, without changing anything.
pub fn check(ctx: &Ctx, json: bool, argv: Option<Vec<String>>) -> Result<ExitCode> {
    let (settings, _) = config::load(&ctx.root)?;
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    let refusal = decide::request(&state, settings.policy(), 0, None, vec![]).err();
    let checks = if nix::unistd::geteuid().is_root() {
        hooks::run_phase(
            &ctx.root,
            HookPhase::Check,
            Some(Reason::Manual),
            &settings.hook_timeouts,
        )
    } else {
        bail!("the checks run as root; try: sudo umm check");
    };
    let keep = settings.all_keep_units();
    let stopped = ctx
        .init
        .services()
        .and_then(|all| {
            let active: Vec<String> = all
                .into_iter()
                .filter(|s| s.active == "active" && !keep.contains(&s.name))
                .map(|s| s.name)
                .collect();
            ctx.init.outside_maintenance(&active)
        })
        .map_err(|e| format!("{e:#}"));
    let allowed = refusal.is_none() && checks.iter().all(|c| c.ok);
    let argv = argv.filter(|a| !a.is_empty());
    if json {
        let v = serde_json::json!({
            "allowed": allowed,
            "refused": refusal.as_ref().map(|r| r.to_string()),
            "checks": checks,
            "services_not_running_in_maintenance": stopped.as_ref().ok(),
            "services_error": stopped.as_ref().err(),
            "keep_units": keep,
            "command": argv,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        match &refusal {
            Some(r) => outln!("Entering maintenance: refused: {r}"),
            None if allowed => outln!("Entering maintenance: allowed"),
            None => outln!(
                "Entering maintenance: vetoed by {}",
                hooks::failed_names(&checks).join(", ")
            ),
        }
        if checks.is_empty() {
            outln!("Checks: none in {}", HookPhase::Check.dir().display());
        }
        for c in checks.iter().filter(|c| c.name == hooks::WHOLE_DIR) {
            outln!(
                "Checks: cannot run: {}; this vetoes `umm on` (--force overrides)",
                c.result.trim_start_matches("refused: ")
            );
        }
        for c in checks.iter().filter(|c| c.name != hooks::WHOLE_DIR) {
            outln!(
                "Check {}: {}",
                c.name,
                if c.ok {
                    "ok".to_string()
                } else {
                    c.result.clone()
                }
            );
            if !c.ok {
                for line in &c.output_tail {
                    outln!("    {line}");
                }
            }
        }
        match &stopped {
            Ok(units) if units.is_empty() => {
                outln!("Services that would not run in maintenance: none")
            }
            Ok(units) => {
                outln!(
                    "Services that would not run in maintenance ({}):",
                    units.len()
                );
                for u in units {
                    outln!("    {u}");
                }
            }
            Err(e) => outln!("Services that would not run in maintenance: unknown ({e})"),
        }
        match &argv {
            Some(a) => outln!("Scheduled command: {}", shell_words(a)),
            None => outln!("Scheduled command: none"),
        }
    }
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `umm off` and `umm off reboot`. A pending request is cancelled at once.
/// Otherwise the episode starts leaving (phase `resuming`: pre-off hooks
/// first), or, when it is leaving already, `umm off` retries: the resume is
/// issued again (no pre-off hooks). The episode closes only once the
/// normal target is reached and the off.d hooks and the check have run,
/// by whoever gets there first (this command waiting, a retry,
/// umm-after.service, or a later boot).
pub fn off(
    ctx: &Ctx,
    action: OffAction,
    force: bool,
    wait: Option<std::time::Duration>,
) -> Result<ExitCode> {
    require_root("off")?;
    let what = if action == OffAction::Reboot {
        "off reboot"
    } else {
        "off"
    };
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, what);
    let boot_id = ctx.clock.boot_id()?;
    let current = decide::upgrade(store::read(&ctx.root.path(paths::STATE)).state);
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
    let state = decide::upgrade(locked.state.clone());
    let (next, leave) = match decide::leave(&state, ctx.clock.now(), &boot_id, action, pre_off) {
        Ok(r) => r,
        Err(r) => return Ok(refused(what, &r)),
    };
    let episode = next.maintenance.as_ref().map(|m| m.id);
    locked.save(next)?;
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
const OTHER_FINISHER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Continues the paused boot into the normal target (unless it is there
/// already), then finishes leaving and reports.
fn resume(
    ctx: &Ctx,
    settings: &Settings,
    wait: Option<std::time::Duration>,
    leave: Leave,
    episode: Option<u64>,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let boot_id = ctx.clock.boot_id()?;
    // This boot is the paused one, unless its decision says normal: then
    // `umm off` had begun in an earlier boot, and this one boots normally.
    let paused_here = store::read_boot_decision(&ctx.root, &boot_id)
        .is_none_or(|d| d.mode == crate::state::Mode::Maintenance);
    let retry = leave == Leave::Retried;
    if retry {
        log::info!("umm off again: the node is still leaving maintenance");
    }
    // A retry after the normal target was reached (the first `umm off` was
    // interrupted after it) must not isolate the running system again.
    let reached_already = retry
        && ctx
            .init
            .normal_reached(std::time::Duration::ZERO)
            .unwrap_or(false);
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
        let secs = crate::timefmt::seconds_tenths(r.elapsed);
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
    } else if !ctx
        .init
        .normal_reached(std::time::Duration::ZERO)
        .unwrap_or(false)
    {
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
fn report_running_command(ctx: &Ctx) {
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
        crate::timefmt::rfc3339(run.started)
    );
}

/// Is there a process with this PID? (signal 0 only checks.)
fn process_alive(pid: u32) -> bool {
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
struct Closed {
    episode: Episode,
    /// This process ran the off.d hooks (and printed their failures).
    finished_here: bool,
}

impl Closed {
    fn off_hooks(&self) -> impl Iterator<Item = &HookRecord> {
        self.episode.hooks.iter().filter(|h| h.phase == "off")
    }
}

enum Finish {
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
fn finish_leaving(
    ctx: &Ctx,
    settings: &Settings,
    episode: Option<u64>,
    wait_for_other: std::time::Duration,
) -> Result<Finish> {
    let pid = std::process::id();
    let me = Claim {
        boot_id: ctx.clock.boot_id()?,
        pid,
        pid_start: process_start(pid),
        since: ctx.clock.now(),
        extra: Default::default(),
    };
    let until = std::time::Instant::now() + wait_for_other;
    let m = loop {
        let mut locked = store::lock(&ctx.root)?;
        let state = decide::upgrade(locked.state.clone());
        let holder_alive = state
            .maintenance
            .as_ref()
            .and_then(|m| m.leaving.as_ref())
            .and_then(|l| l.finisher.as_ref())
            .is_some_and(claim_alive);
        match decide::claim_finish(&state, &me, holder_alive) {
            (_, ClaimOutcome::NothingToFinish) => {
                let closed = state
                    .history
                    .iter()
                    .rev()
                    .find(|e| episode.is_some_and(|id| id == e.id))
                    .cloned();
                return Ok(match closed {
                    Some(episode) => Finish::Done(Box::new(Closed {
                        episode,
                        finished_here: false,
                    })),
                    None => Finish::Nothing,
                });
            }
            (_, ClaimOutcome::HeldBy(c)) => {
                drop(locked);
                if std::time::Instant::now() >= until {
                    return Ok(Finish::HeldBy(c));
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
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
                locked.save(next)?;
                match m {
                    Some(m) => break m,
                    None => return Ok(Finish::Nothing),
                }
            }
        }
    };
    let off_hooks = hooks::run_phase(
        &ctx.root,
        HookPhase::Off,
        Some(m.reason),
        &settings.hook_timeouts,
    );
    print_failures(&off_hooks);
    let verify = match (ctx.init.services(), ctx.init.enabled_services()) {
        (Ok(now), Ok(enabled)) => Some(verify::compare(
            m.services_before.as_deref(),
            &enabled,
            &now,
        )),
        (Err(e), _) | (_, Err(e)) => {
            log::error!("cannot check that the services came back: {e:#}");
            None
        }
    };
    if let Some(v) = &verify {
        if v.ok() {
            log::info!(
                "every service came back after maintenance ({})",
                v.compared_with
            );
        } else {
            log::error!(
                "after maintenance, not running again ({}): {:?}; failed: {:?}",
                v.compared_with,
                v.not_back,
                v.failed
            );
        }
    }
    let mut locked = store::lock(&ctx.root)?;
    match decide::finish(&locked.state, &me, ctx.clock.now(), off_hooks, verify) {
        Ok(next) => {
            let episode = next.history.last().cloned();
            locked.save(next)?;
            log::info!(
                "left maintenance (reason {}): episode closed",
                m.reason.as_str()
            );
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

/// How long umm-after.service waits for the default target: it is ordered
/// after multi-user.target and graphical.target, so this is only a margin.
const AFTER_RESUME_REACH: std::time::Duration = std::time::Duration::from_secs(60);
/// How long it waits for another live finisher (`umm off` running the
/// off.d hooks) before leaving the work to it.
const AFTER_RESUME_OTHERS: std::time::Duration = std::time::Duration::from_secs(3600);

/// `umm internal after-resume` (umm-after.service, in every normal boot):
/// finishes leaving maintenance when an episode is leaving and the normal
/// target is reached; a finisher that is gone is taken over.
pub fn after_resume(ctx: &Ctx) -> Result<()> {
    let state = decide::upgrade(store::read(&ctx.root.path(paths::STATE)).state);
    if !state
        .maintenance
        .as_ref()
        .is_some_and(|m| m.phase == Phase::Resuming)
    {
        return Ok(());
    }
    if !ctx.init.normal_reached(AFTER_RESUME_REACH)? {
        log::warn!(
            "leaving maintenance is not finished: the normal target is not reached; `umm off` again (or the next boot) finishes it"
        );
        return Ok(());
    }
    let settings = config::load_or_defaults(&ctx.root);
    match finish_leaving(ctx, &settings, None, AFTER_RESUME_OTHERS)? {
        Finish::HeldBy(c) => log::warn!(
            "pid {} still runs the off.d hooks and the check; leaving the work to it",
            c.pid
        ),
        Finish::Done(_) | Finish::Nothing => {}
    }
    Ok(())
}

/// `umm history`: the last maintenance episodes, oldest first.
pub fn history(ctx: &Ctx, json: bool) -> Result<ExitCode> {
    let restricted = !nix::unistd::geteuid().is_root();
    let state = if restricted {
        read_public(&ctx.root).state
    } else {
        store::read(&ctx.root.path(paths::STATE)).state
    };
    if json {
        let v = if restricted {
            status::public_history_json(&state.history)
        } else {
            status::history_json(&state.history)
        };
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if state.history.is_empty() {
        outln!("No maintenance episodes yet.");
    }
    for e in &state.history {
        outln!("{}", status::episode_line(e));
    }
    Ok(ExitCode::SUCCESS)
}

/// Records in /run that this boot was resumed, so that the generator (run
/// again by daemon-reload) stops pointing default.target at maintenance.
fn mark_resumed(ctx: &Ctx) -> Result<()> {
    let boot_id = ctx.clock.boot_id()?;
    let mut decision =
        store::read_boot_decision(&ctx.root, &boot_id).unwrap_or(store::BootDecision {
            boot_id,
            mode: crate::state::Mode::Maintenance,
            reason: None,
            decided_by: "boot".into(),
            skipped_by_cmdline: false,
            resumed: false,
        });
    decision.resumed = true;
    store::write_boot_decision(&ctx.root, &decision)
}

pub fn remove_banners(root: &Root) {
    for banner in [paths::MOTD, paths::ISSUE] {
        let _ = std::fs::remove_file(root.path(banner));
    }
}

pub fn enable(ctx: &Ctx) -> Result<ExitCode> {
    require_root("enable")?;
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, "enable");
    if !settings.enabled {
        let r#where = sources
            .enabled_from
            .map(|(f, l)| format!(" ({}:{l})", f.display()))
            .unwrap_or_default();
        errln!(
            "umm enable: refused: the configuration disables umm{where}; set enabled = true there"
        );
        return Ok(ExitCode::from(1));
    }
    let mut locked = store::lock(&ctx.root)?;
    warn_problem("enable", &locked);
    if loaded {
        locked.record_config(&settings, &sources, ctx.clock.now());
    }
    if locked.state.switch_on {
        outln!("umm is already enabled.");
        return Ok(ExitCode::SUCCESS);
    }
    let next = decide::enable(&locked.state);
    locked.save(next)?;
    log::info!("umm enabled: unclean boots are counted from now on");
    outln!("umm enabled: unclean boots are counted and crash loops stop in maintenance.");
    refresh_boot_menu(&ctx.root);
    Ok(ExitCode::SUCCESS)
}

pub fn disable(ctx: &Ctx) -> Result<ExitCode> {
    require_root("disable")?;
    let (settings, sources, loaded) = settings_or_fallback(&ctx.root, "disable");
    let mut locked = store::lock(&ctx.root)?;
    warn_problem("disable", &locked);
    if loaded {
        locked.record_config(&settings, &sources, ctx.clock.now());
    }
    if !locked.state.switch_on {
        outln!("umm is already disabled.");
        return Ok(ExitCode::SUCCESS);
    }
    let next = match decide::disable(&locked.state) {
        Ok(next) => next,
        Err(r) => return Ok(refused("disable", &r)),
    };
    locked.save(next)?;
    log::info!("umm disabled: nothing is counted or enforced, boots are not delayed");
    outln!("umm disabled: nothing is counted or enforced, and boots are never delayed.");
    refresh_boot_menu(&ctx.root);
    Ok(ExitCode::SUCCESS)
}

/// The boot menu's umm entries follow the switch (see `[grub]
/// entries_when_disabled`): regenerate them after enable/disable.
fn refresh_boot_menu(root: &Root) {
    if !root.is_system() {
        return;
    }
    if root.path(grub::BLS_DIR).is_dir() {
        if let Err(e) = grub::bls_sync(root, false) {
            errln!("umm: warning: cannot update the boot entries: {e:#}");
        }
        return;
    }
    let update_grub = root.path("/usr/sbin/update-grub");
    if !update_grub.exists() || !root.path("/boot/grub/grub.cfg").exists() {
        return;
    }
    let mut cmd = std::process::Command::new(update_grub);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match crate::run::run_bounded(cmd, std::time::Duration::from_secs(300)) {
        Ok(f) if f.success() => outln!("Boot menu updated (update-grub)."),
        Ok(f) => errln!("umm: warning: update-grub {}; run it by hand", f.describe()),
        Err(e) => errln!("umm: warning: cannot run update-grub: {e}; run it by hand"),
    }
}

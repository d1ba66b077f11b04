//! Entering maintenance: `umm on` (the checks, the pre-on hooks, the
//! request, the reboot), and `umm check` / `umm on --dry-run` (what `umm
//! on` would do, changing nothing).

use std::process::ExitCode;

use anyhow::{bail, Result};

use super::{refused, require_root, save, warn_problem, Context};
use crate::hooks;
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::limits;
use crate::model::state::{Reason, Requester};
use crate::model::verify::ActiveState;
use crate::output::check::CheckView;
use crate::output::history::shell_words;
use crate::output::json;
use crate::rules;
use crate::sys::paths;
use crate::sys::{config, store};

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

pub fn on(ctx: &Context, force: bool, argv: Vec<String>) -> Result<ExitCode> {
    require_root("on")?;
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
    if let Err(r) = rules::request(&current, settings.policy(), 0, None, vec![]) {
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
                .filter(|s| s.active.is(ActiveState::Active))
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
    let mut next = match rules::request(
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
    save(&mut locked, next)?;
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
pub(super) fn hooks_allow(
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

pub(super) fn print_failures(records: &[HookRecord]) {
    for r in records.iter().filter(|r| !r.ok) {
        errln!("{}/{}: {}", r.phase, r.name, r.result);
        for line in &r.output_tail {
            errln!("    {line}");
        }
    }
}

/// `umm check` and `umm on --dry-run`: the checks, and what entering would
/// do, without changing anything.
pub fn check(ctx: &Context, json: bool, argv: Option<Vec<String>>) -> Result<ExitCode> {
    let (settings, _) = config::load(&ctx.root)?;
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    let refusal = rules::request(&state, settings.policy(), 0, None, vec![]).err();
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
                .filter(|s| s.active.is(ActiveState::Active) && !keep.contains(&s.name))
                .map(|s| s.name)
                .collect();
            ctx.init.outside_maintenance(&active)
        })
        .map_err(|e| format!("{e:#}"));
    let allowed = refusal.is_none() && checks.iter().all(|c| c.ok);
    let argv = argv.filter(|a| !a.is_empty());
    let (services, services_error) = match stopped {
        Ok(units) => (Some(units), None),
        Err(e) => (None, Some(e)),
    };
    let view = CheckView {
        allowed,
        refused: refusal.as_ref().map(|r| r.to_string()),
        checks,
        services_not_running_in_maintenance: services,
        services_error,
        keep_units: keep,
        command: argv,
    };
    if json {
        outln!("{}", json::pretty(&view)?);
    } else {
        outln!("{}", view.text());
    }
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! Entering maintenance: `umm on` (the checks, the pre-on hooks, the
//! request, the reboot), and `umm check` / `umm on --dry-run` (what `umm
//! on` would do, changing nothing).

use anyhow::{bail, Result};

use super::{hooks_allow, lock, refused, require_root, save, Context, Outcome};
use crate::bootmenu::{self, Counting};
use crate::hooks;
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::limits;
use crate::model::rolling::Then;
use crate::model::settings::{RebootMethod, Settings};
use crate::model::state::{Reason, Requester};
use crate::output::check::CheckView;
use crate::output::history::program_and_count;
use crate::output::json;
use crate::output::message::{say, Message, Overridden};
use crate::rules;
use crate::sys::paths;
use crate::sys::{config, store};

/// Who asked: the user behind sudo, and the ssh client's address.
pub(super) fn requester() -> Requester {
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

/// `umm on`'s options (besides COMMAND).
#[derive(Clone, Debug)]
pub struct OnOptions {
    /// Enter whatever the checks, hooks, window and gate say.
    pub force: bool,
    /// Wait up to this long for a free fleet slot.
    pub wait: Option<std::time::Duration>,
    /// What the maintenance boot does once COMMAND succeeded.
    pub then: Then,
    /// `--kexec` / `--firmware`: this reboot's method.
    pub method: Option<RebootMethod>,
}

/// `umm on`: the checks and the pre-on hooks, then the request, saved,
/// then a clean reboot into maintenance.
pub fn on(ctx: &Context, options: OnOptions, argv: Vec<String>) -> Result<Outcome> {
    let OnOptions {
        force,
        wait,
        then,
        method,
    } = options;
    require_root("on")?;
    check_command_fits(&argv)?;
    let (settings, sources) = config::load(&ctx.root)?;
    // Refuse before running any hook if the request cannot be taken.
    let current = store::read(&ctx.root.path(paths::STATE)).state;
    if let Err(r) = rules::request(&current, settings.policy(), 0, None, vec![]) {
        return Ok(refused("on", r));
    }
    // [rolling]: a window open, the health gate green (or --force).
    if !super::rolling::on_allowed(ctx, &settings, force) {
        return Ok(Outcome::Refused);
    }
    let Some(hooks) = entry_hooks(ctx, &settings, force) else {
        return Ok(Outcome::Refused);
    };
    // A slot of the fleet group, before anything is saved.
    let Some(taking) = super::fleet::take_for_on(ctx, &settings, force, wait) else {
        return Ok(Outcome::Refused);
    };
    let entry = Entry {
        rule: Rule::Request,
        who: requester(),
        argv,
        then,
        hooks,
        services_before: active_services(ctx),
    };
    match request_and_reboot(ctx, &settings, &sources, &taking, entry, method)? {
        Ok(outcome) => Ok(outcome),
        Err(refusal) => Ok(refused("on", refusal)),
    }
}

/// From the slot on, the same for `umm on` and a queued request's turn:
/// the request saved under the lock (the slot given back when it is not),
/// announced, then the reboot into maintenance. The inner error is the
/// rules' refusal (the state changed since the first check): nothing was
/// saved, and the caller says it.
pub(super) fn request_and_reboot(
    ctx: &Context,
    settings: &Settings,
    sources: &config::Sources,
    taking: &super::fleet::Taking,
    entry: Entry,
    method: Option<RebootMethod>,
) -> Result<Result<Outcome, rules::Refusal>> {
    let saved = match save_request(ctx, settings, sources, taking, entry) {
        Ok(Ok(saved)) => saved,
        Ok(Err(refusal)) => {
            super::fleet::undo_take(ctx, settings, taking);
            return Ok(Err(refusal));
        }
        Err(e) => {
            super::fleet::undo_take(ctx, settings, taking);
            return Err(e);
        }
    };
    announce_request(&saved);
    let transition = rules::reboot::Transition::Enter;
    if let Err(e) = super::reboot::planned_reboot(ctx, settings, method, transition, "on") {
        log::error!("reboot into maintenance failed: {e:#}");
        bail!("{e:#}; the request is saved: reboot by hand to enter maintenance, or run `umm off` to cancel it");
    }
    Ok(Ok(Outcome::Done))
}

/// The scheduled command must fit what the state keeps.
pub(super) fn check_command_fits(argv: &[String]) -> Result<()> {
    if argv.len() > limits::ARGS || argv.iter().any(|a| a.len() > limits::ARG) {
        bail!(
            "umm on: the command is longer than umm keeps ({} arguments of at most {} bytes); put it in a script and schedule the script",
            limits::ARGS,
            limits::ARG
        );
    }
    Ok(())
}

/// Which rule makes the request under the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rule {
    /// `umm on`: `rules::request`, with the entry's command.
    Request,
    /// A queued request's turn: `rules::queue::turn`, with the queued
    /// command and `then`.
    Turn,
}

/// What `umm on` gathered before saving: who asked, the command, the
/// pre-on hooks' records and the services running now.
pub(super) struct Entry {
    pub rule: Rule,
    pub who: Requester,
    pub argv: Vec<String>,
    pub then: Then,
    pub hooks: Vec<HookRecord>,
    pub services_before: Option<Vec<String>>,
}

/// The saved request, for the journal and the user.
struct Saved {
    who: Requester,
    episode: u64,
    command: Option<Vec<String>>,
}

/// Saves the request under the state lock (with the slot taken, if any).
/// The outer error is a failure to lock or save; the inner one a refusal
/// by the rules (the state changed since the first check). Either way the
/// caller gives the slot back, after the lock is released.
fn save_request(
    ctx: &Context,
    settings: &Settings,
    sources: &config::Sources,
    taking: &super::fleet::Taking,
    entry: Entry,
) -> Result<Result<Saved, rules::Refusal>> {
    let mut locked = lock(&ctx.root, "on")?;
    locked.record_config(settings, sources, ctx.clock.now());
    let now = ctx.clock.now();
    let who = entry.who;
    let policy = settings.policy();
    let made = match entry.rule {
        Rule::Request => rules::request(&locked.state, policy, now, Some(who.clone()), entry.argv),
        Rule::Turn => rules::queue::turn(&locked.state, policy, now, Some(who.clone())),
    };
    let mut next = match made {
        Ok(next) => next,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if let Some(slot) = taking.slot.clone() {
        next = rules::fleet::taken(&next, slot);
    }
    // `request` always sets the maintenance it returns.
    let mut command = None;
    let episode = next.maintenance.as_ref().map_or(0, |m| m.id);
    next.counters.hook_failures.add_failed(&entry.hooks);
    if let Some(m) = next.maintenance.as_mut() {
        m.services_before = entry.services_before;
        m.hooks = entry.hooks;
        m.fleet = taking.note.clone();
        if entry.rule == Rule::Request {
            m.then = entry.then;
        }
        command = m.command.as_ref().map(|c| c.argv.clone());
    }
    // (`fleet-request-save`: a test makes the save of the request fail,
    // to reach the undo of the take.)
    crate::sys::failpoint::failpoint("fleet-request-save")?;
    save(&mut locked, next)?;
    Ok(Ok(Saved {
        who,
        episode,
        command,
    }))
}

/// The journal record and the user's message for a saved request.
fn announce_request(saved: &Saved) {
    let who = &saved.who;
    let from = who
        .from
        .as_ref()
        .map(|f| format!(" from {f}"))
        .unwrap_or_default();
    let scheduled = saved
        .command
        .as_deref()
        .map(|c| format!("; scheduled command: {}", program_and_count(c)))
        .unwrap_or_default();
    crate::sys::journal::log(
        log::Level::Info,
        &crate::sys::journal::Change::Requested {
            episode: saved.episode,
            by: &who.user,
        },
        format_args!(
            "maintenance requested by {}{from} for the next boot{scheduled}",
            who.user
        ),
    );
    say(&Message::Requested {
        command: saved.command.as_deref(),
    });
}

/// The check.d hooks, then the pre-on.d hooks, each able to stop `umm on`
/// (unless --force): their records, or None when refused.
fn entry_hooks(ctx: &Context, settings: &Settings, force: bool) -> Option<Vec<HookRecord>> {
    let t = &settings.hook_timeouts;
    let reason = Some(Reason::Manual);
    let checks = hooks::run_phase(&ctx.root, HookPhase::Check, reason, t);
    let vetoed = |failed| Message::VetoedByChecks { failed };
    if !hooks_allow(&checks, force, vetoed, Overridden::Checks) {
        return None;
    }
    let pre_on = hooks::run_phase(&ctx.root, HookPhase::PreOn, reason, t);
    let ran: Vec<_> = pre_on.iter().map(|h| h.name.as_str()).collect();
    let ran = ran.join(", ");
    let failed = |failed| Message::PreOnFailed {
        failed,
        ran: ran.clone(),
    };
    if !hooks_allow(&pre_on, force, failed, Overridden::PreOn) {
        return None;
    }
    Some(checks.into_iter().chain(pre_on).collect())
}

/// The services running now, to check after `umm off` that they came back
/// (None: the init system could not say; the enabled ones are used then).
pub(super) fn active_services(ctx: &Context) -> Option<Vec<String>> {
    match ctx.init.active_services() {
        Ok(names) => Some(names),
        Err(e) => {
            log::warn!("cannot list the active services (verify after umm off will use the enabled ones): {e:#}");
            None
        }
    }
}

/// `umm check` and `umm on --dry-run`: the checks, and what entering would
/// do, without changing anything.
pub fn check(ctx: &Context, json: bool, argv: Option<Vec<String>>) -> Result<Outcome> {
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
        .active_services()
        .and_then(|active| {
            let active: Vec<String> = active.into_iter().filter(|s| !keep.contains(s)).collect();
            ctx.init.outside_maintenance(&active)
        })
        .map_err(|e| format!("{e:#}"));
    let allowed = refusal.is_none() && checks.iter().all(|c| c.ok);
    let argv = argv.filter(|a| !a.is_empty());
    let (services, services_error) = match stopped {
        Ok(units) => (Some(units), None),
        Err(e) => (None, Some(e)),
    };
    let counting = bootmenu::boot_counting(&ctx.root);
    let view = CheckView {
        allowed,
        refused: refusal.as_ref().map(|r| r.to_string()),
        checks,
        services_not_running_in_maintenance: services,
        services_error,
        keep_units: keep,
        command: argv,
        boot_loader_counting_by: counting.by(),
        boot_loader_counting_off: match counting {
            Counting::Off(why) => Some(why),
            _ => None,
        },
    };
    if json {
        outln!("{}", json::pretty(&view)?);
    } else {
        outln!("{}", view.text());
    }
    Ok(if allowed {
        Outcome::Done
    } else {
        Outcome::Refused
    })
}

//! Rolling maintenance's queue: `umm on --queue` saves a request that waits
//! on the node for its turn; `umm internal queue` (umm-queue.timer, or cron
//! without systemd) tries it every minute: the window, the health gate and
//! the check.d hooks, then a fleet slot taken without waiting. The way
//! closed: the wait is recorded, backed off with jitter. Open: the pre-on
//! hooks, then the same path as `umm on` (`enter::request_and_reboot`),
//! the request made by `rules::queue::turn` so `then` and COMMAND carry
//! over. `umm off` cancels a queued request (`cancel`).

use std::time::Duration;

use anyhow::Result;
use log::Level;

use super::enter::{
    active_services, check_command_fits, request_and_reboot, requester, Entry, Rule,
};
use super::{lock, refused, require_root, save, Context, Outcome};
use crate::hooks;
use crate::model::fleet::Backend;
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::rolling::Then;
use crate::model::settings::Settings;
use crate::model::state::{Reason, Requester, State};
use crate::model::timefmt::rfc3339;
use crate::output::message::{say, Message};
use crate::rules::queue::{self as rule, Due, Way};
use crate::rules::window;
use crate::sys::journal::{self, Change};
use crate::sys::paths;
use crate::sys::{config, localtime, store};

/// `umm on --queue`: refused as `umm on` is; else saved under the lock,
/// logged, and said. No hook, no slot, no reboot now.
pub fn enqueue(ctx: &Context, span: Duration, then: Then, argv: Vec<String>) -> Result<Outcome> {
    require_root("on")?;
    check_command_fits(&argv)?;
    let (settings, sources) = config::load(&ctx.root)?;
    let settings = &settings;
    let who = requester();
    let now = ctx.clock.now();
    let mut locked = lock(&ctx.root, "on")?;
    locked.record_config(settings, &sources, now);
    let mut next = match rule::enqueue(&locked.state, settings.policy(), now, span, then, argv) {
        Ok(next) => next,
        Err(refusal) => return Ok(refused("on", refusal)),
    };
    let expires = next.queued.as_ref().map_or(now, |q| q.expires);
    if let Some(q) = next.queued.as_mut() {
        q.by = Some(who.user.clone());
        q.from = who.from.clone();
    }
    save(&mut locked, next)?;
    drop(locked);
    let then = then_word(then);
    journal::log(
        Level::Info,
        &Change::Queued {
            by: &who.user,
            then,
        },
        format_args!(
            "maintenance queued by {} until {} (then: {then})",
            who.user,
            rfc3339(expires)
        ),
    );
    say(&Message::Queued {
        waits: what_it_waits_for(settings),
        expires: rfc3339(expires),
    });
    Ok(Outcome::Done)
}

fn then_word(then: Then) -> &'static str {
    match then {
        Then::Stay => "stay",
        Then::Off => "off",
        Then::Reboot => "reboot",
    }
}

/// What a queued request waits for under these settings, for the user.
fn what_it_waits_for(settings: &Settings) -> String {
    let mut parts = Vec::new();
    if !settings.rolling.windows.is_empty() {
        parts.push("an open maintenance window".to_string());
    }
    if settings.rolling.gate_url.is_some() {
        parts.push("a green health gate".to_string());
    }
    parts.push("passing check.d hooks".to_string());
    if settings.fleet.backend != Backend::None {
        parts.push(format!(
            "a free slot of fleet group {:?}",
            settings.fleet.group
        ));
    }
    parts.join(", ")
}

/// `umm off` with a queued request and no maintenance: cancels it. None:
/// nothing queued (or the node is in maintenance: `umm off` leaves it).
pub(super) fn cancel(ctx: &Context, command: &str) -> Result<Option<Outcome>> {
    let peek = store::read(&ctx.root.path(paths::STATE)).state;
    if peek.queued.is_none() || peek.maintenance.is_some() {
        return Ok(None);
    }
    let mut locked = lock(&ctx.root, command)?;
    if locked.state.queued.is_none() || locked.state.maintenance.is_some() {
        return Ok(None);
    }
    let next = rule::cancel(&locked.state);
    save(&mut locked, next)?;
    drop(locked);
    journal::log(
        Level::Info,
        &Change::QueueCancelled,
        format_args!("queued maintenance request cancelled by umm {command}"),
    );
    say(&Message::QueueCancelled);
    Ok(Some(Outcome::Done))
}

/// `umm internal queue`: nothing queued, or backing off: exit 0 at once
/// (the state file read, no network). Expired: ended, counted, logged.
/// Due: one try (`try_turn`). Runs never overlap.
pub fn run(ctx: &Context) -> Result<Outcome> {
    require_root("internal queue")?;
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    match rule::due(&state, ctx.clock.now()) {
        Due::Nothing | Due::NotYet => return Ok(Outcome::Done),
        Due::Expired | Due::Now => {}
    }
    let Some(_running) = store::try_lock(&ctx.root, paths::QUEUE_LOCK)? else {
        log::info!("queue: another umm internal queue is running; this one ends");
        return Ok(Outcome::Done);
    };
    let (settings, sources) = config::load(&ctx.root)?;
    if rule::due(&state, ctx.clock.now()) == Due::Expired {
        return expire(ctx);
    }
    try_turn(ctx, &settings, &sources)
}

/// The span is over: the request ends unserved, counted
/// (`umm_queue_expired_total`) and logged with what it waited for.
fn expire(ctx: &Context) -> Result<Outcome> {
    let mut locked = lock(&ctx.root, "internal queue")?;
    if rule::due(&locked.state, ctx.clock.now()) != Due::Expired {
        return Ok(Outcome::Done);
    }
    let why = locked
        .state
        .queued
        .as_ref()
        .map(|q| q.waiting_for.join("; "))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "no try was made".into());
    let mut next = rule::expire(&locked.state);
    next.counters.queue_expired = next.counters.queue_expired.saturating_add(1);
    save(&mut locked, next)?;
    drop(locked);
    journal::log(
        Level::Warn,
        &Change::QueueExpired { why: &why },
        format_args!("queued maintenance expired unserved; it last waited for: {why}"),
    );
    say(&Message::QueueExpired { why });
    Ok(Outcome::Done)
}

/// One try: the way (window, gate, check.d hooks), the slot, the pre-on
/// hooks; any closed is a wait. All open: the request's turn, as `umm on`.
fn try_turn(ctx: &Context, settings: &Settings, sources: &config::Sources) -> Result<Outcome> {
    let (waits, checks) = way(ctx, settings);
    if !waits.is_empty() {
        return wait(ctx, waits);
    }
    let taking = match super::fleet::take_for_queue(ctx, settings) {
        Ok(taking) => taking,
        Err(why) => return wait(ctx, vec![format!("slot: {why}")]),
    };
    let pre_on = run_hooks(ctx, settings, HookPhase::PreOn);
    let failed = hooks::failed_names(&pre_on);
    if !failed.is_empty() {
        super::fleet::undo_take(ctx, settings, &taking);
        say(&Message::HookFailures(&pre_on));
        return wait(ctx, vec![format!("{} failed", failed.join(", "))]);
    }
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    let queued = state.queued.unwrap_or_else(queued_gone);
    let entry = Entry {
        rule: Rule::Turn,
        who: match queued.by.clone() {
            Some(user) => Requester {
                user,
                from: queued.from.clone(),
                extra: Default::default(),
            },
            None => requester(),
        },
        argv: queued.argv.clone().unwrap_or_default(),
        then: queued.then,
        hooks: checks.into_iter().chain(pre_on).collect(),
        services_before: active_services(ctx),
    };
    match request_and_reboot(ctx, settings, sources, &taking, entry, None)? {
        Ok(outcome) => Ok(outcome),
        Err(refusal) => dropped(ctx, &refusal.to_string()),
    }
}

/// A stand-in when the request left the queue between the checks and its
/// turn (`umm off` meanwhile): `turn` then refuses under the lock, and
/// the take is undone.
fn queued_gone() -> crate::model::rolling::Queued {
    crate::model::rolling::Queued {
        since: 0,
        expires: 0,
        then: Then::Stay,
        argv: None,
        tries: 0,
        next_try: 0,
        waiting_for: Vec::new(),
        by: None,
        from: None,
        extra: Default::default(),
    }
}

/// What stands in the way now, one line each (window, gate, check.d), and
/// the check.d records for the episode. The gate and the hooks are asked
/// only inside a window.
fn way(ctx: &Context, settings: &Settings) -> (Vec<String>, Vec<HookRecord>) {
    // The group's halt first: a node that halted the roll keeps everyone
    // out, whatever the window and the gate say (one bounded read of etcd;
    // an error counts as halted).
    let halt = super::halt::roll_halted(ctx, settings);
    let (window_open, next_window, window_error) = window_now(ctx, settings);
    let gate = (window_open && halt.is_none()).then(|| super::rolling::gate(settings));
    let way = Way {
        halted: halt
            .as_ref()
            .map(|(node, why)| (node.as_str(), why.as_str())),
        window_open,
        next_window,
        gate: gate.as_ref(),
        slot_holders: None,
    };
    let mut waits = rule::waits_for(&way);
    if let Some(e) = window_error {
        waits = vec![e];
    }
    if !waits.is_empty() {
        return (waits, Vec::new());
    }
    let checks = run_hooks(ctx, settings, HookPhase::Check);
    let failed = hooks::failed_names(&checks);
    if !failed.is_empty() {
        waits.push(format!("{} failed", failed.join(", ")));
    }
    (waits, checks)
}

/// Whether a window is open now, when the next opens, and why none can
/// be placed (the zone unreadable: closed).
fn window_now(ctx: &Context, settings: &Settings) -> (bool, Option<i64>, Option<String>) {
    let windows = &settings.rolling.windows;
    if windows.is_empty() {
        return (true, None, None);
    }
    let tz = match localtime::zone(&ctx.root) {
        Ok(tz) => tz,
        Err(e) => {
            let why = format!("window: none can be placed: {e}");
            return (false, None, Some(why));
        }
    };
    let now = ctx.clock.now();
    if window::open(windows, now, &tz) {
        return (true, None, None);
    }
    (false, window::next_open(windows, now, &tz), None)
}

fn run_hooks(ctx: &Context, settings: &Settings, phase: HookPhase) -> Vec<HookRecord> {
    let reason = Some(Reason::Manual);
    hooks::run_phase(&ctx.root, phase, reason, &settings.hook_timeouts)
}

/// The way is closed: the try is recorded (`rules::queue::waited`, backed
/// off with jitter), logged and said.
fn wait(ctx: &Context, waits: Vec<String>) -> Result<Outcome> {
    let joined = waits.join("; ");
    let mut locked = lock(&ctx.root, "internal queue")?;
    let next = rule::waited(&locked.state, ctx.clock.now(), waits, fastrand::f64());
    let next_try = next.queued.as_ref().map(|q| q.next_try);
    save(&mut locked, next)?;
    drop(locked);
    let next = next_try.map_or_else(|| "none (no longer queued)".into(), rfc3339);
    say(&Message::QueueWaiting {
        waits: joined,
        next,
    });
    Ok(Outcome::Done)
}

/// Its turn came but `umm on`'s rules refuse it now (disabled, a crash
/// loop meanwhile): the request is dropped, and why is logged and said.
fn dropped(ctx: &Context, why: &str) -> Result<Outcome> {
    let mut locked = lock(&ctx.root, "internal queue")?;
    if locked.state.queued.is_none() {
        log::info!("queue: the request left the queue before its turn (umm off); nothing entered");
        return Ok(Outcome::Done);
    }
    let next: State = rule::cancel(&locked.state);
    save(&mut locked, next)?;
    drop(locked);
    journal::log(
        Level::Warn,
        &Change::QueueDropped { why },
        format_args!("queued maintenance dropped at its turn: {why}"),
    );
    say(&Message::QueueDropped { why: why.into() });
    Ok(Outcome::Refused)
}

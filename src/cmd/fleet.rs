//! Fleet coordination from the commands: `umm on` takes a slot of the
//! node's group before the request is saved (`take_for_on`); the finisher
//! of leaving, and `umm off` cancelling a request, give it back
//! (`release_owed`); a release that fails stays owed in the state and is
//! tried again at every boot and every `umm` run as root (`retry_owed`),
//! and by `umm internal fleet-retry` every 10 minutes (umm-fleet-retry.timer,
//! or cron without systemd) until it lands (`retry_pending`);
//! a crash-loop maintenance boot tries, bounded, to take one
//! (`take_in_crash_loop`); `umm fleet status` and `umm fleet release`.
//!
//! With `backend = "none"` (the default) nothing here talks to anything.

use std::time::{Duration, Instant};

use anyhow::Result;
use log::Level;

use super::{lock, read_public, refused, require_root, save, Context, Outcome, EXIT_LATER};
use crate::fleet::{self, Coordinator, FleetError, Listing, Released, Taken};
use crate::model::fleet::{escaped, Backend, FleetSettings};
use crate::model::settings::Settings;
use crate::model::state::{FleetAttempt, FleetNote, FleetSlot, Phase, State};
use crate::model::timefmt::{format_span, seconds_tenths};
use crate::output::fleet::{FleetView, LocalView};
use crate::output::json;
use crate::output::message::{say, Message};
use crate::rules;
use crate::sys::journal::{self, Change};
use crate::sys::paths;
use crate::sys::{config, store};

/// A coordinator, and this node's id in its group.
type WithId = (Box<dyn Coordinator>, String);

/// The coordinator the settings name, and this node's id in the group
/// (`None`: `backend = "none"`).
fn coordinator(ctx: &Context, settings: &FleetSettings) -> Result<Option<WithId>, FleetError> {
    let Some(c) = fleet::from_settings(settings)? else {
        return Ok(None);
    };
    let id = fleet::node_id(settings, &ctx.root)?;
    Ok(Some((c, id)))
}

fn slot_of(c: &dyn Coordinator, id: &str, now: i64) -> FleetSlot {
    FleetSlot {
        backend: c.backend().name().into(),
        group: c.group().into(),
        id: id.into(),
        since: now,
        extra: Default::default(),
    }
}

/// What `umm on` goes on with.
pub(super) struct Taking {
    /// The slot held for this maintenance.
    pub slot: Option<FleetSlot>,
    /// Taken by this run (to give back if the request is not saved).
    pub newly: bool,
    /// For the episode.
    pub note: Option<FleetNote>,
    /// The fleet lock, held from the take until the request is saved or
    /// undone (dropped with the Taking).
    pub _fleet_lock: Option<FleetLock>,
}

type FleetLock = nix::fcntl::Flock<std::fs::File>;

fn note(slot: bool, forced: bool, detail: String) -> Option<FleetNote> {
    Some(FleetNote {
        slot,
        forced,
        detail,
        extra: Default::default(),
    })
}

/// `umm on`: after the checks and the pre-on hooks, before the request is
/// saved, a slot of the group. `None`: refused (said); nothing changed.
pub(super) fn take_for_on(
    ctx: &Context,
    settings: &Settings,
    force: bool,
    wait: Option<Duration>,
) -> Option<Taking> {
    let (c, id) = match coordinator(ctx, &settings.fleet) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Some(no_slot(None)),
        Err(e) if force => return Some(forced(e.to_string(), format!("--force: no slot ({e})"))),
        Err(e) => {
            refused("on", format!("{e}; nothing was changed"));
            return None;
        }
    };
    let started = Instant::now();
    let mut attempt = 0u32;
    // What a take without an answer left (said when refused): a release
    // owed, or, when that could not be recorded, what gives it back.
    let mut unanswered: Option<String> = None;
    loop {
        let why = match take_once(ctx, settings, c.as_ref(), &id, &mut unanswered) {
            Ok(taking) => return Some(taking),
            Err(why) => why,
        };
        let why = match &unanswered {
            Some(note) => format!("{why}; {note}"),
            None => why,
        };
        let left = wait.map(|w| w.saturating_sub(started.elapsed()));
        match left {
            Some(left) if !left.is_zero() => {
                pause_before_next_take(c.group(), &why, attempt, left);
                attempt = attempt.saturating_add(1);
            }
            _ if force => return Some(forced(why.clone(), format!("--force: no slot ({why})"))),
            _ => {
                refuse_on(&why, wait.is_some(), unanswered.is_some());
                return None;
            }
        }
    }
}

/// A queued request's turn (`umm internal queue`): one take, never
/// waiting, with the same intent-before-take rule as `umm on`'s. `Err`:
/// why no slot was had (the holders when the group is full), for the
/// request's wait; nothing is said as a refusal.
pub(super) fn take_for_queue(ctx: &Context, settings: &Settings) -> Result<Taking, String> {
    let (c, id) = match coordinator(ctx, &settings.fleet) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Ok(no_slot(None)),
        Err(e) => return Err(e.to_string()),
    };
    let mut unanswered: Option<String> = None;
    take_once(ctx, settings, c.as_ref(), &id, &mut unanswered).map_err(|why| match unanswered {
        Some(note) => format!("{why}; {note}"),
        None => why,
    })
}

/// No slot, and nothing to give back: no fleet, or `--force` without one.
fn no_slot(note: Option<FleetNote>) -> Taking {
    Taking {
        slot: None,
        newly: false,
        note,
        _fleet_lock: None,
    }
}

/// `--force`: into maintenance without a slot (said).
fn forced(why: String, detail: String) -> Taking {
    say(&Message::FleetForced { why });
    no_slot(note(false, true, detail))
}

/// `--wait`: says why, then sleeps before the next try.
fn pause_before_next_take(group: &str, why: &str, attempt: u32, left: Duration) {
    let pause = rules::fleet::backoff(attempt, fastrand::f64(), left);
    say(&Message::FleetWaiting {
        group,
        why: why.to_string(),
        next_in: format!("{}s", seconds_tenths(pause)),
        left: format_span(left),
    });
    log::info!("fleet: waiting: {why}");
    std::thread::sleep(pause);
}

/// The refusal of `umm on` when no slot was had.
fn refuse_on(why: &str, waited: bool, unanswered: bool) {
    let hint = if waited {
        "the wait is over; try again later, or --force to enter without a slot"
    } else {
        "try again later, --wait to wait for a slot, or --force to enter without one"
    };
    let changed = if unanswered {
        ""
    } else {
        "; nothing was changed"
    };
    refused("on", format!("{why}; {hint}{changed}"));
}

/// Applies `change` to the state under its lock, saved if it changed
/// anything.
fn update(ctx: &Context, change: impl FnOnce(&State) -> State) -> Result<()> {
    let mut locked = store::lock(&ctx.root)?;
    let next = change(&locked.state);
    if next != locked.state {
        save(&mut locked, next)?;
    }
    Ok(())
}

/// One try: under the fleet lock, the take is recorded as "may hold"
/// (saved) before it is sent, then settled by its answer. `Err`: why no
/// slot was had.
fn take_once(
    ctx: &Context,
    settings: &Settings,
    c: &dyn Coordinator,
    id: &str,
    unanswered: &mut Option<String>,
) -> Result<Taking, String> {
    // One talk with the coordinator at a time on this node (see
    // store::fleet_lock): held through the save of the request, let go
    // while waiting. What this node holds is read under it.
    let fleet_lock = match store::fleet_lock(&ctx.root, fleet::lock_wait(&settings.fleet)) {
        Err(e) => return Err(format!("{e:#}")),
        Ok(None) => {
            return Err(format!(
                "another umm on this node is talking to the coordinator ({})",
                paths::FLEET_LOCK
            ))
        }
        Ok(Some(fleet_lock)) => fleet_lock,
    };
    let group = c.group().to_string();
    let slot = slot_of(c, id, ctx.clock.now());
    let held_before = store::read(&ctx.root.path(paths::STATE)).state.fleet.held;
    // The intent first: a kill from here on leaves "may hold" for the
    // reconcile, never a slot granted and recorded nowhere.
    update(ctx, |s| rules::fleet::intend(s, slot.clone()))
        .map_err(|e| format!("the take could not be recorded before it was sent ({e:#})"))?;
    crate::sys::failpoint::failpoint("fleet-take-sent")
        .map_err(|e| format!("fleet group {group:?}: {e}"))?;
    match c.take(id) {
        Ok(taken) if taken.is_held() => {
            crate::sys::failpoint::failpoint("fleet-take-answered")
                .map_err(|e| format!("fleet group {group:?}: {e}"))?;
            Ok(granted(c, slot, held_before, taken, fleet_lock))
        }
        Ok(refusal) => {
            forget_intent(ctx, &slot);
            Err(match refusal {
                Taken::Refused(r) => format!("no free slot in fleet group {group:?}: {r}"),
                _ => "no slot".to_string(),
            })
        }
        Err(e) => {
            take_unanswered(ctx, c, slot, held_before.is_some(), &e, unanswered);
            Err(format!("fleet group {group:?}: {e}"))
        }
    }
}

/// The take was granted: the slot, kept recorded as "may hold" until the
/// request is saved with it (or the take undone).
fn granted(
    c: &dyn Coordinator,
    slot: FleetSlot,
    held_before: Option<FleetSlot>,
    taken: Taken,
    fleet_lock: FleetLock,
) -> Taking {
    let already = matches!(taken, Taken::AlreadyHeld);
    say(&Message::FleetTaken {
        group: &slot.group,
        backend: c.backend().name(),
        id: &slot.id,
        already,
    });
    journal::log(
        Level::Info,
        &Change::FleetSlotTaken {
            group: &slot.group,
            id: &slot.id,
        },
        format_args!("fleet: slot of group {:?} taken as {}", slot.group, slot.id),
    );
    let detail = format!(
        "slot of group {:?} ({}) as {}",
        slot.group,
        c.backend().name(),
        slot.id
    );
    // A slot the state did not hold is this run's to give back if the
    // request is not saved (also when etcd says it was held already: a
    // slot leaked by an earlier run).
    let newly = held_before.is_none();
    let slot = held_before
        .filter(|h| rules::fleet::same_slot(h, &slot))
        .unwrap_or(slot);
    Taking {
        _fleet_lock: Some(fleet_lock),
        slot: Some(slot),
        newly,
        note: note(true, false, detail),
    }
}

/// The take was refused or never reached the coordinator: the intent is
/// dropped (if that save fails, the intent stays and the next reconcile
/// gives back a slot not held: harmless).
fn forget_intent(ctx: &Context, slot: &FleetSlot) {
    if let Err(e) = update(ctx, |s| rules::fleet::not_taken(s, slot)) {
        log::warn!("fleet: the take of group {:?} stays recorded as \"may hold\" ({e:#}); the next reconcile settles it", slot.group);
    }
}

/// A take that failed. One that may have reached the coordinator (its
/// answer lost) is given back at once (bounded); when that fails too, it
/// is owed. One that never reached it (refused connection, DNS, TLS, the
/// read before etcd's transaction) changed nothing: an outage owes nothing.
fn take_unanswered(
    ctx: &Context,
    c: &dyn Coordinator,
    slot: FleetSlot,
    held_before: bool,
    e: &FleetError,
    unanswered: &mut Option<String>,
) {
    if held_before || !e.may_have_applied() {
        forget_intent(ctx, &slot);
        return;
    }
    let Err(r) = c.release(&slot.id) else {
        forget_intent(ctx, &slot);
        return;
    };
    let id = slot.id.clone();
    let error = format!("take: {e}; release: {r}");
    let note = match owe_unanswered(ctx, slot, &error) {
        true => OWED.to_string(),
        false => format!("if the take landed, the slot is held and could not be recorded as owed: `umm fleet release --id {id}` gives it back"),
    };
    // Once owed, it stays owed (until a take succeeds).
    if unanswered.as_deref() != Some(OWED) {
        *unanswered = Some(note);
    }
}

/// What the refusal of `umm on` says when a take went unanswered and its
/// release failed too.
const OWED: &str = "if the take landed, the slot is owed back and retried (umm status shows it)";

/// A take of `slot` got no answer and the release tried at once failed:
/// the slot is owed back (`rules::fleet::take_unanswered`), saved, logged.
/// True when the state owes a release of it now.
fn owe_unanswered(ctx: &Context, slot: FleetSlot, error: &str) -> bool {
    let recorded = store::lock(&ctx.root).and_then(|mut locked| {
        let next =
            rules::fleet::take_unanswered(&locked.state, slot.clone(), ctx.clock.now(), error);
        let owed = next
            .fleet
            .pending_release
            .as_ref()
            .is_some_and(|p| rules::fleet::same_slot(&p.slot, &slot));
        if next != locked.state {
            save(&mut locked, next)?;
        }
        Ok(owed)
    });
    match recorded {
        Ok(true) => {
            journal::log(
                Level::Warn,
                &Change::FleetReleasePending {
                    group: &slot.group,
                    id: &slot.id,
                    error,
                },
                format_args!(
                    "fleet: a take of group {:?} got no answer and could not be given back; if it landed, the slot ({}) is owed back: {error}",
                    slot.group, slot.id
                ),
            );
            true
        }
        Ok(false) => {
            log::warn!(
                "fleet: a take of group {:?} got no answer and could not be given back, and the state cannot owe it (it holds a slot or owes another release): {error}; if the take landed, `umm fleet release --id {}` gives it back",
                slot.group, slot.id
            );
            false
        }
        Err(e) => {
            log::warn!(
                "fleet: a take of group {:?} got no answer and could not be given back, and the debt could not be saved ({e:#}): {error}; if the take landed, `umm fleet release --id {}` gives it back",
                slot.group, slot.id
            );
            false
        }
    }
}

/// Gives back a slot this run took for a request that was not saved. A
/// release that fails leaves the slot owed (saved); when even that cannot
/// be saved, the take stays recorded as "may hold" and the next reconcile
/// gives it back.
pub(super) fn undo_take(ctx: &Context, settings: &Settings, taking: &Taking) {
    let Some(slot) = taking.slot.as_ref() else {
        return;
    };
    if !taking.newly {
        // Held before this run: still held, as the state says.
        forget_intent(ctx, slot);
        return;
    }
    let failed = crate::sys::failpoint::failpoint("fleet-undo")
        .map_err(|e| e.to_string())
        .and_then(|()| release_slot(ctx, &settings.fleet, slot));
    let Err(error) = failed else {
        forget_intent(ctx, slot);
        return;
    };
    let now = ctx.clock.now();
    match update(ctx, |s| rules::fleet::undo_failed(s, slot.clone(), now, &error)) {
        Ok(()) => journal::log(
            Level::Warn,
            &Change::FleetReleasePending {
                group: &slot.group,
                id: &slot.id,
                error: &error,
            },
            format_args!("fleet: the slot taken for a request not saved could not be given back; owed, retried: {error}"),
        ),
        Err(e) => log::warn!(
            "fleet: the slot taken for a request not saved could not be given back ({error}) nor recorded as owed ({e:#}); it stays recorded as \"may hold\" and the next reconcile gives it back"
        ),
    }
}

/// Where `release_owed` says what happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loud {
    /// The command's own result (`umm off`, `umm fleet release`).
    Stdout,
    /// Beside another command's output (its JSON stays clean).
    Stderr,
    /// Logged only (boot).
    Quiet,
}

/// Tries once (bounded by the timeout) to give back the slot the state
/// owes, and records the outcome. Says what happened when `loud`. True
/// when nothing is owed any more.
pub(super) fn release_owed(ctx: &Context, settings: &Settings, loud: Loud) -> Result<bool> {
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    let Some(first) = state.fleet.pending_release else {
        return Ok(true);
    };
    let Some(_fleet_lock) = store::fleet_lock(&ctx.root, fleet::lock_wait(&settings.fleet))? else {
        fleet_busy(&first.slot.group, loud);
        return Ok(false);
    };
    release_owed_locked(ctx, settings, loud)
}

/// Another run holds the fleet lock: the release waits for a later run.
fn fleet_busy(group: &str, loud: Loud) {
    let error = format!(
        "another umm is talking to the coordinator ({}); the release is tried again later",
        paths::FLEET_LOCK
    );
    log::info!("fleet: {error}");
    if loud != Loud::Quiet {
        say(&Message::FleetReleasePending { group, error });
    }
}

/// `release_owed` with the fleet lock held by the caller.
fn release_owed_locked(ctx: &Context, settings: &Settings, loud: Loud) -> Result<bool> {
    // Read again under the fleet lock: a take may have made the release
    // moot meanwhile (rules::fleet::taken drops it).
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    let Some(owed) = state.fleet.pending_release.clone() else {
        return Ok(true);
    };
    let slot = owed.slot;
    let result = crate::sys::failpoint::failpoint("fleet-release-sent")
        .map_err(|e| e.to_string())
        .and_then(|()| release_slot(ctx, &settings.fleet, &slot));
    crate::sys::failpoint::failpoint("fleet-release-answered")?;
    let mut locked = store::lock(&ctx.root)?;
    match result {
        Ok(()) => {
            let next = rules::fleet::released(&locked.state, &slot);
            save(&mut locked, next)?;
            said_released(&slot, loud);
            Ok(true)
        }
        Err(error) => {
            let next = rules::fleet::release_failed(&locked.state, &slot, ctx.clock.now(), &error);
            save(&mut locked, next)?;
            journal::log(
                Level::Warn,
                &Change::FleetReleasePending {
                    group: &slot.group,
                    id: &slot.id,
                    error: &error,
                },
                format_args!("fleet: release pending: {error}"),
            );
            if loud != Loud::Quiet {
                say(&Message::FleetReleasePending {
                    group: &slot.group,
                    error,
                });
            }
            Ok(false)
        }
    }
}

/// A release landed (and was saved): logged, and said where `loud` says.
fn said_released(slot: &FleetSlot, loud: Loud) {
    journal::log(
        Level::Info,
        &Change::FleetSlotReleased {
            group: &slot.group,
            id: &slot.id,
        },
        format_args!(
            "fleet: slot of group {:?} given back ({})",
            slot.group, slot.id
        ),
    );
    match loud {
        Loud::Stdout => say(&Message::FleetReleased {
            group: &slot.group,
            id: &slot.id,
        }),
        Loud::Stderr => say(&Message::FleetReleasedLate {
            group: &slot.group,
            id: &slot.id,
        }),
        Loud::Quiet => {}
    }
}

/// The reconcile: a take not settled (its run killed, its answer lost)
/// counts as held; a node in service holding or maybe holding a slot owes
/// it back; then what is owed is tried once, and a halt call not settled
/// (`cmd::halt`) is sent once. Reads only the state when nothing is
/// unsettled or owed (no request at all); else one release and one halt
/// call at most. True when nothing is owed any more.
pub(super) fn reconcile(ctx: &Context, settings: &Settings, loud: Loud) -> Result<bool> {
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    if !rules::fleet::needs_reconcile(&state) {
        return Ok(true);
    }
    // Under the fleet lock: no take of this node is in flight, so an
    // intent recorded is one whose run is gone.
    let Some(_fleet_lock) = store::fleet_lock(&ctx.root, fleet::lock_wait(&settings.fleet))? else {
        fleet_busy(&settings.fleet.group, loud);
        return Ok(false);
    };
    let mut locked = store::lock(&ctx.root)?;
    let next = rules::fleet::reconcile(&locked.state, ctx.clock.now());
    if next != locked.state {
        log::info!(
            "fleet: reconcile: a take not settled or a slot held by a node in service is settled"
        );
        save(&mut locked, next)?;
    }
    drop(locked);
    let released = release_owed_locked(ctx, settings, loud)?;
    Ok(super::halt::settle_locked(ctx, settings)? && released)
}

/// One release of `slot`, with the settings' coordinator (its group and
/// back-end must still be the slot's).
fn release_slot(ctx: &Context, settings: &FleetSettings, slot: &FleetSlot) -> Result<(), String> {
    if settings.backend.name() != slot.backend {
        return Err(format!(
            "the slot was taken from {} but fleet.backend is {:?} now; set it back, or give the slot back on the coordinator by hand",
            slot.backend,
            settings.backend.name()
        ));
    }
    let for_slot = FleetSettings {
        group: slot.group.clone(),
        id: Some(slot.id.clone()),
        ..settings.clone()
    };
    match coordinator(ctx, &for_slot) {
        Ok(Some((c, id))) => c.release(&id).map(|_| ()).map_err(|e| e.to_string()),
        Ok(None) => Err("no fleet back-end is configured".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Every `umm` command run as root: a release still owed is tried again
/// (quietly unless it lands: one line either way on stderr/stdout).
pub fn retry_owed(ctx: &Context) {
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    if !rules::fleet::needs_reconcile(&state) {
        return;
    }
    let settings = config::load_or_defaults(&ctx.root);
    if let Err(e) = reconcile(ctx, &settings, Loud::Stderr) {
        log::warn!("fleet: retrying the pending release: {e:#}");
    }
}

/// At boot (umm-after.service, once the normal target is reached): a
/// release still owed is tried a few times, spaced out, bounded.
pub(super) fn retry_owed_at_boot(ctx: &Context, settings: &Settings) {
    const PAUSES: [Duration; 3] = [
        Duration::ZERO,
        Duration::from_secs(3),
        Duration::from_secs(10),
    ];
    for pause in PAUSES {
        std::thread::sleep(pause);
        match reconcile(ctx, settings, Loud::Quiet) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                log::warn!("fleet: retrying the pending release: {e:#}");
                return;
            }
        }
    }
}

/// The longest one timer run waits for the coordinator, whatever
/// `[fleet] timeout` says: with the lock's wait (30 s) it stays inside
/// umm-fleet-retry.service's TimeoutStartSec=5min, so a run always ends by
/// itself and records why, rather than being killed.
pub const RETRY_CALL_MAX: Duration = Duration::from_secs(4 * 60);

/// `umm internal fleet-retry` (umm-fleet-retry.timer every 10 minutes, or
/// cron): with no release pending, ends at once (exit 0) having read only
/// the state file: normal nodes never talk to the coordinator. Otherwise
/// one release, bounded by `[fleet] timeout` (at most `RETRY_CALL_MAX`),
/// with the configuration umm would boot with (the last good one if
/// umm.toml is broken): exit 0 once it landed, `EXIT_LATER` (75) while it
/// is still pending. Runs never overlap (a second one ends at once).
pub fn retry_pending(ctx: &Context) -> Result<Outcome> {
    require_root("internal fleet-retry")?;
    let loaded = store::read(&ctx.root.path(paths::STATE));
    if !rules::fleet::needs_reconcile(&loaded.state) {
        return Ok(Outcome::Done);
    }
    let Some(_running) = store::try_lock(&ctx.root, paths::FLEET_RETRY_LOCK)? else {
        log::info!("fleet: another umm internal fleet-retry is running; this one ends");
        return Ok(Outcome::Done);
    };
    let mut settings = config::load_or_defaults(&ctx.root);
    settings.fleet.timeout = settings.fleet.timeout.min(RETRY_CALL_MAX);
    let started = Instant::now();
    // Logged either way by release_owed (journal: given back, or pending
    // with the coordinator's error), which is what the timer's run shows.
    if reconcile(ctx, &settings, Loud::Quiet)? {
        log::info!(
            "fleet: pending release done in {}s",
            seconds_tenths(started.elapsed())
        );
        Ok(Outcome::Done)
    } else {
        log::warn!(
            "fleet: release still pending after {}s; tried again in about 10 minutes (exit {EXIT_LATER})",
            seconds_tenths(started.elapsed())
        );
        Ok(Outcome::Later)
    }
}

/// A crash-loop maintenance boot: one bounded try to take a slot, so the
/// group knows this node is out; the result is recorded for `umm status`.
/// Never a reason to leave maintenance, nor to wait. The take is recorded
/// before it is sent and settled by its answer like `umm on`'s: a slot
/// granted (or maybe granted: the answer lost) is held while the node is
/// in maintenance, and given back at once if `umm off` closed the episode
/// meanwhile.
pub(super) fn take_in_crash_loop(ctx: &Context, settings: &Settings) -> Result<()> {
    if settings.fleet.backend == Backend::None {
        return Ok(());
    }
    let Some(_fleet_lock) = store::fleet_lock(&ctx.root, fleet::lock_wait(&settings.fleet))? else {
        log::info!(
            "fleet: crash-loop maintenance: another umm is talking to the coordinator; no take"
        );
        return Ok(());
    };
    let state = store::read(&ctx.root.path(paths::STATE)).state;
    if state.fleet.held.is_some() {
        return Ok(());
    }
    let now = ctx.clock.now();
    let (c, id) = match coordinator(ctx, &settings.fleet) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Ok(()),
        Err(e) => return record_crash_loop_take(ctx, None, "failed", e.to_string()).map(|_| ()),
    };
    let slot = slot_of(c.as_ref(), &id, now);
    update(ctx, |s| rules::fleet::intend(s, slot.clone()))?;
    crate::sys::failpoint::failpoint("fleet-take-sent")?;
    let (result, detail, may_hold) = match c.take(&id) {
        Ok(t) if t.is_held() => (
            "granted",
            format!("slot of group {:?} taken as {id}", c.group()),
            true,
        ),
        Ok(Taken::Refused(r)) => ("refused", r.to_string(), false),
        Ok(_) => ("refused", "no slot".into(), false),
        Err(e) if e.may_have_applied() => ("unanswered", format!("{e}; counted as held"), true),
        Err(e) => ("failed", e.to_string(), false),
    };
    crate::sys::failpoint::failpoint("fleet-take-answered")?;
    let settled = if may_hold { Some(slot) } else { None };
    if record_crash_loop_take(ctx, settled.as_ref(), result, detail)? {
        release_owed_locked(ctx, settings, Loud::Quiet)?;
    }
    Ok(())
}

/// Saves the outcome of a crash-loop take (`slot`: held or maybe held;
/// else the intent is dropped). True when the slot is owed back (the
/// episode closed meanwhile: the node is in service).
fn record_crash_loop_take(
    ctx: &Context,
    slot: Option<&FleetSlot>,
    result: &str,
    detail: String,
) -> Result<bool> {
    let now = ctx.clock.now();
    match slot {
        Some(slot) => journal::log(
            Level::Info,
            &Change::FleetSlotTaken {
                group: &slot.group,
                id: &slot.id,
            },
            format_args!("fleet: crash-loop maintenance: take {result}: {detail}"),
        ),
        None => log::info!("fleet: crash-loop maintenance: take {result}: {detail}"),
    }
    let mut locked = store::lock(&ctx.root)?;
    let mut next = match slot {
        Some(slot) => {
            rules::fleet::reconcile(&rules::fleet::taken(&locked.state, slot.clone()), now)
        }
        None => match locked.state.fleet.taking.clone() {
            Some(t) => rules::fleet::not_taken(&locked.state, &t),
            None => locked.state.clone(),
        },
    };
    next.fleet.last_attempt = Some(FleetAttempt {
        at: now,
        result: result.into(),
        detail,
        extra: Default::default(),
    });
    let owed = slot.is_some() && next.fleet.pending_release.is_some();
    save(&mut locked, next)?;
    Ok(owed)
}

/// `umm fleet status`: the group as the coordinator tells it, and this
/// node's part (any user; without a readable key file, the local part).
pub fn status(ctx: &Context, as_json: bool) -> Result<Outcome> {
    let (settings, _, _, config_error) = config::load_at_boot(&ctx.root);
    let root = nix::unistd::geteuid().is_root();
    let state = if root {
        store::read(&ctx.root.path(paths::STATE)).state
    } else {
        read_public(&ctx.root).state
    };
    let id = fleet::node_id(&settings.fleet, &ctx.root).ok();
    let local = LocalView::new(&settings.fleet, id.as_deref(), &state);
    let (group, error) = if settings.fleet.backend == Backend::None {
        (None, None)
    } else {
        match coordinator(ctx, &settings.fleet).and_then(|c| match c {
            Some((c, _)) => c.status().map(Some),
            None => Ok(None),
        }) {
            Ok(g) => (g, None),
            Err(e) => (None, Some(e.to_string())),
        }
    };
    let error = error.or(config_error.map(|e| e.to_string()));
    let failed = error.is_some();
    let view = FleetView::new(&settings.fleet, local, group, error);
    if as_json {
        outln!("{}", json::pretty(&view)?);
    } else {
        outln!("{}", view.text());
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}

/// `umm fleet release [--id ID] [--force]`: gives back this node's slot
/// (kept after a check that was not clean, owed, or not settled), or a
/// dead node's. This node's is refused while its own maintenance is
/// pending, in force or being left (another node could then enter while
/// this one is out), unless `force`.
pub fn release(ctx: &Context, other: Option<String>, force: bool) -> Result<Outcome> {
    require_root("fleet release")?;
    let (settings, _) = config::load(&ctx.root)?;
    if settings.fleet.backend == Backend::None {
        return Ok(refused(
            "fleet release",
            "no fleet back-end is configured ([fleet] backend in umm.toml)",
        ));
    }
    if let Some(id) = other {
        return Ok(release_other(ctx, &settings.fleet, &id));
    }
    // Under the fleet lock: no take of this node is in flight.
    let Some(_fleet_lock) = store::fleet_lock(&ctx.root, fleet::lock_wait(&settings.fleet))? else {
        return Ok(refused(
            "fleet release",
            format!(
                "another umm on this node is talking to the coordinator ({}); try again",
                paths::FLEET_LOCK
            ),
        ));
    };
    let mut locked = lock(&ctx.root, "fleet release")?;
    if let Some(m) = locked.state.maintenance.as_ref().filter(|_| !force) {
        let phase = match m.phase {
            Phase::Pending => "requested",
            Phase::Active => "in force",
            Phase::Resuming => "being left",
        };
        return Ok(refused(
            "fleet release",
            format!("this node's maintenance is {phase}: giving its slot back now would let another node of the group in while this one is out; `umm off` gives it back once the node is back in service, or --force to give it back anyway"),
        ));
    }
    // What it holds or may hold becomes owed, then one try.
    let now = ctx.clock.now();
    let mut next = rules::fleet::give_up(&locked.state, now);
    if let Some(t) = next.fleet.taking.clone() {
        next = rules::fleet::give_up(&rules::fleet::taken(&next, t), now);
    }
    if next.fleet.pending_release.is_none() {
        // Nothing recorded: release the configured id anyway (idempotent).
        if let Ok(Some((c, id))) = coordinator(ctx, &settings.fleet) {
            next = rules::fleet::taken(&next, slot_of(c.as_ref(), &id, now));
            next = rules::fleet::give_up(&next, now);
        }
    }
    // The roll this node halted goes on: in the same save.
    let next = super::halt::unhalted(ctx, &settings, &next);
    save(&mut locked, next)?;
    drop(locked);
    let released = release_owed_locked(ctx, &settings, Loud::Stdout)?;
    super::halt::settle_locked(ctx, &settings)?;
    Ok(if released {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// `umm fleet release --id ID`: a dead node's slot. Where the coordinator
/// lists its holders (etcd), an id that holds nothing is refused, and so
/// is a release that freed nothing: a mistyped id must not look like the
/// dead node's slot given back.
fn release_other(ctx: &Context, settings: &FleetSettings, id: &str) -> Outcome {
    let for_id = FleetSettings {
        id: Some(id.to_string()),
        ..settings.clone()
    };
    let c = match coordinator(ctx, &for_id) {
        Ok(Some((c, _))) => c,
        Ok(None) => return refused("fleet release", "no fleet back-end is configured"),
        Err(e) => return refused("fleet release", e),
    };
    let holds_none = |holders: &[String]| {
        let listed = if holders.is_empty() {
            "none".to_string()
        } else {
            let shown: Vec<String> = holders.iter().map(|h| escaped(h)).collect();
            shown.join(", ")
        };
        format!(
            "{id} holds no slot in group {:?}; holders: {listed}",
            c.group()
        )
    };
    let holders = match c.status().map(|s| s.listing) {
        Ok(Listing::Stored { holders, .. }) => Some(holders.into_iter().map(|h| h.id).collect()),
        Ok(Listing::NotCreated { .. }) => Some(Vec::new()),
        Ok(Listing::Unlisted { .. }) => None,
        Err(e) => return refused("fleet release", e),
    };
    if let Some(holders) = holders.as_deref().filter(|h| !h.iter().any(|h| h == id)) {
        return refused("fleet release", holds_none(holders));
    }
    match c.release(id) {
        Ok(Released::NotHeld) => refused("fleet release", holds_none(&holders.unwrap_or_default())),
        Ok(_) => {
            say(&Message::FleetReleased {
                group: c.group(),
                id,
            });
            Outcome::Done
        }
        Err(e) => refused("fleet release", e),
    }
}

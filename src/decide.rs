//! The rules, as pure functions from a `State` (and inputs) to a new `State`.
//! No I/O, no clock: every input is a parameter, so the tables in the tests
//! below cover the counting rules exhaustively.
//!
//! The counting rules (README, "Counting rules"):
//! - A boot whose previous boot did not end with a clean shutdown, and did
//!   not reach `counter_reset_time` of uptime, is unclean: the counter of
//!   consecutive unclean boots goes up by one.
//! - A clean shutdown or reboot, or `counter_reset_time` of uptime, resets
//!   the counter to 0.
//! - When a boot finds the counter greater than `reboot_count`, that boot
//!   stops in maintenance, reason crash-loop.
//! - Maintenance, once entered for any reason, holds until `umm off`.
//!
//! Leaving is a transaction (`leave`, `claim_finish`, `finish`): `umm off`
//! puts the episode in phase `resuming`, and it stays open until the
//! normal target is reached and one finisher has run the off.d hooks and
//! the check; a boot that finds it `resuming` boots normally and finishes
//! it there.

use crate::hooks::HookRecord;
use crate::state::{
    BootRecord, Claim, Episode, LastBoot, Leaving, Maintenance, Mode, Phase, Reason, Requester,
    ScheduledCommand, State, MAX_UNCLEAN_RECORDS,
};
use crate::verify::VerifyResult;

pub use crate::state::OffAction;

/// Finished episodes kept for `umm history`.
pub const MAX_HISTORY: usize = 20;

/// What the site configuration says, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `enabled` in umm.toml (the site's policy; the operator's switch is in the state).
    pub enabled: bool,
    pub reboot_count: u32,
}

/// What the kernel command line asks of this boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CmdlineRequest {
    #[default]
    None,
    /// `umm` or `umm=on`: maintenance for this boot (reason cmdline).
    On,
    /// `umm=off`: no maintenance this boot; pending requests are kept.
    Off,
}

impl CmdlineRequest {
    /// Reads the `umm` argument from a kernel command line. The last one wins,
    /// as with other kernel arguments.
    pub fn parse(cmdline: &str) -> CmdlineRequest {
        let mut found = CmdlineRequest::None;
        for word in cmdline.split_ascii_whitespace() {
            match word {
                "umm" | "umm=on" | "umm=1" | "umm=yes" => found = CmdlineRequest::On,
                "umm=off" | "umm=0" | "umm=no" => found = CmdlineRequest::Off,
                _ => {}
            }
        }
        found
    }
}

pub struct BootInputs<'a> {
    pub boot_id: &'a str,
    /// Wall-clock time, for the record only (never for counting).
    pub now: i64,
    pub cmdline: CmdlineRequest,
    pub policy: Policy,
}

/// Something that happened, for the system log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The boot had been recorded already (a second run in the same boot).
    AlreadyRecorded,
    /// The previous boot was unclean; the counter is now this.
    Counted(u32),
    /// The counter went back to 0.
    CounterReset(ResetCause),
    /// Maintenance entered this boot.
    Entered(Reason),
    /// Maintenance entered on an earlier boot still holds.
    Held(Reason),
    /// `umm=off` on the kernel command line skipped maintenance this boot.
    SkippedByCmdline,
    /// umm is disabled: nothing counted, nothing enforced.
    Disabled,
    /// `umm off` had begun leaving in an earlier boot and the normal target
    /// was not reached there: this boot is normal and finishes it.
    StillLeaving(Reason),
    /// A boot that had to stop in maintenance again found an episode still
    /// leaving: that episode is closed as "interrupted".
    LeavingInterrupted(Reason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetCause {
    CleanShutdown,
    UptimeReached,
    Disabled,
    Off,
}

impl std::fmt::Display for ResetCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResetCause::CleanShutdown => "clean shutdown",
            ResetCause::UptimeReached => "uptime reached counter_reset_time",
            ResetCause::Disabled => "umm disabled",
            ResetCause::Off => "umm off",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootOutcome {
    pub mode: Mode,
    /// Why this boot is a maintenance boot.
    pub reason: Option<Reason>,
    pub events: Vec<Event>,
}

pub fn effective_enabled(state: &State, policy: Policy) -> bool {
    policy.enabled && state.switch_on
}

/// The boot-time decision: counts the previous boot and decides whether
/// this boot stops in maintenance. Running it twice in one boot (same boot
/// id) changes nothing and returns the same mode.
pub fn boot(state: &State, input: &BootInputs) -> (State, BootOutcome) {
    if let Some(last) = state
        .last_boot
        .as_ref()
        .filter(|b| b.boot_id == input.boot_id)
    {
        let reason = match last.mode {
            Mode::Maintenance => state.maintenance.as_ref().map(|m| m.reason),
            Mode::Normal => None,
        };
        let outcome = BootOutcome {
            mode: last.mode,
            reason,
            events: vec![Event::AlreadyRecorded],
        };
        return (state.clone(), outcome);
    }

    let mut s = state.clone();
    let mut events = Vec::new();
    let enabled = effective_enabled(&s, input.policy);
    let previous_unclean = s
        .last_boot
        .as_ref()
        .filter(|b| !b.clean_shutdown && !b.reset_reached)
        .map(|b| BootRecord {
            boot_id: b.boot_id.clone(),
            started: b.started,
            extra: Default::default(),
        });

    if !enabled {
        if s.unclean_boots > 0 {
            events.push(Event::CounterReset(ResetCause::Disabled));
        }
        reset_counter(&mut s);
        events.push(Event::Disabled);
    } else if let Some(previous) = previous_unclean {
        s.unclean_boots = s.unclean_boots.saturating_add(1);
        s.unclean_records.push(previous);
        let excess = s.unclean_records.len().saturating_sub(MAX_UNCLEAN_RECORDS);
        s.unclean_records.drain(..excess);
        events.push(Event::Counted(s.unclean_boots));
    } else if s.unclean_boots > 0 {
        // Normally reset when the clean shutdown was recorded; kept here so a
        // state written by hand or by an older umm cannot carry a stale count.
        reset_counter(&mut s);
    }

    // An episode `umm off` began leaving in an earlier boot (interrupted, or
    // `umm off reboot`): this boot is normal and finishes it, unless this
    // boot must stop in maintenance anyway (then that episode is over).
    let mut leaving = false;
    if let Some(m) = s.maintenance.take_if(|m| m.phase == Phase::Resuming) {
        let again = enabled
            && (input.cmdline == CmdlineRequest::On
                || (input.cmdline == CmdlineRequest::None
                    && s.unclean_boots > input.policy.reboot_count));
        if again {
            events.push(Event::LeavingInterrupted(m.reason));
            close(&mut s, m, input.now, "interrupted", None);
        } else {
            events.push(Event::StillLeaving(m.reason));
            s.maintenance = Some(m);
            leaving = true;
        }
    }

    let (mode, reason) = if leaving {
        (Mode::Normal, None)
    } else if !enabled {
        // Never delay a boot while disabled; a request (if any) keeps waiting.
        if let Some(m) = s.maintenance.as_mut() {
            m.phase = Phase::Pending;
        }
        (Mode::Normal, None)
    } else if input.cmdline == CmdlineRequest::Off {
        if let Some(m) = s.maintenance.as_mut() {
            m.phase = Phase::Pending;
            events.push(Event::SkippedByCmdline);
        } else if s.unclean_boots > input.policy.reboot_count {
            events.push(Event::SkippedByCmdline);
        }
        (Mode::Normal, None)
    } else if let Some(m) = s.maintenance.as_mut() {
        if m.phase == Phase::Active && m.since.is_some() {
            events.push(Event::Held(m.reason));
        } else {
            events.push(Event::Entered(m.reason));
        }
        m.phase = Phase::Active;
        m.since.get_or_insert(input.now);
        (Mode::Maintenance, Some(m.reason))
    } else if input.cmdline == CmdlineRequest::On {
        s.maintenance = Some(entered(&mut s, Reason::Cmdline, input.now, Vec::new()));
        events.push(Event::Entered(Reason::Cmdline));
        (Mode::Maintenance, Some(Reason::Cmdline))
    } else if s.unclean_boots > input.policy.reboot_count {
        let crash_boots = s.unclean_records.clone();
        s.maintenance = Some(entered(&mut s, Reason::CrashLoop, input.now, crash_boots));
        events.push(Event::Entered(Reason::CrashLoop));
        (Mode::Maintenance, Some(Reason::CrashLoop))
    } else {
        (Mode::Normal, None)
    };

    s.last_boot = Some(LastBoot {
        boot_id: input.boot_id.to_string(),
        started: input.now,
        mode,
        clean_shutdown: false,
        reset_reached: false,
        extra: Default::default(),
    });
    (
        s,
        BootOutcome {
            mode,
            reason,
            events,
        },
    )
}

/// The systemd generator decided this boot's target from the early copy of
/// the state, before /var was mounted. When the full state disagrees (the
/// copy was stale or missing), the boot already heading for maintenance is
/// recorded as a maintenance boot (the safe direction); a boot heading for
/// the normal target must enter maintenance late: the third value is true.
pub fn adopt_early_decision(
    mut state: State,
    mut outcome: BootOutcome,
    early_mode: Mode,
    early_reason: Option<Reason>,
    now: i64,
) -> (State, BootOutcome, bool) {
    match (early_mode, outcome.mode) {
        (Mode::Maintenance, Mode::Normal) => {
            let reason = early_reason.unwrap_or(Reason::Cmdline);
            match state.maintenance.as_mut() {
                // The copy missed an `umm off` (it was not refreshed): the
                // same episode goes on, in force again.
                Some(m) => {
                    m.phase = Phase::Active;
                    m.leaving = None;
                    m.since.get_or_insert(now);
                }
                None => {
                    let crash_boots = state.unclean_records.clone();
                    state.maintenance = Some(entered(&mut state, reason, now, crash_boots));
                }
            }
            if let Some(last) = state.last_boot.as_mut() {
                last.mode = Mode::Maintenance;
            }
            outcome.mode = Mode::Maintenance;
            outcome.reason = Some(reason);
            outcome.events.push(Event::Entered(reason));
            (state, outcome, false)
        }
        (Mode::Normal, Mode::Maintenance) => (state, outcome, true),
        _ => (state, outcome, false),
    }
}

/// A new episode's id.
fn next_episode(s: &mut State) -> u64 {
    s.episodes = s.episodes.saturating_add(1);
    s.episodes
}

fn entered(s: &mut State, reason: Reason, now: i64, crash_boots: Vec<BootRecord>) -> Maintenance {
    Maintenance {
        id: next_episode(s),
        phase: Phase::Active,
        reason,
        requested: now,
        since: Some(now),
        requested_by: None,
        command: None,
        crash_boots,
        services_before: None,
        hooks: Vec::new(),
        leaving: None,
        extra: Default::default(),
    }
}

/// Moves an episode to the history (bounded), ended at `now` as `end`.
fn close(s: &mut State, m: Maintenance, now: i64, end: &str, verify: Option<VerifyResult>) {
    s.history.push(Episode {
        id: m.id,
        reason: m.reason,
        requested: m.requested,
        since: m.since,
        ended: now,
        requested_by: m.requested_by,
        command: m.command,
        end: end.to_string(),
        hooks: m.hooks,
        verify,
        extra: Default::default(),
    });
    let excess = s.history.len().saturating_sub(MAX_HISTORY);
    s.history.drain(..excess);
}

fn reset_counter(s: &mut State) {
    s.unclean_boots = 0;
    s.unclean_records.clear();
}

/// Marks the running boot `boot_id` as ended by a clean shutdown or reboot
/// (`ResetCause::CleanShutdown`) or as having reached `counter_reset_time`
/// of uptime (`ResetCause::UptimeReached`), and resets the counter.
pub fn record_reset(
    state: &State,
    boot_id: &str,
    now: i64,
    cause: ResetCause,
) -> (State, Vec<Event>) {
    let mut s = state.clone();
    let mut events = Vec::new();
    if s.unclean_boots > 0 {
        events.push(Event::CounterReset(cause));
    }
    reset_counter(&mut s);
    let last = match s.last_boot.as_mut().filter(|b| b.boot_id == boot_id) {
        Some(last) => last,
        // The boot-time run did not record this boot (it failed, or umm was
        // installed during it): record it now so the next boot sees it.
        None => s.last_boot.insert(LastBoot {
            boot_id: boot_id.to_string(),
            started: now,
            mode: Mode::Normal,
            clean_shutdown: false,
            reset_reached: false,
            extra: Default::default(),
        }),
    };
    match cause {
        ResetCause::CleanShutdown => last.clean_shutdown = true,
        ResetCause::UptimeReached => last.reset_reached = true,
        ResetCause::Disabled | ResetCause::Off => {}
    }
    (s, events)
}

/// Why a command was refused; each says what to do instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    DisabledByPolicy,
    DisabledBySwitch,
    AlreadyPending,
    AlreadyInMaintenance,
    NotInMaintenance,
    DisableInMaintenance,
    StillLeaving,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::DisabledByPolicy => {
                "umm is disabled by the configuration (enabled = false); set enabled = true first"
            }
            Refusal::DisabledBySwitch => "umm is disabled; run `umm enable` first",
            Refusal::AlreadyPending => {
                "maintenance is already requested for the next boot; `umm off` cancels the request"
            }
            Refusal::AlreadyInMaintenance => {
                "the node is already in maintenance; `umm off` resumes normal operation"
            }
            Refusal::NotInMaintenance => "the node is not in maintenance and none is pending",
            Refusal::DisableInMaintenance => {
                "maintenance is pending or in force; run `umm off` first, then `umm disable`"
            }
            Refusal::StillLeaving => {
                "the node is still leaving maintenance (umm status: resuming); run `umm off` to finish leaving first"
            }
        })
    }
}

/// `umm on`: asks for maintenance at the next boot.
pub fn request(
    state: &State,
    policy: Policy,
    now: i64,
    requested_by: Option<Requester>,
    argv: Vec<String>,
) -> Result<State, Refusal> {
    if !policy.enabled {
        return Err(Refusal::DisabledByPolicy);
    }
    if !state.switch_on {
        return Err(Refusal::DisabledBySwitch);
    }
    match state.maintenance.as_ref().map(|m| m.phase) {
        Some(Phase::Pending) => return Err(Refusal::AlreadyPending),
        Some(Phase::Active) => return Err(Refusal::AlreadyInMaintenance),
        Some(Phase::Resuming) => return Err(Refusal::StillLeaving),
        None => {}
    }
    let mut s = state.clone();
    s.maintenance = Some(Maintenance {
        id: next_episode(&mut s),
        phase: Phase::Pending,
        reason: Reason::Manual,
        requested: now,
        since: None,
        requested_by,
        command: (!argv.is_empty()).then_some(ScheduledCommand {
            argv,
            run: None,
            extra: Default::default(),
        }),
        crash_boots: Vec::new(),
        services_before: None,
        hooks: Vec::new(),
        leaving: None,
        extra: Default::default(),
    });
    Ok(s)
}

/// What `umm off` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// Only a request was pending: it is cancelled and the episode closed.
    Cancelled,
    /// Maintenance was in force: the episode is now `resuming`.
    Started,
    /// The episode was `resuming` already: `umm off` again (the pre-off
    /// hooks are not run again; the resume is re-issued).
    Retried,
}

/// `umm off` (and `umm off reboot`): cancels a pending request at once;
/// otherwise starts leaving, or retries it: the episode stays open, phase
/// `resuming`, until `finish`. Clears the counter. `pre_off` are the
/// pre-off hooks run before (none on a retry).
pub fn leave(
    state: &State,
    now: i64,
    boot_id: &str,
    action: OffAction,
    pre_off: Vec<HookRecord>,
) -> Result<(State, Leave), Refusal> {
    let mut s = state.clone();
    let mut m = s.maintenance.take().ok_or(Refusal::NotInMaintenance)?;
    m.hooks.extend(pre_off);
    let leave = match (m.phase, m.leaving.as_mut()) {
        (Phase::Pending, _) => {
            close(&mut s, m, now, "cancelled", None);
            reset_counter(&mut s);
            return Ok((s, Leave::Cancelled));
        }
        (Phase::Resuming, Some(l)) => {
            l.action = action;
            l.last_try = now;
            l.tries = l.tries.saturating_add(1);
            l.boot_id = boot_id.to_string();
            Leave::Retried
        }
        // Active, or a hand-edited `resuming` without its record.
        (Phase::Active | Phase::Resuming, _) => {
            m.leaving = Some(Leaving {
                action,
                started: now,
                last_try: now,
                tries: 1,
                boot_id: boot_id.to_string(),
                finisher: None,
                extra: Default::default(),
            });
            Leave::Started
        }
    };
    m.phase = Phase::Resuming;
    s.maintenance = Some(m);
    reset_counter(&mut s);
    if let Some(last) = s.last_boot.as_mut().filter(|b| b.boot_id == boot_id) {
        // The rest of this boot is a normal one.
        last.mode = Mode::Normal;
    }
    Ok((s, leave))
}

/// Who may run the off.d hooks and the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// `me` is the finisher now; `took_over` names a gone finisher before.
    Claimed { took_over: Option<Claim> },
    /// A live process finishes it.
    HeldBy(Claim),
    /// No episode is leaving (already closed, or none).
    NothingToFinish,
}

/// Claims the work left when an episode is leaving: at most one finisher.
/// A claim made in another boot is gone; one in this boot is gone when
/// `holder_alive` (its process, checked by the caller) is false.
pub fn claim_finish(state: &State, me: &Claim, holder_alive: bool) -> (State, ClaimOutcome) {
    let mut s = state.clone();
    let Some(leaving) = s
        .maintenance
        .as_mut()
        .filter(|m| m.phase == Phase::Resuming)
        .and_then(|m| m.leaving.as_mut())
    else {
        return (s, ClaimOutcome::NothingToFinish);
    };
    let took_over = match leaving.finisher.take() {
        Some(c) if &c == me => None,
        Some(c) if c.boot_id == me.boot_id && holder_alive => {
            leaving.finisher = Some(c.clone());
            return (s, ClaimOutcome::HeldBy(c));
        }
        other => other,
    };
    leaving.finisher = Some(me.clone());
    (s, ClaimOutcome::Claimed { took_over })
}

/// Why `finish` changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFinished {
    /// The episode was closed meanwhile.
    Closed,
    /// Another finisher took the work over (this one was thought gone).
    TakenOver,
}

/// The finisher `me` ran the off.d hooks and the check: the episode
/// closes ("resumed" or "rebooted") with their results.
pub fn finish(
    state: &State,
    me: &Claim,
    now: i64,
    off_hooks: Vec<HookRecord>,
    verify: Option<VerifyResult>,
) -> Result<State, NotFinished> {
    let mut s = state.clone();
    let mut m = s
        .maintenance
        .take_if(|m| m.phase == Phase::Resuming)
        .ok_or(NotFinished::Closed)?;
    let Some(leaving) = m.leaving.take().filter(|l| l.finisher.as_ref() == Some(me)) else {
        return Err(NotFinished::TakenOver);
    };
    m.hooks.extend(off_hooks);
    close(&mut s, m, now, leaving.action.end(), verify);
    Ok(s)
}

/// Reads a state written by umm before episodes stayed open while
/// leaving: work it left in `after_resume` becomes its last episode,
/// reopened in phase `resuming`, so that the same finisher does it.
pub fn upgrade(state: State) -> State {
    let mut s = state;
    let Some(after) = s.after_resume.take() else {
        return s;
    };
    if s.maintenance.is_some() {
        return s;
    }
    let Some(e) = s.history.pop() else {
        return s;
    };
    let action = if e.end == "rebooted" {
        OffAction::Reboot
    } else {
        OffAction::Resume
    };
    s.maintenance = Some(Maintenance {
        id: e.id,
        phase: Phase::Resuming,
        reason: after.reason,
        requested: e.requested,
        since: e.since,
        requested_by: e.requested_by,
        command: e.command,
        crash_boots: Vec::new(),
        services_before: after.services_before,
        hooks: e.hooks,
        leaving: Some(Leaving {
            action,
            started: e.ended,
            last_try: e.ended,
            tries: 1,
            boot_id: String::new(),
            finisher: None,
            extra: Default::default(),
        }),
        extra: Default::default(),
    });
    s
}

/// Is the scheduled command of episode `id` still to be started? Checked
/// under the lock right before starting it: only while that episode is
/// open and in force (not after `umm off`, not for a later episode).
pub fn may_start_command(state: &State, id: u64) -> bool {
    state.maintenance.as_ref().is_some_and(|m| {
        m.id == id
            && m.phase == Phase::Active
            && m.command.as_ref().is_some_and(|c| c.run.is_none())
    })
}

/// `umm disable`: the operator's switch off; the counter starts again from
/// zero when it is switched back on.
pub fn disable(state: &State) -> Result<State, Refusal> {
    // An episode that is leaving does not hold the switch: it finishes
    // whether umm is enabled or not.
    if state
        .maintenance
        .as_ref()
        .is_some_and(|m| m.phase != Phase::Resuming)
    {
        return Err(Refusal::DisableInMaintenance);
    }
    let mut s = state.clone();
    s.switch_on = false;
    reset_counter(&mut s);
    Ok(s)
}

/// `umm enable`: the operator's switch on.
pub fn enable(state: &State) -> State {
    let mut s = state.clone();
    s.switch_on = true;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const POLICY: Policy = Policy {
        enabled: true,
        reboot_count: 2,
    };

    fn claim(boot_id: &str, pid: u32) -> Claim {
        Claim {
            boot_id: boot_id.into(),
            pid,
            pid_start: Some(1),
            since: 0,
            extra: Default::default(),
        }
    }

    /// The finisher in boot `boot_id` claims and finishes what is leaving.
    fn finished(state: &State, boot_id: &str, now: i64) -> State {
        let me = claim(boot_id, 1);
        let (state, outcome) = claim_finish(state, &me, false);
        assert!(
            matches!(outcome, ClaimOutcome::Claimed { .. }),
            "{outcome:?}"
        );
        finish(&state, &me, now, vec![], None).expect("finish")
    }

    /// What happens to a boot, as a letter in a scenario string:
    /// `C` ends cleanly, `X` crashes before the reset time, `U` crashes after
    /// reaching the reset time, `O` is a boot where the operator runs
    /// `umm off` (the episode is left, then finished) then crashes, `D` runs `umm disable` then crashes, `E` runs
    /// `umm enable` then crashes, `N` runs `umm on` then reboots cleanly.
    /// Every letter is one boot; the result is the mode of every boot.
    fn run(script: &str, policy: Policy, cmdline: CmdlineRequest) -> (State, String) {
        let mut state = State::default();
        let mut modes = String::new();
        for (i, step) in script.chars().enumerate() {
            let id = format!("boot-{i}");
            let now = 1000 * i as i64;
            let input = BootInputs {
                boot_id: &id,
                now,
                cmdline,
                policy,
            };
            let (next, outcome) = boot(&state, &input);
            state = next;
            modes.push(match outcome.mode {
                Mode::Normal => 'n',
                Mode::Maintenance => 'M',
            });
            match step {
                'C' => state = record_reset(&state, &id, now + 1, ResetCause::CleanShutdown).0,
                'X' => {}
                'U' => state = record_reset(&state, &id, now + 1, ResetCause::UptimeReached).0,
                'O' => {
                    state = leave(&state, now + 1, &id, OffAction::Resume, vec![])
                        .expect("off")
                        .0;
                    state = finished(&state, &id, now + 2);
                }
                'D' => state = disable(&state).expect("disable"),
                'E' => state = enable(&state),
                'N' => {
                    state = request(&state, policy, now, None, vec![]).expect("on");
                    state = record_reset(&state, &id, now + 1, ResetCause::CleanShutdown).0;
                }
                other => panic!("unknown step {other}"),
            }
        }
        (state, modes)
    }

    #[rstest]
    // Clean reboots never count.
    #[case::clean_in_a_row("CCCCCC", "nnnnnn", 0)]
    // Crashes within the window: the 3rd unclean boot (counter 3 > 2) stops.
    #[case::crash_loop("XXXX", "nnnM", 3)]
    #[case::two_crashes_are_tolerated("XXC", "nnn", 0)]
    #[case::crash_then_clean_restarts_count("XXCXXC", "nnnnnn", 0)]
    // Uptime past counter_reset_time ends a streak, even without a clean shutdown.
    #[case::crashes_across_the_window("XXUXXUXX", "nnnnnnnn", 1)]
    #[case::window_reset_then_loop("XUXXXX", "nnnnnM", 3)]
    // Maintenance holds across further crashes and clean reboots until off.
    #[case::crash_in_maintenance("XXXXXXX", "nnnMMMM", 6)]
    #[case::clean_reboot_in_maintenance("XXXCCC", "nnnMMM", 0)]
    #[case::off_resets_count("XXXOXC", "nnnMnn", 0)]
    #[case::off_then_loop_again("XXXOXXXX", "nnnMnnMM", 4)]
    // While disabled nothing is counted; enabling starts from zero.
    #[case::disable_mid_count("XXDXXXXX", "nnnnnnnn", 0)]
    #[case::disable_then_enable("XDXXEXXX", "nnnnnnnM", 3)]
    // A manual request: the next boot is maintenance, held until off.
    #[case::manual("NCCOC", "nMMMn", 0)]
    fn counting_rules(#[case] script: &str, #[case] modes: &str, #[case] counter: u32) {
        let (state, got) = run(script, POLICY, CmdlineRequest::None);
        assert_eq!(got, modes, "modes for {script}");
        assert_eq!(state.unclean_boots, counter, "counter after {script}");
    }

    #[rstest]
    #[case(0, "XX", "nM")]
    #[case(0, "CC", "nn")]
    #[case(1, "XXX", "nnM")]
    #[case(2, "XXX", "nnn")]
    #[case(2, "XXXX", "nnnM")]
    #[case(5, "XXXXXX", "nnnnnn")]
    #[case(5, "XXXXXXX", "nnnnnnM")]
    fn reboot_count_boundaries(
        #[case] reboot_count: u32,
        #[case] script: &str,
        #[case] modes: &str,
    ) {
        let policy = Policy {
            enabled: true,
            reboot_count,
        };
        assert_eq!(run(script, policy, CmdlineRequest::None).1, modes);
    }

    #[test]
    fn site_policy_disabled_never_counts_or_enforces() {
        let policy = Policy {
            enabled: false,
            reboot_count: 0,
        };
        let (state, modes) = run("XXXXX", policy, CmdlineRequest::On);
        assert_eq!(modes, "nnnnn");
        assert_eq!(state.unclean_boots, 0);
    }

    #[test]
    fn crash_loop_keeps_the_unclean_boots() {
        let (state, _) = run("XXXX", POLICY, CmdlineRequest::None);
        let m = state.maintenance.expect("in maintenance");
        assert_eq!(m.reason, Reason::CrashLoop);
        let ids: Vec<_> = m.crash_boots.iter().map(|b| b.boot_id.as_str()).collect();
        assert_eq!(ids, ["boot-0", "boot-1", "boot-2"]);
        assert_eq!(m.since, Some(3000));
    }

    #[test]
    fn cmdline_on_enters_and_holds() {
        let (state, modes) = run("CC", POLICY, CmdlineRequest::On);
        assert_eq!(modes, "MM");
        assert_eq!(state.maintenance.map(|m| m.reason), Some(Reason::Cmdline));
    }

    #[test]
    fn cmdline_off_skips_but_keeps_the_request() {
        let mut state = request(&State::default(), POLICY, 5, None, vec!["true".into()]).unwrap();
        let input = BootInputs {
            boot_id: "b1",
            now: 10,
            cmdline: CmdlineRequest::Off,
            policy: POLICY,
        };
        let (next, outcome) = boot(&state, &input);
        assert_eq!(outcome.mode, Mode::Normal);
        assert!(outcome.events.contains(&Event::SkippedByCmdline));
        assert_eq!(
            next.maintenance.as_ref().map(|m| m.phase),
            Some(Phase::Pending)
        );
        state = record_reset(&next, "b1", 20, ResetCause::CleanShutdown).0;
        let input = BootInputs {
            boot_id: "b2",
            now: 30,
            cmdline: CmdlineRequest::None,
            policy: POLICY,
        };
        let (next, outcome) = boot(&state, &input);
        assert_eq!(outcome.mode, Mode::Maintenance);
        assert_eq!(outcome.events, vec![Event::Entered(Reason::Manual)]);
        let m = next.maintenance.unwrap();
        assert_eq!((m.phase, m.since), (Phase::Active, Some(30)));
        assert_eq!(m.command.unwrap().argv, ["true"]);
    }

    #[test]
    fn cmdline_off_skips_an_enforced_crash_loop_too() {
        let (_, modes) = run("XXXXX", POLICY, CmdlineRequest::Off);
        assert_eq!(modes, "nnnnn");
    }

    #[test]
    fn boot_is_idempotent_within_a_boot() {
        let (state, _) = run("XXX", POLICY, CmdlineRequest::None);
        let input = BootInputs {
            boot_id: "boot-2",
            now: 99_999,
            cmdline: CmdlineRequest::None,
            policy: POLICY,
        };
        let (again, outcome) = boot(&state, &input);
        assert_eq!(again, state);
        assert_eq!(outcome.mode, Mode::Normal);
        assert_eq!(outcome.events, vec![Event::AlreadyRecorded]);
    }

    #[test]
    fn first_boot_ever_is_not_unclean() {
        let input = BootInputs {
            boot_id: "first",
            now: 1,
            cmdline: CmdlineRequest::None,
            policy: POLICY,
        };
        let (state, outcome) = boot(&State::default(), &input);
        assert_eq!(state.unclean_boots, 0);
        assert!(outcome.events.is_empty());
    }

    #[test]
    fn reset_for_an_unrecorded_boot_records_it() {
        let (state, _) = record_reset(&State::default(), "late", 7, ResetCause::CleanShutdown);
        let last = state.last_boot.unwrap();
        assert_eq!((last.boot_id.as_str(), last.clean_shutdown), ("late", true));
    }

    #[rstest]
    #[case::disabled_by_policy(Policy { enabled: false, reboot_count: 2 }, None, Refusal::DisabledByPolicy)]
    #[case::disabled_by_switch(POLICY, Some(false), Refusal::DisabledBySwitch)]
    fn on_refused_when_disabled(
        #[case] policy: Policy,
        #[case] switch: Option<bool>,
        #[case] refusal: Refusal,
    ) {
        let mut state = State::default();
        if let Some(on) = switch {
            state.switch_on = on;
        }
        assert_eq!(request(&state, policy, 0, None, vec![]), Err(refusal));
    }

    #[test]
    fn on_refused_when_pending_or_active_and_off_refused_when_operational() {
        let pending = request(&State::default(), POLICY, 0, None, vec![]).unwrap();
        assert_eq!(
            request(&pending, POLICY, 1, None, vec![]),
            Err(Refusal::AlreadyPending)
        );
        let (active, _) = run("XXXX", POLICY, CmdlineRequest::None);
        assert_eq!(
            request(&active, POLICY, 1, None, vec![]),
            Err(Refusal::AlreadyInMaintenance)
        );
        assert_eq!(
            leave(&State::default(), 1, "b", OffAction::Resume, vec![]),
            Err(Refusal::NotInMaintenance)
        );
    }

    #[test]
    fn off_cancels_a_pending_request() {
        let pending = request(&State::default(), POLICY, 0, None, vec![]).unwrap();
        let (state, ended) = leave(&pending, 5, "b", OffAction::Resume, vec![]).unwrap();
        assert_eq!(ended, Leave::Cancelled);
        assert!(state.maintenance.is_none());
        assert_eq!(state.history[0].end, "cancelled");
    }

    #[test]
    fn disable_refused_in_maintenance_or_pending() {
        let pending = request(&State::default(), POLICY, 0, None, vec![]).unwrap();
        assert_eq!(disable(&pending), Err(Refusal::DisableInMaintenance));
        let (active, _) = run("XXXX", POLICY, CmdlineRequest::None);
        assert_eq!(disable(&active), Err(Refusal::DisableInMaintenance));
    }

    #[test]
    fn history_is_bounded() {
        let mut state = State::default();
        for i in 0..(MAX_HISTORY as i64 + 5) {
            state = request(&state, POLICY, i, None, vec![]).unwrap();
            state = leave(&state, i, "b", OffAction::Resume, vec![]).unwrap().0;
        }
        assert_eq!(state.history.len(), MAX_HISTORY);
        assert_eq!(state.history[0].requested, 5);
    }

    #[test]
    fn unclean_records_are_bounded() {
        let script = "X".repeat(MAX_UNCLEAN_RECORDS + 10);
        let (state, _) = run(
            &script,
            Policy {
                enabled: true,
                reboot_count: 1000,
            },
            CmdlineRequest::None,
        );
        assert_eq!(state.unclean_records.len(), MAX_UNCLEAN_RECORDS);
        assert_eq!(state.unclean_boots as usize, MAX_UNCLEAN_RECORDS + 9);
    }

    #[test]
    fn early_decision_wins_in_the_safe_direction() {
        let input = BootInputs {
            boot_id: "b",
            now: 9,
            cmdline: CmdlineRequest::None,
            policy: POLICY,
        };
        // The generator saw a maintenance the full state does not have.
        let (state, outcome) = boot(&State::default(), &input);
        let (state, outcome, late) = adopt_early_decision(
            state,
            outcome,
            Mode::Maintenance,
            Some(Reason::CrashLoop),
            9,
        );
        assert!(!late);
        assert_eq!(outcome.mode, Mode::Maintenance);
        assert_eq!(state.maintenance.map(|m| m.reason), Some(Reason::CrashLoop));
        assert_eq!(state.last_boot.map(|b| b.mode), Some(Mode::Maintenance));
        // The generator missed a maintenance the full state has: enter late.
        let (state, _) = run("XXXX", POLICY, CmdlineRequest::None);
        let last = state.last_boot.clone().unwrap();
        let outcome_m = BootOutcome {
            mode: Mode::Maintenance,
            reason: Some(Reason::CrashLoop),
            events: vec![],
        };
        let (after, _, late) =
            adopt_early_decision(state.clone(), outcome_m, Mode::Normal, None, last.started);
        assert!(late);
        assert_eq!(after, state);
    }

    /// A state with the node in `phase` ("none", "pending", "active",
    /// "resuming"), in boot "b1", with a scheduled command.
    fn in_phase(phase: &str) -> State {
        let s = request(&State::default(), POLICY, 10, None, vec!["true".into()]).unwrap();
        let input = BootInputs {
            boot_id: "b1",
            now: 20,
            cmdline: CmdlineRequest::None,
            policy: POLICY,
        };
        match phase {
            "none" => State::default(),
            "pending" => s,
            "active" => boot(&s, &input).0,
            "resuming" => {
                let active = boot(&s, &input).0;
                leave(&active, 30, "b1", OffAction::Resume, vec![])
                    .unwrap()
                    .0
            }
            other => panic!("no phase {other}"),
        }
    }

    fn phase_of(s: &State) -> &'static str {
        match s.maintenance.as_ref().map(|m| m.phase) {
            None => "none",
            Some(Phase::Pending) => "pending",
            Some(Phase::Active) => "active",
            Some(Phase::Resuming) => "resuming",
        }
    }

    /// `umm off` (resume or reboot) from each phase: what it did, the phase
    /// after, how many times it was tried, and the history's last end.
    #[rstest]
    #[case::resume_started("active", OffAction::Resume, Ok(Leave::Started), "resuming", 1, None)]
    #[case::reboot_started("active", OffAction::Reboot, Ok(Leave::Started), "resuming", 1, None)]
    #[case::retry("resuming", OffAction::Resume, Ok(Leave::Retried), "resuming", 2, None)]
    #[case::reboot_while_resuming(
        "resuming",
        OffAction::Reboot,
        Ok(Leave::Retried),
        "resuming",
        2,
        None
    )]
    #[case::cancel_a_request(
        "pending",
        OffAction::Resume,
        Ok(Leave::Cancelled),
        "none",
        0,
        Some("cancelled")
    )]
    #[case::cancel_then_reboot(
        "pending",
        OffAction::Reboot,
        Ok(Leave::Cancelled),
        "none",
        0,
        Some("cancelled")
    )]
    #[case::nothing_to_leave(
        "none",
        OffAction::Resume,
        Err(Refusal::NotInMaintenance),
        "none",
        0,
        None
    )]
    fn leaving_transitions(
        #[case] from: &str,
        #[case] action: OffAction,
        #[case] expected: Result<Leave, Refusal>,
        #[case] phase: &str,
        #[case] tries: u32,
        #[case] end: Option<&str>,
    ) {
        let state = in_phase(from);
        let pre_off = vec![HookRecord {
            phase: "pre-off".into(),
            name: "10-x".into(),
            ok: true,
            result: "exited 0".into(),
            output_tail: vec![],
            extra: Default::default(),
        }];
        let result = leave(&state, 40, "b1", action, pre_off);
        assert_eq!(result.as_ref().map(|r| r.1).map_err(Clone::clone), expected);
        let after = result.map(|r| r.0).unwrap_or(state);
        assert_eq!(phase_of(&after), phase);
        let l = after.maintenance.as_ref().and_then(|m| m.leaving.as_ref());
        assert_eq!(l.map_or(0, |l| l.tries), tries);
        if let Some(l) = l {
            assert_eq!(
                (l.action, l.last_try, l.boot_id.as_str()),
                (action, 40, "b1")
            );
            assert_eq!(l.started, if tries == 1 { 40 } else { 30 });
        }
        assert_eq!(after.history.last().map(|e| e.end.as_str()), end);
        assert_eq!(after.unclean_boots, 0);
    }

    /// A boot that finds an episode still leaving (the node was rebooted,
    /// or crashed, before the normal target was reached; or `umm off
    /// reboot`): a normal boot that finishes it, unless this boot must
    /// stop in maintenance anyway.
    #[rstest]
    #[case::normal(CmdlineRequest::None, 0, true, "n", "resuming", None)]
    #[case::skipped_by_cmdline(CmdlineRequest::Off, 9, true, "n", "resuming", None)]
    #[case::disabled(CmdlineRequest::On, 9, false, "n", "resuming", None)]
    #[case::cmdline_on(CmdlineRequest::On, 0, true, "M", "active", Some("interrupted"))]
    #[case::crash_loop(CmdlineRequest::None, 9, true, "M", "active", Some("interrupted"))]
    fn a_boot_that_finds_an_episode_leaving(
        #[case] cmdline: CmdlineRequest,
        #[case] unclean: u32,
        #[case] enabled: bool,
        #[case] mode: &str,
        #[case] phase: &str,
        #[case] end: Option<&str>,
    ) {
        let mut state = in_phase("resuming");
        state.unclean_boots = unclean;
        let leaving_id = state.maintenance.as_ref().unwrap().id;
        let input = BootInputs {
            boot_id: "b2",
            now: 50,
            cmdline,
            policy: Policy {
                enabled,
                reboot_count: 2,
            },
        };
        let (after, outcome) = boot(&state, &input);
        let got = match outcome.mode {
            Mode::Normal => "n",
            Mode::Maintenance => "M",
        };
        assert_eq!(got, mode, "{:?}", outcome.events);
        assert_eq!(phase_of(&after), phase);
        assert_eq!(after.history.last().map(|e| e.end.as_str()), end);
        if end.is_some() {
            assert_eq!(after.history.last().map(|e| e.id), Some(leaving_id));
            assert_ne!(after.maintenance.as_ref().map(|m| m.id), Some(leaving_id));
        }
        // The generator and the boot unit run the same rule: same answer.
        assert_eq!(boot(&state, &input).1.mode, outcome.mode);
    }

    /// One finisher at a time: a claim by a live process in this boot holds;
    /// a claim by a process that is gone, or made in another boot, is
    /// taken over.
    #[rstest]
    #[case::first("resuming", None, false, "claimed")]
    #[case::again_by_the_same_process("resuming", Some(("b1", 1)), true, "claimed")]
    #[case::held_by_a_live_process("resuming", Some(("b1", 2)), true, "held")]
    #[case::taken_over_from_a_dead_process("resuming", Some(("b1", 2)), false, "taken over")]
    #[case::taken_over_from_an_earlier_boot("resuming", Some(("b0", 2)), true, "taken over")]
    #[case::nothing_leaving("active", None, false, "nothing")]
    #[case::nothing_at_all("none", None, false, "nothing")]
    fn finisher_claims(
        #[case] phase: &str,
        #[case] holder: Option<(&str, u32)>,
        #[case] holder_alive: bool,
        #[case] expected: &str,
    ) {
        let mut state = in_phase(phase);
        if let (Some((b, pid)), Some(l)) = (
            holder,
            state.maintenance.as_mut().and_then(|m| m.leaving.as_mut()),
        ) {
            l.finisher = Some(claim(b, pid));
        }
        let me = claim("b1", 1);
        let (after, outcome) = claim_finish(&state, &me, holder_alive);
        let got = match &outcome {
            ClaimOutcome::Claimed { took_over: None } => "claimed",
            ClaimOutcome::Claimed { took_over: Some(_) } => "taken over",
            ClaimOutcome::HeldBy(_) => "held",
            ClaimOutcome::NothingToFinish => "nothing",
        };
        assert_eq!(got, expected);
        let finisher = after
            .maintenance
            .as_ref()
            .and_then(|m| m.leaving.as_ref())
            .and_then(|l| l.finisher.clone());
        match got {
            "claimed" | "taken over" => assert_eq!(finisher, Some(me)),
            "held" => assert_eq!(finisher, Some(claim("b1", 2))),
            _ => assert_eq!(after, state),
        }
    }

    #[rstest]
    #[case::resumed(OffAction::Resume, "resumed")]
    #[case::rebooted(OffAction::Reboot, "rebooted")]
    fn the_finisher_closes_the_episode_once(#[case] action: OffAction, #[case] end: &str) {
        let active = in_phase("active");
        let id = active.maintenance.as_ref().unwrap().id;
        let state = leave(&active, 30, "b1", action, vec![]).unwrap().0;
        let me = claim("b1", 1);
        let other = claim("b1", 2);
        let (claimed, _) = claim_finish(&state, &me, false);
        // The other finisher waits while `me` runs the off.d hooks.
        assert!(matches!(
            claim_finish(&claimed, &other, true).1,
            ClaimOutcome::HeldBy(_)
        ));
        let off_hook = HookRecord {
            phase: "off".into(),
            name: "10-x".into(),
            ok: false,
            result: "exited 1".into(),
            output_tail: vec![],
            extra: Default::default(),
        };
        let verify = VerifyResult {
            compared_with: "enabled services".into(),
            not_back: vec!["db.service".into()],
            failed: vec![],
            extra: Default::default(),
        };
        let closed = finish(
            &claimed,
            &me,
            60,
            vec![off_hook.clone()],
            Some(verify.clone()),
        )
        .unwrap();
        assert!(closed.maintenance.is_none());
        let e = closed.history.last().unwrap();
        assert_eq!((e.id, e.end.as_str(), e.ended), (id, end, 60));
        assert_eq!(e.hooks.last(), Some(&off_hook));
        assert_eq!(e.verify.as_ref(), Some(&verify));
        // Whoever comes next finds nothing left to do.
        assert_eq!(
            claim_finish(&closed, &other, false).1,
            ClaimOutcome::NothingToFinish
        );
        assert_eq!(
            finish(&closed, &me, 61, vec![], None),
            Err(NotFinished::Closed)
        );
        // A finisher thought gone, whose work was taken over, changes nothing.
        let (taken, _) = claim_finish(&claimed, &other, false);
        assert_eq!(
            finish(&taken, &me, 62, vec![], None),
            Err(NotFinished::TakenOver)
        );
    }

    #[test]
    fn the_scheduled_command_starts_only_while_its_episode_is_in_force() {
        let active = in_phase("active");
        let id = active.maintenance.as_ref().unwrap().id;
        assert!(may_start_command(&active, id));
        assert!(!may_start_command(&active, id + 1), "another episode");
        let leaving = leave(&active, 30, "b1", OffAction::Resume, vec![])
            .unwrap()
            .0;
        assert!(!may_start_command(&leaving, id), "umm off came first");
        let closed = finished(&leaving, "b1", 40);
        assert!(!may_start_command(&closed, id));
        // A new episode after that one gets a new id.
        let again = request(&closed, POLICY, 50, None, vec!["true".into()]).unwrap();
        assert!(again.maintenance.as_ref().unwrap().id > id);
    }

    #[test]
    fn while_leaving_on_is_refused_and_disable_allowed() {
        let leaving = in_phase("resuming");
        assert_eq!(
            request(&leaving, POLICY, 1, None, vec![]),
            Err(Refusal::StillLeaving)
        );
        assert!(!disable(&leaving).unwrap().switch_on);
    }

    #[test]
    fn a_stale_early_copy_keeps_the_same_episode_in_force() {
        let leaving = in_phase("resuming");
        let id = leaving.maintenance.as_ref().unwrap().id;
        let outcome = BootOutcome {
            mode: Mode::Normal,
            reason: None,
            events: vec![],
        };
        let (after, outcome, _) = adopt_early_decision(
            leaving,
            outcome,
            Mode::Maintenance,
            Some(Reason::Manual),
            70,
        );
        assert_eq!(outcome.mode, Mode::Maintenance);
        let m = after.maintenance.unwrap();
        assert_eq!((m.id, m.phase, m.leaving), (id, Phase::Active, None));
    }

    #[test]
    fn work_left_by_an_older_umm_is_reopened_as_leaving() {
        let mut state = in_phase("active");
        let m = state.maintenance.take().unwrap();
        state.history.push(Episode {
            id: 0,
            reason: m.reason,
            requested: m.requested,
            since: m.since,
            ended: 99,
            requested_by: None,
            command: m.command.clone(),
            end: "rebooted".into(),
            hooks: vec![],
            verify: None,
            extra: Default::default(),
        });
        state.after_resume = Some(crate::state::AfterResume {
            reason: Reason::Manual,
            services_before: Some(vec!["cron.service".into()]),
            extra: Default::default(),
        });
        let up = upgrade(state);
        assert!(up.after_resume.is_none() && up.history.is_empty());
        let m = up.maintenance.unwrap();
        assert_eq!(m.phase, Phase::Resuming);
        assert_eq!(m.services_before, Some(vec!["cron.service".into()]));
        assert_eq!(m.leaving.map(|l| l.action), Some(OffAction::Reboot));
    }

    #[rstest]
    #[case("quiet splash", CmdlineRequest::None)]
    #[case("root=/dev/vda1 umm", CmdlineRequest::On)]
    #[case("umm=on ro", CmdlineRequest::On)]
    #[case("umm=off", CmdlineRequest::Off)]
    #[case("umm=on umm=off", CmdlineRequest::Off)]
    #[case("humm=on umm.x=1", CmdlineRequest::None)]
    fn parses_the_kernel_command_line(#[case] line: &str, #[case] expected: CmdlineRequest) {
        assert_eq!(CmdlineRequest::parse(line), expected);
    }
}

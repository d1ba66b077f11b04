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

use crate::state::{
    AfterResume, BootRecord, Episode, LastBoot, Maintenance, Mode, Phase, Reason, Requester,
    ScheduledCommand, State, MAX_UNCLEAN_RECORDS,
};

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

    let (mode, reason) = if !enabled {
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
        s.maintenance = Some(entered(Reason::Cmdline, input.now, Vec::new()));
        events.push(Event::Entered(Reason::Cmdline));
        (Mode::Maintenance, Some(Reason::Cmdline))
    } else if s.unclean_boots > input.policy.reboot_count {
        let crash_boots = s.unclean_records.clone();
        s.maintenance = Some(entered(Reason::CrashLoop, input.now, crash_boots));
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
            let crash_boots = state.unclean_records.clone();
            state.maintenance = Some(entered(reason, now, crash_boots));
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

fn entered(reason: Reason, now: i64, crash_boots: Vec<BootRecord>) -> Maintenance {
    Maintenance {
        phase: Phase::Active,
        reason,
        requested: now,
        since: Some(now),
        requested_by: None,
        command: None,
        crash_boots,
        services_before: None,
        hooks: Vec::new(),
        extra: Default::default(),
    }
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
        None => {}
    }
    let mut s = state.clone();
    s.maintenance = Some(Maintenance {
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
        extra: Default::default(),
    });
    Ok(s)
}

/// How `umm off` ends a maintenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffAction {
    /// Continue this boot into the normal target.
    Resume,
    /// Reboot into normal operation.
    Reboot,
}

/// What `umm off` found, so the caller knows whether there is a boot to resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Maintenance was in force: resume (or reboot).
    WasActive,
    /// Only a request was pending: it is cancelled, nothing to resume.
    WasPending,
}

/// `umm off`: ends the maintenance (or cancels a pending request), clears
/// the counter, and moves the episode to the history. An active maintenance
/// leaves `after_resume` for when the normal target is reached.
pub fn off(state: &State, now: i64, action: OffAction) -> Result<(State, Ended), Refusal> {
    let mut s = state.clone();
    let m = s.maintenance.take().ok_or(Refusal::NotInMaintenance)?;
    let ended = match m.phase {
        Phase::Active => Ended::WasActive,
        Phase::Pending => Ended::WasPending,
    };
    let end = match (ended, action) {
        (Ended::WasPending, _) => "cancelled",
        (Ended::WasActive, OffAction::Resume) => "resumed",
        (Ended::WasActive, OffAction::Reboot) => "rebooted",
    };
    if ended == Ended::WasActive {
        s.after_resume = Some(AfterResume {
            reason: m.reason,
            services_before: m.services_before,
            extra: Default::default(),
        });
    }
    s.history.push(Episode {
        reason: m.reason,
        requested: m.requested,
        since: m.since,
        ended: now,
        requested_by: m.requested_by,
        command: m.command,
        end: end.to_string(),
        hooks: m.hooks,
        verify: None,
        extra: Default::default(),
    });
    let excess = s.history.len().saturating_sub(MAX_HISTORY);
    s.history.drain(..excess);
    reset_counter(&mut s);
    if let Some(last) = s.last_boot.as_mut() {
        // The rest of this boot is a normal one.
        last.mode = Mode::Normal;
    }
    Ok((s, ended))
}

/// `umm disable`: the operator's switch off; the counter starts again from
/// zero when it is switched back on.
pub fn disable(state: &State) -> Result<State, Refusal> {
    if state.maintenance.is_some() {
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

    /// What happens to a boot, as a letter in a scenario string:
    /// `C` ends cleanly, `X` crashes before the reset time, `U` crashes after
    /// reaching the reset time, `O` is a boot where the operator runs
    /// `umm off` then crashes, `D` runs `umm disable` then crashes, `E` runs
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
                'O' => state = off(&state, now + 1, OffAction::Resume).expect("off").0,
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
            off(&State::default(), 1, OffAction::Resume),
            Err(Refusal::NotInMaintenance)
        );
    }

    #[test]
    fn off_cancels_a_pending_request() {
        let pending = request(&State::default(), POLICY, 0, None, vec![]).unwrap();
        let (state, ended) = off(&pending, 5, OffAction::Resume).unwrap();
        assert_eq!(ended, Ended::WasPending);
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
            state = off(&state, i, OffAction::Resume).unwrap().0;
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

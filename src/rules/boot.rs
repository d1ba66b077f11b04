//! The boot-time decision and the counting rules: what the generator, the
//! boot unit and the clean-shutdown and uptime records apply.
//!
//! The counting rules (docs/state.md, "Counting rules", and the man page
//! are generated from this list):
//! - A boot whose previous boot did not end with a clean shutdown, and did
//!   not reach `counter_reset_time` of uptime, is **unclean**: the counter
//!   of consecutive unclean boots goes up by one.
//! - A clean shutdown or reboot, or `counter_reset_time` of uptime
//!   (measured on the monotonic boot clock, never wall-clock time), resets
//!   the counter to 0.
//! - When a boot finds the counter **greater than** `reboot_count`, that
//!   boot stops in maintenance, reason `crash-loop`, and the boot ids and
//!   times of the unclean boots are kept for `umm status`.
//! - Maintenance, once entered for any reason, holds across further
//!   crashes and reboots until `umm off`.

use super::{close, entered, reset_counter};
use crate::model::limits;
use crate::model::settings::Policy;
use crate::model::state::{BootRecord, EpisodeEnd, LastBoot, Mode, Phase, Reason, State};

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

/// The word GRUB adds to the maintenance entry it falls back to after a
/// boot failure (42_umm: `$umm_why` on that entry's `linux` line, set only
/// in the boot where GRUB gave up).
///
/// Why a marker on the command line rather than umm-boot reading the
/// environment block: the block cannot tell GRUB's fallback from the
/// operator's own pick of a maintenance entry. After GRUB's `x` is added,
/// `umm_tries` equals `umm_max_tries` on the last counted attempt too
/// (every boot with `reboot_count = 0`), and `umm_failed` stays set while
/// the last good kernel runs; only GRUB knows, in the boot it gave up in,
/// why it booted that entry. The kernel command line is also what the
/// systemd generator reads, so both take the same decision; a marker
/// that is missing (an older grub.cfg) leaves reason `cmdline`.
pub const BOOT_FAILURE_MARKER: &str = "umm.why=boot-failure";

/// Does the kernel command line carry GRUB's boot-failure marker?
pub fn boot_failure_marker(cmdline: &str) -> bool {
    cmdline
        .split_ascii_whitespace()
        .any(|w| w == BOOT_FAILURE_MARKER)
}

pub struct BootInputs<'a> {
    pub boot_id: &'a str,
    /// Wall-clock time, for the record only (never for counting).
    pub now: i64,
    pub cmdline: CmdlineRequest,
    /// GRUB's boot-failure marker is on the command line: with `umm=on`,
    /// a new episode's reason is `boot-failure` rather than `cmdline`.
    pub boot_failure: bool,
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
    if let Some(outcome) = already_recorded(state, input.boot_id) {
        return (state.clone(), outcome);
    }
    let mut s = state.clone();
    let mut events = Vec::new();
    let enabled = effective_enabled(&s, input.policy);
    count_previous_boot(&mut s, enabled, &mut events);
    let leaving = carry_leaving(&mut s, input, enabled, &mut events);
    let (mode, reason) = if leaving {
        (Mode::Normal, None)
    } else {
        decide_mode(&mut s, input, enabled, &mut events)
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

/// A second run in the same boot: the decision already taken, unchanged.
fn already_recorded(state: &State, boot_id: &str) -> Option<BootOutcome> {
    let last = state.last_boot.as_ref().filter(|b| b.boot_id == boot_id)?;
    let reason = match last.mode {
        Mode::Maintenance => state.maintenance.as_ref().map(|m| m.reason),
        Mode::Normal => None,
    };
    Some(BootOutcome {
        mode: last.mode,
        reason,
        events: vec![Event::AlreadyRecorded],
    })
}

/// The counting rules for the previous boot: unclean (no clean shutdown,
/// no `counter_reset_time` of uptime) counts; nothing counts while disabled.
fn count_previous_boot(s: &mut State, enabled: bool, events: &mut Vec<Event>) {
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
        reset_counter(s);
        events.push(Event::Disabled);
    } else if let Some(previous) = previous_unclean {
        s.unclean_boots = s.unclean_boots.saturating_add(1);
        s.unclean_records.push(previous);
        let excess = s.unclean_records.len().saturating_sub(limits::BOOT_RECORDS);
        s.unclean_records.drain(..excess);
        events.push(Event::Counted(s.unclean_boots));
    } else if s.unclean_boots > 0 {
        // Normally reset when the clean shutdown was recorded; kept here so a
        // state written by hand or by an older umm cannot carry a stale count.
        reset_counter(s);
    }
}

/// An episode `umm off` began leaving in an earlier boot (interrupted, or
/// `umm off reboot`): this boot is normal and finishes it (true), unless
/// this boot must stop in maintenance anyway (then that episode is over).
fn carry_leaving(
    s: &mut State,
    input: &BootInputs,
    enabled: bool,
    events: &mut Vec<Event>,
) -> bool {
    let Some(m) = s.maintenance.take_if(|m| m.phase == Phase::Resuming) else {
        return false;
    };
    let again = enabled
        && (input.cmdline == CmdlineRequest::On
            || (input.cmdline == CmdlineRequest::None
                && s.unclean_boots > input.policy.reboot_count));
    if again {
        events.push(Event::LeavingInterrupted(m.reason));
        close(s, m, input.now, EpisodeEnd::Interrupted, None);
        false
    } else {
        events.push(Event::StillLeaving(m.reason));
        s.maintenance = Some(m);
        true
    }
}

/// This boot's mode, once the previous one is counted: a request or a
/// maintenance in force holds, `umm=on` and a crash loop enter, `umm=off`
/// and a disabled umm never delay the boot.
fn decide_mode(
    s: &mut State,
    input: &BootInputs,
    enabled: bool,
    events: &mut Vec<Event>,
) -> (Mode, Option<Reason>) {
    let crash_loop = s.unclean_boots > input.policy.reboot_count;
    if !enabled {
        // Never delay a boot while disabled; a request (if any) keeps waiting.
        if let Some(m) = s.maintenance.as_mut() {
            m.phase = Phase::Pending;
        }
        return (Mode::Normal, None);
    }
    if input.cmdline == CmdlineRequest::Off {
        if let Some(m) = s.maintenance.as_mut() {
            m.phase = Phase::Pending;
            events.push(Event::SkippedByCmdline);
        } else if crash_loop {
            events.push(Event::SkippedByCmdline);
        }
        return (Mode::Normal, None);
    }
    if let Some(m) = s.maintenance.as_mut() {
        let reason = m.reason;
        let held = m.phase == Phase::Active && m.since.is_some();
        m.phase = Phase::Active;
        m.since.get_or_insert(input.now);
        if held {
            events.push(Event::Held(reason));
        } else {
            entered_now(s, reason, events);
        }
        return (Mode::Maintenance, Some(reason));
    }
    let (reason, crash_boots) = if input.cmdline == CmdlineRequest::On && input.boot_failure {
        (Reason::BootFailure, Vec::new())
    } else if input.cmdline == CmdlineRequest::On {
        (Reason::Cmdline, Vec::new())
    } else if crash_loop {
        (Reason::CrashLoop, s.unclean_records.clone())
    } else {
        return (Mode::Normal, None);
    };
    s.maintenance = Some(entered(s, reason, input.now, crash_boots));
    entered_now(s, reason, events);
    (Mode::Maintenance, Some(reason))
}

/// An episode reached maintenance in this boot: said, and counted (the
/// count survives reboots: `umm_maintenance_entered_total`).
fn entered_now(s: &mut State, reason: Reason, events: &mut Vec<Event>) {
    s.counters.entered.add(reason);
    events.push(Event::Entered(reason));
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
            // An episode that had reached maintenance before is not entered again.
            let new = state.maintenance.as_ref().is_none_or(|m| m.since.is_none());
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
            if new {
                entered_now(&mut state, reason, &mut outcome.events);
            } else {
                outcome.events.push(Event::Entered(reason));
            }
            (state, outcome, false)
        }
        (Mode::Normal, Mode::Maintenance) => (state, outcome, true),
        _ => (state, outcome, false),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::limits;
    use crate::rules::request::request;
    use crate::rules::testing::*;
    use rstest::rstest;

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

    /// GRUB's boot-failure marker names the reason of a new episode only:
    /// with `umm=on` and no episode (boot-failure), without it (cmdline:
    /// the operator's own pick), with `umm=off` (no maintenance), with a
    /// disabled umm (no maintenance), with an episode in force (its reason
    /// holds), after a crash loop (the marker's `umm=on` wins).
    #[rstest]
    #[case::grub_gave_up("", CmdlineRequest::On, true, true, Some(Reason::BootFailure))]
    #[case::operators_pick("", CmdlineRequest::On, false, true, Some(Reason::Cmdline))]
    #[case::marker_without_umm_on("", CmdlineRequest::None, true, true, None)]
    #[case::skipped("", CmdlineRequest::Off, true, true, None)]
    #[case::disabled("", CmdlineRequest::On, true, false, None)]
    #[case::held("N", CmdlineRequest::On, true, true, Some(Reason::Manual))]
    #[case::after_unclean_boots("XXX", CmdlineRequest::On, true, true, Some(Reason::BootFailure))]
    fn the_boot_failure_marker_names_a_new_episodes_reason(
        #[case] before: &str,
        #[case] cmdline: CmdlineRequest,
        #[case] marker: bool,
        #[case] enabled: bool,
        #[case] expected: Option<Reason>,
    ) {
        let (state, _) = run(before, POLICY, CmdlineRequest::None);
        let policy = Policy { enabled, ..POLICY };
        let input = BootInputs {
            boot_id: "failed-over",
            now: 9000,
            cmdline,
            boot_failure: marker,
            policy,
        };
        let (next, outcome) = boot(&state, &input);
        assert_eq!(outcome.reason, expected);
        assert_eq!(next.maintenance.as_ref().map(|m| m.reason), expected);
        if expected == Some(Reason::BootFailure) {
            assert!(outcome
                .events
                .contains(&Event::Entered(Reason::BootFailure)));
            assert_eq!(next.counters.entered.get(Reason::BootFailure), 1);
        }
    }

    #[rstest]
    #[case("ro quiet umm=on umm.why=boot-failure", true)]
    #[case("ro quiet umm=on", false)]
    #[case("umm.why=boot-failure-not", false)]
    #[case("xumm.why=boot-failure", false)]
    fn finds_grubs_boot_failure_marker(#[case] line: &str, #[case] expected: bool) {
        assert_eq!(boot_failure_marker(line), expected);
    }

    #[test]
    fn cmdline_off_skips_but_keeps_the_request() {
        let mut state = request(&State::default(), POLICY, 5, None, vec!["true".into()]).unwrap();
        let input = BootInputs {
            boot_id: "b1",
            now: 10,
            cmdline: CmdlineRequest::Off,
            boot_failure: false,
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
            boot_failure: false,
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
            boot_failure: false,
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
            boot_failure: false,
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

    #[test]
    fn unclean_records_are_bounded() {
        let script = "X".repeat(limits::BOOT_RECORDS + 10);
        let (state, _) = run(
            &script,
            Policy {
                enabled: true,
                reboot_count: 1000,
            },
            CmdlineRequest::None,
        );
        assert_eq!(state.unclean_records.len(), limits::BOOT_RECORDS);
        assert_eq!(state.unclean_boots as usize, limits::BOOT_RECORDS + 9);
    }

    #[test]
    fn early_decision_wins_in_the_safe_direction() {
        let input = BootInputs {
            boot_id: "b",
            now: 9,
            cmdline: CmdlineRequest::None,
            boot_failure: false,
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
            boot_failure: false,
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

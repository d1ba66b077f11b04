//! Leaving maintenance, as a transaction: `umm off` starts leaving (or
//! retries), one finisher claims the work left (the off.d hooks and the
//! check) and closes the episode.

use super::{close, reset_counter, Refusal};
use crate::model::hook::HookRecord;
use crate::model::state::{Claim, EpisodeEnd, Leaving, Maintenance, Mode, OffAction, Phase, State};
use crate::model::verify::VerifyResult;

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
    s.counters.hook_failures.add_failed(&pre_off);
    m.hooks.extend(pre_off);
    let leave = match (m.phase, m.leaving.as_mut()) {
        (Phase::Pending, _) => {
            close(&mut s, m, now, EpisodeEnd::Cancelled, None);
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
    s.counters.hook_failures.add_failed(&off_hooks);
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
    let action = if e.end.is(EpisodeEnd::Rebooted) {
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
        fleet: e.fleet,
        then: Default::default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::HookPhase;
    use crate::model::limits;
    use crate::model::state::{Episode, Reason};
    use crate::rules::request::request;
    use crate::rules::testing::*;
    use rstest::rstest;

    #[test]
    fn off_cancels_a_pending_request() {
        let pending = request(&State::default(), POLICY, 0, None, vec![]).unwrap();
        let (state, ended) = leave(&pending, 5, "b", OffAction::Resume, vec![]).unwrap();
        assert_eq!(ended, Leave::Cancelled);
        assert!(state.maintenance.is_none());
        assert_eq!(state.history[0].end.as_str(), "cancelled");
    }

    #[test]
    fn history_is_bounded() {
        let mut state = State::default();
        for i in 0..(limits::HISTORY as i64 + 5) {
            state = request(&state, POLICY, i, None, vec![]).unwrap();
            state = leave(&state, i, "b", OffAction::Resume, vec![]).unwrap().0;
        }
        assert_eq!(state.history.len(), limits::HISTORY);
        assert_eq!(state.history[0].requested, 5);
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
            phase: HookPhase::PreOff.into(),
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
            phase: HookPhase::Off.into(),
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
            end: EpisodeEnd::Rebooted.into(),
            hooks: vec![],
            verify: None,
            fleet: None,
            extra: Default::default(),
        });
        state.after_resume = Some(crate::model::state::AfterResume {
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
}

//! What operators ask of the rules: `umm on` (a request for the next
//! boot), and the operator's switch (`umm enable`, `umm disable`).

use super::{next_episode, reset_counter, Refusal};
use crate::model::settings::Policy;
use crate::model::state::{Maintenance, Phase, Reason, Requester, ScheduledCommand, State};

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
    if state.queued.is_some() {
        return Err(Refusal::AlreadyQueued);
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
        fleet: None,
        then: Default::default(),
        extra: Default::default(),
    });
    Ok(s)
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
    use crate::model::state::OffAction;
    use crate::rules::boot::CmdlineRequest;
    use crate::rules::leave::leave;
    use crate::rules::testing::*;
    use rstest::rstest;

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
    fn disable_refused_in_maintenance_or_pending() {
        let pending = request(&State::default(), POLICY, 0, None, vec![]).unwrap();
        assert_eq!(disable(&pending), Err(Refusal::DisableInMaintenance));
        let (active, _) = run("XXXX", POLICY, CmdlineRequest::None);
        assert_eq!(disable(&active), Err(Refusal::DisableInMaintenance));
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
}

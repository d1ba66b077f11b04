//! What the rules' tests share: a policy, claims, and scenarios that run
//! a node through boots and commands.

#![allow(dead_code)]

use crate::model::settings::Policy;
use crate::model::state::{Claim, Mode, OffAction, Phase, State};
use crate::rules::boot::{boot, record_reset, BootInputs, CmdlineRequest, ResetCause};
use crate::rules::leave::{claim_finish, finish, leave, ClaimOutcome};
use crate::rules::request::{disable, enable, request};

pub const POLICY: Policy = Policy {
    enabled: true,
    reboot_count: 2,
};

pub fn claim(boot_id: &str, pid: u32) -> Claim {
    Claim {
        boot_id: boot_id.into(),
        pid,
        pid_start: Some(1),
        since: 0,
        extra: Default::default(),
    }
}

/// The finisher in boot `boot_id` claims and finishes what is leaving.
pub fn finished(state: &State, boot_id: &str, now: i64) -> State {
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
pub fn run(script: &str, policy: Policy, cmdline: CmdlineRequest) -> (State, String) {
    let mut state = State::default();
    let mut modes = String::new();
    for (i, step) in script.chars().enumerate() {
        let id = format!("boot-{i}");
        let now = 1000 * i as i64;
        let input = BootInputs {
            boot_id: &id,
            now,
            cmdline,
            boot_failure: false,
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

/// A state with the node in `phase` ("none", "pending", "active",
/// "resuming"), in boot "b1", with a scheduled command.
pub fn in_phase(phase: &str) -> State {
    let s = request(&State::default(), POLICY, 10, None, vec!["true".into()]).unwrap();
    let input = BootInputs {
        boot_id: "b1",
        now: 20,
        cmdline: CmdlineRequest::None,
        boot_failure: false,
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

pub fn phase_of(s: &State) -> &'static str {
    match s.maintenance.as_ref().map(|m| m.phase) {
        None => "none",
        Some(Phase::Pending) => "pending",
        Some(Phase::Active) => "active",
        Some(Phase::Resuming) => "resuming",
    }
}

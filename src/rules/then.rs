//! `umm on --then off|reboot`, pure: once the maintenance work is done (the
//! on.d hooks, then the scheduled command), does the maintenance boot leave
//! by itself, wait, or halt the group's roll?

use crate::model::hook::HookPhase;
use crate::model::rolling::Then;
use crate::model::state::{Maintenance, OffAction, Phase};

/// What the maintenance boot does after its work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterWork {
    /// Nothing by itself: no `--then`, or no episode in force.
    Stay,
    /// The work is not done yet (the command runs, or is still to start).
    Wait,
    /// The work succeeded: leave as `umm off` (or `umm off reboot`) would.
    Leave(OffAction),
    /// Leaving by itself had begun (phase `resuming`) and was cut short:
    /// again, as a second `umm off` would.
    Retry(OffAction),
    /// The work failed: the node stays in maintenance, keeps its slot,
    /// and halts the group's roll, saying why.
    Halt(String),
}

/// Decides from the episode as the state has it. `command_alive`: the
/// scheduled command's recorded process still runs (the caller looks).
pub fn after_work(m: &Maintenance, command_alive: bool) -> AfterWork {
    let action = match m.then {
        Then::Stay => return AfterWork::Stay,
        Then::Off => OffAction::Resume,
        Then::Reboot => OffAction::Reboot,
    };
    match m.phase {
        Phase::Pending => return AfterWork::Stay,
        Phase::Resuming => {
            let action = m.leaving.as_ref().map_or(action, |l| l.action);
            return AfterWork::Retry(action);
        }
        Phase::Active => {}
    }
    if let Some(hook) = m.hooks.iter().find(|h| h.phase.is(HookPhase::On) && !h.ok) {
        return AfterWork::Halt(format!("on.d hook {} {}", hook.name, hook.result));
    }
    let Some(command) = &m.command else {
        return AfterWork::Leave(action);
    };
    let Some(run) = &command.run else {
        return AfterWork::Wait;
    };
    match (run.ended, run.exit_code, run.signal) {
        (None, _, _) if command_alive => AfterWork::Wait,
        (None, _, _) => AfterWork::Halt(
            "the scheduled command did not finish (its worker was killed, or the node rebooted)"
                .into(),
        ),
        (Some(_), Some(0), None) => AfterWork::Leave(action),
        (Some(_), _, Some(signal)) => AfterWork::Halt(format!(
            "the scheduled command was killed by signal {signal}"
        )),
        (Some(_), Some(code), None) => {
            AfterWork::Halt(format!("the scheduled command exited {code}"))
        }
        (Some(_), None, None) => AfterWork::Halt("the scheduled command failed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::HookRecord;
    use crate::model::state::{CommandRun, Leaving, Reason, ScheduledCommand};

    fn episode(then: Then, phase: Phase) -> Maintenance {
        let mut s = crate::model::state::State::default();
        let mut m = crate::rules::entered(&mut s, Reason::Manual, 1, vec![]);
        m.then = then;
        m.phase = phase;
        m
    }

    fn hook(phase: HookPhase, ok: bool) -> HookRecord {
        HookRecord {
            phase: phase.into(),
            name: "10-drain".into(),
            ok,
            result: if ok { "exited 0" } else { "exited 3" }.into(),
            output_tail: vec![],
            extra: Default::default(),
        }
    }

    /// (ended, exit code, signal): None for a command never started.
    type Ran = Option<(Option<i64>, Option<i32>, Option<i32>)>;

    fn with_command(mut m: Maintenance, ran: Ran) -> Maintenance {
        m.command = Some(ScheduledCommand {
            argv: vec!["apt-get".into()],
            run: ran.map(|(ended, exit_code, signal)| CommandRun {
                started: 1,
                pid: Some(7),
                ended,
                exit_code,
                signal,
                output: "/var/lib/umm/command.log".into(),
                extra: Default::default(),
            }),
            extra: Default::default(),
        });
        m
    }

    /// (then, phase, on.d hook ok?, command, command alive, what it does)
    type Case = (Then, Phase, Option<bool>, Option<Ran>, bool, AfterWork);

    fn halt(why: &str) -> AfterWork {
        AfterWork::Halt(why.into())
    }

    #[test]
    fn what_the_maintenance_boot_does_after_its_work() {
        use AfterWork::*;
        use OffAction::{Reboot as R, Resume as O};
        let active = Phase::Active;
        let done = Some((Some(2), Some(0), None));
        // (then, phase, on.d hook ok?, command, command alive, what it does)
        let cases: Vec<Case> = vec![
            (Then::Stay, active, None, Some(done), false, Stay),
            (Then::Stay, active, Some(false), Some(done), false, Stay),
            (Then::Off, active, None, Some(done), false, Leave(O)),
            (Then::Reboot, active, Some(true), Some(done), false, Leave(R)),
            (Then::Off, active, None, None, false, Leave(O)),
            (Then::Off, active, Some(true), None, false, Leave(O)),
            (
                Then::Off,
                active,
                Some(false),
                None,
                false,
                halt("on.d hook 10-drain exited 3"),
            ),
            (
                Then::Off,
                active,
                Some(false),
                Some(done),
                false,
                halt("on.d hook 10-drain exited 3"),
            ),
            (Then::Off, active, None, Some(None), false, Wait),
            (Then::Off, active, None, Some(Some((None, None, None))), true, Wait),
            (
                Then::Off,
                active,
                None,
                Some(Some((None, None, None))),
                false,
                halt("the scheduled command did not finish (its worker was killed, or the node rebooted)"),
            ),
            (
                Then::Off,
                active,
                None,
                Some(Some((Some(2), Some(1), None))),
                false,
                halt("the scheduled command exited 1"),
            ),
            (
                Then::Reboot,
                active,
                None,
                Some(Some((Some(2), None, Some(9)))),
                false,
                halt("the scheduled command was killed by signal 9"),
            ),
            (
                Then::Off,
                active,
                None,
                Some(Some((Some(2), Some(127), None))),
                false,
                halt("the scheduled command exited 127"),
            ),
            (Then::Off, Phase::Pending, None, Some(None), false, Stay),
            (Then::Stay, Phase::Resuming, None, Some(done), false, Stay),
            (Then::Off, Phase::Resuming, None, Some(done), false, Retry(O)),
            (Then::Reboot, Phase::Resuming, None, Some(done), false, Retry(R)),
        ];
        for (then, phase, on_ok, command, alive, want) in cases {
            let mut m = episode(then, phase);
            if let Some(ok) = on_ok {
                m.hooks.push(hook(HookPhase::On, ok));
            }
            if let Some(ran) = command {
                m = with_command(m, ran);
            }
            assert_eq!(
                after_work(&m, alive),
                want,
                "{then:?} {phase:?} {on_ok:?} {:?}",
                m.command
            );
        }
    }

    #[test]
    fn only_on_d_hooks_halt_and_a_retry_keeps_the_leave_begun() {
        // A failed check.d or pre-on.d hook stopped nothing: umm on ran.
        let mut m = episode(Then::Off, Phase::Active);
        m.hooks.push(hook(HookPhase::PreOn, false));
        assert_eq!(after_work(&m, false), AfterWork::Leave(OffAction::Resume));
        // `umm off reboot` by hand while leaving: the retry reboots too.
        let mut m = episode(Then::Off, Phase::Resuming);
        m.leaving = Some(Leaving {
            action: OffAction::Reboot,
            started: 1,
            last_try: 1,
            tries: 1,
            boot_id: "b".into(),
            finisher: None,
            extra: Default::default(),
        });
        assert_eq!(after_work(&m, false), AfterWork::Retry(OffAction::Reboot));
    }
}

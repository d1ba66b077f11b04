//! A model test of the boot rules (issue #11): random sequences of what
//! happens to a node (clean reboots, crashes, uptime resets, `umm on`,
//! `umm off`, `enable`, `disable`, `umm=on`/`umm=off` on the kernel command
//! line, configuration changes) run through `umm::rules` and through a
//! small model written from docs/state.md's "Counting rules", independently of
//! src/rules. After every step both must agree on the mode of each boot,
//! the counter and the maintenance; and two properties are checked on their
//! own: a disabled umm never enters maintenance, and maintenance holds
//! across crashes until `umm off`.
//!
//! The model has one method per kind of step, so a new phase (such as
//! `resuming`) is one more field and one more arm.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use umm::model::settings::Policy;
use umm::model::state::OffAction;
use umm::model::state::{Claim, Mode, Phase, Reason, State};
use umm::rules::{self, BootInputs, ClaimOutcome, CmdlineRequest, ResetCause};

#[derive(Clone, Copy, Debug)]
enum Step {
    CleanReboot,
    Crash,
    UptimeReset,
    On,
    Off,
    /// The off.d hooks and the check ran (umm off waiting, umm-after):
    /// an episode that is leaving closes.
    Finish,
    Enable,
    Disable,
    Cmdline(CmdlineRequest),
    Config {
        enabled: bool,
        reboot_count: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::CleanReboot),
        8 => Just(Step::Crash),
        2 => Just(Step::UptimeReset),
        2 => Just(Step::On),
        2 => Just(Step::Off),
        2 => Just(Step::Finish),
        1 => Just(Step::Enable),
        1 => Just(Step::Disable),
        1 => prop::sample::select(vec![
            CmdlineRequest::None,
            CmdlineRequest::On,
            CmdlineRequest::Off
        ])
        .prop_map(Step::Cmdline),
        1 => (prop::bool::weighted(0.8), 0u32..4)
            .prop_map(|(enabled, reboot_count)| Step::Config { enabled, reboot_count }),
    ]
}

/// The documented rules (docs/state.md), on as little state as they need.
#[derive(Clone, Debug, Default)]
struct Model {
    counter: u32,
    /// A request (pending), a maintenance in force (active) or being left
    /// (resuming), and why.
    maintenance: Option<(Phase, Reason)>,
    switch_off: bool,
    /// Whether there was a boot before, and how the running one is ending.
    booted: bool,
    clean: bool,
    reset_reached: bool,
}

impl Model {
    fn enabled(&self, policy: Policy) -> bool {
        policy.enabled && !self.switch_off
    }

    /// A boot: counts the previous one and decides this one.
    fn boot(&mut self, policy: Policy, cmdline: CmdlineRequest) -> Mode {
        // Unclean: no clean shutdown and not `counter_reset_time` of uptime.
        let previous_unclean = self.booted && !self.clean && !self.reset_reached;
        self.booted = true;
        self.clean = false;
        self.reset_reached = false;
        if !self.enabled(policy) {
            // Nothing counted, nothing enforced; a request keeps waiting, an
            // episode being left stays so.
            self.counter = 0;
            if let Some(m) = self.maintenance.as_mut().filter(|m| m.0 != Phase::Resuming) {
                m.0 = Phase::Pending;
            }
            return Mode::Normal;
        }
        self.counter = if previous_unclean {
            self.counter + 1
        } else {
            0
        };
        if let Some((Phase::Resuming, _)) = self.maintenance {
            // Left in an earlier boot: this one is normal and finishes it,
            // unless it must stop in maintenance anyway (the old one closes).
            let again = cmdline == CmdlineRequest::On
                || (cmdline == CmdlineRequest::None && self.counter > policy.reboot_count);
            if !again {
                return Mode::Normal;
            }
            self.maintenance = None;
        }
        if cmdline == CmdlineRequest::Off {
            // Skips this boot, keeps the request.
            if let Some(m) = &mut self.maintenance {
                m.0 = Phase::Pending;
            }
            return Mode::Normal;
        }
        if let Some(m) = &mut self.maintenance {
            // Holds, whatever happened, until umm off.
            m.0 = Phase::Active;
            return Mode::Maintenance;
        }
        if cmdline == CmdlineRequest::On {
            self.maintenance = Some((Phase::Active, Reason::Cmdline));
            return Mode::Maintenance;
        }
        if self.counter > policy.reboot_count {
            self.maintenance = Some((Phase::Active, Reason::CrashLoop));
            return Mode::Maintenance;
        }
        Mode::Normal
    }

    fn clean_shutdown(&mut self) {
        self.counter = 0;
        self.clean = true;
    }

    fn uptime_reached(&mut self) {
        self.counter = 0;
        self.reset_reached = true;
    }

    fn on(&mut self, policy: Policy) -> bool {
        if !self.enabled(policy) || self.maintenance.is_some() {
            return false;
        }
        self.maintenance = Some((Phase::Pending, Reason::Manual));
        true
    }

    /// A request is cancelled; a maintenance starts (or retries) leaving.
    fn off(&mut self) -> bool {
        match self.maintenance.take() {
            None => return false,
            Some((Phase::Pending, _)) => {}
            Some((_, reason)) => self.maintenance = Some((Phase::Resuming, reason)),
        }
        self.counter = 0;
        true
    }

    fn finish(&mut self) {
        if let Some((Phase::Resuming, _)) = self.maintenance {
            self.maintenance = None;
        }
    }

    fn disable(&mut self) -> bool {
        if self
            .maintenance
            .is_some_and(|(phase, _)| phase != Phase::Resuming)
        {
            return false;
        }
        self.switch_off = true;
        self.counter = 0;
        true
    }

    /// `umm enable` is refused while the configuration disables umm.
    fn enable(&mut self, policy: Policy) -> bool {
        if !policy.enabled {
            return false;
        }
        self.switch_off = false;
        true
    }
}

/// The real rules, driven the way the boot unit and the commands drive them.
struct Node {
    state: State,
    boot: u64,
}

impl Node {
    fn id(&self) -> String {
        format!("boot-{}", self.boot)
    }

    fn boot(&mut self, policy: Policy, cmdline: CmdlineRequest) -> Mode {
        self.boot += 1;
        let id = self.id();
        let input = BootInputs {
            boot_id: &id,
            now: self.boot as i64 * 100,
            cmdline,
            policy,
        };
        let (next, outcome) = rules::boot(&self.state, &input);
        self.state = next;
        outcome.mode
    }

    fn reset(&mut self, cause: ResetCause) {
        let id = self.id();
        self.state = rules::record_reset(&self.state, &id, self.boot as i64 * 100 + 1, cause).0;
    }
}

fn run_sequence(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut policy = Policy {
        enabled: true,
        reboot_count: 2,
    };
    let mut cmdline = CmdlineRequest::None;
    let mut model = Model::default();
    let mut node = Node {
        state: State::default(),
        boot: 0,
    };
    let boot = |node: &mut Node, model: &mut Model, policy: Policy, cmdline| {
        let before = model.clone();
        let mode = node.boot(policy, cmdline);
        let expected = model.boot(policy, cmdline);
        prop_assert_eq!(mode, expected, "mode of boot {}", node.boot);
        if !before.enabled(policy) {
            prop_assert_eq!(mode, Mode::Normal, "a disabled umm entered maintenance");
        }
        let held = before
            .maintenance
            .is_some_and(|(phase, _)| phase != Phase::Resuming);
        if held && before.enabled(policy) && cmdline != CmdlineRequest::Off {
            prop_assert_eq!(mode, Mode::Maintenance, "maintenance did not hold");
        }
        Ok(())
    };
    boot(&mut node, &mut model, policy, cmdline)?;
    for (i, step) in steps.iter().enumerate() {
        let now = node.boot as i64 * 100 + 2;
        match *step {
            Step::CleanReboot => {
                node.reset(ResetCause::CleanShutdown);
                model.clean_shutdown();
                boot(&mut node, &mut model, policy, cmdline)?;
            }
            Step::Crash => boot(&mut node, &mut model, policy, cmdline)?,
            Step::UptimeReset => {
                node.reset(ResetCause::UptimeReached);
                model.uptime_reached();
            }
            Step::On => {
                let real = rules::request(&node.state, policy, now, None, vec![]);
                prop_assert_eq!(real.is_ok(), model.on(policy), "umm on at step {}", i);
                if let Ok(next) = real {
                    node.state = next;
                }
            }
            Step::Off => {
                let id = node.id();
                let real = rules::leave(&node.state, now, &id, OffAction::Resume, vec![]);
                prop_assert_eq!(real.is_ok(), model.off(), "umm off at step {}", i);
                if let Ok((next, _)) = real {
                    node.state = next;
                }
            }
            Step::Finish => {
                let me = Claim {
                    boot_id: node.id(),
                    pid: 1,
                    pid_start: None,
                    since: now,
                    extra: Default::default(),
                };
                if let (next, ClaimOutcome::Claimed { .. }) =
                    rules::claim_finish(&node.state, &me, false)
                {
                    node.state = rules::finish(&next, &me, now, vec![], None)
                        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                }
                model.finish();
            }
            Step::Disable => {
                let real = rules::disable(&node.state);
                prop_assert_eq!(real.is_ok(), model.disable(), "umm disable at step {}", i);
                if let Ok(next) = real {
                    node.state = next;
                }
            }
            Step::Enable => {
                // As `umm enable` does: refused while the configuration disables umm.
                if model.enable(policy) {
                    node.state = rules::enable(&node.state);
                }
            }
            Step::Cmdline(c) => cmdline = c,
            Step::Config {
                enabled,
                reboot_count,
            } => {
                policy = Policy {
                    enabled,
                    reboot_count,
                }
            }
        }
        prop_assert_eq!(
            node.state.unclean_boots,
            model.counter,
            "counter after step {} ({:?})",
            i,
            step
        );
        let real_m = node.state.maintenance.as_ref().map(|m| (m.phase, m.reason));
        prop_assert_eq!(
            real_m,
            model.maintenance,
            "maintenance after step {} ({:?})",
            i,
            step
        );
        prop_assert_eq!(
            node.state.switch_on,
            !model.switch_off,
            "switch after step {}",
            i
        );
    }
    Ok(())
}

#[test]
fn the_boot_rules_match_the_readme() {
    const CASES: u32 = 10_000;
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(0x756d_6d12),
        failure_persistence: None,
        ..Config::default()
    });
    let steps = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&prop::collection::vec(step(), 1..40), |seq| {
        steps.fetch_add(seq.len(), std::sync::atomic::Ordering::Relaxed);
        run_sequence(&seq)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "boot rules: {CASES} sequences, {} steps, in {:?}",
        steps.into_inner(),
        started.elapsed()
    );
}

/// The model itself, on the documented example (docs/state.md): with the defaults the
/// third unclean boot in a row stops in maintenance.
#[test]
fn the_model_says_what_the_readme_says() {
    let policy = Policy {
        enabled: true,
        reboot_count: 2,
    };
    let mut m = Model::default();
    let modes: Vec<Mode> = (0..4)
        .map(|_| m.boot(policy, CmdlineRequest::None))
        .collect();
    assert_eq!(
        modes,
        [Mode::Normal, Mode::Normal, Mode::Normal, Mode::Maintenance]
    );
    assert_eq!(m.maintenance, Some((Phase::Active, Reason::CrashLoop)));
}

//! The lab's scheduler: one queue of jobs (base images, ready states,
//! scenarios) on N threads. Each thread takes the first job whose input
//! exists: base images and ready states first (a variant with more
//! scenario time first), then the scenarios longest first, by the seconds
//! of the last run (tests/vm/timings.txt), so that a variant's scenarios
//! start as soon as its ready state is saved and no long scenario is left
//! running alone at the end. A scenario not timed yet counts as the
//! longest.

use crate::image::{BaseImage, Ready};
use crate::run::Outcome;
use crate::scenarios::Scenario;
use crate::timings::Timings;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

/// A unit of the lab's work. Base images and ready states are made only
/// for the scenarios selected, and a scenario starts as soon as what it
/// starts from exists, not when every variant is prepared.
#[derive(Clone, Copy)]
pub enum Job<'a> {
    Base(&'static str),
    Ready(&'static str),
    /// The scenario and its index in the selection (for the summary order).
    Scenario(&'a Scenario, usize),
}

/// What the workers share: the jobs not started yet, in the order they
/// are preferred, and what the finished preparation jobs made (an error
/// fails only the scenarios that needed it).
pub struct Board<'a> {
    pub todo: Vec<Job<'a>>,
    pub bases: HashMap<&'static str, Result<BaseImage, String>>,
    pub ready: HashMap<&'static str, Result<Ready, String>>,
    /// (what, seconds) for the timing table.
    pub steps: Vec<(String, f64)>,
    pub outcomes: Vec<Option<Outcome>>,
}

enum Pick<'a> {
    Run(Job<'a>),
    Wait,
    Done,
}

impl<'a> Board<'a> {
    /// Preparation first (a variant with more scenario time first), then
    /// the scenarios, longest first.
    pub fn new(selected: &[&'a Scenario], timings: &Timings) -> Self {
        let secs = |s: &Scenario| timings.secs(s.name).unwrap_or(u32::MAX);
        let mut variants: Vec<(&'static str, u32)> = Vec::new();
        for s in selected {
            match variants.iter_mut().find(|(v, _)| *v == s.variant) {
                Some((_, total)) => *total = total.saturating_add(secs(s)),
                None => variants.push((s.variant, secs(s))),
            }
        }
        variants.sort_by_key(|v| std::cmp::Reverse(v.1));
        let mut todo = Vec::new();
        for (v, _) in &variants {
            todo.push(Job::Base(v));
            if selected.iter().any(|s| s.variant == *v && s.ready) {
                todo.push(Job::Ready(v));
            }
        }
        let mut scenarios: Vec<(usize, &'a Scenario)> =
            selected.iter().copied().enumerate().collect();
        scenarios.sort_by_key(|(_, s)| std::cmp::Reverse(secs(s)));
        todo.extend(scenarios.into_iter().map(|(i, s)| Job::Scenario(s, i)));
        Board {
            todo,
            bases: HashMap::new(),
            ready: HashMap::new(),
            steps: Vec::new(),
            outcomes: (0..selected.len()).map(|_| None).collect(),
        }
    }

    /// The first job whose inputs are made (or failed).
    fn pick(&mut self) -> Pick<'a> {
        let runnable = |job: &Job| match job {
            Job::Base(_) => true,
            Job::Ready(v) => self.bases.contains_key(v),
            Job::Scenario(s, _) if s.ready => self.ready.contains_key(s.variant),
            Job::Scenario(s, _) => self.bases.contains_key(s.variant),
        };
        match self.todo.iter().position(runnable) {
            Some(i) => Pick::Run(self.todo.remove(i)),
            None if self.todo.is_empty() => Pick::Done,
            None => Pick::Wait,
        }
    }
}

/// What a job starts from, copied out of the board: the variant's base
/// image and ready state, or why they could not be made.
pub struct Inputs {
    pub base: Option<Result<BaseImage, String>>,
    pub ready: Option<Result<Ready, String>>,
}

/// What a finished job made.
pub enum Done {
    Base(Result<BaseImage, String>, f64),
    Ready(Result<Ready, String>),
    Scenario(usize, Outcome),
}

impl Board<'_> {
    fn inputs(&self, job: Job) -> Inputs {
        let variant = match job {
            Job::Base(v) | Job::Ready(v) => v,
            Job::Scenario(s, _) => s.variant,
        };
        Inputs {
            base: self.bases.get(variant).cloned(),
            ready: self.ready.get(variant).cloned(),
        }
    }

    fn record(&mut self, job: Job, done: Done) {
        match (job, done) {
            (Job::Base(v), Done::Base(base, secs)) => {
                if base.is_ok() {
                    self.steps.push((format!("base image {v}"), secs));
                }
                self.bases.insert(v, base);
            }
            (Job::Ready(v), Done::Ready(ready)) => {
                if let Ok(r) = &ready {
                    self.steps.push((
                        format!("ready state {v} (install + boot + save)"),
                        r.made_in.as_secs_f64(),
                    ));
                }
                self.ready.insert(v, ready);
            }
            (_, Done::Scenario(i, outcome)) => {
                if let Some(slot) = self.outcomes.get_mut(i) {
                    *slot = Some(outcome);
                }
            }
            // A job's result always matches its kind (see `run_job`).
            _ => {}
        }
    }
}

/// Runs every job of `board` on `jobs` threads; each thread takes the
/// first job it can start. Returns the preparation steps and the outcomes
/// in the order of the selection.
pub fn run_board<'a>(
    board: Board<'a>,
    jobs: usize,
    run: impl Fn(Inputs, Job) -> Done + Sync,
) -> Board<'a> {
    let board = Mutex::new(board);
    let changed = Condvar::new();
    std::thread::scope(|scope| {
        for n in 0..jobs.max(1) {
            let (board, changed, run) = (&board, &changed, &run);
            std::thread::Builder::new()
                .name(format!("job{n}"))
                .spawn_scoped(scope, move || {
                    let mut guard = board.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        let job = match guard.pick() {
                            Pick::Run(job) => job,
                            Pick::Done => break,
                            // Another thread is making what the rest needs.
                            Pick::Wait => {
                                guard = changed.wait(guard).unwrap_or_else(|e| e.into_inner());
                                continue;
                            }
                        };
                        // The inputs are read under the lock, the work is done without it.
                        let done = {
                            let inputs = guard.inputs(job);
                            drop(guard);
                            run(inputs, job)
                        };
                        guard = board.lock().unwrap_or_else(|e| e.into_inner());
                        guard.record(job, done);
                        changed.notify_all();
                    }
                })
                .expect("spawning a lab thread");
        }
    });
    board.into_inner().unwrap_or_else(|e| e.into_inner())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &mut crate::ctx::Ctx) -> anyhow::Result<()> {
        Ok(())
    }

    fn name(job: &Job) -> String {
        match job {
            Job::Base(v) => format!("base {v}"),
            Job::Ready(v) => format!("ready {v}"),
            Job::Scenario(s, _) => s.name.to_owned(),
        }
    }

    #[test]
    fn preparation_first_then_the_longest_scenarios_of_the_last_run_untimed_first() {
        let short = Scenario::new("short", "systemd", noop);
        let long = Scenario::new("long", "systemd", noop);
        let old = Scenario::new("old", "sysvinit", noop).bare();
        let untimed = Scenario::new("untimed", "sepvar", noop);
        let (timings, _) = Timings::parse("short 10\nlong 300\nold 200\n");
        let board = Board::new(&[&short, &long, &old, &untimed], &timings);
        let order: Vec<String> = board.todo.iter().map(name).collect();
        assert_eq!(
            order,
            [
                "base sepvar",
                "ready sepvar",
                "base systemd",
                "ready systemd",
                "base sysvinit",
                "untimed",
                "long",
                "old",
                "short"
            ]
        );
    }
}

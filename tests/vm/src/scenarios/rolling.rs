//! Rolling maintenance of a group on real nodes (issue #24): three guests
//! of one group with one slot on an etcd on the host, each sent one
//! `umm on --queue --then off -- COMMAND` at once over ssh, sessions
//! ended. The nodes pass through by themselves (umm-queue.timer), one at a
//! time; a COMMAND that fails halts the group.
//!
//! Three guests of 1 GiB each (the lab's one memory size: a resumed guest
//! must have the memory its saved state was made with) on 2 cores: about
//! 3 GiB of the host's memory, and slow boots under TCG, hence the long
//! bounds.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use serde_json::Value;

use super::common::{installed, status, umm_off_resumes};
use super::fleet::{join_fleet, HostEtcd};
use super::Scenario;
use crate::ctx::Ctx;
use crate::vm::{run_with_deadline, Vm};

pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("rolling", "systemd", rolling)
        .about("three nodes, one slot on an etcd on the host, `umm on --queue --then off -- CMD` sent to all at once: one at a time, each CMD once, all back by themselves")
        .candidate(),
    Scenario::new("rolling-halt", "systemd", rolling_halt)
        .about("the same, CMD failing on the 2nd node to enter: it stays in maintenance, the 3rd never enters and names the halt; umm off on the 2nd lets the 3rd through")
        .candidate(),
];

/// The file each node's COMMAND appends to: one line a run.
const RAN: &str = "/root/rolling-ran";
/// Where it is, COMMAND fails (the test puts it on the nodes that have not
/// entered yet once the first one has).
const FAIL_MARK: &str = "/root/rolling-fail";
/// Bound on a whole roll of three nodes: each waits up to the queue's
/// longest backoff (5 min) after the slot frees, and boots twice under TCG.
const ROLL_BOUND: Duration = Duration::from_secs(45 * 60);
/// How long the third node must stay out after the roll halted: past two of
/// the queue's longest backoffs.
const HALT_HOLDS: Duration = Duration::from_secs(12 * 60);

fn rolling(ctx: &mut Ctx) -> Result<()> {
    let etcd = HostEtcd::start(&ctx.work_dir())?;
    let b = ctx.resume_another("b")?;
    let c = ctx.resume_another("c")?;
    let a = installed(ctx)?;
    let nodes = [&*a, &b, &c];
    let mut roll = Roll::start(&etcd, &nodes)?;
    roll.sample_until(&nodes, ROLL_BOUND, |r| r.all_back())?;
    for (i, vm) in nodes.iter().enumerate() {
        let ran = vm.ssh_ok(&format!("cat {RAN} 2>/dev/null || true"))?;
        ensure!(
            ran.lines().count() == 1,
            "{}: COMMAND ran {} times",
            ID[i],
            ran.lines().count()
        );
    }
    ensure!(
        etcd.holders(GROUP)?.is_empty(),
        "holders at the end: {:?}",
        etcd.holders(GROUP)?
    );
    eprintln!(
        "  order {:?}, {:.0} s from the queueing to the last node back",
        roll.order,
        roll.started.elapsed().as_secs_f64()
    );
    ctx.absorb(b);
    ctx.absorb(c);
    Ok(())
}

fn rolling_halt(ctx: &mut Ctx) -> Result<()> {
    let etcd = HostEtcd::start(&ctx.work_dir())?;
    let b = ctx.resume_another("b")?;
    let c = ctx.resume_another("c")?;
    let a = installed(ctx)?;
    let nodes = [&*a, &b, &c];
    let mut roll = Roll::start(&etcd, &nodes)?;
    // Once the first has entered, COMMAND fails on the other two: the
    // second to enter fails.
    roll.sample_until(&nodes, ROLL_BOUND, |r| !r.order.is_empty())?;
    let first = roll.order[0];
    for (i, vm) in nodes.iter().enumerate().filter(|(i, _)| *i != first) {
        vm.ssh_ok(&format!("touch {FAIL_MARK} && sync"))
            .map_err(|e| e.context(format!("{}: marking COMMAND to fail", ID[i])))?;
    }
    roll.sample_until(&nodes, ROLL_BOUND, |r| r.order.len() == 2 && r.command_failed(1))?;
    let second = roll.order[1];
    let third = (0..3).find(|i| !roll.order.contains(i)).unwrap_or_default();
    let halted = Instant::now();
    eprintln!("  {} entered first, {} second and failed", ID[first], ID[second]);
    // The third must not enter; its status names the halt.
    let held = roll.sample_until(&nodes, HALT_HOLDS, |r| r.order.len() > 2);
    ensure!(
        held.is_err() && roll.order.len() == 2,
        "{} entered {:.0} s after {} halted the roll",
        ID[third],
        halted.elapsed().as_secs_f64(),
        ID[second]
    );
    let said = nodes[third].ssh_ok("umm status")?;
    ensure!(
        said.contains(&format!("halted by {}", ID[second])),
        "{}'s status does not name the halt: {said}",
        ID[third]
    );
    ensure!(
        etcd.holders(GROUP)? == [ID[second]],
        "holders while halted: {:?}",
        etcd.holders(GROUP)?
    );
    // The operator fixes the node and runs umm off there: the roll goes on.
    umm_off_resumes(nodes[second])?;
    roll.sample_until(&nodes, ROLL_BOUND, |r| r.all_back())?;
    ensure!(
        roll.order.len() == 3,
        "{} never entered after umm off on {}",
        ID[third],
        ID[second]
    );
    ctx.absorb(b);
    ctx.absorb(c);
    Ok(())
}

const GROUP: &str = "lab";
const ID: [&str; 3] = ["node-a", "node-b", "node-c"];

/// What the test saw of the roll.
struct Roll<'e> {
    etcd: &'e HostEtcd,
    started: Instant,
    /// The nodes in the order they took the slot.
    order: Vec<usize>,
    /// Each node's last `umm status --json` (Null while it did not answer).
    last: [Value; 3],
    /// Each node's boot id when its request was sent.
    boots: [String; 3],
    /// Back in service in a later boot, nothing queued.
    back: [bool; 3],
}

impl<'e> Roll<'e> {
    /// Joins the nodes to the group and sends each its queued request at
    /// once, over its own ssh session, which ends.
    fn start(etcd: &'e HostEtcd, nodes: &[&Vm; 3]) -> Result<Roll<'e>> {
        let mut boots: [String; 3] = Default::default();
        for (i, vm) in nodes.iter().enumerate() {
            join_fleet(vm, ID[i], etcd.port)?;
            vm.ssh_ok(&format!("rm -f {RAN} {FAIL_MARK}; sync"))?;
            boots[i] = vm.boot_id()?;
        }
        let command = format!(
            "umm on --queue --then off -- sh -c \"echo ran >> {RAN}; sync; test ! -e {FAIL_MARK}\""
        );
        // One ssh client a node, all started before any is waited for (a
        // Vm is not shared between threads: its ssh command line is).
        let clients: Vec<std::process::Command> = nodes
            .iter()
            .map(|vm| {
                let mut c = std::process::Command::new("sh");
                c.arg("-c")
                    .arg(format!("exec {} '{command}'", vm.ssh_command()));
                c
            })
            .collect();
        let sent: Vec<Result<std::process::Output>> = std::thread::scope(|s| {
            let runs: Vec<_> = clients
                .into_iter()
                .map(|mut c| s.spawn(move || run_with_deadline(&mut c, Duration::from_secs(60))))
                .collect();
            runs.into_iter()
                .map(|r| r.join().unwrap_or_else(|_| bail!("an ssh thread panicked")))
                .collect()
        });
        for (i, out) in sent.into_iter().enumerate() {
            let out = out?;
            ensure!(
                out.status.success(),
                "{}: `{command}` exit {:?}: {}{}",
                ID[i],
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Roll {
            etcd,
            started: Instant::now(),
            order: Vec::new(),
            last: [Value::Null, Value::Null, Value::Null],
            boots,
            back: [false; 3],
        })
    }

    /// One look at etcd's holders and every node's status: never more than
    /// one holder, never more than one node out of service.
    fn sample(&mut self, nodes: &[&Vm; 3]) -> Result<()> {
        let holders = self.etcd.holders(GROUP)?;
        ensure!(holders.len() <= 1, "etcd's key holds {holders:?}");
        for h in &holders {
            if let Some(i) = ID.iter().position(|id| id == h) {
                if !self.order.contains(&i) {
                    self.order.push(i);
                }
            }
        }
        for (i, vm) in nodes.iter().enumerate() {
            // A node rebooting does not answer: its last status stands.
            if let Ok(s) = status(vm) {
                self.last[i] = s;
            }
            if self.last[i]["state"] == "operational" && !self.back[i] {
                let state = vm.ssh_ok("cat /var/lib/umm/state.json").unwrap_or_default();
                let queued = serde_json::from_str::<Value>(&state)
                    .map(|s| !s["queued"].is_null())
                    .unwrap_or(true);
                let rebooted = vm.boot_id().is_ok_and(|b| b != self.boots[i]);
                self.back[i] = rebooted && !queued;
            }
        }
        let out: BTreeSet<&str> = (0..3)
            .filter(|&i| {
                matches!(
                    self.last[i]["state"].as_str(),
                    Some("pending" | "maintenance" | "resuming")
                )
            })
            .map(|i| ID[i])
            .collect();
        ensure!(out.len() <= 1, "out of service at once: {out:?}");
        Ok(())
    }

    /// Samples every 2 s until `done`, at most `bound`.
    fn sample_until(
        &mut self,
        nodes: &[&Vm; 3],
        bound: Duration,
        done: impl Fn(&Roll) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + bound;
        loop {
            self.sample(nodes)?;
            if done(self) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "not done within {:?}: order {:?}, states {:?}",
                bound,
                self.order,
                self.last.iter().map(|s| s["state"].clone()).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Every node has entered and is back in service in a later boot,
    /// nothing queued.
    fn all_back(&self) -> bool {
        self.order.len() == 3 && self.back.iter().all(|b| *b)
    }

    /// The `nth` node to enter is in maintenance with its COMMAND failed.
    fn command_failed(&self, nth: usize) -> bool {
        self.order.get(nth).is_some_and(|&i| {
            self.last[i]["state"] == "maintenance"
                && self.last[i]["command"]["exit_code"]
                    .as_i64()
                    .is_some_and(|c| c != 0)
        })
    }
}

//! Rolling maintenance of a whole group, end to end (issue #24's proof):
//! nodes are temporary roots with the recording init system (tests/common)
//! and the real `umm` binary, in one fleet group on a real etcd on loopback
//! (tests/common/etcd.rs); the health gate asks a real Prometheus on
//! loopback (tests/common/prometheus.rs).
//!
//! Each node gets one `umm on --queue --then off -- COMMAND`, as an
//! operator's ssh loop would send it, and then the test plays the fleet's
//! clock: one *step* is one minute of the nodes' wall clock (`UMM_NOW`)
//! and one run of umm-queue.timer (`umm internal queue`) on every node. A
//! node whose turn came asked the (recording) init system for a reboot; at
//! the next step it boots (`umm internal boot`), and `WORK_STEPS` later
//! umm-maintenance.service runs (`umm internal maintenance`: the on.d hooks
//! and COMMAND, then the leave by itself), with umm-after.service
//! (`umm internal after-resume`) if the leave waits for the normal target.
//! After every run of umm, the group is checked: never more than `slots`
//! nodes out of service, never more than `slots` holders in etcd's key.
//!
//! Without etcd (or prometheus for the gate test) the tests print SKIPPED
//! and pass, unless `UMM_FLEET_REQUIRE_ETCD=1` (`UMM_METRICS_REQUIRE_PROMTOOL=1`).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::etcd::{one_etcd, raw_holders, Etcds};
use common::prometheus::{Prometheus, CLEAR, FIRING};
use common::{Node, NOW};
use serde_json::Value;

/// The minutes between a node's boot into maintenance and the end of its
/// COMMAND: the work itself, in the fake clock.
const WORK_STEPS: u32 = 3;

/// One minute of the fake clock: the period of umm-queue.timer.
const STEP_SECS: i64 = 60;

/// Says `line` on the terminal (the harness captures eprintln!).
fn tell(line: &str) {
    let mut terminal = std::io::stderr();
    writeln!(terminal, "{line}").unwrap();
}

/// Where one node of the roll stands, as the test drives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Queued: only the timer runs.
    Queued,
    /// Its turn came (the reboot was asked for) at this step.
    Rebooting { since: u32 },
    /// Booted into maintenance at this step; COMMAND runs WORK_STEPS later.
    Working { booted: u32, turn: u32 },
    /// Back in service (or left there by a failure): nothing more to play.
    Done,
    /// Its request ended unserved (the queue's span is over).
    Expired,
}

struct RollNode {
    node: Node,
    id: String,
    stage: Stage,
    /// Reboots asked of the init system so far.
    reboots_seen: usize,
    /// Steps from its turn (slot taken) to its slot given back.
    maintenance_steps: Option<u32>,
}

/// A group of nodes on one etcd, and the clock they share.
struct Roll {
    etcd: Etcds,
    group: String,
    slots: usize,
    nodes: Vec<RollNode>,
    step: u32,
    /// The most nodes out of service, and holders in etcd, seen at once.
    most_out: usize,
    most_holders: usize,
}

/// `umm.toml` of node `id`: the group on `endpoint`, and `extra` (a
/// `[rolling]` table, say).
fn config(endpoint: &str, group: &str, id: &str, slots: usize, extra: &str) -> String {
    format!(
        "[fleet]\nbackend = \"etcd\"\ngroup = \"{group}\"\nid = \"{id}\"\nendpoints = [\"{endpoint}\"]\nslots = {slots}\ntimeout = \"10s\"\n{extra}"
    )
}

/// COMMAND of node `i`: appends a line to its counter file (`/ran` in its
/// root), and exits 1 when `fails`.
fn command(node: &Node, fails: bool) -> Vec<String> {
    let counter = node.path("/ran");
    let exit = if fails { 1 } else { 0 };
    vec![
        "sh".into(),
        "-c".into(),
        format!("echo ran >> '{}'; exit {exit}", counter.display()),
    ]
}

impl Roll {
    /// `n` nodes of `group`, booted once, none queued yet; `None` without
    /// etcd.
    fn new(test: &str, n: usize, slots: usize, extra: &str) -> Option<Roll> {
        let etcd = one_etcd(test)?;
        let endpoint = etcd.endpoint(0);
        let group = "roll".to_string();
        let nodes = (0..n)
            .map(|i| {
                let id = format!("node-{i:02}");
                let mut node = Node::new().bounded(Duration::from_secs(60));
                node.write(
                    "/etc/umm/umm.toml",
                    &config(&endpoint, &group, &id, slots, extra),
                );
                node.env.push(("UMM_NOW".into(), NOW.into()));
                node.boot();
                RollNode {
                    node,
                    id,
                    stage: Stage::Queued,
                    reboots_seen: 0,
                    maintenance_steps: None,
                }
            })
            .collect();
        Some(Roll {
            etcd,
            group,
            slots,
            nodes,
            step: 0,
            most_out: 0,
            most_holders: 0,
        })
    }

    /// The fake wall clock at the current step, Unix seconds.
    fn now(&self) -> i64 {
        NOW.parse::<i64>().unwrap() + i64::from(self.step) * STEP_SECS
    }

    /// `umm on --queue=SPAN --then off -- COMMAND` on every node, node
    /// `failing` (if any) with a COMMAND that exits 1. Each returns at once.
    fn queue_all(&mut self, span: &str, failing: Option<usize>) {
        for i in 0..self.nodes.len() {
            let argv = command(&self.nodes[i].node, failing == Some(i));
            let queue_arg = format!("--queue={span}");
            let mut args = vec!["on", queue_arg.as_str(), "--then", "off", "--"];
            args.extend(argv.iter().map(String::as_str));
            let node = &self.nodes[i].node;
            let ran = node.run(&args);
            assert_eq!(
                ran.code,
                Some(0),
                "{}: umm {args:?}: {}",
                self.nodes[i].id,
                ran.out
            );
            assert!(
                ran.elapsed < Duration::from_secs(10),
                "umm on --queue did not return at once: {:?}",
                ran.elapsed
            );
            assert_eq!(node.status()["state"], "operational", "queued, not pending");
            assert!(
                queued(node).is_some(),
                "{}: nothing queued",
                self.nodes[i].id
            );
            self.check();
        }
    }

    /// Nodes out of service (pending, maintenance, resuming) and etcd's
    /// holders, checked against the slots; after every run of umm.
    fn check(&mut self) {
        let out: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.node.status()["state"] != "operational")
            .map(|n| n.id.as_str())
            .collect();
        let holders = raw_holders(&self.etcd.endpoint(0), &self.group);
        self.most_out = self.most_out.max(out.len());
        self.most_holders = self.most_holders.max(holders.len());
        assert!(
            out.len() <= self.slots,
            "step {}: {out:?} out of service at once",
            self.step
        );
        assert!(
            holders.len() <= self.slots,
            "step {}: etcd's key holds {holders:?}",
            self.step
        );
    }

    /// One minute: the clock moves on, each node does what is due at this
    /// step (a boot, COMMAND, the timer), and the group is checked after
    /// every run.
    fn tick(&mut self) {
        self.step += 1;
        let now = self.now().to_string();
        for i in 0..self.nodes.len() {
            self.nodes[i].node.env.retain(|(k, _)| k != "UMM_NOW");
            self.nodes[i].node.env.push(("UMM_NOW".into(), now.clone()));
            self.play(i);
            self.check();
        }
    }

    /// What node `i` does at this step.
    fn play(&mut self, i: usize) {
        let step = self.step;
        let n = &mut self.nodes[i];
        match n.stage {
            Stage::Queued => {
                let ran = n.node.run(&["internal", "queue"]);
                assert_eq!(ran.code, Some(0), "{}: internal queue: {}", n.id, ran.out);
                let reboots = reboots(&n.node);
                if reboots > n.reboots_seen {
                    n.reboots_seen = reboots;
                    n.stage = Stage::Rebooting { since: step };
                } else if queued(&n.node).is_none() {
                    n.stage = Stage::Expired;
                }
            }
            Stage::Rebooting { since } => {
                n.node.clean_reboot();
                assert_eq!(n.node.status()["state"], "maintenance", "{}", n.id);
                n.stage = Stage::Working {
                    booted: step,
                    turn: since,
                };
            }
            Stage::Working { booted, turn } if step >= booted + WORK_STEPS => {
                let ran = n.node.run(&["internal", "maintenance"]);
                assert_eq!(
                    ran.code,
                    Some(0),
                    "{}: internal maintenance: {}",
                    n.id,
                    ran.out
                );
                if n.node.status()["state"] == "resuming" {
                    n.node.expect(0, &["internal", "after-resume"]);
                }
                if n.node.status()["state"] == "operational" {
                    n.maintenance_steps = Some(step - turn);
                }
                n.stage = Stage::Done;
            }
            Stage::Working { .. } | Stage::Done | Stage::Expired => {}
        }
    }

    /// Ticks until `done` (checked after every step), at most `limit` steps.
    fn run_until(&mut self, limit: u32, mut done: impl FnMut(&Roll) -> bool) -> bool {
        for _ in 0..limit {
            self.tick();
            if done(self) {
                return true;
            }
        }
        false
    }

    fn all_done(&self) -> bool {
        self.nodes.iter().all(|n| n.stage == Stage::Done)
    }

    fn entered(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| !matches!(n.stage, Stage::Queued | Stage::Expired))
            .map(|n| n.id.as_str())
            .collect()
    }
}

/// The reboots the node asked of the recording init system.
fn reboots(node: &Node) -> usize {
    node.actions()
        .iter()
        .filter(|a| *a == "reboot" || *a == "kexec")
        .count()
}

/// The queued request in the node's state file, if any.
fn queued(node: &Node) -> Option<Value> {
    let state: Value = serde_json::from_str(&node.read("/var/lib/umm/state.json")).ok()?;
    Some(state.get("queued")?.clone()).filter(|q| !q.is_null())
}

/// How many times COMMAND ran on the node.
fn runs(node: &Node) -> usize {
    node.read("/ran").lines().count()
}

/// 10 nodes queued at once for 2 slots pass through one after another by
/// themselves: never more than 2 out of service, each COMMAND once, all
/// back in service, nothing held in etcd at the end. Prints the
/// coordination overhead.
#[test]
fn ten_nodes_queued_at_once_pass_through_two_slots_by_themselves() {
    const NODES: usize = 10;
    let Some(mut roll) = Roll::new("ten_nodes_queued_at_once", NODES, 2, "") else {
        return;
    };
    let started = Instant::now();
    roll.queue_all("24h", None);
    let finished = roll.run_until(300, Roll::all_done);
    assert!(finished, "after 300 steps, still out: {:?}", stages(&roll));
    for n in &roll.nodes {
        assert_eq!(n.node.status()["state"], "operational", "{}", n.id);
        assert_eq!(
            runs(&n.node),
            1,
            "{}: COMMAND ran {} times",
            n.id,
            runs(&n.node)
        );
        assert!(queued(&n.node).is_none(), "{}: still queued", n.id);
        assert!(
            n.maintenance_steps.is_some(),
            "{}: did not leave by itself",
            n.id
        );
    }
    assert_eq!(roll.etcd.holders(&roll.group), Vec::<String>::new());
    assert_eq!(roll.most_out, 2, "the 2 slots were never used together");
    overhead(&roll, started.elapsed());
}

/// The coordination overhead in the fake clock's terms: the steps (timer
/// minutes) from queueing to the last node back in service, against the
/// sum of the nodes' maintenance times (slot taken to slot given back)
/// divided by the slots, which is the wall time a perfect scheduler with
/// no waiting between nodes would need.
fn overhead(roll: &Roll, real: Duration) {
    let sum: u32 = roll.nodes.iter().filter_map(|n| n.maintenance_steps).sum();
    let ideal = sum.div_ceil(roll.slots as u32);
    tell(&format!(
        "coordination overhead: {} nodes, {} slots: the roll took {} steps (timer minutes) \
         from queueing to the last node back in service; their maintenance times (slot \
         taken to given back, {WORK_STEPS} minutes of work each, the boot included) sum to \
         {sum} steps, {ideal} steps of wall time with {} slots always busy: {} steps \
         ({:.0}%) of queueing and backoff; {:.1}s of real time",
        roll.nodes.len(),
        roll.slots,
        roll.step,
        roll.slots,
        roll.step.saturating_sub(ideal),
        100.0 * f64::from(roll.step.saturating_sub(ideal)) / f64::from(ideal.max(1)),
        real.as_secs_f64()
    ));
}

fn stages(roll: &Roll) -> Vec<(String, Stage)> {
    roll.nodes.iter().map(|n| (n.id.clone(), n.stage)).collect()
}

/// COMMAND fails on node 4: it stays in maintenance holding its slot, the
/// group is halted, and no node enters after it for the rest of the queue's
/// span (1 h): the queued nodes say what halts them, and their requests end
/// unserved when the span is over.
#[test]
fn a_command_failing_on_node_4_halts_the_group_for_the_queues_span() {
    const NODES: usize = 8;
    const FAILING: usize = 4;
    // The span, in steps from queueing.
    const SPAN_STEPS: u32 = 60;
    let Some(mut roll) = Roll::new("a_command_failing_on_node_4", NODES, 2, "") else {
        return;
    };
    roll.queue_all("1h", Some(FAILING));
    let failed = roll.run_until(SPAN_STEPS, |r| r.nodes[FAILING].stage == Stage::Done);
    assert!(failed, "node 4 never ran its COMMAND: {:?}", stages(&roll));
    let failed_at = roll.step;
    let bad = &roll.nodes[FAILING].node;
    assert_eq!(
        bad.status()["state"],
        "maintenance",
        "a failed COMMAND stays"
    );
    assert_eq!(runs(bad), 1);
    assert!(
        roll.etcd
            .holders(&roll.group)
            .contains(&"node-04".to_string()),
        "node-04 keeps its slot"
    );
    let entered_then = roll.entered().len();
    // Until the last minute of the span: nobody enters, each says why.
    roll.run_until((SPAN_STEPS - 2).saturating_sub(roll.step), |_| false);
    assert_eq!(roll.entered().len(), entered_then, "{:?}", stages(&roll));
    let waiting: Vec<&RollNode> = roll
        .nodes
        .iter()
        .filter(|n| n.stage == Stage::Queued)
        .collect();
    assert!(
        !waiting.is_empty(),
        "nothing was left to halt: {:?}",
        stages(&roll)
    );
    for n in &waiting {
        let q = queued(&n.node).expect("still queued");
        let why = q["waiting_for"].to_string();
        assert!(why.contains("halted by node-04"), "{}: {why}", n.id);
        assert_eq!(runs(&n.node), 0, "{}", n.id);
    }
    let halted = waiting.len();
    // Past the span: the requests end unserved, still nobody entered.
    roll.run_until(10, |_| false);
    assert_eq!(roll.entered().len(), entered_then, "{:?}", stages(&roll));
    let expired = roll
        .nodes
        .iter()
        .filter(|n| n.stage == Stage::Expired)
        .count();
    assert_eq!(expired, halted, "{:?}", stages(&roll));
    tell(&format!(
        "halt: node-04's COMMAND failed at step {failed_at}; the {halted} node(s) queued \
         behind it never entered until their span ended (step {SPAN_STEPS})"
    ));
}

/// The same halt, shown while the requests still wait: each queued node's
/// state names node-04 and why; `umm off` there lets the rest through.
#[test]
fn umm_off_on_the_halting_node_lets_the_roll_go_on() {
    const NODES: usize = 6;
    const FAILING: usize = 4;
    let Some(mut roll) = Roll::new("umm_off_on_the_halting_node", NODES, 2, "") else {
        return;
    };
    roll.queue_all("24h", Some(FAILING));
    assert!(roll.run_until(200, |r| r.nodes[FAILING].stage == Stage::Done));
    roll.run_until(10, |_| false);
    let waiting: Vec<usize> = (0..NODES)
        .filter(|&i| roll.nodes[i].stage == Stage::Queued)
        .collect();
    for &i in &waiting {
        let q = queued(&roll.nodes[i].node).expect("still queued");
        let why = q["waiting_for"].to_string();
        assert!(
            why.contains("halted by node-04") && why.contains("umm off"),
            "{}: {why}",
            roll.nodes[i].id
        );
    }
    let out = roll.nodes[FAILING].node.expect(0, &["off"]);
    assert!(out.contains("Normal target reached"), "{out}");
    roll.check();
    let finished = roll.run_until(200, Roll::all_done);
    assert!(finished, "the roll did not go on: {:?}", stages(&roll));
    for n in &roll.nodes {
        assert_eq!(n.node.status()["state"], "operational", "{}", n.id);
        assert_eq!(runs(&n.node), 1, "{} (waiting before: {waiting:?})", n.id);
    }
    assert_eq!(roll.etcd.holders(&roll.group), Vec::<String>::new());
}

/// A firing alert keeps every queued node waiting (and each says which
/// alert); once the rule stops firing, the queue proceeds.
#[test]
fn a_firing_alert_keeps_the_queue_waiting_until_it_clears() {
    const NODES: usize = 4;
    let test = "a_firing_alert_keeps_the_queue_waiting";
    let Some(prom) = Prometheus::start(test, FIRING) else {
        return;
    };
    assert!(
        common::prometheus::until(Duration::from_secs(60), || prom.firing()),
        "the rule never fired: {}",
        prom.log()
    );
    let gate = format!(
        "[rolling]\ngate_url = \"{}\"\ngate_alerts = \"UmmTest.*\"\ngate_timeout = \"5s\"\n",
        prom.url
    );
    let Some(mut roll) = Roll::new(test, NODES, 2, &gate) else {
        return;
    };
    roll.queue_all("24h", None);
    roll.run_until(15, |_| false);
    assert_eq!(
        roll.entered(),
        Vec::<&str>::new(),
        "entered through a closed gate"
    );
    for n in &roll.nodes {
        let q = queued(&n.node).expect("still queued");
        assert!(
            q["waiting_for"].to_string().contains("UmmTestDown"),
            "{}: {q}",
            n.id
        );
    }
    prom.rules(CLEAR, false);
    let finished = roll.run_until(200, Roll::all_done);
    assert!(finished, "the queue did not proceed: {:?}", stages(&roll));
    for n in &roll.nodes {
        assert_eq!(n.node.status()["state"], "operational", "{}", n.id);
        assert_eq!(runs(&n.node), 1, "{}", n.id);
    }
}

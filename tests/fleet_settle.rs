//! Fleet slots never stranded, never over-admitted (issue 22): a take is
//! recorded before it is sent and settled after; a node in service
//! reconciles. Against a real etcd (tests/common/etcd.rs; SKIPPED without
//! it unless `UMM_FLEET_REQUIRE_ETCD=1`) and the FleetLock test server of
//! tests/common/fleetlock.rs, on loopback, with umm's fail points
//! (src/sys/failpoint.rs) to stop it at exact steps and kill it there.
//!
//! The kill-point test prints how many kill points and runs it made.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use common::etcd::{one_etcd, Etcds};
use common::fleetlock::{LockServer, Mode, GROUP};
use common::stopped::run_until;
use common::Node;
use nix::sys::signal::Signal;
use serde_json::Value;

const SLOTS: u64 = 1;

/// Where a group's slots are kept, for the checks: etcd or the FleetLock
/// server.
enum Coord {
    Etcd(Etcds),
    Lock(LockServer),
}

impl Coord {
    fn holders(&self, group: &str) -> BTreeSet<String> {
        match self {
            Coord::Etcd(e) => e.holders(group).into_iter().collect(),
            Coord::Lock(l) => l.holders().into_iter().collect(),
        }
    }

    /// A booted node of `group` on this coordinator.
    fn node(&self, group: &str, id: &str, timeout: &str) -> Node {
        let toml = match self {
            Coord::Etcd(e) => format!(
                "[fleet]\nbackend = \"etcd\"\ngroup = \"{group}\"\nid = \"{id}\"\nendpoints = [\"{}\"]\nslots = {SLOTS}\ntimeout = \"{timeout}\"\n",
                e.endpoint(0)
            ),
            Coord::Lock(l) => format!(
                "[fleet]\nbackend = \"fleetlock\"\ngroup = \"{GROUP}\"\nid = \"{id}\"\nurl = \"{}\"\ntimeout = \"{timeout}\"\n",
                l.url
            ),
        };
        let mut node = Node::new().bounded(Duration::from_secs(120));
        node.write("/etc/umm/umm.toml", &toml);
        node.boot();
        node
    }

    fn group<'a>(&self, etcd_group: &'a str) -> &'a str {
        match self {
            Coord::Etcd(_) => etcd_group,
            Coord::Lock(_) => GROUP,
        }
    }
}

fn state(node: &Node) -> Value {
    serde_json::from_str(&node.read("/var/lib/umm/state.json")).unwrap()
}

/// The id this node's state says it holds a slot as.
fn held(node: &Node) -> Option<String> {
    state(node)["fleet"]["held"]["id"]
        .as_str()
        .map(String::from)
}

/// The invariant after a reconcile: the coordinator lists exactly the
/// nodes whose state holds a slot, nothing is left unsettled or owed, and
/// never more holders than slots.
fn assert_settled(coord: &Coord, group: &str, nodes: &[&Node], context: &str) {
    let holders = coord.holders(group);
    assert!(holders.len() as u64 <= SLOTS, "{context}: {holders:?}");
    let recorded: BTreeSet<String> = nodes.iter().filter_map(|n| held(n)).collect();
    assert_eq!(holders, recorded, "{context}");
    for n in nodes {
        let s = state(n);
        assert_eq!(s["fleet"]["taking"], Value::Null, "{context}: {s}");
        assert_eq!(s["fleet"]["pending_release"], Value::Null, "{context}: {s}");
    }
}

/// The retry timer's run: the reconcile.
fn reconcile(node: &Node) {
    let r = node.run(&["internal", "fleet-retry"]);
    assert!(matches!(r.code, Some(0 | 75)), "{}", r.out);
}

fn coordinators(test: &str) -> Vec<Coord> {
    let mut all = vec![Coord::Lock(LockServer::start(SLOTS as usize))];
    if let Some(e) = one_etcd(test) {
        all.push(Coord::Etcd(e));
    }
    all
}

/// The paths and their kill points: a step name, and the command that
/// reaches it from a node prepared by `prepare` (etcd's own two steps only
/// on etcd).
#[derive(Clone, Copy, Debug)]
enum Path {
    /// `umm on`'s take.
    Take,
    /// The undo of a take whose request could not be saved.
    Undo,
    /// `umm off` cancelling a request: the release.
    Release,
    /// The retry timer's reconcile of a take left unsettled.
    Reconcile,
    /// `umm internal maintenance`'s take in a crash loop.
    CrashLoopTake,
}

fn kill_points(path: Path, etcd: bool) -> Vec<&'static str> {
    let mut steps = match path {
        Path::Take | Path::CrashLoopTake => vec!["fleet-take-sent", "fleet-take-answered"],
        Path::Undo => vec!["fleet-undo"],
        Path::Release | Path::Reconcile => vec!["fleet-release-sent", "fleet-release-answered"],
    };
    if etcd {
        steps.push(match path {
            Path::Take | Path::CrashLoopTake => "etcd-take-cas",
            _ => "etcd-release-cas",
        });
    }
    steps
}

/// Brings `node` to where `path` starts; the command (and fail points
/// besides the stop) that runs it.
fn prepare(node: &mut Node, path: Path) -> (&'static str, Vec<&'static str>) {
    match path {
        Path::Take => ("", vec!["on"]),
        Path::Undo => ("fleet-request-save=return(eio);", vec!["on"]),
        Path::Release => {
            node.expect(0, &["on"]);
            ("", vec!["off"])
        }
        Path::Reconcile => {
            // A take killed once granted: "may hold" left in the state.
            run_until(node, "fleet-take-answered", "", &["on"]).kill_with(Signal::SIGKILL);
            assert!(!state(node)["fleet"]["taking"].is_null());
            ("", vec!["internal", "fleet-retry"])
        }
        Path::CrashLoopTake => {
            for _ in 0..3 {
                node.crash_and_boot();
            }
            assert_eq!(node.status()["reason"], "crash-loop");
            ("", vec!["internal", "maintenance"])
        }
    }
}

/// The kill-point test: `umm` killed (SIGKILL, SIGINT, SIGHUP) at every
/// fail point of the take, the undo, the release, the reconcile and the
/// crash-loop take, against etcd and FleetLock. After each kill: never
/// more holders than slots; after the next reconcile (and, for a node in
/// maintenance, `umm off`): the coordinator's holders are exactly the
/// nodes whose state holds a slot, and nothing is unsettled or owed.
#[test]
fn a_kill_at_any_fail_point_is_settled_by_the_next_reconcile() {
    let signals = [Signal::SIGKILL, Signal::SIGINT, Signal::SIGHUP];
    let paths = [
        Path::Take,
        Path::Undo,
        Path::Release,
        Path::Reconcile,
        Path::CrashLoopTake,
    ];
    let (mut points, mut runs) = (0, 0);
    for (k, coord) in coordinators("kill_points").iter().enumerate() {
        let etcd = matches!(coord, Coord::Etcd(_));
        for path in paths {
            for step in kill_points(path, etcd) {
                points += 1;
                for signal in signals {
                    runs += 1;
                    let group = coord.group("kills");
                    let id = format!("n{k}-{runs}");
                    let context = format!("{path:?} {step} {signal:?} ({id})");
                    let mut node = coord.node(group, &id, "2s");
                    let other = coord.node(group, &format!("{id}-other"), "2s");
                    let (also, args) = prepare(&mut node, path);
                    run_until(&node, step, also, &args).kill_with(signal);
                    assert!(
                        coord.holders(group).len() as u64 <= SLOTS,
                        "{context}: {:?}",
                        coord.holders(group)
                    );
                    reconcile(&node);
                    reconcile(&other);
                    if !state(&node)["maintenance"].is_null() {
                        // In maintenance a take not settled counts as held
                        // (never fewer holders recorded than listed).
                        let holders = coord.holders(group);
                        assert!(holders.iter().all(|h| *h == id), "{context}: {holders:?}");
                        node.expect(0, &["off"]);
                        reconcile(&node);
                    }
                    assert_settled(coord, group, &[&node, &other], &context);
                    // The group is usable: the other node takes the slot.
                    other.expect(0, &["on"]);
                    other.expect(0, &["off"]);
                    assert_settled(coord, group, &[&node, &other], &context);
                }
            }
        }
    }
    println!("kill points: {points}, runs: {runs} (SIGKILL, SIGINT, SIGHUP at each)");
    assert!(points >= 8, "{points}");
}

/// Item 2: the crash-loop take lands after `umm off` closed the episode:
/// the slot is given back at once, not left to a node in service.
#[test]
fn a_crash_loop_take_landing_after_off_is_given_back() {
    let Some(etcd) = one_etcd("crash_loop_after_off") else {
        return;
    };
    let coord = Coord::Etcd(etcd);
    let mut node = coord.node("late", "node-a", "1s");
    let (_, args) = prepare(&mut node, Path::CrashLoopTake);
    let take = run_until(&node, "etcd-take-cas", "", &args);
    // `umm off` while the take is in flight: the episode closes.
    let out = node.expect(0, &["off"]);
    assert!(out.contains("Normal target reached"), "{out}");
    assert!(state(&node)["maintenance"].is_null());
    let (code, out) = take.resume();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        coord.holders("late").is_empty(),
        "{:?}",
        coord.holders("late")
    );
    assert_settled(&coord, "late", &[&node], "take after off");
}

/// Item 3: a crash-loop take whose answer is lost (the server applied it
/// and answered too late) is counted as held, not recorded as failed with
/// nothing owed; `umm off` gives it back.
#[test]
fn a_crash_loop_take_whose_answer_is_lost_counts_as_held() {
    let server = LockServer::start(1);
    let coord = Coord::Lock(server);
    let mut node = coord.node(GROUP, "node-a", "1s");
    let (_, args) = prepare(&mut node, Path::CrashLoopTake);
    if let Coord::Lock(l) = &coord {
        l.set_mode(Mode::AppliedSlow(Duration::from_secs(3)));
    }
    node.expect(0, &args);
    assert_eq!(coord.holders(GROUP), BTreeSet::from(["node-a".to_string()]));
    let s = state(&node);
    assert_eq!(s["fleet"]["held"]["id"], "node-a", "{s}");
    assert_eq!(s["fleet"]["last_attempt"]["result"], "unanswered", "{s}");
    if let Coord::Lock(l) = &coord {
        l.set_mode(Mode::Normal);
    }
    node.expect(0, &["off"]);
    assert!(coord.holders(GROUP).is_empty());
    assert_settled(&coord, GROUP, &[&node], "after off");
}

/// Item 4: `umm on` fails after the take (the save of the request fails)
/// and the undo's release fails too (the server is down): the slot is
/// owed (saved), and given back by the retry once the server is back.
#[test]
fn an_undo_whose_release_fails_leaves_the_slot_owed() {
    let mut server = LockServer::start(1);
    let mut node = Node::new().bounded(Duration::from_secs(120));
    node.write(
        "/etc/umm/umm.toml",
        &format!(
            "[fleet]\nbackend = \"fleetlock\"\ngroup = \"{GROUP}\"\nid = \"node-a\"\nurl = \"{}\"\ntimeout = \"1s\"\n",
            server.url
        ),
    );
    node.boot();
    let undo = run_until(
        &node,
        "fleet-undo",
        "fleet-request-save=return(eio);",
        &["on"],
    );
    assert_eq!(server.holders(), ["node-a"]);
    server.down();
    let (code, out) = undo.resume();
    assert_eq!(code, Some(1), "{out}");
    let s = state(&node);
    assert!(s["maintenance"].is_null(), "{s}");
    assert_eq!(s["fleet"]["pending_release"]["slot"]["id"], "node-a", "{s}");
    assert!(node.log().contains("owed, retried"), "{}", node.log());
    server.up();
    node.expect(0, &["internal", "fleet-retry"]);
    assert!(server.holders().is_empty());
    assert!(state(&node).get("fleet").is_none(), "{}", state(&node));
}

/// Item 5: `umm fleet release` while the node's own maintenance is
/// requested is refused in one line (exit 1), the slot still held, so a
/// second node cannot enter with one slot; `--force` gives it back.
#[test]
fn fleet_release_refuses_while_this_nodes_maintenance_is_pending() {
    let coord = Coord::Lock(LockServer::start(1));
    let a = coord.node(GROUP, "node-a", "2s");
    let b = coord.node(GROUP, "node-b", "2s");
    a.expect(0, &["on"]);
    let out = a.expect(1, &["fleet", "release"]);
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(
        out.starts_with("umm fleet release: refused: this node's maintenance is requested"),
        "{out}"
    );
    assert!(out.contains("--force"), "{out}");
    assert_eq!(held(&a).as_deref(), Some("node-a"));
    assert_eq!(coord.holders(GROUP), BTreeSet::from(["node-a".to_string()]));
    let out = b.expect(1, &["on"]);
    assert!(out.contains("no free slot"), "{out}");
    let out = a.expect(0, &["fleet", "release", "--force"]);
    assert!(out.contains("Gave back the slot"), "{out}");
    assert!(coord.holders(GROUP).is_empty());
}

/// Item 6: `umm fleet release --id` of an id that holds nothing (a typo)
/// is refused, naming the holders; the dead node keeps its slot until
/// its own id is given.
#[test]
fn fleet_release_of_an_id_that_holds_nothing_is_refused() {
    let Some(etcd) = one_etcd("release_unknown_id") else {
        return;
    };
    let coord = Coord::Etcd(etcd);
    let dead = coord.node("ids", "node-dead", "2s");
    let b = coord.node("ids", "node-b", "2s");
    dead.expect(0, &["on"]);
    let out = b.expect(1, &["fleet", "release", "--id", "node-daed"]);
    assert_eq!(
        out.trim(),
        "umm fleet release: refused: node-daed holds no slot in group \"ids\"; holders: node-dead"
    );
    assert_eq!(
        coord.holders("ids"),
        BTreeSet::from(["node-dead".to_string()])
    );
    let out = b.expect(0, &["fleet", "release", "--id", "node-dead"]);
    assert!(out.contains("Gave back the slot"), "{out}");
    assert!(coord.holders("ids").is_empty());
    let out = b.expect(1, &["fleet", "release", "--id", "node-dead"]);
    assert!(
        out.contains("holds no slot in group \"ids\"; holders: none"),
        "{out}"
    );
}

/// Item 8: status, history, check and `on --dry-run`, as root with a
/// release pending and a take not settled, never talk to the coordinator
/// (no connection reaches it) and never rewrite the state; `umm status`
/// shows what may be held and what is owed.
#[test]
fn looking_commands_never_talk_to_the_coordinator() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut node = Node::new().bounded(Duration::from_secs(60));
    node.write(
        "/etc/umm/umm.toml",
        &format!(
            "[fleet]\nbackend = \"fleetlock\"\ngroup = \"{GROUP}\"\nid = \"node-a\"\nurl = \"{url}\"\ntimeout = \"3s\"\n"
        ),
    );
    node.boot();
    let mut s = state(&node);
    let slot =
        serde_json::json!({"backend": "fleetlock", "group": GROUP, "id": "node-a", "since": 1});
    s["fleet"] = serde_json::json!({
        "taking": slot,
        "pending_release": {"slot": slot, "due": 1, "tries": 1}
    });
    node.write("/var/lib/umm/state.json", &s.to_string());
    let before = node.read("/var/lib/umm/state.json");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["history"],
        &["check"],
        &["on", "--dry-run"],
    ] {
        let r = node.run(args);
        assert!(r.code.is_some(), "{args:?}: {}", r.out);
        assert!(
            listener.accept().is_err(),
            "umm {args:?} connected to the coordinator: {}",
            r.out
        );
        assert_eq!(node.read("/var/lib/umm/state.json"), before, "{args:?}");
    }
    let out = node.expect(0, &["status"]);
    assert!(
        out.contains("may hold a slot of group \"workers\""),
        "{out}"
    );
    assert!(out.contains("Release pending"), "{out}");
    // A command that changes something does reconcile.
    let _ = node.run(&["disable"]);
    thread::sleep(Duration::from_millis(50));
    assert!(listener.accept().is_ok(), "umm disable did not reconcile");
}

/// Where a halt call is sent from (issue 24): the maintenance worker
/// whose work failed, a `umm off` whose check is not clean (both write
/// the group's halt key), a clean `umm off` of a halted node and `umm
/// fleet release` of one whose check was not clean (both delete it).
#[derive(Clone, Copy, Debug)]
enum HaltPath {
    WorkFailed,
    NotClean,
    CleanOff,
    Release,
}

/// Brings `node` to where `path` sends its halt call: the command that
/// sends it, and whether the key names the node once it is settled.
fn prepare_halt(node: &mut Node, path: HaltPath) -> (Vec<&'static str>, bool) {
    match path {
        HaltPath::WorkFailed => {
            node.expect(0, &["on", "--then", "off", "--", "false"]);
            node.clean_reboot();
            (vec!["internal", "maintenance"], true)
        }
        HaltPath::NotClean => {
            node.services("cron.service active enabled\n");
            node.expect(0, &["on"]);
            node.clean_reboot();
            node.services("cron.service failed enabled\n");
            (vec!["off"], true)
        }
        HaltPath::CleanOff => {
            let (args, _) = prepare_halt(node, HaltPath::WorkFailed);
            node.expect(0, &args);
            assert_eq!(node.status()["state"], "maintenance");
            (vec!["off"], false)
        }
        HaltPath::Release => {
            let (args, _) = prepare_halt(node, HaltPath::NotClean);
            node.expect(1, &args);
            node.services("cron.service active enabled\n");
            (vec!["fleet", "release"], false)
        }
    }
}

/// The group's halt key: who it names, and its version (etcd counts
/// every write of a key).
fn halt_key_of(endpoint: &str, group: &str) -> Option<(String, i64)> {
    common::etcd::raw_get(endpoint, &umm::fleet::etcd::halt_key(group)).map(|(v, version)| {
        let halt: Value = serde_json::from_slice(&v).unwrap();
        (halt["node"].as_str().unwrap().to_string(), version)
    })
}

/// Issue 24: the halt key follows the slots' rule. `umm` killed (SIGKILL,
/// SIGINT, SIGHUP) before and after each halt call (written by a failed
/// work and by a check not clean, deleted by a clean `umm off` and by
/// `umm fleet release`): a killed run leaves the call recorded in the
/// state, the next reconcile (the retry timer's run) sends it, and it is
/// settled once: later reconciles and root runs send nothing more.
#[test]
fn a_kill_around_a_halt_call_is_settled_by_the_next_reconcile_once() {
    let Some(etcd) = one_etcd("halt_kill_points") else {
        return;
    };
    let ep = etcd.endpoint(0);
    let coord = Coord::Etcd(etcd);
    let paths = [
        HaltPath::WorkFailed,
        HaltPath::NotClean,
        HaltPath::CleanOff,
        HaltPath::Release,
    ];
    let mut runs = 0;
    for path in paths {
        for step in ["fleet-halt-sent", "fleet-halt-answered"] {
            for signal in [Signal::SIGKILL, Signal::SIGINT, Signal::SIGHUP] {
                runs += 1;
                let group = format!("halt-{runs}");
                let id = format!("h{runs}");
                let context = format!("{path:?} {step} {signal:?} ({id})");
                let mut node = coord.node(&group, &id, "2s");
                let (args, halts) = prepare_halt(&mut node, path);
                run_until(&node, step, "", &args).kill_with(signal);
                if signal == Signal::SIGKILL {
                    let s = state(&node);
                    assert!(!s["fleet"]["halt_sending"].is_null(), "{context}: {s}");
                }
                reconcile(&node);
                let s = state(&node);
                assert_eq!(s["fleet"]["halt_sending"], Value::Null, "{context}: {s}");
                assert_eq!(!s["fleet"]["halt"].is_null(), halts, "{context}: {s}");
                let key = halt_key_of(&ep, &group);
                assert_eq!(
                    key.as_ref().map(|(n, _)| n.as_str()),
                    halts.then_some(id.as_str()),
                    "{context}"
                );
                // Settled once: nothing more is sent.
                reconcile(&node);
                let _ = node.run(&["disable"]);
                assert_eq!(halt_key_of(&ep, &group), key, "{context}");
            }
        }
    }
    println!("halt kill points: 8, runs: {runs} (SIGKILL, SIGINT, SIGHUP at each)");
}

/// Issue 24: a halt call that fails (etcd unreachable) stays recorded
/// with its error; the node says it halts the roll meanwhile, and the
/// reconcile writes the key once etcd answers.
#[test]
fn a_halt_call_that_fails_is_sent_again_by_the_reconcile() {
    let Some(etcd) = one_etcd("halt_call_fails") else {
        return;
    };
    let ep = etcd.endpoint(0);
    let coord = Coord::Etcd(etcd);
    let mut node = coord.node("halt-fails", "node-a", "2s");
    let (args, _) = prepare_halt(&mut node, HaltPath::WorkFailed);
    let mut c = node.command(&args);
    c.env("FAILPOINTS", "fleet-halt-sent=return(eio)");
    let r = node.run_cmd(c);
    assert_eq!(r.code, Some(0), "{}", r.out);
    let s = state(&node);
    assert_eq!(s["fleet"]["halt_sending"]["op"], "record", "{s}");
    assert_eq!(s["fleet"]["halt_sending"]["tries"], 1, "{s}");
    assert!(
        node.log().contains("could not be written"),
        "{}",
        node.log()
    );
    assert_eq!(halt_key_of(&ep, "halt-fails"), None);
    assert!(node.status()["roll_halted"].is_string());
    let r = node.run(&["internal", "fleet-retry"]);
    assert_eq!(r.code, Some(0), "{}", r.out);
    assert_eq!(
        halt_key_of(&ep, "halt-fails"),
        Some(("node-a".to_string(), 1))
    );
    assert_eq!(state(&node)["fleet"]["halt_sending"], Value::Null);
}

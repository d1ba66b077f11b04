//! Fleet coordination through the `umm` commands, against a real etcd
//! (Debian's `etcd-server`) on loopback: nodes are temporary roots with
//! the recording init system (tests/common), `[fleet]` in their umm.toml.
//! Without etcd these tests print SKIPPED and pass, unless
//! `UMM_FLEET_REQUIRE_ETCD=1`.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::Node;
use serde_json::Value;
use umm::fleet::etcd::Etcd;
use umm::fleet::{Backend, Coordinator, FleetSettings, Listing};

fn etcd_binary(test: &str) -> Option<PathBuf> {
    let found = ["/usr/bin/etcd", "/usr/local/bin/etcd", "/usr/sbin/etcd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("UMM_FLEET_REQUIRE_ETCD").is_ok_and(|v| v == "1") {
            panic!(
                "etcd is not installed (Debian package etcd-server) and UMM_FLEET_REQUIRE_ETCD=1"
            );
        }
        // Not eprintln!, which the test harness captures: this must be seen.
        let mut terminal = std::io::stderr();
        writeln!(
            terminal,
            "SKIPPED {test}: etcd is not installed (Debian package etcd-server)"
        )
        .unwrap();
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One etcd member on loopback, killed by PID on drop.
struct OneEtcd {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    peer: u16,
    child: Option<Child>,
}

impl OneEtcd {
    fn start(binary: PathBuf) -> OneEtcd {
        let dir = match Path::new("/dev/shm").is_dir() {
            true => tempfile::Builder::new()
                .prefix("umm-etcd")
                .tempdir_in("/dev/shm")
                .unwrap(),
            false => tempfile::tempdir().unwrap(),
        };
        let mut e = OneEtcd {
            binary,
            dir,
            port: free_port(),
            peer: free_port(),
            child: None,
        };
        e.spawn();
        e
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .unwrap();
        let child = umm::sys::run::command(&self.binary)
            .arg("--name=m0")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("m0").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=m0={peer}"))
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .args(["--logger=zap", "--log-level=error", "--log-outputs=stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("etcd starts");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let c = self.client("readiness");
            if c.take("probe").is_ok() && c.release("probe").is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "etcd not ready"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self, group: &str) -> Etcd {
        Etcd::new(&FleetSettings {
            backend: Backend::Etcd,
            group: group.into(),
            endpoints: vec![self.endpoint()],
            timeout: Duration::from_secs(3),
            ..FleetSettings::default()
        })
        .unwrap()
    }

    fn holders(&self, group: &str) -> Vec<String> {
        match self.client(group).status().unwrap().listing {
            Listing::Stored { holders, .. } => holders.into_iter().map(|h| h.id).collect(),
            _ => Vec::new(),
        }
    }
}

impl Drop for OneEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node of `group` (`slots` when it creates the group) on `endpoint`,
/// booted once.
fn fleet_node(endpoint: &str, group: &str, id: &str, slots: u64, timeout: &str) -> Node {
    let mut node = Node::new().bounded(Duration::from_secs(120));
    node.write(
        "/etc/umm/umm.toml",
        &format!(
            "[fleet]\nbackend = \"etcd\"\ngroup = \"{group}\"\nid = \"{id}\"\nendpoints = [\"{endpoint}\"]\nslots = {slots}\ntimeout = \"{timeout}\"\n"
        ),
    );
    node.boot();
    node
}

fn state(node: &Node) -> Value {
    serde_json::from_str(&node.read("/var/lib/umm/state.json")).unwrap()
}

/// `umm on` took effect: the reboot into maintenance, then `umm off`
/// back to the normal target (the finisher gives the slot back).
fn maintenance_round_trip(node: &mut Node) {
    node.clean_reboot();
    assert_eq!(node.status()["state"], "maintenance");
    let out = node.expect(0, &["off"]);
    assert!(out.contains("Normal target reached"), "{out}");
}

#[test]
fn nodes_racing_for_two_slots_never_exceed_two_and_every_release_lands() {
    let Some(bin) = etcd_binary("nodes_racing") else {
        return;
    };
    let etcd = OneEtcd::start(bin);
    let endpoint = etcd.endpoint();
    let mut nodes: Vec<Node> = (0..6)
        .map(|i| fleet_node(&endpoint, "race", &format!("node-{i}"), 2, "10s"))
        .collect();
    let started = Instant::now();
    let mut rounds = 0;
    let mut entered = 0;
    while rounds < 40 && started.elapsed() < Duration::from_secs(20) {
        rounds += 1;
        let codes: Vec<Option<i32>> = thread::scope(|s| {
            let runs: Vec<_> = nodes
                .iter()
                .map(|n| s.spawn(move || n.run(&["on"]).code))
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..nodes.len()).filter(|&i| codes[i] == Some(0)).collect();
        assert!(
            codes.iter().all(|c| *c == Some(0) || *c == Some(1)),
            "{codes:?}"
        );
        let mut holders = etcd.holders("race");
        holders.sort();
        let mut expected: Vec<String> = winners.iter().map(|i| format!("node-{i}")).collect();
        expected.sort();
        assert!(winners.len() <= 2, "round {rounds}: {winners:?} entered");
        assert_eq!(winners.len(), 2, "round {rounds}: a free slot was left");
        assert_eq!(holders, expected, "round {rounds}");
        for &i in &winners {
            maintenance_round_trip(&mut nodes[i]);
            assert_eq!(
                state(&nodes[i]).get("fleet"),
                None,
                "node-{i} owes a release"
            );
        }
        for (i, n) in nodes.iter().enumerate() {
            if !winners.contains(&i) {
                assert_eq!(n.status()["state"], "operational");
            }
        }
        assert!(
            etcd.holders("race").is_empty(),
            "round {rounds}: a release did not land"
        );
        entered += winners.len();
    }
    let mut terminal = std::io::stderr();
    writeln!(
        terminal,
        "racing: {rounds} rounds, {entered} entries, 6 nodes, 2 slots, {:.1}s",
        started.elapsed().as_secs_f64()
    )
    .unwrap();
    assert!(rounds >= 3);
}

#[test]
fn refusal_names_the_holder_and_force_goes_on_without_a_slot() {
    let Some(bin) = etcd_binary("refusal") else {
        return;
    };
    let etcd = OneEtcd::start(bin);
    let mut a = fleet_node(&etcd.endpoint(), "one", "node-a", 1, "10s");
    let mut b = fleet_node(&etcd.endpoint(), "one", "node-b", 1, "10s");
    let out = a.expect(0, &["on"]);
    assert!(out.contains("Took a slot of fleet group \"one\""), "{out}");
    assert_eq!(etcd.holders("one"), ["node-a"]);
    let before = b.read("/var/lib/umm/state.json");
    let out = b.expect(1, &["on"]);
    assert!(out.contains("node-a"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert_eq!(b.read("/var/lib/umm/state.json"), before);
    assert!(!b.actions().contains(&"reboot".to_string()));
    // --force: in without a slot, and the episode says so.
    let out = b.expect(0, &["on", "--force"]);
    assert!(out.contains("without a fleet slot"), "{out}");
    let m = &state(&b)["maintenance"];
    assert_eq!(m["fleet"]["forced"], true);
    assert_eq!(m["fleet"]["slot"], false);
    assert_eq!(etcd.holders("one"), ["node-a"]);
    maintenance_round_trip(&mut b);
    assert_eq!(state(&b)["history"][0]["fleet"]["forced"], true);
    // A's slot is held through maintenance, across a crash, until off.
    a.clean_reboot();
    a.crash_and_boot();
    assert_eq!(a.status()["state"], "maintenance");
    assert_eq!(etcd.holders("one"), ["node-a"]);
    let s = a.status();
    assert_eq!(s["fleet"]["holds_slot"], true, "{s}");
    let out = a.expect(0, &["off"]);
    assert!(out.contains("Gave back the slot"), "{out}");
    assert!(etcd.holders("one").is_empty());
    // umm fleet status, as any user.
    let r = a.as_nobody(&["fleet", "status", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.out);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["backend"], "etcd");
    assert_eq!(v["group"], "one");
    assert_eq!(v["slots"], 1);
    assert_eq!(v["holders"], serde_json::json!([]));
    assert_eq!(v["holds_slot"], false);
}

#[test]
fn an_unreachable_coordinator_refuses_unless_forced() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let node = fleet_node(&endpoint, "g", "node-a", 1, "1s");
    let before = node.read("/var/lib/umm/state.json");
    let out = node.expect(1, &["on"]);
    assert!(out.contains("no etcd endpoint answered"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(node.read("/var/lib/umm/state.json"), before);
    let out = node.expect(0, &["on", "--force"]);
    assert!(out.contains("without a fleet slot"), "{out}");
    assert_eq!(state(&node)["maintenance"]["fleet"]["forced"], true);
}

#[test]
fn a_failed_release_stays_pending_and_is_retried() {
    let Some(bin) = etcd_binary("release_pending") else {
        return;
    };
    let mut etcd = OneEtcd::start(bin);
    let mut a = fleet_node(&etcd.endpoint(), "p", "node-a", 1, "1s");
    a.expect(0, &["on"]);
    a.clean_reboot();
    etcd.kill();
    // Back in service anyway; the release is owed.
    let out = a.expect(0, &["off"]);
    assert!(out.contains("could not be given back"), "{out}");
    let s = state(&a);
    assert_eq!(s["maintenance"], Value::Null);
    assert_eq!(s["fleet"]["pending_release"]["slot"]["id"], "node-a", "{s}");
    // Every umm run as root tries again (and says so on stderr).
    let out = a.expect(0, &["status"]);
    assert!(out.contains("Release pending"), "{out}");
    assert!(out.contains("could not be given back"), "{out}");
    // A normal boot (umm-after.service) tries, bounded, while it is down.
    a.clean_reboot();
    let t = Instant::now();
    a.expect(0, &["internal", "after-resume"]);
    assert!(t.elapsed() < Duration::from_secs(60));
    assert!(state(&a)["fleet"]["pending_release"]["tries"].as_u64() >= Some(2));
    // Up again: the next umm run as root gives it back.
    etcd.spawn();
    assert_eq!(etcd.holders("p"), ["node-a"]);
    let out = a.expect(0, &["history"]);
    assert!(out.contains("landed"), "{out}");
    assert!(etcd.holders("p").is_empty());
    assert_eq!(state(&a).get("fleet"), None);
}

#[test]
fn cancelling_a_pending_request_gives_the_slot_back_and_wait_gets_it() {
    let Some(bin) = etcd_binary("cancel") else {
        return;
    };
    let etcd = OneEtcd::start(bin);
    let a = fleet_node(&etcd.endpoint(), "c", "node-a", 1, "10s");
    let b = fleet_node(&etcd.endpoint(), "c", "node-b", 1, "10s");
    a.expect(0, &["on"]);
    assert_eq!(etcd.holders("c"), ["node-a"]);
    // B waits; A cancels its request: B gets the slot.
    let (out, waited) = thread::scope(|s| {
        let waiting = s.spawn(|| {
            let t = Instant::now();
            (b.run(&["on", "--wait", "60s"]), t.elapsed())
        });
        thread::sleep(Duration::from_secs(3));
        let out = a.expect(0, &["off"]);
        assert!(out.contains("Gave back the slot"), "{out}");
        let (r, waited) = waiting.join().unwrap();
        assert_eq!(r.code, Some(0), "{}", r.out);
        (r.out, waited)
    });
    assert!(out.contains("Waiting for a slot"), "{out}");
    assert!(out.contains("node-a"), "{out}");
    assert!(waited > Duration::from_secs(2), "{waited:?}");
    assert_eq!(etcd.holders("c"), ["node-b"]);
    assert_eq!(b.status()["state"], "pending");
    // A wait that runs out is a refusal.
    let out = a.expect(1, &["on", "--wait", "3s"]);
    assert!(out.contains("the wait is over"), "{out}");
}

#[test]
fn take_and_release_on_loopback_timing() {
    let Some(bin) = etcd_binary("timing") else {
        return;
    };
    let etcd = OneEtcd::start(bin);
    let c = etcd.client("timing");
    let n = 50;
    let (mut take, mut release) = (Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        let id = format!("n{i}");
        let t = Instant::now();
        assert!(c.take(&id).unwrap().is_held());
        take += t.elapsed();
        let t = Instant::now();
        c.release(&id).unwrap();
        release += t.elapsed();
    }
    let mut terminal = std::io::stderr();
    writeln!(
        terminal,
        "loopback etcd: take {:.2} ms, release {:.2} ms (mean of {n})",
        take.as_secs_f64() * 1000.0 / f64::from(n),
        release.as_secs_f64() * 1000.0 / f64::from(n)
    )
    .unwrap();
}

#[test]
fn a_check_that_is_not_clean_keeps_the_slot_until_fleet_release() {
    let Some(bin) = etcd_binary("not_clean") else {
        return;
    };
    let etcd = OneEtcd::start(bin);
    let mut a = fleet_node(&etcd.endpoint(), "k", "node-a", 1, "10s");
    let b = fleet_node(&etcd.endpoint(), "k", "node-b", 1, "10s");
    a.services("cron.service active enabled\n");
    a.expect(0, &["on"]);
    a.clean_reboot();
    a.services("cron.service failed enabled\n");
    let out = a.expect(1, &["off"]);
    assert!(out.contains("is kept"), "{out}");
    assert_eq!(a.status()["state"], "operational");
    assert_eq!(etcd.holders("k"), ["node-a"]);
    assert_eq!(state(&a)["fleet"]["held"]["id"], "node-a");
    // Not root: refused.
    let r = a.as_nobody(&["fleet", "release"]);
    assert_eq!(r.code, Some(1), "{}", r.out);
    let out = a.expect(0, &["fleet", "release"]);
    assert!(out.contains("Gave back the slot"), "{out}");
    assert!(etcd.holders("k").is_empty());
    assert_eq!(state(&a).get("fleet"), None);
    // A dead node's slot, given back from another node.
    b.expect(0, &["on"]);
    assert_eq!(etcd.holders("k"), ["node-b"]);
    let out = a.expect(0, &["fleet", "release", "--id", "node-b"]);
    assert!(out.contains("node-b"), "{out}");
    assert!(etcd.holders("k").is_empty());
}

/// The retry timer's command (`umm internal fleet-retry`) with no release
/// pending: exit 0 at once, and not one connection to the coordinator (a
/// listener on its endpoint that must have accepted nothing).
#[test]
fn fleet_retry_without_a_pending_release_makes_no_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let node = fleet_node(&endpoint, "quiet", "node-a", 1, "5s");
    for _ in 0..3 {
        let r = node.run(&["internal", "fleet-retry"]);
        assert_eq!(r.code, Some(0), "{}", r.out);
        assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
        assert!(r.out.is_empty(), "{}", r.out);
    }
    // The kernel completes a connection before accept(): any connection
    // made would be waiting here.
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("fleet-retry connected to the coordinator: {other:?}"),
    }
    // Not root: refused, nothing read.
    let r = node.as_nobody(&["internal", "fleet-retry"]);
    assert_eq!(r.code, Some(1), "{}", r.out);
}

/// umm.prom's value of `umm_fleet_release_pending`.
fn release_pending_metric(node: &Node) -> Option<String> {
    node.read("/var/lib/prometheus/node-exporter/umm.prom")
        .lines()
        .find(|l| l.starts_with("umm_fleet_release_pending "))
        .map(|l| {
            l.trim_start_matches("umm_fleet_release_pending ")
                .to_string()
        })
}

/// A node back in service whose release is pending (etcd was down when it
/// gave the slot back); etcd is down on return.
fn node_with_release_pending(etcd: &mut OneEtcd, group: &str) -> Node {
    let mut a = Node::new().bounded(Duration::from_secs(120));
    std::fs::create_dir_all(a.path("/var/lib/prometheus/node-exporter")).unwrap();
    a.write(
        "/etc/umm/umm.toml",
        &fleet_toml(&etcd.endpoint(), group, "2s"),
    );
    a.boot();
    a.expect(0, &["on"]);
    a.clean_reboot();
    etcd.kill();
    let out = a.expect(0, &["off"]);
    assert!(out.contains("could not be given back"), "{out}");
    assert_eq!(
        state(&a)["fleet"]["pending_release"]["slot"]["id"],
        "node-a"
    );
    a
}

fn fleet_toml(endpoint: &str, group: &str, timeout: &str) -> String {
    format!(
        "[fleet]\nbackend = \"etcd\"\ngroup = \"{group}\"\nid = \"node-a\"\nendpoints = [\"{endpoint}\"]\ntimeout = \"{timeout}\"\n"
    )
}

/// The timer's command with a release pending: while etcd is down, one
/// bounded try, exit 75 and the metric stays 1; once etcd is back, the
/// release lands exactly once (the next run finds nothing to do), the
/// journal says so and the metric is 0. umm.toml is broken by then: the
/// coordinator comes from the last good configuration.
#[test]
fn fleet_retry_gives_a_pending_release_back_once_the_coordinator_is_back() {
    let Some(bin) = etcd_binary("fleet_retry") else {
        return;
    };
    let mut etcd = OneEtcd::start(bin);
    let a = node_with_release_pending(&mut etcd, "t");
    assert_eq!(release_pending_metric(&a).as_deref(), Some("1"));
    let r = a.run(&["internal", "fleet-retry"]);
    assert_eq!(r.code, Some(75), "{}", r.out);
    assert!(r.elapsed < Duration::from_secs(15), "{:?}", r.elapsed);
    assert!(
        a.log().contains("release still pending after"),
        "{}",
        a.log()
    );
    assert_eq!(state(&a)["fleet"]["pending_release"]["tries"], 2);
    assert_eq!(release_pending_metric(&a).as_deref(), Some("1"));

    // A broken umm.toml: the last good configuration still names etcd.
    a.write("/etc/umm/umm.toml", "[fleet\n");
    etcd.spawn();
    assert_eq!(etcd.holders("t"), ["node-a"]);
    let r = a.run(&["internal", "fleet-retry"]);
    assert_eq!(r.code, Some(0), "{}", r.out);
    assert!(etcd.holders("t").is_empty());
    assert_eq!(state(&a).get("fleet"), None);
    assert_eq!(release_pending_metric(&a).as_deref(), Some("0"));
    let r = a.run(&["internal", "fleet-retry"]);
    assert_eq!(r.code, Some(0), "{}", r.out);
    let log = a.log();
    assert_eq!(log.matches("given back (node-a)").count(), 1, "{log}");
    assert!(
        log.contains("uses the last configuration that loaded"),
        "{log}"
    );
    assert!(log.contains("pending release done in"), "{log}");
    assert_eq!(a.status()["fleet"]["pending_release"], Value::Null);
}

/// An etcd that accepts connections and never answers: a run ends within
/// `[fleet] timeout` (2 s here) plus a little, exit 75, with the reason.
#[test]
fn fleet_retry_against_a_silent_coordinator_ends_within_its_bound() {
    let Some(bin) = etcd_binary("fleet_retry_silent") else {
        return;
    };
    let mut etcd = OneEtcd::start(bin);
    let a = node_with_release_pending(&mut etcd, "s");
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    // Accepts every connection and keeps it open, saying nothing.
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(c);
        }
    });
    a.write("/etc/umm/umm.toml", &fleet_toml(&endpoint, "s", "2s"));
    let r = a.run(&["internal", "fleet-retry"]);
    assert_eq!(r.code, Some(75), "{}", r.out);
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let log = a.log();
    assert!(log.contains("fleet: release pending:"), "{log}");
    assert!(log.contains("release still pending after"), "{log}");
    assert_eq!(
        state(&a)["fleet"]["pending_release"]["slot"]["id"],
        "node-a"
    );
}

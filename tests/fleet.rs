//! Fleet coordination, against real servers on loopback.
//!
//! etcd: Debian's `etcd-server` (3.4), one member or a cluster of three
//! (tests/common/etcd.rs: skipped with a SKIPPED line when it is not
//! installed, unless `UMM_FLEET_REQUIRE_ETCD=1`). FleetLock: the server of
//! tests/common/fleetlock.rs. The same back-ends through the `umm`
//! commands: tests/fleet_cmd.rs.
//!
//! `bench_1000_clients` (ignored; `make bench-fleet`) measures 1,000
//! clients racing for 10 slots of one group.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::etcd::{
    etcd_binary, free_port, one_etcd, raw_get, raw_holders, raw_put, try_raw_get, Etcds, ServerTls,
};
use common::fleetlock::{LockServer, Mode};
use umm::fleet::etcd::{self, Etcd};
use umm::fleet::fleetlock::FleetLock;
use umm::fleet::{
    self, Backend, Coordinator, FleetError, FleetSettings, Listing, Refusal, Released, Taken,
};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

// ------------------------------------------------------------ etcd tests

#[test]
fn etcd_take_release_and_repeats() {
    let Some(etcd) = one_etcd("etcd_take_release_and_repeats") else {
        return;
    };
    let c = etcd.client("web");

    // No key yet: release is a no-op, status says so.
    assert_eq!(c.release("a").unwrap(), Released::NotHeld);
    let status = c.status().unwrap();
    assert_eq!(status.listing, Listing::NotCreated { slots: 2 });
    assert!(
        status.to_string().contains("no node has taken a slot yet"),
        "{status}"
    );

    let started = Instant::now();
    assert_eq!(c.take("a").unwrap(), Taken::Granted);
    let take_time = started.elapsed();
    assert_eq!(c.take("a").unwrap(), Taken::AlreadyHeld);
    assert_eq!(c.take("b").unwrap(), Taken::Granted);
    match c.take("c").unwrap() {
        Taken::Refused(r @ Refusal::Full { .. }) => {
            assert_eq!(
                r,
                Refusal::Full {
                    total_slots: 2,
                    holders: vec!["a".into(), "b".into()]
                }
            );
            assert_eq!(r.to_string(), "all 2 slots are held (by a, b)");
        }
        other => panic!("c was not refused: {other:?}"),
    }

    let started = Instant::now();
    assert_eq!(c.release("a").unwrap(), Released::Freed);
    let release_time = started.elapsed();
    assert_eq!(c.release("a").unwrap(), Released::NotHeld);
    assert_eq!(c.take("c").unwrap(), Taken::Granted);

    let status = c.status().unwrap();
    let Listing::Stored {
        total_slots,
        holders,
    } = &status.listing
    else {
        panic!("{status:?}");
    };
    assert_eq!(*total_slots, 2);
    let ids: Vec<&str> = holders.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["b", "c"]);
    let host = fleet::host_name();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for h in holders {
        assert_eq!(h.host.as_deref(), Some(host.as_str()));
        let since = h.since.unwrap();
        assert!((now - 60..=now).contains(&since), "{since} vs {now}");
    }
    let text = status.to_string();
    assert!(text.contains("2 of 2 slots held"), "{text}");
    assert!(text.contains(&format!("b on {host} since ")), "{text}");
    println!(
        "loopback etcd: an uncontended take took {take_time:.1?}, a release {release_time:.1?}"
    );
}

#[test]
fn etcd_layout_is_airlocks() {
    let Some(etcd) = one_etcd("etcd_layout_is_airlocks") else {
        return;
    };
    let endpoint = etcd.endpoint(0);
    let group = "ceph mon/a&b";
    let key = "com.coreos.airlock/groups/ceph+mon%2Fa%26b/v1/semaphore";
    let c = Etcd::new(&FleetSettings {
        slots: 3,
        ..etcd.settings(group)
    })
    .unwrap()
    .with_host("host-b");
    assert_eq!(c.key(), key);

    assert_eq!(c.take("node-b").unwrap(), Taken::Granted);
    let (value, version) = raw_get(&endpoint, key).expect("the key exists");
    assert_eq!(value, br#"{"total_slots":3,"holders":["node-b"]}"#);
    assert_eq!(version, 1, "created by one transaction");
    assert_eq!(c.take("node-a&1").unwrap(), Taken::Granted);
    let (value, version) = raw_get(&endpoint, key).unwrap();
    // Sorted, and '&' escaped as Go's encoding/json writes it.
    assert_eq!(
        String::from_utf8(value).unwrap(),
        r#"{"total_slots":3,"holders":["node-a\u00261","node-b"]}"#
    );
    assert_eq!(version, 2);

    // umm's record beside it, written in the same transaction.
    let record_key = "com.coreos.airlock/groups/ceph+mon%2Fa%26b/v1/umm-holders/node-a%261";
    let (record, _) = raw_get(&endpoint, record_key).expect("the holder record exists");
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["id"], "node-a&1");
    assert_eq!(record["host"], "host-b");
    assert!(record["since"].as_str().unwrap().ends_with('Z'));

    assert_eq!(c.release("node-a&1").unwrap(), Released::Freed);
    let (value, _) = raw_get(&endpoint, key).unwrap();
    assert_eq!(value, br#"{"total_slots":3,"holders":["node-b"]}"#);
    assert!(
        raw_get(&endpoint, record_key).is_none(),
        "record deleted with the slot"
    );
    assert_eq!(c.release("node-b").unwrap(), Released::Freed);
    let (value, _) = raw_get(&endpoint, key).unwrap();
    assert_eq!(value, br#"{"total_slots":3,"holders":[]}"#);

    // A group airlock created (its size wins over ours), with a holder
    // that airlock let in (no umm record).
    let other = "com.coreos.airlock/groups/workers/v1/semaphore";
    raw_put(
        &endpoint,
        other,
        br#"{"total_slots":2,"holders":["zincati-node"]}"#,
    );
    let w = Etcd::new(&FleetSettings {
        slots: 5,
        ..etcd.settings("workers")
    })
    .unwrap();
    assert_eq!(w.take("umm-node").unwrap(), Taken::Granted);
    assert!(matches!(
        w.take("third").unwrap(),
        Taken::Refused(Refusal::Full { total_slots: 2, .. })
    ));
    let status = w.status().unwrap();
    let Listing::Stored { holders, .. } = status.listing else {
        panic!()
    };
    assert_eq!(holders[0].id, "umm-node");
    assert!(holders[0].host.is_some());
    assert_eq!(holders[1].id, "zincati-node");
    assert_eq!(holders[1].host, None);
    // Go writes `null` for an empty list it never filled: still a group.
    raw_put(&endpoint, other, br#"{"total_slots":1,"holders":null}"#);
    assert_eq!(w.take("umm-node").unwrap(), Taken::Granted);

    // A key that holds something else is left alone, with a clear line.
    raw_put(&endpoint, other, b"not json");
    let e = w.take("x").unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "{other} holds something that is not airlock's semaphore"
        )),
        "{e}"
    );
    assert!(e.contains("etcdctl get"), "{e}");
    assert_eq!(e.lines().count(), 1);
    assert_eq!(raw_get(&endpoint, other).unwrap().0, b"not json");
}

#[test]
fn twenty_nodes_race_for_two_slots_200_rounds() {
    let Some(etcd) = one_etcd("twenty_nodes_race_for_two_slots_200_rounds") else {
        return;
    };
    const NODES: usize = 20;
    const SLOTS: usize = 2;
    const ROUNDS: usize = 200;
    let endpoint = etcd.endpoint(0);
    let group = "race";
    let barrier = Arc::new(Barrier::new(NODES + 1));
    let believed = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let problems = Arc::new(Mutex::new(Vec::<String>::new()));
    let granted = Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let started = Instant::now();
    let threads: Vec<_> = (0..NODES)
        .map(|n| {
            let client = etcd.client(group);
            let (barrier, believed, most, problems, granted, endpoint) = (
                barrier.clone(),
                believed.clone(),
                most.clone(),
                problems.clone(),
                granted.clone(),
                endpoint.clone(),
            );
            thread::spawn(move || {
                let id = format!("node-{n:02}");
                let problem = |p: String| problems.lock().unwrap().push(p);
                for round in 0..ROUNDS {
                    barrier.wait();
                    let held = match client.take(&id) {
                        Ok(Taken::Granted) => {
                            let now = believed.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            granted[round].fetch_add(1, Ordering::SeqCst);
                            let stored = raw_holders(&endpoint, group);
                            if stored.len() > SLOTS || !stored.contains(&id) {
                                problem(format!(
                                    "round {round}: {id} granted, key holds {stored:?}"
                                ));
                            }
                            true
                        }
                        Ok(Taken::Refused(Refusal::Full { .. })) => false,
                        other => {
                            problem(format!("round {round}: {id}: take gave {other:?}"));
                            false
                        }
                    };
                    barrier.wait();
                    if held {
                        believed.fetch_sub(1, Ordering::SeqCst);
                        match client.release(&id) {
                            Ok(Released::Freed) => {}
                            other => {
                                problem(format!("round {round}: {id}: release gave {other:?}"))
                            }
                        }
                    }
                    barrier.wait();
                }
                client.conflicts()
            })
        })
        .collect();
    let mut leftover = Vec::new();
    for round in 0..ROUNDS {
        barrier.wait();
        barrier.wait();
        barrier.wait();
        let stored = raw_holders(&endpoint, group);
        if !stored.is_empty() {
            leftover.push(format!("round {round}: key still holds {stored:?}"));
        }
    }
    let conflicts: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let elapsed = started.elapsed();
    let problems = problems.lock().unwrap();
    assert!(
        problems.is_empty(),
        "{} problems: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    assert!(leftover.is_empty(), "{leftover:?}");
    assert!(
        most.load(Ordering::SeqCst) <= SLOTS,
        "over-admission: {} held at once",
        most.load(Ordering::SeqCst)
    );
    for (round, g) in granted.iter().enumerate() {
        assert_eq!(
            g.load(Ordering::SeqCst),
            SLOTS,
            "round {round}: every free slot is given"
        );
    }
    assert_eq!(raw_holders(&endpoint, group), Vec::<String>::new());
    println!(
        "race: {NODES} nodes, {SLOTS} slots, {ROUNDS} rounds in {elapsed:.1?}: {} grants, at most {} held at once, {conflicts} lost races",
        ROUNDS * SLOTS,
        most.load(Ordering::SeqCst)
    );
}

#[test]
fn etcd_down_gives_a_clear_error_and_the_release_completes_after_restart() {
    let Some(mut etcd) =
        one_etcd("etcd_down_gives_a_clear_error_and_the_release_completes_after_restart")
    else {
        return;
    };
    let settings = FleetSettings {
        timeout: Duration::from_secs(2),
        ..etcd.settings("down")
    };
    let c = Etcd::new(&settings).unwrap();
    assert_eq!(c.take("a").unwrap(), Taken::Granted);

    etcd.kill(0);
    let started = Instant::now();
    let e = c.take("b").unwrap_err();
    let took = started.elapsed();
    // umm's deadline (2 s) holds; room above it for a loaded machine.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(12),
        "{took:?}"
    );
    assert!(e.is_transient());
    let text = e.to_string();
    assert_eq!(
        text,
        format!(
            "no etcd endpoint answered within 2.0s: {}: connection refused; check that the server is up and reachable from this node, or raise fleet.timeout",
            etcd.endpoint(0)
        )
    );
    let e = c.release("a").unwrap_err();
    assert!(matches!(e, FleetError::Unreachable { .. }), "{e}");

    etcd.spawn(0);
    // The pending release, tried again until it lands (bounded).
    let started = Instant::now();
    loop {
        match c.release("a") {
            Ok(r) => {
                assert_eq!(r, Released::Freed);
                break;
            }
            Err(e) => assert!(started.elapsed() < Duration::from_secs(20), "{e}"),
        }
    }
    assert_eq!(raw_holders(&etcd.endpoint(0), "down"), Vec::<String>::new());
}

#[test]
fn etcd_killed_and_restarted_under_load() {
    let Some(mut etcd) = one_etcd("etcd_killed_and_restarted_under_load") else {
        return;
    };
    const NODES: usize = 6;
    const SLOTS: usize = 2;
    let group = "outage";
    let stop = Arc::new(AtomicBool::new(false));
    let believed = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let take_errors = Arc::new(AtomicUsize::new(0));
    let release_errors = Arc::new(AtomicUsize::new(0));
    let grants = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(Mutex::new(BTreeSet::new()));
    let threads: Vec<_> = (0..NODES)
        .map(|n| {
            let client = Etcd::new(&FleetSettings {
                slots: SLOTS as u64,
                timeout: Duration::from_secs(1),
                ..etcd.settings(group)
            })
            .unwrap();
            let (stop, believed, most, take_errors, release_errors, grants, messages) = (
                stop.clone(),
                believed.clone(),
                most.clone(),
                take_errors.clone(),
                release_errors.clone(),
                grants.clone(),
                messages.clone(),
            );
            thread::spawn(move || {
                let id = format!("node-{n}");
                // Releases until one lands (the wiring's pending release).
                let release = || {
                    let started = Instant::now();
                    loop {
                        match client.release(&id) {
                            Ok(_) => return true,
                            Err(e) => {
                                release_errors.fetch_add(1, Ordering::SeqCst);
                                messages.lock().unwrap().insert(e.to_string());
                                if started.elapsed() > Duration::from_secs(30) {
                                    return false;
                                }
                            }
                        }
                    }
                };
                let mut lost = 0;
                while !stop.load(Ordering::SeqCst) {
                    match client.take(&id) {
                        Ok(Taken::Granted) => {
                            grants.fetch_add(1, Ordering::SeqCst);
                            let now = believed.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(5));
                            believed.fetch_sub(1, Ordering::SeqCst);
                            if !release() {
                                lost += 1;
                            }
                        }
                        Ok(_) => thread::sleep(Duration::from_millis(2)),
                        Err(e) => {
                            take_errors.fetch_add(1, Ordering::SeqCst);
                            messages.lock().unwrap().insert(e.to_string());
                            // The take may have landed before the answer
                            // was lost: give the slot back.
                            if !release() {
                                lost += 1;
                            }
                        }
                    }
                }
                lost
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(700));
    let before = grants.load(Ordering::SeqCst);
    etcd.kill(0);
    thread::sleep(Duration::from_millis(2500));
    etcd.spawn(0);
    etcd.wait_ready();
    let restarted = grants.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::SeqCst);
    let lost: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let after = grants.load(Ordering::SeqCst);
    assert_eq!(lost, 0, "releases that never landed");
    assert!(
        most.load(Ordering::SeqCst) <= SLOTS,
        "over-admission: {}",
        most.load(Ordering::SeqCst)
    );
    assert!(
        before > 0 && after > restarted,
        "grants before {before}, at restart {restarted}, after {after}"
    );
    assert!(
        take_errors.load(Ordering::SeqCst) > 0,
        "no take saw the outage"
    );
    assert!(
        release_errors.load(Ordering::SeqCst) > 0,
        "no release saw the outage"
    );
    for m in messages.lock().unwrap().iter() {
        assert_eq!(m.lines().count(), 1, "{m}");
        assert!(
            m.starts_with("no etcd endpoint answered within 1.0s: "),
            "{m}"
        );
    }
    assert_eq!(raw_holders(&etcd.endpoint(0), group), Vec::<String>::new());
    println!(
        "outage: {} grants, {} take and {} release errors while etcd was down, at most {} held at once",
        after,
        take_errors.load(Ordering::SeqCst),
        release_errors.load(Ordering::SeqCst),
        most.load(Ordering::SeqCst)
    );
}

/// The member that leads the cluster, by index.
fn leader(etcd: &Etcds) -> usize {
    for i in 0..etcd.client_ports.len() {
        let answer = ureq::post(format!("{}/v3/maintenance/status", etcd.endpoint(i)))
            .send(b"{}".as_slice());
        if let Ok(mut a) = answer {
            let json: serde_json::Value =
                serde_json::from_str(&a.body_mut().read_to_string().unwrap()).unwrap();
            if json["leader"] == json["header"]["member_id"] {
                return i;
            }
        }
    }
    panic!("no leader");
}

#[test]
fn a_three_member_cluster_keeps_working_with_one_member_killed() {
    let Some(bin) = etcd_binary("a_three_member_cluster_keeps_working_with_one_member_killed")
    else {
        return;
    };
    let mut etcd = Etcds::start(bin, 3, None);
    let group = "ha";
    let settings = FleetSettings {
        slots: 3,
        ..etcd.settings(group)
    };
    // The leader first in the list: the client must find the others.
    let lead = leader(&etcd);
    let mut endpoints = etcd.endpoints();
    endpoints.swap(0, lead);
    let c = Etcd::new(&FleetSettings {
        endpoints,
        ..settings
    })
    .unwrap();
    assert_eq!(c.take("a").unwrap(), Taken::Granted);
    assert_eq!(c.take("b").unwrap(), Taken::Granted);

    etcd.kill(lead);
    let started = Instant::now();
    assert_eq!(c.take("c").unwrap(), Taken::Granted);
    let failover = started.elapsed();
    assert!(matches!(
        c.take("d").unwrap(),
        Taken::Refused(Refusal::Full { .. })
    ));
    assert_eq!(c.release("a").unwrap(), Released::Freed);
    let Listing::Stored { holders, .. } = c.status().unwrap().listing else {
        panic!()
    };
    let ids: Vec<&str> = holders.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["b", "c"]);
    let survivor = (lead + 1) % 3;
    assert_eq!(raw_holders(&etcd.endpoint(survivor), group), ["b", "c"]);

    // The killed member comes back and catches up.
    etcd.spawn(lead);
    let started = Instant::now();
    let stored = || match try_raw_get(&etcd.endpoint(lead), &etcd::semaphore_key(group)) {
        Ok(Some((value, _))) => value,
        _ => Vec::new(),
    };
    while stored() != br#"{"total_slots":3,"holders":["b","c"]}"# {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "m{lead} did not catch up"
        );
        thread::sleep(Duration::from_millis(100));
    }

    // A member that accepts connections and never answers (stopped, by
    // its PID), first in the list: it gets its share of the deadline, no
    // more, and the others answer.
    let hung = (lead + 1) % 3;
    let pid = nix::unistd::Pid::from_raw(etcd.children[hung].as_ref().unwrap().id() as i32);
    let mut endpoints = etcd.endpoints();
    endpoints.swap(0, hung);
    let c = Etcd::new(&FleetSettings {
        endpoints,
        timeout: Duration::from_secs(6),
        ..etcd.settings(group)
    })
    .unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let started = Instant::now();
    let outcome = c.release("b");
    let past_hung = started.elapsed();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(outcome.unwrap(), Released::Freed);
    assert!(
        past_hung >= Duration::from_secs(2) && past_hung < Duration::from_secs(5),
        "{past_hung:?}: the hung member should get a third of 6 s"
    );
    println!(
        "3-member cluster: a take with the leader killed took {failover:.1?}; \
         a release past a hung first member {past_hung:.1?} (deadline 6 s)"
    );
}

// ------------------------------------------------------------ TLS

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `name`.crt/.key in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate `name`.crt/.key signed by `ca`, for 127.0.0.1.
fn make_cert(dir: &Path, ca: &str, name: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    for (file, mode) in [
        (format!("{name}.key"), 0o600),
        (format!("{name}.crt"), 0o644),
    ] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn tls_with_client_certificates() {
    let Some(bin) = etcd_binary("tls_with_client_certificates") else {
        return;
    };
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    make_ca(p, "ca");
    make_ca(p, "other-ca");
    make_cert(p, "ca", "server");
    make_cert(p, "ca", "client");
    make_cert(p, "other-ca", "stranger");
    for f in ["ca.crt", "other-ca.crt"] {
        std::fs::set_permissions(p.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let etcd = Etcds::start(
        bin,
        1,
        Some(ServerTls {
            ca: p.join("ca.crt"),
            cert: p.join("server.crt"),
            key: p.join("server.key"),
        }),
    );
    // A deadline far above the bound below: a failure is said at once, not
    // when the deadline ends (with room for a loaded machine).
    let good = FleetSettings {
        timeout: Duration::from_secs(60),
        ..etcd.settings("secure")
    };
    assert!(good.endpoints[0].starts_with("https://127.0.0.1:"));
    let c = Etcd::new(&good).unwrap();
    assert_eq!(c.take("a").unwrap(), Taken::Granted);
    assert_eq!(c.release("a").unwrap(), Released::Freed);

    // Each failure: at once (not at the deadline), one line, what to do.
    let refused = |settings: &FleetSettings, words: &[&str]| {
        let c = Etcd::new(settings).unwrap();
        let started = Instant::now();
        let e = c.take("a").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(30), "{e}");
        assert!(matches!(e, FleetError::Tls { .. }), "{e:?}");
        assert!(!e.is_transient());
        let text = e.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(&good.endpoints[0]), "{text}");
        for w in words {
            assert!(text.contains(w), "{text} lacks {w:?}");
        }
        println!("refused as expected: {text}");
    };
    // A client certificate from another CA.
    refused(
        &FleetSettings {
            cert_file: Some(p.join("stranger.crt")),
            key_file: Some(p.join("stranger.key")),
            ..good.clone()
        },
        &[
            "the server refused this node's client certificate",
            "cert_file",
        ],
    );
    // No client certificate at all.
    refused(
        &FleetSettings {
            cert_file: None,
            key_file: None,
            ..good.clone()
        },
        &[
            "the server wants a client certificate and none is configured",
            "fleet.cert_file",
        ],
    );
    // A server whose certificate our CA did not sign.
    refused(
        &FleetSettings {
            ca_file: Some(p.join("other-ca.crt")),
            ..good.clone()
        },
        &["not signed by a trusted CA", "other-ca.crt"],
    );

    // A private key others can read: refused before any traffic.
    std::fs::set_permissions(p.join("client.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = fleet::from_settings(&good)
        .err()
        .expect("refused")
        .to_string();
    let key = p.join("client.key").display().to_string();
    assert!(e.starts_with(&key), "{e}");
    assert!(e.contains("mode 0644"), "{e}");
    assert!(e.contains(&format!("chmod 600 {key}")), "{e}");
    assert_eq!(e.lines().count(), 1);
    println!("refused as expected: {e}");
    std::fs::set_permissions(p.join("client.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // A key that is not the certificate's.
    let e = Etcd::new(&FleetSettings {
        key_file: Some(p.join("stranger.key")),
        ..good.clone()
    })
    .err()
    .expect("refused")
    .to_string();
    assert!(e.contains("cannot be used with"), "{e}");
    assert!(fleet::from_settings(&good).unwrap().is_some());
}

// ------------------------------------------------------------ FleetLock

#[test]
fn fleetlock_grants_refuses_and_repeats() {
    let server = LockServer::start(1);
    let c = server.client(Duration::from_secs(5));
    assert_eq!(c.take("a").unwrap(), Taken::Granted);
    assert_eq!(
        c.take("a").unwrap(),
        Taken::Granted,
        "a repeated take is granted"
    );
    let refusal = match c.take("b").unwrap() {
        Taken::Refused(r) => r,
        other => panic!("b: {other:?}"),
    };
    assert_eq!(
        refusal,
        Refusal::Server {
            status: 409,
            kind: "failed_lock".into(),
            value: "all 1 semaphore slots currently locked".into()
        }
    );
    assert_eq!(
        refusal.to_string(),
        "the server answered HTTP 409, failed_lock: all 1 semaphore slots currently locked"
    );
    assert_eq!(c.release("a").unwrap(), Released::Acknowledged);
    assert_eq!(
        c.release("a").unwrap(),
        Released::Acknowledged,
        "a repeated release is fine"
    );
    assert_eq!(c.take("b").unwrap(), Taken::Granted);

    let seen = server.state.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 6);
    for s in &seen {
        assert_eq!(s.protocol.as_deref(), Some("true"));
    }
    assert_eq!(seen[0].path, "/v1/pre-reboot");
    assert_eq!(seen[3].path, "/v1/steady-state");
    assert_eq!(
        seen[0].body,
        r#"{"client_params":{"group":"workers","id":"a"}}"#
    );

    // status: what this client heard, and that it cannot list.
    let status = c.status().unwrap();
    let Listing::Unlisted { known } = &status.listing else {
        panic!("{status:?}")
    };
    let last: Vec<(&str, &str)> = known.iter().map(|k| (k.id.as_str(), k.last)).collect();
    assert_eq!(last, [("a", "released"), ("b", "granted")]);
    assert!(
        status.to_string().contains("cannot list who holds a slot"),
        "{status}"
    );
}

#[test]
fn fleetlock_server_errors_are_refusals_or_transient_errors() {
    let server = LockServer::start(1);
    let c = server.client(Duration::from_secs(5));
    server.set_mode(Mode::Fail);
    match c.take("a").unwrap() {
        Taken::Refused(r) => assert_eq!(
            r.to_string(),
            "the server answered HTTP 500, generic_error: etcd unavailable"
        ),
        other => panic!("{other:?}"),
    }
    let e = c.release("a").unwrap_err();
    assert!(e.is_transient());
    assert_eq!(
        e.to_string(),
        format!(
            "fleetlock at {}/v1/steady-state answered HTTP 500 (generic_error: etcd unavailable); the server is failing: check its logs, then try again",
            server.url
        )
    );
}

#[test]
fn fleetlock_slow_or_absent_servers_hit_the_deadline() {
    let server = LockServer::start(1);
    server.set_mode(Mode::Slow(Duration::from_secs(30)));
    let c = server.client(Duration::from_secs(1));
    let started = Instant::now();
    let e = c.take("a").unwrap_err();
    let took = started.elapsed();
    // umm's deadline (1 s) cut the 30 s answer short; room for a loaded machine.
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(e.is_transient());
    assert_eq!(
        e.to_string(),
        format!(
            "no fleetlock endpoint answered within 1.0s: {}/v1/pre-reboot: no answer in time; check that the server is up and reachable from this node, or raise fleet.timeout",
            server.url
        )
    );

    let closed = free_port();
    let c = FleetLock::new(&FleetSettings {
        backend: Backend::FleetLock,
        url: Some(format!("http://127.0.0.1:{closed}/")),
        timeout: Duration::from_secs(1),
        ..FleetSettings::default()
    })
    .unwrap();
    let started = Instant::now();
    let e = c.release("a").unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        e.contains(&format!(
            "http://127.0.0.1:{closed}/v1/steady-state: connection refused"
        )),
        "{e}"
    );
}

#[test]
fn from_settings_builds_each_backend() {
    assert!(fleet::from_settings(&FleetSettings::default())
        .unwrap()
        .is_none());
    let server = LockServer::start(2);
    let c = fleet::from_settings(&FleetSettings {
        backend: Backend::FleetLock,
        group: "workers".into(),
        url: Some(server.url.clone()),
        ..FleetSettings::default()
    })
    .unwrap()
    .unwrap();
    assert_eq!(c.backend(), Backend::FleetLock);
    assert_eq!(c.group(), "workers");
    assert_eq!(c.take("x").unwrap(), Taken::Granted);
    let e = fleet::from_settings(&FleetSettings {
        backend: Backend::Etcd,
        ..FleetSettings::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.starts_with("fleet.endpoints: is empty"), "{e}");
}

// ------------------------------------------------------------ benchmark

/// 1,000 clients, each its own connection, race for 10 slots of one group
/// on one loopback etcd; then all of them go through the group, 10 at a
/// time. `make bench-fleet`.
#[test]
#[ignore = "a benchmark: make bench-fleet"]
fn bench_1000_clients() {
    let Some(etcd) = one_etcd("bench_1000_clients") else {
        return;
    };
    const CLIENTS: usize = 1000;
    const SLOTS: usize = 10;
    let endpoint = etcd.endpoint(0);
    let group = "bench";
    let settings = FleetSettings {
        slots: SLOTS as u64,
        timeout: Duration::from_secs(60),
        ..etcd.settings(group)
    };
    let clients: Vec<Arc<Etcd>> = (0..CLIENTS)
        .map(|_| Arc::new(Etcd::new(&settings).unwrap()))
        .collect();

    // Phase 1: everyone at once.
    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let threads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let (c, barrier) = (c.clone(), barrier.clone());
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    let outcome = c.take(&format!("node-{n:04}"));
                    (outcome, started.elapsed(), c.conflicts(), Instant::now())
                })
                .unwrap()
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let last_answer = results.iter().map(|r| r.3).max().unwrap() - start;
    let granted: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.0, Ok(Taken::Granted)))
        .map(|(n, _)| n)
        .collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r.0, Ok(Taken::Refused(_))))
        .count();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.0.as_ref().err().map(|e| e.to_string()))
        .collect();
    let stored = raw_holders(&endpoint, group);
    let mut retries: Vec<f64> = results.iter().map(|r| r.2 as f64).collect();
    retries.sort_by(f64::total_cmp);
    let mut latency: Vec<f64> = results.iter().map(|r| r.1.as_secs_f64() * 1000.0).collect();
    latency.sort_by(f64::total_cmp);
    println!(
        "bench phase 1: {CLIENTS} clients race for {SLOTS} slots of one group, one loopback etcd"
    );
    println!(
        "  answered: {} granted, {refused} refused, {} errors",
        granted.len(),
        errors.len()
    );
    println!(
        "  over-admission: {} (key holds {} holders)",
        granted.len().saturating_sub(SLOTS),
        stored.len()
    );
    println!(
        "  time to the last answer: {:.2} s",
        last_answer.as_secs_f64()
    );
    println!(
        "  takes answered per second: {:.0}",
        CLIENTS as f64 / last_answer.as_secs_f64()
    );
    println!(
        "  lost races (CAS retries) per take: p50 {:.0}, p99 {:.0}, max {:.0}",
        percentile(&retries, 0.5),
        percentile(&retries, 0.99),
        retries.last().unwrap()
    );
    println!(
        "  take latency: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latency, 0.5),
        percentile(&latency, 0.99)
    );
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(5)]);
    assert_eq!(granted.len(), SLOTS);
    assert_eq!(stored.len(), SLOTS);
    for n in &granted {
        assert_eq!(
            clients[*n].release(&format!("node-{n:04}")).unwrap(),
            Released::Freed
        );
    }

    // Phase 2: a rolling maintenance: every client goes through the group
    // once, holding its slot 200 ms, asking again every 100-300 ms while
    // refused (bounded at 5 minutes). A release that fails is tried again,
    // as the wiring's pending release will be.
    const HOLD: Duration = Duration::from_millis(200);
    let believed = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(300);
    let start = Instant::now();
    let threads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let (c, believed, most, calls, failures) = (
                c.clone(),
                believed.clone(),
                most.clone(),
                calls.clone(),
                failures.clone(),
            );
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let id = format!("node-{n:04}");
                    let mut seed = n as u64 * 2_654_435_761 + 1;
                    while Instant::now() < deadline {
                        calls.fetch_add(1, Ordering::Relaxed);
                        match c.take(&id) {
                            Ok(Taken::Granted) => {
                                let now = believed.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                thread::sleep(HOLD);
                                believed.fetch_sub(1, Ordering::SeqCst);
                                for _ in 0..20 {
                                    calls.fetch_add(1, Ordering::Relaxed);
                                    match c.release(&id) {
                                        Ok(_) => return true,
                                        Err(e) => {
                                            failures.lock().unwrap().push(format!("release: {e}"))
                                        }
                                    }
                                }
                                return false;
                            }
                            Ok(_) => {}
                            Err(e) => failures.lock().unwrap().push(format!("take: {e}")),
                        }
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        thread::sleep(Duration::from_millis(100 + (seed >> 33) % 200));
                    }
                    false
                })
                .unwrap()
        })
        .collect();
    let passed = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    let all = start.elapsed();
    let failures = failures.lock().unwrap();
    println!(
        "bench phase 2: a rolling maintenance, every client through the group {SLOTS} at a time \
         (200 ms each, asking again every 100-300 ms)"
    );
    println!(
        "  {passed} of {CLIENTS} passed in {:.1} s (at best {:.1} s); at most {} held at once; \
         {} calls ({:.0} per second); {} failed calls",
        all.as_secs_f64(),
        (CLIENTS / SLOTS) as f64 * HOLD.as_secs_f64(),
        most.load(Ordering::SeqCst),
        calls.load(Ordering::Relaxed),
        calls.load(Ordering::Relaxed) as f64 / all.as_secs_f64(),
        failures.len()
    );
    for f in failures.iter().take(5) {
        println!("  failed: {f}");
    }
    assert_eq!(passed, CLIENTS);
    assert!(most.load(Ordering::SeqCst) <= SLOTS);
    assert_eq!(raw_holders(&endpoint, group), Vec::<String>::new());
}

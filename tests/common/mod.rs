//! The harness every integration test shares.
//!
//! - `Tree`: a temporary directory and the file operations tests make on it.
//! - `Node`: a `Tree` that is a node's root for the `umm` binary
//!   (`UMM_ROOT`): its /proc files (boot id, uptime, kernel command line),
//!   the recording init system (`UMM_INIT=record`: what umm asks of init is
//!   appended to `/run/umm/init-actions`), a fixed wall clock (`UMM_NOW`),
//!   and boots simulated by changing the boot id and running the entry
//!   points the units run.
//! - `require_tool`: a real tool (etcd, promtool, virsh...) found, or the
//!   test skipped with a SKIPPED line, unless a UMM_*_REQUIRE variable says
//!   it must be there (CI sets them: .ci/run).
//! - `bounded_node`, `node_in_maintenance`: the nodes the fault tests
//!   (failpoints.rs, hostile.rs) start from.
//! - `assert_boot_failure_status`: the status of a boot-failure maintenance
//!   (bootcount.rs, grub.rs).
//! - `stopped::run_until`: a umm run stopped at a named step by its `stop`
//!   fail point (fleet_cmd.rs, fleet_settle.rs).
//! - `etcd`, `fleetlock`: the fleet coordinators the fleet tests run on
//!   loopback (a real etcd; a FleetLock server written from the protocol).

// Each test crate uses its own part of the harness.
#![allow(dead_code)]

pub mod etcd;
pub mod fleetlock;
pub mod prometheus;
pub mod stopped;

use std::fs;
use std::io::Write;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where the real tools are looked for (and the `PATH` of the tests that
/// run them): the system's directories, not the caller's PATH.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A real tool that `make deps` installs, found in [`SYSTEM_PATH`]. When it
/// is missing the test is skipped: `None` after a `SKIPPED test: ...` line
/// on the terminal; unless `require_var` (such as UMM_FLEET_REQUIRE_ETCD)
/// is "1" or "all", or a comma-separated list that names `tool`: then the
/// test fails.
pub fn require_tool(test: &str, tool: &str, package: &str, require_var: &str) -> Option<PathBuf> {
    if let Some(path) = SYSTEM_PATH
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
    {
        return Some(path);
    }
    let required = std::env::var(require_var).unwrap_or_default();
    if required == "1" || required == "all" || required.split(',').any(|t| t == tool) {
        panic!("{tool} is not installed (Debian package {package}) and {require_var}={required}");
    }
    // Not eprintln!, which the test harness captures: this must be seen.
    let mut terminal = std::io::stderr();
    let _ = writeln!(
        terminal,
        "SKIPPED {test}: {tool} is not installed (Debian package {package})"
    );
    None
}

/// Bound on a run of umm that should return at once: a hang fails the test
/// instead of holding it forever (with room for a loaded machine).
pub const HANG: Duration = Duration::from_secs(10);

/// A node whose every run must return within [`HANG`].
pub fn bounded_node() -> Node {
    Node::new().bounded(HANG)
}

/// A bounded node in a crash-loop maintenance (its state holds something to lose).
pub fn node_in_maintenance() -> Node {
    let mut node = bounded_node();
    node.boot();
    for _ in 0..3 {
        node.boot();
    }
    assert_eq!(node.status()["state"], "maintenance");
    node
}

/// `umm status --json` in the maintenance that GRUB's boot counting
/// started: kernel `failed` never reached userspace in 3 attempts and this
/// boot runs `running`, the last good one (tests/bootcount.rs, grub.rs).
pub fn assert_boot_failure_status(status: &Value, failed: &str, running: &str) {
    assert_eq!(
        (status["state"].as_str(), status["reason"].as_str()),
        (Some("maintenance"), Some("boot-failure"))
    );
    let failure = &status["boot_menu"]["boot_failure"];
    assert_eq!(failure["kernel"], failed);
    assert_eq!(failure["attempts"], 3);
    assert_eq!(failure["running_kernel"], running);
    assert!(failure["since"].is_string(), "{failure}");
}

/// Waits for `child` (a process this test started) at most `limit`. On
/// time-out it is killed by its own handle and reaped, and None comes back
/// so that the caller fails with what it knows (its output, say).
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A temporary directory, removed when dropped.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `p` inside the tree (with or without a leading `/`).
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p.trim_start_matches('/'))
    }

    /// Writes `text` to `p`, creating its directories; whatever was there
    /// (a FIFO, a link) is replaced.
    pub fn write(&self, p: &str, text: &str) {
        let path = self.path(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&path);
        fs::write(path, text).unwrap();
    }

    /// `write`, then mode 0755.
    pub fn executable(&self, p: &str, text: &str) {
        self.write(p, text);
        fs::set_permissions(self.path(p), fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The text of `p`; empty when it does not exist.
    pub fn read(&self, p: &str) -> String {
        fs::read_to_string(self.path(p)).unwrap_or_default()
    }

    pub fn exists(&self, p: &str) -> bool {
        self.path(p).exists()
    }

    /// A FIFO at `p`, in place of whatever was there.
    pub fn fifo(&self, p: &str) {
        let path = self.path(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    }

    /// The permission bits of `p`.
    pub fn mode(&self, p: &str) -> u32 {
        fs::metadata(self.path(p)).unwrap().permissions().mode() & 0o777
    }

    /// The names in directory `dir`, sorted.
    pub fn names(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The names in `dir` that start with `prefix`, sorted.
    pub fn names_starting(&self, dir: &str, prefix: &str) -> Vec<String> {
        self.names(dir)
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect()
    }
}

/// What one run of umm did.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    /// Killed by this signal.
    pub signal: Option<i32>,
    /// stdout and stderr, in the order written.
    pub out: String,
    pub elapsed: Duration,
    /// Peak resident memory of umm and the children it waited for.
    pub max_rss_kib: i64,
}

/// A node's root for the `umm` binary.
pub struct Node {
    pub tree: Tree,
    /// Boots simulated so far (the boot ids are `boot-<n>`).
    pub boots: u32,
    /// More environment for every run.
    pub env: Vec<(String, String)>,
    /// When set, a run that has not returned after this long is killed and
    /// fails the test (a hang is the failure).
    pub hang: Option<Duration>,
}

impl Deref for Node {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.tree
    }
}

/// The wall clock every run sees (2026-11-21T19:42:00Z).
pub const NOW: &str = "1795290120";

impl Node {
    pub fn new() -> Node {
        let tree = Tree::new();
        // Hooks refuse directories others may write; the walk starts here.
        fs::set_permissions(tree.root(), fs::Permissions::from_mode(0o755)).unwrap();
        let node = Node {
            tree,
            boots: 0,
            env: Vec::new(),
            hang: None,
        };
        node.write("/proc/sys/kernel/random/boot_id", "boot-0\n");
        node.write("/proc/uptime", "12.50 20.00\n");
        node.write("/proc/cmdline", "root=/dev/vda1 ro quiet\n");
        node
    }

    /// Every run of this node must return within `hang`.
    pub fn bounded(mut self, hang: Duration) -> Node {
        self.hang = Some(hang);
        self
    }

    /// The `umm` binary with this node's environment and nothing of the
    /// caller's that would change what umm does.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_umm"));
        c.args(args)
            .env("UMM_ROOT", self.root())
            .env("UMM_INIT", "record")
            .env("UMM_NOW", NOW)
            .env_remove("SUDO_USER")
            .env_remove("SSH_CONNECTION")
            .env_remove("FAILPOINTS")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `c`, its output (stdout and stderr) into a file: a child that
    /// umm leaves holding it never blocks the test.
    pub fn run_cmd(&self, mut c: Command) -> Ran {
        let out_path = self.path("/.out");
        let out = fs::File::create(&out_path).unwrap();
        c.stdout(out.try_clone().unwrap()).stderr(out);
        let started = Instant::now();
        // Reaped by wait4 below (or killed and waited for on a hang).
        #[allow(clippy::zombie_processes)]
        let mut child = c.spawn().unwrap();
        let pid = child.id() as i32;
        // wait4, not Child::wait: it also gives the peak memory of umm and
        // of what umm waited for (the hooks), and of nothing else.
        let (status, max_rss_kib) = loop {
            let mut status = 0;
            // SAFETY: plain out-parameters.
            let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
            let r = unsafe { nix::libc::wait4(pid, &mut status, nix::libc::WNOHANG, &mut usage) };
            if r == pid {
                break (status, usage.ru_maxrss);
            }
            if self.hang.is_some_and(|hang| started.elapsed() > hang) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "umm hung for {:?}; it said: {}",
                    self.hang.unwrap(),
                    fs::read_to_string(&out_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = started.elapsed();
        Ran {
            code: nix::libc::WIFEXITED(status).then(|| nix::libc::WEXITSTATUS(status)),
            signal: nix::libc::WIFSIGNALED(status).then(|| nix::libc::WTERMSIG(status)),
            out: fs::read_to_string(&out_path).unwrap_or_default(),
            elapsed,
            max_rss_kib,
        }
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.run_cmd(self.command(args))
    }

    /// Runs umm as user and group 65534 (nobody).
    pub fn as_nobody(&self, args: &[&str]) -> Ran {
        let mut c = self.command(args);
        c.uid(65534).gid(65534);
        self.run_cmd(c)
    }

    /// Runs umm and expects the given exit code; returns what it said.
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, Some(code), "umm {args:?} said:\n{}", r.out);
        r.out
    }

    /// `umm status --json`.
    pub fn status(&self) -> Value {
        let out = self.expect(0, &["status", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// A new boot: what the boot unit runs early in every boot; returns
    /// what umm-boot said.
    pub fn boot(&mut self) -> String {
        self.boots += 1;
        self.write(
            "/proc/sys/kernel/random/boot_id",
            &format!("boot-{}\n", self.boots),
        );
        self.expect(0, &["internal", "boot"])
    }

    /// A new boot whose umm-boot runs with `FAILPOINTS` set; what it did.
    pub fn boot_with_failpoints(&mut self, failpoints: &str) -> Ran {
        self.boots += 1;
        self.write(
            "/proc/sys/kernel/random/boot_id",
            &format!("boot-{}\n", self.boots),
        );
        let mut c = self.command(&["internal", "boot"]);
        c.env("FAILPOINTS", failpoints);
        self.run_cmd(c)
    }

    /// A boot after a crash: nothing recorded the end of the last one.
    pub fn crash_and_boot(&mut self) {
        self.boot();
    }

    pub fn clean_reboot(&mut self) {
        self.expect(0, &["internal", "clean-shutdown"]);
        self.boot();
    }

    /// The systemd generator, into `/run/systemd/generator{,.early}`.
    pub fn generator(&self) -> Ran {
        let gen = self.path("/run/systemd/generator");
        let early = self.path("/run/systemd/generator.early");
        self.run(&[
            "internal",
            "generator",
            gen.to_str().unwrap(),
            early.to_str().unwrap(),
        ])
    }

    /// What umm asked of the (recording) init system, in order.
    pub fn actions(&self) -> Vec<String> {
        self.read("/run/umm/init-actions")
            .lines()
            .map(String::from)
            .collect()
    }

    /// umm's log lines (under a test root they go to a file).
    pub fn log(&self) -> String {
        self.read("/run/umm/log")
    }

    /// A hook `name` in `/etc/umm/<phase>.d` running `body` under sh.
    pub fn hook(&self, phase: &str, name: &str, body: &str) {
        self.executable(
            &format!("/etc/umm/{phase}.d/{name}"),
            &format!("#!/bin/sh\n{body}\n"),
        );
    }

    /// The services the recording init system reports, one per line:
    /// `name state [finished-ok] [enabled] [early]`.
    pub fn services(&self, lines: &str) {
        self.write("/run/umm/init-services", lines);
    }
}

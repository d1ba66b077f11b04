//! A real Prometheus on loopback for the rolling tests (Debian's
//! `prometheus`): started from a temporary directory on a free port of
//! 127.0.0.1, evaluating `rules.yml` every second, its rules swapped on
//! SIGHUP, killed by PID when dropped.
//!
//! When prometheus is not installed, `Prometheus::start` prints a SKIPPED
//! line and returns `None`, unless `UMM_METRICS_REQUIRE_PROMTOOL=1` (as CI
//! sets it: the same package ships promtool), when it fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use umm::fleet::gate::query;
use umm::fleet::FleetSettings;

/// A rule whose alert `UmmTestDown` always fires.
pub const FIRING: &str =
    "groups:\n- name: umm\n  interval: 1s\n  rules:\n  - alert: UmmTestDown\n    expr: vector(1)\n";
/// The same alert, never firing.
pub const CLEAR: &str = "groups:\n- name: umm\n  interval: 1s\n  rules:\n  - alert: UmmTestDown\n    expr: vector(1) < 0\n";

/// Polls `done` every 200 ms for at most `limit`.
pub fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Prometheus, or `None` (after a SKIPPED line) unless required
/// (UMM_METRICS_REQUIRE_PROMTOOL, which CI sets).
fn prometheus_binary(test: &str) -> Option<PathBuf> {
    super::require_tool(
        test,
        "prometheus",
        "prometheus",
        "UMM_METRICS_REQUIRE_PROMTOOL",
    )
}

/// Prometheus on a free port of 127.0.0.1, evaluating `rules.yml` every
/// second; killed by PID on drop.
pub struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    pub url: String,
}

impl Prometheus {
    pub fn start(test: &str, rules: &str) -> Option<Prometheus> {
        let bin = prometheus_binary(test)?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            "global:\n  evaluation_interval: 1s\nrule_files:\n- rules.yml\n",
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Prometheus {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        let up = until(Duration::from_secs(60), || {
            query(
                &FleetSettings::default(),
                &p.url,
                "vector(1)",
                Duration::from_secs(2),
            )
            .is_ok()
        });
        assert!(up, "prometheus did not answer: {}", p.log());
        Some(p)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Whether UmmTestDown fires, as Prometheus says (not through umm's
    /// reading of the answer).
    pub fn firing(&self) -> bool {
        let body = query(
            &FleetSettings::default(),
            &self.url,
            "ALERTS{alertstate=\"firing\"}",
            Duration::from_secs(2),
        )
        .unwrap_or_default();
        body.contains("UmmTestDown")
    }

    /// New rules, read again on SIGHUP; waits (60 s at most) until the
    /// alert is `firing`.
    pub fn rules(&self, rules: &str, firing: bool) {
        std::fs::write(self.dir.path().join("rules.yml"), rules).unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
        let settled = until(Duration::from_secs(60), || self.firing() == firing);
        assert!(
            settled,
            "the alert did not become firing={firing}: {}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

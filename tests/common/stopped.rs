//! A umm run that stops itself at a named step (the `stop` fail point of
//! src/sys/failpoint.rs), for the tests that act on it there: kill it, or
//! change the world and let it go on.

use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{wait_bounded, Node};

/// How long a run may take to reach its step, and to end after SIGCONT
/// or a signal (a hang fails the test; room for a loaded machine).
const REACH: Duration = Duration::from_secs(10);
const END: Duration = Duration::from_secs(60);

/// A umm run stopped by itself at a named step.
pub struct Stopped {
    child: Child,
    out: PathBuf,
}

/// Runs umm on `node` with `FAILPOINTS` = `also` plus `<step>=1*return(stop)`
/// (`also`: more fail points, each ending in `;`), and waits until it has
/// stopped itself at that step.
pub fn run_until(node: &Node, step: &str, also: &str, args: &[&str]) -> Stopped {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let out = node.path(&format!("/.out-{step}-{run}"));
    let file = std::fs::File::create(&out).unwrap();
    let mut c = node.command(args);
    c.env("FAILPOINTS", format!("{also}{step}=1*return(stop)"))
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    // As in a login session: SIGINT and SIGHUP end the process, even when
    // the test runs under nohup or with them ignored.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            for sig in [Signal::SIGINT, Signal::SIGHUP] {
                nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl)
                    .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = c.spawn().unwrap();
    let stopped = Stopped { child, out };
    stopped.wait_for_stop(step, args);
    stopped
}

impl Stopped {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Until /proc says the process is stopped ("pid (comm) T ...").
    fn wait_for_stop(&self, step: &str, args: &[&str]) {
        let stat = format!("/proc/{}/stat", self.child.id());
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&stat).unwrap();
            // The state follows the command's name.
            let state = text.rsplit(") ").next().unwrap().chars().next();
            if state == Some('T') {
                return;
            }
            assert!(
                started.elapsed() < REACH,
                "umm {args:?} did not reach {step}: {}",
                std::fs::read_to_string(&self.out).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `signal` where it stopped (then SIGCONT, so that a signal a
    /// stopped process only notes is acted on): the process ends.
    pub fn kill_with(mut self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
        kill(self.pid(), Signal::SIGCONT).unwrap();
        let status = wait_bounded(&mut self.child, END).expect("umm did not end after the signal");
        assert_eq!(status.code(), None, "umm was not killed by {signal:?}");
    }

    /// SIGCONT: its exit code and what it said.
    pub fn resume(mut self) -> (Option<i32>, String) {
        kill(self.pid(), Signal::SIGCONT).unwrap();
        let status = wait_bounded(&mut self.child, END).expect("umm did not finish after SIGCONT");
        (status.code(), std::fs::read_to_string(&self.out).unwrap())
    }
}

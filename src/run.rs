//! Running a child (the scheduled command, a hook) with a bound: it gets its
//! own process group, and on timeout that whole group, and nothing else, is
//! killed.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    pub fn describe(&self) -> String {
        if self.timed_out {
            format!("killed after its timeout of {:.0?}", self.elapsed)
        } else if let Some(code) = self.exit_code {
            format!("exited {code}")
        } else {
            format!("killed by signal {}", self.signal.unwrap_or(0))
        }
    }
}

/// Creates `path` afresh, readable by root only (0600) from the start: the
/// output of a command or hook may hold secrets. An older file is removed
/// first, whatever its mode was.
pub fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// Grace between SIGTERM and SIGKILL for a group that outlived its timeout.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Spawns `cmd` in a new process group and waits at most `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> std::io::Result<Finished> {
    cmd.process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let pgid = Pid::from_raw(child.id() as i32);
    if let Some(status) = wait_until(&mut child, started + timeout)? {
        return Ok(finished(status, false, started));
    }
    let _ = killpg(pgid, Signal::SIGTERM);
    let status = match wait_until(&mut child, Instant::now() + KILL_GRACE)? {
        Some(status) => status,
        None => {
            let _ = killpg(pgid, Signal::SIGKILL);
            child.wait()?
        }
    };
    // Children of the hook that ignored SIGTERM.
    let _ = killpg(pgid, Signal::SIGKILL);
    Ok(finished(status, true, started))
}

fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finished(status: std::process::ExitStatus, timed_out: bool, started: Instant) -> Finished {
    Finished {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn reports_the_exit_code() {
        let f = run_bounded(sh("exit 3"), Duration::from_secs(5)).unwrap();
        assert_eq!((f.exit_code, f.timed_out), (Some(3), false));
    }

    #[test]
    fn kills_the_whole_group_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        // A grandchild that would write the marker after the timeout.
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let f = run_bounded(sh(&script), Duration::from_millis(300)).unwrap();
        assert!(f.timed_out);
        assert!(f.elapsed < Duration::from_secs(5), "{:?}", f.elapsed);
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild outlived the kill");
    }
}

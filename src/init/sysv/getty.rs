//! The console gettys of a paused sysvinit boot: started, restarted after
//! a logout as init's `respawn` would (with a backoff and a bound), and
//! stopped, by PID, when the boot resumes and init starts its own.

use std::collections::VecDeque;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::setsid;

use crate::sys::paths::Root;
use crate::sys::run;

/// A getty that exited (a logout) waits this long before it starts again.
pub const RESPAWN_BACKOFF: Duration = Duration::from_secs(1);

/// At most `RESPAWN_MAX` starts of one getty in `RESPAWN_WINDOW` (a getty
/// that dies at once, on a missing tty, must not spin).
pub const RESPAWN_WINDOW: Duration = Duration::from_secs(60);

pub const RESPAWN_MAX: usize = 10;

/// When a getty that exited at `exited` may start again, given when it
/// started before: after the backoff, or, when it started `RESPAWN_MAX`
/// times within the window, once the oldest of those starts leaves it.
pub fn next_start(starts: &VecDeque<Instant>, exited: Instant) -> Instant {
    let recent: Vec<&Instant> = starts
        .iter()
        .filter(|s| exited.saturating_duration_since(**s) < RESPAWN_WINDOW)
        .collect();
    match recent.first() {
        Some(oldest) if recent.len() >= RESPAWN_MAX => **oldest + RESPAWN_WINDOW,
        _ => exited + RESPAWN_BACKOFF,
    }
}

/// A console getty the paused boot runs, as init would with `respawn`.
struct Getty {
    /// The inittab process line: the program and its arguments.
    line: String,
    child: Option<Child>,
    starts: VecDeque<Instant>,
    restart_at: Option<Instant>,
}

/// The gettys of a paused sysvinit boot: restarted when they exit, stopped
/// (by PID, ours only) when the boot resumes and init starts its own.
pub struct Gettys {
    /// Where the gettys' programs are (the root prefix).
    root: Root,
    gettys: Vec<Getty>,
}

impl Gettys {
    /// The gettys of these inittab lines, none running yet (each starts at
    /// the first `supervise`).
    pub fn new(root: &Root, lines: Vec<String>) -> Gettys {
        Gettys {
            root: root.clone(),
            gettys: lines
                .into_iter()
                .map(|line| Getty {
                    line,
                    child: None,
                    starts: VecDeque::new(),
                    restart_at: Some(Instant::now()),
                })
                .collect(),
        }
    }

    /// Called about once a second while the boot is paused: reaps the
    /// gettys that exited and starts those whose time has come.
    pub fn supervise(&mut self) {
        let now = Instant::now();
        for g in &mut self.gettys {
            if let Some(child) = g.child.as_mut() {
                match child.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(status)) => {
                        let at = next_start(&g.starts, now);
                        if at > now + RESPAWN_BACKOFF {
                            log::warn!(
                                "maintenance: {} exited ({status}) {RESPAWN_MAX} times in {}s; next start in {}s",
                                g.line,
                                RESPAWN_WINDOW.as_secs(),
                                at.saturating_duration_since(now).as_secs()
                            );
                        } else {
                            log::info!(
                                "maintenance: {} exited ({status}); starting it again",
                                g.line
                            );
                        }
                        g.child = None;
                        g.restart_at = Some(at);
                    }
                    Err(e) => {
                        log::warn!("maintenance: cannot watch {}: {e}", g.line);
                        continue;
                    }
                }
            }
            if g.restart_at.is_some_and(|at| now >= at) {
                g.restart_at = None;
                g.starts.push_back(now);
                while g.starts.len() > RESPAWN_MAX {
                    g.starts.pop_front();
                }
                g.child = spawn_getty(&self.root, &g.line);
                if g.child.is_none() {
                    g.restart_at = Some(next_start(&g.starts, now));
                }
            }
        }
    }

    /// Stops our gettys, by PID, and reaps them (bounded).
    pub fn stop(&mut self) {
        let mut running: Vec<Child> = self
            .gettys
            .iter_mut()
            .filter_map(|g| g.child.take())
            .collect();
        for child in &running {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while !running.is_empty() && Instant::now() < deadline {
            running.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            std::thread::sleep(Duration::from_millis(50));
        }
        for mut child in running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts one inittab getty line, in a session of its own; its program
/// (an absolute path, as inittab has it) under the root prefix.
fn spawn_getty(root: &Root, line: &str) -> Option<Child> {
    let mut words = line.split_whitespace();
    let program = words.next()?;
    let program = if program.starts_with('/') {
        root.join(Path::new(program))
    } else if root.is_system() {
        Path::new(program).to_path_buf()
    } else {
        // Found through PATH: the host's, which a test root never runs.
        log::warn!("maintenance: not starting {line} under a test root: not an absolute path");
        return None;
    };
    let mut cmd = run::command(program);
    cmd.args(words)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // A session of its own, as init would give it (the signals are reset
    // by run::command).
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let child = cmd
        .spawn()
        .map_err(|e| log::warn!("maintenance: cannot start {line}: {e}"))
        .ok()?;
    log::info!("maintenance: started {line} (pid {})", child.id());
    Some(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #16 item 6a: a getty that exits (a logout) starts again after
    /// the backoff, at most RESPAWN_MAX times a minute.
    #[rstest::rstest]
    #[case::first_exit(&[0], 5, 6)]
    #[case::a_few_logouts(&[0, 10, 20], 30, 31)]
    #[case::spinning(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 10, 60)]
    #[case::spinning_long_ago(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 100, 101)]
    #[case::window_moves(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 61], 62, 63)]
    fn gettys_respawn_with_a_backoff_and_a_bound(
        #[case] starts: &[u64],
        #[case] exited: u64,
        #[case] next: u64,
    ) {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let starts: VecDeque<Instant> = starts
            .iter()
            .rev()
            .take(RESPAWN_MAX)
            .rev()
            .map(|s| at(*s))
            .collect();
        assert_eq!(next_start(&starts, at(exited)), at(next));
    }
}

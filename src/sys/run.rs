//! Starting children, in one place: the scheduled command, hooks, init
//! scripts, gettys, update-grub, the maintenance worker.
//!
//! - Every child starts with the default disposition for every signal and
//!   an empty signal mask (`reset_signals`): umm itself may ignore SIGHUP
//!   and the job-control signals (the sysvinit pause does), and ignored
//!   signals survive exec; a hook must not inherit that.
//! - `run_bounded` gives a child its own process group, and on timeout that
//!   whole group, and nothing else, is killed.
//! - `run_capturing` also reads the child's output (stdout and stderr) from
//!   a pipe as it comes, line by line with a cap per line, and hands each
//!   line on: nothing is read whole. Once the child is gone, output still
//!   held open by a grandchild is drained for `DRAIN` at most.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
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
pub fn create_private(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// The highest signal number on Linux (SIGRTMAX).
const LAST_SIGNAL: i32 = 64;

/// Makes `cmd` start with default signal dispositions and an empty mask.
pub fn reset_signals(cmd: &mut Command) -> &mut Command {
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (rt_sigaction, sigemptyset, sigprocmask), on no memory but the stack.
    unsafe {
        cmd.pre_exec(|| {
            // The kernel's struct sigaction, all zero: SIG_DFL, no flags, an
            // empty mask. The system call itself, not glibc's signal(): glibc
            // refuses the two real-time signals it reserves (32, 33), and a
            // parent may have left those ignored too (seen under cargo).
            let default = [0u64; 4];
            for sig in 1..=LAST_SIGNAL {
                if sig != nix::libc::SIGKILL && sig != nix::libc::SIGSTOP {
                    nix::libc::syscall(
                        nix::libc::SYS_rt_sigaction,
                        sig,
                        default.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8usize,
                    );
                }
            }
            let mut set = std::mem::MaybeUninit::<nix::libc::sigset_t>::uninit();
            nix::libc::sigemptyset(set.as_mut_ptr());
            if nix::libc::sigprocmask(nix::libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut())
                != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A `Command` for `program` with the signal reset already applied.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    reset_signals(&mut cmd);
    cmd
}

/// Grace between SIGTERM and SIGKILL for a group that outlived its timeout.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Once the child is gone, how long output held open by a grandchild that
/// left the group is still read.
pub const DRAIN: Duration = Duration::from_secs(1);
/// A line longer than this is cut (the rest up to its newline dropped):
/// the classic syslog record size.
pub const MAX_LINE: usize = 1024;

/// Receives each line of output: its bytes, and whether it was cut.
pub type LineSink<'a> = &'a mut dyn FnMut(&[u8], bool);

/// Spawns `cmd` in a new process group and waits at most `timeout`.
pub fn run_bounded(cmd: Command, timeout: Duration) -> io::Result<Finished> {
    run(cmd, timeout, None, |_| {})
}

/// `run_bounded`, telling `spawned` the child's PID as soon as it runs
/// (the scheduled command's PID goes into the state for `umm status`).
pub fn run_bounded_then(
    cmd: Command,
    timeout: Duration,
    spawned: impl FnOnce(u32),
) -> io::Result<Finished> {
    run(cmd, timeout, None, spawned)
}

/// Like `run_bounded`, with stdout and stderr read from one pipe and each
/// line (without its newline; `true` when it was cut at `MAX_LINE`) given
/// to `line` as it comes.
pub fn run_capturing(
    cmd: Command,
    timeout: Duration,
    line: &mut dyn FnMut(&[u8], bool),
) -> io::Result<Finished> {
    run(cmd, timeout, Some(line), |_| {})
}

fn run(
    mut cmd: Command,
    timeout: Duration,
    mut line: Option<LineSink>,
    spawned: impl FnOnce(u32),
) -> io::Result<Finished> {
    cmd.process_group(0);
    reset_signals(&mut cmd);
    let reader = match line {
        Some(_) => Some(output_pipe(&mut cmd)?),
        None => None,
    };
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    spawned(child.id());
    // Our copies of the pipe's write end: without them, end of file comes
    // when the child and whatever it started have closed theirs.
    drop(cmd);
    let mut deadline = Escalation::new(Pid::from_raw(child.id() as i32), started + timeout);
    let mut lines = Lines::default();
    let mut eof = reader.is_none();
    let mut status: Option<ExitStatus> = None;
    let mut gone_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if status.is_none() {
            status = child.try_wait()?;
            if status.is_some() {
                gone_at = Some(now);
            }
        }
        match (status.is_some(), gone_at) {
            (true, Some(gone)) if eof || now >= gone + DRAIN => break,
            _ => {}
        }
        if status.is_none() && deadline.tick(now) {
            break;
        }
        match (&reader, &mut line) {
            (Some(r), Some(sink)) if !eof => {
                eof = read_available(r, &mut lines, &mut **sink)?;
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    if let Some(sink) = line {
        lines.finish(sink);
    }
    if deadline.timed_out() {
        // Children of the group that ignored SIGTERM.
        let _ = killpg(deadline.pgid, Signal::SIGKILL);
    }
    Ok(finished(status, deadline.timed_out(), started))
}

/// One pipe for the child's stdout and stderr; our end, non-blocking.
fn output_pipe(cmd: &mut Command) -> io::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    cmd.stdout(Stdio::from(w.try_clone()?))
        .stderr(Stdio::from(w));
    fcntl(r.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(r)
}

/// A running group's timeout: SIGTERM at the deadline, SIGKILL a grace
/// later, and, should not even that end it (stuck in the kernel), giving
/// up a grace after that rather than hold umm.
struct Escalation {
    pgid: Pid,
    deadline: Instant,
    term_sent: Option<Instant>,
    kill_sent: Option<Instant>,
}

impl Escalation {
    fn new(pgid: Pid, deadline: Instant) -> Escalation {
        Escalation {
            pgid,
            deadline,
            term_sent: None,
            kill_sent: None,
        }
    }

    /// Signals the group when its time has come; true once waiting for it
    /// must stop (it is then reported as killed).
    fn tick(&mut self, now: Instant) -> bool {
        match (self.term_sent, self.kill_sent) {
            (None, _) if now >= self.deadline => {
                let _ = killpg(self.pgid, Signal::SIGTERM);
                self.term_sent = Some(now);
            }
            (Some(term), None) if now >= term + KILL_GRACE => {
                let _ = killpg(self.pgid, Signal::SIGKILL);
                self.kill_sent = Some(now);
            }
            (_, Some(kill)) => return now >= kill + KILL_GRACE,
            _ => {}
        }
        false
    }

    fn timed_out(&self) -> bool {
        self.term_sent.is_some()
    }
}

/// Waits up to 50 ms for output and reads what there is; true at end of file.
fn read_available(
    r: &OwnedFd,
    lines: &mut Lines,
    sink: &mut dyn FnMut(&[u8], bool),
) -> io::Result<bool> {
    let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(50u16)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(e.into()),
    }
    let mut buf = [0u8; 64 * 1024];
    loop {
        match nix::unistd::read(r.as_raw_fd(), &mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => lines.feed(buf.get(..n).unwrap_or_default(), sink),
            Err(nix::errno::Errno::EAGAIN) => return Ok(false),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Splits a byte stream into lines of at most `MAX_LINE` bytes.
#[derive(Default)]
struct Lines {
    current: Vec<u8>,
    /// The current line was cut: drop the rest of it up to the newline.
    cut: bool,
}

impl Lines {
    fn feed(&mut self, mut bytes: &[u8], sink: &mut dyn FnMut(&[u8], bool)) {
        while !bytes.is_empty() {
            let end = bytes.iter().position(|&b| b == b'\n');
            let (part, rest) = match end {
                Some(i) => {
                    let (part, newline_on) = bytes.split_at(i);
                    (part, Some(newline_on.get(1..).unwrap_or_default()))
                }
                None => (bytes, None),
            };
            if !self.cut {
                let room = MAX_LINE.saturating_sub(self.current.len());
                if part.len() > room {
                    self.current
                        .extend_from_slice(part.get(..room).unwrap_or_default());
                    sink(&self.current, true);
                    self.current.clear();
                    self.cut = true;
                } else {
                    self.current.extend_from_slice(part);
                }
            }
            match rest {
                Some(rest) => {
                    if !self.cut {
                        sink(&self.current, false);
                    }
                    self.current.clear();
                    self.cut = false;
                    bytes = rest;
                }
                None => break,
            }
        }
    }

    /// The last line, when the output did not end with a newline.
    fn finish(&mut self, sink: &mut dyn FnMut(&[u8], bool)) {
        if !self.cut && !self.current.is_empty() {
            sink(&self.current, false);
        }
        self.current.clear();
    }
}

fn finished(status: Option<ExitStatus>, timed_out: bool, started: Instant) -> Finished {
    Finished {
        exit_code: status.and_then(|s| s.code()),
        signal: status.map_or(Some(nix::libc::SIGKILL), |s| s.signal()),
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

    fn capture(script: &str, timeout: Duration) -> (Finished, Vec<(String, bool)>) {
        let mut got = Vec::new();
        let f = run_capturing(sh(script), timeout, &mut |l, cut| {
            got.push((String::from_utf8_lossy(l).into_owned(), cut))
        })
        .unwrap();
        (f, got)
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

    #[test]
    fn captures_lines_cutting_long_ones() {
        let (f, got) = capture(
            "echo one; echo two >&2; head -c 3000 /dev/zero | tr '\\0' x; echo; printf last",
            Duration::from_secs(5),
        );
        assert_eq!(f.exit_code, Some(0));
        let shown: Vec<_> = got.iter().map(|(l, c)| (l.len(), *c)).collect();
        assert_eq!(
            shown,
            [(3, false), (3, false), (MAX_LINE, true), (4, false)]
        );
        assert_eq!(got[0].0, "one");
        assert_eq!(got[3].0, "last");
    }

    #[test]
    fn the_timeout_still_kills_with_a_pipe() {
        let (f, got) = capture("echo started; sleep 30", Duration::from_millis(300));
        assert!(f.timed_out);
        assert!(f.elapsed < Duration::from_secs(5), "{:?}", f.elapsed);
        assert_eq!(got[0].0, "started");
    }

    #[test]
    fn a_grandchild_holding_the_pipe_is_not_waited_for() {
        // setsid: out of the hook's group, so not killed with it.
        let (f, got) = capture(
            "setsid sleep 30 & echo done; exit 0",
            Duration::from_secs(20),
        );
        assert_eq!(f.exit_code, Some(0));
        assert!(
            f.elapsed < DRAIN + Duration::from_secs(2),
            "{:?}",
            f.elapsed
        );
        assert_eq!(got[0].0, "done");
    }
}

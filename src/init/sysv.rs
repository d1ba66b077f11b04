//! sysvinit and upstart. Neither has a generator, so the boot script
//! decides (`umm internal boot`, early in rcS / before rc-sysinit) and a
//! pause point holds the boot before the runlevel's services start:
//!
//! - sysvinit: `/etc/init.d/umm-maintenance` runs last in rcS
//!   (Required-Start: $all), so runlevel 2 and its services, and the gettys
//!   of /etc/inittab, do not start until it returns.
//! - upstart: the `umm-pause` job is a task started on `starting
//!   rc-sysinit`, so rc-sysinit (which emits the runlevel event every other
//!   job waits for) does not start until it returns.
//!
//! In both, `umm internal pause` returns at once unless this boot is a
//! maintenance boot; then it starts the keep-set (sshd, console gettys),
//! starts the maintenance work, and waits until `umm off` marks the boot
//! resumed in /run/umm/boot.json. That wait is the one that has no bound:
//! it is the maintenance itself.

use std::collections::VecDeque;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::unistd::setsid;

use super::{InitSystem, Resumed};
use crate::model::open::Open;
use crate::model::verify::{ActiveState, Service};
use crate::sys::fsread;
use crate::sys::paths::Root;
use crate::sys::run::{self, run_bounded};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Sysvinit,
    Upstart,
}

pub struct Sysv {
    pub flavour: Flavour,
    pub root: Root,
}

/// Job-control and hangup signals: a paused boot runs for hours beside
/// gettys and startpar's pseudo-terminal, and must not be stopped by them.
pub const TERMINAL_SIGNALS: [Signal; 3] = [Signal::SIGTTOU, Signal::SIGTTIN, Signal::SIGHUP];

/// Ignores the terminal signals for this process (and what it starts).
pub fn ignore_terminal_signals() {
    for sig in TERMINAL_SIGNALS {
        // SAFETY: setting a disposition to SIG_IGN installs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
}

/// Bound on one init script or initctl call.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a command bounded; true when it exited 0.
pub fn run_quiet(program: &str, args: &[&str], timeout: Duration) -> Result<i32> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let f = run_bounded(cmd, timeout).with_context(|| format!("cannot run {program}"))?;
    Ok(f.exit_code.unwrap_or(-1))
}

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    run::command(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The runlevel from `runlevel`'s output ("N 2" -> '2'); None while booting ("unknown", "S").
pub fn parse_runlevel(text: &str) -> Option<char> {
    let level = text.split_whitespace().nth(1)?.chars().next()?;
    ('1'..='5').contains(&level).then_some(level)
}

/// The default runlevel from /etc/inittab (`id:2:initdefault:`), else 2.
pub fn default_runlevel(inittab: &str) -> char {
    inittab
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| match l.split(':').collect::<Vec<&str>>().as_slice() {
            [_, level, "initdefault", ..] => level.chars().next(),
            _ => None,
        })
        .unwrap_or('2')
}

/// The getty commands /etc/inittab would respawn in `runlevel`.
pub fn inittab_gettys(inittab: &str, runlevel: char) -> Vec<String> {
    inittab
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(
            |l| match l.splitn(4, ':').collect::<Vec<&str>>().as_slice() {
                [_, levels, "respawn", process]
                    if levels.contains(runlevel) && process.contains("getty") =>
                {
                    Some(process.trim().to_string())
                }
                _ => None,
            },
        )
        .collect()
}

/// Service names started in a runlevel: the `S<NN><name>` links of /etc/rcN.d.
pub fn runlevel_scripts(root: &Root, runlevel: char) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.path(&format!("/etc/rc{runlevel}.d")))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let rest = n.strip_prefix('S')?;
            let name = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            (name.len() < rest.len()).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `initctl list` lines ("cron start/running, process 1234") as (job, running).
pub fn parse_initctl_list(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let job = words.next()?;
            // Instance jobs: "network-interface (eth0) start/running".
            let goal = words.find(|w| !w.starts_with('('))?;
            Some((job.to_string(), goal.starts_with("start/running")))
        })
        .collect()
}

/// Is an rc (runlevel) script running? Scans /proc for `/etc/init.d/rc`.
fn rc_running() -> bool {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .any(|arg| arg == b"/etc/init.d/rc" || arg == b"/etc/init.d/rcS")
            })
        })
}

impl Sysv {
    fn inittab(&self) -> String {
        fsread::read_string(&self.root.path("/etc/inittab"), fsread::CONFIG_MAX).unwrap_or_default()
    }

    /// The keep-set's names as init scripts / upstart jobs: `ssh.service` -> `ssh`.
    pub fn keep_names(keep_units: &[String]) -> Vec<String> {
        keep_units
            .iter()
            .filter_map(|u| u.strip_suffix(".service"))
            .map(String::from)
            .collect()
    }

    /// Starts the keep-set in a paused boot: the services' init scripts or
    /// jobs, and, on sysvinit, the console gettys (returned: the pause
    /// restarts them after a logout, and stops them when the boot resumes
    /// and init starts its own).
    pub fn start_keep_set(&self, keep_units: &[String]) -> Gettys {
        for name in Self::keep_names(keep_units) {
            let result = match self.flavour {
                Flavour::Upstart if self.root.path(&format!("/etc/init/{name}.conf")).exists() => {
                    run_quiet("/sbin/initctl", &["start", &name], SCRIPT_TIMEOUT)
                }
                _ if self.root.path(&format!("/etc/init.d/{name}")).exists() => {
                    run_quiet(&format!("/etc/init.d/{name}"), &["start"], SCRIPT_TIMEOUT)
                }
                _ => continue,
            };
            match result {
                Ok(0) => log::info!("maintenance: started {name}"),
                Ok(code) => log::warn!("maintenance: starting {name} exited {code}"),
                Err(e) => log::warn!("maintenance: cannot start {name}: {e:#}"),
            }
        }
        match self.flavour {
            Flavour::Upstart => {
                for tty in ["tty1", "ttyS0"] {
                    if self.root.path(&format!("/etc/init/{tty}.conf")).exists() {
                        let _ = run_quiet("/sbin/initctl", &["start", tty], SCRIPT_TIMEOUT);
                    }
                }
                // upstart's own tty jobs respawn them.
                Gettys::default()
            }
            Flavour::Sysvinit => {
                let inittab = self.inittab();
                let mut gettys = Gettys(
                    inittab_gettys(&inittab, default_runlevel(&inittab))
                        .into_iter()
                        .map(|line| Getty {
                            line,
                            child: None,
                            starts: VecDeque::new(),
                            restart_at: Some(Instant::now()),
                        })
                        .collect(),
                );
                gettys.supervise();
                gettys
            }
        }
    }
}

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
pub struct Getty {
    line: String,
    child: Option<Child>,
    starts: VecDeque<Instant>,
    restart_at: Option<Instant>,
}

/// The gettys of a paused sysvinit boot: restarted when they exit, stopped
/// (by PID, ours only) when the boot resumes and init starts its own.
#[derive(Default)]
pub struct Gettys(Vec<Getty>);

impl Gettys {
    /// Called about once a second while the boot is paused: reaps the
    /// gettys that exited and starts those whose time has come.
    pub fn supervise(&mut self) {
        let now = Instant::now();
        for g in &mut self.0 {
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
                g.child = spawn_getty(&g.line);
                if g.child.is_none() {
                    g.restart_at = Some(next_start(&g.starts, now));
                }
            }
        }
    }

    /// Stops our gettys, by PID, and reaps them (bounded).
    pub fn stop(&mut self) {
        let mut running: Vec<Child> = self.0.iter_mut().filter_map(|g| g.child.take()).collect();
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

/// Starts one inittab getty line, in a session of its own.
fn spawn_getty(line: &str) -> Option<Child> {
    let mut words = line.split_whitespace();
    let mut cmd = run::command(words.next()?);
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

impl InitSystem for Sysv {
    fn name(&self) -> &'static str {
        match self.flavour {
            Flavour::Sysvinit => "sysvinit",
            Flavour::Upstart => "upstart",
        }
    }

    fn reboot(&self) -> Result<()> {
        match run_quiet(
            "/sbin/shutdown",
            &["-r", "now", "umm: rebooting"],
            SCRIPT_TIMEOUT,
        )? {
            0 => Ok(()),
            code => bail!("/sbin/shutdown -r now exited {code}"),
        }
    }

    fn resume(&self, wait: Option<Duration>) -> Result<Resumed> {
        // The pause (umm internal pause) watches /run/umm/boot.json, which
        // `umm off` has already marked resumed; here we only wait for the
        // runlevel to be reached and its rc script to finish.
        let started = Instant::now();
        let Some(wait) = wait else {
            return Ok(Resumed::not_waited(started));
        };
        let deadline = started + wait;
        let reached = loop {
            let level = output_of("/sbin/runlevel", &[]).and_then(|t| parse_runlevel(&t));
            if level.is_some() && !rc_running() {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let failed_units = self
            .services()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.active.is(ActiveState::Failed))
            .map(|s| s.name)
            .collect();
        Ok(Resumed {
            reached,
            waited: true,
            elapsed: started.elapsed(),
            failed_units,
        })
    }

    fn normal_reached(&self, within: Duration) -> Result<bool> {
        // The runlevel is entered once the pause let rcS end; umm-after
        // runs inside it (rc is still running then), so this does not wait
        // for rc to finish.
        let deadline = Instant::now() + within;
        loop {
            if output_of("/sbin/runlevel", &[])
                .and_then(|t| parse_runlevel(&t))
                .is_some()
            {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn enter_maintenance_late(&self) -> Result<()> {
        // The decision is taken before the pause point; nothing is late.
        Ok(())
    }

    fn services(&self) -> Result<Vec<Service>> {
        let mut services = Vec::new();
        let level = default_runlevel(&self.inittab());
        for name in runlevel_scripts(&self.root, level) {
            let script = format!("/etc/init.d/{name}");
            // LSB status codes: 0 running, 1 and 2 dead with leftovers, 3 not running.
            let active = match run_quiet(&script, &["status"], Duration::from_secs(10)) {
                Ok(0) => ActiveState::Active.into(),
                Ok(1) | Ok(2) => ActiveState::Failed.into(),
                Ok(3) => ActiveState::Inactive.into(),
                _ => Open::Other("unknown".into()),
            };
            services.push(Service {
                name,
                active,
                finished_ok: false,
            });
        }
        if self.flavour == Flavour::Upstart {
            let list = output_of("/sbin/initctl", &["list"]).unwrap_or_default();
            for (job, running) in parse_initctl_list(&list) {
                services.push(Service {
                    name: job,
                    active: if running {
                        ActiveState::Active
                    } else {
                        ActiveState::Inactive
                    }
                    .into(),
                    finished_ok: false,
                });
            }
        }
        Ok(services)
    }

    fn enabled_services(&self) -> Result<Vec<String>> {
        Ok(runlevel_scripts(
            &self.root,
            default_runlevel(&self.inittab()),
        ))
    }

    fn outside_maintenance(&self, units: &[String]) -> Result<Vec<String>> {
        // Everything of the runlevel waits for the pause; rcS is the base.
        let runlevel = self.enabled_services()?;
        Ok(units
            .iter()
            .filter(|u| runlevel.contains(u))
            .cloned()
            .collect())
    }
}

/// Is this the upstart init? (an upstart machine has initctl and rc-sysinit's job)
pub fn is_upstart(root: &Root) -> bool {
    root.path("/sbin/initctl").exists() && root.path("/etc/init/rc-sysinit.conf").exists()
}

pub fn script_exists(root: &Root, name: &str) -> bool {
    Path::new(&root.path(&format!("/etc/init.d/{name}"))).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITTAB: &str = "\
id:2:initdefault:
si::sysinit:/etc/init.d/rcS
l2:2:wait:/etc/init.d/rc 2
1:2345:respawn:/sbin/getty --noclear 38400 tty1
2:23:respawn:/sbin/getty 38400 tty2
#3:23:respawn:/sbin/getty 38400 tty3
T0:23:respawn:/sbin/getty -L ttyS0 115200 vt100
ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now
";

    #[test]
    fn reads_the_gettys_and_default_runlevel_of_inittab() {
        assert_eq!(default_runlevel(INITTAB), '2');
        assert_eq!(
            inittab_gettys(INITTAB, '2'),
            [
                "/sbin/getty --noclear 38400 tty1",
                "/sbin/getty 38400 tty2",
                "/sbin/getty -L ttyS0 115200 vt100"
            ]
        );
        assert_eq!(
            inittab_gettys(INITTAB, '4'),
            ["/sbin/getty --noclear 38400 tty1"]
        );
        assert_eq!(default_runlevel(""), '2');
    }

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

    #[test]
    fn reads_runlevel_output() {
        assert_eq!(parse_runlevel("N 2\n"), Some('2'));
        assert_eq!(parse_runlevel("S 2\n"), Some('2'));
        assert_eq!(parse_runlevel("unknown\n"), None);
        assert_eq!(parse_runlevel("N S\n"), None);
    }

    #[test]
    fn lists_the_scripts_of_a_runlevel() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let rc2 = root.path("/etc/rc2.d");
        fs::create_dir_all(&rc2).unwrap();
        for f in ["S01cron", "S01ssh", "K01gone", "README", "S03rc.local"] {
            fs::write(rc2.join(f), "").unwrap();
        }
        assert_eq!(runlevel_scripts(&root, '2'), ["cron", "rc.local", "ssh"]);
    }

    #[test]
    fn reads_initctl_list() {
        let text = "cron start/running, process 812\nrc stop/waiting\nnetwork-interface (eth0) start/running\n";
        assert_eq!(
            parse_initctl_list(text),
            [
                ("cron".into(), true),
                ("rc".into(), false),
                ("network-interface".into(), true)
            ]
        );
    }

    #[test]
    fn keep_set_maps_to_script_names() {
        let keep = vec![
            "ssh.service".to_string(),
            "getty.target".into(),
            "zabbix-agent.service".into(),
        ];
        assert_eq!(Sysv::keep_names(&keep), ["ssh", "zabbix-agent"]);
    }
}

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
//!
//! A planned reboot by kexec is the ordinary runlevel-6 reboot: the
//! umm-kexec stop script, after `umountroot`, boots the kernel umm loaded
//! (`umm internal kexec-exec`). upstart has no such path.
//!
//! Every program run here (init scripts, `initctl`, `runlevel`,
//! `shutdown`, the gettys of /etc/inittab) is found under the root prefix:
//! under a test root, never the host's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{signal, SigHandler, Signal};

use super::{InitSystem, Resumed};
use crate::model::open::Open;
use crate::model::reboot::KexecPath;
use crate::model::verify::{ActiveState, Service};
use crate::sys::paths::Root;
use crate::sys::run::{self, run_bounded};
use crate::sys::{fsread, kexec};

mod getty;
mod inittab;

pub use getty::{next_start, Gettys, RESPAWN_BACKOFF, RESPAWN_MAX, RESPAWN_WINDOW};
pub use inittab::{
    default_runlevel, inittab_gettys, parse_initctl_list, parse_runlevel, runlevel_scripts,
};

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

/// Runs a command bounded; its exit code (-1: killed).
pub fn run_quiet(program: &Path, args: &[&str], timeout: Duration) -> Result<i32> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let f =
        run_bounded(cmd, timeout).with_context(|| format!("cannot run {}", program.display()))?;
    Ok(f.exit_code.unwrap_or(-1))
}

fn output_of(program: &Path, args: &[&str]) -> Option<String> {
    run::command(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
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
    /// A program of the init system, under the root prefix.
    fn program(&self, path: &str) -> PathBuf {
        self.root.path(path)
    }

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
                    run_quiet(
                        &self.program("/sbin/initctl"),
                        &["start", &name],
                        SCRIPT_TIMEOUT,
                    )
                }
                _ if self.root.path(&format!("/etc/init.d/{name}")).exists() => run_quiet(
                    &self.program(&format!("/etc/init.d/{name}")),
                    &["start"],
                    SCRIPT_TIMEOUT,
                ),
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
                        let initctl = self.program("/sbin/initctl");
                        let _ = run_quiet(&initctl, &["start", tty], SCRIPT_TIMEOUT);
                    }
                }
                // upstart's own tty jobs respawn them.
                Gettys::new(&self.root, Vec::new())
            }
            Flavour::Sysvinit => {
                let inittab = self.inittab();
                let lines = inittab_gettys(&inittab, default_runlevel(&inittab));
                let mut gettys = Gettys::new(&self.root, lines);
                gettys.supervise();
                gettys
            }
        }
    }
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
            &self.program("/sbin/shutdown"),
            &["-r", "now", "umm: rebooting"],
            SCRIPT_TIMEOUT,
        )? {
            0 => Ok(()),
            code => bail!("/sbin/shutdown -r now exited {code}"),
        }
    }

    /// sysvinit: runlevel 6 ends with umm-kexec, which boots the kernel
    /// umm loaded once the root is read-only. upstart: no such script.
    fn kexec_path(&self) -> KexecPath {
        match self.flavour {
            Flavour::Sysvinit => KexecPath::Runlevel6 {
                script_installed: kexec::kexec_script_installed(&self.root),
            },
            Flavour::Upstart => KexecPath::Unsupported,
        }
    }

    /// The ordinary reboot: every stop script runs (umm-boot's records the
    /// clean shutdown), then umm-kexec boots the loaded kernel instead of
    /// the `reboot` script's firmware reboot.
    fn kexec(&self) -> Result<()> {
        self.reboot()
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
            let level =
                output_of(&self.program("/sbin/runlevel"), &[]).and_then(|t| parse_runlevel(&t));
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
            if output_of(&self.program("/sbin/runlevel"), &[])
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
            let script = self.program(&format!("/etc/init.d/{name}"));
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
                on_demand: false,
            });
        }
        if self.flavour == Flavour::Upstart {
            let list = output_of(&self.program("/sbin/initctl"), &["list"]).unwrap_or_default();
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
                    on_demand: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_set_maps_to_script_names() {
        let keep = vec![
            "ssh.service".to_string(),
            "getty.target".into(),
            "zabbix-agent.service".into(),
        ];
        assert_eq!(Sysv::keep_names(&keep), ["ssh", "zabbix-agent"]);
    }

    /// Under a test root, the keep-set's init scripts are the root's,
    /// never the host's (/etc/init.d/ssh of the machine running the tests).
    #[test]
    fn keep_set_scripts_run_from_the_root_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let trace = dir.path().join("trace");
        let script = root.path("/etc/init.d/ssh");
        fs::create_dir_all(script.parent().unwrap()).unwrap();
        fs::write(
            &script,
            format!("#!/bin/sh\necho \"$0 $1\" >> {}\n", trace.display()),
        )
        .unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let sysv = Sysv {
            flavour: Flavour::Sysvinit,
            root,
        };
        let mut gettys = sysv.start_keep_set(&["ssh.service".to_string()]);
        gettys.stop();
        assert_eq!(
            fs::read_to_string(&trace).unwrap(),
            format!("{} start\n", script.display())
        );
    }
}

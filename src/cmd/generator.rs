//! The systemd generator (`umm internal generator`), run by systemd before
//! any unit starts, again on every daemon-reload. It decides this boot's
//! target from the kernel command line, the configuration in /etc and the
//! early copy of the state (/var may not be mounted yet), and when the boot
//! is a maintenance boot, points `default.target` at `umm.target` in the
//! early generator directory and pulls in the keep-set. Nothing outside the
//! keep-set is then ever queued. See docs/boot-flow.md.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::boot::{decision, read_cmdline};
use super::{Context, Outcome};
use crate::model::boot_decision::DecidedBy;
use crate::model::settings::Settings;
use crate::model::state::Mode;
use crate::rules::{self, BootInputs};
use crate::sys::paths::{self, Root};
use crate::sys::{boot_decision, config, fsread, store};

/// Where unit files live, in systemd's order of precedence.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

pub fn run(ctx: &Context, normal_dir: &Path, early_dir: &Path) -> Result<Outcome> {
    let settings = config::load_or_defaults(&ctx.root);
    write_timer_dropin(normal_dir, &settings)?;
    let boot_id = ctx.clock.boot_id()?;
    let mode = match boot_decision::read(&ctx.root, &boot_id) {
        // A daemon-reload later in the boot: keep the decision, unless
        // `umm off` resumed the normal target.
        Some(d) if d.resumed => Mode::Normal,
        Some(d) => d.mode,
        None => decide_now(ctx, &settings, &boot_id)?,
    };
    if mode == Mode::Maintenance {
        redirect_to_maintenance(&ctx.root, early_dir, &settings)?;
    }
    Ok(Outcome::Done)
}

fn decide_now(ctx: &Context, settings: &Settings, boot_id: &str) -> Result<Mode> {
    let early = store::read(&ctx.root.path(paths::EARLY_STATE));
    if let Some(p) = &early.problem {
        log::error!("{p}; deciding from the default state");
    }
    let (cmdline, boot_failure) = read_cmdline(&ctx.root);
    let input = BootInputs {
        boot_id,
        now: ctx.clock.now(),
        cmdline,
        boot_failure,
        policy: settings.policy(),
    };
    let (_, outcome) = rules::boot(&early.state, &input);
    if let Some(reason) = outcome.reason {
        log::warn!(
            "this boot stops in maintenance mode (reason {})",
            reason.as_str()
        );
    }
    boot_decision::write(
        &ctx.root,
        &decision(boot_id.to_string(), &outcome, DecidedBy::Generator),
    )?;
    Ok(outcome.mode)
}

/// The reset timer follows `counter_reset_time` from the configuration.
fn write_timer_dropin(normal_dir: &Path, settings: &Settings) -> Result<()> {
    let dir = normal_dir.join("umm-uptime.timer.d");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = format!(
        "# Written by umm's generator from counter_reset_time.\n[Timer]\nOnBootSec=\nOnBootSec={}s\n",
        settings.counter_reset_time.as_secs()
    );
    fs::write(dir.join("counter-reset-time.conf"), text)?;
    Ok(())
}

fn redirect_to_maintenance(root: &Root, early_dir: &Path, settings: &Settings) -> Result<()> {
    let target = find_unit(root, "umm.target").context("umm.target is not installed")?;
    fs::create_dir_all(early_dir)?;
    let link = early_dir.join("default.target");
    let _ = fs::remove_file(&link);
    symlink(&target, &link).with_context(|| format!("cannot link {}", link.display()))?;
    let wants = early_dir.join("umm.target.wants");
    fs::create_dir_all(&wants)?;
    for unit in settings.all_keep_units() {
        if let Some(path) = find_unit(root, &unit).filter(|_| is_enabled(root, &unit)) {
            let link = wants.join(&unit);
            let _ = fs::remove_file(&link);
            symlink(&path, &link).with_context(|| format!("cannot link {}", link.display()))?;
        }
    }
    Ok(())
}

/// The unit's file as systemd would find it, as a system path (no prefix).
fn find_unit(root: &Root, unit: &str) -> Option<PathBuf> {
    UNIT_DIRS
        .iter()
        .map(|d| Path::new(d).join(unit))
        .find(|p| root.join(p).exists())
}

/// Would the unit run in a normal boot? Static units (no [Install] section)
/// run when something needs them; others only where a `.wants` or
/// `.requires` link enables them.
fn is_enabled(root: &Root, unit: &str) -> bool {
    let Some(path) = find_unit(root, unit) else {
        return false;
    };
    let text = fsread::read_string(&root.join(&path), fsread::CONFIG_MAX).unwrap_or_else(|e| {
        log::warn!("{e}; taking {unit} as a static unit");
        String::new()
    });
    if !text.lines().any(|l| l.trim() == "[Install]") {
        return true;
    }
    UNIT_DIRS.iter().any(|dir| {
        fs::read_dir(root.path(dir))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                (name.ends_with(".wants") || name.ends_with(".requires"))
                    && e.path().join(unit).exists()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(root: &Root, path: &str, text: &str) {
        let p = root.path(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn only_enabled_or_static_units_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let install = "[Unit]\n[Service]\n[Install]\nWantedBy=multi-user.target\n";
        unit(&root, "/lib/systemd/system/ssh.service", install);
        unit(
            &root,
            "/lib/systemd/system/systemd-networkd.service",
            install,
        );
        unit(
            &root,
            "/lib/systemd/system/systemd-user-sessions.service",
            "[Unit]\n[Service]\n",
        );
        unit(
            &root,
            "/etc/systemd/system/multi-user.target.wants/ssh.service",
            install,
        );
        assert!(is_enabled(&root, "ssh.service"));
        assert!(!is_enabled(&root, "systemd-networkd.service"));
        assert!(is_enabled(&root, "systemd-user-sessions.service"));
        assert!(!is_enabled(&root, "NetworkManager.service"));
    }

    /// Issue #16 item 5: Debian 12 with `systemctl disable ssh.service;
    /// systemctl enable ssh.socket` got no ssh in maintenance.
    #[rstest::rstest]
    #[case::debian_socket("ssh", "sockets.target.wants")]
    #[case::rhel_socket("sshd", "sockets.target.wants")]
    fn a_socket_activated_sshd_is_kept(#[case] name: &str, #[case] wants: &str) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let install = "[Unit]\n[Service]\n[Install]\nWantedBy=multi-user.target\n";
        let socket = "[Unit]\nBefore=sockets.target\n[Socket]\nListenStream=22\nAccept=yes\n[Install]\nWantedBy=sockets.target\n";
        unit(&root, "/lib/systemd/system/umm.target", "[Unit]\n");
        unit(
            &root,
            &format!("/lib/systemd/system/{name}.service"),
            install,
        );
        unit(
            &root,
            &format!("/lib/systemd/system/{name}@.service"),
            "[Service]\n",
        );
        unit(&root, &format!("/lib/systemd/system/{name}.socket"), socket);
        unit(
            &root,
            &format!("/etc/systemd/system/{wants}/{name}.socket"),
            socket,
        );
        let early = dir.path().join("early");
        redirect_to_maintenance(&root, &early, &Settings::default()).unwrap();
        let kept = early.join("umm.target.wants");
        assert_eq!(
            fs::read_link(kept.join(format!("{name}.socket"))).unwrap(),
            PathBuf::from(format!("/lib/systemd/system/{name}.socket"))
        );
        // The disabled service is not started beside its socket.
        assert!(!kept.join(format!("{name}.service")).exists());
        // Nothing but the keep-set is linked: no sockets.target, no other socket.
        let names: Vec<_> = fs::read_dir(&kept)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("{name}.socket")]);
    }
}

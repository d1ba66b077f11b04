//! Every file umm touches, under one root prefix. The prefix is `/` on a real
//! system; tests point `UMM_ROOT` at a temporary directory so that nothing
//! touches the host's /etc, /var, /run or /proc.

use std::path::{Path, PathBuf};

pub const CONFIG: &str = "/etc/umm/umm.toml";
pub const CONFIG_DROPINS: &str = "/etc/umm/umm.toml.d";
pub const LEGACY_CONFIG: &str = "/etc/umm.conf";
pub const STATE_DIR: &str = "/var/lib/umm";
pub const STATE: &str = "/var/lib/umm/state.json";
pub const LOCK: &str = "/var/lib/umm/lock";
/// One talk with the fleet coordinator at a time on this node: held from
/// a take until its request is saved or undone, and from reading an owed
/// release until its outcome is saved (`store::fleet_lock`).
pub const FLEET_LOCK: &str = "/var/lib/umm/fleet.lock";
/// Held by `umm internal fleet-retry` while it runs, so that two runs
/// (the timer or cron, and one started by hand) never overlap.
pub const FLEET_RETRY_LOCK: &str = "/var/lib/umm/fleet-retry.lock";
/// Held by `umm internal queue` while it runs (hooks and a take may
/// outlast the timer's minute), so that two runs never overlap.
pub const QUEUE_LOCK: &str = "/var/lib/umm/queue.lock";
/// The part of the state any user may read (0644), for `umm status`:
/// state.json itself is root's only.
pub const PUBLIC_STATUS: &str = "/var/lib/umm/status.json";
/// The settings of the last configuration that loaded, for boots that find
/// the configuration broken; and its copy on the root filesystem for the
/// generator (/var may be a filesystem of its own, not mounted yet).
pub const LAST_GOOD_CONFIG: &str = "/var/lib/umm/last-good-config.json";
pub const EARLY_LAST_GOOD_CONFIG: &str = "/etc/umm/last-good-config.json";
/// Where the scheduled command's output and the hooks' state directory live.
pub const COMMAND_OUTPUT: &str = "/var/lib/umm/command.log";
pub const HOOK_STATE_DIR: &str = "/var/lib/umm/hooks";
/// A copy of the state on the root filesystem, written with every state
/// write, for the systemd generator: it runs before /var may be mounted.
pub const EARLY_STATE: &str = "/etc/umm/early-state.json";
pub const RUN_DIR: &str = "/run/umm";
/// This boot's decision, shared between the generator, the boot unit and
/// `umm off` (volatile: gone at the next boot).
pub const BOOT_DECISION: &str = "/run/umm/boot.json";
pub const MOTD: &str = "/run/motd.d/umm";
pub const ISSUE: &str = "/run/issue.d/umm.issue";
pub const CMDLINE: &str = "/proc/cmdline";
/// This boot's kernel version (`uname -r`).
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
pub const UPTIME: &str = "/proc/uptime";
pub const HOOKS_DIR: &str = "/etc/umm";

#[derive(Clone, Debug)]
pub struct Root {
    prefix: PathBuf,
}

impl Root {
    pub fn new(prefix: impl Into<PathBuf>) -> Root {
        Root {
            prefix: prefix.into(),
        }
    }

    /// `UMM_ROOT` from the environment, else `/`.
    pub fn from_env() -> Root {
        match std::env::var_os("UMM_ROOT") {
            Some(p) if !p.is_empty() => Root::new(p),
            _ => Root::new("/"),
        }
    }

    /// True when umm runs against the real system (no test prefix).
    pub fn is_system(&self) -> bool {
        self.prefix == Path::new("/")
    }

    /// Maps an absolute system path (`/var/lib/umm`) under the prefix.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.prefix.join(absolute.trim_start_matches('/'))
    }

    /// Maps a system path given as a `Path`.
    pub fn join(&self, absolute: &Path) -> PathBuf {
        self.prefix
            .join(absolute.strip_prefix("/").unwrap_or(absolute))
    }
}

//! The settings in force, as the rules, the commands and the boot use them:
//! validated values, whatever file they came from (loading them is
//! `sys::config`); what the rules need of them (`Policy`); and the record
//! of the last configuration that loaded (`LastGood`), for boots that find
//! the configuration broken.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fleet::{Backend, FleetSettings};
use super::hook::HookPhase;
use super::rolling::RollingSettings;
use super::timefmt::{MAX_SPAN, MIN_SPAN};

/// Units a maintenance boot keeps (when they exist and are enabled) besides
/// the system's own initialisation (sysinit.target): networking, sshd,
/// logins on the consoles, and what logins need.
pub const DEFAULT_KEEP_UNITS: &[&str] = &[
    "networking.service",
    "systemd-networkd.service",
    "NetworkManager.service",
    "systemd-resolved.service",
    "ssh.service",
    "sshd.service",
    // sshd started by its socket (Debian: `systemctl enable ssh.socket`).
    // Kept only where enabled; the per-connection ssh@.service it starts is
    // ordered after basic.target but does not pull it in, so nothing
    // outside the keep-set starts with it.
    "ssh.socket",
    "sshd.socket",
    "getty.target",
    "dbus.socket",
    "systemd-logind.service",
    "systemd-user-sessions.service",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    pub reboot_count: u32,
    pub counter_reset_time: Duration,
    /// Extra units kept in a maintenance boot, added to `DEFAULT_KEEP_UNITS`.
    pub keep_units: Vec<String>,
    pub hook_timeouts: HookTimeouts,
    /// Bound on the scheduled command.
    pub command_timeout: Duration,
    /// Keep the GRUB maintenance entries while umm is disabled.
    pub grub_entries_when_disabled: bool,
    /// The configuration is broken and none ever loaded: count, but never
    /// enter maintenance for a crash loop (see `InUse::CountingOnly`).
    pub counting_only: bool,
    /// The node_exporter textfile collector directory umm writes `umm.prom`
    /// into (`[metrics] textfile_dir`; `None`: no metrics). Nothing is
    /// written while the directory does not exist.
    pub metrics_dir: Option<PathBuf>,
    /// `[fleet]`: the coordinator of the node's group, if any.
    pub fleet: FleetSettings,
    /// `[rolling]`: maintenance windows and the health gate.
    pub rolling: RollingSettings,
    /// `[reboot] method`: how planned reboots happen (`rules::reboot`).
    pub reboot_method: RebootMethod,
}

/// `[reboot] method`: how `umm on` and `umm off reboot` reboot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RebootMethod {
    /// kexec when every check allows it, the firmware otherwise.
    #[default]
    Auto,
    /// kexec asked for: a fallback to the firmware is a warning.
    Kexec,
    /// Always through the firmware and the boot loader.
    Firmware,
}

impl RebootMethod {
    pub const NAMES: &'static str = "\"auto\", \"kexec\" or \"firmware\"";

    pub fn parse(text: &str) -> Result<RebootMethod, String> {
        match text {
            "auto" => Ok(RebootMethod::Auto),
            "kexec" => Ok(RebootMethod::Kexec),
            "firmware" => Ok(RebootMethod::Firmware),
            other => Err(format!(
                "unknown reboot method \"{other}\"; expected {}",
                RebootMethod::NAMES
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RebootMethod::Auto => "auto",
            RebootMethod::Kexec => "kexec",
            RebootMethod::Firmware => "firmware",
        }
    }
}

/// Where Debian's prometheus-node-exporter reads `*.prom` files.
pub const DEFAULT_METRICS_DIR: &str = "/var/lib/prometheus/node-exporter";

/// A bound on each phase's hooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookTimeouts {
    pub check: Duration,
    pub pre_on: Duration,
    pub on: Duration,
    pub pre_off: Duration,
    pub off: Duration,
}

const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

impl HookTimeouts {
    /// The same bound for every phase (`[hooks] timeout`).
    pub fn all(d: Duration) -> HookTimeouts {
        HookTimeouts {
            check: d,
            pre_on: d,
            on: d,
            pre_off: d,
            off: d,
        }
    }

    /// The bound on `phase`'s hooks.
    pub fn of(&self, phase: HookPhase) -> Duration {
        match phase {
            HookPhase::Check => self.check,
            HookPhase::PreOn => self.pre_on,
            HookPhase::On => self.on,
            HookPhase::PreOff => self.pre_off,
            HookPhase::Off => self.off,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            reboot_count: 2,
            counter_reset_time: Duration::from_secs(600),
            keep_units: Vec::new(),
            hook_timeouts: HookTimeouts::all(DEFAULT_HOOK_TIMEOUT),
            command_timeout: Duration::from_secs(6 * 3600),
            grub_entries_when_disabled: false,
            counting_only: false,
            metrics_dir: Some(PathBuf::from(DEFAULT_METRICS_DIR)),
            fleet: FleetSettings::default(),
            reboot_method: RebootMethod::Auto,
            rolling: RollingSettings::default(),
        }
    }
}

impl Settings {
    pub fn policy(&self) -> Policy {
        Policy {
            enabled: self.enabled,
            // No count is ever greater: no crash loop is ever enforced.
            reboot_count: if self.counting_only {
                u32::MAX
            } else {
                self.reboot_count
            },
        }
    }

    /// The full keep-set: defaults plus the configured extras.
    pub fn all_keep_units(&self) -> Vec<String> {
        let mut units: Vec<String> = DEFAULT_KEEP_UNITS.iter().map(|s| s.to_string()).collect();
        for u in &self.keep_units {
            if !units.contains(u) {
                units.push(u.clone());
            }
        }
        units
    }
}

/// What the site configuration says, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `enabled` in umm.toml (the site's policy; the operator's switch is in the state).
    pub enabled: bool,
    pub reboot_count: u32,
}

/// The settings as recorded after a configuration loaded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LastGood {
    /// When it was recorded, seconds since the epoch.
    pub recorded: i64,
    pub files: Vec<PathBuf>,
    pub enabled: bool,
    pub reboot_count: u32,
    pub counter_reset_time: u64,
    pub keep_units: Vec<String>,
    pub command_timeout: u64,
    pub hook_timeouts: [u64; 5],
    pub grub_entries_when_disabled: bool,
    /// `[fleet]`, so that a boot with a broken umm.toml still gives a
    /// pending slot back to the right coordinator. Absent in records of
    /// earlier versions (and read as no fleet), and with `backend = "none"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<LastGoodFleet>,
    /// `[reboot] method`, so that `umm off reboot` with a broken umm.toml
    /// keeps a site's `firmware` (devices kexec does not reset). Absent in
    /// records of earlier versions (read as the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_method: Option<String>,
}

/// `[fleet]` as recorded in the last good configuration. Nothing secret:
/// the key file is a path (the key stays root's, 0600), and a URL with
/// user information, which could carry a password, is never recorded
/// (`LastGoodFleet::new`), since the record may be read by any user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LastGoodFleet {
    pub backend: String,
    pub group: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub url: Option<String>,
    pub slots: u64,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Seconds, as every span of umm.toml.
    pub timeout: u64,
}

impl LastGoodFleet {
    /// `None` for `backend = "none"` (nothing to record), and for URLs
    /// with user information (not copied into a file others may read).
    pub fn new(f: &FleetSettings) -> Option<LastGoodFleet> {
        let userinfo = |u: &String| {
            u.split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or_default().contains('@'))
                .unwrap_or(false)
        };
        if f.backend == Backend::None || f.endpoints.iter().chain(&f.url).any(userinfo) {
            return None;
        }
        Some(LastGoodFleet {
            backend: f.backend.name().into(),
            group: f.group.clone(),
            id: f.id.clone(),
            endpoints: f.endpoints.clone(),
            url: f.url.clone(),
            slots: f.slots,
            ca_file: f.ca_file.clone(),
            cert_file: f.cert_file.clone(),
            key_file: f.key_file.clone(),
            timeout: f.timeout.as_secs(),
        })
    }

    /// The settings it records, checked again as when umm.toml is read
    /// (the record may have been edited): anything wrong means no fleet,
    /// logged, as before this was recorded.
    pub fn settings(&self) -> FleetSettings {
        let backend = match Backend::parse(&self.backend) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("last good configuration: fleet.backend: {e}; no fleet back-end used");
                return FleetSettings::default();
            }
        };
        let f = FleetSettings {
            backend,
            group: self.group.clone(),
            id: self.id.clone(),
            endpoints: self.endpoints.clone(),
            url: self.url.clone(),
            slots: self.slots,
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            // The span rule of umm.toml (1 s to 30 d): no clock overflows.
            timeout: Duration::from_secs(self.timeout).clamp(MIN_SPAN, MAX_SPAN),
        };
        match f.validate() {
            Ok(()) => f,
            Err(e) => {
                log::warn!("last good configuration: {e}; no fleet back-end used");
                FleetSettings::default()
            }
        }
    }
}

impl LastGood {
    /// `files`: the configuration files the settings were read from.
    pub fn new(settings: &Settings, files: &[PathBuf], recorded: i64) -> LastGood {
        let t = &settings.hook_timeouts;
        LastGood {
            recorded,
            files: files.to_vec(),
            enabled: settings.enabled,
            reboot_count: settings.reboot_count,
            counter_reset_time: settings.counter_reset_time.as_secs(),
            keep_units: settings.keep_units.clone(),
            command_timeout: settings.command_timeout.as_secs(),
            hook_timeouts: [t.check, t.pre_on, t.on, t.pre_off, t.off].map(|d| d.as_secs()),
            grub_entries_when_disabled: settings.grub_entries_when_disabled,
            fleet: LastGoodFleet::new(&settings.fleet),
            reboot_method: Some(settings.reboot_method.name().to_string()),
        }
    }

    /// The settings it records; what was recorded is checked again (the
    /// file may have been edited), values out of range fall back.
    pub fn settings(&self) -> Settings {
        let d = Settings::default();
        let span = |secs: u64, default: Duration| {
            if secs >= 1 {
                Duration::from_secs(secs)
            } else {
                default
            }
        };
        let [check, pre_on, on, pre_off, off] =
            self.hook_timeouts.map(|s| span(s, d.hook_timeouts.check));
        Settings {
            enabled: self.enabled,
            reboot_count: self.reboot_count,
            counter_reset_time: span(self.counter_reset_time, d.counter_reset_time),
            keep_units: self
                .keep_units
                .iter()
                .filter(|u| is_unit_name(u))
                .cloned()
                .collect(),
            hook_timeouts: HookTimeouts {
                check,
                pre_on,
                on,
                pre_off,
                off,
            },
            command_timeout: span(self.command_timeout, d.command_timeout),
            grub_entries_when_disabled: self.grub_entries_when_disabled,
            counting_only: false,
            // Not recorded: the default directory (only a file there).
            metrics_dir: d.metrics_dir,
            // Recorded: a pending release goes on being retried with the
            // coordinator it was taken from, however umm.toml was broken.
            fleet: self
                .fleet
                .as_ref()
                .map(LastGoodFleet::settings)
                .unwrap_or_default(),
            // An unknown name (edited by hand) is the safe one: the firmware.
            reboot_method: self.reboot_method.as_deref().map_or(d.reboot_method, |m| {
                RebootMethod::parse(m).unwrap_or(RebootMethod::Firmware)
            }),
            // Not recorded: windows and the gate hold back an operator's
            // `umm on`, never a boot or a crash loop.
            rolling: RollingSettings::default(),
        }
    }
}

/// A systemd unit name (`zabbix-agent.service`): what `keep_units` may hold.
pub fn is_unit_name(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        ".service", ".socket", ".target", ".mount", ".path", ".timer", ".device", ".swap",
        ".slice", ".scope",
    ];
    SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
        && !name.contains('/')
        && !name.chars().any(char::is_whitespace)
}

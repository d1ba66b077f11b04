//! The persistent state: what umm remembers across boots. Pure data; the
//! durable store is in `store.rs` and the rules that change it in `decide.rs`.

use serde::{Deserialize, Serialize};

use crate::hooks::HookRecord;
use crate::verify::VerifyResult;

/// Version of the on-disk format; a file with another version is treated as
/// unreadable (set aside), never guessed at.
pub const STATE_VERSION: u32 = 1;

/// How many unclean boots of a streak are remembered for `status`.
pub const MAX_UNCLEAN_RECORDS: usize = 32;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// The operator's switch (`umm enable` / `umm disable`). The site policy
    /// (`enabled` in umm.toml) is separate; umm acts only when both are on.
    pub switch_on: bool,
    /// Consecutive unclean boots (the counter of the counting rules).
    pub unclean_boots: u32,
    /// The boots counted in the current streak, oldest first.
    pub unclean_records: Vec<BootRecord>,
    /// The boot that is running now, or the last one that ran.
    pub last_boot: Option<LastBoot>,
    /// A maintenance request (pending) or the maintenance in force (active).
    pub maintenance: Option<Maintenance>,
    /// Finished maintenance episodes, newest last, bounded.
    #[serde(default)]
    pub history: Vec<Episode>,
    /// Work left for when the normal target is reached after `umm off`
    /// (the off.d hooks and the check that every service came back).
    #[serde(default)]
    pub after_resume: Option<AfterResume>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            switch_on: true,
            unclean_boots: 0,
            unclean_records: Vec::new(),
            last_boot: None,
            maintenance: None,
            history: Vec::new(),
            after_resume: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BootRecord {
    pub boot_id: String,
    /// Wall-clock start of that boot, seconds since the epoch.
    pub started: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LastBoot {
    pub boot_id: String,
    pub started: i64,
    pub mode: Mode,
    /// A clean shutdown or reboot was recorded for this boot.
    pub clean_shutdown: bool,
    /// This boot reached `counter_reset_time` of uptime.
    pub reset_reached: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Normal,
    Maintenance,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Requested; takes effect at the next boot.
    Pending,
    /// In force: this boot is (or the next boot will be) a maintenance boot,
    /// until `umm off`.
    Active,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// `umm on`.
    Manual,
    /// More than `reboot_count` unclean boots in a row.
    CrashLoop,
    /// `umm` or `umm=on` on the kernel command line.
    Cmdline,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Manual => "manual",
            Reason::CrashLoop => "crash-loop",
            Reason::Cmdline => "cmdline",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    pub phase: Phase,
    pub reason: Reason,
    /// When it was asked for (`umm on`, or the boot that decided it).
    pub requested: i64,
    /// When maintenance was reached (the boot that entered it).
    pub since: Option<i64>,
    pub requested_by: Option<Requester>,
    pub command: Option<ScheduledCommand>,
    /// For a crash loop: the unclean boots that caused it.
    pub crash_boots: Vec<BootRecord>,
    /// Services active when `umm on` was run, to check after `umm off`.
    #[serde(default)]
    pub services_before: Option<Vec<String>>,
    /// Hooks run for this maintenance so far.
    #[serde(default)]
    pub hooks: Vec<HookRecord>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    /// The user behind sudo (SUDO_USER), else the user who ran umm.
    pub user: String,
    /// The ssh client address (from SSH_CONNECTION), when there was one.
    pub from: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScheduledCommand {
    /// The command as an argv list; no shell unless the user wrote one.
    pub argv: Vec<String>,
    pub run: Option<CommandRun>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommandRun {
    pub started: i64,
    pub ended: Option<i64>,
    /// Exit code; None while running, or when killed by a signal.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Where its output (stdout and stderr) was written.
    pub output: String,
}

/// One finished maintenance, for `umm history`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Episode {
    pub reason: Reason,
    pub requested: i64,
    pub since: Option<i64>,
    pub ended: i64,
    pub requested_by: Option<Requester>,
    pub command: Option<ScheduledCommand>,
    /// "resumed", "rebooted" or "cancelled".
    pub end: String,
    #[serde(default)]
    pub hooks: Vec<HookRecord>,
    /// Did every service come back (None until checked).
    #[serde(default)]
    pub verify: Option<VerifyResult>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AfterResume {
    pub reason: Reason,
    pub services_before: Option<Vec<String>>,
}

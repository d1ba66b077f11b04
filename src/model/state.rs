//! The persistent state: what umm remembers across boots. Pure data; the
//! durable store is `sys::store` and the rules that change it are in `rules`.

use serde::{Deserialize, Serialize};

use super::extra::Extra;
use super::hook::{HookPhase, HookRecord};
use super::open::{Named, Open};
use super::rolling::{Queued, Then};
use super::verify::VerifyResult;

/// Version of the on-disk format. A file from a newer umm (a higher
/// version) is read with what this umm knows and written back with its
/// version and every field this umm does not know kept (`extra`): a package
/// downgrade must not drop a maintenance in force.
pub const STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
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
    /// Written by umm before 0.2 for the work left after `umm off`; now
    /// that work belongs to the episode (phase `resuming`). Read so that an
    /// upgrade keeps it (`rules::upgrade`), never written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_resume: Option<AfterResume>,
    /// The id of the last maintenance episode begun. Ids are never reused,
    /// so work started for one episode (the scheduled command) is never
    /// mistaken for another's.
    #[serde(default)]
    pub episodes: u64,
    /// What happened since umm was installed, counted across reboots (the
    /// metrics' counters: they must not go back to 0 at a reboot).
    #[serde(default)]
    pub counters: Counters,
    /// Fleet coordination: the slot this node holds, a release it owes.
    #[serde(default, skip_serializing_if = "FleetState::is_empty")]
    pub fleet: FleetState,
    /// A request waiting for its turn in a rolling maintenance
    /// (`umm on --queue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Queued>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
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
            episodes: 0,
            counters: Counters::default(),
            fleet: FleetState::default(),
            queued: None,
            extra: Extra::new(),
        }
    }
}

/// Counts kept in the state, for `umm_maintenance_entered_total` and
/// `umm_hook_failures_total`. They only go up (saturating).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Maintenance episodes entered (a boot that stopped in maintenance
    /// for a new episode), by reason.
    #[serde(default)]
    pub entered: ByReason,
    /// Hook runs that failed (or were refused), by phase; the runs of
    /// `umm check` and `umm on --dry-run` change nothing and are not counted.
    #[serde(default)]
    pub hook_failures: ByPhase,
    /// Queued requests that ended unserved after their span.
    #[serde(default)]
    pub queue_expired: u64,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A count per maintenance reason.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct ByReason {
    #[serde(default)]
    pub manual: u64,
    #[serde(default)]
    pub crash_loop: u64,
    #[serde(default)]
    pub cmdline: u64,
    #[serde(default)]
    pub boot_failure: u64,
    /// Reasons of a newer umm, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl ByReason {
    pub const REASONS: [Reason; 4] = [
        Reason::Manual,
        Reason::CrashLoop,
        Reason::Cmdline,
        Reason::BootFailure,
    ];

    pub fn get(&self, reason: Reason) -> u64 {
        match reason {
            Reason::Manual => self.manual,
            Reason::CrashLoop => self.crash_loop,
            Reason::Cmdline => self.cmdline,
            Reason::BootFailure => self.boot_failure,
        }
    }

    pub fn add(&mut self, reason: Reason) {
        let n = match reason {
            Reason::Manual => &mut self.manual,
            Reason::CrashLoop => &mut self.crash_loop,
            Reason::Cmdline => &mut self.cmdline,
            Reason::BootFailure => &mut self.boot_failure,
        };
        *n = n.saturating_add(1);
    }
}

/// A count per hook phase.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct ByPhase {
    #[serde(default)]
    pub check: u64,
    #[serde(default)]
    pub pre_on: u64,
    #[serde(default)]
    pub on: u64,
    #[serde(default)]
    pub pre_off: u64,
    #[serde(default)]
    pub off: u64,
    /// Phases of a newer umm, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl ByPhase {
    fn slot(&mut self, phase: HookPhase) -> &mut u64 {
        match phase {
            HookPhase::Check => &mut self.check,
            HookPhase::PreOn => &mut self.pre_on,
            HookPhase::On => &mut self.on,
            HookPhase::PreOff => &mut self.pre_off,
            HookPhase::Off => &mut self.off,
        }
    }

    pub fn get(&self, phase: HookPhase) -> u64 {
        match phase {
            HookPhase::Check => self.check,
            HookPhase::PreOn => self.pre_on,
            HookPhase::On => self.on,
            HookPhase::PreOff => self.pre_off,
            HookPhase::Off => self.off,
        }
    }

    /// Counts the failed runs among `records` (a phase of a newer umm is
    /// not counted).
    pub fn add_failed(&mut self, records: &[HookRecord]) {
        for r in records.iter().filter(|r| !r.ok) {
            if let Some(phase) = r.phase.known() {
                let n = self.slot(phase);
                *n = n.saturating_add(1);
            }
        }
    }
}

/// The node's state, as `umm status`, the metrics and the journal name it.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    Operational,
    /// A request waits for the next boot.
    Pending,
    Maintenance,
    /// `umm off` began; leaving is not finished.
    Resuming,
}

impl NodeState {
    pub const ALL: [NodeState; 4] = [
        NodeState::Operational,
        NodeState::Pending,
        NodeState::Maintenance,
        NodeState::Resuming,
    ];

    pub fn of(m: Option<&Maintenance>) -> NodeState {
        match m.map(|m| m.phase) {
            None => NodeState::Operational,
            Some(Phase::Pending) => NodeState::Pending,
            Some(Phase::Active) => NodeState::Maintenance,
            Some(Phase::Resuming) => NodeState::Resuming,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Operational => "operational",
            NodeState::Pending => "pending",
            NodeState::Maintenance => "maintenance",
            NodeState::Resuming => "resuming",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BootRecord {
    pub boot_id: String,
    /// Wall-clock start of that boot, seconds since the epoch.
    pub started: i64,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LastBoot {
    pub boot_id: String,
    pub started: i64,
    pub mode: Mode,
    /// A clean shutdown or reboot was recorded for this boot.
    pub clean_shutdown: bool,
    /// This boot reached `counter_reset_time` of uptime.
    pub reset_reached: bool,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
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
    /// `umm off` ran: the episode stays open until the normal target is
    /// reached and the off.d hooks and the check have run (see
    /// `Maintenance::leaving`). A boot that finds it boots normally.
    Resuming,
}

/// How `umm off` ends a maintenance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OffAction {
    /// Continue this boot into the normal target.
    Resume,
    /// Reboot into normal operation.
    Reboot,
}

impl OffAction {
    /// How the episode ends in the history.
    pub fn end(self) -> EpisodeEnd {
        match self {
            OffAction::Resume => EpisodeEnd::Resumed,
            OffAction::Reboot => EpisodeEnd::Rebooted,
        }
    }
}

/// How a maintenance episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpisodeEnd {
    /// `umm off` resumed the normal target in the maintenance boot.
    Resumed,
    /// `umm off reboot`, or a boot while leaving: the normal boot finished it.
    Rebooted,
    /// Only a request was pending; `umm off` cancelled it.
    Cancelled,
    /// `umm off` had begun, then a boot had to stop in maintenance again
    /// before the normal target was reached: the off.d hooks and the check
    /// never ran.
    Interrupted,
}

impl Named for EpisodeEnd {
    const ALL: &'static [EpisodeEnd] = &[
        EpisodeEnd::Resumed,
        EpisodeEnd::Rebooted,
        EpisodeEnd::Cancelled,
        EpisodeEnd::Interrupted,
    ];

    fn name(self) -> &'static str {
        match self {
            EpisodeEnd::Resumed => "resumed",
            EpisodeEnd::Rebooted => "rebooted",
            EpisodeEnd::Cancelled => "cancelled",
            EpisodeEnd::Interrupted => "interrupted",
        }
    }
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
    /// GRUB gave up on a kernel that never reached userspace in
    /// `reboot_count + 1` attempts and booted the maintenance entry of the
    /// last good one (`umm.why=boot-failure` on its command line).
    BootFailure,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Manual => "manual",
            Reason::CrashLoop => "crash-loop",
            Reason::Cmdline => "cmdline",
            Reason::BootFailure => "boot-failure",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Maintenance {
    /// This episode's id (0: begun by an umm that had no ids).
    #[serde(default)]
    pub id: u64,
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
    /// Set by `umm off` (phase `resuming`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaving: Option<Leaving>,
    /// What fleet coordination did for this maintenance (none configured:
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetNote>,
    /// What the maintenance boot does once COMMAND exited 0 and the on.d
    /// hooks passed (`umm on --then`): stay (the default), or leave by
    /// itself.
    #[serde(default, skip_serializing_if = "Then::is_stay")]
    pub then: Then,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// An episode `umm off` is ending: open until the normal target is reached
/// and the off.d hooks and the check have run, once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Leaving {
    pub action: OffAction,
    /// The first `umm off` of this episode.
    pub started: i64,
    /// The latest `umm off` (a retry re-issues the resume).
    pub last_try: i64,
    pub tries: u32,
    /// The boot the latest `umm off` ran in.
    pub boot_id: String,
    /// Who runs the off.d hooks and the check (one finisher only).
    pub finisher: Option<Claim>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A process that took on some work, as the state remembers it: a claim
/// whose process is gone (another boot, or no such process now) may be
/// taken over.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub boot_id: String,
    pub pid: u32,
    /// The process's start time (clock ticks after boot, /proc/PID/stat),
    /// so that a reused PID is not taken for the claimer.
    pub pid_start: Option<u64>,
    pub since: i64,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    /// The user behind sudo (SUDO_USER), else the user who ran umm.
    pub user: String,
    /// The ssh client address (from SSH_CONNECTION), when there was one.
    pub from: Option<String>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ScheduledCommand {
    /// The command as an argv list; no shell unless the user wrote one.
    pub argv: Vec<String>,
    pub run: Option<CommandRun>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CommandRun {
    pub started: i64,
    /// Its process (and process group) while it runs.
    #[serde(default)]
    pub pid: Option<u32>,
    pub ended: Option<i64>,
    /// Exit code; None while running, or when killed by a signal.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Where its output (stdout and stderr) was written.
    pub output: String,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// One finished maintenance, for `umm history`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    #[serde(default)]
    pub id: u64,
    pub reason: Reason,
    pub requested: i64,
    pub since: Option<i64>,
    pub ended: i64,
    pub requested_by: Option<Requester>,
    pub command: Option<ScheduledCommand>,
    /// How it ended (an end of a newer umm is kept as it was written).
    pub end: Open<EpisodeEnd>,
    #[serde(default)]
    pub hooks: Vec<HookRecord>,
    /// Did every service come back (None until checked).
    #[serde(default)]
    pub verify: Option<VerifyResult>,
    /// What fleet coordination did for this maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetNote>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Fleet coordination, as this node remembers it across boots.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetState {
    /// The slot this node holds: taken by `umm on` (or in a crash-loop
    /// maintenance boot), kept through maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<FleetSlot>,
    /// A slot to give back: the node is back in service, the release has
    /// not landed yet (retried at boot and by every `umm` run as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_release: Option<PendingRelease>,
    /// The last try to take a slot in a crash-loop maintenance boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<FleetAttempt>,
    /// A take recorded before it was sent and not settled yet: the
    /// coordinator may have granted it ("may hold"). Settled by the run
    /// that sent it, or, if that run died, by the next reconcile (every
    /// `umm` run as root that changes something, the retry timer, the boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taking: Option<FleetSlot>,
    /// `held` is kept on purpose although the node is back in service (the
    /// check after maintenance was not clean): a reconcile leaves it;
    /// `umm fleet release` gives it up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept: bool,
    /// This node halts its group's roll: its `umm on --then` work failed
    /// (it stays in maintenance), or the check after leaving was not clean
    /// and it keeps its slot. Set in the save that finds it; cleared by a
    /// clean `umm off` or `umm fleet release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<RollHalt>,
    /// The group's halt key to write or delete on the coordinator (etcd):
    /// recorded before the call is sent, settled by its answer. A run
    /// killed or failed meanwhile leaves it for the next reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt_sending: Option<HaltSend>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Why this node halts its group's roll, and since when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RollHalt {
    pub why: String,
    /// Seconds since the epoch.
    pub since: i64,
    /// The episode whose work or check halted it.
    pub episode: u64,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// What a halt call does to the group's halt key.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HaltOp {
    /// Writes it: this node halts the roll.
    Record,
    /// Deletes it, only if this node wrote it.
    Clear,
}

/// A halt call to the coordinator, recorded before it is sent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HaltSend {
    pub op: HaltOp,
    /// The back-end, group and node id it goes to (as configured when it
    /// was recorded).
    pub backend: String,
    pub group: String,
    pub node: String,
    /// What the key says (`Record`): why, and since when.
    #[serde(default)]
    pub why: String,
    #[serde(default)]
    pub since: i64,
    #[serde(default)]
    pub tries: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl FleetState {
    pub fn is_empty(&self) -> bool {
        *self == FleetState::default()
    }
}

/// A slot of a group, as taken.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetSlot {
    /// `etcd` or `fleetlock`.
    pub backend: String,
    pub group: String,
    /// The id it was taken as.
    pub id: String,
    /// When, seconds since the epoch.
    pub since: i64,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A release owed to the coordinator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PendingRelease {
    pub slot: FleetSlot,
    /// When the node was back in service (the release became due).
    pub due: i64,
    #[serde(default)]
    pub tries: u32,
    #[serde(default)]
    pub last_try: Option<i64>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A try to take a slot in a crash-loop maintenance boot.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetAttempt {
    pub at: i64,
    /// `granted`, `refused` or `failed`.
    pub result: String,
    /// The holders, the server's answer or the error, in one line.
    pub detail: String,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// What fleet coordination did for one maintenance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetNote {
    /// A slot was held for it.
    pub slot: bool,
    /// `umm on --force` went on without a slot.
    pub forced: bool,
    /// One line: the group and what happened.
    pub detail: String,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// The format before episodes stayed open while leaving (see `State`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AfterResume {
    pub reason: Reason,
    pub services_before: Option<Vec<String>>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl State {
    /// What any user may see (`/var/lib/umm/status.json`): the state, its
    /// reason and times, the counter and the boots behind it. Not who asked
    /// or from where, the scheduled command or its output, the hooks'
    /// results and output, the services, nor fields of a newer umm.
    pub fn public(&self) -> State {
        let mut s = self.clone();
        s.extra.clear();
        if let Some(m) = &mut s.maintenance {
            m.requested_by = None;
            m.command = None;
            m.hooks.clear();
            m.services_before = None;
            m.extra.clear();
        }
        for e in &mut s.history {
            e.requested_by = None;
            e.command = None;
            e.hooks.clear();
            e.verify = None;
            e.extra.clear();
        }
        if let Some(a) = &mut s.after_resume {
            a.services_before = None;
            a.extra.clear();
        }
        if let Some(q) = &mut s.queued {
            q.argv = None;
            q.by = None;
            q.from = None;
            q.extra.clear();
        }
        s
    }
}

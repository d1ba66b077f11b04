//! The persistent state: what umm remembers across boots. Pure data; the
//! durable store is in `store.rs` and the rules that change it in `decide.rs`.

use serde::{Deserialize, Serialize};

use crate::hooks::HookRecord;
use crate::verify::VerifyResult;

/// Version of the on-disk format. A file from a newer umm (a higher
/// version) is read with what this umm knows and written back with its
/// version and every field this umm does not know kept (`extra`): a package
/// downgrade must not drop a maintenance in force.
pub const STATE_VERSION: u32 = 1;

/// Fields written by a newer umm, kept as they were and written back.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// How many unclean boots of a streak are remembered for `status`.
pub const MAX_UNCLEAN_RECORDS: usize = 32;

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
    /// upgrade keeps it (`decide::upgrade`), never written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_resume: Option<AfterResume>,
    /// The id of the last maintenance episode begun. Ids are never reused,
    /// so work started for one episode (the scheduled command) is never
    /// mistaken for another's.
    #[serde(default)]
    pub episodes: u64,
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
            extra: Extra::new(),
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
    pub fn end(self) -> &'static str {
        match self {
            OffAction::Resume => "resumed",
            OffAction::Reboot => "rebooted",
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
    /// "resumed", "rebooted", "cancelled", or "interrupted" (`umm off` had
    /// begun, then a boot had to stop in maintenance again before the
    /// normal target was reached: the off.d hooks and the check never ran).
    pub end: String,
    #[serde(default)]
    pub hooks: Vec<HookRecord>,
    /// Did every service come back (None until checked).
    #[serde(default)]
    pub verify: Option<VerifyResult>,
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

/// Bounds applied to a state as it is loaded: umm never writes more than
/// this, so more means a file written by hand or by something else. Lists
/// are cut (keeping the newest) and strings shortened, each with a note;
/// nothing is rejected for being long.
pub mod limits {
    /// Finished episodes kept (as `decide::MAX_HISTORY`).
    pub const HISTORY: usize = crate::decide::MAX_HISTORY;
    /// Unclean boots remembered (as `MAX_UNCLEAN_RECORDS`).
    pub const BOOT_RECORDS: usize = super::MAX_UNCLEAN_RECORDS;
    /// Hook results kept per maintenance or episode.
    pub const HOOKS: usize = 100;
    /// Lines of a hook's output kept, and the length of each.
    pub const TAIL_LINES: usize = 10;
    pub const TAIL_LINE: usize = 1024;
    /// The scheduled command: arguments, and bytes in each.
    pub const ARGS: usize = 256;
    pub const ARG: usize = 4096;
    /// Service names kept for the check after `umm off`.
    pub const SERVICES: usize = 4096;
    /// Any other string (ids, names, results, addresses).
    pub const STRING: usize = 1024;
}

/// Shortens `s` to at most `max` bytes (at a character boundary); true if cut.
fn cut(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str("...");
    true
}

/// Keeps the last `max` items; true if any were dropped.
fn keep_last<T>(v: &mut Vec<T>, max: usize) -> bool {
    let excess = v.len().saturating_sub(max);
    v.drain(..excess);
    excess > 0
}

/// Counts what had to be cut while bounding one state.
#[derive(Default)]
struct Cuts {
    lists: Vec<String>,
    strings: usize,
}

impl Cuts {
    fn list<T>(&mut self, what: &str, v: &mut Vec<T>, max: usize) {
        let len = v.len();
        if keep_last(v, max) {
            self.lists
                .push(format!("{what}: kept the last {max} of {len}"));
        }
    }

    fn string(&mut self, s: &mut String, max: usize) {
        if cut(s, max) {
            self.strings += 1;
        }
    }

    fn strings(&mut self, v: &mut [String], max: usize) {
        for s in v {
            self.string(s, max);
        }
    }

    fn boots(&mut self, what: &str, v: &mut Vec<BootRecord>) {
        self.list(what, v, limits::BOOT_RECORDS);
        for b in v {
            self.string(&mut b.boot_id, limits::STRING);
        }
    }

    fn hooks(&mut self, what: &str, v: &mut Vec<HookRecord>) {
        self.list(what, v, limits::HOOKS);
        for h in v {
            self.string(&mut h.phase, limits::STRING);
            self.string(&mut h.name, limits::STRING);
            self.string(&mut h.result, limits::STRING);
            self.list("a hook's output", &mut h.output_tail, limits::TAIL_LINES);
            self.strings(&mut h.output_tail, limits::TAIL_LINE);
        }
    }

    fn requester(&mut self, r: &mut Option<Requester>) {
        if let Some(r) = r {
            self.string(&mut r.user, limits::STRING);
            if let Some(from) = &mut r.from {
                self.string(from, limits::STRING);
            }
        }
    }

    /// A scheduled command too long to keep whole is dropped, never cut:
    /// a shortened argv would run something the operator did not ask for.
    fn command(&mut self, c: &mut Option<ScheduledCommand>) {
        let too_long = c.as_ref().is_some_and(|c| {
            c.argv.len() > limits::ARGS || c.argv.iter().any(|a| a.len() > limits::ARG)
        });
        if too_long {
            self.lists.push(format!(
                "the scheduled command is longer than {} arguments of {} bytes: dropped, it will not run",
                limits::ARGS,
                limits::ARG
            ));
            *c = None;
        }
        if let Some(run) = c.as_mut().and_then(|c| c.run.as_mut()) {
            self.string(&mut run.output, limits::ARG);
        }
    }

    fn services(&mut self, v: &mut Option<Vec<String>>) {
        if let Some(v) = v {
            self.list("services before maintenance", v, limits::SERVICES);
            self.strings(v, limits::STRING);
        }
    }
}

impl State {
    /// Applies `limits` in place; returns one note per kind of cut.
    pub fn bound(&mut self) -> Vec<String> {
        let mut c = Cuts::default();
        c.boots("unclean boot records", &mut self.unclean_records);
        if let Some(b) = &mut self.last_boot {
            c.string(&mut b.boot_id, limits::STRING);
        }
        if let Some(m) = &mut self.maintenance {
            c.boots("crash-loop boots", &mut m.crash_boots);
            c.requester(&mut m.requested_by);
            c.command(&mut m.command);
            c.services(&mut m.services_before);
            c.hooks("hook results of the maintenance", &mut m.hooks);
            if let Some(l) = &mut m.leaving {
                c.string(&mut l.boot_id, limits::STRING);
                if let Some(f) = &mut l.finisher {
                    c.string(&mut f.boot_id, limits::STRING);
                }
            }
        }
        c.list("history", &mut self.history, limits::HISTORY);
        for e in &mut self.history {
            c.requester(&mut e.requested_by);
            c.command(&mut e.command);
            c.string(&mut e.end, limits::STRING);
            c.hooks("hook results of an episode", &mut e.hooks);
            if let Some(v) = &mut e.verify {
                c.list("services not back", &mut v.not_back, limits::SERVICES);
                c.list("failed services", &mut v.failed, limits::SERVICES);
                c.strings(&mut v.not_back, limits::STRING);
                c.strings(&mut v.failed, limits::STRING);
                c.string(&mut v.compared_with, limits::STRING);
            }
        }
        if let Some(a) = &mut self.after_resume {
            c.services(&mut a.services_before);
        }
        let mut notes = c.lists;
        notes.dedup();
        if c.strings > 0 {
            notes.push(format!(
                "{} strings longer than umm keeps were shortened",
                c.strings
            ));
        }
        notes
    }

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
        s
    }
}

//! `umm status`: what the node is doing and why, for people and for tools.
//! `StatusView` is the one structure both render from: its JSON is a
//! stable interface (docs/commands.md: `state`, `enabled`, `reason`, `since`,
//! `unclean_boots`, `reboot_count`, `counter_reset_time`, `command`,
//! `requested_by`, `crash_boots`, `leaving`, `this_boot`, `init`, `config`,
//! `state_problem`, ...), and a caller who is not root gets every field but
//! `requested_by`, `command` and `hooks` (omitted, not null), and
//! `"restricted": true`.

use serde::{Serialize, Serializer};

use super::fleet::LocalView;
use super::history::{time, BootView, CommandView, EpisodeView, RequesterView, RootOnly};
use crate::bootmenu::{Counting, MenuEntry};
use crate::model::boot_decision::{BootDecision, DecidedBy};
use crate::model::hook::HookRecord;
use crate::model::open::Open;
use crate::model::rolling::{Queued, Then};
use crate::model::settings::Settings;
pub use crate::model::state::NodeState;
use crate::model::state::{Leaving, Mode, OffAction, Phase, Reason, State};
use crate::rules::bootcount::BootFailure;
use crate::sys::config::{InUse, Sources};

mod text;

/// Everything status shows, gathered by the caller.
pub struct Inputs<'a> {
    pub state: &'a State,
    pub state_problem: Option<&'a str>,
    pub settings: &'a Settings,
    pub sources: &'a Sources,
    pub config_error: Option<String>,
    /// Which settings the boot uses (loaded, last-good, counting-only).
    pub config_in_use: &'a InUse,
    pub this_boot: Option<&'a BootDecision>,
    pub init: &'a str,
    /// umm's entries in the boot menu.
    pub menu: &'a [MenuEntry],
    /// `umm=on` / `umm=off` when this boot's command line carries one.
    pub cmdline_arg: Option<&'static str>,
    /// Whether GRUB counts boots that never reach userspace.
    pub counting: &'a Counting,
    /// The kernel GRUB's environment block records as failed, if any.
    pub boot_failure: Option<&'a BootFailure>,
    /// This boot's kernel (`uname -r`), empty when unknown.
    pub running_kernel: &'a str,
    /// The caller is not root: `state` is the public part of the state
    /// (`State::public`), and the root-only fields are left out.
    pub restricted: bool,
}

/// The operator's switch.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

/// `umm status`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct StatusView {
    pub state: NodeState,
    /// umm acts: enabled by the configuration and by the switch.
    pub enabled: bool,
    pub enabled_by_config: bool,
    pub switch: Switch,
    pub reason: Option<Reason>,
    /// When maintenance was reached, or requested while pending.
    pub since: Option<String>,
    pub requested_at: Option<String>,
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub requested_by: RootOnly<Option<RequesterView>>,
    pub unclean_boots: u32,
    pub reboot_count: u32,
    /// Seconds.
    pub counter_reset_time: u64,
    pub unclean_boot_records: Vec<BootView>,
    /// The unclean boots behind a crash loop.
    pub crash_boots: Vec<BootView>,
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub command: RootOnly<Option<CommandView>>,
    /// While resuming: how leaving goes.
    pub leaving: Option<LeavingView>,
    pub this_boot: Option<ThisBootView>,
    pub init: String,
    pub boot_menu: BootMenuView,
    pub config: ConfigView,
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub hooks: RootOnly<Vec<HookRecord>>,
    pub last_episode: Option<EpisodeView>,
    pub after_resume_pending: bool,
    /// Why this node halts its group's roll: its `umm on --then` work
    /// failed (in maintenance), or the check after leaving was not clean
    /// (back in service, its slot kept); until a clean `umm off` or `umm
    /// fleet release`.
    pub roll_halted: Option<String>,
    pub state_problem: Option<String>,
    pub history_entries: usize,
    /// Fleet coordination, from this node's state (present when a back-end
    /// is configured or the state remembers a slot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<LocalView>,
    /// A request queued by `umm on --queue`, waiting for its turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuedView>,
    /// Present (and true) only for a caller who is not root.
    #[serde(skip_serializing_if = "is_false")]
    pub restricted: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An episode being left (`resuming`).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct LeavingView {
    pub action: OffAction,
    pub started: String,
    pub last_try: String,
    pub tries: u32,
    pub boot_id: String,
    pub finisher: Option<FinisherView>,
}

/// The process that runs the off.d hooks and the check.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct FinisherView {
    pub boot_id: String,
    pub pid: u32,
    pub since: String,
}

/// This boot's decision.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ThisBootView {
    pub boot_id: String,
    pub mode: Mode,
    pub reason: Option<Reason>,
    pub decided_by: Open<DecidedBy>,
    pub skipped_by_cmdline: bool,
    pub resumed: bool,
}

/// umm's entries in the boot menu.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct BootMenuView {
    pub entries: Vec<MenuEntryView>,
    /// `umm=on` or `umm=off` when this boot's command line has it.
    pub this_boot_cmdline: Option<&'static str>,
    /// Boot-loader counting: on, or why not (docs/boot-flow.md).
    pub counting: CountingView,
    /// A kernel that never reached userspace, as GRUB recorded it.
    pub boot_failure: Option<BootFailureView>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CountingView {
    pub on: bool,
    /// Which boot loader counts, and where (GRUB's environment block,
    /// systemd-boot's entries); none when off.
    pub by: Option<String>,
    /// Why not, when off.
    pub detail: Option<String>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct BootFailureView {
    pub kernel: String,
    pub attempts: usize,
    /// The kernel GRUB boots instead.
    pub good_kernel: Option<String>,
    /// The kernel this boot runs (`uname -r`).
    pub running_kernel: Option<String>,
    /// When umm first saw it (RFC 3339).
    pub since: Option<String>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct MenuEntryView {
    pub title: String,
    /// The kernel argument: `umm=on` or `umm=off`.
    pub kind: &'static str,
    pub id: String,
}

/// Where the settings came from, and whether they loaded.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ConfigView {
    pub files: Vec<String>,
    /// The original tool's /etc/umm.conf.
    pub legacy: bool,
    pub error: Option<String>,
    /// `loaded`, `last-good` or `counting-only`.
    #[serde(serialize_with = "in_use_name")]
    pub in_use: InUse,
    pub last_good_recorded: Option<String>,
    /// The configuration is broken and this file (`path:line`), which
    /// parses, says `enabled = false`: umm stays disabled whatever the
    /// fallback says.
    pub disabled_by: Option<String>,
}

fn in_use_name<S: Serializer>(in_use: &InUse, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(in_use.name())
}

impl StatusView {
    pub fn new(i: &Inputs) -> StatusView {
        let m = i.state.maintenance.as_ref();
        let restricted = i.restricted;
        StatusView {
            state: NodeState::of(m),
            enabled: i.settings.enabled && i.state.switch_on,
            enabled_by_config: i.settings.enabled,
            switch: if i.state.switch_on {
                Switch::On
            } else {
                Switch::Off
            },
            reason: m.map(|m| m.reason),
            since: m.map(|m| time(m.since.unwrap_or(m.requested))),
            requested_at: m.map(|m| time(m.requested)),
            requested_by: RootOnly::new(restricted, || {
                m.and_then(|m| m.requested_by.as_ref())
                    .map(RequesterView::new)
            }),
            unclean_boots: i.state.unclean_boots,
            reboot_count: i.settings.reboot_count,
            counter_reset_time: i.settings.counter_reset_time.as_secs(),
            unclean_boot_records: BootView::list(&i.state.unclean_records),
            crash_boots: m.map_or(Vec::new(), |m| BootView::list(&m.crash_boots)),
            command: RootOnly::new(restricted, || {
                m.and_then(|m| m.command.as_ref()).map(CommandView::new)
            }),
            leaving: m.and_then(|m| m.leaving.as_ref()).map(LeavingView::new),
            this_boot: i.this_boot.map(ThisBootView::new),
            init: i.init.to_string(),
            boot_menu: BootMenuView::new(i),
            config: ConfigView::new(i.sources, i.config_error.clone(), i.config_in_use),
            hooks: RootOnly::new(restricted, || m.map_or(Vec::new(), |m| m.hooks.clone())),
            last_episode: i
                .state
                .history
                .last()
                .map(|e| EpisodeView::new(e, restricted)),
            after_resume_pending: i.state.after_resume.is_some()
                || m.is_some_and(|m| m.phase == Phase::Resuming),
            roll_halted: i.state.fleet.halt.as_ref().map(|h| h.why.clone()),
            state_problem: i.state_problem.map(String::from),
            history_entries: i.state.history.len(),
            fleet: LocalView::for_status(&i.settings.fleet, i.state),
            queued: i
                .state
                .queued
                .as_ref()
                .map(|q| QueuedView::new(q, restricted)),
            restricted,
        }
    }
}

/// A queued request (`umm on --queue`): since when, until when, what the
/// maintenance boot does after COMMAND, what the last try waited for.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct QueuedView {
    pub since: String,
    pub expires: String,
    pub then: Then,
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub command: RootOnly<Option<Vec<String>>>,
    pub tries: u32,
    pub next_try: String,
    pub waiting_for: Vec<String>,
}

impl QueuedView {
    fn new(q: &Queued, restricted: bool) -> QueuedView {
        QueuedView {
            since: time(q.since),
            expires: time(q.expires),
            then: q.then,
            command: RootOnly::new(restricted, || q.argv.clone()),
            tries: q.tries,
            next_try: time(q.next_try),
            waiting_for: q.waiting_for.clone(),
        }
    }
}

impl LeavingView {
    fn new(l: &Leaving) -> LeavingView {
        LeavingView {
            action: l.action,
            started: time(l.started),
            last_try: time(l.last_try),
            tries: l.tries,
            boot_id: l.boot_id.clone(),
            finisher: l.finisher.as_ref().map(|c| FinisherView {
                boot_id: c.boot_id.clone(),
                pid: c.pid,
                since: time(c.since),
            }),
        }
    }
}

impl ThisBootView {
    fn new(b: &BootDecision) -> ThisBootView {
        ThisBootView {
            boot_id: b.boot_id.clone(),
            mode: b.mode,
            reason: b.reason,
            decided_by: b.decided_by.clone(),
            skipped_by_cmdline: b.skipped_by_cmdline,
            resumed: b.resumed,
        }
    }
}

impl BootMenuView {
    fn new(i: &Inputs) -> BootMenuView {
        BootMenuView {
            entries: i
                .menu
                .iter()
                .map(|e| MenuEntryView {
                    title: e.title.clone(),
                    kind: e.kind.arg(),
                    id: e.id.clone(),
                })
                .collect(),
            this_boot_cmdline: i.cmdline_arg,
            counting: CountingView {
                on: i.counting.is_on(),
                by: i.counting.by(),
                detail: match i.counting {
                    Counting::Off(why) => Some(why.clone()),
                    _ => None,
                },
            },
            boot_failure: i.boot_failure.map(|f| BootFailureView {
                kernel: f.kernel.clone(),
                attempts: f.attempts,
                good_kernel: f.good.clone(),
                running_kernel: Some(i.running_kernel)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string),
                since: f.since.map(time),
            }),
        }
    }
}

impl ConfigView {
    fn new(sources: &Sources, error: Option<String>, in_use: &InUse) -> ConfigView {
        ConfigView {
            // As text: a path that is not UTF-8 is shown, not refused.
            files: sources
                .files
                .iter()
                .map(|f| f.to_string_lossy().into_owned())
                .collect(),
            legacy: sources.legacy,
            error,
            in_use: in_use.clone(),
            last_good_recorded: match in_use {
                InUse::LastGood(t) => Some(time(*t)),
                _ => None,
            },
            disabled_by: sources
                .disabled_by
                .as_ref()
                .map(|(file, line)| format!("{}:{line}", file.to_string_lossy())),
        }
    }
}

#[cfg(test)]
mod tests;

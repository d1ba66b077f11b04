//! `umm status`: what the node is doing and why, for people and for tools.
//! `StatusView` is the one structure both render from: its JSON is a
//! stable interface (README: `state`, `enabled`, `reason`, `since`,
//! `unclean_boots`, `reboot_count`, `counter_reset_time`, `command`,
//! `requested_by`, `crash_boots`, `leaving`, `this_boot`, `init`, `config`,
//! `state_problem`, ...), and a caller who is not root gets every field but
//! `requested_by`, `command` and `hooks` (omitted, not null), and
//! `"restricted": true`.

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::history::{
    hook_name, shell_words, time, BootView, CommandView, EpisodeView, RequesterView, RootOnly,
};
use crate::bootmenu::{Kind, MenuEntry};
use crate::model::boot_decision::{BootDecision, DecidedBy};
use crate::model::hook::HookRecord;
use crate::model::open::Open;
use crate::model::settings::Settings;
use crate::model::state::{Maintenance, Mode, OffAction, Phase, Reason, State};
use crate::model::timefmt::format_span;
use crate::sys::config::{InUse, Sources};

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
    /// The caller is not root: `state` is the public part of the state
    /// (`State::public`), and the root-only fields are left out.
    pub restricted: bool,
}

/// The node's state, as `umm status` names it.
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
    pub fn of(m: Option<&Maintenance>) -> NodeState {
        match m.map(|m| m.phase) {
            None => NodeState::Operational,
            Some(Phase::Pending) => NodeState::Pending,
            Some(Phase::Active) => NodeState::Maintenance,
            Some(Phase::Resuming) => NodeState::Resuming,
        }
    }
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
    pub state_problem: Option<String>,
    pub history_entries: usize,
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
            leaving: m.and_then(|m| m.leaving.as_ref()).map(|l| LeavingView {
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
            }),
            this_boot: i.this_boot.map(|b| ThisBootView {
                boot_id: b.boot_id.clone(),
                mode: b.mode,
                reason: b.reason,
                decided_by: b.decided_by.clone(),
                skipped_by_cmdline: b.skipped_by_cmdline,
                resumed: b.resumed,
            }),
            init: i.init.to_string(),
            boot_menu: BootMenuView {
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
            },
            config: ConfigView {
                // As text: a path that is not UTF-8 is shown, not refused.
                files: i
                    .sources
                    .files
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
                legacy: i.sources.legacy,
                error: i.config_error.clone(),
                in_use: i.config_in_use.clone(),
                last_good_recorded: match i.config_in_use {
                    InUse::LastGood(t) => Some(time(*t)),
                    _ => None,
                },
            },
            hooks: RootOnly::new(restricted, || m.map_or(Vec::new(), |m| m.hooks.clone())),
            last_episode: i
                .state
                .history
                .last()
                .map(|e| EpisodeView::new(e, restricted)),
            after_resume_pending: i.state.after_resume.is_some()
                || m.is_some_and(|m| m.phase == Phase::Resuming),
            state_problem: i.state_problem.map(String::from),
            history_entries: i.state.history.len(),
            restricted,
        }
    }

    /// The text view: one line per fact, the state first, what to do last.
    pub fn text(&self) -> String {
        let mut out = vec![format!("State:        {}", self.headline())];
        out.extend(self.maintenance_lines());
        out.push(self.counter_line());
        out.push(format!("Enabled:      {}", self.enabled_line()));
        out.extend(self.this_boot.as_ref().map(ThisBootView::line));
        out.push(format!("Init system:  {}", self.init));
        out.push(self.boot_menu.line());
        out.extend(self.config.lines());
        out.extend(
            self.state_problem
                .as_ref()
                .map(|p| format!("State file:   {p}")),
        );
        for h in self.hooks.shown().into_iter().flatten() {
            out.push(format!("Hook:         {}: {}", hook_name(h), h.result));
        }
        out.extend(
            self.last_episode
                .as_ref()
                .map(|e| format!("Last episode: {}", e.line())),
        );
        out.extend(self.next_step());
        if self.restricted {
            out.push(
                "Details:      who asked, the scheduled command and hook results are shown to root only (sudo umm status)"
                    .into(),
            );
        }
        out.join("\n")
    }

    fn headline(&self) -> String {
        let reason = self.reason.map_or("", Reason::as_str);
        let since = self.since.as_deref().unwrap_or_default();
        match self.state {
            NodeState::Operational if !self.enabled => "operational (umm is disabled)".into(),
            NodeState::Operational => "operational".into(),
            NodeState::Pending => format!(
                "pending: maintenance ({reason}) at the next boot, requested {}",
                self.requested_at.as_deref().unwrap_or_default()
            ),
            NodeState::Resuming => format!(
                "RESUMING: leaving maintenance ({reason}; in it since {since}; umm off at {}); not finished until the normal target is reached and the off.d hooks and the check have run",
                self.leaving
                    .as_ref()
                    .map_or("umm off", |l| l.started.as_str())
            ),
            NodeState::Maintenance => format!("MAINTENANCE ({reason}) since {since}"),
        }
    }

    /// Who asked, how leaving goes, the crash loop's boots, the command.
    fn maintenance_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.state == NodeState::Operational {
            return out;
        }
        if let Some(r) = self.requested_by.shown().and_then(Option::as_ref) {
            let from = r
                .from
                .as_deref()
                .map(|f| format!(" from {f}"))
                .unwrap_or_default();
            out.push(format!("Requested by: {}{from}", r.user));
        }
        out.extend(self.leaving.as_ref().map(LeavingView::line));
        if !self.crash_boots.is_empty() {
            out.push(format!(
                "Crash loop:   {} unclean boots:",
                self.crash_boots.len()
            ));
            for b in &self.crash_boots {
                out.push(format!(
                    "                {} started {}",
                    b.boot_id, b.started
                ));
            }
        }
        if let Some(c) = self.command.shown().and_then(Option::as_ref) {
            out.push(format!(
                "Command:      {} ({})",
                shell_words(&c.argv),
                command_state(c)
            ));
        }
        out
    }

    fn counter_line(&self) -> String {
        let after = if self.config.in_use == InUse::CountingOnly {
            "counted only: no crash-loop maintenance while the configuration is broken".to_string()
        } else {
            format!("maintenance after more than {}", self.reboot_count)
        };
        format!(
            "Unclean boots: {} in a row ({after}; reset by a clean shutdown or {} of uptime)",
            self.unclean_boots,
            format_span(Duration::from_secs(self.counter_reset_time))
        )
    }

    fn enabled_line(&self) -> &'static str {
        match (self.enabled_by_config, self.switch) {
            (true, Switch::On) => "yes",
            (true, Switch::Off) => "no (umm disable)",
            (false, _) => "no (enabled = false in the configuration)",
        }
    }

    /// What the operator can do now.
    fn next_step(&self) -> Option<String> {
        match self.state {
            NodeState::Maintenance => {
                Some("To leave:     umm off (resume now) or umm off reboot".into())
            }
            NodeState::Pending => Some("To cancel:    umm off".into()),
            NodeState::Resuming => {
                Some("To finish:    umm off (again: resumes and finishes) or umm off reboot".into())
            }
            NodeState::Operational => None,
        }
    }
}

/// The scheduled command's run, as `umm status` says it.
fn command_state(c: &CommandView) -> String {
    let Some(started) = &c.started else {
        return "not run yet".into();
    };
    if c.ended.is_none() {
        return match c.pid {
            Some(pid) => format!("running since {started}, pid {pid}"),
            None => format!("running since {started}"),
        };
    }
    let result = match (c.exit_code, c.signal) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    };
    format!(
        "{result} at {}; output in {}",
        c.ended.as_deref().unwrap_or(started),
        c.output.as_deref().unwrap_or_default()
    )
}

impl LeavingView {
    fn line(&self) -> String {
        let finisher = self
            .finisher
            .as_ref()
            .map(|c| {
                format!(
                    "; off.d hooks and check claimed by pid {} since {}",
                    c.pid, c.since
                )
            })
            .unwrap_or_default();
        format!(
            "Leaving:      umm off{} {} time(s), last at {}{finisher}",
            if self.action == OffAction::Reboot {
                " reboot"
            } else {
                ""
            },
            self.tries,
            self.last_try
        )
    }
}

impl ThisBootView {
    fn line(&self) -> String {
        let mode = match self.mode {
            Mode::Normal => "normal",
            Mode::Maintenance => "maintenance",
        };
        let mut line = format!("This boot:    {mode} (decided by {})", self.decided_by);
        if self.skipped_by_cmdline {
            line.push_str("; maintenance skipped by umm=off on the kernel command line");
        }
        if self.resumed {
            line.push_str("; resumed by umm off");
        }
        line
    }
}

impl BootMenuView {
    fn line(&self) -> String {
        let on = self
            .entries
            .iter()
            .filter(|e| e.kind == Kind::On.arg())
            .count();
        let off = self.entries.len() - on;
        let from = match self.this_boot_cmdline {
            Some(arg) => format!("; this boot has {arg} on its kernel command line"),
            None => String::new(),
        };
        format!("Boot menu:    {on} maintenance and {off} skip entries{from}")
    }
}

impl ConfigView {
    fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "Config:       {}{}",
            if self.files.is_empty() {
                "defaults (no file)".to_string()
            } else {
                self.files.join(", ")
            },
            if self.legacy {
                " (the original tool's format)"
            } else {
                ""
            }
        )];
        if let Some(e) = &self.error {
            out.push(format!(
                "Config error: {e}; {} (shown above)",
                self.in_use.describe()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::HookPhase;
    use crate::model::state::{
        BootRecord, Claim, CommandRun, Episode, EpisodeEnd, Leaving, Requester, ScheduledCommand,
    };
    use crate::model::verify::VerifyResult;
    use serde_json::Value;

    /// A node resuming from a crash loop, with everything status can show.
    fn busy_state() -> State {
        let hook = HookRecord {
            phase: HookPhase::PreOff.into(),
            name: "10-x".into(),
            ok: false,
            result: "exited 1".into(),
            output_tail: vec!["no".into()],
            extra: Default::default(),
        };
        let boot = BootRecord {
            boot_id: "b1".into(),
            started: 10,
            extra: Default::default(),
        };
        let command = ScheduledCommand {
            argv: vec!["true".into()],
            run: Some(CommandRun {
                started: 20,
                pid: Some(42),
                ended: Some(30),
                exit_code: Some(0),
                signal: None,
                output: "/var/lib/umm/command.log".into(),
                extra: Default::default(),
            }),
            extra: Default::default(),
        };
        let requester = Requester {
            user: "alice".into(),
            from: Some("192.0.2.7".into()),
            extra: Default::default(),
        };
        let mut state = State {
            unclean_boots: 1,
            unclean_records: vec![boot.clone()],
            ..State::default()
        };
        state.maintenance = Some(Maintenance {
            id: 2,
            phase: Phase::Resuming,
            reason: Reason::CrashLoop,
            requested: 5,
            since: Some(6),
            requested_by: Some(requester.clone()),
            command: Some(command.clone()),
            crash_boots: vec![boot],
            services_before: None,
            hooks: vec![hook.clone()],
            leaving: Some(Leaving {
                action: OffAction::Resume,
                started: 40,
                last_try: 41,
                tries: 2,
                boot_id: "b2".into(),
                finisher: Some(Claim {
                    boot_id: "b2".into(),
                    pid: 7,
                    pid_start: Some(1),
                    since: 42,
                    extra: Default::default(),
                }),
                extra: Default::default(),
            }),
            extra: Default::default(),
        });
        state.history.push(Episode {
            id: 1,
            reason: Reason::Manual,
            requested: 1,
            since: Some(2),
            ended: 3,
            requested_by: Some(requester),
            command: Some(command),
            end: EpisodeEnd::Resumed.into(),
            hooks: vec![hook],
            verify: Some(VerifyResult {
                compared_with: "enabled services".into(),
                not_back: vec![],
                failed: vec!["x.service".into()],
                extra: Default::default(),
            }),
            extra: Default::default(),
        });
        state
    }

    fn view_json(restricted: bool) -> Value {
        let full = busy_state();
        let state = if restricted { full.public() } else { full };
        let decision = BootDecision {
            boot_id: "b2".into(),
            mode: Mode::Maintenance,
            reason: Some(Reason::CrashLoop),
            decided_by: DecidedBy::Generator.into(),
            skipped_by_cmdline: false,
            resumed: true,
        };
        let menu = [MenuEntry {
            title: "Debian, maintenance mode (umm)".into(),
            kind: Kind::On,
            id: "umm-on-x".into(),
        }];
        let sources = Sources {
            files: vec!["/etc/umm/umm.toml".into()],
            ..Sources::default()
        };
        let inputs = Inputs {
            state: &state,
            state_problem: None,
            settings: &Settings::default(),
            sources: &sources,
            config_error: Some("/etc/umm/umm.toml.d/x.toml:1: x: bad".into()),
            config_in_use: &InUse::LastGood(50),
            this_boot: Some(&decision),
            init: "systemd",
            menu: &menu,
            cmdline_arg: Some("umm=on"),
            restricted,
        };
        let text = super::super::json::pretty(&StatusView::new(&inputs)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The documented contract of `umm status --json` (README): each
    /// field's JSON type, where tools and the VM lab read it.
    const CONTRACT: &[(&str, &str)] = &[
        ("/state", "string"),
        ("/enabled", "bool"),
        ("/enabled_by_config", "bool"),
        ("/switch", "string"),
        ("/reason", "string"),
        ("/since", "string"),
        ("/requested_at", "string"),
        ("/requested_by/user", "string"),
        ("/requested_by/from", "string"),
        ("/unclean_boots", "number"),
        ("/reboot_count", "number"),
        ("/counter_reset_time", "number"),
        ("/unclean_boot_records/0/boot_id", "string"),
        ("/unclean_boot_records/0/started", "string"),
        ("/crash_boots/0/boot_id", "string"),
        ("/crash_boots/0/started", "string"),
        ("/command/argv/0", "string"),
        ("/command/exit_code", "number"),
        ("/command/signal", "null"),
        ("/command/started", "string"),
        ("/command/ended", "string"),
        ("/command/pid", "number"),
        ("/command/output", "string"),
        ("/leaving/action", "string"),
        ("/leaving/started", "string"),
        ("/leaving/last_try", "string"),
        ("/leaving/tries", "number"),
        ("/leaving/boot_id", "string"),
        ("/leaving/finisher/boot_id", "string"),
        ("/leaving/finisher/pid", "number"),
        ("/leaving/finisher/since", "string"),
        ("/this_boot/boot_id", "string"),
        ("/this_boot/mode", "string"),
        ("/this_boot/reason", "string"),
        ("/this_boot/decided_by", "string"),
        ("/this_boot/skipped_by_cmdline", "bool"),
        ("/this_boot/resumed", "bool"),
        ("/init", "string"),
        ("/boot_menu/entries/0/title", "string"),
        ("/boot_menu/entries/0/kind", "string"),
        ("/boot_menu/entries/0/id", "string"),
        ("/boot_menu/this_boot_cmdline", "string"),
        ("/config/files/0", "string"),
        ("/config/legacy", "bool"),
        ("/config/error", "string"),
        ("/config/in_use", "string"),
        ("/config/last_good_recorded", "string"),
        ("/hooks/0/phase", "string"),
        ("/hooks/0/name", "string"),
        ("/hooks/0/ok", "bool"),
        ("/hooks/0/result", "string"),
        ("/hooks/0/output_tail/0", "string"),
        ("/last_episode/reason", "string"),
        ("/last_episode/requested_at", "string"),
        ("/last_episode/requested_by/user", "string"),
        ("/last_episode/since", "string"),
        ("/last_episode/ended", "string"),
        ("/last_episode/end", "string"),
        ("/last_episode/command/exit_code", "number"),
        ("/last_episode/hooks/0/name", "string"),
        ("/last_episode/hook_failures/0", "string"),
        ("/last_episode/verify/failed/0", "string"),
        ("/last_episode/verify/not_back", "array"),
        ("/last_episode/verify/compared_with", "string"),
        ("/after_resume_pending", "bool"),
        ("/state_problem", "null"),
        ("/history_entries", "number"),
    ];

    const ROOT_ONLY: &[&str] = &["/requested_by", "/command", "/hooks"];
    const ROOT_ONLY_IN_EPISODES: &[&str] = &[
        "requested_by",
        "command",
        "hooks",
        "hook_failures",
        "verify",
    ];

    #[test]
    fn json_for_root_has_the_documented_fields_and_types() {
        let v = view_json(false);
        for (pointer, expected) in CONTRACT {
            let got = v.pointer(pointer).map(kind);
            assert_eq!(got, Some(*expected), "{pointer} in {v:#}");
        }
        assert_eq!(v["state"], "resuming");
        assert_eq!(v["reason"], "crash-loop");
        assert_eq!(v["leaving"]["action"], "resume");
        assert_eq!(v["this_boot"]["decided_by"], "generator");
        assert_eq!(v["boot_menu"]["entries"][0]["kind"], "umm=on");
        assert_eq!(v["config"]["in_use"], "last-good");
        assert_eq!(v["hooks"][0]["phase"], "pre-off");
        assert_eq!(v["last_episode"]["end"], "resumed");
        assert!(v.get("restricted").is_none(), "{v:#}");
    }

    #[test]
    fn json_for_others_omits_what_is_root_only_and_says_so() {
        let root = view_json(false);
        let v = view_json(true);
        assert_eq!(v["restricted"], true);
        for (pointer, expected) in CONTRACT {
            let hidden = ROOT_ONLY.iter().any(|p| pointer.starts_with(p))
                || ROOT_ONLY_IN_EPISODES
                    .iter()
                    .any(|f| pointer.starts_with(&format!("/last_episode/{f}")));
            if hidden {
                assert!(v.pointer(pointer).is_none(), "{pointer} given to a user");
            } else {
                assert_eq!(v.pointer(pointer).map(kind), Some(*expected), "{pointer}");
            }
        }
        // Omitted, not null; and every other key is there.
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let mut expected = keys(&root);
        expected.retain(|k| !ROOT_ONLY.contains(&format!("/{k}").as_str()));
        expected.push("restricted".into());
        expected.sort();
        assert_eq!(keys(&v), expected);
        let mut episode = keys(&root["last_episode"]);
        episode.retain(|k| !ROOT_ONLY_IN_EPISODES.contains(&k.as_str()));
        assert_eq!(keys(&v["last_episode"]), episode);
    }

    #[test]
    fn text_and_json_show_the_same_facts() {
        let full = busy_state();
        let v = view_json(false);
        let sources = Sources::default();
        let inputs = Inputs {
            state: &full,
            state_problem: None,
            settings: &Settings::default(),
            sources: &sources,
            config_error: None,
            config_in_use: &InUse::Loaded,
            this_boot: None,
            init: "systemd",
            menu: &[],
            cmdline_arg: None,
            restricted: false,
        };
        let text = StatusView::new(&inputs).text();
        for fact in [
            v["since"].as_str().unwrap(),
            v["leaving"]["started"].as_str().unwrap(),
            v["requested_by"]["from"].as_str().unwrap(),
            v["crash_boots"][0]["boot_id"].as_str().unwrap(),
            v["command"]["output"].as_str().unwrap(),
        ] {
            assert!(text.contains(fact), "{fact} not in:\n{text}");
        }
        assert!(text.starts_with("State:        RESUMING"), "{text}");
    }
}

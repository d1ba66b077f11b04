//! `umm status` as text: one line per fact, the state first, what to do
//! last; rendered from the same `StatusView` as the JSON.

use std::time::Duration;

use super::{
    BootMenuView, ConfigView, LeavingView, NodeState, QueuedView, StatusView, Switch, ThisBootView,
};
use crate::bootmenu::Kind;
use crate::model::rolling::Then;
use crate::model::state::{Mode, OffAction, Reason};
use crate::model::timefmt::format_span;
use crate::output::history::{hook_name, program_and_count, shell_words, CommandView};
use crate::sys::config::InUse;

impl StatusView {
    /// The text view: one line per fact, the state first, what to do last.
    pub fn text(&self) -> String {
        let mut out = vec![format!("State:        {}", self.headline())];
        out.extend(self.maintenance_lines());
        out.extend(self.halt_line());
        out.push(self.counter_line());
        out.push(format!("Enabled:      {}", self.enabled_line()));
        out.extend(self.this_boot.as_ref().map(ThisBootView::line));
        out.push(format!("Init system:  {}", self.init));
        out.push(self.boot_menu.line());
        out.extend(self.boot_menu.counting_lines());
        out.extend(self.config.lines());
        if let Some(f) = &self.fleet {
            let mut lines = f.status_lines().into_iter();
            out.extend(
                lines
                    .next()
                    .map(|l| format!("Fleet:        {}", l.trim_start_matches("Fleet: "))),
            );
            out.extend(lines.map(|l| format!("              {l}")));
        }
        out.extend(
            self.queued
                .as_ref()
                .map_or_else(Vec::new, QueuedView::lines),
        );
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

    /// Why this node halts its group's roll, and what resumes it.
    fn halt_line(&self) -> Option<String> {
        let why = self.roll_halted.as_ref()?;
        let resume = if self.state == NodeState::Operational {
            "`umm fleet release`"
        } else {
            "`umm off`"
        };
        Some(format!(
            "Roll halted:  by this node: {why}; it keeps its fleet slot; fix it, then {resume} resumes the roll"
        ))
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

impl BootMenuView {
    /// Boot-loader counting and, after a boot failure, what GRUB does now.
    fn counting_lines(&self) -> Vec<String> {
        let by = self.counting.by.as_deref().unwrap_or("unknown");
        let mut out = vec![match &self.counting.detail {
            None => format!("Boot loader:  counts boots that never reach userspace ({by})"),
            Some(why) => {
                format!("Boot loader:  does not count boots that never reach userspace: {why}")
            }
        }];
        if let Some(f) = &self.boot_failure {
            let since = f
                .since
                .as_deref()
                .map_or(String::new(), |s| format!(" (seen {s})"));
            let instead = f.good_kernel.as_deref().unwrap_or("the last good kernel");
            let loader = if by.starts_with("systemd-boot") {
                "systemd-boot"
            } else {
                "GRUB"
            };
            let running = f
                .running_kernel
                .as_deref()
                .map_or(String::new(), |k| format!("; this boot runs {k}"));
            out.push(format!(
                "Boot failure: kernel {} did not reach userspace in {} attempts in a row{since}{running}; {loader} boots {instead} instead until `umm boot retry` or another default kernel",
                f.kernel, f.attempts
            ));
        }
        out
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
            let disabled = match &self.disabled_by {
                Some(at) => {
                    format!("; but {at} says enabled = false, and that holds: umm stays disabled")
                }
                None => String::new(),
            };
            out.push(format!(
                "Config error: {e}; {}{disabled} (shown above)",
                self.in_use.describe()
            ));
        }
        out
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

impl QueuedView {
    /// Since when, until when, then, the command; what the last try waited
    /// for and when the next one is.
    fn lines(&self) -> Vec<String> {
        let then = match self.then {
            Then::Stay => "stays in maintenance until umm off",
            Then::Off => "leaves by itself (umm off) once COMMAND succeeded",
            Then::Reboot => "leaves by itself (umm off reboot) once COMMAND succeeded",
        };
        let command = match self.command.shown() {
            Some(Some(argv)) => format!("; command: {}", program_and_count(argv)),
            Some(None) => "; no command".into(),
            None => String::new(),
        };
        let mut out = vec![format!(
            "Queued:       since {}, until {}; then {then}{command} (umm off cancels it)",
            self.since, self.expires
        )];
        let mut waits = self.waiting_for.iter();
        match waits.next() {
            None => out.push("Waiting for:  not tried yet".into()),
            Some(first) => out.push(format!("Waiting for:  {first}")),
        }
        out.extend(waits.map(|w| format!("              {w}")));
        out.push(format!(
            "Next try:     {} (try {})",
            self.next_try,
            self.tries.saturating_add(1)
        ));
        out
    }
}

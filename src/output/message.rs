//! What the commands tell the operator as they go, typed: the command says
//! what happened (`say(&Message::Cancelled)`), and this module says how,
//! and on which stream (results on stdout; refusals, failures and
//! warnings on stderr). A message is also its log line where the command
//! logs it (`Display`).

use std::fmt;

use super::history::{hook_name, shell_words};
use crate::model::hook::HookRecord;
use crate::model::state::Maintenance;
use crate::model::timefmt::rfc3339;
use crate::model::verify::VerifyResult;

/// Which hooks a `--force` overrides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overridden {
    Checks,
    PreOn,
    PreOff,
    /// No maintenance window is open.
    Window,
    /// The health gate is closed.
    Gate,
}

/// One thing a command tells its operator.
#[derive(Debug)]
pub enum Message<'a> {
    // -- any command ---------------------------------------------------
    /// `umm <command>: refused: <why>`.
    Refused {
        command: &'a str,
        why: String,
    },
    /// The configuration is broken; what is used instead.
    ConfigFallback {
        command: &'a str,
        error: String,
        fallback: String,
    },
    /// Something about the state file (set aside, cut, a newer umm's).
    StateWarning {
        command: &'a str,
        problem: &'a str,
    },
    /// The state is saved, but its early copy could not be refreshed.
    EarlyCopyStale(&'a str),
    /// The hooks that failed, with their last lines of output.
    HookFailures(&'a [HookRecord]),
    /// `--force` goes on despite these failed hooks.
    Overriding {
        what: Overridden,
        failed: &'a str,
    },
    /// How a planned reboot (`umm on`, `umm off reboot`) happens: by kexec
    /// (`kernel`), or through the firmware and why (`loud`: kexec was
    /// asked for, so the fallback is a warning, on stderr).
    RebootBy {
        command: &'a str,
        kexec: Option<&'a str>,
        firmware: Option<String>,
        loud: bool,
    },

    // -- umm on --------------------------------------------------------
    /// A check vetoed `umm on`.
    VetoedByChecks {
        failed: String,
    },
    /// A pre-on hook failed: nothing was requested, but the pre-on hooks
    /// before it ran.
    PreOnFailed {
        failed: String,
        ran: String,
    },
    /// The request is saved; the reboot follows.
    Requested {
        command: Option<&'a [String]>,
    },
    /// `umm on --queue`: the request is saved; it waits for `waits`.
    Queued {
        waits: String,
        expires: String,
    },
    /// `umm internal queue`: the way is closed; the next try's time.
    QueueWaiting {
        waits: String,
        next: String,
    },
    /// `umm internal queue`: the request's span is over.
    QueueExpired {
        why: String,
    },
    /// `umm internal queue`: its turn came, but the rules refused it.
    QueueDropped {
        why: String,
    },

    // -- umm off -------------------------------------------------------
    /// A pre-off hook vetoed leaving.
    VetoedByPreOff {
        command: &'a str,
        failed: String,
    },
    /// A pending request was cancelled.
    Cancelled,
    /// `umm off` with a queued request: cancelled.
    QueueCancelled,
    /// `umm off reboot`: the reboot follows.
    RebootingOut,
    /// A retry after the normal target was reached.
    AlreadyReached,
    /// The resume is being asked for, and waited for.
    Resuming,
    /// `--no-wait`: the resume was started.
    ResumeStarted,
    /// The normal target was not reached within the wait.
    NotReached {
        seconds: &'a str,
        failed_units: &'a [String],
    },
    Reached {
        seconds: &'a str,
    },
    /// A boot that resumed in an earlier boot is not at its target yet.
    NotReachedYet,
    /// Another finisher runs the off.d hooks and the check.
    FinishedElsewhere {
        pid: u32,
    },
    /// The check after leaving: failed units, and services not back.
    AfterLeaving {
        failed_units: &'a [String],
        verify: Option<&'a VerifyResult>,
    },
    /// The scheduled command keeps running after `umm off`.
    CommandStillRunning {
        pid: Option<u32>,
        since: &'a str,
    },

    // -- umm enable, umm disable ---------------------------------------
    /// The configuration disables umm (`where`: " (file:line)" or "").
    EnableRefusedByConfig {
        place: String,
    },
    AlreadyEnabled,
    Enabled,
    AlreadyDisabled,
    Disabled,
    MenuUpdated,
    /// `umm boot retry`: the failure of `kernel` cleared; a new failure
    /// (`attempts` in a row) ends in `good`'s maintenance entry again.
    BootRetry {
        kernel: &'a str,
        good: Option<&'a str>,
        attempts: usize,
        /// The boot loader that counts (GRUB, systemd-boot).
        loader: &'a str,
    },
    /// The boot menu could not be brought in step (`what` failed).
    MenuNotUpdated(String),

    // -- a maintenance boot --------------------------------------------
    /// The maintenance banner (also in /run/motd.d and /run/issue.d).
    Banner(&'a str),

    // -- fleet coordination --------------------------------------------
    /// A slot of the group is this node's (`already`: it held it).
    FleetTaken {
        group: &'a str,
        backend: &'a str,
        id: &'a str,
        already: bool,
    },
    /// `umm on --wait`: no slot yet; the next try.
    FleetWaiting {
        group: &'a str,
        why: String,
        next_in: String,
        left: String,
    },
    /// `umm on --force` goes on without a slot.
    FleetForced {
        why: String,
    },
    /// The slot went back to the group.
    FleetReleased {
        group: &'a str,
        id: &'a str,
    },
    /// A release that was pending landed (any command run as root).
    FleetReleasedLate {
        group: &'a str,
        id: &'a str,
    },
    /// The release failed: it stays pending.
    FleetReleasePending {
        group: &'a str,
        error: String,
    },
    /// The check was not clean: the slot is kept.
    FleetKept {
        group: &'a str,
    },
}

impl Message<'_> {
    /// Results go to stdout; refusals, failures and warnings to stderr.
    pub fn to_stderr(&self) -> bool {
        matches!(
            self,
            Message::Refused { .. }
                | Message::ConfigFallback { .. }
                | Message::StateWarning { .. }
                | Message::EarlyCopyStale(_)
                | Message::HookFailures(_)
                | Message::RebootBy { loud: true, .. }
                | Message::VetoedByChecks { .. }
                | Message::PreOnFailed { .. }
                | Message::QueueDropped { .. }
                | Message::VetoedByPreOff { .. }
                | Message::NotReached { .. }
                | Message::NotReachedYet
                | Message::EnableRefusedByConfig { .. }
                | Message::MenuNotUpdated(_)
                | Message::FleetForced { .. }
                | Message::FleetReleasePending { .. }
                | Message::FleetReleasedLate { .. }
                | Message::FleetKept { .. }
        )
    }
}

/// "a, b" or "none".
fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

impl fmt::Display for Message<'_> {
    /// Each section of messages (as the enum groups them) has its own
    /// function; this match says which variant is in which, and lists
    /// them all, so that a new message has to be placed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Message as M;
        match self {
            M::Refused { .. }
            | M::ConfigFallback { .. }
            | M::StateWarning { .. }
            | M::EarlyCopyStale(_)
            | M::HookFailures(_)
            | M::Overriding { .. }
            | M::RebootBy { .. }
            | M::MenuNotUpdated(_)
            | M::Banner(_) => self.fmt_any_command(f),
            M::VetoedByChecks { .. }
            | M::PreOnFailed { .. }
            | M::Requested { .. }
            | M::Queued { .. }
            | M::QueueWaiting { .. }
            | M::QueueExpired { .. }
            | M::QueueDropped { .. } => self.fmt_on(f),
            M::VetoedByPreOff { .. }
            | M::Cancelled
            | M::QueueCancelled
            | M::RebootingOut
            | M::AlreadyReached
            | M::Resuming
            | M::ResumeStarted => self.fmt_off(f),
            M::NotReached { .. }
            | M::Reached { .. }
            | M::NotReachedYet
            | M::FinishedElsewhere { .. }
            | M::AfterLeaving { .. }
            | M::CommandStillRunning { .. } => self.fmt_off_result(f),
            M::EnableRefusedByConfig { .. }
            | M::AlreadyEnabled
            | M::Enabled
            | M::AlreadyDisabled
            | M::Disabled
            | M::MenuUpdated
            | M::BootRetry { .. } => self.fmt_switch(f),
            M::FleetTaken { .. }
            | M::FleetWaiting { .. }
            | M::FleetForced { .. }
            | M::FleetReleased { .. }
            | M::FleetReleasedLate { .. }
            | M::FleetReleasePending { .. }
            | M::FleetKept { .. } => self.fmt_fleet(f),
        }
    }
}

// Each section below writes its own variants; `fmt` sends it no other
// (the `_` arms are never taken).
impl Message<'_> {
    /// Messages any command may say.
    fn fmt_any_command(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Refused { command, why } => write!(f, "umm {command}: refused: {why}"),
            Message::ConfigFallback {
                command,
                error,
                fallback,
            } => write!(f, "umm {command}: warning: {error}; {fallback}"),
            Message::StateWarning { command, problem } => {
                write!(f, "umm {command}: warning: {problem}")
            }
            Message::EarlyCopyStale(problem) => write!(f, "umm: warning: {problem}"),
            Message::RebootBy {
                command,
                kexec: Some(kernel),
                ..
            } => write!(
                f,
                "umm {command}: rebooting by kexec into {kernel} (no firmware pass)"
            ),
            Message::RebootBy {
                command,
                firmware,
                loud,
                ..
            } => {
                let warning = if *loud { "warning: " } else { "" };
                let why = firmware.as_deref().unwrap_or("no reason given");
                write!(
                    f,
                    "umm {command}: {warning}rebooting through the firmware: {why}"
                )
            }
            Message::HookFailures(records) => f.write_str(&hook_failure_lines(records)),
            Message::Overriding { what, failed } => {
                let what = match what {
                    Overridden::Checks => "Overriding the failed checks",
                    Overridden::PreOn => "Going on despite the failed pre-on hooks",
                    Overridden::PreOff => "Overriding the failed pre-off hooks",
                    Overridden::Window => "Entering anyway (--force)",
                    Overridden::Gate => "Overriding the closed health gate",
                };
                write!(f, "{what}: {failed}")
            }
            Message::MenuNotUpdated(what) => write!(f, "umm: warning: {what}"),
            Message::Banner(text) => f.write_str(text),
            _ => Ok(()),
        }
    }

    /// `umm on`.
    fn fmt_on(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::VetoedByChecks { failed } => write!(
                f,
                "umm on: refused: vetoed by {failed}; nothing was changed (--force overrides)"
            ),
            Message::PreOnFailed { failed, ran } => write!(
                f,
                "umm on: refused: {failed} failed; nothing was requested (pre-on hooks that ran: {ran}; undo them by hand) (--force overrides)"
            ),
            Message::Requested { command } => {
                let scheduled = command
                    .map(|c| format!("; scheduled command: {}", shell_words(c)))
                    .unwrap_or_default();
                write!(
                    f,
                    "Maintenance requested{scheduled}. Rebooting cleanly into maintenance mode."
                )
            }
            Message::Queued { waits, expires } => write!(
                f,
                "Maintenance queued: the node waits by itself for {waits}, until {expires}, then reboots into maintenance. `umm status` shows it; `umm off` cancels it."
            ),
            Message::QueueWaiting { waits, next } => write!(
                f,
                "Queued maintenance waits for: {waits}; next try at {next}."
            ),
            Message::QueueExpired { why } => write!(
                f,
                "Queued maintenance expired unserved (it last waited for: {why}); queue it again with umm on --queue."
            ),
            Message::QueueDropped { why } => write!(
                f,
                "umm internal queue: the queued request was dropped: {why}; nothing was entered."
            ),
            _ => Ok(()),
        }
    }

    /// `umm off`, as it begins.
    fn fmt_off(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::VetoedByPreOff { command, failed } => write!(
                f,
                "umm {command}: refused: vetoed by {failed}; still in maintenance (--force overrides)"
            ),
            Message::Cancelled => {
                f.write_str("Cancelled the maintenance request; the next boot will be normal.")
            }
            Message::QueueCancelled => f.write_str(
                "Cancelled the queued maintenance request; the node will not enter maintenance for it.",
            ),
            Message::RebootingOut => f.write_str(
                "Leaving maintenance: rebooting cleanly into normal operation. The off.d hooks and the check run once the normal boot reaches its target.",
            ),
            Message::AlreadyReached => {
                f.write_str("The normal target is reached; finishing leaving maintenance.")
            }
            Message::Resuming => {
                f.write_str("Leaving maintenance: resuming the boot into the normal target...")
            }
            Message::ResumeStarted => f.write_str(
                "Resume started; not waiting (--no-wait). The off.d hooks and the check run once the normal target is reached (umm-after.service). Check with: umm status",
            ),
            _ => Ok(()),
        }
    }

    /// `umm off`: how leaving went.
    fn fmt_off_result(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::NotReached {
                seconds,
                failed_units,
            } => write!(
                f,
                "umm off: the normal target was not reached after {seconds} s; failed units: {}; the node is still leaving maintenance (umm status: resuming): see `systemctl --failed` and the journal, then run `umm off` again, or `umm off reboot`",
                list_or_none(failed_units)
            ),
            Message::Reached { seconds } => write!(f, "Normal target reached in {seconds} s."),
            Message::NotReachedYet => f.write_str(
                "umm off: this boot has not reached its normal target yet; umm-after.service finishes leaving maintenance once it has (or run `umm off` again then)",
            ),
            Message::FinishedElsewhere { pid } => write!(
                f,
                "The off.d hooks and the check are being run by pid {pid} (umm-after.service or another umm off); see `umm history` once they are done."
            ),
            Message::AfterLeaving {
                failed_units,
                verify,
            } => write_after_leaving(f, failed_units, *verify),
            Message::CommandStillRunning { pid, since } => {
                let pid = pid.map(|p| format!("pid {p}, ")).unwrap_or_default();
                write!(
                    f,
                    "The scheduled command is still running ({pid}since {since}); it keeps running. Its result: umm status, umm history."
                )
            }
            _ => Ok(()),
        }
    }

    /// `umm enable`, `umm disable`.
    fn fmt_switch(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::EnableRefusedByConfig { place } => write!(
                f,
                "umm enable: refused: the configuration disables umm{place}; set enabled = true there"
            ),
            Message::AlreadyEnabled => f.write_str("umm is already enabled."),
            Message::BootRetry {
                kernel,
                good,
                attempts,
                loader,
            } => write!(
                f,
                "Boot failure of kernel {kernel} cleared: the next boot tries it again (the default entry's kernel) with a fresh count. If it fails again ({attempts} attempts in a row that never reach userspace), {loader} boots the maintenance entry of {} again.",
                good.unwrap_or("the last good kernel")
            ),
            Message::Enabled => f.write_str(
                "umm enabled: unclean boots are counted and crash loops stop in maintenance.",
            ),
            Message::AlreadyDisabled => f.write_str("umm is already disabled."),
            Message::Disabled => f.write_str(
                "umm disabled: nothing is counted or enforced, and boots are never delayed.",
            ),
            Message::MenuUpdated => f.write_str("Boot menu updated (update-grub)."),
            _ => Ok(()),
        }
    }

    /// Fleet coordination.
    fn fmt_fleet(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::FleetTaken {
                group,
                backend,
                id,
                already,
            } => write!(
                f,
                "{} a slot of fleet group {group:?} ({backend}) as {id}.",
                if *already { "Holding" } else { "Took" }
            ),
            Message::FleetWaiting {
                group,
                why,
                next_in,
                left,
            } => write!(
                f,
                "Waiting for a slot of fleet group {group:?}: {why}; next try in {next_in} ({left} left)."
            ),
            Message::FleetForced { why } => write!(
                f,
                "umm on: --force: going into maintenance without a fleet slot ({why}); recorded in the episode"
            ),
            Message::FleetReleased { group, id } => {
                write!(f, "Gave back the slot of fleet group {group:?} ({id}).")
            }
            Message::FleetReleasedLate { group, id } => write!(
                f,
                "umm: the pending release of the slot of fleet group {group:?} ({id}) landed"
            ),
            Message::FleetReleasePending { group, error } => write!(
                f,
                "umm: warning: the slot of fleet group {group:?} could not be given back: {error}; the release stays pending and is retried every 10 minutes (umm-fleet-retry.timer, or cron), at every boot and at every umm run as root that changes something (umm fleet release tries now)"
            ),
            Message::FleetKept { group } => write!(
                f,
                "umm: the slot of fleet group {group:?} is kept: not every service came back; fix the node, then `umm fleet release` gives it back"
            ),
            _ => Ok(()),
        }
    }
}

/// Each failed hook's name and result, then its last lines of output.
fn hook_failure_lines(records: &[HookRecord]) -> String {
    let lines: Vec<String> = records
        .iter()
        .filter(|r| !r.ok)
        .flat_map(|r| {
            std::iter::once(format!("{}: {}", hook_name(r), r.result))
                .chain(r.output_tail.iter().map(|line| format!("    {line}")))
        })
        .collect();
    lines.join("\n")
}

/// The check after leaving: failed units, then services not running again.
fn write_after_leaving(
    f: &mut fmt::Formatter<'_>,
    failed_units: &[String],
    verify: Option<&VerifyResult>,
) -> fmt::Result {
    write!(f, "Failed units: {}", list_or_none(failed_units))?;
    match verify {
        Some(v) if !v.not_back.is_empty() => write!(
            f,
            "\nNot running again ({}): {}",
            v.compared_with,
            v.not_back.join(", ")
        ),
        _ => Ok(()),
    }
}

/// The maintenance banner: the console's (/run/issue.d), the ssh login's
/// (/run/motd.d), and what the maintenance worker prints.
pub fn banner_text(m: &Maintenance) -> String {
    let since = rfc3339(m.since.unwrap_or(m.requested));
    // Not where from: the console banner is shown before anyone logs in,
    // and the address is root's to see (`umm status`).
    let by = m
        .requested_by
        .as_ref()
        .map(|r| format!(", requested by {}", r.user))
        .unwrap_or_default();
    format!(
        "\n*** MAINTENANCE MODE (umm) ***\n\
         This node is in maintenance since {since}, reason: {}{by}.\n\
         Only networking, sshd and console logins run; the normal services are NOT started.\n\
         Leave with: umm off          (continue this boot into normal operation)\n\
         \x20       or: umm off reboot   (reboot into normal operation)\n\
         Details:    umm status\n\n",
        m.reason.as_str()
    )
}

/// Prints `message` on its stream. Never aborts (see `print`).
pub fn say(message: &Message) {
    match message {
        // The banner is a block of its own, printed as it is.
        Message::Banner(text) => out!("{text}"),
        // Nothing failed: nothing to say.
        Message::HookFailures(records) if records.iter().all(|r| r.ok) => {}
        m if m.to_stderr() => errln!("{m}"),
        m => outln!("{m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_go_to_stdout_and_refusals_to_stderr() {
        assert!(!Message::Cancelled.to_stderr());
        assert!(Message::NotReachedYet.to_stderr());
        assert!(Message::Refused {
            command: "on",
            why: "x".into()
        }
        .to_stderr());
    }

    #[test]
    fn lists_say_none_when_empty() {
        let m = Message::AfterLeaving {
            failed_units: &[],
            verify: None,
        };
        assert_eq!(m.to_string(), "Failed units: none");
        let units = ["a.service".to_string(), "b.service".to_string()];
        let m = Message::NotReached {
            seconds: "1.5",
            failed_units: &units,
        };
        assert!(m
            .to_string()
            .contains("failed units: a.service, b.service;"));
    }
}

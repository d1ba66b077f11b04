//! The operators' commands and the init system's entry points: thin
//! steps that load what they need (`sys`), apply a rule (`rules`), save,
//! ask the outside systems to act (`init`, `hooks`, `bootmenu`), and hand
//! what happened to `output`.
//!
//! - `status`: `umm status`, `umm history`;
//! - `enter`: `umm on`, `umm check` (and `umm on --dry-run`);
//! - `leave`: `umm off` (resume, or reboot) and the finishing of leaving
//!   (`finish`: the off.d hooks and the check, once per episode);
//! - `switch`: `umm enable`, `umm disable`; `boot_entries`: the boot menu;
//! - `boot`: the boot-time decision and counting, and the clean-shutdown
//!   and uptime records; `generator`: the systemd generator;
//!   `maintenance`: the work of a maintenance boot; `pause`: holding a
//!   sysvinit or upstart boot;
//! - `halt`: the group's roll halted by a failed `umm on --then`;
//! - `reboot`: a planned reboot (`umm on`, `umm off reboot`) by kexec or
//!   through the firmware, and sysvinit's last step of it (`umm internal
//!   kexec-exec`).

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::hooks;
use crate::init::InitSystem;
use crate::model::hook::HookRecord;
use crate::model::settings::Settings;
use crate::model::state::State;
use crate::output::message::{say, Message, Overridden};
use crate::sys::clock::Clock;
use crate::sys::config::{self, InUse, Sources};
use crate::sys::journal;
use crate::sys::paths::{self, Root};
use crate::sys::store;

pub mod boot;
pub mod boot_entries;
pub mod boot_loader;
pub mod enter;
pub mod finish;
pub mod fleet;
pub mod generator;
pub mod halt;
pub mod leave;
pub mod maintenance;
pub mod pause;
pub mod queue;
pub mod reboot;
pub mod rolling;
pub mod status;
pub mod switch;

/// What every command works with: the root prefix, the clock, the init system.
pub struct Context {
    pub root: Root,
    pub clock: Box<dyn Clock>,
    pub init: Box<dyn InitSystem>,
}

/// How a command ended, as its exit status says (docs/commands.md: 0 done, 1
/// refused or failed; 2, a usage error, is the command line's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked, or there was nothing to do.
    Done,
    /// It changed nothing: refused, vetoed, or a check failed.
    Refused,
    /// It acted, and something did not come out right (the normal target
    /// not reached, services not back).
    Failed,
    /// `umm internal fleet-retry`: the release is still pending and will be
    /// tried again (exit 75, EX_TEMPFAIL: umm-fleet-retry.service lists it
    /// in SuccessExitStatus=, so a coordinator that is down does not leave
    /// a failed unit behind; the journal and the metric say it).
    Later,
}

/// The exit status of `Outcome::Later` (sysexits' EX_TEMPFAIL).
pub const EXIT_LATER: u8 = 75;

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        match outcome {
            Outcome::Done => ExitCode::SUCCESS,
            Outcome::Refused | Outcome::Failed => ExitCode::from(1),
            Outcome::Later => ExitCode::from(EXIT_LATER),
        }
    }
}

/// A refusal: logged, and said in one line.
fn refused(command: &str, why: impl std::fmt::Display) -> Outcome {
    let why = why.to_string();
    journal::log(
        log::Level::Warn,
        &journal::Change::Refused { command, why: &why },
        format_args!("refused umm {command}: {why}"),
    );
    say(&Message::Refused { command, why });
    Outcome::Refused
}

fn require_root(command: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("umm {command} changes the node's boot and needs root; try: sudo umm {command}");
    }
    Ok(())
}

/// Settings for commands that must work even with a broken configuration
/// (leaving maintenance, switching umm off): warn, and use what the boot
/// would use (the last configuration that loaded, or the defaults). The
/// third value: the configuration loaded (and may be recorded).
fn settings_or_fallback(root: &Root, command: &str) -> (Settings, Sources, bool) {
    let (settings, sources, in_use, err) = config::load_at_boot(root);
    if let Some(e) = err {
        say(&Message::ConfigFallback {
            command,
            error: e.to_string(),
            fallback: in_use.describe() + &config::still_disabled(&sources),
        });
    }
    (settings, sources, in_use == InUse::Loaded)
}

/// Takes the state's lock, and says what was wrong with the state file.
fn lock(root: &Root, command: &str) -> Result<store::Locked> {
    let locked = store::lock(root)?;
    for problem in locked.problem.iter().chain(&locked.notes) {
        say(&Message::StateWarning { command, problem });
    }
    Ok(locked)
}

/// Saves `next` under the lock, and says on stderr what the operator must
/// know now (the early copy could not be refreshed).
fn save(locked: &mut store::Locked, next: State) -> Result<()> {
    let saved = locked.save(next)?;
    refresh_metrics(locked.root(), &locked.state);
    if let Some(problem) = saved.early_copy_problem {
        say(&Message::EarlyCopyStale(&problem));
    }
    Ok(())
}

/// Rewrites `umm.prom` for node_exporter from the state just saved (every
/// state change, and every boot, goes through `save`). The settings are
/// read again, quietly: the command said already what is wrong with them.
/// A failure is logged, never the command's.
fn refresh_metrics(root: &Root, state: &State) {
    let settings = config::load_at_boot(root).0;
    let Some(dir) = settings.metrics_dir.as_deref() else {
        return;
    };
    let text = crate::output::metrics::render(state, &settings);
    if let Err(e) = crate::sys::textfile::write(root, dir, &text) {
        log::warn!(
            "cannot write the metrics in {}: {e}{}",
            root.join(dir).display(),
            store::hint(&e)
        );
    }
}

/// A hook phase that may stop the command (check, pre-on, pre-off): says
/// which hooks failed; without --force, refuses with `refusal` (given the
/// failed hooks' names) and returns false; with it, says it goes on anyway.
/// Both are logged.
fn hooks_allow<'a>(
    records: &[HookRecord],
    force: bool,
    refusal: impl Fn(String) -> Message<'a>,
    overridden: Overridden,
) -> bool {
    let failed = hooks::failed_names(records).join(", ");
    if failed.is_empty() {
        return true;
    }
    say(&Message::HookFailures(records));
    if !force {
        let message = refusal(failed);
        let command = match &message {
            Message::VetoedByPreOff { command, .. } => *command,
            _ => "on",
        };
        journal::log(
            log::Level::Warn,
            &journal::Change::Refused {
                command,
                why: &message.to_string(),
            },
            format_args!("{message}"),
        );
        say(&message);
        return false;
    }
    let message = Message::Overriding {
        what: overridden,
        failed: &failed,
    };
    log::warn!("--force: {message}");
    say(&message);
    true
}

/// The state as a user who is not root may see it: the public summary
/// every save writes; before the first save by this umm, the public part
/// of state.json if it is readable (older umm wrote it for everyone).
fn read_public(root: &Root) -> store::Loaded {
    let public = store::read(&root.path(paths::PUBLIC_STATUS));
    if public.problem.is_some() || root.path(paths::PUBLIC_STATUS).exists() {
        return public;
    }
    let mut loaded = store::read(&root.path(paths::STATE));
    if loaded.unreadable {
        // Not readable by this user, and nothing public written yet.
        return store::Loaded::default();
    }
    loaded.state = loaded.state.public();
    loaded
}

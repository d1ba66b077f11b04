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
//!   sysvinit or upstart boot.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::init::InitSystem;
use crate::model::settings::Settings;
use crate::model::state::State;
use crate::rules::Refusal;
use crate::sys::clock::Clock;
use crate::sys::config::{self, InUse, Sources};
use crate::sys::paths::Root;
use crate::sys::store;

pub mod boot;
pub mod boot_entries;
pub mod enter;
pub mod finish;
pub mod generator;
pub mod leave;
pub mod maintenance;
pub mod pause;
pub mod status;
pub mod switch;

/// What every command works with: the root prefix, the clock, the init system.
pub struct Context {
    pub root: Root,
    pub clock: Box<dyn Clock>,
    pub init: Box<dyn InitSystem>,
}

/// A refusal: printed as one line, exit status 1.
fn refused(what: &str, r: &Refusal) -> ExitCode {
    log::warn!("refused umm {what}: {r}");
    errln!("umm {what}: refused: {r}");
    ExitCode::from(1)
}

fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("umm {what} changes the node's boot and needs root; try: sudo umm {what}");
    }
    Ok(())
}

/// Settings for commands that must work even with a broken configuration
/// (leaving maintenance, switching umm off): warn, and use what the boot
/// would use (the last configuration that loaded, or the defaults).
fn settings_or_fallback(root: &Root, what: &str) -> (Settings, Sources, bool) {
    let (settings, sources, in_use, err) = config::load_at_boot(root);
    if let Some(e) = err {
        errln!("umm {what}: warning: {e}; {}", in_use.describe());
    }
    (settings, sources, in_use == InUse::Loaded)
}

fn warn_problem(what: &str, locked: &store::Locked) {
    for p in locked.problem.iter().chain(&locked.notes) {
        errln!("umm {what}: warning: {p}");
    }
}

/// Saves `next` under the lock, and says on stderr what the operator must
/// know now (the early copy could not be refreshed).
fn save(locked: &mut store::Locked, next: State) -> Result<()> {
    let saved = locked.save(next)?;
    if let Some(problem) = saved.early_copy_problem {
        errln!("umm: warning: {problem}");
    }
    Ok(())
}

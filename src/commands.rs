//! The operator's commands: status, on, off, enable, disable. Each loads
//! what it needs, applies a rule from `decide`, saves, and tells the init
//! system what to do.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::clock::Clock;
use crate::config::{self, Settings};
use crate::decide::{self, Ended, OffAction, Refusal};
use crate::init::InitSystem;
use crate::paths::{self, Root};
use crate::state::Requester;
use crate::status::{self, shell_words};
use crate::store;

/// What every command works with: the root prefix, the clock, the init system.
pub struct Ctx {
    pub root: Root,
    pub clock: Box<dyn Clock>,
    pub init: Box<dyn InitSystem>,
}

/// A refusal: printed as one line, exit status 1.
fn refused(what: &str, r: &Refusal) -> ExitCode {
    log::warn!("refused umm {what}: {r}");
    eprintln!("umm {what}: refused: {r}");
    ExitCode::from(1)
}

fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("umm {what} changes the node's boot and needs root; try: sudo umm {what}");
    }
    Ok(())
}

/// Settings for commands that must work even with a broken configuration
/// (leaving maintenance, switching umm off): warn and use the defaults.
fn settings_or_defaults(root: &Root, what: &str) -> Settings {
    match config::load(root) {
        Ok((s, _)) => s,
        Err(e) => {
            eprintln!("umm {what}: warning: {e}; using the defaults");
            Settings::default()
        }
    }
}

fn warn_problem(what: &str, problem: &Option<String>) {
    if let Some(p) = problem {
        eprintln!("umm {what}: warning: {p}");
    }
}

/// Who asked: the user behind sudo, and the ssh client's address.
fn requester() -> Requester {
    let user = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
    let from = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| c.split_whitespace().next().map(str::to_string));
    Requester { user, from }
}

pub fn status(ctx: &Ctx, json: bool) -> Result<ExitCode> {
    let (settings, sources, config_error) = match config::load(&ctx.root) {
        Ok((s, src)) => (s, src, None),
        Err(e) => (Settings::default(), Default::default(), Some(e.to_string())),
    };
    let loaded = store::read(&ctx.root.path(paths::STATE));
    let this_boot = ctx
        .clock
        .boot_id()
        .ok()
        .and_then(|id| store::read_boot_decision(&ctx.root, &id));
    let inputs = status::Inputs {
        state: &loaded.state,
        state_problem: loaded.problem.as_deref(),
        settings: &settings,
        sources: &sources,
        config_error: config_error.as_deref(),
        this_boot: this_boot.as_ref(),
        init: ctx.init.name(),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status::to_json(&inputs))?
        );
    } else {
        println!("{}", status::to_text(&inputs));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn on(ctx: &Ctx, _force: bool, argv: Vec<String>) -> Result<ExitCode> {
    require_root("on")?;
    let (settings, _) = config::load(&ctx.root)?;
    let mut locked = store::lock(&ctx.root)?;
    warn_problem("on", &locked.problem);
    let who = requester();
    let next = match decide::request(
        &locked.state,
        settings.policy(),
        ctx.clock.now(),
        Some(who.clone()),
        argv,
    ) {
        Ok(next) => next,
        Err(r) => return Ok(refused("on", &r)),
    };
    let scheduled = next
        .maintenance
        .as_ref()
        .and_then(|m| m.command.as_ref())
        .map(|c| format!("; scheduled command: {}", shell_words(&c.argv)))
        .unwrap_or_default();
    locked.save(next)?;
    drop(locked);
    let from = who.from.map(|f| format!(" from {f}")).unwrap_or_default();
    log::info!(
        "maintenance requested by {}{from} for the next boot{scheduled}",
        who.user
    );
    println!("Maintenance requested{scheduled}. Rebooting cleanly into maintenance mode.");
    if let Err(e) = ctx.init.reboot() {
        log::error!("reboot into maintenance failed: {e:#}");
        bail!("{e:#}; the request is saved: reboot by hand to enter maintenance, or run `umm off` to cancel it");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn off(ctx: &Ctx, action: OffAction, wait: Option<std::time::Duration>) -> Result<ExitCode> {
    require_root("off")?;
    let what = if action == OffAction::Reboot {
        "off reboot"
    } else {
        "off"
    };
    let _ = settings_or_defaults(&ctx.root, what);
    let mut locked = store::lock(&ctx.root)?;
    warn_problem(what, &locked.problem);
    let (next, ended) = match decide::off(&locked.state, ctx.clock.now(), action) {
        Ok(r) => r,
        Err(r) => return Ok(refused(what, &r)),
    };
    locked.save(next)?;
    drop(locked);
    remove_banners(&ctx.root);
    match (ended, action) {
        (Ended::WasPending, OffAction::Resume) => {
            log::info!("pending maintenance request cancelled by umm off");
            println!("Cancelled the maintenance request; the next boot will be normal.");
            Ok(ExitCode::SUCCESS)
        }
        (_, OffAction::Reboot) => {
            log::info!("maintenance ended by umm off reboot; rebooting into normal operation");
            println!("Maintenance ended. Rebooting cleanly into normal operation.");
            ctx.init.reboot()?;
            Ok(ExitCode::SUCCESS)
        }
        (Ended::WasActive, OffAction::Resume) => resume(ctx, wait),
    }
}

/// Continues the paused boot into the normal target and reports.
fn resume(ctx: &Ctx, wait: Option<std::time::Duration>) -> Result<ExitCode> {
    mark_resumed(ctx)?;
    log::info!("maintenance ended by umm off; resuming the normal target");
    println!("Maintenance ended. Resuming the boot into the normal target...");
    let r = ctx.init.resume(wait)?;
    if !r.waited {
        println!("Resume started; not waiting (--no-wait). Check with: umm status");
        return Ok(ExitCode::SUCCESS);
    }
    let secs = r.elapsed.as_secs_f64();
    if r.failed_units.is_empty() {
        println!("Failed units: none");
    } else {
        println!("Failed units: {}", r.failed_units.join(", "));
    }
    if r.reached {
        log::info!(
            "normal target reached {secs:.1}s after umm off; failed units: {:?}",
            r.failed_units
        );
        println!("Normal target reached in {secs:.1} s.");
        Ok(ExitCode::SUCCESS)
    } else {
        log::error!(
            "normal target not reached {secs:.1}s after umm off; failed units: {:?}",
            r.failed_units
        );
        eprintln!("umm off: the normal target was not reached after {secs:.1} s; see `systemctl --failed` and the journal");
        Ok(ExitCode::from(1))
    }
}

/// Records in /run that this boot was resumed, so that the generator (run
/// again by daemon-reload) stops pointing default.target at maintenance.
fn mark_resumed(ctx: &Ctx) -> Result<()> {
    let boot_id = ctx.clock.boot_id()?;
    let mut decision =
        store::read_boot_decision(&ctx.root, &boot_id).unwrap_or(store::BootDecision {
            boot_id,
            mode: crate::state::Mode::Maintenance,
            reason: None,
            decided_by: "boot".into(),
            skipped_by_cmdline: false,
            resumed: false,
        });
    decision.resumed = true;
    store::write_boot_decision(&ctx.root, &decision)
}

pub fn remove_banners(root: &Root) {
    for banner in [paths::MOTD, paths::ISSUE] {
        let _ = std::fs::remove_file(root.path(banner));
    }
}

pub fn enable(ctx: &Ctx) -> Result<ExitCode> {
    require_root("enable")?;
    let (settings, sources) = match config::load(&ctx.root) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("umm enable: warning: {e}; using the defaults");
            (Settings::default(), Default::default())
        }
    };
    if !settings.enabled {
        let r#where = sources
            .enabled_from
            .map(|(f, l)| format!(" ({}:{l})", f.display()))
            .unwrap_or_default();
        eprintln!(
            "umm enable: refused: the configuration disables umm{where}; set enabled = true there"
        );
        return Ok(ExitCode::from(1));
    }
    let mut locked = store::lock(&ctx.root)?;
    warn_problem("enable", &locked.problem);
    if locked.state.switch_on {
        println!("umm is already enabled.");
        return Ok(ExitCode::SUCCESS);
    }
    let next = decide::enable(&locked.state);
    locked.save(next)?;
    log::info!("umm enabled: unclean boots are counted from now on");
    println!("umm enabled: unclean boots are counted and crash loops stop in maintenance.");
    Ok(ExitCode::SUCCESS)
}

pub fn disable(ctx: &Ctx) -> Result<ExitCode> {
    require_root("disable")?;
    let mut locked = store::lock(&ctx.root)?;
    warn_problem("disable", &locked.problem);
    if !locked.state.switch_on {
        println!("umm is already disabled.");
        return Ok(ExitCode::SUCCESS);
    }
    let next = match decide::disable(&locked.state) {
        Ok(next) => next,
        Err(r) => return Ok(refused("disable", &r)),
    };
    locked.save(next)?;
    log::info!("umm disabled: nothing is counted or enforced, boots are not delayed");
    println!("umm disabled: nothing is counted or enforced, and boots are never delayed.");
    Ok(ExitCode::SUCCESS)
}

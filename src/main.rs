// The same rules as the library (see src/lib.rs).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use umm::cli::{BootCommand, Cli, Command, FleetCommand, Internal, OffArg, ThenArg};
use umm::cmd::{self, Context, Outcome};
use umm::errln;
use umm::init;
use umm::model::rolling::Then;
use umm::model::settings::RebootMethod;
use umm::model::state::OffAction;
use umm::rules::ResetCause;
use umm::sys::logging::{self, Target};
use umm::sys::{clock, paths};

/// A usage error: clap's own message, except for `umm on`, where a word
/// clap did not expect is most likely a command written without `--` or a
/// mistyped option, and the one-line hint says which.
fn usage_error(e: clap::Error) -> ExitCode {
    let unexpected = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if e.kind() == ErrorKind::UnknownArgument => Some(arg),
        _ => None,
    };
    let subcommand = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    match unexpected {
        Some(arg) if subcommand.as_deref() == Some("on") && arg.starts_with('-') => {
            errln!(
                "umm on: unknown option {arg}; the options are --force, --wait [SPAN], --dry-run and --json, and a command to schedule goes after -- (umm on -- COMMAND ...); nothing was changed"
            );
        }
        Some(arg) if subcommand.as_deref() == Some("on") => {
            errln!(
                "umm on: unexpected word {arg:?}: put the command after -- (umm on -- COMMAND ...); nothing was changed"
            );
        }
        _ => {
            // clap writes --help and --version to stdout, errors to stderr;
            // it returns write errors (a closed pipe) instead of panicking.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // Tests only: the fail points FAILPOINTS asks for (sys::failpoint).
    #[cfg(feature = "failpoints")]
    let _failpoints = umm::sys::failpoint::setup();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let root = paths::Root::from_env();
    logging::init(&root, log_target(&cli.command));
    let result = init::select(&root).and_then(|init| {
        let ctx = Context {
            clock: Box::new(clock::SystemClock::new(&root)),
            init,
            root,
        };
        run(&ctx, cli.command)
    });
    match result {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            log::error!("{e:#}");
            errln!("umm: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Where log lines go: the generator runs before any log daemon (the
/// kernel log); the units' entry points also show them on a console.
fn log_target(command: &Command) -> Target {
    match command {
        Command::Internal {
            command: Internal::Generator { .. },
        } => Target::Kmsg,
        Command::Internal { .. } => Target::Service,
        _ => Target::Command,
    }
}

/// The command line's command, to its entry point in `cmd`.
fn run(ctx: &Context, command: Command) -> anyhow::Result<Outcome> {
    if gives_back_owed_slots(&command) && nix::unistd::geteuid().is_root() {
        cmd::fleet::retry_owed(ctx);
    }
    match command {
        Command::Status { json } => cmd::status::status(ctx, json),
        Command::On {
            dry_run: true,
            json,
            command,
            ..
        } => cmd::enter::check(ctx, json, Some(command)),
        Command::On {
            force,
            wait,
            queue,
            then,
            command,
            kexec,
            firmware,
            ..
        } => {
            let then = then_flag(then);
            if let Some(span) = queue {
                return cmd::queue::enqueue(ctx, span, then, command);
            }
            let method = method_flag(kexec, firmware);
            let options = cmd::enter::OnOptions {
                force,
                wait,
                then,
                method,
            };
            cmd::enter::on(ctx, options, command)
        }
        Command::Fleet { command } => match command {
            FleetCommand::Status { json } => cmd::fleet::status(ctx, json),
            FleetCommand::Release { id, force } => cmd::fleet::release(ctx, id, force),
        },
        Command::Check { json } => cmd::enter::check(ctx, json, None),
        Command::History { json } => cmd::status::history(ctx, json),
        Command::Off {
            action,
            force,
            no_wait,
            timeout,
            kexec,
            firmware,
        } => {
            let (action, method) = (off_action(action), method_flag(kexec, firmware));
            cmd::leave::off(ctx, action, force, (!no_wait).then_some(timeout), method)
        }
        Command::Boot { command } => match command {
            BootCommand::Retry => cmd::boot_loader::retry(ctx),
        },
        Command::Enable => cmd::switch::enable(ctx),
        Command::Disable => cmd::switch::disable(ctx),
        Command::Internal { command } => run_internal(ctx, command),
    }
}

/// A fleet slot still owed is given back by any command run as root (not
/// the init system's entry points, which do it where they may). Commands
/// that only look (status, history, check, on --dry-run) never talk to the
/// coordinator.
fn gives_back_owed_slots(command: &Command) -> bool {
    !matches!(
        command,
        Command::Internal { .. }
            | Command::Fleet { .. }
            | Command::Status { .. }
            | Command::History { .. }
            | Command::Check { .. }
            | Command::On { dry_run: true, .. }
    )
}

/// `umm off` or `umm off reboot`.
fn off_action(action: Option<OffArg>) -> OffAction {
    match action {
        Some(OffArg::Reboot) => OffAction::Reboot,
        None => OffAction::Resume,
    }
}

/// `--then`: what the maintenance boot does once COMMAND succeeded.
fn then_flag(then: Option<ThenArg>) -> Then {
    match then {
        None => Then::Stay,
        Some(ThenArg::Off) => Then::Off,
        Some(ThenArg::Reboot) => Then::Reboot,
    }
}

/// `--kexec` or `--firmware` (clap refuses both at once).
fn method_flag(kexec: bool, firmware: bool) -> Option<RebootMethod> {
    match (kexec, firmware) {
        (true, _) => Some(RebootMethod::Kexec),
        (_, true) => Some(RebootMethod::Firmware),
        _ => None,
    }
}

/// `umm internal ...`: what the units, the generator and the boot-menu
/// scripts run.
fn run_internal(ctx: &Context, command: Internal) -> anyhow::Result<Outcome> {
    match command {
        Internal::Boot => cmd::boot::boot(ctx),
        Internal::CleanShutdown => cmd::boot::record_reset(ctx, ResetCause::CleanShutdown, false),
        Internal::UptimeReached { wait } => {
            cmd::boot::record_reset(ctx, ResetCause::UptimeReached, wait)
        }
        Internal::Pause => cmd::pause::pause(ctx),
        Internal::KexecExec => cmd::reboot::kexec_exec(ctx),
        Internal::Maintenance => cmd::maintenance::maintenance(ctx),
        Internal::AfterResume => cmd::finish::after_resume(ctx),
        Internal::FleetRetry => cmd::fleet::retry_pending(ctx),
        Internal::Queue => cmd::queue::run(ctx),
        Internal::BlsSync { remove } => cmd::boot_entries::bls_sync(ctx, remove),
        Internal::Generator {
            normal_dir,
            early_dir,
            late_dir: _,
        } => {
            let early = early_dir.unwrap_or_else(|| normal_dir.clone());
            cmd::generator::run(ctx, &normal_dir, &early)
        }
    }
}

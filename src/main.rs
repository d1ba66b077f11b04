use std::process::ExitCode;

use clap::Parser;

use umm::cli::{Cli, Command, Internal, OffArg};
use umm::commands::{self, Ctx};
use umm::decide::{OffAction, ResetCause};
use umm::logging::{self, Target};
use umm::{boot, clock, generator, init, paths};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = paths::Root::from_env();
    logging::init(
        &root,
        match &cli.command {
            Command::Internal {
                command: Internal::Generator { .. },
            } => Target::Kmsg,
            Command::Internal { .. } => Target::Service,
            _ => Target::Command,
        },
    );
    let ctx = Ctx {
        clock: Box::new(clock::SystemClock::new(&root)),
        init: init::detect(&root),
        root,
    };
    let result = match cli.command {
        Command::Status { json } => commands::status(&ctx, json),
        Command::On {
            dry_run: true,
            json,
            command,
            ..
        } => commands::check(&ctx, json, Some(command)),
        Command::On { force, command, .. } => commands::on(&ctx, force, command),
        Command::Check { json } => commands::check(&ctx, json, None),
        Command::History { json } => commands::history(&ctx, json),
        Command::Off {
            action,
            force,
            no_wait,
            timeout,
        } => {
            let action = match action {
                Some(OffArg::Reboot) => OffAction::Reboot,
                None => OffAction::Resume,
            };
            commands::off(&ctx, action, force, (!no_wait).then_some(timeout))
        }
        Command::Enable => commands::enable(&ctx),
        Command::Disable => commands::disable(&ctx),
        Command::Internal { command } => match command {
            Internal::Boot => boot::boot(&ctx),
            Internal::CleanShutdown => boot::record_reset(&ctx, ResetCause::CleanShutdown, false),
            Internal::UptimeReached { wait } => {
                boot::record_reset(&ctx, ResetCause::UptimeReached, wait)
            }
            Internal::Pause => boot::pause(&ctx),
            Internal::Maintenance => boot::maintenance(&ctx),
            Internal::AfterResume => {
                commands::after_resume(&ctx).map(|_| std::process::ExitCode::SUCCESS)
            }
            Internal::BlsSync { remove } => umm::grub::bls_sync_command(&ctx, remove),
            Internal::Generator {
                normal_dir,
                early_dir,
                late_dir: _,
            } => {
                let early = early_dir.unwrap_or_else(|| normal_dir.clone());
                generator::run(&ctx, &normal_dir, &early)
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("umm: {e:#}");
            ExitCode::from(1)
        }
    }
}

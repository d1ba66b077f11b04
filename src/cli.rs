//! The command line, in one place: `umm --help`, the man page and the shell
//! completions are all generated from `Cli`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("UMM_GIT_REV"), ")");

const ABOUT: &str = "Unified maintenance mode: pause a node's boot in a minimal state \
(network, sshd, console login), and stop a node that crashes in a loop";

const AFTER_HELP: &str = "\
Maintenance mode is a boot that stops early: local filesystems, networking, sshd and \
console logins run, nothing else is started. `umm on` reboots into it; `umm off` lets \
the paused boot continue into the normal target.

Unclean boots are counted: after more than reboot_count of them in a row, without a \
clean shutdown or counter_reset_time of uptime in between, the next boot stops in \
maintenance (reason crash-loop) and stays there until `umm off`.

Leaving is one transaction: after `umm off` the state is `resuming` until the normal \
target is reached and the off.d hooks and the service check have run, once, whoever \
gets there first (`umm off` waiting, `umm off` run again, umm-after.service, or the \
next boot). If the resume fails, times out or is interrupted, run `umm off` again \
(the pre-off hooks do not run again) or `umm off reboot`.

A command to schedule goes after `--`: `umm on -- apt-get -y upgrade`. Any other word \
is a usage error, so a mistyped option never becomes the command. Time spans (as in \
--timeout and umm.toml) are 1s to 30d.

On the kernel command line, `umm` or `umm=on` forces maintenance for that boot and \
`umm=off` skips it (a pending request is kept).

Files: /etc/umm/umm.toml, /etc/umm/umm.toml.d/*.toml, /var/lib/umm/state.json.
Exit status: 0 done, 1 refused or failed, 2 usage error.";

#[derive(Parser, Debug)]
#[command(name = "umm", version = VERSION, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show whether the node is operational, pending, in maintenance or resuming
    /// (any user; who asked, the command and hook results: root only)
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Reboot cleanly into maintenance mode, then run COMMAND there
    On {
        /// Enter even if a check (/etc/umm/check.d) or pre-on hook fails, no
        /// [rolling] window is open or the health gate is closed
        #[arg(long)]
        force: bool,
        /// Run the checks and show what would happen; change nothing
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: machine-readable output
        #[arg(long, requires = "dry_run")]
        json: bool,
        /// Reboot by kexec this once, whatever [reboot] method says (falls
        /// back to the firmware, saying why, where kexec cannot work)
        #[arg(long, conflicts_with = "firmware")]
        kexec: bool,
        /// Reboot through the firmware and the boot loader this once,
        /// whatever [reboot] method says
        #[arg(long)]
        firmware: bool,
        /// With a fleet back-end ([fleet] in umm.toml): when no slot of the
        /// group is free, try again (backoff with jitter, progress shown)
        /// for up to SPAN (default 30min; 1s to 30d)
        #[arg(long, value_name = "SPAN", num_args = 0..=1, default_missing_value = "30min", value_parser = parse_span_arg, conflicts_with = "queue")]
        wait: Option<std::time::Duration>,
        /// Queue the request and return at once: the queue's tries wait for
        /// an open [rolling] window, a green gate, passing check.d hooks
        /// and a free fleet slot, for up to SPAN (default 24h), then reboot
        /// into maintenance. `umm off` cancels it
        #[arg(long, value_name = "SPAN", num_args = 0..=1, default_missing_value = "24h", value_parser = parse_span_arg, conflicts_with_all = ["dry_run", "force", "kexec", "firmware"])]
        queue: Option<std::time::Duration>,
        /// Once COMMAND exited 0 and the on.d hooks passed, leave maintenance
        /// by itself as `umm off` (`off`) or `umm off reboot` (`reboot`)
        /// would; a failure keeps the node in maintenance
        #[arg(long, value_enum, value_name = "off|reboot")]
        then: Option<ThenArg>,
        /// Command to run once maintenance is reached, after `--` (an argv
        /// list: no shell unless you write `sh -c '...'`). Without `--`,
        /// every word is an option: a mistyped one is a usage error, never a
        /// command
        // `last`: the command only after `--`, so that `umm on --dryrun`
        // is refused instead of being scheduled, and rebooting for it.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Leave maintenance: resume this boot into the normal target, or reboot;
    /// run it again to retry a resume that did not finish; with a pending
    /// request, cancel it
    Off {
        /// `reboot`: reboot into normal operation instead of resuming
        #[arg(value_enum)]
        action: Option<OffArg>,
        /// Leave even if a pre-off hook (/etc/umm/pre-off.d) fails
        #[arg(long)]
        force: bool,
        /// With `reboot`: by kexec this once, whatever [reboot] method says
        /// (falls back to the firmware, saying why, where kexec cannot work)
        #[arg(long, requires = "action", conflicts_with = "firmware")]
        kexec: bool,
        /// With `reboot`: through the firmware and the boot loader this
        /// once, whatever [reboot] method says
        #[arg(long, requires = "action")]
        firmware: bool,
        /// Start the resume and return without waiting for the normal target
        /// (umm-after.service finishes leaving once it is reached)
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the normal target (e.g. 90s, 10min; 1s to 30d)
        #[arg(long, default_value = "10min", value_parser = parse_span_arg)]
        timeout: std::time::Duration,
    },
    /// Run the checks of `umm on` and show what entering would do; change nothing
    Check {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show the last maintenance episodes
    History {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Fleet coordination ([fleet] in umm.toml): the group's slots, and
    /// giving one back
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Boot-loader counting (GRUB, systemd-boot): after a kernel that never
    /// reached userspace (umm status: "Boot failure")
    Boot {
        #[command(subcommand)]
        command: BootCommand,
    },
    /// Turn umm on (counting, enforcement, `umm on`)
    Enable,
    /// Turn umm off: nothing is counted or enforced, boots are never delayed
    Disable,
    /// Entry points for the init system (units, generator); not for people
    #[command(hide = true)]
    Internal {
        #[command(subcommand)]
        command: Internal,
    },
}

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Show the back-end, the group, its slots and holders, whether this
    /// node holds one, and a release still pending (any user)
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Give back this node's slot (kept after a check that was not clean,
    /// or still pending), or with --id a dead node's
    Release {
        /// The id of the node whose slot to give back
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// Give this node's slot back even while its maintenance is
        /// requested, in force or being left (the group may then let
        /// another node in while this one is out)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BootCommand {
    /// Clear the boot failure the boot loader recorded (GRUB's environment
    /// block; systemd-boot: the failed entry gets a fresh count), so that the
    /// next boot tries the failed kernel again; a new failure ends in
    /// maintenance on the last good kernel again
    Retry,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThenArg {
    Off,
    Reboot,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffArg {
    Reboot,
}

#[derive(Subcommand, Debug)]
pub enum Internal {
    /// Boot-time decision and counting (umm-boot.service)
    Boot,
    /// Record a clean shutdown of this boot (ExecStop of umm-shutdown.service)
    CleanShutdown,
    /// sysvinit, last in runlevel 6: boot the kernel umm loaded for this
    /// reboot, if it is still loaded; otherwise do nothing (umm-kexec)
    KexecExec,
    /// Record that this boot reached counter_reset_time of uptime (umm-uptime.timer)
    UptimeReached {
        /// Sleep until then first (init systems without timers)
        #[arg(long)]
        wait: bool,
    },
    /// sysvinit/upstart: hold a maintenance boot before the runlevel's services until `umm off`
    Pause,
    /// Run in a maintenance boot: banner, hooks, scheduled command (umm-maintenance.service)
    Maintenance,
    /// Once the normal target is reached: finish leaving maintenance (off.d hooks, verify) if an episode is resuming (umm-after.service)
    AfterResume,
    /// Give back a fleet slot whose release is pending: one try, bounded;
    /// with none pending, exits 0 at once without any network
    /// (umm-fleet-retry.timer; cron where there is no systemd)
    FleetRetry,
    /// Try a request queued by `umm on --queue`: with none due, exits 0 at
    /// once without any network (umm-queue.timer every minute; cron where
    /// there is no systemd)
    Queue,
    /// Write (or with --remove, delete) umm's entries in /boot/loader/entries
    /// (kernel-install plugin, rpm scriptlets, /etc/grub.d/42_umm)
    BlsSync {
        /// Remove all of umm's entries
        #[arg(long)]
        remove: bool,
    },
    /// systemd generator: point default.target at umm.target when maintenance is due
    Generator {
        normal_dir: PathBuf,
        early_dir: Option<PathBuf>,
        late_dir: Option<PathBuf>,
    },
}

/// The same rule as the spans of umm.toml (`timefmt::bounded`).
fn parse_span_arg(text: &str) -> Result<std::time::Duration, String> {
    crate::model::timefmt::parse_bounded_span(text)
}

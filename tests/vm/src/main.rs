//! umm-lab: runs VM scenarios against Debian guests under qemu (TCG).
//!
//!   umm-lab [--only NAME] [--keep] [--list] [--deb PATH]
//!
//! Each scenario prints `PASS name (12.3 s)` or `FAIL name (12.3 s): reason`;
//! the last line is `N passed, N failed`.

mod image;
mod scenarios;
mod vm;

use anyhow::{bail, ensure, Context, Result};
use image::BaseImage;
use std::collections::HashMap;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};
use vm::{run_with_deadline, Vm, BOOT_TIMEOUT};

/// A scenario gets a fresh overlay of its variant's base image.
struct Scenario {
    name: &'static str,
    variant: &'static str,
    about: &'static str,
    run: fn(&mut Ctx) -> Result<()>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "crash-loop",
        variant: "systemd",
        about: "3 unclean boots -> maintenance, nothing outside the keep-set started; umm off -> every service up",
        run: scenarios::crash_loop,
    },
    Scenario {
        name: "clean-reboots",
        variant: "systemd",
        about: "clean reboots never count; boot cost of umm",
        run: scenarios::clean_reboots,
    },
    Scenario {
        name: "uptime-reset",
        variant: "systemd",
        about: "counter_reset_time of uptime resets the count (timer follows the config)",
        run: scenarios::uptime_reset,
    },
    Scenario {
        name: "on-command",
        variant: "systemd",
        about: "umm on -- CMD: maintenance, CMD's exit code in status; umm off reboot -> normal",
        run: scenarios::on_command,
    },
    Scenario {
        name: "disabled",
        variant: "systemd",
        about: "disabled: a crash loop never enters; umm on refused",
        run: scenarios::disabled,
    },
    Scenario {
        name: "binary-removed",
        variant: "systemd",
        about: "umm binary removed: the node boots normally",
        run: scenarios::binary_removed,
    },
    Scenario {
        name: "grub-entries",
        variant: "systemd",
        about: "GRUB entries for every kernel; umm=on entry -> maintenance (cmdline); umm=off entry skips and keeps the request",
        run: scenarios::grub_entries,
    },
    Scenario {
        name: "package-lifecycle",
        variant: "systemd",
        about: "install, upgrade (state and config kept), remove, purge; normal boots and GRUB menu after each",
        run: scenarios::package_lifecycle,
    },
    Scenario {
        name: "hooks",
        variant: "systemd",
        about: "check veto; pre-on/on/off hooks in their boots; hung hook killed; umm off reports a failed service",
        run: scenarios::hooks,
    },
    Scenario {
        name: "sysvinit-crash-loop",
        variant: "sysvinit",
        about: "sysvinit: crash loop -> maintenance, cron not started; umm off -> cron running",
        run: scenarios::sysvinit_crash_loop,
    },
    Scenario {
        name: "sysvinit-on-command",
        variant: "sysvinit",
        about: "sysvinit: umm on -- CMD, off reboot, clean reboots not counted, disable",
        run: scenarios::sysvinit_on_command,
    },
    Scenario {
        name: "demo",
        variant: "systemd",
        about: "make demo: crash loop -> maintenance -> umm off, narrated",
        run: scenarios::demo,
    },
    Scenario {
        name: "sepvar",
        variant: "sepvar",
        about: "/var on its own filesystem: crash loop -> maintenance -> umm off",
        run: scenarios::sepvar,
    },
];

/// What a scenario works with: its overlays, its VM, the .deb under test.
pub struct Ctx {
    pub name: &'static str,
    pub variant: &'static str,
    base: BaseImage,
    /// target/vm-run/<scenario>: overlays, serial log, qemu log.
    work: PathBuf,
    overlays: Vec<PathBuf>,
    vm: Option<Vm>,
    deb: Option<PathBuf>,
}

impl Ctx {
    /// Boot the scenario's disks (again, if it was powered off) and wait for
    /// ssh. A VM still running from an earlier boot() is killed first.
    pub fn boot(&mut self) -> Result<&mut Vm> {
        self.vm = None;
        let mut vm = Vm::boot(&self.work, &self.overlays, &self.base.key)?;
        vm.wait_ssh(BOOT_TIMEOUT)?;
        Ok(self.vm.insert(vm))
    }

    /// The VM booted by [`Ctx::boot`].
    pub fn vm(&mut self) -> Result<&mut Vm> {
        self.vm.as_mut().context("no VM booted")
    }

    /// The .deb to test: --deb PATH, else the newest target/debian/umm_*_amd64.deb.
    pub fn deb(&self) -> Result<PathBuf> {
        if let Some(deb) = &self.deb {
            return Ok(deb.clone());
        }
        let dir = image::target_dir().join("debian");
        let newest = fs::read_dir(&dir)
            .with_context(|| format!("no --deb given and cannot read {}", dir.display()))?
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("umm_") && n.ends_with("_amd64.deb")
            })
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .map(|e| e.path());
        newest
            .with_context(|| format!("no --deb given and no umm_*_amd64.deb in {}", dir.display()))
    }
}

/// Install a .deb the way a user would: copy it to /root, `dpkg -i` it.
/// With `reboot`, reboot cleanly afterwards and wait for the new boot.
pub fn install_deb(vm: &mut Vm, deb: &Path, reboot: bool) -> Result<()> {
    let name = deb
        .file_name()
        .context("--deb path has no file name")?
        .to_string_lossy();
    let remote = format!("/root/{name}");
    vm.scp_to(deb, &remote)?;
    vm.ssh_ok(&format!("DEBIAN_FRONTEND=noninteractive dpkg -i {remote}"))?;
    if reboot {
        vm.reboot_clean()?;
    }
    Ok(())
}

// ------------------------------------------------------------------ runner

struct Opts {
    only: Option<String>,
    keep: bool,
    list: bool,
    deb: Option<PathBuf>,
}

const USAGE: &str = "usage: umm-lab [--only NAME] [--keep] [--list] [--deb PATH]";

fn parse_args() -> Result<Opts> {
    let mut opts = Opts {
        only: None,
        keep: false,
        list: false,
        deb: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => opts.only = Some(args.next().context("--only needs a NAME")?),
            "--keep" => opts.keep = true,
            "--list" => opts.list = true,
            "--deb" => opts.deb = Some(args.next().context("--deb needs a PATH")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    Ok(opts)
}

/// Install the host tools with apt-get if any is missing.
fn ensure_host_tools() -> Result<()> {
    let tools = [
        "qemu-system-x86_64",
        "qemu-img",
        "debootstrap",
        "sfdisk",
        "mke2fs",
        "debugfs",
        "ssh",
        "scp",
        "ssh-keygen",
    ];
    let missing: Vec<&str> = tools
        .into_iter()
        .filter(|t| {
            !std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
                .unwrap_or(false)
                // debootstrap & co live in /usr/sbin, not always on a user's PATH
                && !Path::new("/usr/sbin").join(t).is_file()
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing host tools (missing: {})", missing.join(" "));
    let apt = |args: &[&str]| -> Result<()> {
        let out = run_with_deadline(
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            Duration::from_secs(20 * 60),
        )?;
        ensure!(
            out.status.success(),
            "apt-get {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    };
    apt(&["update"])?;
    apt(&[
        "install",
        "-y",
        "qemu-system-x86",
        "qemu-utils",
        "debootstrap",
        "fdisk",
        "openssh-client",
        "e2fsprogs",
    ])
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Outcome of one scenario: Ok, or the reason plus the context (for logs).
fn run_one(
    s: &Scenario,
    opts: &Opts,
    bases: &mut HashMap<&'static str, BaseImage>,
) -> (Result<()>, Option<Ctx>) {
    let mut setup = || -> Result<Ctx> {
        if !bases.contains_key(s.variant) {
            bases.insert(s.variant, image::ensure_base(s.variant)?);
        }
        let base = &bases[s.variant];
        let work = image::target_dir().join("vm-run").join(s.name);
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        let overlays = image::create_overlays(base, &work)?;
        Ok(Ctx {
            name: s.name,
            variant: s.variant,
            base: base.clone(),
            work,
            overlays,
            vm: None,
            deb: opts.deb.clone(),
        })
    };
    let mut ctx = match setup() {
        Ok(ctx) => ctx,
        Err(e) => return (Err(e), None),
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| (s.run)(&mut ctx)))
        .unwrap_or_else(|p| Err(anyhow::anyhow!("panicked: {}", panic_message(&*p))));
    (result, Some(ctx))
}

/// Save serial log + journals to target/vm-logs/<scenario>/; returns the files.
fn save_failure_logs(name: &str, ctx: Option<&mut Ctx>) -> Vec<PathBuf> {
    let dir = image::target_dir().join("vm-logs").join(name);
    let Some(ctx) = ctx else {
        return Vec::new();
    };
    if let Some(vm) = ctx.vm.as_mut() {
        if let Ok(files) = vm.save_logs(&dir) {
            return files;
        }
    }
    // No VM (or it is gone): the serial log of all its boots is still on disk.
    let serial = ctx.work.join("serial.log");
    let dest = dir.join("serial.log");
    if fs::create_dir_all(&dir).is_ok() && fs::copy(&serial, &dest).is_ok() {
        return vec![dest];
    }
    Vec::new()
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    if opts.list {
        for s in SCENARIOS {
            println!("{:<16} {:<9} {}", s.name, s.variant, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&Scenario> = match &opts.only {
        Some(name) => match SCENARIOS.iter().find(|s| s.name == name) {
            Some(s) => vec![s],
            None => {
                eprintln!("no scenario named {name:?} (see --list)");
                return ExitCode::from(2);
            }
        },
        // `demo` repeats crash-loop's proof with narration: `make demo` only.
        None => SCENARIOS.iter().filter(|s| s.name != "demo").collect(),
    };
    if opts.keep && selected.len() != 1 {
        eprintln!("--keep needs --only NAME");
        return ExitCode::from(2);
    }
    if let Err(e) = ensure_host_tools() {
        eprintln!("{e:#}");
        return ExitCode::FAILURE;
    }

    let (mut passed, mut failed) = (0, 0);
    let mut bases = HashMap::new();
    for s in selected {
        let start = Instant::now();
        let _ = fs::remove_dir_all(image::target_dir().join("vm-logs").join(s.name));
        let (result, mut ctx) = run_one(s, &opts, &mut bases);
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                passed += 1;
                println!("PASS {} ({secs:.1} s)", s.name);
            }
            Err(e) => {
                failed += 1;
                let logs = save_failure_logs(s.name, ctx.as_mut());
                let logs: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
                // Full detail on stderr, one line on stdout.
                eprintln!("{} failed:\n{e:#}", s.name);
                let reason = format!("{e:#}").replace('\n', " | ");
                let reason: String = reason.chars().take(400).collect();
                println!(
                    "FAIL {} ({secs:.1} s): {reason}; logs: {}",
                    s.name,
                    if logs.is_empty() {
                        "none".into()
                    } else {
                        logs.join(" ")
                    }
                );
            }
        }
        if opts.keep {
            if let Some(ctx) = ctx.as_mut() {
                keep_running(ctx);
            }
        } else if let Some(ctx) = ctx {
            let work = ctx.work.clone();
            drop(ctx); // kills qemu
            let _ = fs::remove_dir_all(work);
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// --keep: leave the scenario's VM running (booting its disks again if the
/// scenario powered it off) and tell the user how to reach and stop it.
fn keep_running(ctx: &mut Ctx) {
    let running = ctx.vm.as_mut().is_some_and(|vm| vm.is_running());
    if !running {
        if let Err(e) = ctx.boot() {
            eprintln!("--keep: could not boot the VM again: {e:#}");
            return;
        }
    }
    let Some(vm) = ctx.vm.take() else { return };
    println!("kept VM: {}", vm.ssh_command());
    println!("kept VM: serial log {}", vm.serial_log().display());
    println!("kept VM: stop it with: kill {}", vm.detach());
}

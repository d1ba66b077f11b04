//! One scenario: set up from its inputs, run, reported, cleaned up.

use crate::ctx::Ctx;
use crate::image;
use crate::scenarios::Scenario;
use crate::scheduler::Inputs;
use crate::vm::Stats;
use anyhow::{bail, Result};
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs one scenario from `inputs` and prints its PASS or FAIL line.
pub fn run_scenario(
    s: &Scenario,
    inputs: Inputs,
    deb: &Path,
    keep: bool,
    print: &Mutex<()>,
) -> Outcome {
    let start = Instant::now();
    let _ = fs::remove_dir_all(image::target_dir().join("vm-logs").join(s.name));
    let (result, mut ctx) = run_one(s, inputs, deb);
    let secs = start.elapsed().as_secs_f64();
    let stats = ctx.as_ref().map(Ctx::stats).unwrap_or_default();
    let passed = result.is_ok();
    match result {
        Ok(()) => {
            let _guard = print.lock().unwrap_or_else(|e| e.into_inner());
            println!("PASS {} ({secs:.1} s)", s.name);
        }
        Err(e) => {
            let logs = save_failure_logs(s.name, ctx.as_mut());
            let logs: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
            let reason = format!("{e:#}").replace('\n', " | ");
            let reason: String = reason.chars().take(400).collect();
            let _guard = print.lock().unwrap_or_else(|e| e.into_inner());
            // Full detail on stderr, one line on stdout.
            eprintln!("{} failed:\n{e:#}", s.name);
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
    if keep {
        if let Some(ctx) = ctx.as_mut() {
            keep_running(ctx);
        }
    } else if let Some(ctx) = ctx {
        let work = ctx.work_dir();
        drop(ctx); // kills qemu
        let _ = fs::remove_dir_all(work);
    }
    Outcome {
        name: s.name,
        passed,
        secs,
        stats,
    }
}

/// Outcome of one scenario: Ok, or the reason plus the context (for logs).
/// A base image or ready state that could not be made fails it here.
fn run_one(s: &Scenario, inputs: Inputs, deb: &Path) -> (Result<()>, Option<Ctx>) {
    let setup = || -> Result<Ctx> {
        let base = match inputs.base {
            Some(Ok(base)) => base,
            Some(Err(e)) => bail!("preparing the lab: {e}"),
            None => bail!("preparing the lab: no base image {}", s.variant),
        };
        let ready = match inputs.ready {
            Some(Ok(ready)) => Some(ready),
            Some(Err(e)) if s.ready => bail!("preparing the lab: {e}"),
            _ => None,
        };
        let work = image::target_dir().join("vm-run").join(s.name);
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        fs::create_dir_all(&work)?;
        Ok(Ctx::new(base, ready, work, deb.to_path_buf()))
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
    if let Some(vm) = ctx.last_vm() {
        if let Ok(files) = vm.save_logs(&dir) {
            return files;
        }
    }
    // No VM (or it is gone): the serial log of all its boots is still on disk.
    let serial = ctx.work_dir().join("serial.log");
    let dest = dir.join("serial.log");
    if fs::create_dir_all(&dir).is_ok() && fs::copy(&serial, &dest).is_ok() {
        return vec![dest];
    }
    Vec::new()
}

/// One finished scenario, for the summary.
pub struct Outcome {
    pub name: &'static str,
    pub passed: bool,
    pub secs: f64,
    pub stats: Stats,
}

/// --keep: leave the scenario's VM running (booting its disks again if the
/// scenario powered it off) and tell the user how to reach and stop it.
pub fn keep_running(ctx: &mut Ctx) {
    let running = ctx.last_vm().is_some_and(|vm| vm.is_running());
    if !running {
        if let Err(e) = ctx.boot() {
            eprintln!("--keep: could not boot the VM again: {e:#}");
            return;
        }
    }
    let Some(vm) = ctx.take_vm() else { return };
    println!("kept VM: {}", vm.ssh_command());
    println!("kept VM: serial log {}", vm.serial_log().display());
    println!("kept VM: stop it with: kill {}", vm.detach());
}

/// Where the lab's time went: preparation, then each scenario with its
/// boots (count and time waited for ssh) and ssh commands.
pub fn print_timing(
    steps: &[(String, f64)],
    outcomes: &[Option<Outcome>],
    total: f64,
    jobs: usize,
) {
    println!("lab timing ({jobs} at a time):");
    for (what, secs) in steps {
        println!("  {what:<44} {secs:>7.1} s");
    }
    println!(
        "  {:<22} {:>7} {:>6} {:>10} {:>6} {:>9}",
        "scenario", "wall s", "boots", "boot wait", "ssh", "ssh time"
    );
    let mut sum = Stats::default();
    let mut wall = 0.0;
    for o in outcomes.iter().flatten() {
        let s = &o.stats;
        println!(
            "  {:<22} {:>7.1} {:>6} {:>8.1} s {:>6} {:>7.1} s",
            o.name,
            o.secs,
            s.boots,
            s.boot_wait.as_secs_f64(),
            s.ssh_commands,
            s.ssh_time.as_secs_f64()
        );
        sum.add(s);
        wall += o.secs;
    }
    println!(
        "  {:<22} {:>7.1} {:>6} {:>8.1} s {:>6} {:>7.1} s",
        "all scenarios (sum)",
        wall,
        sum.boots,
        sum.boot_wait.as_secs_f64(),
        sum.ssh_commands,
        sum.ssh_time.as_secs_f64()
    );
    println!("  lab total (wall clock): {total:.1} s");
    // Set by `make test` (Makefile): CI has room for 45 minutes of it.
    let started = std::env::var("UMM_TEST_STARTED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Some(started) = started.filter(|&s| s > 0 && s <= now) {
        let secs = now - started;
        println!(
            "  make test so far: {} min {} s (budget 45 min)",
            secs / 60,
            secs % 60
        );
    }
}

//! umm-lab: runs VM scenarios against Debian guests under qemu (TCG).
//!
//!   umm-lab [--only NAME[,NAME...]] [--candidates] [--jobs N] [--keep] [--list] [--deb PATH]
//!
//! Base images are built (cached by recipe), then per variant a ready
//! state: the .deb installed, booted, saved as a running VM (cached by the
//! .deb's contents). Scenarios resume it on copy-on-write overlays and run
//! N at a time. Each prints `PASS name (12.3 s)` or `FAIL name (12.3 s):
//! reason`; then a timing table; the last line is `N passed, N failed`.

mod bench;
mod ctx;
mod image;
mod scenarios;
mod vm;

use anyhow::{bail, ensure, Context, Result};
use ctx::Ctx;
use image::{BaseImage, Ready};
use scenarios::Scenario;
use std::collections::HashMap;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use vm::{run_with_deadline, Stats};

/// The .deb to test: --deb PATH, else the newest target/debian/umm_*_amd64.deb.
fn find_deb(given: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(deb) = given {
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
    newest.with_context(|| format!("no --deb given and no umm_*_amd64.deb in {}", dir.display()))
}

// ------------------------------------------------------------------ runner

struct Opts {
    only: Vec<String>,
    keep: bool,
    list: bool,
    deb: Option<PathBuf>,
    jobs: usize,
    bench: bool,
    bases: bool,
    candidates: bool,
}

const USAGE: &str =
    "usage: umm-lab [--only NAME[,NAME...]] [--jobs N] [--keep] [--list] [--deb PATH] [--bench] [--bases] [--candidates]";

fn parse_args() -> Result<Opts> {
    let mut opts = Opts {
        only: Vec::new(),
        keep: false,
        list: false,
        deb: None,
        jobs: std::env::var("UMM_LAB_JOBS")
            .ok()
            .and_then(|j| j.parse().ok())
            .unwrap_or(DEFAULT_JOBS),
        bench: false,
        bases: false,
        candidates: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => opts.only.extend(
                args.next()
                    .context("--only needs a NAME")?
                    .split(',')
                    .map(String::from),
            ),
            "--keep" => opts.keep = true,
            "--bench" => opts.bench = true,
            "--bases" => opts.bases = true,
            "--candidates" => opts.candidates = true,
            "--list" => opts.list = true,
            "--deb" => opts.deb = Some(args.next().context("--deb needs a PATH")?.into()),
            "--jobs" => {
                opts.jobs = args
                    .next()
                    .and_then(|j| j.parse().ok())
                    .filter(|j| *j >= 1)
                    .context("--jobs needs a number of at least 1")?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    Ok(opts)
}

/// Scenarios run at once by default: measured on 2 cores (see README,
/// "Test times").
const DEFAULT_JOBS: usize = 2;

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
                && !Path::new("/sbin").join(t).is_file()
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

/// A unit of the lab's work. Base images and ready states are made only
/// for the scenarios selected, and a scenario starts as soon as what it
/// starts from exists, not when every variant is prepared.
#[derive(Clone, Copy)]
enum Job<'a> {
    Base(&'static str),
    Ready(&'static str),
    /// The scenario and its index in the selection (for the summary order).
    Scenario(&'a Scenario, usize),
}

/// What the workers share: the jobs not started yet, in the order they
/// are preferred, and what the finished preparation jobs made (an error
/// fails only the scenarios that needed it).
struct Board<'a> {
    todo: Vec<Job<'a>>,
    bases: HashMap<&'static str, Result<BaseImage, String>>,
    ready: HashMap<&'static str, Result<Ready, String>>,
    /// (what, seconds) for the timing table.
    steps: Vec<(String, f64)>,
    outcomes: Vec<Option<Outcome>>,
}

enum Pick<'a> {
    Run(Job<'a>),
    Wait,
    Done,
}

impl<'a> Board<'a> {
    /// Preparation first (a variant with more scenario time first), then
    /// the scenarios, longest first.
    fn new(selected: &[&'a Scenario]) -> Self {
        let mut variants: Vec<(&'static str, u32)> = Vec::new();
        for s in selected {
            match variants.iter_mut().find(|(v, _)| *v == s.variant) {
                Some((_, secs)) => *secs += s.secs,
                None => variants.push((s.variant, s.secs)),
            }
        }
        variants.sort_by_key(|v| std::cmp::Reverse(v.1));
        let mut todo = Vec::new();
        for (v, _) in &variants {
            todo.push(Job::Base(v));
            if selected.iter().any(|s| s.variant == *v && s.ready) {
                todo.push(Job::Ready(v));
            }
        }
        let mut scenarios: Vec<(usize, &'a Scenario)> =
            selected.iter().copied().enumerate().collect();
        scenarios.sort_by_key(|(_, s)| std::cmp::Reverse(s.secs));
        todo.extend(scenarios.into_iter().map(|(i, s)| Job::Scenario(s, i)));
        Board {
            todo,
            bases: HashMap::new(),
            ready: HashMap::new(),
            steps: Vec::new(),
            outcomes: (0..selected.len()).map(|_| None).collect(),
        }
    }

    /// The first job whose inputs are made (or failed).
    fn pick(&mut self) -> Pick<'a> {
        let runnable = |job: &Job| match job {
            Job::Base(_) => true,
            Job::Ready(v) => self.bases.contains_key(v),
            Job::Scenario(s, _) if s.ready => self.ready.contains_key(s.variant),
            Job::Scenario(s, _) => self.bases.contains_key(s.variant),
        };
        match self.todo.iter().position(runnable) {
            Some(i) => Pick::Run(self.todo.remove(i)),
            None if self.todo.is_empty() => Pick::Done,
            None => Pick::Wait,
        }
    }
}

/// What a job starts from, copied out of the board: the variant's base
/// image and ready state, or why they could not be made.
struct Inputs {
    base: Option<Result<BaseImage, String>>,
    ready: Option<Result<Ready, String>>,
}

/// What a finished job made.
enum Done {
    Base(Result<BaseImage, String>, f64),
    Ready(Result<Ready, String>),
    Scenario(usize, Outcome),
}

impl Board<'_> {
    fn inputs(&self, job: Job) -> Inputs {
        let variant = match job {
            Job::Base(v) | Job::Ready(v) => v,
            Job::Scenario(s, _) => s.variant,
        };
        Inputs {
            base: self.bases.get(variant).cloned(),
            ready: self.ready.get(variant).cloned(),
        }
    }

    fn record(&mut self, job: Job, done: Done) {
        match (job, done) {
            (Job::Base(v), Done::Base(base, secs)) => {
                if base.is_ok() {
                    self.steps.push((format!("base image {v}"), secs));
                }
                self.bases.insert(v, base);
            }
            (Job::Ready(v), Done::Ready(ready)) => {
                if let Ok(r) = &ready {
                    self.steps.push((
                        format!("ready state {v} (install + boot + save)"),
                        r.made_in.as_secs_f64(),
                    ));
                }
                self.ready.insert(v, ready);
            }
            (_, Done::Scenario(i, outcome)) => {
                if let Some(slot) = self.outcomes.get_mut(i) {
                    *slot = Some(outcome);
                }
            }
            // A job's result always matches its kind (see `run_job`).
            _ => {}
        }
    }
}

/// Runs every job of `board` on `jobs` threads; each thread takes the
/// first job it can start. Returns the preparation steps and the outcomes
/// in the order of the selection.
fn run_board<'a>(
    board: Board<'a>,
    jobs: usize,
    run: impl Fn(Inputs, Job) -> Done + Sync,
) -> Board<'a> {
    let board = Mutex::new(board);
    let changed = Condvar::new();
    std::thread::scope(|scope| {
        for n in 0..jobs.max(1) {
            let (board, changed, run) = (&board, &changed, &run);
            std::thread::Builder::new()
                .name(format!("job{n}"))
                .spawn_scoped(scope, move || {
                    let mut guard = board.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        let job = match guard.pick() {
                            Pick::Run(job) => job,
                            Pick::Done => break,
                            // Another thread is making what the rest needs.
                            Pick::Wait => {
                                guard = changed.wait(guard).unwrap_or_else(|e| e.into_inner());
                                continue;
                            }
                        };
                        // The inputs are read under the lock, the work is done without it.
                        let done = {
                            let inputs = guard.inputs(job);
                            drop(guard);
                            run(inputs, job)
                        };
                        guard = board.lock().unwrap_or_else(|e| e.into_inner());
                        guard.record(job, done);
                        changed.notify_all();
                    }
                })
                .expect("spawning a lab thread");
        }
    });
    board.into_inner().unwrap_or_else(|e| e.into_inner())
}
fn make_base(variant: &str) -> Done {
    let t = Instant::now();
    let base = image::ensure_base(variant).map_err(|e| format!("{e:#}"));
    Done::Base(base, t.elapsed().as_secs_f64())
}

/// `--bases`: only the base images of the selected scenarios (no .deb
/// needed), so that `make test` can make them while cargo runs. A failure
/// is reported and left to the lab proper, which tries again.
fn make_bases(selected: &[&Scenario], jobs: usize) -> ExitCode {
    let mut board = Board::new(selected);
    board.todo.retain(|job| matches!(job, Job::Base(_)));
    let board = run_board(board, jobs, |_, job| match job {
        Job::Base(v) => make_base(v),
        // Only base images are on this board.
        Job::Ready(_) | Job::Scenario(..) => Done::Ready(Err("not on this board".into())),
    });
    let mut failed = false;
    for (variant, base) in &board.bases {
        if let Err(e) = base {
            failed = true;
            eprintln!("base image {variant}: {e}");
        }
    }
    for (what, secs) in &board.steps {
        println!("lab: {what} ready ({secs:.1} s)");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one scenario from `inputs` and prints its PASS or FAIL line.
fn run_scenario(
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
struct Outcome {
    name: &'static str,
    passed: bool,
    secs: f64,
    stats: Stats,
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
        for s in scenarios::all() {
            let mark = if s.candidate { " (candidate)" } else { "" };
            println!("{:<22} {:<9} {}{mark}", s.name, s.variant, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&Scenario> = if opts.candidates {
        scenarios::all().filter(|s| s.candidate).collect()
    } else if opts.only.is_empty() {
        // `demo` repeats crash-loop's proof with narration: `make demo` only;
        // candidates are not proven yet: `--candidates` or `--only` only.
        scenarios::all()
            .filter(|s| s.name != "demo" && !s.candidate)
            .collect()
    } else {
        let mut picked = Vec::new();
        for name in &opts.only {
            match scenarios::all().find(|s| s.name == name) {
                Some(s) => picked.push(s),
                None => {
                    eprintln!("no scenario named {name:?} (see --list)");
                    return ExitCode::from(2);
                }
            }
        }
        picked
    };
    if opts.keep && selected.len() != 1 {
        eprintln!("--keep needs --only NAME");
        return ExitCode::from(2);
    }
    if let Err(e) = ensure_host_tools() {
        eprintln!("{e:#}");
        return ExitCode::FAILURE;
    }
    if opts.bases {
        return make_bases(&selected, opts.jobs);
    }
    let deb = match find_deb(opts.deb.as_ref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };

    if opts.bench {
        vm::share_cores(1);
        return run_bench(&deb);
    }
    let lab_started = Instant::now();
    let jobs = if opts.keep { 1 } else { opts.jobs };
    vm::share_cores(jobs);
    let print = Mutex::new(());
    let board = run_board(Board::new(&selected), jobs, |inputs, job| match job {
        Job::Base(v) => make_base(v),
        Job::Ready(v) => Done::Ready(match inputs.base {
            Some(Ok(base)) => {
                vm::trace(&format!("making the ready state of {v}"));
                image::ensure_ready(&base, &deb)
                    .map_err(|e| format!("making the ready state of {v}: {e:#}"))
            }
            Some(Err(e)) => Err(e),
            None => Err(format!("no base image {v}")),
        }),
        Job::Scenario(s, i) => Done::Scenario(i, run_scenario(s, inputs, &deb, opts.keep, &print)),
    });
    print_timing(
        &board.steps,
        &board.outcomes,
        lab_started.elapsed().as_secs_f64(),
        jobs,
    );
    let outcomes: Vec<&Outcome> = board.outcomes.iter().flatten().collect();
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = selected.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Where the lab's time went: preparation, then each scenario with its
/// boots (count and time waited for ssh) and ssh commands.
fn print_timing(steps: &[(String, f64)], outcomes: &[Option<Outcome>], total: f64, jobs: usize) {
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

/// `make bench`: the figures of bench.rs on the systemd image, printed and
/// written to bench/RESULTS.md with the machine, date and commit.
fn run_bench(deb: &Path) -> ExitCode {
    let result = (|| -> Result<String> {
        let base = image::ensure_base("systemd")?;
        let ready = image::ensure_ready(&base, deb)?;
        let work = image::target_dir().join("vm-run").join("bench");
        let table = bench::run(&base, &ready, &work)?;
        let sh = |cmd: &str| {
            Command::new("sh")
                .args(["-c", cmd])
                .current_dir(image::repo_root())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let header = format!(
            "# umm benchmark results\n\n`make bench`, one run on one VM (Debian 12 guest, qemu TCG, 2 vCPUs, 1 GiB).\n\n\
             - date: {}\n- commit: {}\n- host: {}, {} cores, {}\n\n",
            sh("date -u +%FT%TZ"),
            sh("git rev-parse --short HEAD"),
            sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
            sh("nproc"),
            sh("uname -sr"),
        );
        let text = format!("{header}{table}");
        let dir = image::repo_root().join("bench");
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("RESULTS.md"), &text)?;
        Ok(text)
    })();
    match result {
        Ok(text) => {
            println!("{text}");
            println!("written to bench/RESULTS.md");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// --keep: leave the scenario's VM running (booting its disks again if the
/// scenario powered it off) and tell the user how to reach and stop it.
fn keep_running(ctx: &mut Ctx) {
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

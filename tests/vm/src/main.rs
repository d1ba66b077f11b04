//! umm-lab: runs VM scenarios against Debian guests under qemu (TCG).
//!
//! Base images are built (cached by recipe), then per variant a ready
//! state: the .deb installed, booted, saved as a running VM (cached by the
//! .deb's contents). Scenarios resume it on copy-on-write overlays and run
//! N at a time (the scheduler). Each prints `PASS name (12.3 s)` or `FAIL
//! name (12.3 s): reason`; then a timing table; the last line is `N passed,
//! N failed`.

mod bench;
mod ctx;
mod image;
mod run;
mod scenarios;
mod scheduler;
mod timings;
mod vm;

use anyhow::{Context, Result};
use clap::Parser;
use run::{run_scenario, Outcome};
use scenarios::Scenario;
use scheduler::{run_board, Board, Done, Job};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::time::Instant;
use timings::Timings;

/// Scenarios run at once by default: measured on 2 cores (tests/vm/README.md).
const DEFAULT_JOBS: usize = 2;

#[derive(Parser)]
#[command(
    name = "umm-lab",
    about = "Runs umm's scenarios on Debian guests under qemu (tests/vm/README.md)"
)]
struct Opts {
    /// Only these scenarios (NAME[,NAME...]; see --list), candidates included.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    only: Vec<String>,
    /// Only the candidate scenarios (never in a full run).
    #[arg(long, conflicts_with = "only")]
    candidates: bool,
    /// Scenarios at once [default: $UMM_LAB_JOBS, else 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Leave the scenario's VM running (with --only NAME).
    #[arg(long)]
    keep: bool,
    /// List the scenarios: name, variant, what each proves.
    #[arg(long)]
    list: bool,
    /// The .deb to test [default: the newest target/debian/umm_*_amd64.deb].
    #[arg(long, value_name = "PATH")]
    deb: Option<PathBuf>,
    /// Figures on one VM, written to bench/RESULTS.md.
    #[arg(long)]
    bench: bool,
    /// Only the base images of the selected scenarios (no .deb needed).
    #[arg(long)]
    bases: bool,
}

impl Opts {
    fn jobs(&self) -> usize {
        let env = std::env::var("UMM_LAB_JOBS")
            .ok()
            .and_then(|j| j.parse().ok());
        match self.jobs {
            Some(j) => usize::from(j),
            None => env.filter(|j| *j >= 1).unwrap_or(DEFAULT_JOBS),
        }
    }
}

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

/// The host tools the lab runs, and the Debian package of each (`make deps`
/// installs them).
const HOST_TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    ("debootstrap", "debootstrap"),
    ("sfdisk", "fdisk"),
    ("mke2fs", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("ssh", "openssh-client"),
    ("scp", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
];

/// The packages of the host tools that are missing (none: all there).
/// debootstrap & co live in /usr/sbin, not always on a user's PATH.
fn missing_host_packages() -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .collect();
    let mut missing: Vec<&str> = HOST_TOOLS
        .iter()
        .filter(|(tool, _)| !dirs.iter().any(|d| d.join(tool).is_file()))
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    missing
}

/// The scenarios to run, or exit code 2 (with the reason printed).
fn select(opts: &Opts) -> Result<Vec<&'static Scenario>, ExitCode> {
    if opts.candidates {
        return Ok(scenarios::all().filter(|s| s.candidate).collect());
    }
    if opts.only.is_empty() {
        // `demo` repeats crash-loop's proof with narration: `make demo` only;
        // candidates are not proven yet: `--candidates` or `--only` only.
        let full = scenarios::all().filter(|s| s.name != "demo" && !s.candidate);
        return Ok(full.collect());
    }
    let mut picked = Vec::new();
    for name in &opts.only {
        match scenarios::all().find(|s| s.name == name) {
            Some(s) => picked.push(s),
            None => {
                eprintln!("no scenario named {name:?} (see --list)");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(picked)
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    if opts.list {
        for s in scenarios::all() {
            let mark = if s.candidate { " (candidate)" } else { "" };
            println!("{:<22} {:<9} {}{mark}", s.name, s.variant, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let selected = match select(&opts) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if opts.keep && selected.len() != 1 {
        eprintln!("--keep needs --only NAME");
        return ExitCode::from(2);
    }
    let missing = missing_host_packages();
    if !missing.is_empty() {
        eprintln!(
            "umm-lab: missing host packages: {}; install them with `make deps`",
            missing.join(" ")
        );
        return ExitCode::FAILURE;
    }
    if opts.bases {
        return make_bases(&selected, opts.jobs());
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
    run_scenarios(&selected, &deb, &opts)
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
    let mut board = Board::new(selected, &Timings::load());
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

/// Makes what the selected scenarios start from and runs them; prints the
/// timing table, records the timings, and ends with `N passed, N failed`.
fn run_scenarios(selected: &[&Scenario], deb: &Path, opts: &Opts) -> ExitCode {
    let lab_started = Instant::now();
    let jobs = if opts.keep { 1 } else { opts.jobs() };
    vm::share_cores(jobs);
    let print = Mutex::new(());
    let mut timings = Timings::load();
    let board = run_board(
        Board::new(selected, &timings),
        jobs,
        |inputs, job| match job {
            Job::Base(v) => make_base(v),
            Job::Ready(v) => Done::Ready(match inputs.base {
                Some(Ok(base)) => {
                    vm::trace(&format!("making the ready state of {v}"));
                    image::ensure_ready(&base, deb)
                        .map_err(|e| format!("making the ready state of {v}: {e:#}"))
                }
                Some(Err(e)) => Err(e),
                None => Err(format!("no base image {v}")),
            }),
            Job::Scenario(s, i) => {
                Done::Scenario(i, run_scenario(s, inputs, deb, opts.keep, &print))
            }
        },
    );
    let total = lab_started.elapsed().as_secs_f64();
    run::print_timing(&board.steps, &board.outcomes, total, jobs);
    let outcomes: Vec<&Outcome> = board.outcomes.iter().flatten().collect();
    for o in outcomes.iter().filter(|o| o.passed) {
        timings.record(o.name, o.secs);
    }
    if let Err(e) = timings.save() {
        eprintln!("umm-lab: the timings are not saved: {e:#}");
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = selected.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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

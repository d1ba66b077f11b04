//! `make test`: what CI runs.
//!
//! Both cores are kept busy: the lab's base images (debootstrap and a first
//! boot each) need nothing of umm, so they are made while cargo compiles
//! and checks. Then the .deb, and the lab starts beside cargo's tests
//! (compiled before; they mostly wait on etcd and on the binaries they
//! start) and the package checks. The lab's lines are printed as they come;
//! every other step's output is printed whole when it ends, so that none
//! interleave. The last lines are the runners' summaries: cargo test's,
//! then the lab's "N passed, N failed".

use crate::build::{self, cargo};
use crate::package;
use crate::run::{captured, cmd, status};
use anyhow::{bail, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// One line at a time on the terminal: a step's whole output, or a lab line.
static PRINT: Mutex<()> = Mutex::new(());

fn print_whole(title: &str, text: &str) {
    let _guard = PRINT.lock().unwrap_or_else(|e| e.into_inner());
    println!("--- {title}");
    print!("{text}");
}

/// What a step of the pipeline left: its name and whether it passed.
type Steps = Vec<(&'static str, bool)>;

pub fn test() -> Result<()> {
    let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // The lab prints the time since make test started (CI has room for 45 min).
    std::env::set_var("UMM_TEST_STARTED", started.to_string());
    status(&mut cmd(&cargo(), &["build", "-q", "-p", "umm-lab"]))?;
    builds_beside_bases()?;
    package::deb()?;
    let (steps, cargo_summary, lab_summary) = lab_beside_checks();
    let failed: Vec<&str> = steps.iter().filter(|s| !s.1).map(|s| s.0).collect();
    println!();
    if failed.is_empty() {
        println!("make test: every step passed");
    } else {
        println!("make test: FAILED: {}", failed.join(", "));
    }
    println!("{cargo_summary}");
    println!(
        "{}",
        lab_summary
            .as_deref()
            .unwrap_or("lab: no summary (see above)")
    );
    if !failed.is_empty() {
        bail!("make test failed");
    }
    Ok(())
}

/// The lab binary as make test runs it, or UMM_TEST_LAB's command in its
/// place (a stub, to check the pipeline without booting VMs).
fn lab(args: &[&str]) -> Command {
    let mut c = match std::env::var("UMM_TEST_LAB") {
        Ok(stub) if !stub.trim().is_empty() => {
            let script = format!("exec {stub} \"$@\"");
            cmd("sh", &["-c", &script, "umm-lab"])
        }
        _ => {
            let bin = crate::run::target_dir().join("debug/umm-lab");
            cmd(&bin.to_string_lossy(), &[])
        }
    };
    c.args(args);
    c
}

/// fmt, clippy, shellcheck, the static binary's size and the tests'
/// compilation, one after the other (cargo takes one lock on target/
/// anyway), beside the lab's base images. A base image that fails does not
/// fail this step: the lab tries again and fails the scenarios that need it.
fn builds_beside_bases() -> Result<()> {
    std::thread::scope(|scope| {
        let bases = scope.spawn(|| captured(&mut lab(&["--bases"])));
        let builds = builds();
        let (_, text) = bases
            .join()
            .unwrap_or((false, "lab --bases panicked\n".into()));
        print_whole("lab base images", &text);
        builds
    })
}

fn builds() -> Result<()> {
    status(&mut cmd(&cargo(), &["fmt", "--all", "--check"]))?;
    let clippy = [
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ];
    status(&mut cmd(&cargo(), &clippy))?;
    status(&mut cmd("tests/shellcheck.sh", &[]))?;
    build::build()?;
    build::size_check()?;
    status(&mut cmd(&cargo(), &["test", "--workspace", "--no-run"]))
}

/// The lab (niced, so that the tests beside it get a core when they want
/// one), cargo test, and lintian with the install checks, at once. Returns
/// each step's result, cargo test's summary and the lab's last line.
fn lab_beside_checks() -> (Steps, String, Option<String>) {
    std::thread::scope(|scope| {
        let lab_run = scope.spawn(run_lab);
        let tests = scope.spawn(|| {
            let (ok, text) = captured(&mut cmd(&cargo(), &["test", "--workspace"]));
            print_whole("cargo test", &text);
            (ok, cargo_summary(&text, ok))
        });
        let mut steps = package_checks();
        let (tests_ok, summary) = tests
            .join()
            .unwrap_or((false, "cargo test: panicked".into()));
        let (lab_ok, lab_line) = lab_run.join().unwrap_or((false, None));
        steps.push(("cargo test", tests_ok));
        steps.push(("lab", lab_ok));
        (steps, summary, lab_line)
    })
}

fn package_checks() -> Steps {
    let checks = [
        ("lintian", package::lintian_cmd()),
        ("verify-units", Ok(cmd("tests/verify-units.sh", &[]))),
        ("install-check", package::install_check_cmd()),
    ];
    checks
        .into_iter()
        .map(|(name, c)| {
            let (ok, text) = match c {
                Ok(mut c) => captured(&mut c),
                Err(e) => (false, format!("{e:#}\n")),
            };
            print_whole(name, &text);
            (name, ok)
        })
        .collect()
}

/// Runs the lab with LAB_ARGS, printing its lines as they come; returns
/// whether it passed and its summary line ("N passed, N failed").
fn run_lab() -> (bool, Option<String>) {
    let args = std::env::var("LAB_ARGS").unwrap_or_default();
    let args: Vec<&str> = args.split_whitespace().collect();
    let c = lab(&args);
    let mut niced = cmd("nice", &["-n", "10"]);
    niced.arg(c.get_program()).args(c.get_args());
    let Ok(mut child) = niced.stdout(Stdio::piped()).spawn() else {
        print_whole("lab", "cannot start the lab\n");
        return (false, None);
    };
    let mut summary = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if is_lab_summary(&line) {
                summary = Some(line.clone());
            }
            let _guard = PRINT.lock().unwrap_or_else(|e| e.into_inner());
            println!("{line}");
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    (ok, summary)
}

/// "12 passed, 0 failed"
fn is_lab_summary(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    matches!(words.as_slice(), [p, "passed,", f, "failed"]
        if p.parse::<u32>().is_ok() && f.parse::<u32>().is_ok())
}

/// cargo test's results added up over its test binaries (each prints a
/// "test result: ok. 3 passed; 0 failed; 1 ignored; ..." line).
fn cargo_summary(text: &str, ok: bool) -> String {
    let (mut passed, mut failed, mut ignored, mut binaries) = (0u64, 0u64, 0u64, 0u32);
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        binaries += 1;
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let n: u64 = n.parse().unwrap_or(0);
            match what {
                "passed" => passed += n,
                "failed" => failed += n,
                "ignored" => ignored += n,
                _ => {}
            }
        }
    }
    let verdict = if ok { "ok" } else { "FAILED" };
    format!("cargo test: {verdict}, {passed} passed, {failed} failed, {ignored} ignored ({binaries} test binaries)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_summary_adds_up_every_binary() {
        let text = "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
                    test result: FAILED. 5 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s\n";
        assert_eq!(
            cargo_summary(text, false),
            "cargo test: FAILED, 8 passed, 2 failed, 1 ignored (2 test binaries)"
        );
    }

    #[test]
    fn only_the_labs_count_line_is_its_summary() {
        assert!(is_lab_summary("21 passed, 0 failed"));
        assert!(!is_lab_summary("PASS crash-loop (80.1 s)"));
        assert!(!is_lab_summary("lab timing (2 at a time):"));
    }
}

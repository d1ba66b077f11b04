//! Running the tools the chores are made of.

use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The repository's top directory (this crate is tools/xtask).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// cargo's target directory, relative to the repository.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// `program args...`, with make's variables removed from its environment:
/// the tools started here are not recipes of the make that started xtask,
/// and a make below them (debian/rules, the install checks) must not look
/// for that make's jobserver.
pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    for var in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CARGO_MAKEFLAGS"] {
        c.env_remove(var);
    }
    c
}

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `c` with the terminal's output; fails unless it exits 0.
pub fn status(c: &mut Command) -> Result<()> {
    let what = describe(c);
    let status = c.status().with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!("{what}: {status}");
    }
    Ok(())
}

/// Runs `c` and returns its standard output; fails unless it exits 0.
pub fn stdout(c: &mut Command) -> Result<String> {
    let what = describe(c);
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!("{what}: {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `c` with its standard output and error into one file (not the
/// terminal), for a step whose output is printed whole when it ends.
/// Returns whether it exited 0, and what it printed.
pub fn captured(c: &mut Command) -> (bool, String) {
    let what = describe(c);
    let mut run = || -> std::io::Result<(bool, String)> {
        let mut file = tempfile::tempfile()?;
        let status = c
            .stdout(file.try_clone()?)
            .stderr(file.try_clone()?)
            .status()?;
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))?;
        // Lossy: a tool's odd byte must not lose the rest of its output.
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        Ok((status.success(), text))
    };
    run().unwrap_or_else(|e| (false, format!("cannot run {what}: {e}\n")))
}

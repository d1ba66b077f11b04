//! The static binary and its budget.

use crate::run::{cmd, status, stdout, target_dir};
use anyhow::{bail, Result};
use std::path::PathBuf;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Budget for the stripped static binary, in bytes (4.5 MiB).
const SIZE_BUDGET: u64 = 4_718_592;

/// Static and small (the budget above): a non-PIE static binary (no
/// relocation table), no .eh_frame_hdr (panic = abort never unwinds),
/// linked by lld with identical code folding. docs/packaging.md, "Binary
/// size", says why. --target keeps these flags away from build scripts and
/// proc macros.
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static \
    -C link-arg=-fuse-ld=lld -C link-arg=-Wl,--icf=all -C link-arg=-Wl,--no-eh-frame-hdr";

pub fn binary() -> PathBuf {
    target_dir().join(TARGET).join("release/umm")
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub fn build() -> Result<()> {
    let args = [
        "build",
        "--release",
        "--target",
        TARGET,
        "-p",
        "umm",
        "--bin",
        "umm",
    ];
    status(cmd(&cargo(), &args).env("RUSTFLAGS", STATIC_RUSTFLAGS))
}

/// Fails unless the built binary has no ELF interpreter, needs no shared
/// library, is static by `file`'s account and fits the budget.
pub fn size_check() -> Result<()> {
    let bin = binary();
    let path = bin.to_string_lossy();
    let desc = stdout(&mut cmd("file", &["-b", &path]))?;
    let desc = desc.trim();
    if stdout(&mut cmd("readelf", &["-lW", &path]))?.contains("INTERP") {
        bail!("size-check: {path} has an ELF interpreter (dynamically linked): {desc}");
    }
    let needed: Vec<String> = stdout(&mut cmd("readelf", &["-dW", &path]))?
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .map(str::to_owned)
        .collect();
    if !needed.is_empty() {
        bail!(
            "size-check: {path} needs shared libraries:\n{}",
            needed.join("\n")
        );
    }
    let kind = if desc.contains("static-pie linked") {
        "static-pie"
    } else if desc.contains("statically linked") {
        "static"
    } else {
        bail!("size-check: {path} is not statically linked: {desc}");
    };
    let size = std::fs::metadata(&bin)?.len();
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "umm binary: {size} bytes ({:.2} MiB) {kind}, budget {:.2} MiB",
        mib(size),
        mib(SIZE_BUDGET)
    );
    if size > SIZE_BUDGET {
        bail!("size-check: {} bytes over the budget", size - SIZE_BUDGET);
    }
    Ok(())
}

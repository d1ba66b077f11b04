//! Fault injection for tests: named steps where a test makes umm fail or
//! die, to show what a killed writer or a full or read-only disk leaves.
//! Built only with the `failpoints` feature (the `fail` crate, as zincati
//! and bootupd use it); the shipped binary has none, and `failpoint` is
//! then nothing at all.
//!
//! A test sets `FAILPOINTS="<step>=return(<what>)"` (`;` between steps),
//! where `<what>` is `abort` (the process dies at that step: a writer
//! killed mid-write), `eio`, `enospc` or `erofs` (the step fails with that
//! error), `stop` (the process stops itself with SIGSTOP and, once sent
//! SIGCONT, goes on as if nothing happened: a test acts on the world at
//! exactly that step), or nothing (it fails with a generic error). The
//! steps: `read-state`, `early-copy`, the steps of an atomic write,
//! `sys::atomic::WRITE_STEPS`, `grubenv-update` (between the read and the
//! write of GRUB's environment block), and between the read of etcd's semaphore
//! and the transaction that changes it, `etcd-take-cas` and
//! `etcd-release-cas` (each try of the transaction; `1*return(stop)`
//! stops at the first only).

use std::io;

/// Reads `FAILPOINTS` for this process; kept until the process ends.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

/// What the test asked of `step`, if anything.
#[cfg(feature = "failpoints")]
pub fn failpoint(step: &str) -> io::Result<()> {
    fail::fail_point!(step, |what: Option<String>| -> io::Result<()> {
        Err(match what.as_deref() {
            Some("abort") => std::process::abort(),
            Some("stop") => {
                return nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP)
                    .map_err(io::Error::from);
            }
            Some("eio") => io::Error::from_raw_os_error(nix::libc::EIO),
            Some("enospc") => io::Error::from_raw_os_error(nix::libc::ENOSPC),
            Some("erofs") => io::Error::from_raw_os_error(nix::libc::EROFS),
            _ => io::Error::other(format!("failpoint {step}")),
        })
    });
    Ok(())
}

/// Without the feature: no fail points.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_step: &str) -> io::Result<()> {
    Ok(())
}

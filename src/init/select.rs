//! Which init system umm talks to: the running machine's, or, under a test
//! root (`UMM_ROOT`), only a test's own. A test root must never reach the
//! host's init system: without `UMM_INIT=record` there, umm refuses to
//! start rather than reboot the machine running the tests or run its init
//! scripts.

use anyhow::{bail, Result};

use super::record::Recorder;
use super::systemd::Systemd;
use super::sysv::{self, Flavour, Sysv};
use super::InitSystem;
use crate::sys::paths::Root;

/// The environment variable that names a test's init system.
pub const TEST_INIT_ENV: &str = "UMM_INIT";

/// The init system of the running machine; under a test root, the one the
/// test names (`UMM_INIT=record`), or an error.
pub fn select(root: &Root) -> Result<Box<dyn InitSystem>> {
    if !root.is_system() {
        return match std::env::var(TEST_INIT_ENV).as_deref() {
            Ok("record") => Ok(Box::new(Recorder::new(root))),
            _ => bail!(
                "UMM_ROOT is set ({}), a test root: umm never uses the host's init system there; \
                 set {TEST_INIT_ENV}=record for the recording init system",
                root.path("/").display()
            ),
        };
    }
    if root.path("/run/systemd/system").is_dir() {
        return Ok(Box::new(Systemd));
    }
    let flavour = if sysv::is_upstart(root) {
        Flavour::Upstart
    } else {
        Flavour::Sysvinit
    };
    Ok(Box::new(Sysv {
        flavour,
        root: root.clone(),
    }))
}

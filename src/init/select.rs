//! Which init system umm talks to.

use super::record::Recorder;
use super::systemd::Systemd;
use super::sysv::{self, Flavour, Sysv};
use super::InitSystem;
use crate::sys::paths::Root;

/// The init system of the running machine (of the root prefix under tests).
pub fn detect(root: &Root) -> Box<dyn InitSystem> {
    if !root.is_system() && std::env::var("UMM_INIT").as_deref() == Ok("record") {
        return Box::new(Recorder::new(root));
    }
    if root.path("/run/systemd/system").is_dir() {
        return Box::new(Systemd);
    }
    let flavour = if sysv::is_upstart(root) {
        Flavour::Upstart
    } else {
        Flavour::Sysvinit
    };
    Box::new(Sysv {
        flavour,
        root: root.clone(),
    })
}

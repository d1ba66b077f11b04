//! The init system behind one small trait: everything umm asks of it.
//! One module per init system; `detect` picks the running one.

use std::time::Duration;

use anyhow::Result;

use crate::model::reboot::KexecPath;
use crate::model::verify::Service;

pub mod dbus;
pub mod record;
mod select;
pub mod systemd;
pub mod sysv;

pub use select::select;

/// What `umm off` saw while resuming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The normal target was reached (false also when not waited for).
    pub reached: bool,
    /// `umm off --no-wait`: the resume was started, not waited for.
    pub waited: bool,
    pub elapsed: Duration,
    /// Units in the failed state once the wait ended.
    pub failed_units: Vec<String>,
}

impl Resumed {
    /// `umm off --no-wait`: the resume was started, nothing was waited for.
    pub fn not_waited(started: std::time::Instant) -> Resumed {
        Resumed {
            reached: false,
            waited: false,
            elapsed: started.elapsed(),
            failed_units: Vec::new(),
        }
    }
}

pub trait InitSystem {
    /// "systemd", "sysvinit", "upstart".
    fn name(&self) -> &'static str;
    /// Asks for a clean reboot; returns once the init system has accepted it.
    fn reboot(&self) -> Result<()>;
    /// How `kexec` finishes a planned reboot by kexec here, if it can.
    fn kexec_path(&self) -> KexecPath {
        KexecPath::Unsupported
    }
    /// Asks for a clean reboot into the kernel loaded for kexec
    /// (`sys::kexec::load`): the same orderly shutdown as `reboot`.
    fn kexec(&self) -> Result<()> {
        anyhow::bail!("{} has no kexec path in umm", self.name())
    }
    /// Continues a paused maintenance boot into the normal target, waiting
    /// at most `wait` (None: start it and return).
    fn resume(&self, wait: Option<Duration>) -> Result<Resumed>;
    /// Has this boot reached its normal target? Waits up to `within` for
    /// it (zero: just look). The off.d hooks and the check wait for this.
    fn normal_reached(&self, within: Duration) -> Result<bool>;
    /// Switches a boot that has already started normally into maintenance:
    /// the fallback when the early decision could not be taken.
    fn enter_maintenance_late(&self) -> Result<()>;
    /// The services the init system knows now, with their state.
    fn services(&self) -> Result<Vec<Service>>;
    /// The names of the services active now (what `umm on` keeps for the
    /// check after `umm off`): systemd answers it in one call, where
    /// `services` asks about every inactive service too.
    fn active_services(&self) -> Result<Vec<String>> {
        Ok(self
            .services()?
            .into_iter()
            .filter(|s| s.active.is(crate::model::verify::ActiveState::Active))
            .map(|s| s.name)
            .collect())
    }
    /// The services enabled to start at boot.
    fn enabled_services(&self) -> Result<Vec<String>>;
    /// Of `units`, those a maintenance boot would not start (they come
    /// after the system's basic initialisation).
    fn outside_maintenance(&self, units: &[String]) -> Result<Vec<String>>;
}

//! Which back-end the settings describe: here, not in mod.rs, whose
//! types and trait the back-ends use (a module the back-ends depend on
//! must not depend on them).

use super::etcd::Etcd;
use super::fleetlock::FleetLock;
use super::{Backend, Coordinator, FleetError, FleetSettings};

/// The coordinator the settings describe (`None` for `backend = "none"`).
/// Checks the settings and reads the TLS files; no network traffic.
pub fn from_settings(settings: &FleetSettings) -> Result<Option<Box<dyn Coordinator>>, FleetError> {
    settings
        .validate()
        .map_err(|e| FleetError::Settings(format!("{e}; fix it in umm.toml")))?;
    Ok(match settings.backend {
        Backend::None => None,
        Backend::Etcd => Some(Box::new(Etcd::new(settings)?)),
        Backend::FleetLock => Some(Box::new(FleetLock::new(settings)?)),
    })
}

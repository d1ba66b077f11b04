//! The services before and after a maintenance: what the init system
//! reports (`Service`), and the result of comparing them, kept with the
//! episode (`VerifyResult`; the comparison is `rules::verify`).

use serde::{Deserialize, Serialize};

use super::extra::Extra;

/// A service as the init system reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// systemd's ActiveState: active, inactive, failed, activating, ...
    pub active: String,
    /// Inactive and fine: ran to completion with success (a finished
    /// oneshot), or was skipped by its own start conditions.
    pub finished_ok: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct VerifyResult {
    /// What was compared against: "active before maintenance" or "enabled services".
    pub compared_with: String,
    /// Expected services that are not running now.
    pub not_back: Vec<String>,
    /// Services in the failed state now.
    pub failed: Vec<String>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl VerifyResult {
    pub fn ok(&self) -> bool {
        self.not_back.is_empty() && self.failed.is_empty()
    }
}

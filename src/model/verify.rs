//! The services before and after a maintenance: what the init system
//! reports (`Service`), and the result of comparing them, kept with the
//! episode (`VerifyResult`; the comparison is `rules::verify`).

use serde::{Deserialize, Serialize};

use super::extra::Extra;
use super::open::{Named, Open};

/// A service as the init system reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// Whether it runs, in systemd's terms (sysvinit's and upstart's answers
    /// are mapped to them).
    pub active: Open<ActiveState>,
    /// Inactive and fine: ran to completion with success (a finished
    /// oneshot), or was skipped by its own start conditions.
    pub finished_ok: bool,
    /// Inactive, but a socket, path or timer that starts it on demand is
    /// active: it runs when it is asked for (systemd-fsckd, a
    /// socket-activated sshd), so it is back.
    pub on_demand: bool,
}

/// systemd's ActiveState of a unit (org.freedesktop.systemd1.Unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    /// Cleaning up (systemd 250 and later).
    Maintenance,
    /// Refreshing (systemd 253 and later).
    Refreshing,
}

impl Named for ActiveState {
    const ALL: &'static [ActiveState] = &[
        ActiveState::Active,
        ActiveState::Reloading,
        ActiveState::Inactive,
        ActiveState::Failed,
        ActiveState::Activating,
        ActiveState::Deactivating,
        ActiveState::Maintenance,
        ActiveState::Refreshing,
    ];

    fn name(self) -> &'static str {
        match self {
            ActiveState::Active => "active",
            ActiveState::Reloading => "reloading",
            ActiveState::Inactive => "inactive",
            ActiveState::Failed => "failed",
            ActiveState::Activating => "activating",
            ActiveState::Deactivating => "deactivating",
            ActiveState::Maintenance => "maintenance",
            ActiveState::Refreshing => "refreshing",
        }
    }
}

/// The services compared after `umm off`, kept with the episode.
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

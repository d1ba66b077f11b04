//! What a hook run leaves behind: its phase and its record, kept in the
//! state for `umm status` and `umm history`. Running hooks is `hooks`.

use serde::{Deserialize, Serialize};

use super::extra::Extra;
use super::open::{Named, Open};

/// The five points around a maintenance where operators' hooks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPhase {
    /// Before `umm on`: a failure vetoes entering (unless --force).
    Check,
    /// After the checks, before the reboot into maintenance.
    PreOn,
    /// Once maintenance is reached, before the scheduled command.
    On,
    /// Before resuming: a failure vetoes `umm off` (unless --force).
    PreOff,
    /// After the normal target is reached.
    Off,
}

/// The phase's name: `UMM_PHASE`, the directory `<name>.d`, and the
/// `phase` of its records.
impl Named for HookPhase {
    const ALL: &'static [HookPhase] = &[
        HookPhase::Check,
        HookPhase::PreOn,
        HookPhase::On,
        HookPhase::PreOff,
        HookPhase::Off,
    ];

    fn name(self) -> &'static str {
        match self {
            HookPhase::Check => "check",
            HookPhase::PreOn => "pre-on",
            HookPhase::On => "on",
            HookPhase::PreOff => "pre-off",
            HookPhase::Off => "off",
        }
    }
}

/// What one hook did; kept in the state for `umm status` and the history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HookRecord {
    /// A phase of a newer umm is kept as it was written.
    pub phase: Open<HookPhase>,
    pub name: String,
    pub ok: bool,
    /// "exited 0", "exited 3", "killed after its timeout of 5m", "refused: …".
    pub result: String,
    /// The last lines of its output.
    pub output_tail: Vec<String>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

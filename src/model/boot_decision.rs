//! This boot's decision, shared between the generator, the boot unit,
//! `umm off` and the pause: `/run/umm/boot.json`, volatile (gone at the
//! next boot). Reading and writing it is `sys::boot_decision`.

use serde::{Deserialize, Serialize};

use super::state::{Mode, Reason};

/// This boot's decision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BootDecision {
    pub boot_id: String,
    pub mode: Mode,
    pub reason: Option<Reason>,
    /// Who decided: "generator" (systemd, before /var) or "boot" (the boot unit).
    pub decided_by: String,
    /// `umm=off` on the kernel command line skipped a maintenance.
    pub skipped_by_cmdline: bool,
    /// `umm off` resumed the normal target in this boot.
    pub resumed: bool,
}

//! This boot's decision, shared between the generator, the boot unit,
//! `umm off` and the pause: `/run/umm/boot.json`, volatile (gone at the
//! next boot). Reading and writing it is `sys::boot_decision`.

use serde::{Deserialize, Serialize};

use super::open::{Named, Open};
use super::state::{Mode, Reason};

/// This boot's decision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BootDecision {
    pub boot_id: String,
    pub mode: Mode,
    pub reason: Option<Reason>,
    /// Who decided.
    pub decided_by: Open<DecidedBy>,
    /// `umm=off` on the kernel command line skipped a maintenance.
    pub skipped_by_cmdline: bool,
    /// `umm off` resumed the normal target in this boot.
    pub resumed: bool,
}

/// Who took this boot's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecidedBy {
    /// The systemd generator, from the early copy, before /var is mounted.
    Generator,
    /// The boot unit (umm-boot.service, or the boot script elsewhere).
    Boot,
}

impl Named for DecidedBy {
    const ALL: &'static [DecidedBy] = &[DecidedBy::Generator, DecidedBy::Boot];

    fn name(self) -> &'static str {
        match self {
            DecidedBy::Generator => "generator",
            DecidedBy::Boot => "boot",
        }
    }
}

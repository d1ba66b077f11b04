//! umm's scenarios, one file per family. Each boots real Debian guests with
//! the .deb installed the way a user installs it, and checks what a user
//! would check: states from `umm status --json`, units from systemctl and
//! the journal, files the scheduled command wrote, the kernel command line.
//!
//! A family file declares its scenarios in its own `SCENARIOS` next to
//! their code; [`common`] holds the helpers they share. A new family is a
//! new file plus its name in the `families!` list below.

mod common;

use crate::ctx::Ctx;
use anyhow::Result;

/// A scenario: a function over its [`Ctx`], the image variant it runs on,
/// and whether it starts from the variant's ready state (installed,
/// resumed) or boots the bare base image itself.
pub struct Scenario {
    pub name: &'static str,
    pub variant: &'static str,
    /// Resumes the ready state (`installed`); false: boots the base itself.
    pub ready: bool,
    /// What it proves, one line (`--list`).
    pub about: &'static str,
    /// Not yet passed on repeated real boots: run only when named with
    /// `--only` or with `--candidates`, never in a full run (`make test`).
    pub candidate: bool,
    pub run: fn(&mut Ctx) -> Result<()>,
}

impl Scenario {
    /// A scenario on `variant` that starts from its ready state.
    pub const fn new(
        name: &'static str,
        variant: &'static str,
        run: fn(&mut Ctx) -> Result<()>,
    ) -> Self {
        Scenario {
            name,
            variant,
            ready: true,
            about: "",
            candidate: false,
            run,
        }
    }

    pub const fn about(self, about: &'static str) -> Self {
        Scenario { about, ..self }
    }

    /// Boots the bare base image itself instead of resuming the ready state
    /// (e.g. to install another package first).
    pub const fn bare(self) -> Self {
        Scenario {
            ready: false,
            ..self
        }
    }

    /// A scenario still to be proven on repeated real boots (see
    /// [`Scenario::candidate`]); docs/testing.md lists them as not proven.
    // Unused while every scenario is proven.
    #[allow(dead_code)]
    pub const fn candidate(self) -> Self {
        Scenario {
            candidate: true,
            ..self
        }
    }
}

/// Declares the family modules and collects their `SCENARIOS`, in this
/// order (the order of `--list` and of the summary).
macro_rules! families {
    ($($family:ident),* $(,)?) => {
        $(mod $family;)*
        const FAMILIES: &[&[Scenario]] = &[$($family::SCENARIOS),*];
    };
}

families![
    crash, metrics, on_off, grub, bootfail, packages, hooks, sysvinit, shapes, fleet, rolling,
    kexec, demo
];

/// Every scenario of every family.
pub fn all() -> impl Iterator<Item = &'static Scenario> {
    FAMILIES.iter().flat_map(|family| family.iter())
}

//! umm: unified maintenance mode. See README.md for what it does,
//! docs/boot-flow.md for how a boot is paused, and docs/ARCHITECTURE.md for
//! the layers below and how a command flows through them.
//!
//! The modules, from the bottom up; each may use only those below it
//! (tests/architecture.rs checks that, and that no modules form a cycle):
//!
//! - `model`: the data umm keeps and passes around (state, episodes, hook
//!   and verify records, this boot's decision, settings); no I/O.
//! - `rules`: the rules as pure functions of the model and plain inputs
//!   (counting, the boot decision, entering, leaving, the service check).
//! - `sys`: system access: files, the state store, the configuration
//!   files, the clock, logging, running processes.
//! - The outside systems umm drives, one folder each behind a small API:
//!   `init` (systemd, sysvinit, upstart behind the `InitSystem` trait),
//!   `hooks` (operators' hook directories), `bootmenu` (GRUB and BLS
//!   entries), and `fleet` (coordination back-ends behind a `Coordinator`
//!   trait: etcd, FleetLock; not wired into the commands yet).
//! - `output`: what is printed: typed views rendered as text or JSON.
//! - `cmd`: the operators' commands and the init system's entry points,
//!   thin: load, apply a rule, save, act, report.
//! - `cli`: the command line (clap), for the binary and the man page.

// Nothing read from outside (files, environment, arguments, peers) may
// panic umm, and the release build aborts on a panic: no unwrap, expect,
// indexing or panic outside tests; an exception is an `#[allow]` with the
// reason it cannot fail. Printing goes through `output::print` (a closed
// pipe must not panic either).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::print_stdout,
        clippy::print_stderr
    )
)]

pub mod model;
pub mod rules;
pub mod sys;

pub mod bootmenu;
pub mod fleet;
pub mod hooks;
pub mod init;

// Before `cmd`, so that its printing macros are in scope there.
#[macro_use]
pub mod output;

pub mod cli;
pub mod cmd;

//! umm: unified maintenance mode. See README.md for what it does and
//! docs/boot-flow.md for how a boot is paused.
//!
//! Layout: `decide` holds the rules as pure functions over `state::State`;
//! `config` and `store` load and save their inputs; `init` talks to the init
//! system; `commands` (operators) and `boot`/`generator` (init system) are
//! the thin entry points that tie them together.

// Nothing read from outside (files, environment, arguments, peers) may
// panic umm, and the release build aborts on a panic: no unwrap, expect,
// indexing or panic outside tests; an exception is an `#[allow]` with the
// reason it cannot fail. Printing goes through `output` (a closed pipe must
// not panic either).
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

// First, so that its printing macros are in scope in every module below.
#[macro_use]
pub mod output;

pub mod boot;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod decide;
pub mod fleet;
pub mod fsread;
pub mod generator;
pub mod grub;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod paths;
pub mod run;
pub mod state;
pub mod status;
pub mod store;
pub mod timefmt;
pub mod verify;

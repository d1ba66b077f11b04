//! umm: unified maintenance mode. See README.md for what it does and
//! docs/boot-flow.md for how a boot is paused.
//!
//! Layout: `decide` holds the rules as pure functions over `state::State`;
//! `config` and `store` load and save their inputs; `init` talks to the init
//! system; `commands` (operators) and `boot`/`generator` (init system) are
//! the thin entry points that tie them together.

pub mod boot;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod decide;
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

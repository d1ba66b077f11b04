//! System access: every file umm reads or writes and every process it
//! starts goes through here, under one root prefix (`paths::Root`, a
//! temporary directory under tests).
//!
//! - `paths`: where each file is; `fsread`: reading a file that may not be
//!   what it seems (FIFO, device, too big); `atomic`: replacing one safely;
//! - `store`: the state file, under a lock; `boot_decision`: this boot's
//!   decision in /run; `config`: the configuration files, read into
//!   `model::settings::Settings`;
//! - `clock`: wall-clock time, uptime and the boot id; `logging`: where log
//!   lines go; `journal`: the state changes' MESSAGE_IDs and fields; `run`: starting children bounded, with clean signals;
//!   `failpoint`: fault injection for tests; `interrupt`: holding back
//!   SIGINT, SIGHUP and SIGTERM while the off.d hooks run and are recorded;
//! - `kexec`: the facts a planned reboot by kexec is chosen from, and
//!   loading the kernel (`kexec_file_load`);
//! - `textfile`: `umm.prom` for node_exporter's textfile collector.

pub mod atomic;
pub mod boot_decision;
pub mod clock;
pub mod config;
pub mod failpoint;
pub mod fsread;
pub mod grubenv;
pub mod interrupt;
pub mod journal;
pub mod kexec;
pub mod localtime;
pub mod logging;
pub mod paths;
pub mod run;
pub mod store;
pub mod textfile;

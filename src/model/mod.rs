//! The data umm keeps and passes between layers, in one place: the state
//! and its parts (episodes, hook and verify records, claims), this boot's
//! decision, the settings in force and the record of the last
//! configuration that loaded, and how times and spans are written. No
//! I/O: reading and writing these is `sys`, changing the state is `rules`.
//!
//! Everything persisted here keeps what a newer umm wrote (`Extra`), so a
//! downgrade does not lose a maintenance in force.

pub mod boot_decision;
pub mod bounds;
pub mod extra;
pub mod fleet;
pub mod grubenv;
pub mod hook;
pub mod limits;
pub mod open;
pub mod reboot;
pub mod rolling;
pub mod settings;
pub mod state;
pub mod timefmt;
pub mod verify;

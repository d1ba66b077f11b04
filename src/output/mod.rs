//! Presentation: what umm prints, in one place. The read-only commands
//! build a typed view (`status::StatusView`, `history`, `check`) that is
//! rendered as text for people or as JSON for tools, from the same values;
//! every line goes through the printing helpers of `print`, which never
//! abort on a closed pipe.

#[macro_use]
pub mod print;

pub mod check;
pub mod fleet;
pub mod history;
pub mod json;
pub mod message;
pub mod metrics;
pub mod status;

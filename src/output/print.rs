//! Printing that never aborts. `println!` panics when stdout is a closed
//! pipe (`umm status | head -1`) and the release build aborts on a panic,
//! so a command could stop between saving the state and asking the init
//! system to act on it. Every line umm prints goes through `outln!` /
//! `errln!` instead: a failed write is remembered and otherwise ignored, so
//! the command always runs to its end and exits with its own status.
//! (`clippy::print_stdout` and `clippy::print_stderr` are denied in the
//! crate, so a stray `println!` does not build.)

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; a write error (closed pipe, full disk) is recorded,
/// never raised.
pub fn stdout(args: fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        STDOUT_FAILED.store(true, Ordering::Relaxed);
    }
}

/// Writes to stderr; errors are ignored (there is nowhere left to report them).
pub fn stderr(args: fmt::Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// True once a write to stdout has failed (its reader went away).
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// `println!` that cannot panic: see the module documentation.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::print::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::print::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that cannot panic.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::print::stdout(format_args!($($arg)*)) };
}

/// `eprintln!` that cannot panic.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::print::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

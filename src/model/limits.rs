//! How much umm keeps. umm never writes more than this, so more in a state
//! file means a file written by hand or by something else: it is cut on
//! load (`bounds`). The rules keep the same bounds as they add to the
//! state (history, unclean boots), and `umm on` refuses a longer command.

/// Finished episodes kept for `umm history`.
pub const HISTORY: usize = 20;
/// Unclean boots of a streak remembered for `umm status`.
pub const BOOT_RECORDS: usize = 32;
/// Hook results kept per maintenance or episode.
pub const HOOKS: usize = 100;
/// Lines of a hook's output kept, and the length of each.
pub const TAIL_LINES: usize = 10;
pub const TAIL_LINE: usize = 1024;
/// The scheduled command: arguments, and bytes in each.
pub const ARGS: usize = 256;
pub const ARG: usize = 4096;
/// Service names kept for the check after `umm off`.
pub const SERVICES: usize = 4096;
/// Any other string (ids, names, results, addresses).
pub const STRING: usize = 1024;

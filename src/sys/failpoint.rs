//! Fault injection for tests: named steps where a test can make umm fail
//! or die (a writer killed mid-write, a full or read-only disk).

use std::io;

/// Test hook: in debug builds, `UMM_FAILPOINT=<step>` aborts the process at
/// that step (a writer killed mid-write), `<step>:error` makes it fail, and
/// `<step>:<errno name>` fails with that error (eio, enospc, erofs).
pub fn failpoint(step: &str) -> io::Result<()> {
    if cfg!(debug_assertions) {
        if let Ok(spec) = std::env::var("UMM_FAILPOINT") {
            if spec == step {
                std::process::abort();
            }
            match spec.strip_prefix(step).and_then(|r| r.strip_prefix(':')) {
                Some("error") => return Err(io::Error::other(format!("failpoint {step}"))),
                Some("eio") => return Err(io::Error::from_raw_os_error(nix::libc::EIO)),
                Some("enospc") => return Err(io::Error::from_raw_os_error(nix::libc::ENOSPC)),
                Some("erofs") => return Err(io::Error::from_raw_os_error(nix::libc::EROFS)),
                _ => {}
            }
        }
    }
    Ok(())
}

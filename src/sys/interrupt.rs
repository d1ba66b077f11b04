//! Work that a Ctrl-C, a dropped ssh session (SIGHUP) or a SIGTERM must
//! not cut in half: the off.d hooks and the close of the episode they
//! belong to. The hooks run in their own process group, so a signal that
//! killed umm there would leave the hook running and the state saying it
//! never ran; the retried `umm off` would run it a second time. While
//! `deferred` runs its work, those three signals are blocked (this thread,
//! and every thread it starts, inherits the mask); they stay pending and
//! take effect, with their usual meaning, once the work is recorded.
//! Children start with an empty mask (`run`), so a hook is not affected.

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};

/// Runs `work` with SIGINT, SIGHUP and SIGTERM held back; the mask before
/// is restored after it (a signal that arrived meanwhile is delivered
/// then). Should the mask not be changed, `work` runs anyway: finishing
/// matters more than deferring.
pub fn deferred<T>(work: impl FnOnce() -> T) -> T {
    let mut held = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGTERM] {
        held.add(s);
    }
    let mut before = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&held), Some(&mut before));
    if let Err(e) = &blocked {
        log::warn!("cannot defer SIGINT, SIGHUP and SIGTERM while the off.d hooks run: {e}");
    }
    let result = work();
    if blocked.is_ok() {
        // Restoring the mask cannot fail with a valid set.
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    }
    result
}

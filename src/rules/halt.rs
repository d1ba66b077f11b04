//! The group's halt, the pure part: this node halts its group's roll
//! (`umm on --then` work that failed, or a check after leaving that was
//! not clean, with a slot kept), and the call that writes or deletes the
//! group's halt key, recorded before it is sent and settled by its answer
//! (a run killed or failed meanwhile leaves it for the reconcile). The
//! calls to the coordinator are `cmd::halt`'s.

use crate::model::state::{HaltOp, HaltSend, RollHalt, State};

/// This node halts its group's roll: `halt` is recorded, and `send` (the
/// write of the group's halt key) when the back-end keeps one. The same
/// halt recorded already (same episode, same why) changes nothing: its
/// key was written, or its call is still recorded for the reconcile.
pub fn halted(state: &State, halt: RollHalt, send: Option<HaltSend>) -> State {
    let mut s = state.clone();
    let same = s
        .fleet
        .halt
        .as_ref()
        .is_some_and(|h| h.episode == halt.episode && h.why == halt.why);
    if same {
        return s;
    }
    s.fleet.halt = Some(halt);
    if send.is_some() {
        s.fleet.halt_sending = send;
    }
    s
}

/// Back in service after a clean check, or `umm fleet release`: this node
/// halts nothing any more; `send` (the delete of its key, only if this
/// node wrote it) when the back-end keeps one. Without one, a write still
/// recorded is dropped: there is no key to bring in line.
pub fn unhalted(state: &State, send: Option<HaltSend>) -> State {
    let mut s = state.clone();
    s.fleet.halt = None;
    match send {
        Some(send) => s.fleet.halt_sending = Some(send),
        None => {
            if s.fleet
                .halt_sending
                .as_ref()
                .is_some_and(|h| h.op == HaltOp::Record)
            {
                s.fleet.halt_sending = None;
            }
        }
    }
    s
}

/// The same call: what it does and where (its tries aside).
pub fn same_call(a: &HaltSend, b: &HaltSend) -> bool {
    a.op == b.op
        && a.backend == b.backend
        && a.group == b.group
        && a.node == b.node
        && a.why == b.why
        && a.since == b.since
}

/// The call `sent` was answered: settled, unless a newer one was recorded
/// meanwhile (that one is still to send).
pub fn halt_sent(state: &State, sent: &HaltSend) -> State {
    let mut s = state.clone();
    if s.fleet
        .halt_sending
        .as_ref()
        .is_some_and(|h| same_call(h, sent))
    {
        s.fleet.halt_sending = None;
    }
    s
}

/// The call `sent` failed: it stays recorded, with the error, for the
/// reconcile.
pub fn halt_send_failed(state: &State, sent: &HaltSend, error: &str) -> State {
    let mut s = state.clone();
    if let Some(h) = s.fleet.halt_sending.as_mut().filter(|h| same_call(h, sent)) {
        h.tries = h.tries.saturating_add(1);
        h.last_error = Some(error.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halt(episode: u64, why: &str) -> RollHalt {
        RollHalt {
            why: why.into(),
            since: 5,
            episode,
            extra: Default::default(),
        }
    }

    fn call(op: HaltOp, why: &str) -> HaltSend {
        HaltSend {
            op,
            backend: "etcd".into(),
            group: "g".into(),
            node: "a".into(),
            why: why.into(),
            since: 5,
            tries: 0,
            last_error: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn a_halt_is_recorded_with_its_call_and_settled_by_the_answer() {
        let record = call(HaltOp::Record, "x");
        let s = halted(&State::default(), halt(1, "x"), Some(record.clone()));
        assert_eq!(s.fleet.halt.as_ref().map(|h| h.episode), Some(1));
        assert_eq!(s.fleet.halt_sending.as_ref(), Some(&record));
        // Failed: kept, counted; answered: settled.
        let f = halt_send_failed(&s, &record, "down");
        let h = f.fleet.halt_sending.as_ref().unwrap();
        assert_eq!((h.tries, h.last_error.as_deref()), (1, Some("down")));
        let done = halt_sent(&f, &record);
        assert!(done.fleet.halt_sending.is_none() && done.fleet.halt.is_some());
        // The same halt again (the worker runs again): no second call.
        assert_eq!(halted(&done, halt(1, "x"), Some(record.clone())), done);
        // Another why (the check after `umm off` was not clean): a new one.
        let again = halted(&done, halt(1, "y"), Some(call(HaltOp::Record, "y")));
        assert_eq!(again.fleet.halt_sending.unwrap().why, "y");
        // No key store (FleetLock, none): the halt only.
        let local = halted(&State::default(), halt(1, "x"), None);
        assert!(local.fleet.halt.is_some() && local.fleet.halt_sending.is_none());
    }

    #[test]
    fn a_clear_replaces_a_write_not_sent_and_an_old_answer_settles_nothing_newer() {
        let record = call(HaltOp::Record, "x");
        let clear = call(HaltOp::Clear, "");
        let s = halted(&State::default(), halt(1, "x"), Some(record.clone()));
        let c = unhalted(&s, Some(clear.clone()));
        assert!(c.fleet.halt.is_none());
        assert_eq!(c.fleet.halt_sending.as_ref(), Some(&clear));
        // The write's answer arrives after the clear was recorded.
        assert_eq!(halt_sent(&c, &record), c);
        assert_eq!(halt_send_failed(&c, &record, "down"), c);
        assert!(halt_sent(&c, &clear).fleet.halt_sending.is_none());
        // No key store any more: the write not sent is dropped.
        let n = unhalted(&s, None);
        assert!(n.fleet.halt.is_none() && n.fleet.halt_sending.is_none());
        // A clear not sent stays, whatever is configured now.
        assert_eq!(unhalted(&c, None), c);
    }
}

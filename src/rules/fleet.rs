//! Fleet coordination, the pure part: when a slot held is owed back, what
//! a release's outcome does to the state, and how long `umm on --wait`
//! waits between tries. The calls to the coordinator are `cmd`'s.

use std::time::Duration;

use crate::model::state::{FleetSlot, PendingRelease, State};

/// The node is back in service (the episode closed): a slot held is owed
/// back when the check was clean; when it was not, the slot is kept
/// (`umm fleet release` gives it up). A release already pending stays.
pub fn back_in_service(state: &State, verify_clean: bool, now: i64) -> State {
    let mut s = state.clone();
    if verify_clean {
        owe(&mut s, now);
    }
    s
}

/// A pending request was cancelled (`umm off`): its slot is owed back.
pub fn cancelled(state: &State, now: i64) -> State {
    let mut s = state.clone();
    owe(&mut s, now);
    s
}

/// `umm fleet release`: the slot held (if any) is owed back now.
pub fn give_up(state: &State, now: i64) -> State {
    cancelled(state, now)
}

fn owe(s: &mut State, now: i64) {
    if let Some(slot) = s.fleet.held.take() {
        s.fleet.pending_release = Some(PendingRelease {
            slot,
            due: now,
            tries: 0,
            last_try: None,
            last_error: None,
            extra: Default::default(),
        });
    }
}

/// A slot was taken for a maintenance (or found held): a release of the
/// same slot still owed is dropped (it would give back the slot this
/// maintenance needs).
pub fn taken(state: &State, slot: FleetSlot) -> State {
    let mut s = state.clone();
    if s.fleet
        .pending_release
        .as_ref()
        .is_some_and(|p| same_slot(&p.slot, &slot))
    {
        s.fleet.pending_release = None;
    }
    s.fleet.held = Some(slot);
    s
}

/// The release of `slot` landed: nothing is owed any more (unless the
/// pending release is another slot's, left by a newer try).
pub fn released(state: &State, slot: &FleetSlot) -> State {
    let mut s = state.clone();
    if s.fleet
        .pending_release
        .as_ref()
        .is_some_and(|p| same_slot(&p.slot, slot))
    {
        s.fleet.pending_release = None;
    }
    if s.fleet.held.as_ref().is_some_and(|h| same_slot(h, slot)) {
        s.fleet.held = None;
    }
    s
}

/// The release of `slot` failed: it stays pending, with the error.
pub fn release_failed(state: &State, slot: &FleetSlot, now: i64, error: &str) -> State {
    let mut s = state.clone();
    if let Some(p) = s
        .fleet
        .pending_release
        .as_mut()
        .filter(|p| same_slot(&p.slot, slot))
    {
        p.tries = p.tries.saturating_add(1);
        p.last_try = Some(now);
        p.last_error = Some(error.to_string());
    }
    s
}

/// A take of `slot` got no answer (the coordinator may have applied it)
/// and the release tried at once failed too: unless the state holds a slot
/// or owes a release already, the slot is owed back (due now, one try
/// made), so that a take that landed is never left to a node not in
/// maintenance. Giving back a slot not held is harmless (both back-ends
/// answer it as done), and `taken` drops the debt if a later take of the
/// same slot succeeds.
pub fn take_unanswered(state: &State, slot: FleetSlot, now: i64, error: &str) -> State {
    let mut s = state.clone();
    if s.fleet.held.is_none() && s.fleet.pending_release.is_none() {
        s.fleet.pending_release = Some(PendingRelease {
            slot,
            due: now,
            tries: 1,
            last_try: Some(now),
            last_error: Some(error.to_string()),
            extra: Default::default(),
        });
    }
    s
}

/// The same slot: one group's, one id's (the time it was taken aside).
pub fn same_slot(a: &FleetSlot, b: &FleetSlot) -> bool {
    a.backend == b.backend && a.group == b.group && a.id == b.id
}

/// The first wait of `umm on --wait`, and the longest.
pub const WAIT_FIRST: Duration = Duration::from_secs(2);
pub const WAIT_MAX: Duration = Duration::from_secs(60);

/// The wait before try `attempt` + 1 (from 0): doubling from
/// `WAIT_FIRST` up to `WAIT_MAX`, then scaled by `jitter` (0.0 to 1.0)
/// to between half and one and a half times that, so that nodes refused
/// together do not all come back together; never past `left`.
pub fn backoff(attempt: u32, jitter: f64, left: Duration) -> Duration {
    let base = WAIT_FIRST
        .checked_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .unwrap_or(WAIT_MAX)
        .min(WAIT_MAX);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    base.mul_f64(0.5 + jitter).min(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str) -> FleetSlot {
        FleetSlot {
            backend: "etcd".into(),
            group: "g".into(),
            id: id.into(),
            since: 1,
            extra: Default::default(),
        }
    }

    fn holding(id: &str) -> State {
        taken(&State::default(), slot(id))
    }

    #[test]
    fn when_a_slot_is_owed_back() {
        // (state, verify clean, held after, pending after)
        let cases = [
            (holding("a"), true, false, true),
            (holding("a"), false, true, false),
            (State::default(), true, false, false),
            (State::default(), false, false, false),
        ];
        for (state, clean, held, pending) in cases {
            let s = back_in_service(&state, clean, 5);
            assert_eq!(s.fleet.held.is_some(), held, "clean {clean}");
            assert_eq!(s.fleet.pending_release.is_some(), pending, "clean {clean}");
            if let Some(p) = s.fleet.pending_release {
                assert_eq!((p.slot.id.as_str(), p.due, p.tries), ("a", 5, 0));
            }
        }
        let s = cancelled(&holding("a"), 7);
        assert!(s.fleet.held.is_none());
        assert_eq!(s.fleet.pending_release.unwrap().due, 7);
        assert_eq!(give_up(&holding("a"), 7), cancelled(&holding("a"), 7));
    }

    #[test]
    fn a_release_clears_only_its_own_slot() {
        let owed = cancelled(&holding("a"), 7);
        // (released slot, pending left)
        let cases = [(slot("a"), false), (slot("b"), true)];
        for (done, left) in cases {
            let s = released(&owed, &done);
            assert_eq!(s.fleet.pending_release.is_some(), left, "{}", done.id);
        }
        let s = released(&holding("a"), &slot("a"));
        assert!(s.fleet.held.is_none());
        let s = release_failed(&owed, &slot("a"), 9, "down");
        let p = s.fleet.pending_release.as_ref().unwrap();
        assert_eq!(
            (p.tries, p.last_try, p.last_error.as_deref()),
            (1, Some(9), Some("down"))
        );
        let s = release_failed(&s, &slot("a"), 10, "still down");
        assert_eq!(s.fleet.pending_release.unwrap().tries, 2);
        let s = release_failed(&owed, &slot("b"), 9, "down");
        assert_eq!(s.fleet.pending_release.unwrap().tries, 0);
        // Taken again while its release is owed: held, nothing owed.
        let s = taken(&owed, slot("a"));
        assert!(s.fleet.held.is_some() && s.fleet.pending_release.is_none());
        let s = taken(&owed, slot("b"));
        assert!(s.fleet.held.is_some() && s.fleet.pending_release.is_some());
    }

    #[test]
    fn a_take_without_an_answer_is_owed_back_unless_something_is_held_or_owed() {
        let owed_b = cancelled(&holding("b"), 3);
        // (state, owed after: slot id and tries; held after)
        let cases = [
            (State::default(), Some(("a", 1)), None),
            (holding("a"), None, Some("a")),
            (holding("b"), None, Some("b")),
            (owed_b.clone(), Some(("b", 0)), None),
        ];
        for (state, owed, held) in cases {
            let s = take_unanswered(&state, slot("a"), 9, "cut");
            let p = s.fleet.pending_release.as_ref();
            assert_eq!(p.map(|p| (p.slot.id.as_str(), p.tries)), owed, "{state:?}");
            assert_eq!(s.fleet.held.as_ref().map(|h| h.id.as_str()), held);
        }
        let s = take_unanswered(&State::default(), slot("a"), 9, "cut");
        let p = s.fleet.pending_release.as_ref().unwrap();
        assert_eq!(
            (p.due, p.last_try, p.last_error.as_deref()),
            (9, Some(9), Some("cut"))
        );
        // Another try fails the same way: still one debt, as it was.
        assert_eq!(take_unanswered(&s, slot("a"), 12, "again"), s);
        // A later take of the slot succeeds: held, nothing owed.
        let later = taken(&s, slot("a"));
        assert_eq!(later.fleet.held.as_ref().map(|h| h.id.as_str()), Some("a"));
        assert!(later.fleet.pending_release.is_none());
        // The release lands: nothing held, nothing owed.
        let s = released(&s, &slot("a"));
        assert!(s.fleet.held.is_none() && s.fleet.pending_release.is_none());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_never_passes_the_span_left() {
        let long = Duration::from_secs(3600);
        // (attempt, jitter, expected)
        let cases = [
            (0, 0.5, Duration::from_secs(2)),
            (1, 0.5, Duration::from_secs(4)),
            (2, 0.5, Duration::from_secs(8)),
            (5, 0.5, Duration::from_secs(60)),
            (40, 0.5, Duration::from_secs(60)),
            (u32::MAX, 0.5, Duration::from_secs(60)),
            (0, 0.0, Duration::from_secs(1)),
            (0, 1.0, Duration::from_secs(3)),
            (0, 7.0, Duration::from_secs(3)),
            (0, f64::NAN, Duration::from_secs(2)),
            (5, 1.0, Duration::from_secs(90)),
        ];
        for (attempt, jitter, want) in cases {
            assert_eq!(backoff(attempt, jitter, long), want, "{attempt} {jitter}");
        }
        assert_eq!(
            backoff(5, 0.5, Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }
}

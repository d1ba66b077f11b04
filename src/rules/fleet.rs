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
    } else {
        s.fleet.kept = s.fleet.held.is_some();
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

/// A release of `slot` owed from `now`; `failed`: the error of the
/// release (or take) already tried once at `now`.
fn owed(slot: FleetSlot, now: i64, failed: Option<&str>) -> PendingRelease {
    PendingRelease {
        slot,
        due: now,
        tries: u32::from(failed.is_some()),
        last_try: failed.map(|_| now),
        last_error: failed.map(str::to_string),
        extra: Default::default(),
    }
}

fn owe(s: &mut State, now: i64) {
    s.fleet.kept = false;
    if let Some(slot) = s.fleet.held.take() {
        s.fleet.pending_release = Some(owed(slot, now, None));
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
    if s.fleet.taking.as_ref().is_some_and(|t| same_slot(t, &slot)) {
        s.fleet.taking = None;
    }
    s.fleet.held = Some(slot);
    s.fleet.kept = false;
    s
}

/// Before a take is sent: the slot it asks for is recorded as one this
/// node may hold, so that a run killed before it hears the answer leaves
/// something for the reconcile to settle.
pub fn intend(state: &State, slot: FleetSlot) -> State {
    let mut s = state.clone();
    s.fleet.taking = Some(slot);
    s
}

/// The take of `slot` was refused, or never reached the coordinator, or
/// was given back at once: nothing may be held by it.
pub fn not_taken(state: &State, slot: &FleetSlot) -> State {
    let mut s = state.clone();
    if s.fleet.taking.as_ref().is_some_and(|t| same_slot(t, slot)) {
        s.fleet.taking = None;
    }
    s
}

/// A slot this node holds or may hold that the undo of a take could not
/// give back: owed (due now, one try made), whatever else is recorded
/// (a newer debt than one of another slot; the older is lost only when
/// two slots are owed at once, which takes two unsettled groups).
pub fn undo_failed(state: &State, slot: FleetSlot, now: i64, error: &str) -> State {
    let mut s = not_taken(state, &slot);
    if s.fleet.held.as_ref().is_some_and(|h| same_slot(h, &slot)) {
        s.fleet.held = None;
        s.fleet.kept = false;
    }
    s.fleet.pending_release = Some(owed(slot, now, Some(error)));
    s
}

/// Something a reconcile has to settle: a take not settled, or a slot
/// held by a node in service (not kept on purpose).
pub fn unsettled(state: &State) -> bool {
    let f = &state.fleet;
    f.taking.is_some() || (state.maintenance.is_none() && f.held.is_some() && !f.kept)
}

/// Anything for a reconcile to do: something unsettled, a release owed,
/// or a halt call not settled (`rules::halt`).
pub fn needs_reconcile(state: &State) -> bool {
    unsettled(state) || state.fleet.pending_release.is_some() || state.fleet.halt_sending.is_some()
}

/// The reconcile (under the fleet lock, so no take of this node is in
/// flight): a take not settled counts as held. A node in maintenance
/// (pending, in force or being left) keeps it as held, given back when it
/// is back in service; an operational node owes it back, and owes back a
/// slot it holds unless it was kept on purpose. One slot is owed at a
/// time: a take not settled while another slot is owed waits for that
/// release to land.
pub fn reconcile(state: &State, now: i64) -> State {
    let mut s = state.clone();
    if let Some(t) = s.fleet.taking.take() {
        let held_same = s.fleet.held.as_ref().is_some_and(|h| same_slot(h, &t));
        let owed_same = s
            .fleet
            .pending_release
            .as_ref()
            .is_some_and(|p| same_slot(&p.slot, &t));
        if held_same || owed_same {
            // Already counted.
        } else if s.maintenance.is_some() && s.fleet.held.is_none() {
            s.fleet.held = Some(t);
        } else if s.maintenance.is_none() && s.fleet.pending_release.is_none() {
            s.fleet.pending_release = Some(owed(t, now, None));
        } else {
            s.fleet.taking = Some(t);
        }
    }
    if s.maintenance.is_none() && !s.fleet.kept && s.fleet.pending_release.is_none() {
        owe(&mut s, now);
    }
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
        s = not_taken(&s, &slot);
        s.fleet.pending_release = Some(owed(slot, now, Some(error)));
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

    fn in_maintenance(state: &State) -> State {
        let policy = crate::model::settings::Policy {
            enabled: true,
            reboot_count: 4,
        };
        let mut s = state.clone();
        s.maintenance = crate::rules::request(&State::default(), policy, 1, None, vec![])
            .unwrap()
            .maintenance;
        s
    }

    #[test]
    fn a_reconcile_settles_every_take_and_every_slot_of_a_node_in_service() {
        let may_hold = |s: &State| intend(s, slot("a"));
        let kept = back_in_service(&holding("a"), false, 2);
        let owed_b = cancelled(&holding("b"), 3);
        // (state, unsettled, held after, owed after, taking after)
        let cases = [
            (State::default(), false, None, None, None),
            (may_hold(&State::default()), true, None, Some("a"), None),
            (holding("a"), true, None, Some("a"), None),
            (kept.clone(), false, Some("a"), None, None),
            (may_hold(&kept), true, Some("a"), None, None),
            (may_hold(&owed_b), true, None, Some("b"), Some("a")),
            (
                may_hold(&cancelled(&holding("a"), 3)),
                true,
                None,
                Some("a"),
                None,
            ),
            (in_maintenance(&State::default()), false, None, None, None),
            (in_maintenance(&holding("a")), false, Some("a"), None, None),
            (
                in_maintenance(&may_hold(&State::default())),
                true,
                Some("a"),
                None,
                None,
            ),
            (
                in_maintenance(&may_hold(&holding("b"))),
                true,
                Some("b"),
                None,
                Some("a"),
            ),
        ];
        for (state, open, held, owed, taking) in cases {
            assert_eq!(unsettled(&state), open, "{state:?}");
            let s = reconcile(&state, 5);
            let id = |x: Option<&FleetSlot>| x.map(|x| x.id.clone());
            assert_eq!(id(s.fleet.held.as_ref()).as_deref(), held, "{state:?}");
            let p = s.fleet.pending_release.as_ref().map(|p| &p.slot);
            assert_eq!(id(p).as_deref(), owed, "{state:?}");
            assert_eq!(id(s.fleet.taking.as_ref()).as_deref(), taking, "{state:?}");
            // Settled: a second reconcile changes nothing.
            assert_eq!(reconcile(&s, 6), s, "{state:?}");
        }
    }

    #[test]
    fn an_intent_is_settled_by_the_answer() {
        let s = intend(&State::default(), slot("a"));
        assert!(s.fleet.taking.is_some());
        assert_eq!(not_taken(&s, &slot("a")), State::default());
        assert_eq!(not_taken(&s, &slot("b")), s);
        let t = taken(&s, slot("a"));
        assert!(t.fleet.taking.is_none() && t.fleet.held.is_some());
        let u = undo_failed(&t, slot("a"), 4, "down");
        assert!(u.fleet.taking.is_none() && u.fleet.held.is_none());
        let p = u.fleet.pending_release.unwrap();
        assert_eq!((p.slot.id.as_str(), p.tries, p.due), ("a", 1, 4));
        let u = undo_failed(&s, slot("a"), 4, "down");
        assert!(u.fleet.taking.is_none() && u.fleet.pending_release.is_some());
        // A lost answer that cannot be owed (a slot held) stays "may hold".
        let h = intend(&holding("b"), slot("a"));
        assert_eq!(take_unanswered(&h, slot("a"), 4, "cut"), h);
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

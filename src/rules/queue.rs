//! The queue of rolling maintenance, pure: `umm on --queue` saves a
//! request (`enqueue`); each run of `umm internal queue` asks whether it is
//! due (`due`), what it waits for (`waits_for`: the group's halt, the
//! window, the gate, the slot), and either records the wait with backoff
//! and jitter (`waited`) or turns the request into a plain one for the
//! next boot (`turn`). A request still waiting after its span ends
//! (`expire`); `umm off` cancels it (`cancel`).

use std::time::Duration;

use super::gate::Gate;
use super::request::request;
use super::Refusal;
use crate::model::rolling::{Queued, Then};
use crate::model::settings::Policy;
use crate::model::state::{Requester, State};
use crate::model::timefmt::rfc3339;

/// The wait after the first try that found the way closed, and the
/// longest: the timer runs every minute, so waits shorter than that are
/// moot, and a freed slot is taken within about `RETRY_MAX`.
pub const RETRY_FIRST: Duration = Duration::from_secs(60);
pub const RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// `umm on --queue`: the request, saved to wait for its turn for `span`.
/// Refused as `umm on` is (disabled, pending, in maintenance, leaving),
/// and when one is queued already.
pub fn enqueue(
    state: &State,
    policy: Policy,
    now: i64,
    span: Duration,
    then: Then,
    argv: Vec<String>,
) -> Result<State, Refusal> {
    // The same refusals as a plain request, without making one.
    request(state, policy, now, None, Vec::new())?;
    let mut s = state.clone();
    let span = i64::try_from(span.as_secs()).unwrap_or(i64::MAX);
    s.queued = Some(Queued {
        since: now,
        expires: now.saturating_add(span),
        then,
        argv: (!argv.is_empty()).then_some(argv),
        tries: 0,
        next_try: now,
        waiting_for: Vec::new(),
        by: None,
        from: None,
        extra: Default::default(),
    });
    Ok(s)
}

/// Where a queued request stands at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing queued.
    Nothing,
    /// Its span is over: it ends unserved (`expire`).
    Expired,
    /// Backing off until `next_try`.
    NotYet,
    /// Try now.
    Now,
}

pub fn due(state: &State, now: i64) -> Due {
    match &state.queued {
        None => Due::Nothing,
        Some(q) if now >= q.expires => Due::Expired,
        Some(q) if now < q.next_try => Due::NotYet,
        Some(_) => Due::Now,
    }
}

/// What stands in the way at this try, in the order they are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Way<'a> {
    /// The group's roll is halted: by which node, and why.
    pub halted: Option<(&'a str, &'a str)>,
    /// Whether a window is open, and when the next one opens.
    pub window_open: bool,
    pub next_window: Option<i64>,
    /// The gate's verdict; `None` when it was not asked (something before
    /// it already stands in the way).
    pub gate: Option<&'a Gate>,
    /// The slot holders when no slot was free.
    pub slot_holders: Option<&'a [String]>,
}

/// One line for each thing the request waits for; empty: its turn.
pub fn waits_for(way: &Way<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some((node, why)) = way.halted {
        lines.push(format!(
            "the group's roll is halted by {node} ({why}); `umm off` or `umm fleet release` on {node} resumes it"
        ));
    }
    if !way.window_open {
        lines.push(match way.next_window {
            Some(at) => format!("window: the next opens at {}", rfc3339(at)),
            None => "window: none opens within a week".into(),
        });
    }
    if let Some(Gate::Red(reasons)) = way.gate {
        lines.extend(reasons.iter().map(|r| format!("gate: {r}")));
    }
    if let Some(holders) = way.slot_holders {
        lines.push(format!("slot: all held ({})", holders.join(", ")));
    }
    lines
}

/// A try that found the way closed: recorded, and the next one backed off
/// (doubling from `RETRY_FIRST` to `RETRY_MAX`, times 0.5 to 1.5 by
/// `jitter` in 0..1), never past the request's expiry.
pub fn waited(state: &State, now: i64, lines: Vec<String>, jitter: f64) -> State {
    let mut s = state.clone();
    if let Some(q) = s.queued.as_mut() {
        let wait = backoff(q.tries, jitter);
        let wait = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
        q.tries = q.tries.saturating_add(1);
        q.next_try = now.saturating_add(wait).min(q.expires);
        q.waiting_for = lines;
    }
    s
}

/// The wait before try `tries` + 1.
pub fn backoff(tries: u32, jitter: f64) -> Duration {
    let base = RETRY_FIRST
        .checked_mul(1u32.checked_shl(tries.min(16)).unwrap_or(u32::MAX))
        .unwrap_or(RETRY_MAX)
        .min(RETRY_MAX);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    base.mul_f64(0.5 + jitter)
}

/// Its turn: the queued request becomes a plain request for the next boot
/// (with its COMMAND), and leaves the queue. Refused as `umm on` would be
/// (the state changed since it was queued: the node was disabled, or a
/// crash loop put it in maintenance); the caller then drops it.
pub fn turn(
    state: &State,
    policy: Policy,
    now: i64,
    requested_by: Option<Requester>,
) -> Result<State, Refusal> {
    let mut s = state.clone();
    let Some(q) = s.queued.take() else {
        return Err(Refusal::NotInMaintenance);
    };
    let mut s = request(&s, policy, now, requested_by, q.argv.unwrap_or_default())?;
    if let Some(m) = s.maintenance.as_mut() {
        m.then = q.then;
    }
    Ok(s)
}

/// The span is over: the request leaves the queue unserved.
pub fn expire(state: &State) -> State {
    cancel(state)
}

/// `umm off`: a queued request is dropped (no slot is held while queued).
pub fn cancel(state: &State) -> State {
    let mut s = state.clone();
    s.queued = None;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::{Maintenance, Phase, Reason};

    const ON: Policy = Policy {
        enabled: true,
        reboot_count: 3,
    };

    fn queued(now: i64) -> State {
        enqueue(
            &State::default(),
            ON,
            now,
            Duration::from_secs(3600),
            Then::Off,
            vec!["apt-get".into(), "-y".into(), "upgrade".into()],
        )
        .unwrap()
    }

    #[test]
    fn a_request_is_queued_once_and_refused_as_umm_on_is() {
        let s = queued(100);
        let q = s.queued.as_ref().unwrap();
        assert_eq!(
            (q.since, q.expires, q.then, q.tries, q.next_try),
            (100, 3700, Then::Off, 0, 100)
        );
        assert!(s.maintenance.is_none(), "queued is not pending");
        let again = enqueue(&s, ON, 101, Duration::from_secs(1), Then::Stay, vec![]);
        assert_eq!(again, Err(Refusal::AlreadyQueued));
        let off = Policy {
            enabled: false,
            ..ON
        };
        let refused = enqueue(
            &State::default(),
            off,
            1,
            Duration::from_secs(1),
            Then::Stay,
            vec![],
        );
        assert_eq!(refused, Err(Refusal::DisabledByPolicy));
        let pending = request(&State::default(), ON, 1, None, vec![]).unwrap();
        let refused = enqueue(&pending, ON, 1, Duration::from_secs(1), Then::Stay, vec![]);
        assert_eq!(refused, Err(Refusal::AlreadyPending));
        let long = enqueue(&State::default(), ON, 5, Duration::MAX, Then::Stay, vec![]).unwrap();
        assert_eq!(long.queued.unwrap().expires, i64::MAX);
        let plain = request(&s, ON, 1, None, vec![]);
        assert_eq!(
            plain,
            Err(Refusal::AlreadyQueued),
            "a plain umm on while queued"
        );
    }

    #[test]
    fn a_request_is_due_after_its_backoff_and_expires_after_its_span() {
        let s = queued(100);
        let later = waited(&s, 200, vec!["slot: all held (a, b)".into()], 0.5);
        // (state, now, due)
        let cases = [
            (State::default(), 100, Due::Nothing),
            (s.clone(), 100, Due::Now),
            (s.clone(), 3699, Due::Now),
            (s.clone(), 3700, Due::Expired),
            (later.clone(), 259, Due::NotYet),
            (later.clone(), 260, Due::Now),
            (later.clone(), 5000, Due::Expired),
        ];
        for (state, now, want) in cases {
            assert_eq!(due(&state, now), want, "{now}");
        }
        let q = later.queued.as_ref().unwrap();
        assert_eq!((q.tries, q.next_try), (1, 260));
        assert_eq!(q.waiting_for, vec!["slot: all held (a, b)".to_string()]);
        // Near the end, the next try is the expiry, never past it.
        let last = waited(&later, 3690, vec![], 1.0);
        assert_eq!(last.queued.as_ref().unwrap().next_try, 3700);
        assert_eq!(due(&last, 3700), Due::Expired);
        assert!(expire(&last).queued.is_none());
        assert!(cancel(&last).queued.is_none());
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        // (tries, jitter, wait in seconds)
        let cases = [
            (0, 0.5, 60),
            (1, 0.5, 120),
            (2, 0.5, 240),
            (3, 0.5, 300),
            (u32::MAX, 0.5, 300),
            (0, 0.0, 30),
            (0, 1.0, 90),
            (3, 1.0, 450),
            (3, -4.0, 150),
            (0, f64::NAN, 60),
            (0, f64::INFINITY, 60),
        ];
        for (tries, jitter, want) in cases {
            assert_eq!(
                backoff(tries, jitter),
                Duration::from_secs(want),
                "{tries} {jitter}"
            );
        }
    }

    #[test]
    fn the_wait_names_each_thing_in_the_way() {
        let red = Gate::Red(vec!["gate_alerts: NodeDown".into()]);
        let green = Gate::Green;
        let holders = vec!["node1".to_string(), "node2".to_string()];
        let clear = Way {
            halted: None,
            window_open: true,
            next_window: None,
            gate: Some(&green),
            slot_holders: None,
        };
        // (way, lines)
        let cases: Vec<(Way, Vec<&str>)> = vec![
            (clear.clone(), vec![]),
            (Way { gate: None, ..clear.clone() }, vec![]),
            (
                Way { halted: Some(("node4", "COMMAND exited 1")), ..clear.clone() },
                vec!["the group's roll is halted by node4 (COMMAND exited 1); `umm off` or `umm fleet release` on node4 resumes it"],
            ),
            (
                Way { window_open: false, next_window: Some(1796680800), ..clear.clone() },
                vec!["window: the next opens at 2026-12-07T22:00:00Z"],
            ),
            (
                Way { window_open: false, ..clear.clone() },
                vec!["window: none opens within a week"],
            ),
            (Way { gate: Some(&red), ..clear.clone() }, vec!["gate: gate_alerts: NodeDown"]),
            (
                Way { slot_holders: Some(&holders), ..clear.clone() },
                vec!["slot: all held (node1, node2)"],
            ),
        ];
        for (way, want) in cases {
            assert_eq!(waits_for(&way), want, "{way:?}");
        }
    }

    #[test]
    fn its_turn_makes_a_plain_request_with_its_command() {
        let s = queued(100);
        let turned = turn(&s, ON, 500, None).unwrap();
        assert!(turned.queued.is_none());
        let m = turned.maintenance.as_ref().unwrap();
        assert_eq!(
            (m.phase, m.reason, m.requested, m.then),
            (Phase::Pending, Reason::Manual, 500, Then::Off)
        );
        assert_eq!(
            m.command.as_ref().unwrap().argv,
            ["apt-get", "-y", "upgrade"]
        );
        // Nothing queued: no turn.
        assert!(turn(&State::default(), ON, 500, None).is_err());
        // A crash loop put the node in maintenance meanwhile: refused.
        let mut busy = s.clone();
        busy.maintenance = Some(Maintenance {
            phase: Phase::Active,
            ..turned.maintenance.clone().unwrap()
        });
        assert_eq!(
            turn(&busy, ON, 500, None),
            Err(Refusal::AlreadyInMaintenance)
        );
    }
}

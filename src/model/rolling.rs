//! Rolling maintenance, the data: maintenance windows as written in
//! umm.toml (`windows = ["Mon..Fri 22:00-05:00"]`), parsed here so the
//! configuration loader can place a bad one at its line. Whether a window
//! is open at a given time is `rules::window`'s (it needs the time zone).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::extra::Extra;

/// The days of the week, Monday first (as ISO 8601 and jiff count them).
pub const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Minutes in a day: a window's end may be `24:00`.
pub const DAY_MINUTES: u16 = 24 * 60;

/// One maintenance window: on the listed days (the day it starts), from
/// `start` to `end` in the node's local wall-clock time. When `end` is not
/// after `start` the window runs past midnight into the next day
/// ("Mon..Fri 22:00-05:00" is open Friday 22:00 to Saturday 05:00, and not
/// Monday 00:00-05:00, which belongs to Sunday's window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after local midnight, 0..1440.
    pub start: u16,
    /// Minutes after local midnight, 1..=1440.
    pub end: u16,
}

impl Window {
    /// The window runs past midnight into the next day.
    pub fn overnight(&self) -> bool {
        self.end <= self.start
    }

    /// Parses `DAYS HH:MM-HH:MM`: DAYS is a comma-separated list of days
    /// (`Mon`) and ranges (`Mon..Fri`, `Fri..Mon` wraps), or `daily`.
    pub fn parse(text: &str) -> Result<Window, String> {
        let shape =
            || format!("window {text:?}: expected DAYS HH:MM-HH:MM, e.g. \"Mon..Fri 22:00-05:00\"");
        let mut words = text.split_whitespace();
        let (Some(days), Some(times), None) = (words.next(), words.next(), words.next()) else {
            return Err(shape());
        };
        let days = parse_days(days).map_err(|e| format!("window {text:?}: {e}"))?;
        let (start, end) = times.split_once('-').ok_or_else(shape)?;
        let start = parse_clock(start, false).map_err(|e| format!("window {text:?}: {e}"))?;
        let end = parse_clock(end, true).map_err(|e| format!("window {text:?}: {e}"))?;
        if start == end {
            return Err(format!(
                "window {text:?}: starts and ends at the same time (00:00-24:00 is a whole day)"
            ));
        }
        Ok(Window { days, start, end })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = DAYS
            .iter()
            .zip(self.days)
            .filter_map(|(name, on)| on.then_some(*name))
            .collect();
        let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(
            f,
            "{} {}-{}",
            days.join(","),
            clock(self.start),
            clock(self.end)
        )
    }
}

/// `[rolling]` in umm.toml: when and on what condition a node may enter
/// maintenance. The defaults (no windows, no gate) let it enter any time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollingSettings {
    /// Maintenance windows in the node's local time; none: always open.
    pub windows: Vec<Window>,
    /// The Prometheus server asked by the gate (`http://host:9090`).
    pub gate_url: Option<String>,
    /// Firing alerts whose name matches this regex (RE2, anchored, matched
    /// by Prometheus) close the gate.
    pub gate_alerts: Option<String>,
    /// A PromQL expression that must return nothing for the gate to open.
    pub gate_expr: Option<String>,
    /// The bound on each query.
    pub gate_timeout: Duration,
}

pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for RollingSettings {
    fn default() -> Self {
        RollingSettings {
            windows: Vec::new(),
            gate_url: None,
            gate_alerts: None,
            gate_expr: None,
            gate_timeout: DEFAULT_GATE_TIMEOUT,
        }
    }
}

impl RollingSettings {
    /// How the keys fit together: which key is at fault, and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let queries = self.gate_alerts.is_some() || self.gate_expr.is_some();
        match (&self.gate_url, queries) {
            (None, true) => Err((
                if self.gate_alerts.is_some() {
                    "gate_alerts"
                } else {
                    "gate_expr"
                },
                "needs gate_url, the Prometheus server to ask".into(),
            )),
            (Some(_), false) => Err((
                "gate_url",
                "set gate_alerts or gate_expr too: what would close the gate".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// How long a queued request waits for its turn unless `umm on --queue`
/// says otherwise.
pub const DEFAULT_QUEUE_SPAN: Duration = Duration::from_secs(24 * 3600);

/// What the maintenance boot does once COMMAND exited 0 and the on.d hooks
/// passed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Then {
    /// Stays in maintenance until `umm off` (as a plain `umm on`).
    #[default]
    Stay,
    /// Leaves by itself, as `umm off` would.
    Off,
    /// Leaves by itself, as `umm off reboot` would.
    Reboot,
}

impl Then {
    pub fn is_stay(&self) -> bool {
        *self == Then::Stay
    }
}

/// A request that waits for its turn (`umm on --queue`): the window, the
/// gate, the group's halt and a free slot. Kept in the state so that it
/// outlives the caller's session and the node's reboots.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// When it was queued (Unix seconds).
    pub since: i64,
    /// When it ends unserved (`since` + its span).
    pub expires: i64,
    #[serde(default)]
    pub then: Then,
    /// COMMAND, to run in the maintenance boot; none: the node just waits
    /// there (or leaves at once with `then`).
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Tries made so far (the backoff's exponent).
    #[serde(default)]
    pub tries: u32,
    /// No try before this time (backoff with jitter).
    #[serde(default)]
    pub next_try: i64,
    /// What the last try waited for, one line each (`umm status`).
    #[serde(default)]
    pub waiting_for: Vec<String>,
    /// Who queued it, and from where (the request's `requested_by` at
    /// its turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

fn day_index(name: &str) -> Result<usize, String> {
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("{name:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    for part in text.split(',') {
        let (first, last) = match part.split_once("..") {
            Some((a, b)) => (day_index(a)?, day_index(b)?),
            None => (day_index(part)?, day_index(part)?),
        };
        // A range wraps past Sunday: Fri..Mon is Fri, Sat, Sun, Mon.
        let len = (last + 7 - first) % 7 + 1;
        for i in 0..len {
            if let Some(d) = days.get_mut((first + i) % 7) {
                *d = true;
            }
        }
    }
    Ok(days)
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn parse_clock(text: &str, end: bool) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time of day (HH:MM, 00:00 to 24:00)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    let minutes = h * 60 + m;
    match (h, m) {
        (24, 0) if end => Ok(DAY_MINUTES),
        (24, 0) => Err(format!(
            "{text:?}: a window cannot start at 24:00 (use 00:00)"
        )),
        (0..=23, 0..=59) => Ok(minutes),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(list: &[usize]) -> [bool; 7] {
        let mut d = [false; 7];
        for i in list {
            d[*i] = true;
        }
        d
    }

    #[test]
    fn windows_parse_as_written() {
        // (text, days, start, end, overnight)
        let cases = [
            (
                "Mon..Fri 22:00-05:00",
                days(&[0, 1, 2, 3, 4]),
                1320,
                300,
                true,
            ),
            ("Sat,Sun 00:00-24:00", days(&[5, 6]), 0, 1440, false),
            ("Fri..Mon 01:30-02:45", days(&[4, 5, 6, 0]), 90, 165, false),
            (
                "mon,Wed..thu 9:00-17:00",
                days(&[0, 2, 3]),
                540,
                1020,
                false,
            ),
            ("daily 23:00-00:00", [true; 7], 1380, 0, true),
            ("Sun..Sun 12:00-11:59", days(&[6]), 720, 719, true),
            ("  Tue   03:00-04:00 ", days(&[1]), 180, 240, false),
        ];
        for (text, d, start, end, overnight) in cases {
            let w = Window::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((w.days, w.start, w.end), (d, start, end), "{text}");
            assert_eq!(w.overnight(), overnight, "{text}");
        }
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        // (text, part of the message)
        let cases = [
            ("", "expected DAYS HH:MM-HH:MM"),
            ("Mon..Fri", "expected DAYS HH:MM-HH:MM"),
            ("Mon..Fri 22:00", "expected DAYS HH:MM-HH:MM"),
            ("Mon 01:00-02:00 extra", "expected DAYS HH:MM-HH:MM"),
            ("Mo..Fr 22:00-05:00", "\"Mo\" is not a day"),
            ("Mon,,Tue 01:00-02:00", "\"\" is not a day"),
            ("Mon 25:00-02:00", "not a time of day"),
            ("Mon 01:60-02:00", "not a time of day"),
            ("Mon 1:0-02:00", "not a time of day"),
            ("Mon -1:00-02:00", "not a time of day"),
            ("Mon 24:00-02:00", "cannot start at 24:00"),
            ("Mon 24:01-02:00", "not a time of day"),
            ("Mon 02:00-02:00", "same time"),
            ("Mon 00:00-00:00", "same time"),
            ("Mon 123:00-02:00", "not a time of day"),
        ];
        for (text, want) in cases {
            let e = Window::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_queued_request_is_bounded_as_the_state_is_loaded() {
        use crate::model::state::State;
        let queued = |argv: Vec<String>, waits: usize| State {
            queued: Some(Queued {
                since: 1,
                expires: 2,
                then: Then::Off,
                argv: Some(argv),
                tries: 0,
                next_try: 1,
                waiting_for: vec!["slot".into(); waits],
                by: None,
                from: None,
                extra: Default::default(),
            }),
            ..State::default()
        };
        // (argv length, waits, kept, waits kept)
        let cases = [(3, 2, true, 2), (3, 40, true, 16), (257, 1, false, 0)];
        for (args, waits, kept, waits_kept) in cases {
            let mut s = queued(vec!["x".into(); args], waits);
            let notes = s.bound();
            assert_eq!(s.queued.is_some(), kept, "{args}");
            let left = s.queued.map_or(0, |q| q.waiting_for.len());
            assert_eq!(left, waits_kept, "{args} {waits}");
            assert_eq!(notes.is_empty(), waits <= 16 && kept, "{notes:?}");
        }
        let mut s = queued(vec!["y".repeat(5000)], 0);
        s.bound();
        assert!(s.queued.is_none(), "an argument too long drops the request");
    }

    #[test]
    fn a_window_prints_as_it_parses() {
        for text in ["Mon,Tue,Wed,Thu,Fri 22:00-05:00", "Sat,Sun 00:00-24:00"] {
            assert_eq!(Window::parse(text).unwrap().to_string(), text);
        }
    }
}

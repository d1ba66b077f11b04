//! Maintenance windows: is one open now, and when does the next one open,
//! in the node's local time zone. Windows are wall-clock times: on the day
//! clocks jump forward, a window inside the skipped hour never opens, and
//! on the day they fall back one inside the repeated hour is open twice as
//! long. No windows configured means always open. The zone is the caller's
//! (`sys` reads it from /etc/localtime under the root prefix).

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

use crate::model::rolling::Window;

/// How far ahead `next_open` looks: every window recurs within a week.
const LOOKAHEAD_DAYS: i64 = 8;

/// Is any of `windows` open at `now` (Unix seconds)? An empty list is
/// always open. A time jiff cannot place (far outside its range) is closed.
pub fn open(windows: &[Window], now: i64, tz: &TimeZone) -> bool {
    if windows.is_empty() {
        return true;
    }
    let Some(local) = local_time(now, tz) else {
        return false;
    };
    let minute =
        u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(u16::MAX);
    let today = weekday(local.date());
    let yesterday = (today + 6) % 7;
    windows.iter().any(|w| covers(w, today, yesterday, minute))
}

/// The first time after `now` at which a window opens (Unix seconds), or
/// `None` when none opens within a week (no windows, or none that exists on
/// the wall clock).
pub fn next_open(windows: &[Window], now: i64, tz: &TimeZone) -> Option<i64> {
    let today = local_time(now, tz)?.date();
    let mut starts: Vec<i64> = (-1..=LOOKAHEAD_DAYS)
        .filter_map(|offset| today.checked_add(offset.days()).ok())
        .flat_map(|day| windows.iter().filter_map(move |w| start_on(w, day, tz)))
        .filter(|start| *start > now)
        .collect();
    starts.sort_unstable();
    // A start that falls in a skipped hour is moved past it, where its
    // window may already be over: keep only starts that do open one.
    starts.into_iter().find(|s| open(windows, *s, tz))
}

fn local_time(now: i64, tz: &TimeZone) -> Option<DateTime> {
    Timestamp::from_second(now).ok().map(|t| tz.to_datetime(t))
}

/// Monday 0 .. Sunday 6, as `Window::days`.
fn weekday(d: Date) -> usize {
    usize::try_from(d.weekday().to_monday_zero_offset()).unwrap_or(0)
}

fn listed(w: &Window, day: usize) -> bool {
    w.days.get(day).copied().unwrap_or(false)
}

/// Does `w` cover local `minute` of a day that is `today` (weekday), the
/// day after `yesterday`?
fn covers(w: &Window, today: usize, yesterday: usize, minute: u16) -> bool {
    if w.overnight() {
        (listed(w, today) && minute >= w.start) || (listed(w, yesterday) && minute < w.end)
    } else {
        listed(w, today) && minute >= w.start && minute < w.end
    }
}

/// When `w` opens on local `day`, if it is one of its days.
fn start_on(w: &Window, day: Date, tz: &TimeZone) -> Option<i64> {
    if !listed(w, weekday(day)) {
        return None;
    }
    let hour = i8::try_from(w.start / 60).ok()?;
    let minute = i8::try_from(w.start % 60).ok()?;
    let start = tz.to_ambiguous_zoned(day.at(hour, minute, 0, 0));
    if let AmbiguousOffset::Gap { .. } = start.offset() {
        // The clocks jump over the start: the window opens at the jump.
        let before_jump = start.earlier().ok()?.timestamp();
        let jump = tz.following(before_jump).next()?;
        return Some(jump.timestamp().as_second());
    }
    Some(start.compatible().ok()?.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Europe/Berlin's rule: CEST from the last Sunday of March 02:00 to
    /// the last Sunday of October 03:00 (2026: March 29, October 25).
    fn berlin() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    /// America/New_York's (2026: March 8, November 1).
    fn new_york() -> TimeZone {
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
    }

    fn utc(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_second()
    }

    fn local(text: &str, tz: &TimeZone) -> i64 {
        let dt: DateTime = text.parse().unwrap();
        tz.to_ambiguous_zoned(dt)
            .compatible()
            .unwrap()
            .timestamp()
            .as_second()
    }

    fn windows(texts: &[&str]) -> Vec<Window> {
        texts.iter().map(|t| Window::parse(t).unwrap()).collect()
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts() {
        let tz = TimeZone::UTC;
        let w = windows(&["Mon..Fri 22:00-05:00"]);
        // 2026-12-07 is a Monday. (local time, open)
        let cases = [
            ("2026-12-07T00:30", false), // Monday early: Sunday's, not listed
            ("2026-12-07T04:59", false),
            ("2026-12-07T21:59", false),
            ("2026-12-07T22:00", true),
            ("2026-12-08T03:00", true), // Tuesday early: Monday's window
            ("2026-12-08T05:00", false),
            ("2026-12-11T23:59", true), // Friday night
            ("2026-12-12T04:59", true), // Saturday early: Friday's
            ("2026-12-12T05:00", false),
            ("2026-12-12T22:30", false), // Saturday night
            ("2026-12-13T02:00", false),
        ];
        for (at, want) in cases {
            assert_eq!(open(&w, local(at, &tz), &tz), want, "{at}");
        }
    }

    #[test]
    fn several_windows_and_whole_days() {
        let tz = TimeZone::UTC;
        let w = windows(&["Mon..Fri 22:00-05:00", "Sat,Sun 00:00-24:00"]);
        let cases = [
            ("2026-12-12T12:00", true),  // Saturday
            ("2026-12-13T23:59", true),  // Sunday late
            ("2026-12-14T00:30", false), // Monday early: Sunday's ended at 24:00
            ("2026-12-14T12:00", false),
            ("2026-12-14T22:01", true),
        ];
        for (at, want) in cases {
            assert_eq!(open(&w, local(at, &tz), &tz), want, "{at}");
        }
        assert!(open(&[], 0, &tz), "no windows: always open");
        assert_eq!(next_open(&[], 0, &tz), None);
    }

    #[test]
    fn the_next_window_opens_at_its_local_start() {
        let tz = berlin();
        let w = windows(&["Mon..Fri 22:00-05:00"]);
        // (now, next start), local times
        let cases = [
            ("2026-12-12T06:00", "2026-12-14T22:00"), // Saturday -> Monday
            ("2026-12-07T12:00", "2026-12-07T22:00"),
            ("2026-12-07T22:00", "2026-12-08T22:00"), // open now: the one after
            ("2026-12-11T23:00", "2026-12-14T22:00"),
        ];
        for (now, want) in cases {
            let got = next_open(&w, local(now, &tz), &tz);
            assert_eq!(got, Some(local(want, &tz)), "{now}");
        }
    }

    #[test]
    fn windows_keep_to_the_wall_clock_across_dst_changes() {
        let tz = berlin();
        let night = windows(&["daily 22:00-05:00"]);
        let gap = windows(&["Sun 02:00-03:00"]);
        let part = windows(&["Sun 02:30-04:00"]);
        // (windows, instant in UTC, open)
        let cases = [
            // Spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: the night
            // window is 6 real hours, Saturday 21:00Z to Sunday 03:00Z.
            (&night, "2026-03-28T20:59:00Z", false),
            (&night, "2026-03-28T21:00:00Z", true),
            (&night, "2026-03-29T02:59:00Z", true), // 04:59 CEST
            (&night, "2026-03-29T03:00:00Z", false), // 05:00 CEST
            // 02:00-03:00 does not exist that night.
            (&gap, "2026-03-29T00:59:00Z", false), // 01:59 CET
            (&gap, "2026-03-29T01:00:00Z", false), // 03:00 CEST
            (&gap, "2026-03-29T01:30:00Z", false),
            // 02:30 does not exist either: open from 03:00 CEST.
            (&part, "2026-03-29T00:59:00Z", false),
            (&part, "2026-03-29T01:00:00Z", true),
            (&part, "2026-03-29T01:59:00Z", true), // 03:59 CEST
            (&part, "2026-03-29T02:00:00Z", false),
            // Fall back, 2026-10-25 03:00 CEST -> 02:00 CET: 02:00-03:00
            // happens twice, open 2 real hours.
            (&gap, "2026-10-24T23:59:00Z", false), // 01:59 CEST
            (&gap, "2026-10-25T00:00:00Z", true),  // 02:00 CEST
            (&gap, "2026-10-25T00:59:00Z", true),
            (&gap, "2026-10-25T01:00:00Z", true), // 02:00 CET, again
            (&gap, "2026-10-25T01:59:00Z", true),
            (&gap, "2026-10-25T02:00:00Z", false),  // 03:00 CET
            (&night, "2026-10-25T03:59:00Z", true), // 04:59 CET
            (&night, "2026-10-25T04:00:00Z", false),
        ];
        for (w, at, want) in cases {
            assert_eq!(open(w, utc(at), &tz), want, "{w:?} at {at}");
        }
        // The next opening of a window that does not exist this Sunday is
        // next Sunday's; of one cut short by the jump, the jump.
        let sat = utc("2026-03-28T12:00:00Z");
        assert_eq!(next_open(&gap, sat, &tz), Some(utc("2026-04-05T00:00:00Z")));
        assert_eq!(
            next_open(&part, sat, &tz),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn the_same_window_is_a_different_instant_in_each_zone() {
        let w = windows(&["Mon 22:00-23:00"]);
        let now = utc("2026-12-07T12:00:00Z"); // Monday
                                               // (zone, next start in UTC)
        let cases = [
            (TimeZone::UTC, "2026-12-07T22:00:00Z"),
            (berlin(), "2026-12-07T21:00:00Z"),
            (new_york(), "2026-12-08T03:00:00Z"),
        ];
        for (tz, want) in cases {
            assert_eq!(next_open(&w, now, &tz), Some(utc(want)), "{tz:?}");
            assert!(open(&w, utc(want), &tz), "{tz:?}");
            assert!(!open(&w, utc(want) - 1, &tz), "{tz:?}");
        }
        // New York's spring forward (March 8, 02:00 -> 03:00): the same
        // local window is an hour earlier in UTC after it.
        let ny = new_york();
        let w = windows(&["daily 01:00-01:30"]);
        assert_eq!(
            next_open(&w, utc("2026-03-08T00:00:00Z"), &ny),
            Some(utc("2026-03-08T06:00:00Z"))
        );
        assert_eq!(
            next_open(&w, utc("2026-03-08T07:00:00Z"), &ny),
            Some(utc("2026-03-09T05:00:00Z"))
        );
    }
}
